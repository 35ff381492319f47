package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"iter"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/mediasync/mediasync/internal/objects"
	"github.com/mediasync/mediasync/internal/sleep"
)

// S3Store is a Store in an S3 bucket.
type S3Store struct {
	client    *s3.Client
	bucket    string
	sse       types.ServerSideEncryption
	kmsKeyID  string
	threshold int64
	partSize  int64
	https     bool       // the endpoint is TLS: PutStream can send trailing checksums
	direct    *directPut // nil: single PUTs go through the SDK's PutObject
}

var _ Store = (*S3Store)(nil)

// NewS3Store returns a store writing to cfg.Bucket. It loads the SDK's
// default configuration (environment, shared files) for whatever cfg leaves
// unset, but makes no request: a wrong bucket or credentials show up on the
// first call.
func NewS3Store(ctx context.Context, cfg S3Config) (*S3Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, config.WithHTTPClient(cfg.HTTPClient))
	} else {
		opts = append(opts, config.WithHTTPClient(defaultS3HTTPClient()))
	}
	if cfg.CABundle != "" {
		pem, err := os.ReadFile(cfg.CABundle)
		if err != nil {
			return nil, fmt.Errorf("s3 store: S3Config.CABundle: %w", err)
		}
		opts = append(opts, config.WithCustomCABundle(bytes.NewReader(pem)))
	}
	if cfg.ChecksumWhenRequired {
		opts = append(opts,
			config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
			config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 store: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		if cfg.Endpoint == "" {
			return nil, errors.New("s3 store: S3Config.Region is empty and the AWS environment names no region (set AWS_REGION)")
		}
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.UsePathStyle
	})
	st := &S3Store{
		client:    client,
		bucket:    cfg.Bucket,
		sse:       types.ServerSideEncryption(cfg.SSE),
		kmsKeyID:  cfg.SSEKMSKeyID,
		threshold: cfg.MultipartThreshold,
		partSize:  cfg.PartSize,
		https:     isHTTPS(cfg.Endpoint),
	}
	st.direct = newDirectPut(ctx, client, cfg.Bucket)
	if st.threshold == 0 {
		st.threshold = DefaultMultipartThreshold
	}
	if st.partSize == 0 {
		st.partSize = DefaultPartSize
	}
	return st, nil
}

// defaultS3HTTPClient is the SDK's default client (a BuildableClient, so
// CABundle and AWS_CA_BUNDLE still apply) with room for a worker's uploads.
// The SDK keeps 10 idle connections per host, and a worker has up to its
// tasks × 3 uploads in flight (48 by default at 16 tasks): past 10, each
// upload closed its connection, and the next one paid a new TLS handshake
// on both sides (issue #14's profile). A 64 KiB write buffer sends a small
// media's body in a few TLS records, not one per 4 KiB.
func defaultS3HTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 512, 256
		t.WriteBufferSize = 64 << 10
	})
}

// Location implements Store.
func (s *S3Store) Location() objects.Location {
	return objects.Location{Kind: objects.LocationS3, Bucket: s.bucket}
}

// Put implements Store.
//
// Objects up to the multipart threshold (all Twilio media) go up in a single
// PutObject carrying x-amz-checksum-sha256 and If-None-Match: *. S3 hashes
// what it receives, refuses the object if the hash differs (BadDigest), and
// keeps the hash as the object's full-object checksum, which Stat reads back:
// the archive itself proves the bytes. If-None-Match makes the write
// create-only, so a retry can never replace an object.
//
// Larger objects go up in parts, each with its own SHA-256 checked by S3,
// and the whole object's SHA-256 is checked here before the upload is
// completed (with If-None-Match). S3 keeps no full-object SHA-256 for such
// objects (only a hash of the part hashes), so Verify reads them back.
func (s *S3Store) Put(ctx context.Context, in PutInput, body io.ReadSeeker) (PutResult, error) {
	meta, err := checkPutInput(in)
	if err != nil {
		return PutResult{}, fmt.Errorf("s3 put: %w", err)
	}
	if err := checkBodySize(body, in.Size); err != nil {
		return PutResult{}, fmt.Errorf("s3 put %q: %w", in.Key, err)
	}
	contentType := in.ContentType
	if contentType == "" {
		contentType = defaultContentType
	}
	// A conditional write racing another one on AWS may fail with 409
	// ConditionalRequestConflict, which AWS says to retry.
	for attempt := 0; ; attempt++ {
		var res PutResult
		if in.Size > s.threshold {
			res, err = s.putMultipart(ctx, in, contentType, meta, body)
		} else {
			res, err = s.putSingle(ctx, in, contentType, meta, body)
		}
		if apiCode(err) != "ConditionalRequestConflict" || attempt == conflictRetries {
			if err == nil && in.LockMode != "" {
				return s.appliedLock(ctx, in, res)
			}
			return res, err
		}
		if err := sleep.For(ctx, time.Duration(50<<attempt)*time.Millisecond); err != nil {
			return PutResult{}, fmt.Errorf("s3 put %q: %w", in.Key, err)
		}
	}
}

const defaultContentType = "application/octet-stream"

// appliedLock reads back the retention S3 holds for the object just put and
// returns it in res, so that the catalog records what S3 applied, not what
// was asked. A server that ignored the Object Lock headers (a proxy, an
// S3-compatible server without Object Lock) or applied a weaker mode or an
// earlier date than asked fails the put: nobody may believe an object is
// locked when it is not. An object that Existed was put by an earlier
// attempt, with that attempt's (earlier) date: its mode must match, and its
// date is recorded as it is.
func (s *S3Store) appliedLock(ctx context.Context, in PutInput, res PutResult) (PutResult, error) {
	out, err := s.client.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{
		Bucket: aws.String(s.bucket), Key: aws.String(in.Key), VersionId: optional(res.VersionID),
	})
	switch {
	case err == nil && out.Retention != nil:
		res.LockMode = objects.LockMode(out.Retention.Mode)
		res.RetainUntil = aws.ToTime(out.Retention.RetainUntilDate).UTC()
	case err != nil && !noRetention(err):
		return PutResult{}, fmt.Errorf("s3 put %q: read back its Object Lock retention: %w", in.Key, err)
	}
	asked := fmt.Sprintf("%s until %s", in.LockMode, in.RetainUntil.UTC().Format(time.RFC3339))
	switch {
	case res.LockMode == "" || res.RetainUntil.IsZero():
		return PutResult{}, fmt.Errorf("s3 put %q: %w: asked %s, S3 holds no retention (does the server support Object Lock?)", in.Key, ErrLockNotApplied, asked)
	case lockStrength(res.LockMode) < lockStrength(in.LockMode):
		return PutResult{}, fmt.Errorf("s3 put %q: %w: asked %s, S3 holds %s", in.Key, ErrLockNotApplied, asked, res.LockMode)
	case !res.Existed && res.RetainUntil.Before(in.RetainUntil):
		return PutResult{}, fmt.Errorf("s3 put %q: %w: asked %s, S3 retains until %s", in.Key, ErrLockNotApplied, asked, res.RetainUntil.Format(time.RFC3339))
	}
	return res, nil
}

// noRetention reports an error that means the object has no retention.
func noRetention(err error) bool {
	switch apiCode(err) {
	case "NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError", "InvalidRequest":
		return true
	}
	return false
}

// lockStrength orders retention modes: COMPLIANCE binds even the root
// account, GOVERNANCE can be bypassed with a permission.
func lockStrength(m objects.LockMode) int {
	switch m {
	case objects.LockCompliance:
		return 2
	case objects.LockGovernance:
		return 1
	}
	return 0
}

// putObjectInput is a create-only PutObject of in with the store's
// encryption and in's Object Lock; the caller says how its SHA-256 travels.
func (s *S3Store) putObjectInput(in PutInput, contentType string, meta map[string]string, body io.Reader) *s3.PutObjectInput {
	return &s3.PutObjectInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(in.Key),
		Body:                 body,
		ContentLength:        aws.Int64(in.Size),
		ContentType:          aws.String(contentType),
		IfNoneMatch:          aws.String("*"),
		Metadata:             meta,
		ServerSideEncryption: s.sse,
		SSEKMSKeyId:          optional(s.kmsKeyID),

		ObjectLockMode:            types.ObjectLockMode(in.LockMode),
		ObjectLockRetainUntilDate: optionalTime(in.RetainUntil),
		ObjectLockLegalHoldStatus: legalHoldStatus(in.LegalHold),
	}
}

func (s *S3Store) putSingle(ctx context.Context, in PutInput, contentType string, meta map[string]string, body io.ReadSeeker) (PutResult, error) {
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return PutResult{}, fmt.Errorf("s3 put %q: rewind body: %w", in.Key, err)
	}
	if s.direct != nil {
		version, err := s.direct.put(ctx, in, contentType, meta, s, body)
		if errors.Is(err, ErrChecksumMismatch) { // S3 answered with another checksum than ours
			return PutResult{}, fmt.Errorf("s3 put %q: %w", in.Key, err)
		}
		if err != nil {
			return s.putFailed(ctx, in, err)
		}
		return PutResult{VersionID: version}, nil
	}
	put := s.putObjectInput(in, contentType, meta, body)
	put.ChecksumSHA256 = aws.String(base64.StdEncoding.EncodeToString(in.SHA256[:]))
	out, err := s.client.PutObject(ctx, put, knownPayloadSHA256(in.SHA256[:]))
	if err != nil {
		return s.putFailed(ctx, in, err)
	}
	return PutResult{VersionID: aws.ToString(out.VersionId)}, nil
}

// knownPayloadSHA256 hands SigV4 the body's SHA-256, which the caller has
// computed already. Over plain http (S3-compatible servers on a private
// network) the SDK otherwise reads the whole body once more to hash it
// before sending; over https it signs UNSIGNED-PAYLOAD, which this leaves
// alone. The value is the one the SDK would compute, so the request is the
// same byte for byte, and the server still checks the body against it.
func knownPayloadSHA256(sum []byte) func(*s3.Options) {
	payloadHash := hex.EncodeToString(sum)
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("mediasync:KnownPayloadSHA256",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					if req, ok := in.Request.(*smithyhttp.Request); ok && !req.IsHTTPS() {
						ctx = v4.SetPayloadHash(ctx, payloadHash)
					}
					return next.HandleFinalize(ctx, in)
				}), "ComputePayloadHash", middleware.Before)
		})
	}
}

// putFailed turns a failed PutObject or CompleteMultipartUpload into the
// Store contract's answer.
func (s *S3Store) putFailed(ctx context.Context, in PutInput, err error) (PutResult, error) {
	switch apiCode(err) {
	case "PreconditionFailed":
		// Something is already at the key: an earlier attempt of ours, or
		// another object. Only identical bytes make this a success.
		info, verr := verifyObject(ctx, s, in.Key, in.Size, in.SHA256)
		switch {
		case verr == nil:
			return PutResult{VersionID: info.VersionID, Existed: true}, nil
		case errors.Is(verr, ErrChecksumMismatch):
			return PutResult{}, fmt.Errorf("s3 put %q: %w (%v)", in.Key, ErrConflict, verr)
		default:
			return PutResult{}, fmt.Errorf("s3 put %q: key is taken but its object cannot be compared: %w", in.Key, verr)
		}
	case "BadDigest", "XAmzContentSHA256Mismatch", "IncompleteBody":
		return PutResult{}, fmt.Errorf("s3 put %q: the server rejected the bytes: %w: %w", in.Key, ErrChecksumMismatch, err)
	case "":
		// No answer from S3 at all: the connection broke. Either our write
		// landed and its response was lost, or the server refused it early
		// (some S3-compatible servers answer 412 and reset the connection
		// while the body is still being sent). What is at the key decides.
		if ctx.Err() != nil {
			break
		}
		info, verr := verifyObject(ctx, s, in.Key, in.Size, in.SHA256)
		switch {
		case verr == nil:
			return PutResult{VersionID: info.VersionID, Existed: true}, nil
		case errors.Is(verr, ErrChecksumMismatch):
			return PutResult{}, fmt.Errorf("s3 put %q: %w (%v; the put itself failed: %v)", in.Key, ErrConflict, verr, err)
		}
	}
	return PutResult{}, fmt.Errorf("s3 put %q: %w", in.Key, err)
}

// Stat implements Store. It asks S3 for the object's checksum
// (x-amz-checksum-mode: ENABLED); a full-object SHA-256 is S3's own record
// of what it stored, checked when the object was written.
func (s *S3Store) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return ObjectInfo{}, fmt.Errorf("s3 stat: %w", err)
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:       aws.String(s.bucket),
		Key:          aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		if isNotFound(err) {
			return ObjectInfo{}, fmt.Errorf("s3 stat %q: %w", key, ErrNotFound)
		}
		return ObjectInfo{}, fmt.Errorf("s3 stat %q: %w", key, err)
	}
	return ObjectInfo{
		Key:         key,
		Size:        aws.ToInt64(out.ContentLength),
		SHA256:      fullObjectSHA256(out.ChecksumSHA256, out.ChecksumType),
		ContentType: aws.ToString(out.ContentType),
		Metadata:    out.Metadata,
		VersionID:   aws.ToString(out.VersionId),
	}, nil
}

// fullObjectSHA256 decodes an x-amz-checksum-sha256 header, or returns zero
// for a composite checksum (a hash of part hashes, "…-N") or none.
func fullObjectSHA256(b64 *string, typ types.ChecksumType) [32]byte {
	var sum [32]byte
	if b64 == nil || typ == types.ChecksumTypeComposite || strings.Contains(*b64, "-") {
		return sum
	}
	raw, err := base64.StdEncoding.DecodeString(*b64)
	if err != nil || len(raw) != len(sum) {
		return sum
	}
	copy(sum[:], raw)
	return sum
}

// Open implements Store. The returned reader checks the bytes against S3's
// full-object SHA-256 (when it has one) and the object's length, and ends
// with ErrChecksumMismatch instead of io.EOF if they differ.
func (s *S3Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("s3 open: %w", err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket:       aws.String(s.bucket),
		Key:          aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled,
	}, func(o *s3.Options) {
		// The SDK's own response validation fails with an unexported error
		// type; verifyingReader checks the same SHA-256 and reports
		// ErrChecksumMismatch, which callers can branch on.
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			_, _ = st.Deserialize.Remove("AWSChecksum:ValidateOutputPayloadChecksum")
			return nil
		})
	})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("s3 open %q: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("s3 open %q: %w", key, err)
	}
	return newVerifyingReader(out.Body, key, aws.ToInt64(out.ContentLength), fullObjectSHA256(out.ChecksumSHA256, out.ChecksumType)), nil
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isNotFound(err error) bool {
	switch apiCode(err) {
	case "NotFound", "NoSuchKey":
		return true
	}
	return false
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// verifyingReader passes an object's bytes through and, at the end, checks
// their count and (when known) SHA-256.
type verifyingReader struct {
	rc   io.ReadCloser
	key  string
	size int64
	want [32]byte // zero: size only
	h    hash.Hash
	n    int64
	err  error
}

func newVerifyingReader(rc io.ReadCloser, key string, size int64, want [32]byte) *verifyingReader {
	return &verifyingReader{rc: rc, key: key, size: size, want: want, h: sha256.New()}
}

func (r *verifyingReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.rc.Read(p)
	r.n += int64(n)
	if r.want != ([32]byte{}) {
		r.h.Write(p[:n])
	}
	if r.n > r.size {
		r.err = fmt.Errorf("read %q: more than the %d bytes stored: %w", r.key, r.size, ErrChecksumMismatch)
		return n, r.err
	}
	if errors.Is(err, io.EOF) {
		var got [32]byte
		r.h.Sum(got[:0])
		switch {
		case r.n != r.size:
			r.err = fmt.Errorf("read %q: %d bytes, the store recorded %d: %w", r.key, r.n, r.size, ErrChecksumMismatch)
		case r.want != ([32]byte{}) && got != r.want:
			r.err = fmt.Errorf("read %q: sha256 %x, the store recorded %x: %w", r.key, got, r.want, ErrChecksumMismatch)
		default:
			r.err = io.EOF
		}
		return n, r.err
	}
	return n, err
}

func (r *verifyingReader) Close() error { return r.rc.Close() }

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func legalHoldStatus(on bool) types.ObjectLockLegalHoldStatus {
	if on {
		return types.ObjectLockLegalHoldStatusOn
	}
	return ""
}

// List implements Store with ListObjectsV2, which returns keys in ascending
// UTF-8 byte order, a thousand at a time.
func (s *S3Store) List(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
			Bucket: aws.String(s.bucket), Prefix: aws.String(prefix),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				yield("", fmt.Errorf("s3 list %q: %w", prefix, err))
				return
			}
			for _, o := range page.Contents {
				if !yield(aws.ToString(o.Key), nil) {
					return
				}
			}
		}
	}
}
