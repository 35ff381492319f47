package testenv

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A restarted private Redis is back on the same URL and empty, as the
// machine's Redis is after a restart: what crash tests rely on.
func TestRedisServerRestartsEmpty(t *testing.T) {
	t.Parallel()
	r := StartRedisServer(t)
	require.True(t, strings.HasPrefix(r.URL, "redis://127.0.0.1:"), "loopback only: %s", r.URL)
	opt, err := redis.ParseURL(r.URL)
	require.NoError(t, err)
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())

	r.Stop()
	require.Error(t, c.Ping(ctx).Err(), "Redis still answers after Stop")
	r.Start()
	require.ErrorIs(t, c.Get(ctx, "k").Err(), redis.Nil, "a key survived the restart")

	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	r.Restart()
	require.ErrorIs(t, c.Get(ctx, "k").Err(), redis.Nil, "a key survived Restart")
}

// A private Postgres keeps its data across a fast shutdown, is unreachable
// while stopped, and takes connections on the same URL once started again.
func TestPostgresServerKeepsDataAcrossRestart(t *testing.T) {
	t.Parallel()
	p := StartPostgresServer(t)
	require.True(t, strings.Contains(p.AdminURL, "@127.0.0.1:"), "loopback only: %s", p.AdminURL)
	db := NewDatabaseOn(t, p.AdminURL)
	ctx := t.Context()
	exec := func(sql string) error {
		c, err := pgx.Connect(ctx, db.URL)
		if err != nil {
			return err
		}
		defer c.Close(context.WithoutCancel(ctx))
		_, err = c.Exec(ctx, sql)
		return err
	}
	require.NoError(t, exec(`CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')`))

	p.Stop()
	require.Error(t, exec(`SELECT 1`), "Postgres still answers after Stop")
	p.Start()
	c, err := pgx.Connect(ctx, db.URL)
	require.NoError(t, err)
	defer c.Close(context.WithoutCancel(ctx))
	var v string
	require.NoError(t, c.QueryRow(ctx, `SELECT v FROM t`).Scan(&v))
	assert.Equal(t, "kept", v)
}

// A private gateway keeps its buckets and objects across a stop, refuses
// connections while stopped, and serves the same endpoint once started.
func TestS3ProcessKeepsObjectsAcrossRestart(t *testing.T) {
	t.Parallel()
	p := StartS3Server(t)
	require.NotSame(t, S3(t), p.S3Server, "a private gateway, not the shared one")
	bucket := BucketOn(t, p.S3Server)
	client := p.Client(t)
	ctx := t.Context()
	put := func() error {
		_, err := client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String("a/b"), Body: bytes.NewReader([]byte("kept")),
		})
		return err
	}
	require.NoError(t, put())

	p.Stop()
	// Without retries: the SDK would otherwise back off for seconds.
	shortCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := client.HeadBucket(shortCtx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}, func(o *s3.Options) {
		o.RetryMaxAttempts = 1
	})
	require.Error(t, err, "the gateway still answers after Stop")

	p.Start()
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/b")})
	require.NoError(t, err)
	b, err := io.ReadAll(out.Body)
	require.NoError(t, out.Body.Close())
	require.NoError(t, err)
	assert.Equal(t, "kept", string(b))
}
