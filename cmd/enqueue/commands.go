package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/config"
	"github.com/mediasync/mediasync/internal/retention"
	"github.com/mediasync/mediasync/jobs"
	"github.com/mediasync/mediasync/twilio"
)

type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	actor          string
	// asJSON is status --json: the status printed as one JSON document.
	asJSON bool

	// pollInterval is how often --wait reads progress.
	pollInterval time.Duration
	// twilioKeeps is TWILIO_RETENTION_DAYS, read with the configuration.
	twilioKeeps retention.Window
}

type runFlags struct {
	delete, dryRun, wait, noBodies bool
	from, to                       string
}

func (a *app) backfillCmd() *cobra.Command {
	var since, until, source string
	var services []string
	var f runFlags
	cmd := &cobra.Command{
		Use:   "backfill [--source messaging|conversations [--service IS…]] --since YYYY-MM-DD --until YYYY-MM-DD [--delete] [--dry-run] [--no-bodies] [--wait]",
		Short: "Archive every media of messages sent (Conversations: created) in [since, until), UTC days",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := parseRunDay("--since", since)
			if err != nil {
				return err
			}
			u, err := parseRunDay("--until", until)
			if err != nil {
				return err
			}
			if !s.Before(u) {
				return usagef("--since %s must be before --until %s (until is exclusive)", since, until)
			}
			if err := f.check(); err != nil {
				return err
			}
			switch source {
			case catalog.SourceMessaging:
				if len(services) > 0 {
					return usagef("--service %q is for --source conversations only", services[0])
				}
			case catalog.SourceConversations:
				if f.from != "" || f.to != "" {
					return usagef("--from and --to filter Messaging only: Conversations has no such filter")
				}
				if f.noBodies {
					return usagef("--no-bodies is for --source messaging only, for now: Conversations records keep their body")
				}
				for _, sv := range services {
					if !twilio.ValidServiceSID(sv) {
						return usagef("--service %q is not a Conversations service SID (IS followed by 32 hex digits)", sv)
					}
				}
				services = slices.Compact(slices.Sorted(slices.Values(services)))
			default:
				return usagef("--source %q: want messaging or conversations", source)
			}
			return a.submit(cmd.Context(), catalog.RunSpec{
				Kind: catalog.KindBackfill, Source: source, Services: services, Since: s, Until: u, From: f.from, To: f.to,
				Delete: f.delete, DryRun: f.dryRun, NoBodies: f.noBodies,
			}, f.wait)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "first UTC day to archive, inclusive (YYYY-MM-DD)")
	cmd.Flags().StringVar(&until, "until", "", "UTC day to stop before, exclusive (YYYY-MM-DD)")
	cmd.Flags().StringVar(&f.from, "from", "", "only messages from this number (Twilio's From filter)")
	cmd.Flags().StringVar(&f.to, "to", "", "only messages to this number (Twilio's To filter)")
	cmd.Flags().StringVar(&source, "source", catalog.SourceMessaging, "what to archive: messaging (Programmable Messaging media) or conversations (Conversations media, in MCS)")
	cmd.Flags().StringSliceVar(&services, "service", nil, "conversations: a Conversations service SID (IS…) to archive, repeatable; default: the account's default service")
	f.register(cmd)
	_ = cmd.MarkFlagRequired("since")
	_ = cmd.MarkFlagRequired("until")
	return cmd
}

func (a *app) messageCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "message <MessageSid> [--delete] [--dry-run] [--no-bodies] [--wait]",
		Short: "Archive the media of one message",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sid := args[0]
			if !twilio.ValidMessageSID(sid) {
				return usagef("message SID %q is not valid (SM or MM followed by 32 hex digits)", sid)
			}
			if err := f.check(); err != nil {
				return err
			}
			return a.submit(cmd.Context(), catalog.RunSpec{
				Kind: catalog.KindMessage, MessageSID: sid, Delete: f.delete, DryRun: f.dryRun, NoBodies: f.noBodies,
			}, f.wait)
		},
	}
	f.register(cmd)
	return cmd
}

func (f *runFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.delete, "delete", false, "delete each media from Twilio once its archived copy is verified")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "list and count only: archive and delete nothing")
	cmd.Flags().BoolVar(&f.noBodies, "no-bodies", false, "archive each message's record without its body")
	cmd.Flags().BoolVar(&f.wait, "wait", false, "follow the run until it ends; exit 1 if any media failed")
}

func (f *runFlags) check() error {
	if f.delete && f.dryRun {
		return usagef("--delete and --dry-run exclude each other")
	}
	for _, n := range []struct{ flag, v string }{{"--from", f.from}, {"--to", f.to}} {
		if n.v != "" && !catalog.ValidNumber(n.v) {
			return usagef("%s %q is not a phone number in E.164 form (+ then 8-15 digits) or a channel address like whatsapp:+15550100", n.flag, n.v)
		}
	}
	return nil
}

func (a *app) statusCmd() *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "status <run-id> [--wait] [--json]",
		Short: "Show a run's progress",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := uuid.Parse(args[0])
			if err != nil {
				return usagef("run id %q is not a run id (a UUID printed by backfill or message)", args[0])
			}
			return a.withEnv(cmd.Context(), false, func(env *env) error {
				if wait {
					return a.wait(cmd.Context(), env.catalog, id)
				}
				st, err := env.catalog.RunStatus(cmd.Context(), id)
				if errors.Is(err, catalog.ErrRunNotFound) {
					return usagef("no run %s", id)
				}
				if err != nil {
					return err
				}
				if err := a.printStatus(cmd.Context(), env.catalog, st); err != nil {
					return err
				}
				if a.asJSON {
					return nil
				}
				return a.presigned(cmd.Context(), st)
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the run until it ends; exit 1 if any media failed")
	cmd.Flags().BoolVar(&a.asJSON, "json", false, "the status as one JSON document (with --wait: once the run ends)")
	return cmd
}

// submit records the run, queues its start, prints its id, and follows it
// with --wait.
func (a *app) submit(ctx context.Context, spec catalog.RunSpec, wait bool) error {
	env, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	defer env.close()
	spec.AccountSID = env.cfg.Twilio.AccountSID
	spec.Actor = a.actorName()
	if spec.Kind == catalog.KindBackfill {
		warnPastRetention(a.stderr, spec, env.cfg.Twilio.Retention, time.Now())
	}
	run, err := env.catalog.CreateRun(ctx, spec)
	if err != nil {
		return err
	}
	return a.startAndWait(ctx, env, run.ID, wait)
}

// startAndWait queues the start of a run just recorded, prints its id and,
// with wait, follows it to its end.
func (a *app) startAndWait(ctx context.Context, env *env, id uuid.UUID, wait bool) error {
	if err := env.enqueuer.In(ctx)(jobs.NewStartRunTask(env.queues, id)); err != nil {
		// The run exists but nothing will start it: say so in its row.
		_ = env.catalog.FailRun(context.WithoutCancel(ctx), id, "could not enqueue: "+err.Error())
		return err
	}
	return a.printAndWait(ctx, env, id, wait)
}

// printAndWait prints a run's id and, with wait, follows it to its end.
func (a *app) printAndWait(ctx context.Context, env *env, id uuid.UUID, wait bool) error {
	fmt.Fprintln(a.stdout, id)
	if !wait {
		return nil
	}
	return a.wait(ctx, env.catalog, id)
}

type env struct {
	cfg      config.Config
	pool     *pgxpool.Pool
	rdb      *redis.Client
	catalog  *catalog.Catalog
	enqueuer *jobs.Enqueuer
	queues   jobs.Queues
}

func (e *env) close() {
	if e.rdb != nil {
		_ = e.rdb.Close()
	}
	e.pool.Close()
}

// connect reads the configuration and opens Postgres (migrating it, so the
// CLI works before any worker has started, unless MEDIASYNC_MIGRATE=false)
// and, to enqueue, Redis.
func (a *app) connect(ctx context.Context, withRedis bool) (*env, error) {
	cfg, pool, err := a.openDatabase(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.Migrate {
		_, err = catalog.Migrate(ctx, pool)
	} else {
		err = catalog.CheckSchema(ctx, pool)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	e := &env{cfg: cfg, pool: pool, catalog: catalog.NewCatalog(pool), queues: jobs.QueuesFor(cfg.Namespace)}
	if withRedis {
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			pool.Close()
			return nil, errors.New("redis: cannot parse REDIS_URL")
		}
		e.rdb = redis.NewClient(opt)
		if err := e.rdb.Ping(ctx).Err(); err != nil {
			e.close()
			return nil, fmt.Errorf("redis: %w", err)
		}
		e.enqueuer = jobs.NewEnqueuer(e.rdb, e.queues)
	}
	return e, nil
}

// openDatabase reads the configuration and opens Postgres.
func (a *app) openDatabase(ctx context.Context) (config.Config, *pgxpool.Pool, error) {
	cfg, err := config.Load(a.getenv, config.Need{})
	if err != nil {
		return cfg, nil, &usageError{"configuration: " + strings.ReplaceAll(err.Error(), "\n", "; ")}
	}
	a.twilioKeeps = cfg.Twilio.Retention
	// The worker's timeouts: a command waiting on a lock fails, naming it,
	// rather than hang.
	pcfg, err := catalog.PoolConfig(cfg.DatabaseURL, 0, "mediasync-enqueue")
	if err != nil {
		return cfg, nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return cfg, nil, errors.New("postgres: cannot parse DATABASE_URL")
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return cfg, nil, fmt.Errorf("postgres: %w", err)
	}
	return cfg, pool, nil
}

func (a *app) actorName() string {
	if a.actor != "" {
		return a.actor
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// parseDay parses a UTC day.
func parseDay(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, usagef("%s is required (YYYY-MM-DD)", flag)
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, usagef("%s %q is not a date like 2026-03-01", flag, v)
	}
	return t.UTC(), nil
}

// parseRunDay parses a UTC day that bounds what is listed or exported, and
// refuses one Twilio cannot have messages for (catalog.CheckDay).
func parseRunDay(flag, v string) (time.Time, error) {
	t, err := parseDay(flag, v)
	if err != nil {
		return t, err
	}
	if err := catalog.CheckDay(t, time.Now()); err != nil {
		return time.Time{}, usagef("%s %v", flag, err)
	}
	return t, nil
}

// withEnv connects to the services, runs fn, and closes them.
func (a *app) withEnv(ctx context.Context, withRedis bool, fn func(*env) error) error {
	env, err := a.connect(ctx, withRedis)
	if err != nil {
		return err
	}
	defer env.close()
	return fn(env)
}

func (a *app) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema up to date, and print the migrations applied",
		Long: `migrate applies mediasync's schema migrations, as workers do at start
unless MEDIASYNC_MIGRATE=false. Run it as the role that owns the schema when
workers connect as a role that may only read and write rows (see README.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, pool, err := a.openDatabase(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			applied, err := catalog.Migrate(cmd.Context(), pool)
			if err != nil {
				return err
			}
			for _, name := range applied {
				fmt.Fprintf(a.stdout, "applied %s\n", name)
			}
			fmt.Fprintln(a.stdout, "database schema up to date")
			return nil
		},
	}
}
