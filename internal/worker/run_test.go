package worker_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/config"
	"github.com/mediasync/mediasync/internal/devtools"
	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/worker"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// Run returns only once every loop and endpoint it started has ended, so
// none of them outlives the Redis client and the Postgres pool Run closes
// on its way out; the web UI's queue view closes its own Redis client (the
// package's TestMain finds any goroutine left). (No other test of this package runs Run: the goroutines
// it looks for are this test's alone.)
func TestRunWaitsForItsLoopsAndEndpoints(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{Seed: 7}})
	cfg, err := config.Load(func(k string) string { return d.Env[k] }, config.Need{TwilioCredentials: true, Archive: true})
	require.NoError(t, err)
	cfg.ArchiveURL = "file://" + t.TempDir()
	httpPort, err := devtools.FreeLoopbackPort()
	require.NoError(t, err)
	pprofPort, err := devtools.FreeLoopbackPort()
	require.NoError(t, err)
	cfg.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", httpPort)
	cfg.PprofAddr = fmt.Sprintf("127.0.0.1:%d", pprofPort)
	cfg.UIToken = "ui-token" // the web UI and asynqmon (its own Redis client) too

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg, zerolog.Nop()) }()

	// Both endpoints answer once Run has started everything.
	for _, url := range []string{"http://" + cfg.HTTPAddr + "/healthz", "http://" + cfg.PprofAddr + "/debug/pprof/"} {
		require.Eventually(t, func() bool {
			resp, err := http.Get(url)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 30*time.Second, 20*time.Millisecond, "GET %s", url)
	}

	for _, path := range []string{"/ui/", "/ui/queues/api/queues"} {
		req, err := http.NewRequest(http.MethodGet, "http://"+cfg.HTTPAddr+path, nil)
		require.NoError(t, err)
		req.SetBasicAuth("ops", cfg.UIToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s", path)
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of its context ending")
	}
	// At once, not eventually: Run has already waited for them.
	require.Empty(t, devtools.LeakedGoroutines("mediasync/internal/worker.Run", 0),
		"goroutines Run started are still running after it returned")
}

// A worker asked to stop while it still waits for Postgres stops cleanly
// (a supervisor sees no failed start); one whose start fails for its own
// reason still fails. Not parallel, so its Run is over before
// TestRunWaitsForItsLoopsAndEndpoints counts Run's goroutines.
func TestRunStoppedWhileStarting(t *testing.T) {
	port, err := devtools.FreeLoopbackPort()
	require.NoError(t, err)
	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{Seed: 7}})
	for _, tc := range []struct {
		name    string
		setup   func(*config.Config)
		stop    bool
		wantErr string
	}{
		{"stopped while Postgres does not answer", func(c *config.Config) {
			c.DatabaseURL = fmt.Sprintf("postgres://mediasync@127.0.0.1:%d/none?connect_timeout=1", port)
		}, true, ""},
		{"Object Lock asked of a store without it", func(c *config.Config) { c.ObjectLock = "COMPLIANCE" }, false, "ARCHIVE_OBJECT_LOCK=COMPLIANCE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load(func(k string) string { return d.Env[k] }, config.Need{TwilioCredentials: true, Archive: true})
			require.NoError(t, err)
			cfg.ArchiveURL = "file://" + t.TempDir()
			tc.setup(&cfg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- worker.Run(ctx, cfg, zerolog.Nop()) }()
			if tc.stop {
				time.Sleep(300 * time.Millisecond) // Run is in its wait for Postgres
				cancel()
			}
			select {
			case err := <-done:
				if tc.wantErr == "" {
					require.NoError(t, err)
				} else {
					require.ErrorContains(t, err, tc.wantErr)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return")
			}
		})
	}
}
