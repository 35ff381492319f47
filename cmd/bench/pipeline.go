package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mediasync/mediasync/internal/devtools"
)

// deployment is one scenario's mediasync: its emulator, Redis, database and
// bucket, and the environment workers and enqueue get.
type deployment struct {
	lab    *lab
	name   string
	emu    *emulator
	redis  *redisServer
	db     string // database name
	dbURL  string
	bucket string
	spool  string // the workers' MEDIASYNC_SPOOL_DIR
	env    []string
}

// deploy prepares a deployment around a running emulator. apiURL is what
// mediasync calls Twilio's API at (the emulator, or a proxy before it).
// worm deploys as a WORM archive is: a bucket with S3 Object Lock (so the
// worker keeps S3 legal holds in line with the holds), every object
// written under GOVERNANCE retention.
func (l *lab) deploy(ctx context.Context, name string, emu *emulator, apiURL string, worm bool) (*deployment, error) {
	d := &deployment{lab: l, name: name, emu: emu, db: "mediasync_bench_" + l.tag + "_" + name, bucket: "bench-" + name}
	var err error
	if d.redis, err = l.startRedis(ctx, name); err != nil {
		return nil, err
	}
	if d.dbURL, err = l.newDatabase(ctx, d.db); err != nil {
		d.close()
		return nil, fmt.Errorf("database %s: %w", d.db, err)
	}
	if err := l.newBucket(ctx, d.bucket, worm); err != nil {
		d.close()
		return nil, err
	}
	spool := filepath.Join(l.dir, "spool-"+name)
	d.spool = spool
	if err := os.MkdirAll(spool, 0o700); err != nil {
		d.close()
		return nil, err
	}
	d.env = append(baseEnv(),
		"TWILIO_ACCOUNT_SID="+emu.account,
		"TWILIO_AUTH_TOKEN="+emu.token,
		"TWILIO_API_URL="+apiURL,
		// Conversations and MCS are served by the same emulator.
		"TWILIO_CONVERSATIONS_URL="+emu.apiURL,
		"TWILIO_MCS_URL="+emu.apiURL,
		"DATABASE_URL="+d.dbURL,
		"REDIS_URL="+d.redis.url,
		"MEDIASYNC_NAMESPACE=bench",
		"ARCHIVE_URL="+l.s3ArchiveURL(d.bucket),
		"AWS_ACCESS_KEY_ID="+s3AccessKey,
		"AWS_SECRET_ACCESS_KEY="+s3SecretKey,
		"AWS_REGION="+s3Region,
		"MEDIASYNC_SPOOL_DIR="+spool,
		"LOG_FORMAT=json",
		"LOG_LEVEL=warn",
	)
	if worm {
		d.env = append(d.env, "ARCHIVE_OBJECT_LOCK=GOVERNANCE", "ARCHIVE_RETENTION=1d")
	}
	d.env = append(d.env, l.s3Env()...)
	return d, nil
}

// close removes what the deployment made, the bucket's bytes included.
func (d *deployment) close() {
	if d.redis != nil {
		d.redis.stop()
	}
	if !d.lab.keep {
		_ = d.lab.dropDatabase(d.db)
	}
	_ = d.lab.dropBucket(d.bucket)
}

// runSpec is one run of the pipeline.
type runSpec struct {
	since, until   string // UTC days, as enqueue backfill takes them
	workers        int
	concurrency    int // WORKER_CONCURRENCY of each worker
	twilioInFlight int // TWILIO_MAX_CONCURRENCY
	poolMaxConns   int // the worker's Postgres pool (pool_max_conns); 0: its default
	dryRun         bool
	delete         bool   // enqueue backfill --delete
	source         string // enqueue backfill --source; "" for Messaging
	// export, when set ("zip" or "dir"), runs `enqueue export` of the
	// same days in that format instead of the backfill: it measures
	// re-reading and packaging what an earlier run archived.
	export string
	// profileInFlight reads the emulator's request log after the run for
	// inFlightProfile (its log must be on: emulatorFlags).
	profileInFlight bool
	timeout         time.Duration
	extraEnv        []string // e.g. MEDIASYNC_PPROF_ADDR
}

// pipelineResult is what one run measured.
type pipelineResult struct {
	media, failed, messages int
	deleted                 int // media the run deleted from Twilio (--delete)
	bytes                   int64
	elapsed                 time.Duration // runs.created_at → runs.finished_at
	requests                int64         // Twilio API requests (signed-URL downloads excluded)
	rateLimited             int64         // 429 answers
	peakInFlight            int           // the most API requests the emulator served at once
	inFlightSeconds         float64       // the emulator's API requests in flight, integrated over the run
	inFlightTenths          []float64     // inFlightProfile in tenths of the run, when profiled
	cpu                     cpuUse        // user + system CPU of each part during the run
	peakRSS                 int64         // the largest worker VmHWM
	redisPeak               int64         // used_memory_peak of the scenario's Redis
	redisScripts            int64         // scripts the scenario's Redis ran during the run
	pgRows                  int64         // tup_inserted + tup_updated of the scenario's database
	spoolFiles              int64         // files the workers created in their spool directory
	pgXacts                 int64         // xact_commit + xact_rollback of the scenario's database
}

func (r pipelineResult) mediaPerSec() float64 { return perSec(float64(r.media), r.elapsed) }
func (r pipelineResult) mbPerSec() float64    { return perSec(float64(r.bytes)/1e6, r.elapsed) }
func (r pipelineResult) pgRowsPerSec() float64 {
	return perSec(float64(r.pgRows), r.elapsed)
}

// pgXactsPerMedia is Postgres transactions per media: each statement
// outside a transaction is one, a transaction of several statements one,
// so it is a floor on the round trips per media (and counts the bench's own
// polls of the run, a few per second).
func (r pipelineResult) pgXactsPerMedia() float64 {
	return ratioOf(float64(r.pgXacts), float64(r.media))
}

func perSec(n float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return n / d.Seconds()
}

var runIDPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// run starts the workers, enqueues a backfill, waits for it to finish and
// measures it.
func (d *deployment) run(ctx context.Context, spec runSpec) (pipelineResult, error) {
	var res pipelineResult
	conn, err := pgx.Connect(ctx, d.dbURL)
	if err != nil {
		return res, err
	}
	defer conn.Close(context.Background())

	workers, err := d.startWorkers(ctx, spec)
	defer func() {
		for _, w := range workers {
			w.stop(30 * time.Second)
		}
	}()
	if err != nil {
		return res, err
	}
	rows0, xacts0, err := d.pgRows(ctx, conn)
	if err != nil {
		return res, err
	}
	cpu0, err := d.cpuNow(ctx, conn, workers)
	if err != nil {
		return res, err
	}
	if err := d.emu.resetStats(ctx); err != nil {
		return res, err
	}
	scripts0, err := d.redis.scripts(ctx)
	if err != nil {
		return res, err
	}
	spool, err := watchSpool(d.spool)
	if err != nil {
		return res, err
	}
	defer spool.stop()
	sampler := startSampler(d.redis, workers)

	args := []string{"--actor", "bench", "backfill", "--since", spec.since, "--until", spec.until}
	if spec.dryRun {
		args = append(args, "--dry-run")
	}
	if spec.delete {
		args = append(args, "--delete")
	}
	if spec.source != "" {
		args = append(args, "--source", spec.source)
	}
	if spec.export != "" {
		args = []string{"--actor", "bench", "export", "--since", spec.since, "--until", spec.until,
			"--format", spec.export, "--out", d.lab.s3URLFor(d.bucket, "exports")}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(d.lab.bin, "enqueue"), args...)
	cmd.Env = d.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		sampler.stop()
		return res, fmt.Errorf("enqueue %v: %v\n%s", args, err, out)
	}
	runID := runIDPattern.FindString(string(out))
	if runID == "" {
		sampler.stop()
		return res, fmt.Errorf("enqueue printed no run id:\n%s", out)
	}

	var state string
	err = poll(ctx, spec.timeout, 50*time.Millisecond, func() (bool, error) {
		for _, w := range workers {
			if w.Exited() {
				return false, fmt.Errorf("worker exited (%v); log:\n%s", w.Err(), w.tail())
			}
		}
		err := conn.QueryRow(ctx, `SELECT state FROM runs WHERE id = $1`, runID).Scan(&state)
		return state == "succeeded" || state == "failed", err
	})
	peak := sampler.stop()
	res.spoolFiles = spool.stop()
	if err != nil {
		return res, fmt.Errorf("run %s: %w", runID, err)
	}
	cpu1, err := d.cpuNow(ctx, conn, workers)
	if err != nil {
		return res, err
	}
	res.cpu = cpuBetween(cpu0, cpu1)
	res.peakRSS = peak.rss
	for _, w := range workers {
		if _, hwm, err := memStatus(w.Pid()); err == nil {
			res.peakRSS = max(res.peakRSS, hwm)
		}
	}
	st, err := d.emu.stats(ctx)
	if err != nil {
		return res, err
	}
	res.requests, res.rateLimited = st.Requests, st.RateLimited
	res.peakInFlight = st.PeakInFlight[d.emu.account]
	res.inFlightSeconds = st.InFlightSeconds[d.emu.account]
	if spec.profileInFlight {
		log, err := d.emu.requests(ctx)
		if err != nil {
			return res, err
		}
		res.inFlightTenths = inFlightProfile(log, 10)
	}
	if _, res.redisPeak, err = d.redis.memory(ctx); err != nil {
		return res, err
	}
	res.redisPeak = max(res.redisPeak, peak.redis)
	scripts1, err := d.redis.scripts(ctx)
	if err != nil {
		return res, err
	}
	res.redisScripts = scripts1 - scripts0

	var secs float64
	progress := `
		SELECT extract(epoch FROM finished_at - created_at)::float8, messages_seen,
		       CASE WHEN dry_run THEN media_found ELSE media_archived END, media_failed, bytes_archived, media_deleted
		FROM run_progress WHERE run_id = $1`
	if spec.export != "" {
		// An export's media are its export_media rows: exported (and
		// re-verified) or failed, and the bytes it packaged.
		progress = `
			SELECT extract(epoch FROM r.finished_at - r.created_at)::float8,
			       (SELECT count(DISTINCT m.message_sid) FROM export_media x JOIN media m ON m.sid = x.media_sid WHERE x.run_id = r.id)::int,
			       (SELECT count(*) FROM export_media x WHERE x.run_id = r.id AND x.state = 'exported')::int,
			       (SELECT count(*) FROM export_media x WHERE x.run_id = r.id AND x.state = 'failed')::int,
			       (SELECT coalesce(sum(m.size_bytes), 0) FROM export_media x JOIN media m ON m.sid = x.media_sid
			        WHERE x.run_id = r.id AND x.state = 'exported')::bigint, 0::bigint
			FROM runs r WHERE r.id = $1`
	}
	err = conn.QueryRow(ctx, progress, runID).Scan(&secs, &res.messages, &res.media, &res.failed, &res.bytes, &res.deleted)
	if err != nil {
		return res, fmt.Errorf("run %s progress: %w", runID, err)
	}
	res.elapsed = time.Duration(secs * float64(time.Second))

	// Backends report their row counts when their transaction ends, at most
	// once a second, and when they exit: stop the workers, then read.
	for _, w := range workers {
		w.stop(30 * time.Second)
	}
	rows1, xacts1, err := d.settledPgRows(ctx, conn)
	if err != nil {
		return res, err
	}
	res.pgRows, res.pgXacts = rows1-rows0, xacts1-xacts0
	if state != "succeeded" && res.failed == 0 {
		return res, fmt.Errorf("run %s ended %s", runID, state)
	}
	return res, nil
}

func (d *deployment) startWorkers(ctx context.Context, spec runSpec) ([]*process, error) {
	var workers []*process
	for i := range max(spec.workers, 1) {
		port, err := devtools.FreeLoopbackPort()
		if err != nil {
			return workers, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		env := append(append([]string(nil), d.env...),
			"TWILIO_MAX_CONCURRENCY="+strconv.Itoa(spec.twilioInFlight),
			"HTTP_ADDR="+addr)
		if spec.concurrency > 0 { // else the worker's default
			env = append(env, "WORKER_CONCURRENCY="+strconv.Itoa(spec.concurrency))
		}
		if spec.poolMaxConns > 0 {
			env = append(env, "DATABASE_URL="+withQuery(d.dbURL, "pool_max_conns="+strconv.Itoa(spec.poolMaxConns)))
		}
		env = append(env, spec.extraEnv...)
		w, err := start("worker", filepath.Join(d.lab.dir, fmt.Sprintf("worker-%s-%d.log", d.name, i)), env,
			filepath.Join(d.lab.bin, "worker"))
		if err != nil {
			return workers, err
		}
		workers = append(workers, w)
		if err := w.waitHealthy(ctx, nil, "http://"+addr+"/healthz", time.Minute); err != nil {
			return workers, fmt.Errorf("worker: %w", err)
		}
	}
	return workers, nil
}

// cpuNow snapshots the CPU of every part of the deployment.
func (d *deployment) cpuNow(ctx context.Context, conn *pgx.Conn, workers []*process) (cpuSnapshot, error) {
	backends, err := backendPIDs(ctx, conn, d.db)
	if err != nil {
		return cpuSnapshot{}, err
	}
	parts := cpuParts{
		"postgres": backends,
		"redis":    {d.redis.proc.Pid()},
		"emulator": {d.emu.proc.Pid()},
		"s3":       {d.lab.s3.Pid()},
		"bench":    {os.Getpid()},
	}
	for _, w := range workers {
		parts["worker"] = append(parts["worker"], w.Pid())
	}
	return takeCPU(parts), nil
}

func (d *deployment) pgRows(ctx context.Context, conn *pgx.Conn) (rows, xacts int64, err error) {
	err = conn.QueryRow(ctx, `SELECT tup_inserted + tup_updated, xact_commit + xact_rollback
		FROM pg_stat_database WHERE datname = $1`, d.db).Scan(&rows, &xacts)
	return rows, xacts, err
}

// settledPgRows reads the row count until two reads a little apart agree,
// so that backends still exiting have reported theirs.
func (d *deployment) settledPgRows(ctx context.Context, conn *pgx.Conn) (int64, int64, error) {
	last := int64(-1)
	var n, x int64
	err := poll(ctx, 5*time.Second, 250*time.Millisecond, func() (bool, error) {
		var err error
		n, x, err = d.pgRows(ctx, conn)
		settled := n == last
		last = n
		return settled, err
	})
	if err != nil && !errors.Is(err, ctx.Err()) {
		return n, x, nil // still moving after 5 s: take the latest figure
	}
	return n, x, err
}

// sampler polls the workers' RSS and Redis's used_memory while a run goes.
type sampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	peak peaks
}

type peaks struct{ rss, redis int64 }

func startSampler(r *redisServer, workers []*process) *sampler {
	s := &sampler{done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			var p peaks
			for _, w := range workers {
				if rss, _, err := memStatus(w.Pid()); err == nil {
					p.rss = max(p.rss, rss)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if used, _, err := r.memory(ctx); err == nil {
				p.redis = used
			}
			cancel()
			s.mu.Lock()
			s.peak.rss, s.peak.redis = max(s.peak.rss, p.rss), max(s.peak.redis, p.redis)
			s.mu.Unlock()
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) stop() peaks {
	close(s.done)
	s.wg.Wait()
	return s.peak
}

// withQuery adds a query parameter to a URL.
func withQuery(u, kv string) string {
	if strings.Contains(u, "?") {
		return u + "&" + kv
	}
	return u + "?" + kv
}
