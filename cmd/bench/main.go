package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mediasync/mediasync/internal/devtools"
	"github.com/mediasync/mediasync/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// options are the program's flags.
type options struct {
	scenarios    []string
	quick        bool
	media        int
	largeMiB     int
	plot         string
	sweep        []int
	redisArchive bool
	workDir      string
	keep         bool
	bin          string
	versitygw    string
	redisBin     string
	pg           string
	timeout      time.Duration
	pprofAddr    string
	version      bool
	s3HTTP       bool
	s3CAEnv      bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: bench [flags]

Runs mediasync's real pipeline (twilio-emulator → worker → versitygw, with
Postgres and a private Redis) on generated data, and beside it the bare copy
(download and PUT, nothing else), and prints a table of figures with the
targets they meet or miss. See docs/benchmarks.md.

Flags:
`)
		fs.PrintDefaults()
	}
	scenarios := fs.String("scenarios", strings.ReplaceAll(kindNames(), " ", ""), "comma-separated `list` of scenarios: "+kindNames())
	fs.BoolVar(&o.quick, "quick", false, "a short smoke version of every scenario (about 1-2 minutes)")
	fs.IntVar(&o.media, "media", 0, "media per scenario, overriding the default or -quick size (redis: the smaller run)")
	fs.IntVar(&o.largeMiB, "large-mib", 0, "size of each large file in MiB, overriding the default (100) or -quick size (50)")
	fs.StringVar(&o.plot, "plot", "", "also run the small scenario at each -sweep concurrency and write an SVG plot of throughput to this `file`")
	sweep := fs.String("sweep", "4,8,16,32", "worker concurrencies of the -plot sweep")
	fs.BoolVar(&o.redisArchive, "redis-archive", false, "archive every media in the redis scenario's runs (about 10 minutes on 2 cores) instead of --dry-run (list and count only)")
	fs.StringVar(&o.workDir, "workdir", "", "work `directory` for logs, spool and S3 data (default: a new temporary directory)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (logs) and the scenarios' databases at the end")
	fs.StringVar(&o.bin, "bin", "", "`directory` holding worker, enqueue and twilio-emulator already built (default: go build them)")
	fs.StringVar(&o.versitygw, "versitygw", "", "versitygw `binary` (default: $VERSITYGW, then .tools/bin/versitygw, then PATH)")
	fs.StringVar(&o.redisBin, "redis-server", "redis-server", "redis-server `binary`")
	fs.StringVar(&o.pg, "pg", cmp.Or(os.Getenv("BENCH_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"Postgres `URL` to create the scenarios' databases through ($BENCH_DATABASE_URL)")
	fs.DurationVar(&o.timeout, "timeout", 40*time.Minute, "stop everything after this long")
	fs.BoolVar(&o.s3HTTP, "s3-http", false, "run the S3 server over plain http instead of TLS (the workers then spool large media: the fallback)")
	fs.BoolVar(&o.s3CAEnv, "s3-ca-env", false, "make workers trust the S3 server's certificate through AWS_CA_BUNDLE instead of ARCHIVE_URL ca_bundle= (for -bin programs built before ca_bundle)")
	fs.StringVar(&o.pprofAddr, "worker-pprof", "", "serve the worker's net/http/pprof on this loopback `address` (MEDIASYNC_PPROF_ADDR)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errUsage
	}
	if o.version {
		return o, nil
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return nil, errUsage
	}
	for _, s := range strings.Split(*scenarios, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.scenarios = append(o.scenarios, s)
		}
	}
	for _, s := range strings.Split(*sweep, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "bench: -sweep %q: want positive integers\n", *sweep)
			return nil, errUsage
		}
		o.sweep = append(o.sweep, n)
	}
	if o.media < 0 || o.largeMiB < 0 {
		fmt.Fprintln(stderr, "bench: -media and -large-mib must be positive")
		return nil, errUsage
	}
	return o, nil
}

// bench is one benchmark run.
type bench struct {
	lab        *lab
	progress   io.Writer
	began      time.Time
	runTimeout time.Duration
	workerEnv  []string
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "[%6.1fs] %s\n", time.Since(b.began).Seconds(), fmt.Sprintf(format, args...))
}

// run is the program: flags, the lab, the scenarios, the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.version {
		version.Print(stdout, "bench")
		return nil
	}
	sizes := defaultSizes
	if o.quick {
		sizes = quickSizes
	}
	if o.media > 0 {
		sizes.small, sizes.mix, sizes.large, sizes.twilio, sizes.redis, sizes.export = o.media, o.media, o.media, o.media, o.media, o.media
		sizes.conv = o.media
	}
	if o.largeMiB > 0 {
		sizes.largeSize, sizes.convSize = int64(o.largeMiB)<<20, int64(o.largeMiB)<<20
	}
	scenarios, err := scenariosFor(o.scenarios, sizes, kindOptions{redisArchive: o.redisArchive})
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	root, err := devtools.RepoRoot()
	if err != nil && o.bin == "" {
		return fmt.Errorf("%w: run from the repository or give -bin", err)
	}
	vgw := o.versitygw
	if vgw == "" {
		if vgw, err = devtools.VersityGW(); err != nil {
			return err
		}
	}
	redisBin, err := exec.LookPath(o.redisBin)
	if err != nil {
		return fmt.Errorf("-redis-server: %w", err)
	}
	dir := o.workDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mediasync-bench-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}

	host := machine() // before the benchmark loads it
	b := &bench{progress: stderr, began: time.Now(), runTimeout: 15 * time.Minute}
	if o.pprofAddr != "" {
		b.workerEnv = append(b.workerEnv, "MEDIASYNC_PPROF_ADDR="+o.pprofAddr)
	}
	b.logf("building the programs and starting versitygw over %s (work directory %s)", map[bool]string{false: "TLS", true: "plain http"}[o.s3HTTP], dir)
	b.lab, err = newLab(ctx, labConfig{root: root, dir: dir, bin: o.bin, versitygw: vgw, redisBin: redisBin, pgAdmin: o.pg, keep: o.keep,
		s3HTTP: o.s3HTTP, s3CAEnv: o.s3CAEnv})
	if err != nil {
		return err
	}
	defer b.lab.close()

	var outcomes []outcome
	for _, sc := range scenarios {
		out, err := b.runScenario(ctx, sc)
		if err != nil {
			return fmt.Errorf("scenario %s: %w (logs in %s; -keep keeps them)", sc.name, err, dir)
		}
		outcomes = append(outcomes, out)
	}
	var sweep []outcome
	if o.plot != "" {
		for _, c := range o.sweep {
			sc := smallScenario(sizes.small, c)
			sc.name = "sweep-" + strconv.Itoa(c)
			out, err := b.runScenario(ctx, sc)
			if err != nil {
				return fmt.Errorf("scenario %s: %w", sc.name, err)
			}
			sweep = append(sweep, out)
		}
	}

	report(stdout, host, outcomes, sweep)
	if o.plot != "" {
		if err := writePlot(o.plot, host, sweep); err != nil {
			return err
		}
		b.logf("wrote %s", o.plot)
	}
	return nil
}

// syncDisks flushes dirty pages before a timed phase, so that one phase's
// writes are not paid for during the next.
func syncDisks() { syscall.Sync() }
