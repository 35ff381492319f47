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

// Reply codes of acquireScript.
const (
	acquireFull      = 0 // every slot is taken
	acquireTaken     = 1 // the holder now has a slot
	acquireBackedOff = 2 // a back-off is in force; the second value is ms left
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

// acquireScript takes a slot for a holder unless a back-off is in force or
// every live slot under the ceiling is taken.
//
// KEYS[1] slots ZSET (member holder ID, score expiry ms)
// KEYS[2] back-off deadline (ms, as a string)
// KEYS[3] ceiling HASH (see refusedScript)
// ARGV[1] MaxInFlight, ARGV[2] HoldTTL ms, ARGV[3] holder ID, ARGV[4] Recovery ms
// Returns {code, ms until the back-off ends (code 2) or 0}.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local backoff = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if backoff > now then
  return {2, backoff - now}
end
local maxInFlight, recoveryMS, ceilingKey = tonumber(ARGV[1]), tonumber(ARGV[4]), 3
` + ceilingLua + `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
if redis.call('ZCARD', KEYS[1]) >= ceiling then
  return {0, 0}
end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%d', now + ttl), ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl + 1000 then
  redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl + 1000))
end
return {1, 0}
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
// MaxInFlight.
//
// KEYS[1] slots ZSET, KEYS[2] ceiling HASH {limit, at ms}
// ARGV[1] MaxInFlight, ARGV[2] Recovery ms
// Returns the new ceiling.
var refusedScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local maxInFlight, recoveryMS, ceilingKey = tonumber(ARGV[1]), tonumber(ARGV[2]), 2
` + ceilingLua + `
local live = redis.call('ZCOUNT', KEYS[1], string.format('(%d', now), '+inf')
local limit = math.max(1, math.min(ceiling - 1, live))
redis.call('HSET', KEYS[2], 'limit', limit, 'at', string.format('%d', now))
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
