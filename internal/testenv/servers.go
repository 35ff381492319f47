package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/mediasync/mediasync/internal/devtools"
)

// Private servers: a Redis, a Postgres cluster and an S3 gateway of one
// test's own, which the test may stop and start again on the same address
// and data, to prove what mediasync does while a service it depends on is
// down or restarts. Each dies with the test process and is removed at
// cleanup.

// serverStartTimeout bounds how long a private server may take to accept
// connections; they start in well under a second, the margin is for loaded
// CI machines.
const serverStartTimeout = 30 * time.Second

// child is a server program run by a test. It dies with the test process,
// however that exits (Pdeathsig).
type child struct{ *devtools.Child }

// startChild starts cmd with Pdeathsig set.
func startChild(cmd *exec.Cmd) (*child, error) {
	c, err := devtools.Start(cmd)
	if err != nil {
		return nil, err
	}
	return &child{c}, nil
}

// waitReady polls ready until it succeeds, the child exits, or timeout.
func (c *child) waitReady(what string, timeout time.Duration, out *tailBuffer, ready func() error) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-c.Done():
			return fmt.Errorf("%s exited before it was ready (%v); output:\n%s", what, c.Err(), out.String())
		case <-deadline.C:
			c.Kill()
			return fmt.Errorf("%s not ready after %v (%v); output:\n%s", what, timeout, err, out.String())
		case <-tick.C:
		}
	}
}

// serverDir makes a directory for a private server under the OS temp dir,
// named <prefix><pid>-<random> so that reapDirs can remove it once this
// process is gone, even if it never ran its cleanup.
func serverDir(t testing.TB, prefix string) string {
	t.Helper()
	base := os.TempDir()
	reapDirs(base, prefix)
	dir, err := os.MkdirTemp(base, prefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		t.Fatalf("testenv: create server directory: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// freeLoopbackAddr returns 127.0.0.1:<a port free now>.
func freeLoopbackAddr(t testing.TB) (string, int) {
	t.Helper()
	port, err := devtools.FreeLoopbackPort()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), port
}

// RedisServer is a redis-server of the test's own, without persistence
// (--save "" --appendonly no): like the shared test Redis, a restart loses
// every key, every queued task included. Methods must be called from the
// test's goroutine.
type RedisServer struct {
	// URL is redis://127.0.0.1:<port>/0; it stays the same across restarts.
	URL  string
	Addr string

	t    testing.TB
	bin  string
	dir  string
	out  *tailBuffer
	mu   sync.Mutex
	proc *child
}

// StartRedisServer starts a Redis for t on a free loopback port; it is
// killed at cleanup. A missing redis-server fails the test.
func StartRedisServer(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testenv: redis-server not found in PATH (install Redis): %v", err)
	}
	addr, _ := freeLoopbackAddr(t)
	r := &RedisServer{
		URL: "redis://" + addr + "/0", Addr: addr,
		t: t, bin: bin, dir: serverDir(t, "mediasync-redis-"), out: &tailBuffer{max: 8 << 10},
	}
	t.Cleanup(r.Stop)
	r.Start()
	return r
}

// Start starts the server on its address, empty. It fails the test if the
// server is already running or does not answer PING.
func (r *RedisServer) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		r.t.Fatalf("testenv: Redis on %s is already running", r.Addr)
	}
	host, port, _ := net.SplitHostPort(r.Addr)
	cmd := exec.Command(r.bin,
		"--bind", host, "--port", port,
		"--save", "", "--appendonly", "no",
		"--dir", r.dir,
		// As production should run it: tasks are never evicted.
		"--maxmemory-policy", "noeviction",
	)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = r.out, r.out
	proc, err := startChild(cmd)
	if err != nil {
		r.t.Fatalf("testenv: Redis: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	err = proc.waitReady("redis-server on "+r.Addr, serverStartTimeout, r.out, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	})
	if err != nil {
		r.t.Fatalf("testenv: %v", err)
	}
	r.proc = proc
}

// Stop kills the server (SIGKILL, as a crash or an OOM kill does): every
// key is lost. Stopping a stopped server does nothing.
func (r *RedisServer) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		r.proc.Kill()
		r.proc = nil
	}
}

// Restart is Stop then Start: the server comes back empty on its address.
func (r *RedisServer) Restart() {
	r.t.Helper()
	r.Stop()
	r.Start()
}

// PostgresServer is a PostgreSQL cluster of the test's own (initdb into a
// temporary directory, trust auth for user postgres), listening on a free
// loopback port with its socket in its own directory. Methods must be
// called from the test's goroutine.
type PostgresServer struct {
	// AdminURL reaches database postgres as user postgres; it stays the
	// same across restarts.
	AdminURL string
	Port     int

	t    testing.TB
	bin  string // directory of initdb and postgres
	data string
	sock string
	cred *syscall.Credential // who runs the server (initdb refuses root)
	out  *tailBuffer
	mu   sync.Mutex
	proc *child
}

// postgresBinDirs are where PostgreSQL server programs live on Debian and
// Ubuntu (versions newest first); PATH is searched before them.
var postgresBinDirs = []string{
	"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin",
	"/usr/lib/postgresql/14/bin", "/usr/lib/postgresql/13/bin",
}

// StartPostgresServer initialises and starts a cluster for t; it is shut
// down and removed at cleanup. Missing server programs fail the test.
func StartPostgresServer(t testing.TB) *PostgresServer {
	t.Helper()
	bin, err := postgresBinDir()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cred, err := postgresCredential()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	root := serverDir(t, "mediasync-pg-")
	data, sock := filepath.Join(root, "data"), filepath.Join(root, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	if cred != nil {
		for _, d := range []string{root, data, sock} {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatalf("testenv: hand %s to the postgres user: %v", d, err)
			}
		}
	}
	out := &tailBuffer{max: 16 << 10}
	initdb := exec.Command(filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root, "TZ=UTC"}
	initdb.Stdout, initdb.Stderr = out, out
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := initdb.Run(); err != nil {
		t.Fatalf("testenv: initdb: %v; output:\n%s", err, out.String())
	}
	_, port := freeLoopbackAddr(t)
	p := &PostgresServer{
		AdminURL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		Port:     port,
		t:        t, bin: bin, data: data, sock: sock, cred: cred, out: out,
	}
	t.Cleanup(p.Stop)
	p.Start()
	return p
}

// Start starts the server on its port and data directory, and returns once
// it accepts connections. It fails the test if it is already running.
func (p *PostgresServer) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		p.t.Fatalf("testenv: Postgres on port %d is already running", p.Port)
	}
	// The postmaster itself, not pg_ctl: pg_ctl would leave it to run on
	// as an orphan that Pdeathsig cannot reach.
	cmd := exec.Command(filepath.Join(p.bin, "postgres"),
		"-D", p.data, "-p", strconv.Itoa(p.Port), "-k", p.sock,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=200",
		// Durability against power loss is not under test here; the OS
		// keeps what a stopped server wrote.
		"-c", "fsync=off",
	)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TZ=UTC"}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	proc, err := startChild(cmd)
	if err != nil {
		p.t.Fatalf("testenv: Postgres: %v", err)
	}
	err = proc.waitReady(fmt.Sprintf("postgres on port %d", p.Port), serverStartTimeout, p.out, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, p.AdminURL)
		if err != nil {
			return err
		}
		return c.Close(ctx)
	})
	if err != nil {
		p.t.Fatalf("testenv: %v", err)
	}
	p.proc = proc
}

// Stop shuts the server down the fast way (SIGINT: clients are
// disconnected, transactions in flight roll back, data is kept), as an
// operator's restart or a failover does. Stopping a stopped server does
// nothing.
func (p *PostgresServer) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		p.proc.Stop(syscall.SIGINT, 30*time.Second)
		p.proc = nil
	}
}

func postgresBinDir() (string, error) {
	if p, err := exec.LookPath("postgres"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "initdb")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	for _, d := range postgresBinDirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server programs (initdb, postgres) not found in PATH or /usr/lib/postgresql/*/bin: install the PostgreSQL server")
}

// postgresCredential is who runs initdb and postgres: this process's user,
// or, when that is root (which both refuse), the system's postgres user.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses root: no postgres user to run it as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("postgres user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// S3Process is a versitygw gateway of the test's own, which the test may
// stop and start again on the same port and data directory. Its S3Server
// (endpoint, credentials, data directory) stays valid across restarts.
// Methods must be called from the test's goroutine.
type S3Process struct {
	*S3Server

	t        testing.TB
	bin      string
	home     string
	versions string
	out      *tailBuffer
	mu       sync.Mutex
	proc     *child
}

// StartS3Server starts a gateway for t on a free loopback port, over TLS
// as S3's is; it is killed at cleanup. A missing binary fails the test.
func StartS3Server(t testing.TB) *S3Process {
	t.Helper()
	bin, err := devtools.VersityGW()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	home := serverDir(t, "mediasync-s3-")
	data, versions := filepath.Join(home, "data"), filepath.Join(home, "versions")
	for _, d := range []string{data, versions} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatalf("testenv: create gateway directory: %v", err)
		}
	}
	cert, err := devtools.NewLoopbackCert(home)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	addr, _ := freeLoopbackAddr(t)
	p := &S3Process{
		S3Server: newS3Server(addr, data, cert),
		t:        t, bin: bin, home: home, versions: versions,
	}
	t.Cleanup(p.Stop)
	p.Start()
	return p
}

// Start starts the gateway on its port and data, and returns once it
// answers its health check. It fails the test if it is already running.
func (p *S3Process) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		p.t.Fatalf("testenv: S3 gateway %s is already running", p.Endpoint)
	}
	proc, out, err := runVersityGW(p.bin, p.S3Server, p.home, p.versions)
	if err != nil {
		p.t.Fatalf("testenv: %v", err)
	}
	p.proc, p.out = proc, out
}

// Stop kills the gateway (SIGKILL: requests in flight break off, as when
// the storage host or the network between goes away). Stopping a stopped
// gateway does nothing.
func (p *S3Process) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		p.proc.Kill()
		p.proc = nil
	}
}

// healthy reports whether an HTTP GET of url answers 200.
func healthy(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
