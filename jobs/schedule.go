package jobs

import (
	"context"
	"time"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/schedule"
)

// ScheduleOnce starts the runs of every policy whose latest tick has not
// started one. Policies are read from Postgres each time, so changes take
// effect without a restart. However many workers call it at once, each tick
// starts exactly one run: archive.StartPolicyRun decides under a row lock
// and a unique index.
func (h *Handlers) ScheduleOnce(ctx context.Context, now time.Time) error {
	policies, err := h.catalog.Policies(ctx, h.twilio.AccountSID())
	if err != nil {
		return err
	}
	for _, p := range policies {
		s, err := schedule.Parse(p.Schedule)
		if err != nil {
			h.log.Error().Err(err).Str("policy", p.Name).Msg("policy has a bad schedule; skipped")
			continue
		}
		after := p.LastTick
		if after.IsZero() {
			after = p.CreatedAt.Add(-time.Nanosecond) // a tick at creation counts
		}
		tick := s.Latest(after, now)
		if tick.IsZero() {
			continue
		}
		run, created, err := h.catalog.StartPolicyRun(ctx, p.Name, tick, false, "policy:"+p.Name)
		if err != nil {
			return err
		}
		if !created {
			continue
		}
		if err := h.enqueuer.In(ctx)(NewStartRunTask(h.queues, run.ID)); err != nil {
			// The reconciler starts queued runs it finds, so this is late,
			// not lost.
			return err
		}
		h.log.Info().Str("policy", p.Name).Time("tick", tick).Str("run_id", run.ID.String()).
			Time("since", run.Since).Time("until", run.Until).Msg("policy run started")
	}
	return nil
}

// ScheduleLoop runs ScheduleOnce every interval until ctx ends, each pass
// within Deps.PassTimeout, and checks each policy against Twilio's purge
// once an hour.
func (h *Handlers) ScheduleLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	warned := map[string]bool{}
	var lastHealth time.Time
	for {
		now := h.now()
		// A pass has a deadline: a Postgres or Redis that stops answering
		// fails this pass, not every tick after it.
		pctx, cancel := context.WithTimeout(ctx, h.passTimeout)
		if err := h.ScheduleOnce(pctx, now); err != nil && ctx.Err() == nil {
			h.log.Warn().Err(err).Msg("schedule")
		}
		if now.Sub(lastHealth) >= time.Hour {
			h.checkPurge(pctx, now, warned)
			lastHealth = now
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkPurge logs, once per policy and process, a warning when media are
// not archived and close to Twilio's purge: past the window's Warning age
// (TWILIO_RETENTION_DAYS; 365 days on the default 400).
func (h *Handlers) checkPurge(ctx context.Context, now time.Time, warned map[string]bool) {
	policies, err := h.catalog.Policies(ctx, h.twilio.AccountSID())
	if err != nil {
		return
	}
	for _, p := range policies {
		if p.Kind == catalog.PolicyVerify {
			continue // archives nothing: its watermark never moves
		}
		hl, err := h.catalog.PolicyHealth(ctx, p, now)
		if err != nil {
			continue
		}
		oldest := time.Duration(0)
		if !hl.OldestUnsaved.IsZero() {
			oldest = now.Sub(hl.OldestUnsaved)
		}
		warn := h.twilioKeeps.Warning()
		if (hl.WatermarkAge > warn || oldest > warn) && !warned[p.Name] {
			warned[p.Name] = true
			h.log.Warn().Str("policy", p.Name).Dur("watermark_age", hl.WatermarkAge).
				Dur("oldest_unarchived_age", oldest).Int("unarchived", hl.OldestUnsavedN).
				Int("twilio_retention_days", h.twilioKeeps.Days()).
				Msgf("media older than %.0f days are not archived: Twilio deletes messages and media after %s (TWILIO_RETENTION_DAYS)",
					warn.Hours()/24, h.twilioKeeps)
		}
	}
}
