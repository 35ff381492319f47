package ratelimit

import "github.com/redis/go-redis/v9"

// The scripts read the clock with Redis TIME, so every process judges
// expiry and back-off by the same clock whatever its own says. Times are
// milliseconds since the Unix epoch. Redis 7 replicates a script's effects,
// not the script, so TIME in a writing script is safe.
//
// A slot's expiry keeps the key alive a second beyond the last holder's
// deadline, and the back-off key a second beyond its deadline: the stored
// values, compared with TIME, are what count; the key TTLs only clean up.

// Reply codes of takeScript and confirmScript.
const (
	replyFull      = 0 // every slot under the ceiling is taken (confirm: the fleet is over it)
	replyTaken     = 1 // the slots are the holders' (confirm: the holder may start a request)
	replyBackedOff = 2 // a back-off is in force; the second value is ms left
	replyRate      = 3 // the rate bound says not yet; the second value is ms to wait
	replyLost      = 4 // confirm only: the holder's slot had expired, or would before a request on it ends
)

// ceilingLua computes, from the ceiling HASH KEYS[ceilingKey] (limit, at
// ms) set by refusedScript, the slots usable now: its limit plus one per
// recovery interval since, capped at MaxInFlight. Needs now, maxInFlight,
// recoveryMS and ceilingKey as Lua locals.
const ceilingLua = `
local ceiling = maxInFlight
local c = redis.call('HMGET', KEYS[ceilingKey], 'limit', 'at')
if c[1] and c[2] then
  ceiling = math.min(maxInFlight, tonumber(c[1]) + math.floor((now - tonumber(c[2])) / recoveryMS))
end
`

// heldLua checks that the slot of holder, which a process holds, may
// carry on: it is live for at least minLeft ms more by Redis's clock, no
// back-off is in force and the fleet is not over the ceiling. Otherwise it
// gives the slot back and returns the reply (code 4, 2 or 0). It leaves t
// (TIME), now, live and ceiling as Lua locals. Needs holder, minLeft,
// maxInFlight, recoveryMS and ceilingKey as Lua locals.
const heldLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = tonumber(redis.call('ZSCORE', KEYS[1], holder) or '0') or 0
if score - now < minLeft then
  redis.call('ZREM', KEYS[1], holder)
  return {4, 0, 0, 0}
end
local backoff = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if backoff > now then
  redis.call('ZREM', KEYS[1], holder)
  return {2, backoff - now, 0, 0}
end
` + ceilingLua + `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
local live = redis.call('ZCARD', KEYS[1])
if live > ceiling then
  redis.call('ZREM', KEYS[1], holder)
  return {0, 0, live - 1, ceiling}
end
`

// gcraLua defines gcra(key, burst, rate, period, want, t): GCRA as
// github.com/go-redis/redis_rate's allowAtMost computes it, on the same
// key and in the same units (seconds since 2017-01-01 as a float), so
// that workers of the previous release, which call redis_rate, share the
// bound during a rolling deploy. It spends up to want requests and
// returns how many it spent, and when none, the seconds until one may
// start. t is the reply of TIME.
const gcraLua = `
local function gcra(key, burst, rate, period, want, t)
  local emission = period / rate
  local now = (tonumber(t[1]) - 1483228800) + tonumber(t[2]) / 1000000
  local tat = math.max(tonumber(redis.call('GET', key) or '') or now, now)
  local diff = now - (tat - emission * burst)
  local remaining = diff / emission
  if remaining < 1 then
    return 0, emission - diff
  end
  local n = math.min(want, math.floor(remaining))
  local newTat = tat + emission * n
  if newTat - now > 0 then
    redis.call('SET', key, newTat, 'EX', math.ceil(newTat - now))
  end
  return n, 0
end
`

// takeScript takes up to want slots at once, one per holder ID given,
// unless a back-off is in force, every live slot under the ceiling is
// taken, or (with a rate bound) no request may start now; with a rate
// bound it spends one request per slot taken, so the holders must start
// at once.
//
// It is idempotent: go-redis sends a script again when its reply is lost
// (a read timeout, EOF), and a second run for the same holders must not
// count the first run's slots against them. A run that finds its first
// holder live therefore takes nothing and answers as the first run did:
// the live holders, which the first run took in order, are the slots
// taken.
//
// When every slot is taken it marks the process as waiting (KEYS[5],
// for want TTL ms), so that renewScript lets the slots of others go.
//
// KEYS[1] slots ZSET (member holder ID, score expiry ms)
// KEYS[2] back-off deadline (ms, as a string)
// KEYS[3] ceiling HASH (see refusedScript)
// KEYS[4] rate state (redis_rate's GCRA key)
// KEYS[5] waiting ZSET (member process ID, score mark's expiry ms)
// ARGV[1] MaxInFlight, ARGV[2] slot TTL ms, ARGV[3] Recovery ms,
// ARGV[4] burst, ARGV[5] rate (0: no rate bound), ARGV[6] period s,
// ARGV[7] process ID, ARGV[8] want TTL ms, ARGV[9..] holder IDs (want =
// their number)
// Returns {code, slots taken (code 1) or ms to wait (2, 3) or 0, live
// slots, ceiling}.
var takeScript = redis.NewScript(gcraLua + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local maxInFlight, recoveryMS, ceilingKey = tonumber(ARGV[1]), tonumber(ARGV[3]), 3
` + ceilingLua + `
local again = 0
for i = 9, #ARGV do
  if (tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i]) or '0') or 0) <= now then
    break
  end
  again = again + 1
end
if again > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
  return {1, again, redis.call('ZCARD', KEYS[1]), ceiling}
end
local backoff = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if backoff > now then
  return {2, backoff - now, 0, 0}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
local live = redis.call('ZCARD', KEYS[1])
local n = math.min(ceiling - live, #ARGV - 8)
if n <= 0 then
  local want = tonumber(ARGV[8])
  redis.call('ZADD', KEYS[5], string.format('%d', now + want), ARGV[7])
  redis.call('PEXPIRE', KEYS[5], string.format('%d', want + 1000))
  return {0, 0, live, ceiling}
end
local rate = tonumber(ARGV[5])
if rate > 0 then
  local retry
  n, retry = gcra(KEYS[4], tonumber(ARGV[4]), rate, tonumber(ARGV[6]), n, t)
  if n == 0 then
    return {3, math.ceil(retry * 1000), live, ceiling}
  end
end
local ttl = tonumber(ARGV[2])
local expiry = string.format('%d', now + ttl)
for i = 1, n do
  redis.call('ZADD', KEYS[1], expiry, ARGV[8 + i])
end
if redis.call('PTTL', KEYS[1]) < ttl + 1000 then
  redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl + 1000))
end
return {1, n, live + n, ceiling}
`)

// confirmScript checks that a slot a process already holds may carry one
// more request: the slot is live for at least HoldTTL more by Redis's
// clock (the process chose to reuse it by its own clock, and the script
// may reach Redis late), no back-off is in force, the fleet is not over
// the ceiling, and (with a rate bound) a request may start now, which it
// spends. When the answer is no it gives the slot back, so the caller
// holds nothing. It also gives back the slots the process has finished
// with (ARGV[8..]), folding their release into this round trip.
//
// KEYS as takeScript's.
// ARGV[1] MaxInFlight, ARGV[2] Recovery ms, ARGV[3] burst, ARGV[4] rate
// (0: no rate bound), ARGV[5] period s, ARGV[6] HoldTTL ms, ARGV[7]
// holder ID, ARGV[8..] holder IDs to give back
// Returns {code, ms to wait (codes 2, 3) or 0, live slots, ceiling}.
var confirmScript = redis.NewScript(gcraLua + `
for i = 8, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
end
local holder, minLeft = ARGV[7], tonumber(ARGV[6])
local maxInFlight, recoveryMS, ceilingKey = tonumber(ARGV[1]), tonumber(ARGV[2]), 3
` + heldLua + `
local rate = tonumber(ARGV[4])
if rate > 0 then
  local n, retry = gcra(KEYS[4], tonumber(ARGV[3]), rate, tonumber(ARGV[5]), 1, t)
  if n == 0 then
    redis.call('ZREM', KEYS[1], holder)
    return {3, math.ceil(retry * 1000), live - 1, ceiling}
  end
end
return {1, 0, live, ceiling}
`)

// renewScript keeps a slot a process holds past its ReuseWindow, for the
// next request of a caller waiting in that process, when no other process
// waits for a slot (none marked waiting by takeScript): its expiry moves
// to now + slot TTL, so the slot carries on without going back to Redis
// and being polled for again. A slot that has expired, or while a
// back-off is in force, the fleet is over the ceiling or another process
// waits, it gives back instead: a busy process never keeps slots from
// the rest of the fleet for longer than the ReuseWindow.
//
// KEYS as takeScript's.
// ARGV[1] MaxInFlight, ARGV[2] slot TTL ms, ARGV[3] Recovery ms,
// ARGV[4] process ID, ARGV[5] holder ID
// Returns {code, ms to wait (code 2) or 0, live slots, ceiling}: code 1
// kept, 0 given back (over the ceiling, or another process waits), 2
// given back for a back-off, 4 the slot had expired.
var renewScript = redis.NewScript(`
local holder, minLeft = ARGV[5], 1
local maxInFlight, recoveryMS, ceilingKey = tonumber(ARGV[1]), tonumber(ARGV[3]), 3
` + heldLua + `
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', string.format('%d', now))
local others = redis.call('ZCARD', KEYS[5])
if redis.call('ZSCORE', KEYS[5], ARGV[4]) then
  others = others - 1
end
if others > 0 then
  redis.call('ZREM', KEYS[1], holder)
  return {0, 0, live - 1, ceiling}
end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', string.format('%d', now + ttl), holder)
if redis.call('PTTL', KEYS[1]) < ttl + 1000 then
  redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl + 1000))
end
return {1, 0, live, ceiling}
`)

// backoffScript moves the back-off deadline to now+ARGV[1] ms unless it is
// already later.
//
// KEYS[1] back-off deadline; ARGV[1] back-off ms (> 0)
// Returns the deadline in force, ms since the epoch.
var backoffScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local want = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if want > cur then
  redis.call('SET', KEYS[1], string.format('%d', want), 'PX', string.format('%d', want - now + 1000))
  return want
end
return cur
`)

// refusedScript lowers the ceiling after Twilio refused a request: to the
// live slots (what Twilio was serving), at least one below the ceiling in
// force, at least 1. The key expires once the ceiling is back at
// MaxInFlight. ARGV[3] names the refusal: a run sent again by go-redis
// after losing the reply finds it in the hash and lowers nothing more.
// It first gives back the slots the process was not using (ARGV[4..]),
// so that only the requests Twilio was serving count.
//
// KEYS[1] slots ZSET, KEYS[2] ceiling HASH {limit, at ms, by}
// ARGV[1] MaxInFlight, ARGV[2] Recovery ms, ARGV[3] refusal ID (random),
// ARGV[4..] holder IDs to give back
// Returns the new ceiling.
var refusedScript = redis.NewScript(`
for i = 4, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
end
local c = redis.call('HMGET', KEYS[2], 'by', 'limit')
if c[1] == ARGV[3] and c[2] then
  return tonumber(c[2])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local maxInFlight, recoveryMS, ceilingKey = tonumber(ARGV[1]), tonumber(ARGV[2]), 2
` + ceilingLua + `
local live = redis.call('ZCOUNT', KEYS[1], string.format('(%d', now), '+inf')
local limit = math.max(1, math.min(ceiling - 1, live))
redis.call('HSET', KEYS[2], 'limit', limit, 'at', string.format('%d', now), 'by', ARGV[3])
redis.call('PEXPIRE', KEYS[2], string.format('%d', math.max(0, maxInFlight - limit) * recoveryMS + 1000))
return limit
`)

// statsScript counts live slots and reads the back-off deadline.
//
// KEYS[1] slots ZSET, KEYS[2] back-off deadline
// Returns {live slots, back-off deadline ms or 0 if none in force, now ms}.
var statsScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = redis.call('ZCOUNT', KEYS[1], string.format('(%d', now), '+inf')
local backoff = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if backoff <= now then
  backoff = 0
end
return {n, backoff, now}
`)
