package ratelimit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/mediasync/mediasync/internal/sleep"
)

// opTimeout bounds each Redis call the Limiter makes. The calls that take
// or give back a slot run detached from the caller's context (see Acquire),
// so this is what keeps them from hanging on a stuck Redis.
const opTimeout = 5 * time.Second

// Wait reasons passed to the test hook.
const (
	waitFull    = "full"
	waitBackoff = "backoff"
	waitRate    = "rate"
	waitQueued  = "queued" // behind another caller of the same Limiter
)

// Limiter bounds the requests to one Twilio account across every process
// that shares its Redis and Config.Key: at most MaxInFlight in flight at
// once, at most PerSecond started per second, none while a back-off is in
// force. It is safe for concurrent use. Create it with New.
//
// A Limiter passes the slots it holds on between its own callers (see
// "Slots are passed on" in the package documentation): mu guards that
// local pool. It starts no goroutine of its own; the only thing it leaves
// behind is a timer, which gives back idle slots and finds nothing to do
// once the Limiter's last slot is released.
type Limiter struct {
	rdb   redis.UniversalClient
	cfg   Config
	limit redis_rate.Limit // zero Rate when cfg.PerSecond is 0

	keys     []string // slots, backoff, ceiling, rate, waiting: the keys of takeScript, confirmScript and renewScript
	slotsKey string
	id       string // this Limiter's name in the waiting ZSET (renewScript)
	// ttl is a slot's expiry in Redis, HoldTTL + ReuseWindow: a slot is
	// passed on only within ReuseWindow of being taken, so every request
	// it carries ends (within HoldTTL) before it expires.
	ttl      time.Duration
	idleHold time.Duration // how long a slot nobody uses is kept: PollInterval

	// onWait, when set by a test, is called before each wait.
	onWait func(reason string, d time.Duration)

	mu       sync.Mutex
	returned *sync.Cond // on mu: carrying dropped to 0
	// inUse counts the slots the Limiter's callers hold (requests in
	// flight, and Acquires about to return). While it is 0, idle is
	// empty and every slot is back in Redis once the release that made
	// it 0 returns, so Stats anywhere sees it at once.
	inUse    int
	idle     []*slot   // held in Redis, used by nobody; LIFO, so a surplus ages out
	returns  []string  // holders to give back in the next round trip
	carrying int       // round trips under way that give back holders
	queue    []*waiter // callers waiting for a slot; the first polls Redis
	polling  bool      // a poll of takeScript is under way
	nextPoll time.Time // when the first waiter may poll again, and why it waits
	pollWhy  string
	// What the last reply from Redis said of the fleet: while it is fresh
	// (freshUntil), not over the ceiling and no back-off is in force, a
	// slot is passed on without asking Redis.
	freshUntil   time.Time
	over         bool
	backoffUntil time.Time // never moved earlier
	// signalAt is when Backoff or Refused last told the Limiter something
	// newer than any reply to a script sent before then: such a reply
	// must not make the Limiter trust its slots again.
	signalAt time.Time
	timer    *time.Timer // runs sweep
	timerSet bool
}

// slot is one slot the Limiter holds in Redis.
type slot struct {
	holder     string
	reuseUntil time.Time // it may carry a request that starts before then
	// renewUntil is the last moment renewScript may keep it: it goes back
	// to Redis at least once per renewLimit whatever the marks say.
	renewUntil time.Time
	idleSince  time.Time
}

// renewLimit is how many ReuseWindows a slot may be renewed for after it
// is taken. Marks are what keeps a busy process from holding slots other
// processes wait for, and workers of an earlier release wait without
// marking: past this a slot goes back to Redis, so such a worker still
// gets its turn, within ten windows rather than one, during a rolling
// upgrade.
const renewLimit = 10

// waiter is one Acquire waiting in the queue.
type waiter struct {
	wake  chan struct{} // capacity 1: a slot, or its turn to poll
	slot  *slot         // set (under mu) when it is given one
	fresh bool          // slot came from takeScript just now: no confirm needed
}

// New returns a Limiter on rdb. It checks cfg (an error names the field)
// but does not contact Redis.
func New(rdb redis.UniversalClient, cfg Config) (*Limiter, error) {
	if rdb == nil {
		return nil, errors.New("ratelimit: Redis client is nil")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(rdb); err != nil {
		return nil, fmt.Errorf("ratelimit: invalid config: %w", err)
	}
	l := &Limiter{
		rdb:      rdb,
		cfg:      cfg,
		slotsKey: cfg.Key + ":slots",
		// redis_rate's key for cfg.Key+":rps", which older workers use.
		keys: []string{cfg.Key + ":slots", cfg.Key + ":backoff", cfg.Key + ":ceiling", "rate:" + cfg.Key + ":rps",
			cfg.Key + ":waiting"},
		id:       rand.Text(),
		ttl:      (cfg.HoldTTL + cfg.ReuseWindow + time.Millisecond - 1).Truncate(time.Millisecond),
		idleHold: cfg.PollInterval,
	}
	l.returned = sync.NewCond(&l.mu)
	if cfg.PerSecond > 0 {
		l.limit = rateLimit(cfg.PerSecond)
	}
	return l, nil
}

// Acquire blocks until the caller may send one request, then returns the
// function that gives the slot back. release must be called once the
// request is over (its response body closed); calling it again does
// nothing. A slot that is never released frees itself after HoldTTL +
// ReuseWindow.
//
// Acquire waits while a back-off recorded by Backoff is in force, while
// every slot is taken (polling at jittered PollInterval steps), and while
// the rate bound says no (for the time it reports). If ctx ends first it
// returns an error wrapping ctx.Err() and holds no slot. Redis errors are
// returned wrapped, not retried.
//
// The Redis calls that take and give back a slot are not cut short by
// ctx (each is bounded by a few seconds instead): a call abandoned halfway
// could take a slot nobody knows about. So a cancel is noticed at once
// while waiting, and within one Redis round trip otherwise.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, l.acquireErr("before waiting", err)
	}
	for {
		s, confirmed, err := l.get(ctx)
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			l.putBack(ctx, s)
			return nil, l.acquireErr("take slot", err)
		}
		if !confirmed {
			ok, err := l.confirm(ctx, s)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue // the slot is gone; confirm waited as Redis said
			}
		}
		if err := ctx.Err(); err != nil {
			l.putBack(ctx, s)
			return nil, l.acquireErr("take slot", err)
		}
		return l.releaser(ctx, s), nil
	}
}

// get returns a slot for one request: an idle one, or one passed on by
// another caller or taken from Redis by the first waiter. confirmed is
// false when the slot must go through confirm before it is used.
func (l *Limiter) get(ctx context.Context) (s *slot, confirmed bool, err error) {
	l.mu.Lock()
	now := time.Now()
	if s := l.popIdle(now); s != nil {
		l.inUse++
		confirmed := l.trusted(now)
		l.mu.Unlock()
		return s, confirmed, nil
	}
	w := &waiter{wake: make(chan struct{}, 1)}
	l.queue = append(l.queue, w)
	l.mu.Unlock()
	return l.await(ctx, w)
}

// await waits in the queue until w is given a slot. The first waiter
// polls Redis for the whole queue (takeScript takes a slot for each
// waiter at once), so Redis sees one poll per PollInterval per process,
// however many callers wait.
func (l *Limiter) await(ctx context.Context, w *waiter) (*slot, bool, error) {
	step := "wait for a free slot"
	queued := false
	for {
		l.mu.Lock()
		if w.slot != nil {
			l.mu.Unlock()
			return w.slot, w.fresh, nil
		}
		if err := ctx.Err(); err != nil {
			l.leave(w)
			l.mu.Unlock()
			return nil, false, l.acquireErr(step, err)
		}
		var d time.Duration
		reason := waitQueued
		if l.queue[0] == w && !l.polling {
			if d = time.Until(l.nextPoll); d <= 0 {
				l.polling = true
				l.mu.Unlock()
				if err := l.poll(ctx); err != nil {
					l.mu.Lock()
					// A release may have passed w a slot while the poll
					// ran: it is w's now, and the poll's failure no
					// longer matters.
					if w.slot != nil {
						l.mu.Unlock()
						return w.slot, w.fresh, nil
					}
					l.leave(w)
					l.mu.Unlock()
					return nil, false, err
				}
				continue
			}
			reason = l.pollWhy
		}
		l.mu.Unlock()

		if reason != waitQueued || !queued {
			queued = true
			step = waitStep(reason, step)
			if l.onWait != nil {
				l.onWait(reason, d)
			}
		}
		// Not sleep.For: a slot passed on, or the turn to poll, ends the
		// wait too.
		var timer *time.Timer
		var timeout <-chan time.Time
		if d > 0 {
			timer = time.NewTimer(d)
			timeout = timer.C
		}
		select {
		case <-w.wake:
		case <-timeout:
		case <-ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// waitStep names, for an error, what a wait for reason waited for.
func waitStep(reason, prev string) string {
	switch reason {
	case waitBackoff:
		return "wait for the account's back-off to end"
	case waitRate:
		return "wait for the rate bound"
	case waitFull:
		return "wait for a free slot"
	}
	return prev
}

// poll runs takeScript once for the waiters queued now, hands the slots
// it took to them in order, and sets when the next poll may run.
func (l *Limiter) poll(ctx context.Context) error {
	l.mu.Lock()
	want := min(len(l.queue), l.cfg.MaxInFlight)
	if want == 0 {
		// Every waiter, the poller included, was passed a slot meanwhile.
		l.polling = false
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	holders := make([]string, want)
	for i := range holders {
		holders[i] = rand.Text() // 128 random bits: unique per slot taken
	}
	sent := time.Now()
	r, err := l.take(ctx, holders)

	l.mu.Lock()
	l.polling = false
	l.wakeHead()
	if err != nil {
		l.mu.Unlock()
		// The script may have run although its reply was lost: make sure
		// the holders are gone before giving up.
		return l.acquireErr("take slot", errors.Join(err, l.remove(ctx, holders)))
	}
	mine := l.inUse + len(l.idle)
	if r.code == replyTaken {
		mine += int(r.arg)
	}
	l.learn(r, sent, mine)
	now := time.Now()
	jitter := mrand.N(l.cfg.PollInterval)
	gaveBack := false
	if r.code == replyTaken && now.Before(l.backoffUntil) {
		// Backoff was called here while the script ran: the slots must
		// not carry requests. Give them back at once.
		for _, h := range holders[:r.arg] {
			l.giveBack(h)
		}
		gaveBack = true
		r = reply{code: replyBackedOff, arg: msUntil(l.backoffUntil, now)}
	}
	switch r.code {
	case replyTaken:
		for _, h := range holders[:r.arg] {
			l.inUse++
			l.handOut(&slot{holder: h, reuseUntil: sent.Add(l.reuseFor()), renewUntil: sent.Add(renewLimit * l.cfg.ReuseWindow)}, true, now)
		}
		switch {
		case int(r.arg) == want:
			l.nextPoll = now // whoever queued since may poll at once
		case l.limit.Rate > 0 && r.live < r.ceiling:
			// Slots are free: the rate bound trimmed the batch.
			l.nextPoll, l.pollWhy = now.Add(l.cfg.PollInterval/2+jitter), waitRate
		default:
			l.nextPoll, l.pollWhy = now.Add(l.cfg.PollInterval/2+jitter), waitFull
		}
	case replyFull:
		l.nextPoll, l.pollWhy = now.Add(l.cfg.PollInterval/2+jitter), waitFull
	case replyBackedOff:
		l.nextPoll, l.pollWhy = now.Add(time.Duration(r.arg)*time.Millisecond+jitter), waitBackoff
	case replyRate:
		l.nextPoll, l.pollWhy = now.Add(time.Duration(r.arg)*time.Millisecond+jitter), waitRate
	}
	flush := l.inUse == 0 && len(l.returns) > 0
	l.mu.Unlock()
	switch {
	case flush:
		l.flushAll(ctx) // every waiter left while the script ran
	case gaveBack:
		l.flush(ctx)
	}
	return nil
}

// confirm runs confirmScript for s, which a caller holds. If Redis says
// no, the slot is gone, confirm waits as long as Redis said and returns
// false.
func (l *Limiter) confirm(ctx context.Context, s *slot) (bool, error) {
	l.mu.Lock()
	back := l.takeReturns()
	l.mu.Unlock()
	sent := time.Now()
	r, err := l.check(ctx, s.holder, back)
	if err != nil {
		// The script may have run, or not: make sure the holders are gone
		// before saying that back is (flushAll waits for it).
		rmErr := l.remove(ctx, append(back, s.holder))
		l.mu.Lock()
		l.doneReturns(back)
		flush := l.untrack()
		l.mu.Unlock()
		if flush {
			l.flushAll(ctx)
		}
		return false, l.acquireErr("take slot", errors.Join(err, rmErr))
	}

	l.mu.Lock()
	l.doneReturns(back)
	if r.code != replyLost {
		mine := l.inUse + len(l.idle)
		if r.code != replyTaken {
			mine-- // the script gave s back
		}
		l.learn(r, sent, mine)
	}
	gaveBack := false
	if r.code == replyTaken {
		now := time.Now()
		if !now.Before(l.backoffUntil) {
			l.mu.Unlock()
			return true, nil
		}
		// Backoff was called here while the script ran: the slot must not
		// carry a request.
		l.giveBack(s.holder)
		gaveBack = true
		r = reply{code: replyBackedOff, arg: msUntil(l.backoffUntil, now)}
	}
	flush := l.untrack()
	l.mu.Unlock()
	switch {
	case flush:
		l.flushAll(ctx)
	case gaveBack:
		l.flush(ctx)
	}
	var d time.Duration
	reason := ""
	switch r.code {
	case replyFull:
		d, reason = l.cfg.PollInterval/2+mrand.N(l.cfg.PollInterval), waitFull
	case replyBackedOff:
		d, reason = time.Duration(r.arg)*time.Millisecond+mrand.N(l.cfg.PollInterval), waitBackoff
	case replyRate:
		d, reason = time.Duration(r.arg)*time.Millisecond+mrand.N(l.cfg.PollInterval), waitRate
	default:
		return false, nil // the slot had (nearly) expired: look for another at once
	}
	if err := l.wait(ctx, reason, d); err != nil {
		return false, l.acquireErr(waitStep(reason, ""), err)
	}
	return false, nil
}

// putBack takes back a slot a caller is done with: it goes to the first
// waiter if it may carry another request, else it stays idle for a while
// if other requests of this Limiter are in flight, else back to Redis; the
// release that leaves the Limiter holding nothing returns every slot
// before it returns.
func (l *Limiter) putBack(ctx context.Context, s *slot) {
	l.mu.Lock()
	now := time.Now()
	waiting := len(l.queue) > 0
	if waiting && l.reusable(s, now) {
		l.grant(s, false, now)
		l.mu.Unlock()
		return
	}
	if waiting && l.renewable(s, now) {
		l.mu.Unlock()
		if l.renew(ctx, s) {
			return
		}
		l.mu.Lock()
		flush := l.untrack()
		l.mu.Unlock()
		if flush {
			l.flushAll(ctx)
		}
		return
	}
	l.inUse--
	l.park(s, now)
	flush := l.untrack0()
	l.mu.Unlock()
	switch {
	case flush:
		l.flushAll(ctx)
	case waiting:
		// Callers wait here, so others likely wait elsewhere: the slot,
		// past its window, goes back now rather than at the next sweep.
		l.flush(ctx)
	}
}

// renewable reports whether s, past its ReuseWindow, may be renewed for a
// waiter here (renewScript) rather than given back and polled for: within
// renewLimit windows of being taken, while no back-off is known and the
// fleet was not over the ceiling. Call with mu held.
func (l *Limiter) renewable(s *slot, now time.Time) bool {
	return now.Before(s.renewUntil) && !now.Before(l.backoffUntil) && !l.over
}

// renew runs renewScript for s, which counts in inUse and which a caller
// waiting here wants: with no other process waiting, Redis keeps it for a
// new ReuseWindow and it goes to the first waiter (or idle, if none is
// left), and renew reports true. Otherwise s is gone from Redis and still
// counts in inUse: the caller untracks it.
//
// Without it a busy process gave each slot back as its window ended and
// its waiters polled for it again, up to PollInterval later: about 2 % of
// a 16-slot budget idle (issue #14's twilio-16 benchmark).
func (l *Limiter) renew(ctx context.Context, s *slot) bool {
	sent := time.Now()
	r, err := l.run(ctx, renewScript, []any{l.cfg.MaxInFlight, l.ttl.Milliseconds(), l.cfg.Recovery.Milliseconds(), l.id, s.holder})
	if err != nil {
		// The script may have run, or not: make sure the slot is gone.
		if rmErr := l.remove(ctx, []string{s.holder}); rmErr != nil && l.cfg.OnReleaseError != nil {
			l.cfg.OnReleaseError(fmt.Errorf("ratelimit: release slot on %s (it frees itself within %v): %w", l.cfg.Key, l.ttl, errors.Join(err, rmErr)))
		}
		return false
	}
	l.mu.Lock()
	if r.code != replyLost {
		mine := l.inUse + len(l.idle)
		if r.code != replyTaken {
			mine-- // the script gave s back
		}
		l.learn(r, sent, mine)
	}
	if r.code != replyTaken {
		l.mu.Unlock()
		return false
	}
	now := time.Now()
	if now.Before(l.backoffUntil) {
		// Backoff was called here while the script ran: the slot must not
		// carry a request.
		l.giveBack(s.holder)
		l.mu.Unlock()
		l.flush(ctx)
		return false
	}
	s.reuseUntil = sent.Add(l.reuseFor())
	l.handOut(s, false, now)
	flush := l.inUse == 0 && len(l.returns) > 0
	l.mu.Unlock()
	if flush {
		l.flushAll(ctx)
	}
	return true
}

// reuseFor is how long after it is taken a slot may be passed on: from
// half to all of ReuseWindow, drawn per slot, so that the slots a batch
// took do not all go back to Redis, and move to other processes, at once.
func (l *Limiter) reuseFor() time.Duration {
	half := l.cfg.ReuseWindow / 2
	if half <= 0 {
		return l.cfg.ReuseWindow
	}
	return l.cfg.ReuseWindow - half + mrand.N(half+1)
}

// handOut gives s, which counts in inUse, to the first waiter, or parks
// it. Call with mu held.
func (l *Limiter) handOut(s *slot, fresh bool, now time.Time) {
	if len(l.queue) > 0 {
		l.grant(s, fresh, now)
		return
	}
	l.inUse--
	l.park(s, now)
	l.untrack0()
}

// grant gives s to the first waiter and wakes the next one, whose turn to
// poll it is. Call with mu held.
func (l *Limiter) grant(s *slot, fresh bool, now time.Time) {
	w := l.queue[0]
	l.queue[0] = nil
	l.queue = l.queue[1:]
	w.slot, w.fresh = s, fresh || l.trusted(now)
	signal(w.wake)
	l.wakeHead()
}

// park keeps s idle if it may carry another request and some request of
// this Limiter is in flight, or queues it to go back to Redis. Call with
// mu held.
func (l *Limiter) park(s *slot, now time.Time) {
	if l.inUse > 0 && l.reusable(s, now) {
		s.idleSince = now
		l.idle = append(l.idle, s)
		l.armTimer()
		return
	}
	l.giveBack(s.holder)
}

// untrack records that a slot counted in inUse is gone, and reports
// whether the caller must flushAll. Call with mu held.
func (l *Limiter) untrack() bool {
	l.inUse--
	return l.untrack0()
}

// untrack0 reports whether inUse is 0, and if so sends every idle slot
// back with the returns: the caller must then flushAll. Call with mu held.
func (l *Limiter) untrack0() bool {
	if l.inUse > 0 {
		return false
	}
	l.dropIdle()
	if l.timerSet && l.timer.Stop() {
		l.timerSet = false
	}
	return true
}

// leave takes w out of the queue. Call with mu held.
func (l *Limiter) leave(w *waiter) {
	for i, q := range l.queue {
		if q == w {
			l.queue = append(l.queue[:i], l.queue[i+1:]...)
			if i == 0 {
				l.wakeHead()
			}
			return
		}
	}
}

// wakeHead wakes the first waiter, so it polls when its turn comes. Call
// with mu held.
func (l *Limiter) wakeHead() {
	if len(l.queue) > 0 {
		signal(l.queue[0].wake)
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// popIdle returns the most recently idle slot that may carry a request,
// sending back those that may not. Call with mu held.
func (l *Limiter) popIdle(now time.Time) *slot {
	for len(l.idle) > 0 {
		s := l.idle[len(l.idle)-1]
		l.idle = l.idle[:len(l.idle)-1]
		if l.reusable(s, now) {
			return s
		}
		l.giveBack(s.holder)
	}
	return nil
}

// reusable reports whether s may carry a request that starts now: within
// its ReuseWindow, while no back-off is known and the fleet was not over
// the ceiling. Call with mu held.
func (l *Limiter) reusable(s *slot, now time.Time) bool {
	return now.Before(s.reuseUntil) && !now.Before(l.backoffUntil) && !l.over
}

// trusted reports whether a reusable slot may carry a request without
// confirmScript: with no rate bound (each request spends one) and while
// the last word from Redis is fresh. Call with mu held.
func (l *Limiter) trusted(now time.Time) bool {
	return l.limit.Rate == 0 && now.Before(l.freshUntil)
}

// learn records what a reply sent at sent said of the fleet; mine is how
// many of the live slots it counts should be this Limiter's. A reply sent
// before the Limiter's last Backoff or Refused may only make it more
// careful: it is older news than theirs. Call with mu held.
func (l *Limiter) learn(r reply, sent time.Time, mine int) {
	over := r.live > r.ceiling
	if !sent.Before(l.signalAt) {
		// Twice the mean poll interval: a saturated Limiter polls once per
		// interval, drawn from half to one and a half times it.
		l.freshUntil = sent.Add(2 * l.cfg.PollInterval)
		l.over = over
	} else if over {
		l.over = true
	}
	if r.code != replyBackedOff && r.live < int64(mine) {
		// Redis counts fewer slots than this Limiter holds: it lost some
		// (a failover that dropped writes). Pass none on unconfirmed, so
		// confirm drops those Redis no longer has.
		l.freshUntil = time.Time{}
	}
	if r.code == replyBackedOff {
		// Redis never shortens a back-off, nor does the Limiter.
		if until := time.Now().Add(time.Duration(r.arg) * time.Millisecond); until.After(l.backoffUntil) {
			l.backoffUntil = until
		}
	}
	if l.over || r.code == replyBackedOff {
		l.dropIdle()
	}
}

// msUntil is the milliseconds from now to t, rounded up.
func msUntil(t, now time.Time) int64 {
	return int64((t.Sub(now) + time.Millisecond - 1) / time.Millisecond)
}

// dropIdle sends every idle slot back. Call with mu held.
func (l *Limiter) dropIdle() {
	for _, s := range l.idle {
		l.giveBack(s.holder)
	}
	clear(l.idle)
	l.idle = l.idle[:0]
}

// giveBack queues holder to go back to Redis within idleHold. Call with mu
// held.
func (l *Limiter) giveBack(holder string) {
	l.returns = append(l.returns, holder)
	l.armTimer()
}

// armTimer makes sweep run within idleHold. Call with mu held.
func (l *Limiter) armTimer() {
	if l.timerSet {
		return
	}
	l.timerSet = true
	if l.timer == nil {
		l.timer = time.AfterFunc(l.idleHold, l.sweep)
	} else {
		l.timer.Reset(l.idleHold)
	}
}

// sweep sends back the slots idle for idleHold or past their ReuseWindow,
// and everything queued to go back.
func (l *Limiter) sweep() {
	l.mu.Lock()
	l.timerSet = false
	now := time.Now()
	kept := l.idle[:0]
	for _, s := range l.idle {
		if now.Sub(s.idleSince) < l.idleHold && l.reusable(s, now) {
			kept = append(kept, s)
		} else {
			l.returns = append(l.returns, s.holder)
		}
	}
	clear(l.idle[len(kept):])
	l.idle = kept
	if len(l.idle) > 0 {
		l.armTimer()
	}
	l.mu.Unlock()
	l.flush(context.Background())
}

// takeReturns hands the queued returns to a round trip that will give
// them back; doneReturns must follow. Call with mu held.
func (l *Limiter) takeReturns() []string {
	back := l.returns
	l.returns = nil
	if len(back) > 0 {
		l.carrying++
	}
	return back
}

// doneReturns records that the round trip given back has ended. Call
// with mu held.
func (l *Limiter) doneReturns(back []string) {
	if len(back) > 0 {
		l.carrying--
		if l.carrying == 0 {
			l.returned.Broadcast()
		}
	}
}

// flush gives back the queued returns in one ZREM.
func (l *Limiter) flush(ctx context.Context) {
	l.mu.Lock()
	back := l.takeReturns()
	l.mu.Unlock()
	if len(back) == 0 {
		return
	}
	err := l.remove(ctx, back)
	l.mu.Lock()
	l.doneReturns(back)
	l.mu.Unlock()
	if err != nil && l.cfg.OnReleaseError != nil {
		l.cfg.OnReleaseError(fmt.Errorf("ratelimit: release slot on %s (it frees itself within %v): %w", l.cfg.Key, l.ttl, err))
	}
}

// flushAll gives back the queued returns and waits for every other round
// trip giving back slots: once it returns, Redis holds none of the slots
// this Limiter gave up.
func (l *Limiter) flushAll(ctx context.Context) {
	l.flush(ctx)
	l.mu.Lock()
	for l.carrying > 0 {
		l.returned.Wait()
	}
	l.mu.Unlock()
}

// Backoff records that the account was told to slow down (HTTP 429,
// Twilio error 20429): no process's Acquire hands out a slot until d has
// passed by Redis's clock. A back-off already in force that ends later is
// kept. d is capped at MaxBackoff; d <= 0 records nothing. Requests
// already in flight are not affected.
func (l *Limiter) Backoff(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	d = min(d, l.cfg.MaxBackoff)
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if err := backoffScript.Run(ctx, l.rdb, []string{l.keys[1]}, int64(ms)).Err(); err != nil {
		return fmt.Errorf("ratelimit: record back-off of %v on %s: %w", d, l.cfg.Key, err)
	}
	// This process knows at once; the others at their next poll or
	// confirm, within twice PollInterval.
	l.mu.Lock()
	now := time.Now()
	if until := now.Add(d); until.After(l.backoffUntil) {
		l.backoffUntil = until
	}
	l.signalAt = now
	l.dropIdle()
	l.mu.Unlock()
	return nil
}

// Refused records that Twilio refused a request for the account's
// concurrency (HTTP 429, Twilio error 20429): its real limit is below the
// slots Acquire hands out. It lowers the ceiling every process's Acquire
// keeps to: to the slots held now for requests in flight (the requests
// Twilio was serving when it refused; this Limiter's idle slots are given
// back first), at least one below the ceiling in force, never below 1. The
// ceiling then rises by one slot every Config.Recovery, back to
// MaxInFlight. Without it the fleet would send MaxInFlight requests after
// every back-off and have most of them refused.
func (l *Limiter) Refused(ctx context.Context) error {
	// What Twilio was serving is the slots in use: the idle ones, and
	// those queued to go back (Backoff queues the idle ones), go back in
	// the same script, before it counts.
	l.mu.Lock()
	l.dropIdle()
	back := l.takeReturns()
	l.mu.Unlock()
	args := []any{l.cfg.MaxInFlight, l.cfg.Recovery.Milliseconds(), rand.Text()}
	for _, h := range back {
		args = append(args, h)
	}
	err := refusedScript.Run(ctx, l.rdb, []string{l.slotsKey, l.keys[2]}, args...).Err()
	if err != nil {
		err = errors.Join(err, l.remove(ctx, back))
	}
	l.mu.Lock()
	l.doneReturns(back)
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("ratelimit: lower the ceiling on %s: %w", l.cfg.Key, err)
	}
	// The next slot passed on asks Redis first, and is given back if the
	// fleet is over the new ceiling.
	l.mu.Lock()
	l.freshUntil = time.Time{}
	l.signalAt = time.Now()
	l.mu.Unlock()
	return nil
}

// Stats reports how many slots are held now across every process (in use,
// or kept idle by a process for its next request, for a PollInterval or
// two), and when the back-off in force ends (the zero Time if none is), by
// Redis's clock. It is meant for metrics and tests.
func (l *Limiter) Stats(ctx context.Context) (inFlight int, backoffUntil time.Time, err error) {
	vals, err := statsScript.Run(ctx, l.rdb, []string{l.slotsKey, l.keys[1]}).Int64Slice()
	if err == nil && len(vals) != 3 {
		err = fmt.Errorf("unexpected reply %v from Redis script", vals)
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("ratelimit: read stats of %s: %w", l.cfg.Key, err)
	}
	if vals[1] > 0 {
		backoffUntil = time.UnixMilli(vals[1])
	}
	return int(vals[0]), backoffUntil, nil
}

// reply is what takeScript and confirmScript answer.
type reply struct {
	code, arg, live, ceiling int64
}

// rateArgs are the rate bound's arguments to the scripts: burst, rate
// (0 for none) and period in seconds, as redis_rate passes them.
func (l *Limiter) rateArgs() []any {
	return []any{l.limit.Burst, l.limit.Rate, l.limit.Period.Seconds()}
}

// take runs takeScript once, for one slot per holder.
func (l *Limiter) take(ctx context.Context, holders []string) (reply, error) {
	args := append([]any{l.cfg.MaxInFlight, l.ttl.Milliseconds(), l.cfg.Recovery.Milliseconds()}, l.rateArgs()...)
	// A mark lasts two poll intervals: a waiting process polls at least
	// every one and a half.
	args = append(args, l.id, max(1, (2*l.cfg.PollInterval).Milliseconds()))
	for _, h := range holders {
		args = append(args, h)
	}
	return l.run(ctx, takeScript, args)
}

// check runs confirmScript once for holder, giving back the holders in
// back on the way.
func (l *Limiter) check(ctx context.Context, holder string, back []string) (reply, error) {
	args := append([]any{l.cfg.MaxInFlight, l.cfg.Recovery.Milliseconds()}, l.rateArgs()...)
	holdTTL := (l.cfg.HoldTTL + time.Millisecond - 1) / time.Millisecond
	args = append(args, int64(holdTTL), holder)
	for _, h := range back {
		args = append(args, h)
	}
	return l.run(ctx, confirmScript, args)
}

func (l *Limiter) run(ctx context.Context, script *redis.Script, args []any) (reply, error) {
	ctx, cancel := detached(ctx)
	defer cancel()
	vals, err := script.Run(ctx, l.rdb, l.keys, args...).Int64Slice()
	if err != nil {
		return reply{}, err
	}
	if len(vals) != 4 || vals[0] < replyFull || vals[0] > replyLost {
		return reply{}, fmt.Errorf("unexpected reply %v from Redis script", vals)
	}
	return reply{code: vals[0], arg: vals[1], live: vals[2], ceiling: vals[3]}, nil
}

// remove gives back the holders' slots, those they still have.
func (l *Limiter) remove(ctx context.Context, holders []string) error {
	if len(holders) == 0 {
		return nil
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	members := make([]any, len(holders))
	for i, h := range holders {
		members[i] = h
	}
	return l.rdb.ZRem(ctx, l.slotsKey, members...).Err()
}

// releaser returns the release function for s.
func (l *Limiter) releaser(ctx context.Context, s *slot) func() {
	var once sync.Once
	return func() { once.Do(func() { l.putBack(ctx, s) }) }
}

// wait sleeps for d or until ctx ends.
func (l *Limiter) wait(ctx context.Context, reason string, d time.Duration) error {
	if l.onWait != nil {
		l.onWait(reason, d)
	}
	return sleep.For(ctx, d)
}

func (l *Limiter) acquireErr(step string, err error) error {
	return fmt.Errorf("ratelimit: acquire on %s: %s: %w", l.cfg.Key, step, err)
}

// detached returns a context that keeps ctx's values but not its
// cancellation, bounded by opTimeout.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
}
