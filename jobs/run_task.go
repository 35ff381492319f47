package jobs

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/catalog"
)

// runPayload is the payload of a task that is a step of a run.
type runPayload interface {
	validate() error
	run() uuid.UUID
}

// runLoader is a payload whose step reads its own row with its run, in the
// same round trip (a message task: its message's state); loadRun keeps it
// in the payload for the work.
type runLoader interface {
	loadRun(ctx context.Context, c *catalog.Catalog) (catalog.Run, error)
}

// runStep is the one shape of every step of a run, so each task type's
// file holds only its work:
//
//  1. decode the payload (a corrupt one is rejected once: asynq.SkipRetry);
//  2. before, if any (run:start moves its run to running here);
//  3. is the run live, and of this worker's account? A finished run's task
//     has nothing left to do;
//  4. work;
//  5. end the run if this step was its last: after work that succeeded, or
//     that failed for good (it recorded the failure: nothing of it is left
//     to do). Work that will be retried is not the last. An export and a
//     restore end in their own last step (catalog.FinishExport,
//     catalog.FinishRestore), not here.
func runStep[P runPayload](h *Handlers, before func(context.Context, P) error,
	work func(context.Context, catalog.Run, P) error) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		p, err := decode[P](t)
		if err != nil {
			return err
		}
		if before != nil {
			if err := before(ctx, p); err != nil {
				return err
			}
		}
		get := h.catalog.GetRun
		if l, ok := any(&p).(runLoader); ok {
			get = func(ctx context.Context, _ uuid.UUID) (catalog.Run, error) { return l.loadRun(ctx, h.catalog) }
		}
		run, live, err := h.liveRunFrom(ctx, p.run(), get)
		if !live {
			return err
		}
		err = work(ctx, run, p)
		if run.Kind != catalog.KindExport && run.Kind != catalog.KindRestore && (err == nil || isPermanent(err)) {
			if ferr := h.finish(ctx, run.ID); ferr != nil {
				return errors.Join(err, ferr)
			}
		}
		return err
	}
}
