// Command worker is a mediasync worker: it applies the database migrations,
// then runs the Asynq server that executes runs' tasks until SIGTERM or
// SIGINT. Start as many as one machine cannot handle alone, on the same
// Redis, Postgres and archive: they share the work and the Twilio limits.
//
// Configuration comes from the environment (see README.md); the only flags
// override it for a quick try.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mediasync/mediasync/internal/config"
	"github.com/mediasync/mediasync/internal/logging"
	"github.com/mediasync/mediasync/internal/version"
	"github.com/mediasync/mediasync/internal/worker"
)

func main() {
	os.Exit(run())
}

func run() int {
	logging.Setup()
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	concurrency := fs.Int("concurrency", 0, "tasks run at once by this worker (overrides WORKER_CONCURRENCY)")
	httpAddr := fs.String("http", "", "address of /livez, /readyz and /metrics, e.g. :9090 (overrides HTTP_ADDR)")
	pprofAddr := fs.String("pprof", "", "loopback address to serve net/http/pprof on, e.g. 127.0.0.1:6060 (overrides MEDIASYNC_PPROF_ADDR)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: worker [flags]\n\nRuns a mediasync worker. Configuration is read from the environment: see README.md.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		version.Print(os.Stdout, "worker")
		return 0
	}
	cfg, err := config.FromEnv(config.Need{TwilioCredentials: true, Archive: true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker: configuration:\n%v\n", err)
		return 2
	}
	if *concurrency > 0 {
		cfg.Concurrency = *concurrency
	}
	if *httpAddr != "" {
		cfg.HTTPAddr = *httpAddr
	}
	if *pprofAddr != "" {
		if err := config.CheckPprofAddr(*pprofAddr); err != nil {
			fmt.Fprintf(os.Stderr, "worker: -pprof %v\n", err)
			return 2
		}
		cfg.PprofAddr = *pprofAddr
	}
	log := logging.New(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := worker.Run(ctx, cfg, log); err != nil {
		log.Error().Err(err).Msg("worker stopped")
		return 1
	}
	return 0
}
