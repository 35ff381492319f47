package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/mediasync/mediasync/internal/objects"
)

// Creator is a Store that also takes an object whose size and SHA-256 are
// not known until its last byte, written as a stream: a zip export, built
// as it is uploaded. Both stores implement it.
type Creator interface {
	// Create starts a create-only object at key. Nothing is visible at key
	// until Commit succeeds; Abort (or a failed Commit) leaves nothing. A
	// key has one writer at a time: Create discards what an earlier,
	// unfinished writer of the same key left (it crashed).
	Create(ctx context.Context, key, contentType string) (ObjectWriter, error)
}

// ObjectWriter is an object being written by Creator.Create.
type ObjectWriter interface {
	io.Writer
	// Commit publishes the object, create-only: ErrConflict if the key is
	// taken. It returns the object's size and SHA-256 with the result.
	Commit() (StreamResult, error)
	// Abort discards what was written. It is safe after Commit.
	Abort()
}

// StreamResult is a committed stream's outcome.
type StreamResult struct {
	PutResult
	Size   int64
	SHA256 [32]byte
}

// Presigner is a Store that can hand out time-limited GET URLs for its
// objects (S3). Presigning needs no request to the server.
type Presigner interface {
	PresignGet(ctx context.Context, key string, valid time.Duration) (string, error)
}

// PresignGet implements Presigner.
func (s *S3Store) PresignGet(ctx context.Context, key string, valid time.Duration) (string, error) {
	if err := checkKey(key); err != nil {
		return "", fmt.Errorf("s3 presign: %w", err)
	}
	if valid <= 0 || valid > objects.MaxPresign {
		return "", fmt.Errorf("s3 presign %q: %w: validity %s is not between 1s and 7 days", key, ErrInvalidInput, valid)
	}
	req, err := s3.NewPresignClient(s.client).PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key),
	}, s3.WithPresignExpires(valid))
	if err != nil {
		return "", fmt.Errorf("s3 presign %q: %w", key, err)
	}
	return req.URL, nil
}

// abortUploads abandons the unfinished uploads of exactly key: a stream has
// one writer at a time, so any such upload is a crashed writer's, and its
// parts would otherwise be kept (and billed) until a lifecycle rule runs.
func (s *S3Store) abortUploads(ctx context.Context, key string) error {
	out, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket), Prefix: aws.String(key)})
	if err != nil {
		return fmt.Errorf("s3 create %q: list unfinished uploads: %w", key, err)
	}
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) == key {
			(&multipartUpload{s: s, key: key, id: u.UploadId}).abort(ctx)
		}
	}
	return nil
}

// Create implements Creator with a multipart upload: the stream is cut into
// parts of the store's part size, each uploaded (with its SHA-256, checked
// by S3) as soon as it is full, so memory holds one part whatever the size.
func (s *S3Store) Create(ctx context.Context, key, contentType string) (ObjectWriter, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("s3 create: %w", err)
	}
	if contentType == "" {
		contentType = defaultContentType
	}
	if err := s.abortUploads(ctx, key); err != nil {
		return nil, err
	}
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(key),
		ContentType:          aws.String(contentType),
		ChecksumAlgorithm:    types.ChecksumAlgorithmSha256,
		ServerSideEncryption: s.sse,
		SSEKMSKeyId:          optional(s.kmsKeyID),
	})
	if err != nil {
		return nil, fmt.Errorf("s3 create %q: start multipart upload: %w", key, err)
	}
	return &s3Writer{
		ctx: ctx, up: &multipartUpload{s: s, key: key, id: created.UploadId},
		buf: make([]byte, 0, min(s.partSize, streamPartSize)), whole: sha256.New(),
	}, nil
}

type s3Writer struct {
	ctx   context.Context
	up    *multipartUpload
	buf   []byte
	whole hash.Hash
	n     int64
	num   int32
	err   error
	done  bool
}

func (w *s3Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		k := min(len(p), cap(w.buf)-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p, written = p[k:], written+k
		if len(w.buf) == cap(w.buf) {
			if w.err = w.flush(); w.err != nil {
				return written, w.err
			}
		}
	}
	return written, nil
}

// flush uploads the buffered bytes as the next part.
func (w *s3Writer) flush() error {
	if w.num == maxPartCount {
		return fmt.Errorf("s3 create %q: %w: more than %d parts", w.up.key, ErrInvalidInput, maxPartCount)
	}
	w.num++
	sum := sha256.Sum256(w.buf)
	w.whole.Write(w.buf)
	w.n += int64(len(w.buf))
	if err := w.up.part(w.ctx, w.num, bytes.NewReader(w.buf), int64(len(w.buf)), sum[:]); err != nil {
		return err
	}
	w.buf = w.buf[:0]
	return nil
}

func (w *s3Writer) Commit() (StreamResult, error) {
	if w.err != nil {
		return StreamResult{}, w.err
	}
	// The last part may be short; an empty stream is one empty part.
	if len(w.buf) > 0 || w.num == 0 {
		if w.err = w.flush(); w.err != nil {
			return StreamResult{}, w.err
		}
	}
	out, err := w.up.complete(w.ctx, w.n)
	if err != nil {
		w.err = err
		if apiCode(err) == "PreconditionFailed" {
			return StreamResult{}, fmt.Errorf("s3 create %q: %w", w.up.key, ErrConflict)
		}
		return StreamResult{}, fmt.Errorf("s3 create %q: complete: %w", w.up.key, err)
	}
	w.done = true
	r := StreamResult{PutResult: PutResult{VersionID: aws.ToString(out.VersionId)}, Size: w.n}
	w.whole.Sum(r.SHA256[:0])
	return r, nil
}

func (w *s3Writer) Abort() {
	if !w.done {
		w.done = true
		w.up.abort(w.ctx)
	}
	if w.err == nil {
		w.err = errors.New("s3 create: aborted")
	}
}

// Create implements Creator with a temporary file published by link(2),
// as Put publishes its objects.
func (s *FileStore) Create(ctx context.Context, key, contentType string) (ObjectWriter, error) {
	obj, side, err := s.paths(key)
	if err != nil {
		return nil, fmt.Errorf("file create: %w", err)
	}
	if contentType == "" {
		contentType = defaultContentType
	}
	f, err := os.CreateTemp(s.tmp, "create-*")
	if err != nil {
		return nil, fmt.Errorf("file create %q: %w", key, err)
	}
	return &fileWriter{ctx: ctx, s: s, key: key, contentType: contentType, obj: obj, side: side, f: f, hw: NewHashWriter(f)}, nil
}

type fileWriter struct {
	ctx                         context.Context
	s                           *FileStore
	key, contentType, obj, side string
	f                           *os.File
	hw                          *HashWriter // onto f
	closed                      bool
}

func (w *fileWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("file create %q: write after commit or abort", w.key)
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.hw.Write(p)
}

func (w *fileWriter) Commit() (StreamResult, error) {
	if w.closed {
		return StreamResult{}, fmt.Errorf("file create %q: commit after commit or abort", w.key)
	}
	w.closed = true
	tmp := w.f.Name()
	defer os.Remove(tmp)
	if err := errors.Join(w.f.Chmod(0o444), w.f.Sync(), w.f.Close()); err != nil {
		return StreamResult{}, fmt.Errorf("file create %q: %w", w.key, err)
	}
	r := StreamResult{Size: w.hw.Size(), SHA256: w.hw.SHA256()}
	in := PutInput{Key: w.key, ContentType: w.contentType, Size: r.Size, SHA256: r.SHA256}
	meta, err := checkPutInput(in)
	if err != nil {
		return StreamResult{}, fmt.Errorf("file create: %w", err)
	}
	car := sidecar{Key: w.key, Size: r.Size, SHA256: hex.EncodeToString(r.SHA256[:]), ContentType: w.contentType, Metadata: meta}
	res, err := w.s.publish(w.ctx, in, car, tmp, w.obj, w.side)
	if err != nil {
		return StreamResult{}, err
	}
	if res.Existed {
		// Create is create-only: identical bytes already there were not
		// written by this stream.
		return StreamResult{}, fmt.Errorf("file create %q: %w", w.key, ErrConflict)
	}
	r.PutResult = res
	return r, nil
}

func (w *fileWriter) Abort() {
	if !w.closed {
		w.closed = true
		_ = w.f.Close()
		_ = os.Remove(w.f.Name())
	}
}

// streamPartSize caps the part a stream buffers: 16 MiB parts allow streams
// of up to 160 GB (S3's 10 000 parts) for 16 MiB of memory.
const streamPartSize = 16 << 20
