// Package worker assembles a mediasync worker from its configuration: the
// Postgres catalog (migrated at start unless MEDIASYNC_MIGRATE=false), the
// archive store, the Twilio client behind the account-wide limiter, and the
// Asynq server running jobs.
// cmd/worker runs it; end-to-end tests run it in-process.
package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/config"
	"github.com/mediasync/mediasync/internal/metrics"
	"github.com/mediasync/mediasync/internal/objects"
	"github.com/mediasync/mediasync/internal/ratelimit"
	"github.com/mediasync/mediasync/internal/rediskeys"
	"github.com/mediasync/mediasync/internal/sleep"
	"github.com/mediasync/mediasync/jobs"
	"github.com/mediasync/mediasync/twilio"
)

// Run runs a worker until ctx ends: migrations, the Asynq server, the
// reconcile, schedule and audit-anchor loops, and (when cfg.HTTPAddr and
// cfg.PprofAddr are set) the /livez, /readyz and /metrics endpoint and
// pprof. When ctx ends, /readyz answers 503 while tasks in flight finish.
// On return, tasks in flight have finished or gone back to the queue
// unchanged, and every loop and endpoint it started has ended.
//
// A worker asked to stop while it is still starting (waiting for Postgres,
// migrating) stops without an error: the stop was asked for, so a
// supervisor should not see a failed start.
func Run(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	err := run(ctx, cfg, log)
	if err != nil && ctx.Err() != nil {
		log.Info().AnErr("start", err).Msg("worker stopped before it started")
		return nil
	}
	return err
}

func run(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	// The pprof address is taken first, so a busy one fails the start
	// before anything else is opened.
	var pprofLn net.Listener
	if cfg.PprofAddr != "" {
		l, err := net.Listen("tcp", cfg.PprofAddr)
		if err != nil {
			return fmt.Errorf("MEDIASYNC_PPROF_ADDR: %w", err)
		}
		defer l.Close() // for the returns before it is served; Shutdown closes it too
		pprofLn = l
	}
	now := func() time.Time { return time.Now().Add(cfg.ClockOffset) }
	pcfg, err := poolConfig(cfg.DatabaseURL, cfg.Concurrency)
	if err != nil {
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer pool.Close()
	if err := waitFor(ctx, "postgres", log, func(ctx context.Context) error { return pool.Ping(ctx) }); err != nil {
		return err
	}
	if cfg.Migrate {
		applied, err := catalog.Migrate(ctx, pool)
		if err != nil {
			return err
		}
		log.Info().Strs("applied", applied).Msg("database schema up to date")
	} else if err := catalog.CheckSchema(ctx, pool); err != nil {
		return err
	}

	ropt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return errors.New("REDIS_URL: cannot parse")
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	if err := waitFor(ctx, "redis", log, func(ctx context.Context) error { return rdb.Ping(ctx).Err() }); err != nil {
		return err
	}

	store, prefix, err := archive.OpenStore(ctx, cfg.ArchiveURL)
	if err != nil {
		return err
	}
	keys := rediskeys.Namespace(cfg.Namespace) // every Redis key of the deployment
	m := metrics.New()
	limiter, err := ratelimit.New(rdb, ratelimit.Config{
		Key:         keys.TwilioLimiter(cfg.Twilio.AccountSID),
		MaxInFlight: cfg.Twilio.MaxConcurrency,
		PerSecond:   cfg.Twilio.MaxRPS,
	})
	if err != nil {
		return err
	}
	tw, err := newTwilio(cfg, limiter, m, log)
	if err != nil {
		return err
	}

	legalHolds := false
	if lh, ok := store.(archive.LegalHolder); ok {
		if legalHolds, err = lh.LegalHoldSupported(ctx); err != nil {
			return err
		}
	}
	if cfg.ObjectLock != "" && !legalHolds {
		loc := store.Location()
		return fmt.Errorf("ARCHIVE_OBJECT_LOCK=%s, but %s %q does not have S3 Object Lock enabled: create the bucket with Object Lock, or unset ARCHIVE_OBJECT_LOCK",
			cfg.ObjectLock, loc.Kind, loc.Bucket)
	}
	queues := jobs.QueuesFor(cfg.Namespace)
	enq := jobs.NewEnqueuer(rdb, queues)
	h, err := jobs.NewHandlers(jobs.Deps{
		Catalog: catalog.NewCatalog(pool), Twilio: tw, Store: store, Prefix: prefix,
		Queues: queues, Enqueuer: enq, Log: log, SpoolDir: cfg.SpoolDir,
		Now:        now,
		LegalHolds: legalHolds,
		ObjectLock: objects.LockMode(cfg.ObjectLock), Retention: cfg.Retention,
		TwilioRetention: cfg.Twilio.Retention,
		Metrics:         m,
	})
	if err != nil {
		return err
	}
	// The web UI is made before anything starts, so its failure returns
	// with nothing to stop.
	var ui http.Handler
	if cfg.HTTPAddr != "" {
		var closeUI func()
		if ui, closeUI, err = uiHandler(cfg, catalog.NewCatalog(pool), now, log); err != nil {
			return err
		}
		defer closeUI()
	} else if cfg.UIToken != "" {
		log.Warn().Msg("web UI off: MEDIASYNC_UI_TOKEN is set but HTTP_ADDR is not")
	}
	srv := jobs.NewServer(rdb, jobs.ServerConfig{
		Queues: queues, Concurrency: cfg.Concurrency, ShutdownTimeout: cfg.ShutdownTimeout, Log: log,
	})
	mux := asynq.NewServeMux()
	mux.Use(jobs.GrowStack, m.TaskDuration, jobs.Logging(log))
	jobs.Register(mux, h)
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("asynq server: %w", err)
	}
	log.Info().Int("concurrency", cfg.Concurrency).Str("queue", queues.Media).
		Str("archive", store.Location().Kind+":"+store.Location().Bucket).Msg("worker started")

	// Everything started from here runs in g, and Run waits for g before it
	// returns and its deferred closes of the Redis client and the pool run:
	// no loop or endpoint outlives the connections it uses.
	var g errgroup.Group
	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	g.Go(func() error {
		h.ReconcileLoop(loopCtx, rdb, keys.ReconcileLock(), 30*time.Second, time.Minute)
		return nil
	})
	// Every worker runs the policy scheduler: the database lets exactly one
	// of them start each tick, so no worker is special and any may die.
	g.Go(func() error { h.ScheduleLoop(loopCtx, time.Second); return nil })
	g.Go(func() error {
		h.AnchorLoop(loopCtx, rdb, keys.AuditAnchorLock(), 5*time.Minute, jobs.AnchorMinGap)
		return nil
	})
	if cfg.ClockOffset != 0 {
		log.Warn().Dur("offset", cfg.ClockOffset).Msg("MEDIASYNC_CLOCK_OFFSET shifts policy ticks: for tests and drills only")
	}

	var servers []*http.Server
	hc := &health{probes: []probe{
		{"postgres", func(ctx context.Context) error { return pool.Ping(ctx) }},
		{"redis", func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
		{"store", storeProbe(store, prefix)},
	}}
	if cfg.HTTPAddr != "" {
		m.Register(m.CatalogCollector(catalog.NewCatalog(pool), cfg.Twilio.AccountSID, cfg.Twilio.Retention, now),
			m.QueueCollector(asynq.NewInspectorFromRedisClient(rdb), queues.Media, queues.List))
		httpSrv := &http.Server{Addr: cfg.HTTPAddr, Handler: hc.handler(m.Handler(), ui), ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, httpSrv)
		g.Go(func() error {
			if err := httpSrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error().Err(err).Msg("health endpoint")
			}
			return nil
		})
	}
	if pprofLn != nil {
		pprofSrv := pprofServer()
		servers = append(servers, pprofSrv)
		g.Go(func() error {
			if err := pprofSrv.Serve(pprofLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error().Err(err).Msg("pprof endpoint")
			}
			return nil
		})
		log.Warn().Str("addr", pprofLn.Addr().String()).Msg("serving net/http/pprof: for profiling only")
	}

	<-ctx.Done()
	hc.draining.Store(true) // /readyz: 503 from here on; /livez and /metrics still serve
	log.Info().Dur("shutdown_timeout", cfg.ShutdownTimeout).Msg("stopping: finishing tasks in flight")
	stopLoops()
	srv.Stop()     // take no new tasks
	srv.Shutdown() // wait for those in flight; past the timeout, they go back to the queue
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	_ = g.Wait() // the loops end at their next check of loopCtx; the servers have returned
	log.Info().Msg("worker stopped")
	return nil
}

// poolConfig is the worker's pool: a connection per task, up to
// maxTaskConns, plus a few for the loops, unless DATABASE_URL sets
// pool_max_conns. No task holds a connection while it waits on Twilio, S3
// or the limiter, and many tasks wait on Twilio at once: past maxTaskConns
// they share connections (waiting briefly for one) rather than pass
// Postgres's max_connections with a fleet of workers, failing with "too
// many clients".
func poolConfig(databaseURL string, concurrency int) (*pgxpool.Config, error) {
	const maxTaskConns = 24
	return catalog.PoolConfig(databaseURL, int32(min(concurrency, maxTaskConns)+4), "mediasync-worker")
}

func newTwilio(c config.Config, l *ratelimit.Limiter, m *metrics.Metrics, log zerolog.Logger) (*twilio.Client, error) {
	fleet := &ratelimit.FleetBackoff{Limiter: l, OnError: func(err error) {
		log.Warn().Err(err).Msg("twilio: could not share a 429 with the fleet")
	}}
	opts := []twilio.Option{
		twilio.WithBaseURL(c.Twilio.APIURL), twilio.WithConversationsURL(c.Twilio.ConversationsURL),
		twilio.WithMCSURL(c.Twilio.MCSURL), twilio.WithLimiter(m.TimeLimiter(fleet)),
		twilio.WithRequestObserver(m.TwilioRequest),
	}
	if c.Twilio.APIKey != "" {
		opts = append(opts, twilio.WithAPIKey(c.Twilio.APIKey, c.Twilio.APISecret))
	} else {
		opts = append(opts, twilio.WithAuthToken(c.Twilio.AuthToken))
	}
	opts = append(opts, twilio.WithRetryHook(func(e twilio.RetryEvent) {
		log.Debug().Str("method", e.Method).Str("path", e.Path).Int("status", e.Status).
			Int("attempt", e.Attempt).Dur("wait", e.Wait).Str("reason", e.Reason).Msg("twilio: retry")
		fleet.OnRetry(e)
	}))
	return twilio.New(c.Twilio.AccountSID, opts...)
}

// waitFor retries check until it passes or ctx ends, so a worker started
// alongside its database (docker compose) waits instead of crashing.
func waitFor(ctx context.Context, what string, log zerolog.Logger, check func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := check(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if attempt == 30 || ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		log.Warn().Err(err).Msgf("waiting for %s", what)
		if err := sleep.For(ctx, time.Second); err != nil {
			return err
		}
	}
}
