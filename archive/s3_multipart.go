package archive

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func (s *S3Store) putMultipart(ctx context.Context, in PutInput, contentType string, meta map[string]string, body io.ReadSeeker) (PutResult, error) {
	partSize := max(s.partSize, (in.Size+maxPartCount-1)/maxPartCount)
	if partSize > maxPutSize {
		return PutResult{}, fmt.Errorf("s3 put %q: %w: %d bytes is more than S3 allows in one object", in.Key, ErrInvalidInput, in.Size)
	}
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(in.Key),
		ContentType:          aws.String(contentType),
		ChecksumAlgorithm:    types.ChecksumAlgorithmSha256,
		Metadata:             meta,
		ServerSideEncryption: s.sse,
		SSEKMSKeyId:          optional(s.kmsKeyID),

		ObjectLockMode:            types.ObjectLockMode(in.LockMode),
		ObjectLockRetainUntilDate: optionalTime(in.RetainUntil),
		ObjectLockLegalHoldStatus: legalHoldStatus(in.LegalHold),
	})
	if err != nil {
		return PutResult{}, fmt.Errorf("s3 put %q: start multipart upload: %w", in.Key, err)
	}
	up := &multipartUpload{s: s, key: in.Key, id: created.UploadId}
	completed := false
	defer func() {
		if !completed {
			up.abort(ctx)
		}
	}()

	// Parts are read through an io.ReaderAt so that each part's reader has
	// its own position: the HTTP transport may still hold one part's body
	// while the next is hashed.
	ra, ok := body.(io.ReaderAt)
	if !ok {
		ra = &lockedReaderAt{rs: body}
	}
	whole := sha256.New()
	buf := make([]byte, 256<<10)
	for off, num := int64(0), int32(1); off < in.Size; off, num = off+partSize, num+1 {
		n := min(partSize, in.Size-off)
		ph := sha256.New()
		got, err := io.CopyBuffer(io.MultiWriter(ph, whole), io.NewSectionReader(ra, off, n), buf)
		if err != nil {
			return PutResult{}, fmt.Errorf("s3 put %q: read part %d: %w", in.Key, num, err)
		}
		if got != n {
			return PutResult{}, fmt.Errorf("s3 put %q: part %d has %d bytes, want %d: %w", in.Key, num, got, n, ErrChecksumMismatch)
		}
		if err := up.part(ctx, num, io.NewSectionReader(ra, off, n), n, ph.Sum(nil)); err != nil {
			return PutResult{}, err
		}
	}
	var wholeSum [32]byte
	whole.Sum(wholeSum[:0])
	if wholeSum != in.SHA256 {
		return PutResult{}, fmt.Errorf("s3 put %q: body has sha256 %x, PutInput.SHA256 says %x: %w", in.Key, wholeSum, in.SHA256, ErrChecksumMismatch)
	}
	out, err := up.complete(ctx, in.Size)
	if err != nil {
		return s.putFailed(ctx, in, err)
	}
	completed = true
	return PutResult{VersionID: aws.ToString(out.VersionId)}, nil
}

// multipartUpload is an S3 multipart upload under way.
type multipartUpload struct {
	s     *S3Store
	key   string
	id    *string
	parts []types.CompletedPart
}

// part uploads part num (from 1) of n bytes whose SHA-256 is raw; S3 checks
// the bytes against it.
func (u *multipartUpload) part(ctx context.Context, num int32, body io.ReadSeeker, n int64, raw []byte) error {
	sum := base64.StdEncoding.EncodeToString(raw)
	out, err := u.s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:         aws.String(u.s.bucket),
		Key:            aws.String(u.key),
		UploadId:       u.id,
		PartNumber:     aws.Int32(num),
		Body:           body,
		ContentLength:  aws.Int64(n),
		ChecksumSHA256: aws.String(sum),
	}, knownPayloadSHA256(raw))
	if err != nil {
		if c := apiCode(err); c == "BadDigest" || c == "XAmzContentSHA256Mismatch" || c == "IncompleteBody" {
			return fmt.Errorf("s3 put %q: the server rejected part %d: %w: %w", u.key, num, ErrChecksumMismatch, err)
		}
		return fmt.Errorf("s3 put %q: upload part %d: %w", u.key, num, err)
	}
	u.parts = append(u.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num), ChecksumSHA256: aws.String(sum)})
	return nil
}

// complete publishes the object, create-only (If-None-Match: *).
func (u *multipartUpload) complete(ctx context.Context, size int64) (*s3.CompleteMultipartUploadOutput, error) {
	return u.s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(u.s.bucket),
		Key:             aws.String(u.key),
		UploadId:        u.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts},
		IfNoneMatch:     aws.String("*"),
		MpuObjectSize:   aws.Int64(size),
	})
}

// abort drops the upload's parts, even when ctx is done: an abandoned
// upload keeps its parts (and bills for them) until a lifecycle rule
// removes them.
func (u *multipartUpload) abort(ctx context.Context) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, _ = u.s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(u.s.bucket), Key: aws.String(u.key), UploadId: u.id,
	})
}

// lockedReaderAt gives an io.ReadSeeker the io.ReaderAt that multipart
// uploads read parts through.
type lockedReaderAt struct {
	mu sync.Mutex
	rs io.ReadSeeker
}

func (l *lockedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.rs.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.ReadFull(l.rs, p)
}
