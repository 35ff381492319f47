// Package ratelimit is the account-wide limiter every mediasync worker
// shares through Redis before it calls Twilio's API.
//
// Operators run several worker processes against one Twilio account, and
// Twilio's limits are per account, not per process. A *Limiter keeps its
// state in Redis under one key prefix, so all processes using the same
// Config.Key draw from the same budget. It implements twilio.Limiter:
//
//	lim, err := ratelimit.New(rdb, ratelimit.Config{
//		Key:         "mediasync:twilio:" + accountSID,
//		MaxInFlight: 20, // TWILIO_MAX_CONCURRENCY
//		PerSecond:   50, // TWILIO_MAX_RPS; 0 = no rate bound
//	})
//	client, err := twilio.New(accountSID, twilio.WithAuthToken(token), twilio.WithLimiter(lim))
//
//	release, err := lim.Acquire(ctx) // what the twilio client does per request
//	defer release()
//
// # Two bounds, and why
//
// Twilio answers 429 with error 20429 when an account has too many REST
// requests in flight at once: the limit is on concurrency, and its value
// is not published. A rate limiter alone cannot prevent it (ten slow
// downloads at 1 request/second still overlap), so the first bound is a
// counting semaphore of Config.MaxInFlight slots. The second bound,
// Config.PerSecond, is the operator's own: a cap on requests started per
// second, to leave room for other users of the account or to keep a
// backfill gentle. It uses GCRA, as github.com/go-redis/redis_rate does.
//
// Each request spends one request of the rate bound when it starts, in
// the same Redis script that takes or confirms its slot: atomically, so
// no slot is held while the rate bound says "not yet" and no request
// is spent that cannot start at once. The GCRA state stays redis_rate's
// (same key, same units), so workers of an earlier release share it.
//
// When Twilio answers 429 anyway (the account's real limit is lower than
// MaxInFlight, or something else uses the account), call Limiter.Backoff:
// it records a deadline in Redis, and every process's Acquire waits until
// it has passed. A later deadline always wins over an earlier one. Call
// Limiter.Refused too: it lowers a ceiling on the slots to what Twilio was
// serving when it refused (at least one below the ceiling in force), and
// the ceiling climbs back one slot per Config.Recovery, so the fleet finds
// Twilio's real limit instead of meeting every back-off's end with
// MaxInFlight requests of which most are refused.
//
// A FleetBackoff does both for the twilio client: it is the client's
// Limiter, and its OnRetry, given to twilio.WithRetryHook, calls Backoff
// and Refused on every 429:
//
//	fleet := &ratelimit.FleetBackoff{Limiter: lim, OnError: logIt}
//	client, err := twilio.New(accountSID, twilio.WithAuthToken(token),
//		twilio.WithLimiter(fleet), twilio.WithRetryHook(fleet.OnRetry))
//
// # Slots expire
//
// A slot is a member of a Redis sorted set whose score is its expiry time,
// now + Config.HoldTTL + Config.ReuseWindow, taken from Redis's own clock
// (TIME inside the script) so that clock skew between workers does not
// matter. Every acquire attempt first drops expired members. A worker that
// crashes or loses its network while holding slots therefore cannot shrink
// the account's budget for longer than that (2 minutes and a second by
// default).
//
// The other side of the bargain: a request must never last longer than
// HoldTTL, response body included, or its slot is handed to another
// request while it still runs. Set the HTTP client's timeout below
// HoldTTL. Slots are not refreshed while held.
//
// Each slot taken has its own random holder ID, so giving it back is a
// ZREM of exactly that member: releasing twice, or releasing after the
// slot expired and was handed on, never frees someone else's slot. The
// Redis calls that take and give back slots are not cut short by the
// caller's context, so a cancelled Acquire never leaves a slot behind.
// go-redis sends a command again when it lost the reply (a read timeout,
// EOF), so the script that takes slots, and the one Refused runs, answer
// a second run for the same holders (or refusal) as the first did.
//
// # Slots are passed on
//
// Taking a slot from Redis and giving it back for every request would
// cost two round trips per request. A Limiter keeps the slots it took
// and passes them on between its own callers instead:
//
//   - A finished request's slot goes to the Limiter's longest waiting
//     caller; if none waits and other requests of the Limiter are still in
//     flight, it stays idle for the next caller, for one to two
//     PollIntervals. The release that leaves the Limiter with no request
//     in flight gives every slot back before it returns, so Stats, in any
//     process, counts only slots in use or about to be.
//   - Only the first waiting caller polls Redis, and each poll takes a slot
//     for every caller waiting then (at most MaxInFlight): Redis sees one
//     script per PollInterval per process however many callers wait.
//   - A slot is passed on only within its window, drawn per slot from
//     half to all of ReuseWindow, of being taken. It expires ReuseWindow
//     later than a slot that carried one request, so every request it
//     carries still ends before it expires. A busy process thus gives
//     each slot back at least once per ReuseWindow while another process
//     waits, and at least once per ten ReuseWindows in any case, not all
//     at once: other processes' pollers get their turn. A poll that finds
//     every slot taken marks its process waiting for two PollIntervals;
//     while no other process is marked, a slot past its window that a
//     caller here waits for is renewed by one script (a new window, and
//     the expiry moved as if it were taken now) instead of going back and
//     being polled for again, which left it idle for up to a PollInterval
//     each time. The ten-window bound is for workers of an earlier
//     release, which wait without marking.
//   - Passing on skips Redis only while the Limiter's last reply from
//     Redis is under two PollIntervals old, said no back-off was in force
//     and the fleet was not over the ceiling, and there is no rate bound.
//     Otherwise one script confirms the slot (spending a request of the
//     rate bound, if any) if it has HoldTTL left by Redis's clock, or
//     gives it back, and gives back on the way the slots the Limiter had
//     finished with. A reply counting fewer slots than the Limiter holds
//     (Redis lost some) makes it confirm every slot until one says
//     otherwise. So a back-off or ceiling
//     recorded by another process reaches a busy one within a few
//     PollIntervals; Backoff and Refused called on this Limiter reach it at
//     once.
//
// Redis holds one member per slot whoever uses it, so the fleet-wide
// bound stays exact. The cost per request is a fraction of a round trip
// when a process has several callers, about one with a rate bound, and
// two (as before) for a lone caller whose requests never overlap.
//
// Waiting callers poll every Config.PollInterval on average, each wait
// drawn at random from half to one and a half times it. Nobody is
// queued ahead of anybody across processes, but every process polls at
// the same rate, so the wait is fair on average.
//
// # Key layout
//
// With Config.Key = K (never a secret; a worker's is
// rediskeys.Namespace.TwilioLimiter, "mediasync:twilio:AC…"):
//
//	K:slots    ZSET   member = holder ID (random), score = expiry, ms since
//	                  the epoch by Redis TIME; key expires a second after the
//	                  last holder's expiry; read and written by workers of
//	                  earlier releases the same way
//	K:backoff  STRING back-off deadline, ms since the epoch by Redis TIME;
//	                  key expires a second after it
//	K:ceiling  HASH   limit = slots allowed when set by Refused, at = when
//	                  (ms, Redis TIME), by = the refusal's random ID (so a
//	                  retried script lowers it once); key expires once the
//	                  ceiling is back at MaxInFlight
//	rate:K:rps STRING redis_rate's GCRA state (it adds the "rate:" prefix);
//	                  expires once the bound is back to a full burst
//	K:waiting  ZSET   member = a Limiter's random ID, score = when its mark
//	                  ends (ms, Redis TIME): the processes whose last poll
//	                  found every slot taken; key expires a second after
//	                  the last mark
//
// K:slots, K:backoff, K:ceiling, rate:K:rps and K:waiting are read by one script,
// so with Redis Cluster K must carry a hash tag ("mediasync:twilio:{AC…}");
// New refuses a Cluster or Ring client otherwise.
package ratelimit
