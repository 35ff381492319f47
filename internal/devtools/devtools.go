// Package devtools is what tests and the benchmark share to run the
// programs mediasync is tested against (versitygw, redis-server, Postgres,
// the Twilio emulator, the worker): where the repository and the tools
// `make tools` installs are, free loopback ports, and child processes that
// die with the process that started them.
//
// It reads the environment (VERSITYGW) and is never imported by the
// programs mediasync ships.
package devtools

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// RepoRoot returns the directory holding go.mod, from the working
// directory up (the package directory under go test).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// VersityGW finds the S3 server binary: $VERSITYGW, then the repository's
// .tools/bin (installed by `make tools`), then PATH.
func VersityGW() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("VERSITYGW=%q: %w", p, err)
		}
		return p, nil
	}
	if root, err := RepoRoot(); err == nil {
		p := filepath.Join(root, ".tools", "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", errors.New("versitygw not found: run `make tools` (or set VERSITYGW to the binary)")
}

// FreeLoopbackPort returns a loopback port nobody listens on now.
func FreeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Child is a program started by Start.
type Child struct {
	Cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's answer, set before done is closed
}

// Start starts cmd so that it dies with this process, however this process
// exits (Pdeathsig).
func Start(cmd *exec.Cmd) (*Child, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	c := &Child{Cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the *thread* that forked the child exits, not
		// the process. Go may retire idle threads, so this goroutine keeps its
		// thread locked and alive for as long as the child runs.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	return c, nil
}

// Done is closed once the child has exited.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err is how the child exited; call it after Done is closed.
func (c *Child) Err() error { return c.err }

// Exited reports whether the child has ended.
func (c *Child) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Pid is the child's process id.
func (c *Child) Pid() int { return c.Cmd.Process.Pid }

// Stop sends sig and waits up to grace for the child to exit, then kills
// it. Stopping an exited child does nothing.
func (c *Child) Stop(sig os.Signal, grace time.Duration) {
	if c.Exited() {
		return
	}
	_ = c.Cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(grace):
		c.Kill()
	}
}

// Kill ends the child at once (SIGKILL) and waits for it.
func (c *Child) Kill() {
	_ = c.Cmd.Process.Kill()
	<-c.done
}

// LeakedGoroutines returns the stacks of the goroutines, other than the
// caller's, that are running code whose stack mentions marker (a package
// path, say), waiting up to within for them to finish: a goroutine that
// has delivered its result may still be on its way out. (A package's
// TestMain checks for leaks with testenv.VerifyTestMain instead.)
func LeakedGoroutines(marker string, within time.Duration) string {
	deadline := time.Now().Add(within)
	for {
		leaks := goroutinesRunning(marker)
		if leaks == "" || !time.Now().Before(deadline) {
			return leaks
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func goroutinesRunning(marker string) string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaks [][]byte
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 { // the caller's
			continue
		}
		if bytes.Contains(g, []byte(marker)) && !bytes.Contains(g, []byte(".TestMain(")) {
			leaks = append(leaks, g)
		}
	}
	return string(bytes.Join(leaks, []byte("\n\n")))
}
