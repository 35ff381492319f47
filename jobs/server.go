package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// ServerConfig sizes a worker.
type ServerConfig struct {
	Queues      Queues
	Concurrency int
	// ShutdownTimeout is how long a stopping worker lets tasks finish
	// before handing them back to the queue unchanged.
	ShutdownTimeout time.Duration
	Log             zerolog.Logger
}

// NewServer returns the Asynq server of one worker process, on a shared
// Redis client. Media work is always served before listing work (strict
// priority), so a run archives what it found before finding more: a
// message lists up to 10 media, and with listing served by weight alone
// (it was 6:3) the media queue grew with the run, 70 000 tasks and 75 MB
// of Redis at 100 000 media.
//
// An idle worker looks for new tasks every taskCheckInterval rather than
// asynq's default second: each step of a run queues the next (run, page,
// message, media), so with the default a run waited up to a second per step
// whenever the queues had drained, about four seconds before its first
// media was archived and again at every lull of a small run.
func NewServer(rdb redis.UniversalClient, c ServerConfig) *asynq.Server {
	log := c.Log
	return asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:       c.Concurrency,
		Queues:            map[string]int{c.Queues.Media: 2, c.Queues.List: 1},
		StrictPriority:    true,
		TaskCheckInterval: taskCheckInterval,
		// Tasks paused with a RetryLaterError (a page waiting on the
		// backlog, Twilio's 429) are moved back to their queue on this
		// tick; asynq's default of 5 s would add up to 5 s to every pause.
		DelayedTaskCheckInterval: time.Second,
		IsFailure:                IsFailure,
		RetryDelayFunc:           RetryDelay,
		ShutdownTimeout:          c.ShutdownTimeout,
		Logger:                   asynqLogger{log},
		LogLevel:                 asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			var rl *RetryLaterError
			if errors.As(err, &rl) {
				log.Debug().Str("task_type", t.Type()).Str("reason", rl.Reason).Dur("retry_in", rl.After).Msg("task paused")
				return
			}
			id, _ := asynq.GetTaskID(ctx)
			n, _ := asynq.GetRetryCount(ctx)
			ev := log.Warn()
			if isPermanent(err) {
				ev = log.Error()
			}
			ev.Err(err).Str("task_type", t.Type()).Str("task_id", id).Int("retry", n).Msg("task failed")
		}),
	})
}

// taskCheckInterval is how often an idle worker polls Redis for tasks;
// asynq sleeps between ½ and 1½ of it after finding its queues empty,
// with no way to be woken. A run's first steps each wait out one such
// sleep (start → page → the first message tasks): at 100 ms, 0.3 s of
// the 100-in-flight benchmark's 6.8 s run passed before its first media
// list was asked for (88 % of Twilio's bound; 91 % at 25 ms). At 25 ms
// an idle worker makes about 80 cheap script calls a second (two
// queues) against 21, and spends 1.9 % of a core on them against 0.7 %
// (measured on the benchmark machine): a negligible load on Redis even
// for a fleet, for each step of every run started as soon as it is
// queued.
const taskCheckInterval = 25 * time.Millisecond

// Logging is a middleware that gives each task a logger with its type and
// id, and logs slow or failed handling at debug level.
func Logging(log zerolog.Logger) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			id, _ := asynq.GetTaskID(ctx)
			l := log.With().Str("task_type", t.Type()).Str("task_id", id).Logger()
			start := time.Now()
			err := next.ProcessTask(l.WithContext(ctx), t)
			l.Debug().Dur("duration", time.Since(start)).AnErr("error", err).Msg("task handled")
			return err
		})
	}
}

// GrowStack is a middleware that grows each task's goroutine stack once,
// up front (see growStack). Register it first, so it runs while the stack
// is shallow.
func GrowStack(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		_ = growStack()
		return next.ProcessTask(ctx, t)
	})
}

// growStack grows the calling goroutine's stack to 64 KiB at once, while
// it is still shallow. asynq runs each task on a new goroutine, whose
// stack starts at a few KiB; the S3 SDK's and pgx's call chains need tens
// of KiB, and the runtime doubled it there, deep in the task, copying the
// whole stack and adjusting every frame each time: 10 % of the worker's CPU
// on small media (pprof: runtime.newstack under copyMedia). One growth
// up front copies a handful of frames instead. (CockroachDB's growstack
// package does the same for the same reason.)
//
// The array is too large to live in registers, so it takes its room in
// the frame; noinline keeps the frame (and the growth) where it is called.
//
//go:noinline
func growStack() byte {
	var buf [32 << 10]byte
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = byte(i)
	}
	return buf[len(buf)-4096]
}

// asynqLogger sends asynq's own log lines through zerolog.
type asynqLogger struct{ l zerolog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug().Msg(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info().Msg(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn().Msg(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error().Msg(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Fatal().Msg(fmt.Sprint(args...)) }
