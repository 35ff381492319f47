package archive

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Streamer is a Store that can also take an object as it arrives: read
// once, from a plain io.Reader, through a bounded buffer, never held whole
// in memory or on disk, and verified by the store before it becomes
// visible, as Put's are. S3Store streams when its endpoint is https: the
// SHA-256 then travels as a trailing checksum (aws-chunked with
// x-amz-trailer: x-amz-checksum-sha256) that S3 checks before it commits
// the object. The SDK sends trailing checksums only over TLS, so over plain
// http Streams is false and the caller spools the bytes for Put.
type Streamer interface {
	Store

	// Streams reports whether PutStream takes an object of size bytes.
	Streams(size int64) bool

	// PutStream stores the in.Size bytes that body yields under in.Key,
	// create-only, with in's content type, metadata and Object Lock, as
	// Put does, and returns their size and SHA-256 as it computed them on
	// the way. in.SHA256 may be zero (unknown): a stream's SHA-256 is known
	// only at its end, so the object's metadata then has no MetaSHA256
	// (S3's own checksum of the object, which Stat reports, is the record).
	// When it is set, the bytes must have it.
	//
	// accept, when not nil, is called once body has given its last byte,
	// before the store may commit the object: the verdict on bytes that
	// are only known whole at their end (a Sniffer's). If accept refuses,
	// or body fails, ends short of in.Size or runs past it, or has another
	// SHA-256 than a non-zero in.SHA256, the upload is broken off before
	// its end, nothing is stored at in.Key, and PutStream returns an error
	// wrapping accept's (or ErrChecksumMismatch, or body's). Like Put, it
	// reports Existed for identical bytes already at in.Key (it then reads
	// body to its end to know) and ErrConflict for others.
	PutStream(ctx context.Context, in PutInput, body io.Reader, accept func() error) (StreamResult, error)
}

var _ Streamer = (*S3Store)(nil)

// Streams implements Streamer: true over https for an object of one
// PutObject (not empty, at most the multipart threshold).
func (s *S3Store) Streams(size int64) bool {
	return s.https && size > 0 && size <= s.threshold
}

// PutStream implements Streamer with one PutObject whose body is
// aws-chunked with a trailing x-amz-checksum-sha256: the SHA-256 that
// checkedBody computes as the bytes go (S3 hashes what it receives and
// refuses the object, BadDigest, if they differ). The body handed to the SDK is a checkedBody: at the
// download's end it checks the size, the SHA-256 and accept, and when one
// fails it returns the failure instead of io.EOF, so the SDK never sends
// the final chunk and the trailer, the request breaks off, and S3, which
// commits an object only once its trailer has checked out, stores nothing.
// A streamed request cannot be rewound, so the SDK does not retry it; the
// caller retries with a fresh download.
func (s *S3Store) PutStream(ctx context.Context, in PutInput, body io.Reader, accept func() error) (StreamResult, error) {
	meta, err := checkStreamInput(in)
	if err != nil {
		return StreamResult{}, fmt.Errorf("s3 put: %w", err)
	}
	if !s.Streams(in.Size) {
		return StreamResult{}, fmt.Errorf("s3 put %q: %w: this store does not stream %d bytes (plain-http endpoint, an empty object, or above the multipart threshold): use Put",
			in.Key, ErrInvalidInput, in.Size)
	}
	contentType := in.ContentType
	if contentType == "" {
		contentType = defaultContentType
	}
	b := newCheckedBody(body, in, accept)
	put := s.putObjectInput(in, contentType, meta, b)
	put.ChecksumAlgorithm = types.ChecksumAlgorithmSha256 // as a trailer: no x-amz-checksum-sha256 header is set
	out, err := s.client.PutObject(ctx, put, func(o *s3.Options) { o.Retryer = aws.NopRetryer{} }, trailingSHA256(b, in.Size))
	// The transport may still hold the body after PutObject returns (it
	// closes request bodies in its own goroutine): from here on, only this
	// goroutine reads the download.
	b.detach()
	if refused := b.refusal(); refused != nil {
		return StreamResult{}, fmt.Errorf("s3 put %q: nothing stored: %w", in.Key, refused)
	}
	var res StreamResult
	if err != nil {
		if res, err = s.streamFailed(ctx, in, b, err); err != nil {
			return StreamResult{}, err
		}
	} else {
		if !b.done {
			// A server that committed without the trailer: nothing here
			// vouches for what it holds.
			return StreamResult{}, fmt.Errorf("s3 put %q: the server answered before the body ended (after %d of %d bytes): %w", in.Key, b.n, in.Size, ErrChecksumMismatch)
		}
		res = StreamResult{PutResult: PutResult{VersionID: aws.ToString(out.VersionId)}, Size: b.n, SHA256: b.sum}
		// S3 answers with the checksum it verified: it must be of the
		// bytes this side hashed.
		if got := aws.ToString(out.ChecksumSHA256); got != base64.StdEncoding.EncodeToString(b.sum[:]) {
			if got != "" {
				return StreamResult{}, fmt.Errorf("s3 put %q: S3 verified sha256 %s, the stream had %x: %w", in.Key, got, b.sum, ErrChecksumMismatch)
			}
			if err := Verify(ctx, s, in.Key, b.n, b.sum); err != nil {
				return StreamResult{}, fmt.Errorf("s3 put %q: S3 reported no checksum, and: %w", in.Key, err)
			}
		}
	}
	if in.LockMode != "" {
		in.Size, in.SHA256 = res.Size, res.SHA256
		if res.PutResult, err = s.appliedLock(ctx, in, res.PutResult); err != nil {
			return StreamResult{}, err
		}
	}
	return res, nil
}

// streamFailed turns a failed streamed PutObject into the Store contract's
// answer. The key may be taken (412, or a connection the server reset
// when it refused early): only the whole body's SHA-256 can say whether
// by the same bytes, so the rest of the download is read (and judged, as
// before any commit) first.
func (s *S3Store) streamFailed(ctx context.Context, in PutInput, b *checkedBody, err error) (StreamResult, error) {
	if c := apiCode(err); (c == "PreconditionFailed" || c == "") && ctx.Err() == nil {
		if derr := b.drain(); derr != nil {
			return StreamResult{}, fmt.Errorf("s3 put %q: %w (and the upload failed: %v)", in.Key, derr, err)
		}
	}
	if !b.done {
		return StreamResult{}, fmt.Errorf("s3 put %q: %w", in.Key, err)
	}
	in.Size, in.SHA256 = b.n, b.sum
	res, err := s.putFailed(ctx, in, err)
	if err != nil {
		return StreamResult{}, err
	}
	return StreamResult{PutResult: res, Size: b.n, SHA256: b.sum}, nil
}

// checkStreamInput is checkPutInput for PutStream: in.SHA256 may be zero,
// and then the metadata has no MetaSHA256.
func checkStreamInput(in PutInput) (map[string]string, error) {
	if in.SHA256 != ([32]byte{}) {
		return checkPutInput(in)
	}
	if _, ok := in.Metadata[MetaSHA256]; ok {
		return nil, fmt.Errorf("%w: PutInput.Metadata[%q] is set but PutInput.SHA256 is not", ErrInvalidInput, MetaSHA256)
	}
	meta, err := checkPutInput(in)
	if err != nil {
		return nil, err
	}
	delete(meta, MetaSHA256)
	return meta, nil
}

// errDetached is what a transport still reading a checkedBody after its
// request ended gets.
var errDetached = errors.New("request body read after its request ended")

// checkedBody is the body a streamed put hands the store. It counts and
// hashes what passes through, reads at most one byte past the declared
// size, and, when the source ends, checks the size, the expected SHA-256
// and accept before it answers io.EOF; a failure is returned in place of
// io.EOF (and on every later Read), so whoever reads it never sees a
// complete body. Reads are serialised: the HTTP transport may read it from
// its own goroutine.
type checkedBody struct {
	mu       sync.Mutex
	r        io.Reader
	key      string
	size     int64
	want     [32]byte // zero: not known
	accept   func() error
	h        hash.Hash
	n        int64
	sum      [32]byte // once done
	done     bool     // read to its end and accepted
	refused  error    // why the body was refused; nil while being read or done
	err      error    // sticky: io.EOF once done, or refused, or the source's error
	detached bool
}

func newCheckedBody(r io.Reader, in PutInput, accept func() error) *checkedBody {
	return &checkedBody{r: r, key: in.Key, size: in.Size, want: in.SHA256, accept: accept, h: sha256.New()}
}

func (b *checkedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.detached {
		return 0, errDetached
	}
	return b.read(p)
}

func (b *checkedBody) read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if rest := b.size - b.n + 1; int64(len(p)) > rest {
		p = p[:rest] // one byte past the size shows a body that runs past it
	}
	n, err := b.r.Read(p)
	if b.n+int64(n) > b.size {
		n = int(b.size - b.n)
		b.refuse(fmt.Errorf("the body runs past the %d bytes declared: %w", b.size, ErrChecksumMismatch))
	}
	b.h.Write(p[:n])
	b.n += int64(n)
	switch {
	case b.err != nil:
	case errors.Is(err, io.EOF):
		b.finish()
	case err != nil:
		b.refuse(fmt.Errorf("read body: %w", err))
	}
	return n, b.err
}

func (b *checkedBody) refuse(why error) { b.refused, b.err = why, why }

// finish checks the whole body, at its end.
func (b *checkedBody) finish() {
	b.h.Sum(b.sum[:0])
	switch {
	case b.n != b.size:
		b.refuse(fmt.Errorf("the body ended after %d bytes, %d declared: %w", b.n, b.size, ErrChecksumMismatch))
		return
	case b.want != ([32]byte{}) && b.sum != b.want:
		b.refuse(fmt.Errorf("the body has sha256 %x, PutInput.SHA256 says %x: %w", b.sum, b.want, ErrChecksumMismatch))
		return
	}
	if b.accept != nil {
		if err := b.accept(); err != nil {
			b.refuse(err)
			return
		}
	}
	b.done, b.err = true, io.EOF
}

// detach ends reads through Read.
func (b *checkedBody) detach() {
	b.mu.Lock()
	b.detached = true
	b.mu.Unlock()
}

// drain reads the rest of the source (hashing and judging it), for a
// caller that must know the whole body's SHA-256. It returns the refusal,
// if any.
func (b *checkedBody) drain() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	buf := make([]byte, 32<<10)
	for b.err == nil {
		_, _ = b.read(buf)
	}
	return b.refused
}

// refusal returns why the body was refused, or nil.
func (b *checkedBody) refusal() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refused
}

// isHTTPS reports whether an S3 endpoint (empty: AWS) is https.
func isHTTPS(endpoint string) bool {
	return endpoint == "" || strings.HasPrefix(strings.ToLower(endpoint), "https://")
}

// Names in the aws-chunked body of a streamed put: its trailer's header
// and the payload hash it is signed with.
const (
	TrailerSHA256       = "x-amz-checksum-sha256"
	StreamingTrailerSig = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// trailingSHA256 makes a PutObject send its body as the SDK does for a
// trailing checksum (aws-chunked, x-amz-trailer, signed
// STREAMING-UNSIGNED-PAYLOAD-TRAILER), but with the trailer's value taken
// from b's SHA-256 instead of a second hash of every byte by the SDK's
// own checksum middlewares, which it replaces: the hash S3 checks is then
// the very one the catalog records.
func trailingSHA256(b *checkedBody, size int64) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			for _, id := range []string{"AWSChecksum:ComputeInputPayloadChecksum", "addInputChecksumTrailer"} {
				if _, err := st.Finalize.Remove(id); err != nil {
					return fmt.Errorf("replace the SDK's %s: %w", id, err)
				}
			}
			return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("mediasync:TrailingSHA256",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					req, ok := in.Request.(*smithyhttp.Request)
					if !ok || !req.IsHTTPS() {
						// A trailer is integrity-protected by TLS only.
						return middleware.FinalizeOutput{}, middleware.Metadata{}, errors.New("a streamed put needs https")
					}
					body, length := AWSChunked(b, size, b.acceptedSum)
					req, err := req.SetStream(body)
					if err != nil {
						return middleware.FinalizeOutput{}, middleware.Metadata{}, err
					}
					req.ContentLength = length
					req.Header.Add("Content-Encoding", "aws-chunked")
					req.Header.Set("X-Amz-Trailer", TrailerSHA256)
					req.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(size, 10))
					in.Request = req
					return next.HandleFinalize(v4.SetPayloadHash(ctx, StreamingTrailerSig), in)
				}), "ComputePayloadHash", middleware.Before)
		})
	}
}

// AWSChunked encodes a body of size bytes as S3's aws-chunked with a
// trailing checksum, as the SDK does: one chunk, then the final chunk and
// the x-amz-checksum-sha256 trailer with the SHA-256 that sum gives once
// body has given io.EOF:
//
//	<size hex>\r\n<bytes>\r\n0\r\nx-amz-checksum-sha256:<base64>\r\n\r\n
//
// It returns the stream and its length (the request's Content-Length).
// An error from sum ends the stream with that error, before the final
// chunk and the trailer: S3 never commits an object whose trailer it did
// not get.
func AWSChunked(body io.Reader, size int64, sum func() ([32]byte, error)) (io.Reader, int64) {
	head := strconv.FormatInt(size, 16) + "\r\n"
	tailLen := len("\r\n0\r\n"+TrailerSHA256+":") + base64.StdEncoding.EncodedLen(sha256.Size) + len("\r\n\r\n")
	return io.MultiReader(strings.NewReader(head), body, &chunkedTail{sum: sum}), int64(len(head)) + size + int64(tailLen)
}

// chunkedTail is the end of an AWSChunked stream, made when first read.
type chunkedTail struct {
	sum func() ([32]byte, error)
	r   io.Reader
}

func (t *chunkedTail) Read(p []byte) (int, error) {
	if t.r == nil {
		sum, err := t.sum()
		if err != nil {
			return 0, err
		}
		t.r = strings.NewReader("\r\n0\r\n" + TrailerSHA256 + ":" + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
	}
	return t.r.Read(p)
}

// acceptedSum is the body's SHA-256 once it was read to its end and
// accepted, the trailer's value: a refused body never gets one.
func (b *checkedBody) acceptedSum() ([32]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		return [32]byte{}, errors.New("aws-chunked trailer before the body was accepted")
	}
	return b.sum, nil
}
