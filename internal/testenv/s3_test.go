package testenv

import (
	"bytes"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestS3ServerIsSharedAndHealthy(t *testing.T) {
	t.Parallel()
	a, b := S3(t), S3(t)
	require.Same(t, a, b, "one gateway per test process")
	resp, err := a.HTTPClient().Get(a.Endpoint + "/healthz")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, strings.HasPrefix(a.Endpoint, "https://127.0.0.1:"), "TLS, loopback only: %s", a.Endpoint)
	assert.FileExists(t, a.CABundle)

	// Without the certificate trusted, the gateway is refused.
	_, err = http.Get(a.Endpoint + "/healthz")
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknown)

	h := S3HTTP(t)
	require.Same(t, h, S3HTTP(t))
	assert.True(t, strings.HasPrefix(h.Endpoint, "http://127.0.0.1:"), "plain http, loopback only: %s", h.Endpoint)
	assert.Empty(t, h.CABundle)
	resp, err = http.Get(h.Endpoint + "/healthz")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	st, err := os.Stat(a.DataDir)
	require.NoError(t, err)
	assert.True(t, st.IsDir())
}

// requireBucketGone asserts that HeadBucket finds no bucket.
func requireBucketGone(t *testing.T, client *s3.Client, bucket string) {
	t.Helper()
	_, err := client.HeadBucket(t.Context(), &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	var apiErr smithy.APIError
	require.ErrorAs(t, err, &apiErr, "bucket %q still exists", bucket)
	assert.Contains(t, []string{"NotFound", "NoSuchBucket"}, apiErr.ErrorCode())
}

func TestBucketIsEmptiedAndRemoved(t *testing.T) {
	t.Parallel()
	client := S3(t).Client(t)
	cases := []struct {
		name string
		opts []BucketOption
		fill func(t *testing.T, c *s3.Client, bucket string)
	}{
		{"plain", nil, func(t *testing.T, c *s3.Client, bucket string) {
			for _, key := range []string{"a", "dir/b", "dir/sub/c"} {
				putObject(t, c, bucket, key, nil)
			}
			// An unfinished multipart upload must not keep the bucket alive.
			_, err := c.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("partial")})
			require.NoError(t, err)
		}},
		{"versioned", []BucketOption{WithVersioning()}, func(t *testing.T, c *s3.Client, bucket string) {
			putObject(t, c, bucket, "v", nil)
			putObject(t, c, bucket, "v", nil)
			_, err := c.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("v")})
			require.NoError(t, err, "leaves a delete marker over two versions")
		}},
		{"object lock", []BucketOption{WithObjectLock()}, func(t *testing.T, c *s3.Client, bucket string) {
			putObject(t, c, bucket, "governed", func(in *s3.PutObjectInput) {
				in.ObjectLockMode = types.ObjectLockModeGovernance
				in.ObjectLockRetainUntilDate = aws.Time(time.Now().Add(24 * time.Hour))
			})
			putObject(t, c, bucket, "held", func(in *s3.PutObjectInput) {
				in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn
			})
		}},
	}
	for _, c := range cases {
		var bucket string
		// Not parallel: t.Run must return after the subtest's cleanup ran.
		t.Run(c.name, func(t *testing.T) {
			bucket = Bucket(t, c.opts...)
			c.fill(t, client, bucket)
		})
		requireBucketGone(t, client, bucket)
	}
}

func putObject(t *testing.T, c *s3.Client, bucket, key string, mutate func(*s3.PutObjectInput)) {
	t.Helper()
	in := &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte("data of " + key)),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	}
	if mutate != nil {
		mutate(in)
	}
	_, err := c.PutObject(t.Context(), in)
	require.NoError(t, err)
}

func TestBucketOptions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	client := S3(t).Client(t)

	plain := Bucket(t)
	v, err := client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(plain)})
	require.NoError(t, err)
	assert.Empty(t, v.Status, "versioning is off unless asked for")

	versioned := Bucket(t, WithVersioning())
	v, err = client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(versioned)})
	require.NoError(t, err)
	assert.Equal(t, types.BucketVersioningStatusEnabled, v.Status)

	locked := Bucket(t, WithObjectLock())
	lock, err := client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(locked)})
	require.NoError(t, err)
	assert.Equal(t, types.ObjectLockEnabledEnabled, lock.ObjectLockConfiguration.ObjectLockEnabled)

	assert.NotEqual(t, plain, versioned, "every call makes a new bucket")
}

func TestBucketName(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	cases := []struct {
		testName string
		seq      int64
		want     string
	}{
		{"TestPut", 1, "testput-1"},
		{"TestStore/Conformance/Put_twice#01", 12, "teststore-conformance-put-twice-01-12"},
		{"Test__Weird--Name__", 3, "test-weird-name-3"},
		{"日本語", 4, "b-4"},
		{"", 5, "b-5"},
		{"xn--test", 6, "bxn-test-6"},
		{"Sthree-bucket", 7, "bsthree-bucket-7"},
		{strings.Repeat("LongName/", 20), 123456, ""},
	}
	for _, c := range cases {
		got := bucketName(c.testName, c.seq)
		assert.Regexp(t, valid, got, c.testName)
		assert.NotContains(t, got, "--", c.testName)
		if c.want != "" {
			assert.Equal(t, c.want, got, c.testName)
		}
	}
	assert.NotEqual(t, bucketName("TestX", 1), bucketName("TestX", 2))
}

func TestReapRemovesOnlyDeadProcessesDirectories(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	// pid 0x7ffffffe is above any pid_max, so no process has it.
	dead := filepath.Join(base, "vgw-2147483646-abc")
	mine := filepath.Join(base, "vgw-"+strconv.Itoa(os.Getpid())+"-abc")
	other := filepath.Join(base, "unrelated")
	for _, d := range []string{dead, mine, other} {
		require.NoError(t, os.Mkdir(d, 0o700))
	}
	reapVersityGWDirs(base)
	assert.NoDirExists(t, dead)
	assert.DirExists(t, mine)
	assert.DirExists(t, other)
}
