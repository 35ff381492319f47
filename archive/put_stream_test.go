package archive_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/internal/objects"
	"github.com/mediasync/mediasync/internal/testenv"
)

// onlyReader hides every method of a reader but Read: what a download is.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// An S3Store streams only where the SDK sends trailing checksums: over
// https, for an object of one PutObject.
func TestS3StoreStreamsOnlyOverTLS(t *testing.T) {
	t.Parallel()
	tlsStore := newS3Store(t, s3Config(t))
	httpStore := newS3Store(t, s3ConfigOn(t, testenv.S3HTTP(t)))
	assert.True(t, tlsStore.Streams(100<<20))
	assert.False(t, tlsStore.Streams(0), "an empty object has no chunk to trail")
	assert.False(t, tlsStore.Streams(archive.DefaultMultipartThreshold+1), "above the threshold objects go in parts")
	assert.False(t, httpStore.Streams(100<<20), "plain http: no trailing checksum")

	data := []byte("over plain http the caller must spool")
	_, err := httpStore.PutStream(t.Context(), archive.PutInput{Key: "k", Size: int64(len(data))}, bytes.NewReader(data), nil)
	require.ErrorIs(t, err, archive.ErrInvalidInput)
	_, err = httpStore.Stat(t.Context(), "k")
	require.ErrorIs(t, err, archive.ErrNotFound)
}

// The streamed PUT carries what makes the archive safe: the SHA-256 as a
// trailer for the server to check (aws-chunked, no checksum header), the
// create-only precondition, SSE, Object Lock and the metadata.
func TestS3StorePutStreamRequestHeaders(t *testing.T) {
	t.Parallel()
	cfg := s3Config(t, testenv.WithObjectLock())
	rec := newTLSRecorder(t, &cfg)
	cfg.SSE = archive.SSEAES256
	s := newS3Store(t, cfg)
	data := bytes.Repeat([]byte{0xd8, 0xff}, 3<<20)
	until := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Second)
	in := archive.PutInput{Key: "stream/object.bin", ContentType: "video/mp4", Size: int64(len(data)),
		Metadata: map[string]string{archive.MetaMediaSID: "ME00000000000000000000000000000001"},
		LockMode: objects.LockGovernance, RetainUntil: until}
	res, err := s.PutStream(t.Context(), in, onlyReader{bytes.NewReader(data)}, nil)
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(data), res.SHA256)
	assert.Equal(t, objects.LockGovernance, res.LockMode, "the retention read back")
	assert.True(t, until.Equal(res.RetainUntil))

	writes := rec.writes()
	require.Len(t, writes, 1)
	h := writes[0].header
	assert.Contains(t, h.Values("Content-Encoding"), "aws-chunked")
	assert.Equal(t, "x-amz-checksum-sha256", h.Get("X-Amz-Trailer"))
	assert.Equal(t, "SHA256", h.Get("X-Amz-Sdk-Checksum-Algorithm"))
	assert.Empty(t, h.Get("X-Amz-Checksum-Sha256"), "the checksum trails the body")
	assert.Equal(t, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", h.Get("X-Amz-Content-Sha256"))
	assert.Equal(t, fmt.Sprint(len(data)), h.Get("X-Amz-Decoded-Content-Length"))
	assert.Equal(t, "*", h.Get("If-None-Match"))
	assert.Equal(t, archive.SSEAES256, h.Get("X-Amz-Server-Side-Encryption"))
	assert.Equal(t, "GOVERNANCE", h.Get("X-Amz-Object-Lock-Mode"))
	assert.Equal(t, until.Format(time.RFC3339), h.Get("X-Amz-Object-Lock-Retain-Until-Date"))
	assert.Equal(t, "ME00000000000000000000000000000001", h.Get("X-Amz-Meta-Media-Sid"))
	assert.Empty(t, h.Get("X-Amz-Meta-Sha256"), "not known when the headers go")
	require.NoError(t, archive.Verify(t.Context(), s, in.Key, in.Size, res.SHA256))
}

// A streamed put's SHA-256 is S3's to check: a body whose bytes differ
// from what the trailer says (a proxy that changes bytes in flight) is
// refused by S3 (BadDigest) and nothing is stored.
func TestS3StorePutStreamServerChecksTheTrailer(t *testing.T) {
	t.Parallel()
	cfg := s3Config(t)
	rec := newTLSRecorder(t, &cfg)
	rec.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut {
			r.Body = &flipByte{rc: r.Body, at: 1 << 20}
		}
		return false
	}
	s := newS3Store(t, cfg)
	data := bytes.Repeat([]byte("abcdefgh"), 512<<10) // 4 MiB
	_, err := s.PutStream(t.Context(), archive.PutInput{Key: "flipped.bin", Size: int64(len(data))}, onlyReader{bytes.NewReader(data)}, nil)
	require.ErrorIs(t, err, archive.ErrChecksumMismatch)
	_, err = s.Stat(t.Context(), "flipped.bin")
	require.ErrorIs(t, err, archive.ErrNotFound)
}

// flipByte changes one byte of a request body on its way.
type flipByte struct {
	rc io.ReadCloser
	at int64
	n  int64
}

func (f *flipByte) Read(p []byte) (int, error) {
	n, err := f.rc.Read(p)
	if f.n <= f.at && f.at < f.n+int64(n) {
		p[f.at-f.n] ^= 0x01
	}
	f.n += int64(n)
	return n, err
}

func (f *flipByte) Close() error { return f.rc.Close() }

// Invariant 3 for streams: a secret never reaches an error message.
func TestS3StorePutStreamErrorsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	cfg := s3Config(t)
	const secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
	cfg.Credentials = credentials.NewStaticCredentialsProvider(testenv.S3AccessKey, secret, "")
	s := newS3Store(t, cfg)
	data := bytes.Repeat([]byte("x"), 2<<20)
	_, err := s.PutStream(t.Context(), archive.PutInput{Key: "k", Size: int64(len(data))}, onlyReader{bytes.NewReader(data)}, nil)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret)
	_, err = s.Stat(t.Context(), "k")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret)
}

// Invariant 3: 32 streams of 8 MiB at once go through bounded buffers.
// Not parallel: it measures the process's allocations.
func TestS3StorePutStreamMemoryDoesNotGrowWithSize(t *testing.T) {
	const uploads, size = 32, 8 << 20
	s := newS3Store(t, s3Config(t))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	errs := make([]error, uploads)
	for i := range uploads {
		wg.Go(func() {
			body := io.LimitReader(repeatReader(byte(i)), size)
			_, errs[i] = s.PutStream(t.Context(), archive.PutInput{Key: "mem/" + strings.Repeat("x", i+1), Size: size}, onlyReader{body}, nil)
		})
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	require.NoError(t, errors.Join(errs...))
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d MiB to stream %d MiB", allocated>>20, uploads*size>>20)
	assert.Less(t, allocated, uint64(uploads*size/4), "streams must not buffer")
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// AWSChunked's stream is the SDK's encoding of one chunk and the SHA-256
// trailer, its length what it yields; a sum that fails (a refused body)
// ends the stream with that error before the final chunk and the trailer,
// so S3 cannot commit the object.
func TestAWSChunked(t *testing.T) {
	t.Parallel()
	body := []byte("hello, archive")
	sum := sha256.Sum256(body)
	enc, length := archive.AWSChunked(bytes.NewReader(body), int64(len(body)), func() ([32]byte, error) { return sum, nil })
	got, err := io.ReadAll(enc)
	require.NoError(t, err)
	want := "e\r\nhello, archive\r\n0\r\nx-amz-checksum-sha256:" + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
	assert.Equal(t, want, string(got))
	assert.Equal(t, int64(len(want)), length)

	refused := errors.New("not plausibly image/jpeg")
	enc, _ = archive.AWSChunked(bytes.NewReader(body), int64(len(body)), func() ([32]byte, error) { return [32]byte{}, refused })
	got, err = io.ReadAll(enc)
	require.ErrorIs(t, err, refused)
	assert.Equal(t, "e\r\nhello, archive", string(got), "nothing after the body: no final chunk, no trailer")
}
