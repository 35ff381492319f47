package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// mangler is an HTTP proxy in front of Twilio (the guard, then the
// emulator) that does what some proxies and gateways do: it follows the
// content redirect itself and hands back the body re-encoded as UTF-8 text,
// each invalid byte (or, for some media, each run of them) replaced by
// U+FFFD, with a Content-Length that matches the new body. A third of the
// media, chosen by SID, pass untouched, as do bytes that are UTF-8 already
// (text/plain, vCards).
type mangler struct {
	mu      sync.Mutex
	mangled map[string]bool // media SID → its body was changed
	served  map[string]bool // media SID → its content went through
}

var contentPath = regexp.MustCompile(`/Messages/(?:SM|MM)[0-9a-f]{32}/Media/(ME[0-9a-f]{32})$`)

func startMangler(t *testing.T, upstream string) (*mangler, string) {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	m := &mangler{mangled: map[string]bool{}, served: map[string]bool{}}
	pass := httputil.NewSingleHostReverseProxy(target)
	noFollow := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sm := contentPath.FindStringSubmatch(r.URL.Path)
		if r.Method != http.MethodGet || sm == nil {
			pass.ServeHTTP(w, r)
			return
		}
		body, ctype, status, err := m.fetch(r, noFollow, upstream+r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if status != http.StatusOK {
			w.WriteHeader(status)
			_, _ = w.Write(body)
			return
		}
		sid, out := sm[1], body
		pick := sha256.Sum256([]byte(sid))
		switch pick[0] % 3 {
		case 1: // each invalid byte → U+FFFD, as Java's and .NET's decoders do
			var b strings.Builder
			for _, c := range string(body) {
				b.WriteRune(c)
			}
			out = []byte(b.String())
		case 2: // each run of invalid bytes → one U+FFFD
			out = []byte(strings.ToValidUTF8(string(body), "\uFFFD"))
		}
		m.mu.Lock()
		m.served[sid] = true
		m.mangled[sid] = m.mangled[sid] || !bytes.Equal(out, body)
		m.mu.Unlock()
		w.Header().Set("Content-Type", ctype) // the type stays: only the bytes betray it
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return m, srv.URL
}

// fetch gets a media's content as a proxy does: the first request with the
// caller's credentials, then the signed URLs it redirects to, without them.
func (m *mangler) fetch(r *http.Request, c *http.Client, u string) (body []byte, ctype string, status int, err error) {
	auth := r.Header.Get("Authorization")
	for range 5 {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u, nil)
		if err != nil {
			return nil, "", 0, err
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, "", 0, err
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, "", 0, err
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || loc == "" {
			return body, resp.Header.Get("Content-Type"), resp.StatusCode, nil
		}
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			return nil, "", 0, err
		}
		u, auth = next.String(), "" // never credentials to the signed host
	}
	return nil, "", 0, fmt.Errorf("too many redirects")
}

// Behind a proxy that re-encodes binary downloads as UTF-8 text, a
// --delete run deletes from Twilio none of the media it received mangled:
// each is recorded suspect with the reason, counted and named by `enqueue
// status`, its bytes kept under a suspect key for inspection; the media the
// proxy left intact are archived and deleted as usual. A later run without
// the proxy archives the suspect media properly and deletes them.
//
// Large media (past the spool's memory) are streamed into S3 over TLS and
// judged at the end of their body, before S3 may commit the object: a
// mangled one must leave nothing at the media's key (the later run could
// not archive it there otherwise: objects are create-only), and is
// downloaded again through the spool to be kept aside.
func TestMangledDownloadsAreSuspectNeverDeleted(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		s3       func(testing.TB) *testenv.S3Server
		streamed bool
		data     func(*testing.T, *e2etest.Deployment) map[string]string
	}{
		{"Small", testenv.S3, false, oneDayOfMedia},
		{"LargeStreamed", testenv.S3, true, oneDayOfLargeMedia},
		// Plain http: no trailing checksums, so large media are spooled.
		{"LargePlainHTTP", testenv.S3HTTP, false, oneDayOfLargeMedia},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testMangledDownloads(t, c.s3(t), c.data, c.streamed)
		})
	}
}

// oneDayOfLargeMedia is oneDayOfMedia with every media past the spool's
// memory (1 MiB): the worker streams them into an https S3.
func oneDayOfLargeMedia(t *testing.T, d *e2etest.Deployment) map[string]string {
	t.Helper()
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 12, Start: faultsStart, End: faultsStart.AddDate(0, 0, 1), MaxMediaPerMessage: 2,
		MinMediaSize: 1100 << 10, MaxMediaSize: 2300 << 10, NoMediaShare: 0.01,
	})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := d.MediaIn(faultsStart, faultsStart.AddDate(0, 0, 1))
	return in
}

func testMangledDownloads(t *testing.T, srv *testenv.S3Server, data func(*testing.T, *e2etest.Deployment) map[string]string, streamed bool) {
	d := e2etest.New(t, e2etest.Options{S3: srv})
	in := data(t, d)
	m, mangling := startMangler(t, d.GuardURL)
	w := d.StartWorker(t, "TWILIO_API_URL="+mangling)

	code, stdout, stderr := faultsBackfill(t, d, 1)
	m.mu.Lock()
	mangled, clean := map[string]string{}, map[string]string{}
	for sid, msg := range in {
		switch {
		case !m.served[sid]:
			t.Errorf("media %s never went through the proxy", sid)
		case m.mangled[sid]:
			mangled[sid] = msg
		default:
			clean[sid] = msg
		}
	}
	m.mu.Unlock()
	if len(mangled) == 0 || len(clean) == 0 {
		t.Fatalf("%d media mangled, %d clean: the test needs both", len(mangled), len(clean))
	}

	deleted := map[string]bool{}
	for _, del := range d.Emu.Deletes(0) {
		deleted[del.MediaSID] = true
	}
	for sid := range mangled {
		if deleted[sid] {
			t.Errorf("media %s was deleted from Twilio after a mangled download", sid)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if code != 1 {
		t.Fatalf("enqueue exited %d, want 1 (suspect media are not archived)\nstdout:\n%s\nstderr:\n%s\nworker:\n%s", code, stdout, stderr, w.Logs())
	}
	for name, want := range map[string]string{
		"state": "failed", "media failed": "0", "media pending": "0",
		"media deleted": fmt.Sprint(len(clean)),
	} {
		if got := e2etest.StatusValue(t, stdout, name); got != want {
			t.Fatalf("%s: %s, want %s\n%s", name, got, want, stdout)
		}
	}
	if got := e2etest.StatusValue(t, stdout, "media suspect"); !strings.HasPrefix(got, fmt.Sprint(len(mangled))+" ") {
		t.Fatalf("media suspect: %s, want %d\n%s", got, len(mangled), stdout)
	}
	named := map[string]bool{}
	for _, l := range strings.Split(stdout, "\n") {
		if rest, ok := strings.CutPrefix(l, "suspect:"); ok {
			sid, reason, _ := strings.Cut(strings.TrimSpace(rest), ": ")
			if !strings.Contains(reason, "not plausible") {
				t.Errorf("suspect %s named without a reason: %q", sid, l)
			}
			named[sid] = true
		}
	}
	for sid := range mangled {
		if !named[sid] {
			t.Errorf("enqueue status does not name suspect media %s:\n%s", sid, stdout)
		}
	}

	for sid := range mangled {
		var state, key, sha string
		err := d.Pool.QueryRow(t.Context(), `SELECT state, coalesce(suspect_key, ''), coalesce(suspect_sha256, '')
			FROM media WHERE sid = $1`, sid).Scan(&state, &key, &sha)
		if err != nil {
			t.Fatal(err)
		}
		if state != "suspect" {
			t.Fatalf("mangled media %s is %s, want suspect", sid, state)
		}
		out, err := d.S3Client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("suspect copy of %s at %s: %v", sid, key, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, out.Body)
		out.Body.Close()
		if err != nil || hex.EncodeToString(h.Sum(nil)) != sha {
			t.Fatalf("suspect copy of %s at %s: %v, or not the bytes recorded", sid, key, err)
		}
	}
	d.CheckArchived(t, clean, "deleted")
	if early, _ := d.EarlyDeletes(); len(early) > 0 {
		t.Fatalf("deleted without the media's bytes in S3: %v", early)
	}
	// A streamed object has no sha256 metadata (its SHA-256 is known only
	// after the headers went; S3's checksum is the record): the clean
	// large media went up streamed over TLS, from a spool otherwise.
	for sid, msg := range clean {
		key, _, err := d.ExpectedObject(msg, sid)
		if err != nil {
			t.Fatal(err)
		}
		head, err := d.S3Client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		if _, spooled := head.Metadata["sha256"]; spooled == streamed {
			t.Errorf("media %s: streamed %v, want %v (sha256 metadata: %v)", sid, !spooled, streamed, spooled)
		}
	}

	// Without the proxy, a later run downloads the suspect media again and
	// this time archives and deletes them.
	if err := w.Stop(10 * time.Second); err != nil {
		t.Logf("worker behind the proxy: %v", err)
	}
	w = d.StartWorker(t)
	code, stdout, stderr = faultsBackfill(t, d, 1)
	if code != 0 {
		t.Fatalf("later run: enqueue exited %d\nstdout:\n%s\nstderr:\n%s\nworker:\n%s", code, stdout, stderr, w.Logs())
	}
	for name, want := range map[string]string{"state": "succeeded", "media suspect": "0", "media failed": "0"} {
		if got := e2etest.StatusValue(t, stdout, name); got != want {
			t.Fatalf("later run: %s: %s, want %s\n%s", name, got, want, stdout)
		}
	}
	d.CheckArchived(t, in, "deleted")
	if early, _ := d.EarlyDeletes(); len(early) > 0 {
		t.Fatalf("deleted without the media's bytes in S3: %v", early)
	}
}
