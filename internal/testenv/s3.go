package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mediasync/mediasync/internal/devtools"
)

// Credentials and region of the test gateway. They are test constants, not
// secrets: the gateway listens on loopback only and lives as long as the test
// process.
const (
	S3AccessKey = "mediasynctest"
	S3SecretKey = "mediasync-test-secret-not-a-real-one"
	S3Region    = "us-east-1"
)

// versitygwStartTimeout bounds how long a gateway may take to answer its
// health check. It starts in well under a second; the margin is for loaded CI
// machines.
const versitygwStartTimeout = 30 * time.Second

// S3Server is a running versitygw gateway shared by every test in the process.
type S3Server struct {
	// Endpoint is the gateway's base URL, e.g. "https://127.0.0.1:40123"
	// (S3 and StartS3Server) or "http://127.0.0.1:40123" (S3HTTP).
	// Clients must use path-style addressing.
	Endpoint string
	// CABundle is the PEM file of the certificate the gateway serves, for
	// clients to trust (S3Config.CABundle, ARCHIVE_URL ca_bundle=); empty
	// for a plain-http gateway.
	CABundle  string
	AccessKey string
	SecretKey string
	Region    string
	// DataDir is the root of the posix backend: the object key "a/b" of bucket
	// "bkt" is the file DataDir/bkt/a/b. Tests that simulate bit rot or
	// tampering edit files here.
	DataDir string

	addr string                 // host:port
	cert *devtools.LoopbackCert // nil: plain http
}

// Credentials returns a provider of the gateway's static test credentials.
func (s *S3Server) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")
}

// Client returns an S3 client for the gateway, configured only from the
// server's fields (never from the environment or ~/.aws), with path-style
// addressing, trusting the gateway's certificate.
func (s *S3Server) Client(t testing.TB) *s3.Client {
	t.Helper()
	o := s3.Options{
		Region:       s.Region,
		Credentials:  s.Credentials(),
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
	}
	if s.cert != nil {
		o.HTTPClient = &http.Client{Transport: s.cert.Transport()}
	}
	return s3.New(o)
}

// HTTPClient returns an HTTP client that trusts the gateway's certificate.
func (s *S3Server) HTTPClient() *http.Client {
	if s.cert == nil {
		return &http.Client{}
	}
	return &http.Client{Transport: s.cert.Transport()}
}

// TLSConfig returns a TLS configuration that trusts the gateway's
// certificate, or nil for a plain-http gateway.
func (s *S3Server) TLSConfig() *tls.Config {
	if s.cert == nil {
		return nil
	}
	return &tls.Config{RootCAs: s.cert.Pool, MinVersion: tls.VersionTLS12}
}

// URLParams returns the ARCHIVE_URL query parameters that reach the
// gateway: region, endpoint, use_path_style and, over TLS, ca_bundle.
func (s *S3Server) URLParams() string {
	q := url.Values{"region": {s.Region}, "endpoint": {s.Endpoint}, "use_path_style": {"true"}}
	if s.CABundle != "" {
		q.Set("ca_bundle", s.CABundle)
	}
	return q.Encode()
}

var (
	s3Once, s3HTTPOnce sync.Once
	s3Server, s3HTTP   *S3Server
	s3Err, s3HTTPErr   error
)

// S3 returns the process's versitygw gateway, starting it on first use. It
// speaks TLS with a certificate made for this process (S3Server.CABundle),
// as every real deployment's S3 does. The gateway is killed when the test
// process exits, however it exits (the child gets SIGKILL from the kernel
// when its parent thread dies). A missing binary or a failed start fails
// the test.
func S3(t testing.TB) *S3Server {
	t.Helper()
	s3Once.Do(func() { s3Server, s3Err = startVersityGW(true) })
	if s3Err != nil {
		t.Fatalf("testenv: S3 test server: %v", s3Err)
	}
	return s3Server
}

// S3HTTP is S3 over plain http: a second gateway, for the paths mediasync
// takes when its S3 endpoint is not TLS (an S3-compatible server on a
// private network).
func S3HTTP(t testing.TB) *S3Server {
	t.Helper()
	s3HTTPOnce.Do(func() { s3HTTP, s3HTTPErr = startVersityGW(false) })
	if s3HTTPErr != nil {
		t.Fatalf("testenv: plain-http S3 test server: %v", s3HTTPErr)
	}
	return s3HTTP
}

func startVersityGW(useTLS bool) (*S3Server, error) {
	bin, err := devtools.VersityGW()
	if err != nil {
		return nil, err
	}
	base := filepath.Join(os.TempDir(), "mediasync-testenv")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", base, err)
	}
	reapVersityGWDirs(base)
	dir, err := os.MkdirTemp(base, "vgw-"+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("create gateway directory: %w", err)
	}
	data := filepath.Join(dir, "data")
	// versitygw requires the versioning directory to lie outside the root.
	versions := filepath.Join(dir, "versions")
	for _, d := range []string{data, versions} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("create gateway directory: %w", err)
		}
	}

	var cert *devtools.LoopbackCert
	if useTLS {
		if cert, err = devtools.NewLoopbackCert(dir); err != nil {
			return nil, err
		}
	}

	// Another process can take the free port between our probe and the
	// gateway's bind; a few attempts make that race harmless.
	var lastErr error
	for range 3 {
		port, err := devtools.FreeLoopbackPort()
		if err != nil {
			return nil, err
		}
		srv := newS3Server(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), data, cert)
		if _, _, lastErr = runVersityGW(bin, srv, dir, versions); lastErr == nil {
			return srv, nil
		}
	}
	return nil, lastErr
}

// newS3Server describes a gateway on addr with its data in data, over TLS
// with cert unless it is nil.
func newS3Server(addr, data string, cert *devtools.LoopbackCert) *S3Server {
	s := &S3Server{
		Endpoint:  "http://" + addr,
		AccessKey: S3AccessKey,
		SecretKey: S3SecretKey,
		Region:    S3Region,
		DataDir:   data,
		addr:      addr,
		cert:      cert,
	}
	if cert != nil {
		s.Endpoint, s.CABundle = "https://"+addr, cert.CertFile
	}
	return s
}

// runVersityGW starts the gateway srv describes and returns once it
// answers its health check, with the tail of its output.
func runVersityGW(bin string, srv *S3Server, home, versions string) (*child, *tailBuffer, error) {
	out := &tailBuffer{max: 8 << 10}
	args := []string{
		"--port", srv.addr,
		"--access", S3AccessKey,
		"--secret", S3SecretKey,
		"--region", S3Region,
		"--health", "/healthz",
		"--keep-alive",
		"-q",
	}
	if srv.cert != nil {
		args = append(args, "--cert", srv.cert.CertFile, "--key", srv.cert.KeyFile)
	}
	args = append(args, "posix", "--versioning-dir", versions, srv.DataDir)
	cmd := exec.Command(bin, args...)
	// A minimal environment: the developer's VGW_* or ROOT_* variables must
	// not change the gateway under test.
	cmd.Env = []string{"HOME=" + home, "TMPDIR=" + os.TempDir(), "PATH=" + os.Getenv("PATH")}
	cmd.Stdout = out
	cmd.Stderr = out
	proc, err := startChild(cmd)
	if err != nil {
		return nil, nil, err
	}
	client := srv.HTTPClient()
	client.Timeout = time.Second
	defer client.CloseIdleConnections()
	err = proc.waitReady("versitygw on "+srv.addr, versitygwStartTimeout, out, func() error {
		return healthy(client, srv.Endpoint+"/healthz")
	})
	if err != nil {
		return nil, nil, err
	}
	return proc, out, nil
}

// reapVersityGWDirs removes the directories of gateways whose test process is
// gone. Each process names its directory vgw-<pid>-<random>, and the gateway
// dies with its process, so a directory whose pid no longer runs is garbage.
func reapVersityGWDirs(base string) { reapDirs(base, "vgw-") }

// reapDirs removes the directories <prefix><pid>-<random> in base whose
// process is gone.
func reapDirs(base, prefix string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(filepath.Join(base, e.Name()))
		}
	}
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// BucketOption configures a bucket made by Bucket.
type BucketOption func(*bucketOptions)

type bucketOptions struct {
	objectLock bool
	versioning bool
}

// WithObjectLock creates the bucket with Object Lock enabled (which also
// enables versioning). Use GOVERNANCE retention in tests: cleanup bypasses
// it, but nothing can remove a COMPLIANCE-locked version before it expires.
func WithObjectLock() BucketOption { return func(o *bucketOptions) { o.objectLock = true } }

// WithVersioning turns versioning on for the bucket.
func WithVersioning() BucketOption { return func(o *bucketOptions) { o.versioning = true } }

var bucketSeq atomic.Int64

// Bucket creates a new, empty bucket on the test gateway, named after the
// test, and returns its name. When the test ends every object version, delete
// marker and unfinished multipart upload in it is removed, then the bucket.
func Bucket(t testing.TB, opts ...BucketOption) string {
	t.Helper()
	return BucketOn(t, S3(t), opts...)
}

// BucketOn is Bucket on a given gateway (a test's own, e.g. one it stops
// and starts again).
func BucketOn(t testing.TB, srv *S3Server, opts ...BucketOption) string {
	t.Helper()
	var o bucketOptions
	for _, opt := range opts {
		opt(&o)
	}
	client := srv.Client(t)
	name := bucketName(t.Name(), bucketSeq.Add(1))
	ctx := t.Context()

	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if o.objectLock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	// A fresh name must not exist: if it does, another test owns it, and
	// sharing it would make both tests lie.
	if _, err := client.CreateBucket(ctx, in); err != nil {
		t.Fatalf("testenv: create bucket %q: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := removeBucket(ctx, client, name); err != nil {
			t.Errorf("testenv: remove bucket %q: %v", name, err)
		}
	})
	if o.versioning && !o.objectLock {
		_, err := client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(name),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
		})
		if err != nil {
			t.Fatalf("testenv: enable versioning on bucket %q: %v", name, err)
		}
	}
	return name
}

// bucketName turns a test name into a valid, process-unique bucket name:
// 3-63 characters of lower-case letters, digits and hyphens, beginning and
// ending with a letter or digit.
func bucketName(testName string, seq int64) string {
	suffix := "-" + strconv.FormatInt(seq, 10)
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(testName) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	stem := strings.Trim(b.String(), "-")
	limit := 63 - len(suffix)
	if len(stem) > limit {
		stem = strings.TrimRight(stem[:limit], "-")
	}
	// Reserved prefixes (xn--, sthree-) and an empty stem get a neutral one.
	if stem == "" || strings.HasPrefix(stem, "xn") || strings.HasPrefix(stem, "sthree") {
		stem = "b" + stem
		if len(stem) > limit {
			stem = strings.TrimRight(stem[:limit], "-")
		}
	}
	return stem + suffix
}

// removeBucket deletes every version, delete marker, current object and
// unfinished upload in the bucket, then the bucket itself.
func removeBucket(ctx context.Context, client *s3.Client, bucket string) error {
	var errs []error
	versions := s3.NewListObjectVersionsPaginator(client, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for versions.HasMorePages() {
		page, err := versions.NextPage(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list versions: %w", err))
			break
		}
		for _, v := range page.Versions {
			errs = append(errs, deleteVersion(ctx, client, bucket, v.Key, v.VersionId))
		}
		for _, m := range page.DeleteMarkers {
			errs = append(errs, deleteVersion(ctx, client, bucket, m.Key, m.VersionId))
		}
	}
	objects := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for objects.HasMorePages() {
		page, err := objects.NextPage(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list objects: %w", err))
			break
		}
		for _, o := range page.Contents {
			errs = append(errs, deleteVersion(ctx, client, bucket, o.Key, nil))
		}
	}
	uploads, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		errs = append(errs, fmt.Errorf("list multipart uploads: %w", err))
	} else {
		for _, u := range uploads.Uploads {
			_, err := client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId,
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("abort upload of %q: %w", aws.ToString(u.Key), err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if _, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("delete bucket: %w", err)
	}
	return nil
}

// deleteVersion removes one object version, lifting a legal hold and
// bypassing GOVERNANCE retention if need be.
func deleteVersion(ctx context.Context, client *s3.Client, bucket string, key, versionID *string) error {
	del := func() error {
		_, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{
			Bucket: aws.String(bucket), Key: key, VersionId: versionID,
			BypassGovernanceRetention: aws.Bool(true),
		})
		return err
	}
	err := del()
	if err == nil {
		return nil
	}
	_, holdErr := client.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{
		Bucket: aws.String(bucket), Key: key, VersionId: versionID,
		LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOff},
	})
	if holdErr != nil {
		return fmt.Errorf("delete %q version %q: %w", aws.ToString(key), aws.ToString(versionID), err)
	}
	if err := del(); err != nil {
		return fmt.Errorf("delete %q version %q: %w", aws.ToString(key), aws.ToString(versionID), err)
	}
	return nil
}
