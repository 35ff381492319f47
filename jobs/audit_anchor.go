package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mediasync/mediasync/archive"
)

// AnchorLoop writes the head of the audit log to the archive every
// interval, and soon after a run ends, until ctx ends (see
// archive.AuditAnchor). Across a fleet, a Redis lock held while writing
// lets one worker at a time do it; writing the same head twice is harmless
// anyway (same key, create-only store), and a head already anchored by
// this worker is not written again.
func (h *Handlers) AnchorLoop(ctx context.Context, rdb redis.UniversalClient, lockKey string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last archive.AuditAnchor
	for {
		ok, err := rdb.SetNX(ctx, lockKey, "1", time.Minute).Result()
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			h.log.Warn().Err(err).Msg("audit anchor: lock")
		case ok:
			a, err := h.anchorAudit(ctx, last)
			if err != nil && ctx.Err() == nil {
				h.log.Warn().Err(err).Msg("audit anchor")
			} else if err == nil {
				last = a
			}
			_ = rdb.Del(context.WithoutCancel(ctx), lockKey).Err()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.anchorNow:
		}
	}
}

// anchorAudit anchors the log unless its head is still last.
func (h *Handlers) anchorAudit(ctx context.Context, last archive.AuditAnchor) (archive.AuditAnchor, error) {
	a, written, err := h.catalog.AnchorAudit(ctx, archive.AnchorTarget{
		Store: h.store, Prefix: h.prefix, AccountSID: h.twilio.AccountSID(),
		LockMode: h.objectLock, Retention: h.retention,
	}, time.Now(), last)
	if err != nil || !written {
		return last, err
	}
	h.log.Debug().Int64("head_id", a.HeadID).Msg("audit log anchored in the archive")
	return a, nil
}

// requestAnchor asks AnchorLoop to anchor soon, without waiting.
func (h *Handlers) requestAnchor() {
	select {
	case h.anchorNow <- struct{}{}:
	default:
	}
}
