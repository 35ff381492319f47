package archive_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/archive/storetest"
	"github.com/mediasync/mediasync/internal/objects"
	"github.com/mediasync/mediasync/internal/testenv"
)

// s3Config returns a config for a new bucket on the test gateway.
func s3Config(t *testing.T, opts ...testenv.BucketOption) archive.S3Config {
	t.Helper()
	srv := testenv.S3(t)
	return s3ConfigOn(t, srv, opts...)
}

// s3ConfigOn is s3Config on a given gateway (S3HTTP: plain http).
func s3ConfigOn(t *testing.T, srv *testenv.S3Server, opts ...testenv.BucketOption) archive.S3Config {
	t.Helper()
	return archive.S3Config{
		Bucket:       testenv.BucketOn(t, srv, opts...),
		Region:       srv.Region,
		Endpoint:     srv.Endpoint,
		UsePathStyle: true,
		Credentials:  srv.Credentials(),
		CABundle:     srv.CABundle,
	}
}

func newS3Store(t *testing.T, cfg archive.S3Config) *archive.S3Store {
	t.Helper()
	s, err := archive.NewS3Store(t.Context(), cfg)
	require.NoError(t, err)
	return s
}

func TestS3StoreConformance(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  func(*archive.S3Config)
	}{
		{"DefaultChecksums", func(*archive.S3Config) {}},
		{"ChecksumWhenRequired", func(c *archive.S3Config) { c.ChecksumWhenRequired = true }},
		// Small parts so that storetest's large object goes up in parts:
		// the path for media above the threshold, where S3 keeps no
		// full-object SHA-256 and Verify must read back.
		{"Multipart", func(c *archive.S3Config) { c.MultipartThreshold = 8 << 20; c.PartSize = 5 << 20 }},
		{"Versioned", func(c *archive.S3Config) {}},
		// Plain http: no trailing checksums, so nothing streams (the
		// StreamedPut cases are skipped) and callers spool for Put.
		{"PlainHTTP", func(c *archive.S3Config) {}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) archive.Store {
				var opts []testenv.BucketOption
				if c.name == "Versioned" {
					opts = append(opts, testenv.WithVersioning())
				}
				srv := testenv.S3(t)
				if c.name == "PlainHTTP" {
					srv = testenv.S3HTTP(t)
				}
				cfg := s3ConfigOn(t, srv, opts...)
				c.cfg(&cfg)
				return newS3Store(t, cfg)
			})
		})
	}
}

// recorder is a reverse proxy in front of the gateway that records the
// requests it forwards and can answer some of them itself.
type recorder struct {
	mu       sync.Mutex
	requests []recorded
	// intercept, when it returns true, has answered the request itself.
	intercept func(w http.ResponseWriter, r *http.Request) bool
}

type recorded struct {
	method string
	query  url.Values
	header http.Header
}

func newRecorder(t *testing.T, target string) (*recorder, string) {
	t.Helper()
	rec, srv := startRecorder(t, target, false)
	return rec, srv.URL
}

// newTLSRecorder is newRecorder over TLS, as the gateway is: cfg's store
// goes through it, trusting its certificate, and streams.
func newTLSRecorder(t *testing.T, cfg *archive.S3Config) *recorder {
	t.Helper()
	rec, srv := startRecorder(t, cfg.Endpoint, true)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	cfg.Endpoint, cfg.CABundle = srv.URL, ""
	cfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	})
	return rec
}

func startRecorder(t *testing.T, target string, useTLS bool) (*recorder, *httptest.Server) {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	rec := &recorder{}
	// The Director leaves the Host header as the client signed it.
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.Transport = testenv.S3(t).HTTPClient().Transport // the gateway's certificate trusted
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.requests = append(rec.requests, recorded{method: r.Method, query: r.URL.Query(), header: r.Header.Clone()})
		intercept := rec.intercept
		rec.mu.Unlock()
		if intercept != nil && intercept(w, r) {
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return rec, srv
}

// writes returns the recorded object-creating requests: PutObject and
// CreateMultipartUpload.
func (r *recorder) writes() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []recorded
	for _, q := range r.requests {
		_, isPart := q.query["partNumber"]
		_, isCreate := q.query["uploads"]
		if (q.method == http.MethodPut && !isPart) || (q.method == http.MethodPost && isCreate) {
			out = append(out, q)
		}
	}
	return out
}

// The requests carry what makes the archive safe: the SHA-256 for the
// server to check, the create-only precondition, and the SSE settings.
func TestS3StoreRequestHeaders(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte{0xd8, 0xff}, 3<<20) // 6 MiB
	sum := sha256.Sum256(data)
	for _, c := range []struct {
		name      string
		sse, kms  string
		multipart bool
	}{
		{name: "SSE-S3", sse: archive.SSEAES256},
		{name: "SSE-S3 multipart", sse: archive.SSEAES256, multipart: true},
		{name: "no SSE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := s3Config(t)
			rec, endpoint := newRecorder(t, cfg.Endpoint)
			cfg.Endpoint = endpoint
			cfg.SSE, cfg.SSEKMSKeyID = c.sse, c.kms
			if c.multipart {
				cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
			}
			s := newS3Store(t, cfg)
			in := archive.PutInput{Key: "sse/object.bin", Size: int64(len(data)), SHA256: sum}
			_, err := s.Put(t.Context(), in, bytes.NewReader(data))
			require.NoError(t, err)

			writes := rec.writes()
			require.Len(t, writes, 1)
			h := writes[0].header
			assert.Equal(t, c.sse, h.Get("X-Amz-Server-Side-Encryption"))
			assert.Equal(t, hexOf(sum), h.Get("X-Amz-Meta-Sha256"))
			if c.multipart {
				assert.Equal(t, "SHA256", h.Get("X-Amz-Checksum-Algorithm"))
			} else {
				assert.Equal(t, "*", h.Get("If-None-Match"))
				assert.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), h.Get("X-Amz-Checksum-Sha256"))
			}
			require.NoError(t, archive.Verify(t.Context(), s, in.Key, in.Size, in.SHA256))
		})
	}
}

// SSE-KMS needs a KMS, which the gateway lacks: the proxy answers the PUT
// itself after recording it.
func TestS3StoreSSEKMSHeaders(t *testing.T) {
	t.Parallel()
	cfg := s3Config(t)
	rec, endpoint := newRecorder(t, cfg.Endpoint)
	rec.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut {
			return false
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("ETag", `"0"`)
		w.WriteHeader(http.StatusOK)
		return true
	}
	cfg.Endpoint = endpoint
	cfg.SSE = archive.SSEKMS
	cfg.SSEKMSKeyID = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	s := newS3Store(t, cfg)
	data := []byte("kms")
	_, err := s.Put(t.Context(), archive.PutInput{Key: "kms.txt", Size: 3, SHA256: sha256.Sum256(data)}, bytes.NewReader(data))
	require.NoError(t, err)
	writes := rec.writes()
	require.Len(t, writes, 1)
	assert.Equal(t, "aws:kms", writes[0].header.Get("X-Amz-Server-Side-Encryption"))
	assert.Equal(t, cfg.SSEKMSKeyID, writes[0].header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"))
}

// AWS answers a conditional write that races another with 409
// ConditionalRequestConflict and asks for a retry; Put retries.
func TestS3StoreRetriesConditionalRequestConflict(t *testing.T) {
	t.Parallel()
	cfg := s3Config(t)
	rec, endpoint := newRecorder(t, cfg.Endpoint)
	var conflicts atomic.Int32
	rec.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || conflicts.Add(1) > 2 {
			return false
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>ConditionalRequestConflict</Code><Message>A conflicting operation occurred.</Message></Error>`)
		return true
	}
	cfg.Endpoint = endpoint
	s := newS3Store(t, cfg)
	data := []byte("raced")
	in := archive.PutInput{Key: "raced.txt", Size: int64(len(data)), SHA256: sha256.Sum256(data)}
	res, err := s.Put(t.Context(), in, bytes.NewReader(data))
	require.NoError(t, err)
	assert.False(t, res.Existed)
	assert.Equal(t, int32(3), conflicts.Load(), "two conflicts, then the write")
	require.NoError(t, archive.Verify(t.Context(), s, in.Key, in.Size, in.SHA256))
}

// When the connection breaks before S3 answers, what is at the key decides
// the outcome: the same bytes (our write landed, or an earlier one did) are
// a success, other bytes a conflict, and nothing an error to retry.
func TestS3StoreSettlesBrokenConnection(t *testing.T) {
	t.Parallel()
	data := []byte("the bytes this put sends")
	in := archive.PutInput{Key: "broken.txt", Size: int64(len(data)), SHA256: sha256.Sum256(data)}
	for _, c := range []struct {
		desc    string
		already []byte
		check   func(t *testing.T, res archive.PutResult, err error)
	}{
		{"same bytes stored", data, func(t *testing.T, res archive.PutResult, err error) {
			require.NoError(t, err)
			assert.True(t, res.Existed)
		}},
		{"other bytes stored", []byte("someone else's"), func(t *testing.T, _ archive.PutResult, err error) {
			require.ErrorIs(t, err, archive.ErrConflict)
		}},
		{"nothing stored", nil, func(t *testing.T, _ archive.PutResult, err error) {
			require.Error(t, err)
			assert.NotErrorIs(t, err, archive.ErrConflict)
			assert.NotErrorIs(t, err, archive.ErrChecksumMismatch)
		}},
	} {
		t.Run(c.desc, func(t *testing.T) {
			t.Parallel()
			cfg := s3Config(t)
			if c.already != nil {
				direct := newS3Store(t, cfg)
				_, err := direct.Put(t.Context(), archive.PutInput{
					Key: in.Key, Size: int64(len(c.already)), SHA256: sha256.Sum256(c.already),
				}, bytes.NewReader(c.already))
				require.NoError(t, err)
			}
			rec, endpoint := newRecorder(t, cfg.Endpoint)
			rec.intercept = func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodPut {
					return false
				}
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
				return true
			}
			cfg.Endpoint = endpoint
			s := newS3Store(t, cfg) // only its PUTs are cut off
			res, err := s.Put(t.Context(), in, bytes.NewReader(data))
			c.check(t, res, err)
			if c.already == nil {
				_, err := s.Stat(t.Context(), in.Key)
				require.ErrorIs(t, err, archive.ErrNotFound)
			}
		})
	}
}

// Bytes changed on the server after the write are caught when read: the
// reader ends with ErrChecksumMismatch. (Stat reports S3's own record of
// what was written, which is what S3 durability promises to keep.)
func TestS3StoreReadDetectsChangedBytes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		multipart bool
	}{{"single", false}, {"multipart", true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := s3Config(t)
			if c.multipart {
				cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
			}
			s := newS3Store(t, cfg)
			data := bytes.Repeat([]byte("0123456789abcdef"), (6<<20)/16)
			in := archive.PutInput{Key: "rot/object.bin", Size: int64(len(data)), SHA256: sha256.Sum256(data)}
			_, err := s.Put(t.Context(), in, bytes.NewReader(data))
			require.NoError(t, err)

			info, err := s.Stat(t.Context(), in.Key)
			require.NoError(t, err)
			if c.multipart {
				assert.Zero(t, info.SHA256, "S3 keeps no full-object SHA-256 of a multipart object")
			} else {
				assert.Equal(t, in.SHA256, info.SHA256)
			}

			path := filepath.Join(testenv.S3(t).DataDir, cfg.Bucket, "rot", "object.bin")
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteAt([]byte("X"), 5<<20+3)
			require.NoError(t, err)
			require.NoError(t, f.Close())

			rc, err := s.Open(t.Context(), in.Key)
			require.NoError(t, err)
			defer rc.Close()
			_, err = io.Copy(io.Discard, rc)
			if c.multipart {
				// No server checksum to compare with: only Verify's
				// read-back against the catalog's SHA-256 catches it.
				require.NoError(t, err)
				err = archive.Verify(t.Context(), s, in.Key, in.Size, in.SHA256)
			}
			require.ErrorIs(t, err, archive.ErrChecksumMismatch)
		})
	}
}

// Invariant 3: a secret never reaches an error message.
func TestS3StoreErrorsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	cfg := s3Config(t)
	const secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
	cfg.Credentials = credentials.NewStaticCredentialsProvider(testenv.S3AccessKey, secret, "")
	s := newS3Store(t, cfg)
	data := []byte("x")
	_, err := s.Put(t.Context(), archive.PutInput{Key: "k", Size: 1, SHA256: sha256.Sum256(data)}, bytes.NewReader(data))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "SignatureDoesNotMatch", "the failure is the signature")
	assert.NotContains(t, err.Error(), secret)
	_, err = s.Stat(t.Context(), "k")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret)
}

func TestNewS3StoreConfigErrors(t *testing.T) {
	t.Parallel()
	valid := archive.S3Config{Bucket: "media-archive", Region: "eu-west-1"}
	cases := []struct {
		desc   string
		mutate func(*archive.S3Config)
		want   string
	}{
		{"no bucket", func(c *archive.S3Config) { c.Bucket = "" }, "S3Config.Bucket is empty"},
		{"bad bucket", func(c *archive.S3Config) { c.Bucket = "Media_Archive" }, `S3Config.Bucket "Media_Archive"`},
		{"bad SSE", func(c *archive.S3Config) { c.SSE = "aes256" }, `S3Config.SSE "aes256"`},
		{"KMS key without KMS", func(c *archive.S3Config) { c.SSE = archive.SSEAES256; c.SSEKMSKeyID = "k" }, "S3Config.SSEKMSKeyID"},
		{"endpoint scheme", func(c *archive.S3Config) { c.Endpoint = "ftp://host" }, `"ftp://host" must be an http or https URL`},
		{"endpoint without host", func(c *archive.S3Config) { c.Endpoint = "http://" }, "has no host"},
		{"plain http to a remote host", func(c *archive.S3Config) { c.Endpoint = "http://s3.internal:7070" }, "plain http to a host that is not loopback"},
		{"threshold too big", func(c *archive.S3Config) { c.MultipartThreshold = 6 << 30 }, "S3Config.MultipartThreshold"},
		{"part too small", func(c *archive.S3Config) { c.PartSize = 1 << 20 }, "S3Config.PartSize 1048576"},
	}
	for _, c := range cases {
		cfg := valid
		c.mutate(&cfg)
		_, err := archive.NewS3Store(t.Context(), cfg)
		require.ErrorContains(t, err, c.want, c.desc)
	}

	cfg := valid
	cfg.Endpoint = "http://s3.internal:7070"
	_, err := archive.NewS3Store(t.Context(), cfg)
	require.ErrorIs(t, err, archive.ErrInsecureEndpoint)
	cfg.AllowHTTP = true
	_, err = archive.NewS3Store(t.Context(), cfg)
	require.NoError(t, err, "plain http allowed explicitly")

	cfg = valid
	cfg.Endpoint = "https://AKIDEXAMPLE:s3cr3tv4lue@s3.example.com"
	_, err = archive.NewS3Store(t.Context(), cfg)
	require.ErrorContains(t, err, "must not contain credentials")
	assert.NotContains(t, err.Error(), "s3cr3tv4lue")
}

// Memory does not grow with object size: 32 concurrent uploads of 8 MiB
// each allocate a small fraction of the 256 MiB they move, because bodies
// stream from their spools to the socket.
//
// Not parallel: it measures the process's allocations, which other tests
// running at the same time would inflate.
func TestS3StorePutMemoryDoesNotGrowWithSize(t *testing.T) {
	const uploads, size = 32, 8 << 20
	s := newS3Store(t, s3Config(t))
	spools := make([]*archive.Spool, uploads)
	for i := range spools {
		sp := archive.NewSpool(archive.SpoolConfig{Dir: t.TempDir()})
		t.Cleanup(func() { _ = sp.Close() })
		chunk := bytes.Repeat([]byte{byte(i)}, 64<<10)
		for range size / len(chunk) {
			_, err := sp.Write(chunk)
			require.NoError(t, err)
		}
		spools[i] = sp
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	errs := make([]error, uploads)
	for i, sp := range spools {
		wg.Go(func() {
			body, err := sp.Reader()
			if err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = s.Put(t.Context(), archive.PutInput{
				Key: "mem/" + strings.Repeat("x", i+1), Size: sp.Size(), SHA256: sp.SHA256(),
			}, body)
		})
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	require.NoError(t, errors.Join(errs...))

	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d MiB to upload %d MiB", allocated>>20, uploads*size>>20)
	assert.Less(t, allocated, uint64(uploads*size/4), "uploads must stream, not buffer")
}

func hexOf(sum [32]byte) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 64)
	for i, c := range sum {
		b[2*i], b[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(b)
}

// With Object Lock, Put reports the retention S3 holds for the object, read
// back after the write, not the one asked for; a server that applied none
// or less fails the put. A proxy in front of the gateway stands for the
// servers that would answer otherwise (the write itself is signed, so it
// is the read-back answer that the proxy changes).
func TestS3StorePutReportsAppliedRetention(t *testing.T) {
	t.Parallel()
	asked := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Second)
	retention := func(w http.ResponseWriter, mode string, until time.Time) {
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Mode>%s</Mode><RetainUntilDate>%s</RetainUntilDate></Retention>`,
			mode, until.Format(time.RFC3339))
	}
	cases := []struct {
		desc      string
		answer    func(w http.ResponseWriter) // nil: the gateway's own answer
		wantMode  objects.LockMode
		wantUntil time.Time
		wantErr   string
	}{
		{desc: "as the gateway applied it", wantMode: objects.LockGovernance, wantUntil: asked},
		{desc: "longer than asked", answer: func(w http.ResponseWriter) { retention(w, "GOVERNANCE", asked.Add(24*time.Hour)) },
			wantMode: objects.LockGovernance, wantUntil: asked.Add(24 * time.Hour)},
		{desc: "stronger mode", answer: func(w http.ResponseWriter) { retention(w, "COMPLIANCE", asked) },
			wantMode: objects.LockCompliance, wantUntil: asked},
		{desc: "none applied", answer: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchObjectLockConfiguration</Code><Message>none</Message></Error>`)
		}, wantErr: "S3 holds no retention"},
		{desc: "shorter than asked", answer: func(w http.ResponseWriter) { retention(w, "GOVERNANCE", asked.Add(-time.Hour)) },
			wantErr: "S3 retains until " + asked.Add(-time.Hour).Format(time.RFC3339)},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			t.Parallel()
			cfg := s3Config(t, testenv.WithObjectLock())
			rec, endpoint := newRecorder(t, cfg.Endpoint)
			rec.intercept = func(w http.ResponseWriter, r *http.Request) bool {
				if _, ok := r.URL.Query()["retention"]; !ok || r.Method != http.MethodGet || c.answer == nil {
					return false
				}
				c.answer(w)
				return true
			}
			cfg.Endpoint = endpoint
			s := newS3Store(t, cfg)
			data := []byte("locked bytes")
			in := archive.PutInput{Key: "locked.txt", Size: int64(len(data)), SHA256: sha256.Sum256(data),
				LockMode: objects.LockGovernance, RetainUntil: asked}
			res, err := s.Put(t.Context(), in, bytes.NewReader(data))
			if c.wantErr != "" {
				require.ErrorIs(t, err, archive.ErrLockNotApplied)
				require.ErrorContains(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.wantMode, res.LockMode)
			assert.True(t, c.wantUntil.Equal(res.RetainUntil), "retain until %v, want %v", res.RetainUntil, c.wantUntil)
			// A retried put finds the object and reports its retention too.
			again, err := s.Put(t.Context(), in, bytes.NewReader(data))
			require.NoError(t, err)
			assert.True(t, again.Existed)
			assert.Equal(t, res.LockMode, again.LockMode)
			assert.True(t, res.RetainUntil.Equal(again.RetainUntil))
		})
	}
}
