package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/objects"
)

// The direct PutObject sends what the SDK's PutObject sends for the same
// input: the same path, body and headers (but for the SDK's own telemetry),
// signed over the same headers, over plain http and TLS, with and without
// encryption and Object Lock. A header the SDK sends and the direct one
// forgets (or the reverse) fails here.
func TestDirectPutSendsTheSDKsRequest(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("mms "), 5000)
	sum := sha256.Sum256(data)
	sdkOnly := map[string]bool{ // telemetry and per-call values
		"Amz-Sdk-Invocation-Id": true, "Amz-Sdk-Request": true, "User-Agent": true, "X-Amz-User-Agent": true,
		"X-Amz-Date": true, "Authorization": true, "Accept-Encoding": true,
	}
	for _, c := range []struct {
		name   string
		tls    bool
		sse    string
		kms    string
		locked bool
	}{
		{name: "http"},
		{name: "https", tls: true},
		{name: "https SSE-KMS, Object Lock, legal hold", tls: true, sse: SSEKMS, kms: "arn:aws:kms:us-east-1:111122223333:key/k", locked: true},
		{name: "http SSE-S3", sse: SSEAES256},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			type got struct {
				path   string
				header http.Header
				body   []byte
			}
			var (
				mu   sync.Mutex
				reqs []got
			)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				reqs = append(reqs, got{r.URL.EscapedPath(), r.Header.Clone(), b})
				mu.Unlock()
				w.Header().Set("X-Amz-Version-Id", "v1")
				w.WriteHeader(http.StatusOK)
			})
			srv := httptest.NewUnstartedServer(h)
			if c.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			s, err := NewS3Store(t.Context(), S3Config{
				Bucket: "bucket", Region: "us-east-1", Endpoint: srv.URL, UsePathStyle: true,
				Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "session"),
				HTTPClient:  buildable(srv), SSE: c.sse, SSEKMSKeyID: c.kms,
			})
			require.NoError(t, err)
			require.NotNil(t, s.direct, "the direct PutObject is used for a plain SigV4 endpoint")
			in := PutInput{Key: "acct/2026/12/ME 1+x.jpg", ContentType: "image/jpeg", Size: int64(len(data)), SHA256: sum,
				Metadata: map[string]string{"media-sid": "ME1", "message-sid": "MM1"}}
			if c.locked {
				in.LockMode, in.RetainUntil, in.LegalHold = objects.LockGovernance, time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), true
			}
			meta, err := checkPutInput(in)
			require.NoError(t, err)

			res, err := s.putSingle(t.Context(), in, in.ContentType, meta, bytes.NewReader(data))
			require.NoError(t, err)
			assert.Equal(t, "v1", res.VersionID)
			direct := s.direct
			s.direct = nil // the SDK's PutObject
			_, err = s.putSingle(t.Context(), in, in.ContentType, meta, bytes.NewReader(data))
			require.NoError(t, err)
			s.direct = direct

			require.Len(t, reqs, 2)
			mine, sdk := reqs[0], reqs[1]
			assert.Equal(t, sdk.path, mine.path)
			assert.Equal(t, sdk.body, mine.body)
			names := func(h http.Header) []string {
				var out []string
				for k := range h {
					if !sdkOnly[k] {
						out = append(out, k)
					}
				}
				sort.Strings(out)
				return out
			}
			require.Equal(t, names(sdk.header), names(mine.header))
			for _, k := range names(sdk.header) {
				assert.Equal(t, sdk.header.Values(k), mine.header.Values(k), k)
			}
			signed := func(h http.Header) string {
				a := h.Get("Authorization")
				_, rest, _ := strings.Cut(a, "SignedHeaders=")
				list, _, _ := strings.Cut(rest, ",")
				var out []string
				for _, n := range strings.Split(list, ";") {
					if !sdkOnly[http.CanonicalHeaderKey(n)] && n != "amz-sdk-invocation-id" && n != "amz-sdk-request" {
						out = append(out, n)
					}
				}
				return strings.Join(out, ";")
			}
			assert.Equal(t, signed(sdk.header), signed(mine.header))
			assert.Contains(t, mine.header.Get("Authorization"), "Credential=AKIDEXAMPLE/")
		})
	}
}

// Errors keep the SDK's shape: S3's code (what putFailed branches on), the
// HTTP status (what the retryer retries on).
func TestDirectPutErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		status int
		body   string
		code   string
		tries  int
	}{
		{412, `<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`, "PreconditionFailed", 1},
		{412, ``, "PreconditionFailed", 1},
		{400, `<?xml version="1.0"?><Error><Code>BadDigest</Code><Message>x</Message></Error>`, "BadDigest", 1},
		{503, `<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`, "SlowDown", 3},
		{500, `<Error><Code>InternalError</Code></Error>`, "InternalError", 3},
	} {
		var mu sync.Mutex
		tries := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			mu.Lock()
			tries++
			mu.Unlock()
			w.WriteHeader(c.status)
			_, _ = io.WriteString(w, c.body)
		}))
		s, err := NewS3Store(t.Context(), S3Config{
			Bucket: "bucket", Region: "us-east-1", Endpoint: srv.URL, UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""), HTTPClient: buildable(srv),
		})
		require.NoError(t, err)
		s.direct.retryer = quickRetries()
		data := []byte("x")
		_, err = s.direct.put(t.Context(), PutInput{Key: "k", Size: 1, SHA256: sha256.Sum256(data)}, "text/plain", nil, s, bytes.NewReader(data))
		require.Error(t, err)
		assert.Equal(t, c.code, apiCode(err), "%d %s", c.status, c.body)
		assert.Equal(t, c.tries, tries, "%d %s: attempts", c.status, c.code)
		assert.NotContains(t, err.Error(), "secret")
		srv.Close()
	}
}

// quickRetries is the SDK's standard retryer without its backoff.
func quickRetries() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
	})
}

// buildable is srv's client as a BuildableClient, which the SDK needs when
// AWS_CA_BUNDLE is set.
func buildable(srv *httptest.Server) *awshttp.BuildableClient {
	tr := srv.Client().Transport.(*http.Transport)
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) { t.TLSClientConfig = tr.TLSClientConfig })
}

// A server whose clock is an hour ahead refuses the first signature as too
// old; the put signs again on the server's time and succeeds, as the SDK's
// clock skew correction does.
func TestDirectPutCorrectsClockSkew(t *testing.T) {
	t.Parallel()
	ahead := time.Hour
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		now := time.Now().Add(ahead)
		w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
		signed, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil || now.Sub(signed).Abs() > 15*time.Minute {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message></Error>`)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	s, err := NewS3Store(t.Context(), S3Config{
		Bucket: "bucket", Region: "us-east-1", Endpoint: srv.URL, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""), HTTPClient: buildable(srv),
	})
	require.NoError(t, err)
	s.direct.retryer = quickRetries()
	data := []byte("x")
	_, err = s.direct.put(t.Context(), PutInput{Key: "k", Size: 1, SHA256: sha256.Sum256(data)}, "text/plain", nil, s, bytes.NewReader(data))
	require.NoError(t, err)
}

// S3 answers a PUT with the SHA-256 it computed; another one than the
// upload's fails the put with ErrChecksumMismatch, whatever a later read
// of the key would say.
func TestDirectPutChecksTheChecksumS3Reports(t *testing.T) {
	t.Parallel()
	other := sha256.Sum256([]byte("other bytes"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Amz-Checksum-Sha256", base64.StdEncoding.EncodeToString(other[:]))
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	s, err := NewS3Store(t.Context(), S3Config{
		Bucket: "bucket", Region: "us-east-1", Endpoint: srv.URL, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""), HTTPClient: buildable(srv),
	})
	require.NoError(t, err)
	data := []byte("x")
	_, err = s.Put(t.Context(), PutInput{Key: "k", Size: 1, SHA256: sha256.Sum256(data)}, bytes.NewReader(data))
	require.ErrorIs(t, err, ErrChecksumMismatch)
}
