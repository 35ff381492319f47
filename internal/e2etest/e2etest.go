// Package e2etest runs mediasync as an operator does, for end-to-end,
// crash and load tests: the real worker and enqueue programs as processes,
// against the Twilio emulator, a Postgres database, a Redis namespace and an
// S3 bucket of the test's own.
//
// Between mediasync and the emulator sits a guard: at the moment a DELETE
// of a media arrives, it reads the media's object from the bucket and
// records an early delete unless the object holds exactly the emulator's
// bytes. Invariant 1 is thus observed from outside, not trusted.
package e2etest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/devtools"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Version is the version Binary stamps into the programs, as make build
// and the Docker image do with git describe's.
const Version = "v0.0.0-e2e"

// Binary returns the path of a mediasync program ("worker", "enqueue",
// "twilio-emulator"), built once per test process from this checkout and
// stamped with Version.
func Binary(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := devtools.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		binDir, buildErr = os.MkdirTemp("", "mediasync-e2e-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-ldflags", "-X github.com/mediasync/mediasync/internal/version.version="+Version,
			"-o", binDir+string(filepath.Separator), "./cmd/worker", "./cmd/enqueue", "./cmd/twilio-emulator")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("e2etest: %v", buildErr)
	}
	return filepath.Join(binDir, name)
}

// Options shape a deployment; the zero value is a plain one.
type Options struct {
	// Emulator configures the Twilio emulator (faults, seed…).
	Emulator twiliotest.Config
	// RedisURL, when set, is a Redis of the test's own (e.g. one it
	// restarts); by default the shared test Redis, in a fresh namespace.
	RedisURL string
	// AdminDatabaseURL, when set, is the Postgres server to create the
	// test's database on; by default the shared test server.
	AdminDatabaseURL string
	// S3 is the S3 server to use; by default the shared test gateway.
	S3 *testenv.S3Server
	// Bucket options, e.g. testenv.WithObjectLock().
	Bucket []testenv.BucketOption
}

// Deployment is one mediasync installation under test.
type Deployment struct {
	Emu      *twiliotest.Server
	Account  twiliotest.Account
	Env      map[string]string // the environment of worker and enqueue
	Pool     *pgxpool.Pool     // the catalog database
	DBURL    string
	S3       *testenv.S3Server
	S3Client *s3.Client
	Bucket   string
	Prefix   string
	GuardURL string // the Twilio API base mediasync talks to

	mu             sync.Mutex
	deleteAttempts int
	earlyDeletes   []string
}

// TwilioProxy stands between mediasync and the Twilio API (GuardURL, so the
// delete guard still sees every request) for a test that plays a faulty
// network, gateway or proxy: give mediasync its URL as TWILIO_API_URL.
// Change the ReverseProxy (Director, ModifyResponse) through Configure.
type TwilioProxy struct {
	URL string

	mu    sync.RWMutex
	proxy *httputil.ReverseProxy
}

// Configure changes the proxy under its lock: a request may arrive at any
// time (even before a worker starts, from another test's worker whose
// proxy had this port before).
func (p *TwilioProxy) Configure(f func(*httputil.ReverseProxy)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p.proxy)
}

func (p *TwilioProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	p.proxy.ServeHTTP(w, r)
}

// ProxyTwilio starts a TwilioProxy until the test ends. Each request goes
// to intercept first (when not nil); what it does not answer (false) is
// passed on.
func (d *Deployment) ProxyTwilio(t testing.TB, intercept func(w http.ResponseWriter, r *http.Request) (answered bool)) *TwilioProxy {
	t.Helper()
	guard, err := url.Parse(d.GuardURL)
	if err != nil {
		t.Fatalf("e2etest: guard URL: %v", err)
	}
	p := &TwilioProxy{proxy: httputil.NewSingleHostReverseProxy(guard)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if intercept != nil && intercept(w, r) {
			return
		}
		p.serve(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// New sets up a deployment for t; everything is torn down at cleanup.
func New(t testing.TB, o Options) *Deployment {
	t.Helper()
	emu := twiliotest.NewTestServer(t, o.Emulator)
	acct, err := emu.AddAccount(twiliotest.AccountOptions{})
	if err != nil {
		t.Fatalf("e2etest: add account: %v", err)
	}
	var db *testenv.Database
	if o.AdminDatabaseURL != "" {
		db = testenv.NewDatabaseOn(t, o.AdminDatabaseURL)
	} else {
		db = testenv.NewDatabase(t)
	}
	redisURL, ns := o.RedisURL, ""
	if redisURL == "" {
		r := testenv.NewRedis(t)
		redisURL, ns = r.URL, r.Namespace
	} else {
		ns = fmt.Sprintf("e2e%x", time.Now().UnixNano()) // a private Redis: nothing to clean
	}
	srv := o.S3
	if srv == nil {
		srv = testenv.S3(t)
	}
	d := &Deployment{
		Emu: emu, Account: acct, S3: srv, S3Client: srv.Client(t), Prefix: "archive",
		DBURL: db.URL,
	}
	d.Bucket = testenv.BucketOn(t, srv, o.Bucket...)
	d.Pool = db.Pool(t)

	target, err := url.Parse(emu.URL())
	if err != nil {
		t.Fatalf("e2etest: emulator URL: %v", err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	mediaPath := regexp.MustCompile(`/Messages/((?:SM|MM)[0-9a-f]{32})/Media/(ME[0-9a-f]{32})\.json$`)
	convMessagePath := regexp.MustCompile(`^/v1/Services/IS[0-9a-f]{32}/Conversations/CH[0-9a-f]{32}/Messages/(IM[0-9a-f]{32})$`)
	guard := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := mediaPath.FindStringSubmatch(r.URL.Path); r.Method == http.MethodDelete && m != nil {
			d.checkBeforeDelete(r.Context(), m[1], m[2])
			if r.Context().Err() != nil {
				return // the caller went away (a killed worker): nothing is forwarded, nothing deleted
			}
		}
		if m := convMessagePath.FindStringSubmatch(r.URL.Path); r.Method == http.MethodDelete && m != nil {
			d.checkBeforeConversationDelete(r.Context(), m[1])
			if r.Context().Err() != nil {
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	guard.Start()
	t.Cleanup(guard.Close)
	d.GuardURL = guard.URL
	// Conversations v1 and MCS answer with absolute URLs of the API host
	// (meta.*_url, url): the guard puts itself in them, so that every
	// request of a conversations run, the next page's too, passes it.
	proxy.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasPrefix(resp.Request.URL.Path, "/v1/") || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		b = bytes.ReplaceAll(b, []byte(emu.URL()), []byte(guard.URL))
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}

	d.Env = map[string]string{
		"TWILIO_ACCOUNT_SID": acct.SID,
		"TWILIO_AUTH_TOKEN":  acct.AuthToken,
		"TWILIO_API_URL":     guard.URL,
		// Conversations and MCS are served by the same emulator.
		"TWILIO_CONVERSATIONS_URL": guard.URL,
		"TWILIO_MCS_URL":           guard.URL,
		// Small pools: many workers run at once across parallel tests, and
		// Postgres allows 100 connections by default.
		"DATABASE_URL":            withPoolMax(db.URL, 4),
		"REDIS_URL":               redisURL,
		"MEDIASYNC_NAMESPACE":     ns,
		"ARCHIVE_URL":             fmt.Sprintf("s3://%s/%s?%s", d.Bucket, d.Prefix, srv.URLParams()),
		"AWS_ACCESS_KEY_ID":       srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY":   srv.SecretKey,
		"AWS_REGION":              srv.Region,
		"WORKER_CONCURRENCY":      "8",
		"WORKER_SHUTDOWN_TIMEOUT": "5s",
		"LOG_LEVEL":               "debug",
	}
	return d
}

func (d *Deployment) checkBeforeDelete(ctx context.Context, msgSID, mediaSID string) {
	d.mu.Lock()
	d.deleteAttempts++
	d.mu.Unlock()
	key, want, err := d.ExpectedObject(msgSID, mediaSID)
	if err == nil {
		var got string
		got, _, err = d.objectSHA256(ctx, key)
		if err == nil && got != want {
			err = errors.New("object bytes differ from the media's")
		}
	}
	// A check cut short because the caller went away decides nothing: the
	// DELETE is then not forwarded.
	if err != nil && ctx.Err() == nil {
		d.mu.Lock()
		d.earlyDeletes = append(d.earlyDeletes, mediaSID+": "+err.Error())
		d.mu.Unlock()
	}
}

// checkBeforeConversationDelete is checkBeforeDelete for a Conversations
// message, deleted whole: every media of it must be in the bucket byte for
// byte, and its record beside them.
func (d *Deployment) checkBeforeConversationDelete(ctx context.Context, msgSID string) {
	d.mu.Lock()
	d.deleteAttempts++
	d.mu.Unlock()
	fail := func(err error) {
		if ctx.Err() == nil {
			d.mu.Lock()
			d.earlyDeletes = append(d.earlyDeletes, msgSID+": "+err.Error())
			d.mu.Unlock()
		}
	}
	msg, ok := d.Emu.ConversationMessage(msgSID)
	if !ok {
		fail(errors.New("emulator has no such conversation message"))
		return
	}
	for _, sid := range msg.MediaSIDs {
		key, want, err := d.ExpectedConversationObject(sid)
		if err != nil {
			fail(err)
			return
		}
		got, _, err := d.objectSHA256(ctx, key)
		if err == nil && got != want {
			err = errors.New("object bytes differ from the media's")
		}
		if err != nil {
			fail(fmt.Errorf("media %s: %w", sid, err))
			return
		}
	}
	if _, err := d.ConversationRecord(ctx, msgSID); err != nil {
		fail(err)
	}
}

// ExpectedConversationObject is where, by the documented key layout, a
// Conversations media's copy must be, and the SHA-256 of its bytes.
func (d *Deployment) ExpectedConversationObject(mediaSID string) (key, sha string, err error) {
	md, ok := d.Emu.Media(mediaSID)
	if !ok || !md.Conversation {
		return "", "", fmt.Errorf("emulator has no Conversations media %s", mediaSID)
	}
	msg, ok := d.Emu.ConversationMessage(md.MessageSID)
	if !ok {
		return "", "", fmt.Errorf("emulator has no conversation message %s", md.MessageSID)
	}
	if sha, err = d.Emu.SHA256(mediaSID); err != nil {
		return "", "", err
	}
	key = archive.ObjectKey(d.Prefix, archive.KeyInfo{
		AccountSID: d.Account.SID, MessageSID: msg.SID, MediaSID: mediaSID,
		ContentType: md.ContentType, DateSent: msg.DateCreated, Source: archive.SourceConversations,
	})
	return key, sha, nil
}

// ConversationRecord returns the archived record (JSON) of a Conversations
// message, read from the bucket: the newest of its objects.
func (d *Deployment) ConversationRecord(ctx context.Context, msgSID string) ([]byte, error) {
	msg, ok := d.Emu.ConversationMessage(msgSID)
	if !ok {
		return nil, fmt.Errorf("emulator has no conversation message %s", msgSID)
	}
	var zero [32]byte
	key := archive.MessageRecordKey(d.Prefix, archive.KeyInfo{
		AccountSID: d.Account.SID, MessageSID: msgSID, DateSent: msg.DateCreated, Source: archive.SourceConversations,
	}, zero)
	prefix := strings.TrimSuffix(key, hex.EncodeToString(zero[:8])+".json")
	list, err := d.S3Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(d.Bucket), Prefix: aws.String(prefix)})
	if err != nil {
		return nil, fmt.Errorf("record of %s: %w", msgSID, err)
	}
	if len(list.Contents) == 0 {
		return nil, fmt.Errorf("record of %s: no object under %s", msgSID, prefix)
	}
	newest := list.Contents[0]
	for _, o := range list.Contents {
		if o.LastModified.After(*newest.LastModified) {
			newest = o
		}
	}
	out, err := d.S3Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.Bucket), Key: newest.Key})
	if err != nil {
		return nil, fmt.Errorf("record of %s: %w", msgSID, err)
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// ConversationMediaIn returns the emulator's Conversations media of
// messages created in [since, until), as media SID → message SID, and the
// rest.
func (d *Deployment) ConversationMediaIn(since, until time.Time) (in map[string]string, out map[string]string) {
	in, out = map[string]string{}, map[string]string{}
	for md := range d.Emu.AllMedia(d.Account.SID) {
		if !md.Conversation || md.MessageSID == "" {
			continue
		}
		msg, ok := d.Emu.ConversationMessage(md.MessageSID)
		if ok && !msg.DateCreated.Before(since) && msg.DateCreated.Before(until) {
			in[md.SID] = md.MessageSID
		} else {
			out[md.SID] = md.MessageSID
		}
	}
	return in, out
}

// CheckConversationsArchived is CheckArchived for Conversations media.
func (d *Deployment) CheckConversationsArchived(t testing.TB, media map[string]string, state catalog.MediaState) {
	t.Helper()
	ctx := context.Background()
	for sid := range media {
		key, want, err := d.ExpectedConversationObject(sid)
		if err != nil {
			t.Fatalf("media %s: %v", sid, err)
		}
		got, n, err := d.objectSHA256(ctx, key)
		if err != nil {
			t.Fatalf("media %s: object %s: %v", sid, key, err)
		}
		if got != want {
			t.Fatalf("media %s: object %s has sha256 %s, want %s", sid, key, got, want)
		}
		var rowState catalog.MediaState
		var rowSHA, source, conv string
		var size int64
		err = d.Pool.QueryRow(ctx, `SELECT state, sha256, size_bytes, source, coalesce(conversation_sid, '') FROM media WHERE sid = $1`, sid).
			Scan(&rowState, &rowSHA, &size, &source, &conv)
		if err != nil {
			t.Fatalf("media %s: catalog row: %v", sid, err)
		}
		if rowState != state || rowSHA != want || size != n || source != catalog.SourceConversations || conv == "" {
			t.Fatalf("media %s: state %s sha256 %s size %d source %s conversation %q; want %s, %s, %d, conversations", sid, rowState, rowSHA, size, source, conv, state, want, n)
		}
	}
}

// EarlyDeletes lists the DELETEs that reached Twilio while the media's
// archived copy was missing or wrong; it must stay empty. DeleteAttempts
// counts every DELETE of a media.
func (d *Deployment) EarlyDeletes() (early []string, attempts int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.earlyDeletes...), d.deleteAttempts
}

// ExpectedObject is where, by the documented key layout, a media's copy
// must be, and the SHA-256 of the emulator's bytes.
func (d *Deployment) ExpectedObject(msgSID, mediaSID string) (key, sha string, err error) {
	msg, ok := d.Emu.Message(msgSID)
	if !ok {
		return "", "", fmt.Errorf("emulator has no message %s", msgSID)
	}
	md, ok := d.Emu.Media(mediaSID)
	if !ok {
		return "", "", fmt.Errorf("emulator has no media %s", mediaSID)
	}
	if sha, err = d.Emu.SHA256(mediaSID); err != nil {
		return "", "", err
	}
	key = archive.ObjectKey(d.Prefix, archive.KeyInfo{
		AccountSID: d.Account.SID, MessageSID: msgSID, MediaSID: mediaSID,
		ContentType: md.ContentType, DateSent: msg.DateSent,
	})
	return key, sha, nil
}

func (d *Deployment) objectSHA256(ctx context.Context, key string) (string, int64, error) {
	out, err := d.S3Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
	if err != nil {
		return "", 0, err
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// MediaIn returns the emulator's media of messages sent in [since, until),
// as media SID → message SID, and the rest.
func (d *Deployment) MediaIn(since, until time.Time) (in map[string]string, out map[string]string) {
	in, out = map[string]string{}, map[string]string{}
	for m := range d.Emu.Messages(d.Account.SID) {
		for _, sid := range m.MediaSIDs {
			if !m.DateSent.Before(since) && m.DateSent.Before(until) {
				in[sid] = m.SID
			} else {
				out[sid] = m.SID
			}
		}
	}
	return in, out
}

// CheckArchived fails t unless each media is in the bucket byte for byte
// with exactly one catalog row in state (archived or deleted) recording the
// same size and SHA-256.
func (d *Deployment) CheckArchived(t testing.TB, media map[string]string, state catalog.MediaState) {
	t.Helper()
	ctx := context.Background()
	sids := make([]string, 0, len(media))
	for sid := range media {
		sids = append(sids, sid)
	}
	sort.Strings(sids)
	for _, sid := range sids {
		key, want, err := d.ExpectedObject(media[sid], sid)
		if err != nil {
			t.Fatalf("media %s: %v", sid, err)
		}
		got, n, err := d.objectSHA256(ctx, key)
		if err != nil {
			t.Fatalf("media %s: object %s: %v", sid, key, err)
		}
		if got != want {
			t.Fatalf("media %s: object %s has sha256 %s, want %s", sid, key, got, want)
		}
		var rows int
		var rowState catalog.MediaState
		var rowSHA string
		var size int64
		err = d.Pool.QueryRow(ctx, `SELECT count(*) OVER (), state, sha256, size_bytes FROM media WHERE sid = $1`, sid).
			Scan(&rows, &rowState, &rowSHA, &size)
		if err != nil {
			t.Fatalf("media %s: catalog row: %v", sid, err)
		}
		if rows != 1 || rowState != state || rowSHA != want || size != n {
			t.Fatalf("media %s: %d rows, state %s sha256 %s size %d; want 1 row, %s, %s, %d", sid, rows, rowState, rowSHA, size, state, want, n)
		}
	}
}

// CheckMessageRecords fails t unless each Messaging message has exactly
// one record in the bucket, beside its media (issue #17), holding its SID,
// with the size and SHA-256 its catalog row records.
func (d *Deployment) CheckMessageRecords(t testing.TB, messages []string) {
	t.Helper()
	ctx := context.Background()
	for _, sid := range messages {
		msg, ok := d.Emu.Message(sid)
		if !ok {
			t.Fatalf("emulator has no message %s", sid)
		}
		var key, sha string
		var size int64
		if err := d.Pool.QueryRow(ctx, `SELECT coalesce(record_key, ''), coalesce(record_sha256, ''), coalesce(record_size, -1)
			FROM messages WHERE sid = $1`, sid).Scan(&key, &sha, &size); err != nil {
			t.Fatalf("message %s: catalog row: %v", sid, err)
		}
		var zero [32]byte
		want := archive.MessageRecordKey(d.Prefix, archive.KeyInfo{AccountSID: d.Account.SID, MessageSID: sid, DateSent: msg.DateSent}, zero)
		dir := want[:strings.LastIndex(want, "/")+1]
		list, err := d.S3Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(d.Bucket), Prefix: aws.String(dir + sid + "-")})
		if err != nil {
			t.Fatalf("message %s: %v", sid, err)
		}
		if len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != key {
			t.Fatalf("message %s: %d record objects under %s; want exactly the catalog's %q", sid, len(list.Contents), dir, key)
		}
		out, err := d.S3Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("message %s: record %s: %v", sid, key, err)
		}
		b, err := io.ReadAll(out.Body)
		_ = out.Body.Close()
		if err != nil {
			t.Fatalf("message %s: record %s: %v", sid, key, err)
		}
		got := sha256.Sum256(b)
		var rec struct {
			SID string `json:"sid"`
		}
		if hex.EncodeToString(got[:]) != sha || int64(len(b)) != size || json.Unmarshal(b, &rec) != nil || rec.SID != sid {
			t.Fatalf("message %s: record %s (%d bytes, sha256 %x) does not match its row (%d bytes, %s) or names another message:\n%s", sid, key, len(b), got, size, sha, b)
		}
	}
}

// Process is a running mediasync program.
type Process struct {
	cmd   *exec.Cmd
	child *devtools.Child
	logs  string // the file its stdout and stderr go to
}

// StartWorker starts a worker process with the deployment's environment
// plus extra "KEY=value" settings; it is stopped at cleanup.
func (d *Deployment) StartWorker(t testing.TB, extra ...string) *Process {
	t.Helper()
	cmd := exec.Command(Binary(t, "worker"))
	cmd.Env = d.environ(extra...)
	// The worker writes to a file, not to a pipe this process drains: a
	// test that stops reading (or is slow to) can never block the worker's
	// logging, and a SIGQUIT dump always lands (a silent worker was once
	// seen with neither logs nor a dump).
	f, err := os.CreateTemp(t.TempDir(), "worker-*.log")
	if err != nil {
		t.Fatalf("e2etest: worker log: %v", err)
	}
	defer f.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = f, f
	// devtools.Start keeps the forking thread alive while the worker runs:
	// Pdeathsig fires when that thread exits, not when this process does.
	child, err := devtools.Start(cmd)
	if err != nil {
		t.Fatalf("e2etest: start worker: %v", err)
	}
	p := &Process{cmd: cmd, child: child, logs: f.Name()}
	t.Cleanup(func() { p.Stop(30 * time.Second) })
	return p
}

// Dump asks a Go program for every goroutine's stack (SIGQUIT, which also
// ends it) and returns its logs with them: for a test that finds the
// program stuck, what each goroutine waits on.
func (p *Process) Dump() string {
	if p.Exited() {
		return p.Logs() + fmt.Sprintf("\n(the process had already exited: %v)", p.child.Err())
	}
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.child.Done():
	case <-time.After(10 * time.Second):
	}
	return p.Logs()
}

// Kill ends the process at once (SIGKILL), as a crash or an OOM kill does.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.child.Done()
}

// Stop sends SIGTERM and waits up to grace before killing.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return p.child.Err()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.child.Done():
	case <-time.After(grace):
		p.Kill()
	}
	return p.child.Err()
}

// WaitStarted waits until the worker logs that it takes tasks, so a test
// that needs every worker of a fleet to share a run does not start the
// run while one is still migrating or connecting (on a loaded machine
// that can outlast a short run).
func (p *Process) WaitStarted(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Logs(), `"message":"worker started"`) {
		if p.Exited() {
			t.Fatalf("e2etest: worker exited before it started (%v):\n%s", p.child.Err(), p.Logs())
		}
		if time.Now().After(deadline) {
			t.Fatalf("e2etest: worker not started after %s:\n%s", timeout, p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.child.Done():
		return true
	default:
		return false
	}
}

// Logs returns what the process wrote so far.
func (p *Process) Logs() string {
	b, err := os.ReadFile(p.logs)
	if err != nil {
		return fmt.Sprintf("(worker log: %v)", err)
	}
	return string(b)
}

// Enqueue runs the enqueue program and returns its exit code and output.
func (d *Deployment) Enqueue(t testing.TB, timeout time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	// Built (once per test process) before the clock starts: under a busy
	// machine the build alone can take longer than the first call's timeout.
	bin := Binary(t, "enqueue")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = d.environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errb.String()
	default:
		t.Fatalf("e2etest: enqueue %v: %v\nstderr:\n%s", args, err, errb.String())
		return -1, "", ""
	}
}

func (d *Deployment) environ(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "TMPDIR=" + os.TempDir()}
	for k, v := range d.Env {
		env = append(env, k+"="+v)
	}
	return append(env, extra...)
}

// StatusValue returns the value of a "name: value" line of enqueue status.
func StatusValue(t testing.TB, out, name string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %q line in:\n%s", name, out)
	return ""
}

// LogBuffer collects a process's (or an in-process worker's) output, safe
// for concurrent writes, for tests that read logs.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// withPoolMax adds pgxpool's pool_max_conns to a database URL.
func withPoolMax(raw string, n int) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set("pool_max_conns", fmt.Sprint(n))
	u.RawQuery = q.Encode()
	return u.String()
}

// Terminate sends SIGTERM and returns at once, for a test that watches
// the process drain.
func (p *Process) Terminate() { _ = p.cmd.Process.Signal(syscall.SIGTERM) }
