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
// backfill gentle. It uses GCRA from github.com/go-redis/redis_rate.
//
// A caller first takes a slot, then spends one request of the rate
// bound; if the rate bound says "not yet" it gives the slot back at once
// and waits the time redis_rate reports. Spending the rate first and then
// waiting for a slot would let callers pile up already-spent requests and
// start them all together when slots free, breaking the rate bound;
// holding a slot while waiting for the rate would idle a slot. A denied
// attempt holds a slot for one Redis round trip only.
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
// now + Config.HoldTTL, taken from Redis's own clock (TIME inside the
// script) so that clock skew between workers does not matter. Every
// acquire attempt first drops expired members. A worker that crashes or
// loses its network while holding slots therefore cannot shrink the
// account's budget for longer than HoldTTL (2 minutes by default).
//
// The other side of the bargain: a request must never last longer than
// HoldTTL, response body included, or its slot is handed to another
// request while it still runs. Set the HTTP client's timeout below
// HoldTTL. Slots are not refreshed while held.
//
// Each acquisition has its own random holder ID, so a release is a ZREM
// of exactly that member: releasing twice, or releasing after the slot
// expired and was handed on, never frees someone else's slot. The Redis
// calls that take and give back slots are not cut short by the caller's
// context, so a cancelled Acquire never leaves a slot behind.
//
// Waiting callers poll every Config.PollInterval on average, each wait
// drawn at random from half to one and a half times it. Nobody is
// queued ahead of anybody, but everyone draws at the same rate, so the
// wait is fair on average and Redis sees one small script per waiter per
// interval.
//
// # Key layout
//
// With Config.Key = K (never a secret; a worker's is
// rediskeys.Namespace.TwilioLimiter, "mediasync:twilio:AC…"):
//
//	K:slots    ZSET   member = holder ID (random), score = expiry, ms since
//	                  the epoch by Redis TIME; key expires a second after the
//	                  last holder's expiry
//	K:backoff  STRING back-off deadline, ms since the epoch by Redis TIME;
//	                  key expires a second after it
//	K:ceiling  HASH   limit = slots allowed when set by Refused, at = when
//	                  (ms, Redis TIME); key expires once the ceiling is
//	                  back at MaxInFlight
//	rate:K:rps STRING redis_rate's GCRA state (it adds the "rate:" prefix);
//	                  expires once the bound is back to a full burst
//
// K:slots, K:backoff and K:ceiling are read by one script, so with Redis
// Cluster K must carry a hash tag ("mediasync:twilio:{AC…}"); New refuses
// a Cluster or Ring client otherwise.
package ratelimit
