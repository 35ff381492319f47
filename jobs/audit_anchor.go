package jobs

import (
	"bytes"
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/internal/objects"
)

// AnchorMinGap is the least time between two anchors across a fleet (see
// AnchorLoop): a fleet finishing many small runs writes one Object-Locked
// anchor a minute at most, not one a run.
const AnchorMinGap = time.Minute

// AnchorLoop writes the head of the audit log to the archive at start, every
// interval, and soon after a run ends, until ctx ends (see
// objects.AuditAnchor); each pass has Deps.PassTimeout to finish.
//
// Anchors are at least minGap apart across a fleet: a Redis key is the lock
// while one worker writes and, once an anchor is written, stays for minGap.
// A run that ends within minGap of the last anchor waits for the next slot
// (requests are coalesced, not dropped: one anchor of the newest head then
// covers them all). A head that has not moved is not anchored again, and a
// pass that writes nothing frees the slot at once. Writing the same head
// twice is harmless anyway (same key, create-only store).
func (h *Handlers) AnchorLoop(ctx context.Context, rdb redis.UniversalClient, lockKey string, interval, minGap time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last objects.AuditAnchor
	due := true               // an anchor is asked for (at start: yes)
	var slot <-chan time.Time // fires when the next slot opens, while due waits for it
	for {
		if due && slot == nil {
			if wait := h.anchorPass(ctx, rdb, lockKey, minGap, &last); wait > 0 {
				slot = time.After(wait)
			} else {
				due = false
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			due = true
		case <-h.anchorNow:
			due = true
		case <-slot:
			slot = nil
		}
	}
}

// anchorPass anchors the log unless its head is still *last (then updated),
// within one pass deadline, if the fleet's slot is free. It returns how long
// until the slot may be free when it was not (0: the pass is done, whether
// it wrote an anchor, had nothing new to anchor or failed).
func (h *Handlers) anchorPass(ctx context.Context, rdb redis.UniversalClient, lockKey string, minGap time.Duration, last *objects.AuditAnchor) time.Duration {
	// A pass has a deadline: a Postgres, Redis or S3 that stops answering
	// fails this pass, not every pass after it.
	pctx, cancel := context.WithTimeout(ctx, h.passTimeout)
	defer cancel()
	// The lock outlives the pass (which ends by its deadline), so no two
	// workers write at once; a worker that dies holding it delays anchoring
	// by passTimeout+minGap at most.
	ok, err := rdb.SetNX(pctx, lockKey, "1", h.passTimeout+minGap).Result()
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn().Err(err).Msg("audit anchor: lock")
		}
		return max(minGap, time.Second) // the request stands: try again later
	}
	if !ok {
		ttl, err := rdb.PTTL(pctx, lockKey).Result()
		switch {
		case err != nil:
			if ctx.Err() == nil {
				h.log.Warn().Err(err).Msg("audit anchor: lock")
			}
			return max(minGap, time.Second)
		case ttl <= 0: // gone since (or, never, without an expiry)
			return min(max(minGap, time.Millisecond), 50*time.Millisecond)
		}
		// Past minGap the key is another worker's lock, freed or turned
		// into the slot when its pass ends: look again by then.
		return min(ttl, max(minGap, time.Millisecond))
	}
	written, err := h.anchorAudit(pctx, last)
	if err != nil && ctx.Err() == nil {
		h.log.Warn().Err(err).Msg("audit anchor")
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer rcancel()
	if written && minGap > 0 {
		err = rdb.PExpire(rctx, lockKey, minGap).Err() // the slot opens minGap after this anchor
	} else {
		err = rdb.Del(rctx, lockKey).Err() // nothing written: the slot is free
	}
	if err != nil {
		h.log.Warn().Err(err).Msg("audit anchor: unlock")
	}
	return 0
}

// anchorAudit anchors the log unless its head is still *last, and says
// whether it wrote an anchor.
func (h *Handlers) anchorAudit(ctx context.Context, last *objects.AuditAnchor) (bool, error) {
	a, ok, err := h.catalog.AuditHead(ctx)
	if err != nil || !ok || (a.HeadID == last.HeadID && bytes.Equal(a.HeadHash, last.HeadHash)) {
		return false, err
	}
	a.At = time.Now().UTC().Truncate(time.Second)
	err = archive.WriteAuditAnchor(ctx, archive.AnchorTarget{
		Store: h.store, Prefix: h.prefix, AccountSID: h.twilio.AccountSID(),
		LockMode: h.objectLock, Retention: h.retention,
	}, a)
	if err != nil {
		return false, err
	}
	*last = a
	h.log.Debug().Int64("head_id", a.HeadID).Msg("audit log anchored in the archive")
	return true, nil
}

// requestAnchor asks AnchorLoop to anchor soon, without waiting.
func (h *Handlers) requestAnchor() {
	select {
	case h.anchorNow <- struct{}{}:
	default:
	}
}
