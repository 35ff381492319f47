package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/rediskeys"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// secretsStart is the first day of the secrets tests' data.
var secretsStart = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// Twilio's credential (an auth token, or an API key's secret) and the S3
// secret key reach no log line at debug level, no enqueue output, no Redis
// key or value of the deployment at any moment of a --delete run, no S3
// object metadata, no Postgres column, and never the signed media host. The
// run meets 5xx answers, cut downloads and 429s on the way, so error paths
// are logged too.
func TestSecretsStayOut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		apiKey bool
	}{{"auth token", false}, {"API key", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{Faults: twiliotest.Faults{
				MaxInFlight: 3, Latency: 10 * time.Millisecond, ErrorRate: 0.1, CutRate: 0.05,
			}}})
			user, secret := d.Account.SID, d.Account.AuthToken
			if tc.apiKey {
				delete(d.Env, "TWILIO_AUTH_TOKEN")
				d.Env["TWILIO_API_KEY"], d.Env["TWILIO_API_SECRET"] = d.Account.APIKey, d.Account.APISecret
				user, secret = d.Account.APIKey, d.Account.APISecret
			}
			d.Env["LOG_LEVEL"] = "debug"
			leaks := &secretLeaks{needles: map[string]string{
				"Twilio secret":            secret,
				"Basic credentials":        base64.StdEncoding.EncodeToString([]byte(user + ":" + secret)),
				"AWS_SECRET_ACCESS_KEY":    d.Env["AWS_SECRET_ACCESS_KEY"],
				"Basic credentials in URL": base64.URLEncoding.EncodeToString([]byte(user + ":" + secret)),
			}}
			secretsRun(t, d, leaks)
			if got := leaks.report(); got != "" {
				t.Fatalf("secrets leaked:\n%s", got)
			}
		})
	}
}

// secretLeaks collects where any needle was found: per needle and kind of
// place, how many places and the first of them.
type secretLeaks struct {
	needles map[string]string
	mu      sync.Mutex
	found   map[string][]string
}

// check records each needle that text, found in item of kind (a log, a
// Redis key…), contains.
func (l *secretLeaks) check(kind, item, text string) {
	for name, needle := range l.needles {
		if strings.Contains(text, needle) {
			l.mu.Lock()
			if l.found == nil {
				l.found = map[string][]string{}
			}
			l.found[name+" in "+kind] = append(l.found[name+" in "+kind], item)
			l.mu.Unlock()
		}
	}
}

// add records a leak found by other means than a needle.
func (l *secretLeaks) add(what, item string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.found == nil {
		l.found = map[string][]string{}
	}
	l.found[what] = append(l.found[what], item)
}

func (l *secretLeaks) report() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, what := range slices.Sorted(maps.Keys(l.found)) {
		items := l.found[what]
		fmt.Fprintf(&b, "%s: %s", what, items[0])
		if len(items) > 1 {
			fmt.Fprintf(&b, " and %d more", len(items)-1)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// secretsRun runs two workers and a --delete backfill on d while reading
// the deployment's Redis keys, then checks every output and store.
func secretsRun(t *testing.T, d *e2etest.Deployment, leaks *secretLeaks) {
	t.Helper()
	ctx := t.Context()
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 40, Start: secretsStart, End: secretsStart.AddDate(0, 0, 2), MaxMediaPerMessage: 3, MaxMediaSize: 32 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := d.MediaIn(secretsStart, secretsStart.AddDate(0, 0, 2))

	opt, err := redis.ParseURL(d.Env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	ns := d.Env["MEDIASYNC_NAMESPACE"]
	// Task hashes (payloads), queues, the limiter's keys, and the servers'
	// and workers' records, which hold the tasks in progress.
	patterns := append(rediskeys.Namespace(ns).Patterns(), "asynq:servers:*", "asynq:workers:*")

	// Read the keys all through the run: a task's payload lives in Redis
	// only while the task does.
	stop := make(chan struct{})
	var polled sync.WaitGroup
	var passes, taskKeys int
	polled.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			n, tasks := scanRedis(context.WithoutCancel(ctx), rdb, patterns, leaks)
			if n > 0 {
				passes++
			}
			taskKeys = max(taskKeys, tasks)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	ws := []*e2etest.Process{d.StartWorker(t, "TWILIO_MAX_CONCURRENCY=6"), d.StartWorker(t, "TWILIO_MAX_CONCURRENCY=6")}
	// Both take part in the run, so both workers' logs are checked: a
	// worker still starting when a short run ends logs nothing of it.
	for _, w := range ws {
		w.WaitStarted(t, time.Minute)
	}
	code, stdout, stderr := d.Enqueue(t, 3*time.Minute, "backfill", "--since", secretsStart.Format(time.DateOnly),
		"--until", secretsStart.AddDate(0, 0, 2).Format(time.DateOnly), "--delete", "--wait")
	close(stop)
	polled.Wait()
	// The signed host refuses a request that carries Authorization, as a
	// presigned URL does, so that leak also fails the run: record it
	// first, so the failure names it.
	if n := d.Emu.Stats().SignedWithAuthorization; n != 0 {
		leaks.add("Authorization header sent to the signed media host", fmt.Sprintf("%d requests", n))
	}
	leaks.check("enqueue output", "backfill", stdout+stderr)
	if code != 0 {
		t.Fatalf("enqueue exited %d\nleaks so far:\n%s\nstdout:\n%s\nstderr:\n%s\n%s", code, leaks.report(), stdout, stderr, fleetLogs(ws))
	}
	scanRedis(ctx, rdb, patterns, leaks)
	if taskKeys == 0 {
		t.Fatalf("no task was seen in Redis during the run (%d passes): the payloads were not checked", passes)
	}
	runID := strings.TrimSpace(strings.SplitN(stdout, "\n", 2)[0])
	code, status, statusErr := d.Enqueue(t, 30*time.Second, "status", runID)
	leaks.check("enqueue output", "status", status+statusErr)
	if code != 0 {
		t.Fatalf("enqueue status %s exited %d\n%s", runID, code, statusErr)
	}

	for i, w := range ws {
		err := w.Stop(10 * time.Second)
		logs := w.Logs()
		if err != nil {
			t.Errorf("worker %d: %v\n%s", i+1, err, logs)
		}
		if !strings.Contains(logs, `"level":"debug"`) {
			t.Fatalf("worker %d wrote no debug line: LOG_LEVEL=debug not in force", i+1)
		}
		leaks.check("worker log", fmt.Sprintf("worker %d", i+1), logs)
	}

	objects := scanObjects(t, d, leaks)
	if objects != len(in) {
		t.Fatalf("%d objects in the bucket, want %d", objects, len(in))
	}
	rows := scanCatalog(t, d, leaks)

	st := d.Emu.Stats()
	t.Logf("%d media; Redis read %d times during the run (up to %d task keys at once); %d objects and %d catalog rows read; %d 429s, %d injected 5xx, %d cut downloads, %d signed-host requests",
		len(in), passes, taskKeys, objects, rows, st.RateLimited, st.InjectedErrors, st.CutBodies, st.SignedRequests)
	if st.InjectedErrors == 0 {
		t.Fatal("no 5xx injected: error paths were not exercised")
	}
	if st.SignedRequests == 0 {
		t.Fatal("no request reached the signed media host")
	}
}

// scanRedis reads every key matching patterns, whatever its type, and
// checks its name and content. It returns how many keys it read and how
// many were task hashes.
func scanRedis(ctx context.Context, rdb *redis.Client, patterns []string, leaks *secretLeaks) (keys, tasks int) {
	for _, p := range patterns {
		iter := rdb.Scan(ctx, 0, p, 200).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			keys++
			if strings.Contains(key, ":t:") {
				tasks++
			}
			var text string
			switch typ, _ := rdb.Type(ctx, key).Result(); typ {
			case "string":
				text, _ = rdb.Get(ctx, key).Result()
			case "hash":
				m, _ := rdb.HGetAll(ctx, key).Result()
				text = fmt.Sprint(m)
			case "list":
				l, _ := rdb.LRange(ctx, key, 0, -1).Result()
				text = strings.Join(l, "\n")
			case "set":
				l, _ := rdb.SMembers(ctx, key).Result()
				text = strings.Join(l, "\n")
			case "zset":
				l, _ := rdb.ZRange(ctx, key, 0, -1).Result()
				text = strings.Join(l, "\n")
			case "stream":
				l, _ := rdb.XRange(ctx, key, "-", "+").Result()
				text = fmt.Sprint(l)
			}
			leaks.check("Redis", key, key+"\n"+text)
		}
	}
	return keys, tasks
}

// scanObjects checks every archived object's metadata and headers, and
// each message record's content (issue #17: Twilio's message object,
// which must carry no credential), and returns how many media objects
// there are (audit anchors and message records are checked, not counted).
func scanObjects(t *testing.T, d *e2etest.Deployment, leaks *secretLeaks) int {
	t.Helper()
	ctx := t.Context()
	n := 0
	pages := s3.NewListObjectsV2Paginator(d.S3Client, &s3.ListObjectsV2Input{Bucket: aws.String(d.Bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			head, err := d.S3Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(d.Bucket), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			if base := path.Base(*o.Key); strings.HasSuffix(base, ".json") && (strings.HasPrefix(base, "SM") || strings.HasPrefix(base, "MM")) {
				obj, err := d.S3Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.Bucket), Key: o.Key})
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(obj.Body)
				_ = obj.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				leaks.check("message record", *o.Key, string(b))
			} else if !strings.Contains(*o.Key, "/_audit/") {
				n++
			}
			text := fmt.Sprint(*o.Key, head.Metadata, aws.ToString(head.ContentType), aws.ToString(head.ContentDisposition),
				aws.ToString(head.ContentEncoding), aws.ToString(head.CacheControl), aws.ToString(head.WebsiteRedirectLocation))
			leaks.check("S3 object metadata", *o.Key, text)
		}
	}
	return n
}

// scanCatalog checks every row of every table of the catalog, each row as
// text (all its columns), and returns how many rows it read.
func scanCatalog(t *testing.T, d *e2etest.Deployment, leaks *secretLeaks) int {
	t.Helper()
	ctx := t.Context()
	rows, err := d.Pool.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, table := range tables {
		rows, err := d.Pool.Query(ctx, `SELECT r::text FROM `+pgx.Identifier{table}.Sanitize()+` r`)
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range texts {
			leaks.check("Postgres", "table "+table, text)
		}
		n += len(texts)
	}
	for _, table := range []string{"runs", "media", "run_media"} {
		var k int
		if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&k); err != nil || k == 0 {
			t.Fatalf("table %s: %d rows, %v: nothing to check", table, k, err)
		}
	}
	return n
}
