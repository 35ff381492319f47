package main

import (
	"context"
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
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/mediasync/mediasync/internal/devtools"
)

// S3 credentials of the benchmark's own versitygw; it listens on loopback
// only and lives as long as the benchmark.
const (
	s3AccessKey = "bench"
	s3SecretKey = "bench-secret-not-for-production"
	s3Region    = "us-east-1"
)

// lab is what the scenarios share: the programs, the S3 server and the
// Postgres server. Each scenario gets its own emulator, Redis server,
// database and buckets, so every figure is that scenario's own.
type lab struct {
	dir      string // work directory: logs, spool, S3 data
	bin      string // worker, enqueue and twilio-emulator
	pgAdmin  string // Postgres URL to create databases through
	redisBin string
	keep     bool   // keep the scenarios' databases, for a look afterwards
	tag      string // makes database names unique to this lab: other benchmarks may share the Postgres server

	s3       *process
	s3URL    string
	s3Data   string
	s3Client *s3.Client
	s3Cert   *devtools.LoopbackCert // nil: the S3 server speaks plain http
	s3CAEnv  bool                   // workers trust s3Cert through AWS_CA_BUNDLE, not ARCHIVE_URL ca_bundle=
}

// labs counts the labs of this process, for their tags.
var labs atomic.Int64

// labConfig says where the lab's pieces come from.
type labConfig struct {
	root      string // the repository, to build the programs from
	dir       string
	bin       string // prebuilt programs; empty: build them
	versitygw string
	redisBin  string
	pgAdmin   string
	keep      bool
	s3HTTP    bool // plain http instead of TLS: the spool fallback
	s3CAEnv   bool
}

// newLab builds the programs and starts the S3 server.
func newLab(ctx context.Context, c labConfig) (*lab, error) {
	l := &lab{dir: c.dir, bin: c.bin, pgAdmin: c.pgAdmin, redisBin: c.redisBin, keep: c.keep, s3CAEnv: c.s3CAEnv,
		tag: fmt.Sprintf("%d_%d", os.Getpid(), labs.Add(1))}
	if l.bin == "" {
		l.bin = filepath.Join(c.dir, "bin")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", l.bin+string(filepath.Separator),
			"./cmd/worker", "./cmd/enqueue", "./cmd/twilio-emulator")
		cmd.Dir = c.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	if err := l.startS3(ctx, c.versitygw, !c.s3HTTP); err != nil {
		return nil, err
	}
	if err := l.pingPostgres(ctx); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

func (l *lab) close() {
	if l.s3 != nil {
		l.s3.stop(5 * time.Second)
	}
}

// startS3 starts versitygw, over TLS (as every real deployment's S3 is)
// with a certificate made for this benchmark unless useTLS is false.
func (l *lab) startS3(ctx context.Context, bin string, useTLS bool) error {
	l.s3Data = filepath.Join(l.dir, "s3", "data")
	versions := filepath.Join(l.dir, "s3", "versions")
	for _, d := range []string{l.s3Data, versions} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	port, err := devtools.FreeLoopbackPort()
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"--port", addr, "--access", s3AccessKey, "--secret", s3SecretKey, "--region", s3Region,
		"--health", "/healthz", "--keep-alive", "-q"}
	l.s3URL = "http://" + addr
	if useTLS {
		if l.s3Cert, err = devtools.NewLoopbackCert(filepath.Join(l.dir, "s3")); err != nil {
			return err
		}
		args = append(args, "--cert", l.s3Cert.CertFile, "--key", l.s3Cert.KeyFile)
		l.s3URL = "https://" + addr
	}
	args = append(args, "posix", "--versioning-dir", versions, l.s3Data)
	l.s3, err = start("versitygw", filepath.Join(l.dir, "versitygw.log"), nil, bin, args...)
	if err != nil {
		return err
	}
	if err := l.s3.waitHealthy(ctx, l.s3HTTPClient(), l.s3URL+"/healthz", 20*time.Second); err != nil {
		l.s3.stop(time.Second)
		return fmt.Errorf("versitygw: %w", err)
	}
	l.s3Client = s3.New(s3.Options{
		Region:       s3Region,
		BaseEndpoint: aws.String(l.s3URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s3AccessKey, s3SecretKey, ""),
		HTTPClient:   l.s3HTTPClient(),
	})
	return nil
}

// s3Transport is an HTTP transport that trusts the S3 server's
// certificate.
func (l *lab) s3Transport() *http.Transport {
	if l.s3Cert == nil {
		return http.DefaultTransport.(*http.Transport).Clone()
	}
	return l.s3Cert.Transport()
}

func (l *lab) s3HTTPClient() *http.Client { return &http.Client{Transport: l.s3Transport()} }

// s3Env is the environment that makes workers and enqueue trust the S3
// server, when it is not in the archive URL.
func (l *lab) s3Env() []string {
	if l.s3Cert != nil && l.s3CAEnv {
		return []string{"AWS_CA_BUNDLE=" + l.s3Cert.CertFile}
	}
	return nil
}

// newBucket creates a bucket, with S3 Object Lock when objectLock (which
// turns versioning on); dropBucket removes it with everything in it.
func (l *lab) newBucket(ctx context.Context, name string, objectLock bool) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if objectLock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	_, err := l.s3Client.CreateBucket(ctx, in)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// dropBucket frees the disk a scenario used. The benchmark owns the
// server, so it removes the bucket's directory (the posix backend's layout)
// rather than deleting objects one request at a time.
func (l *lab) dropBucket(name string) error {
	return os.RemoveAll(filepath.Join(l.s3Data, name))
}

func (l *lab) s3ArchiveURL(bucket string) string { return l.s3URLFor(bucket, "archive") }

// s3URLFor is an s3:// URL, as ARCHIVE_URL and `enqueue export --out` take
// it, for a prefix of a bucket on the lab's S3 server.
func (l *lab) s3URLFor(bucket, prefix string) string {
	u := fmt.Sprintf("s3://%s/%s?region=%s&endpoint=%s&use_path_style=true", bucket, prefix, s3Region, l.s3URL)
	if l.s3Cert != nil && !l.s3CAEnv {
		u += "&ca_bundle=" + url.QueryEscape(l.s3Cert.CertFile)
	}
	return u
}

func (l *lab) pingPostgres(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, l.pgAdmin)
	if err != nil {
		return fmt.Errorf("postgres (-pg): %w", err)
	}
	return conn.Close(ctx)
}

// newDatabase creates an empty database and returns its URL.
func (l *lab) newDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, l.pgAdmin)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+id); err != nil {
		return "", err
	}
	return databaseURL(l.pgAdmin, name)
}

// databaseURL is adminURL with its database replaced by name.
func databaseURL(adminURL, name string) (string, error) {
	u, q, _ := strings.Cut(adminURL, "?")
	i := strings.LastIndexByte(u, '/')
	if !strings.Contains(u, "://") || i < strings.Index(u, "://")+3 {
		return "", errors.New("-pg: want a postgres://host/database URL")
	}
	out := u[:i+1] + name
	if q != "" {
		out += "?" + q
	}
	return out, nil
}

func (l *lab) dropDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, l.pgAdmin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// redisServer is a Redis of one scenario's own, so that its peak memory is
// that scenario's (CONFIG RESETSTAT does not reset used_memory_peak).
type redisServer struct {
	proc   *process
	url    string
	client *redis.Client
}

func (l *lab) startRedis(ctx context.Context, name string) (*redisServer, error) {
	port, err := devtools.FreeLoopbackPort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(l.dir, "redis-"+name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p, err := start("redis-server", filepath.Join(l.dir, "redis-"+name+".log"), nil, l.redisBin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--maxmemory-policy", "noeviction", "--dir", dir)
	if err != nil {
		return nil, err
	}
	r := &redisServer{proc: p, url: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	r.client = redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	err = poll(ctx, 10*time.Second, 20*time.Millisecond, func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("redis-server exited: %v\n%s", p.Err(), p.tail())
		}
		return r.client.Ping(ctx).Err() == nil, nil
	})
	if err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

func (r *redisServer) stop() {
	r.client.Close()
	r.proc.stop(5 * time.Second)
}

// memory returns used_memory and used_memory_peak from INFO memory.
func (r *redisServer) memory(ctx context.Context) (used, peak int64, err error) {
	info, err := r.client.InfoMap(ctx, "memory").Result()
	if err != nil {
		return 0, 0, err
	}
	m := info["Memory"]
	used, err1 := strconv.ParseInt(m["used_memory"], 10, 64)
	peak, err2 := strconv.ParseInt(m["used_memory_peak"], 10, 64)
	return used, peak, errors.Join(err1, err2)
}
