package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/mediasync/mediasync/catalog"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// reconcilePass is what one Reconcile pass found and did, logged in one
// line, so that a run that stops moving says why: no run of this fleet, work
// not stale yet, tasks waiting, running, backing off or paused in Redis, or
// work queued again. It travels in the pass's context (withPass), so each
// step of the pass counts what it sees without a parameter for it.
type reconcilePass struct {
	runs, otherFleet, notStale int
	messages, media            int // stale in Postgres
	tasks                      RequeueTally
}

type passKey struct{}

func withPass(ctx context.Context, p *reconcilePass) context.Context {
	return context.WithValue(ctx, passKey{}, p)
}

// passOf returns the pass ctx belongs to, or nil outside a pass.
func passOf(ctx context.Context) *reconcilePass {
	p, _ := ctx.Value(passKey{}).(*reconcilePass)
	return p
}

func (p *reconcilePass) log(ev *zerolog.Event) {
	ev = ev.Int("runs", p.runs).Int("other_fleet", p.otherFleet).Int("queued_runs_not_stale", p.notStale).
		Int("stale_messages", p.messages).Int("stale_media", p.media)
	for o, n := range p.tasks.N {
		ev = ev.Int("tasks_"+RequeueOutcome(o).String(), n)
	}
	if p.tasks.Longest > 0 {
		ev = ev.Str("longest_wait", p.tasks.Longest.Round(time.Second).String())
	}
	ev.Msg("reconcile pass")
}

// Reconcile queues again, from Postgres, the work of unfinished runs that
// has not moved for `stale`: tasks lost when Redis restarted without its
// data, or when a worker died between a commit and an enqueue. Task IDs
// make a task that is still queued a no-op, and handlers check their rows,
// so reconciling too often costs little and never duplicates work.
//
// One run's failure or slowness does not starve the others: each run gets
// its share of what is left of ctx's deadline, a run that fails is logged
// and the next one reconciled, and each pass starts one run further along,
// so a run that always times out is not always first. It returns the
// runs' errors joined.
//
// Each pass that goes through with an unfinished run logs one line at info:
// what it found (stale messages and media, each task's state in Redis, the
// longest backoff or pause left) and what it skipped and why.
func (h *Handlers) Reconcile(ctx context.Context, stale time.Duration) (err error) {
	pass := &reconcilePass{}
	ctx = withPass(ctx, pass)
	runs, err := h.catalog.UnfinishedRuns(ctx)
	if err != nil {
		return err
	}
	cutoff := time.Now().Add(-stale)
	defer func() {
		if err != nil || len(runs) == 0 {
			return // a failed pass is logged, with its error, by the loop
		}
		pass.runs = len(runs)
		for _, run := range runs {
			switch {
			case run.AccountSID != h.twilio.AccountSID():
				pass.otherFleet++
			case run.State == catalog.RunQueued && !run.CreatedAt.Before(cutoff):
				pass.notStale++
			}
		}
		pass.log(h.log.Info())
	}()
	var errs []error
	start := 0
	if len(runs) > 0 {
		start = int((h.reconcileStart.Add(1) - 1) % uint64(len(runs)))
	}
	for i := range runs {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		run := runs[(start+i)%len(runs)]
		if run.AccountSID != h.twilio.AccountSID() {
			continue // another fleet's run
		}
		rctx, cancel := shareOf(ctx, len(runs)-i)
		err := h.reconcileRun(rctx, run, cutoff)
		cancel()
		if err != nil {
			h.log.Warn().Err(err).Str("run_id", run.ID.String()).Msg("reconcile run")
			errs = append(errs, fmt.Errorf("run %s: %w", run.ID, err))
		}
	}
	return errors.Join(errs...)
}

// shareOf returns ctx bounded to a 1/n share of what is left of its
// deadline (at least minShare), so n tasks each get a turn.
func shareOf(ctx context.Context, n int) (context.Context, context.CancelFunc) {
	const minShare = time.Second
	dl, ok := ctx.Deadline()
	if !ok || n <= 1 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, max(time.Until(dl)/time.Duration(n), minShare))
}

// reconcileRun queues again the lost work of one unfinished run.
func (h *Handlers) reconcileRun(ctx context.Context, run catalog.Run, cutoff time.Time) error {
	if run.State == catalog.RunQueued {
		if run.CreatedAt.Before(cutoff) {
			return h.enqueuer.RequeueIn(ctx)(NewStartRunTask(h.queues, run.ID))
		}
		return nil
	}
	switch run.Kind {
	case catalog.KindExport:
		return h.reconcileExport(ctx, run, cutoff)
	case catalog.KindRestore:
		return h.reconcileRestore(ctx, run, cutoff)
	}
	if run.Kind == catalog.KindVerify {
		return h.reconcileVerify(ctx, run, cutoff)
	}
	// Only released windows have a page task to lose; the rest are
	// released as listing advances.
	if err := h.queueWindows(ctx, run, h.enqueuer.RequeueIn(ctx)); err != nil {
		return err
	}
	if run.Source == catalog.SourceConversations {
		if err := h.requeueConversations(ctx, run, cutoff); err != nil {
			return err
		}
	}
	if err := h.requeue(ctx, run, cutoff); err != nil {
		return err
	}
	return h.finish(ctx, run.ID)
}

// requeue queues a message task for each of a run's messages whose
// outstanding work (media to list, archive or delete) was last touched
// before cutoff, up to RequeueBatch messages to list and the messages of
// twice as many media.
func (h *Handlers) requeue(ctx context.Context, run catalog.Run, cutoff time.Time) error {
	work, err := h.catalog.StaleWork(ctx, run.ID, cutoff, h.requeueBatch)
	if err != nil {
		return err
	}
	enqueue := h.enqueuer.RequeueIn(ctx)
	for _, p := range staleTasks(run.ID, work) {
		if err := enqueue(newMessageTask(h.queues, run, p)); err != nil {
			return err
		}
	}
	if err := h.catalog.Touch(ctx, run.ID, work); err != nil {
		return err
	}
	if p := passOf(ctx); p != nil {
		p.messages += len(work.Messages)
		p.media += len(work.Media)
	} else if n := len(work.Messages); n > 0 {
		h.log.Info().Str("run_id", run.ID.String()).Int("queued", n).Msg("queued outstanding work")
	}
	return nil
}

// staleTasks are the message tasks that queue stale work again: a message
// a page queued in a batch goes under its batch's task ID (its first
// message's), with the batch's other stale messages, so that it is not
// queued twice while that task still waits or runs; the others, each its
// own. A batch's first message may be done: its task then does nothing
// for it.
func staleTasks(run uuid.UUID, work catalog.StaleWork) []ArchiveMessagePayload {
	var out []ArchiveMessagePayload
	at := map[string]int{} // batch's first message → its index in out
	for i, sid := range work.Messages {
		task := sid
		if i < len(work.Tasks) && work.Tasks[i] != "" {
			task = work.Tasks[i]
		}
		j, ok := at[task]
		if ok && sid != task && len(out[j].More) == maxMessagesPerTask-1 {
			// More than a batch names this task (not queued so by a
			// page): the rest go on their own.
			out = append(out, ArchiveMessagePayload{RunID: run, MessageSID: sid})
			continue
		}
		if !ok {
			j, at[task] = len(out), len(out)
			out = append(out, ArchiveMessagePayload{RunID: run, MessageSID: task})
		}
		if sid != task {
			out[j].More = append(out[j].More, sid)
		}
	}
	return out
}

// ReconcileLoop runs Reconcile and SyncLegalHolds every interval until ctx
// ends, each pass within Deps.PassTimeout: three quarters of it for the
// runs, the rest for S3 legal holds, each with its own deadline so slow runs
// never leave the holds none. Across a fleet, a Redis lock lets one worker
// at a time do it.
func (h *Handlers) ReconcileLoop(ctx context.Context, rdb redis.UniversalClient, lockKey string, interval, stale time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	// The lock outlives the longest pass, so no two workers pass at once
	// (two syncing the same S3 legal holds would do every PUT twice), and
	// is deleted when the pass ends; a worker that dies holding it delays
	// reconciliation by one pass timeout at most.
	ttl := h.passTimeout + time.Second
	runsBudget := h.passTimeout * 3 / 4
	for {
		h.reconcilePass(ctx, rdb, lockKey, ttl, runsBudget, stale)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// unlockScript deletes a lock only if it still holds this pass's token: one
// that expired and was taken by another worker is left alone.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

func (h *Handlers) reconcilePass(ctx context.Context, rdb redis.UniversalClient, lockKey string, ttl, runsBudget, stale time.Duration) {
	// A pass has a deadline: a Postgres, Redis or S3 that stops answering
	// fails this pass, not every pass after it.
	lctx, cancel := context.WithTimeout(ctx, h.passTimeout)
	defer cancel()
	token := uuid.NewString()
	ok, err := rdb.SetNX(lctx, lockKey, token, ttl).Result()
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn().Err(err).Msg("reconcile: lock")
		}
		return
	}
	if !ok {
		return
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := unlockScript.Run(uctx, rdb, []string{lockKey}, token).Err(); err != nil && ctx.Err() == nil {
			h.log.Warn().Err(err).Msg("reconcile: unlock")
		}
	}()
	rctx, rcancel := context.WithTimeout(lctx, runsBudget)
	err = h.Reconcile(rctx, stale)
	rcancel()
	if err != nil && ctx.Err() == nil {
		h.log.Warn().Err(err).Msg("reconcile")
	}
	if err := h.SyncLegalHolds(lctx, h.requeueBatch); err != nil && ctx.Err() == nil {
		h.log.Warn().Err(err).Msg("reconcile: S3 legal holds")
	}
}
