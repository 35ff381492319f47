package archive

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mediasync/mediasync/internal/redact"
)

// S3 upload limits and defaults.
const (
	// DefaultMultipartThreshold is the size above which Put uploads in
	// parts. Twilio media are at most 150 MB, so in practice every object is
	// one PutObject, which is what gives S3 a full-object SHA-256 to check
	// and to report back (see S3Store.Put).
	DefaultMultipartThreshold = 1 << 30
	// DefaultPartSize is the part size of multipart uploads.
	DefaultPartSize = 64 << 20

	minPartSize     = 5 << 20 // S3's minimum for every part but the last
	maxPutSize      = 5 << 30 // S3's maximum for a single PutObject and for a part
	maxPartCount    = 10000
	conflictRetries = 4
)

// Server-side encryption settings for S3Config.SSE.
const (
	SSEAES256 = "AES256"  // SSE-S3: keys managed by S3
	SSEKMS    = "aws:kms" // SSE-KMS: keys in AWS KMS, optionally S3Config.SSEKMSKeyID
)

// S3Config configures an S3Store. Only Bucket is required.
type S3Config struct {
	// Bucket is the bucket to write to. It must exist.
	Bucket string
	// Region is the bucket's region. Defaults to the AWS environment
	// (AWS_REGION, ~/.aws/config), then to us-east-1 when Endpoint is set.
	Region string
	// Endpoint is the base URL of an S3-compatible server, e.g.
	// "http://127.0.0.1:7070". Empty means AWS.
	Endpoint string
	// AllowHTTP permits a plain-http Endpoint whose host is not loopback
	// (e.g. a gateway on a private network). Defaults to false: such an
	// endpoint is refused.
	AllowHTTP bool
	// UsePathStyle addresses buckets as endpoint/bucket instead of
	// bucket.endpoint; most S3-compatible servers need it.
	UsePathStyle bool
	// SSE is the server-side encryption to request on every object: "",
	// SSEAES256 or SSEKMS. Empty leaves it to the bucket's default.
	SSE string
	// SSEKMSKeyID is the KMS key for SSEKMS; empty means the AWS-managed
	// key. Only valid with SSE = SSEKMS.
	SSEKMSKeyID string
	// Credentials signs the requests. nil means the SDK's default chain
	// (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws, instance or
	// task roles).
	Credentials aws.CredentialsProvider
	// HTTPClient sends the requests. nil means the SDK's default.
	HTTPClient aws.HTTPClient
	// CABundle is a PEM file of certificates to trust for an https
	// Endpoint, besides the system's (a private CA, a test server's own
	// certificate); as the SDK's AWS_CA_BUNDLE, which also applies. Needs
	// HTTPClient nil or an *awshttp.BuildableClient.
	CABundle string
	// ChecksumWhenRequired makes the SDK compute and validate its own
	// checksums (CRC32 trailers by default) only when an operation requires
	// them, for S3-compatible servers that reject the defaults. The SHA-256
	// that mediasync sends on every upload is unaffected.
	ChecksumWhenRequired bool
	// MultipartThreshold is the size above which Put uploads in parts.
	// Defaults to DefaultMultipartThreshold; at most 5 GiB.
	MultipartThreshold int64
	// PartSize is the size of each part of a multipart upload. Defaults to
	// DefaultPartSize; at least 5 MiB. It grows when an object would need
	// more than 10,000 parts.
	PartSize int64
}

func (c S3Config) validate() error {
	if c.Bucket == "" {
		return errors.New("s3 store: S3Config.Bucket is empty")
	}
	if !validBucketName(c.Bucket) {
		return fmt.Errorf("s3 store: S3Config.Bucket %q is not a valid bucket name (3-63 lower-case letters, digits, '.' and '-')", c.Bucket)
	}
	if c.Endpoint != "" {
		if err := checkEndpoint(c.Endpoint, c.AllowHTTP); err != nil {
			return fmt.Errorf("s3 store: S3Config.Endpoint: %w", err)
		}
	}
	switch c.SSE {
	case "", SSEAES256, SSEKMS:
	default:
		return fmt.Errorf("s3 store: S3Config.SSE %q is not %q, %q or empty", c.SSE, SSEAES256, SSEKMS)
	}
	if c.SSEKMSKeyID != "" && c.SSE != SSEKMS {
		return fmt.Errorf("s3 store: S3Config.SSEKMSKeyID is set but S3Config.SSE is %q, not %q", c.SSE, SSEKMS)
	}
	if c.CABundle != "" && !filepath.IsAbs(c.CABundle) {
		return fmt.Errorf("s3 store: S3Config.CABundle %q is not an absolute path", c.CABundle)
	}
	if t := c.MultipartThreshold; t < 0 || t > maxPutSize {
		return fmt.Errorf("s3 store: S3Config.MultipartThreshold %d is not between 0 and %d", t, int64(maxPutSize))
	}
	if p := c.PartSize; p != 0 && (p < minPartSize || p > maxPutSize) {
		return fmt.Errorf("s3 store: S3Config.PartSize %d is not between %d and %d", p, minPartSize, int64(maxPutSize))
	}
	return nil
}

// checkEndpoint accepts an absolute http or https URL with a host and
// without credentials; plain http only for a loopback host unless allowHTTP
// (requests are signed, but bodies and metadata would cross the network in
// the clear). Its error never repeats credentials.
func checkEndpoint(raw string, allowHTTP bool) error {
	u, err := redact.ParseURL(raw)
	if err != nil {
		return err
	}
	if u.User != nil || u.Opaque != "" {
		// "http:key:secret@host" parses as opaque, without user information.
		return errors.New("must not contain credentials, and must be an absolute http or https URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must be an http or https URL", redact.URL(raw))
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", redact.URL(raw))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not have a query or fragment", redact.URL(raw))
	}
	if u.Scheme == "http" && !allowHTTP && !loopbackHost(u.Hostname()) {
		return fmt.Errorf("%w: %q is plain http to a host that is not loopback; use https, or say allow_http=true", ErrInsecureEndpoint, raw)
	}
	return nil
}

// ErrInsecureEndpoint refuses a plain-http S3 endpoint that was not allowed
// explicitly.
var ErrInsecureEndpoint = errors.New("insecure endpoint")

// loopbackHost reports whether host is localhost or a loopback address
// (127.0.0.0/8, ::1).
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validBucketName applies the S3 bucket naming rules for new buckets.
func validBucketName(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	first, last := b[0], b[len(b)-1]
	return first != '.' && first != '-' && last != '.' && last != '-' && !strings.Contains(b, "..")
}
