package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestProgramServesAndStops builds the program, runs it, fetches one page of
// messages with the credentials it printed, and stops it with SIGTERM.
func TestProgramServesAndStops(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "twilio-emulator")
	build := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	envFile := filepath.Join(t.TempDir(), "twilio.env")
	cmd := exec.Command(bin, "-messages", "25", "-conversations", "2", "-seed", "9", "-env-file", envFile, "-max-in-flight", "8")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = io.Discard
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	env := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		require.True(t, ok, "line %q", sc.Text())
		env[k] = v
		if k == "TWILIO_EMULATOR_SIGNED_URL" {
			break
		}
	}
	for _, k := range []string{"TWILIO_API_URL", "TWILIO_CONVERSATIONS_URL", "TWILIO_MCS_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET", "TWILIO_EMULATOR_ADMIN_URL"} {
		require.NotEmpty(t, env[k], k)
	}
	file, err := os.ReadFile(envFile)
	require.NoError(t, err)
	require.Contains(t, string(file), "export TWILIO_ACCOUNT_SID="+env["TWILIO_ACCOUNT_SID"]+"\n")

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
		env["TWILIO_API_URL"]+"/2010-04-01/Accounts/"+env["TWILIO_ACCOUNT_SID"]+"/Messages.json?PageSize=10", nil)
	require.NoError(t, err)
	req.SetBasicAuth(env["TWILIO_API_KEY"], env["TWILIO_API_SECRET"])
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var page struct {
		Messages    []map[string]any `json:"messages"`
		NextPageURI *string          `json:"next_page_uri"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, page.Messages, 10)
	require.NotNil(t, page.NextPageURI)

	resp, err = http.Get(env["TWILIO_EMULATOR_ADMIN_URL"] + "/faults")
	require.NoError(t, err)
	var faults map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&faults))
	resp.Body.Close()
	require.Equal(t, float64(8), faults["max_in_flight"], "fault flags reach the server")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "exit after SIGTERM")
	case <-time.After(20 * time.Second):
		t.Fatal("the program did not stop after SIGTERM")
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		args    []string
		wantErr string
		check   func(t *testing.T, o *options)
	}{
		{desc: "defaults", check: func(t *testing.T, o *options) {
			require.Equal(t, 1000, o.data.Messages)
			require.Equal(t, int64(1<<20), o.data.MaxMediaSize)
			require.Equal(t, int64(150*1000*1000), o.cfg.MaxUploadSize)
			require.False(t, o.account.MediaAuthDisabled)
		}},
		{desc: "sizes and faults", args: []string{"-large-media-size", "150MB", "-body-bytes-per-sec", "64KiB", "-latency", "20ms", "-media-auth=false", "-start", "2024-01-01", "-end", "2024-02-01T00:00:00Z"},
			check: func(t *testing.T, o *options) {
				require.Equal(t, int64(150_000_000), o.data.LargeMediaSize)
				require.Equal(t, int64(64<<10), o.cfg.Faults.BodyBytesPerSecond)
				require.Equal(t, 20*time.Millisecond, o.cfg.Faults.Latency)
				require.True(t, o.account.MediaAuthDisabled)
				require.Equal(t, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), o.data.Start)
			}},
		{desc: "bad size", args: []string{"-max-media-size", "lots"}, wantErr: `"lots"`},
		{desc: "bad date", args: []string{"-start", "yesterday"}, wantErr: "-start"},
		{desc: "stray argument", args: []string{"serve"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			o, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, o)
		})
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	_, err := parseFlags([]string{"-help"}, &out)
	require.True(t, errors.Is(err, flag.ErrHelp))
	for _, name := range []string{"api-addr", "signed-host", "seed", "account-sid", "auth-token", "api-key", "api-secret", "start", "end", "messages",
		"max-in-flight", "rps", "retry-after", "latency", "delete-latency", "error-rate", "cut-rate", "reset-rate", "vanish-rate", "body-bytes-per-sec",
		"large-media-size", "redirect-status", "redirect-hops", "media-auth", "env-file"} {
		require.Regexp(t, `(?m)^  -`+name+`( |$)`, out.String(), "help lists -%s", name)
	}
}

func TestByteSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "1KB": 1000, "1KiB": 1024, "150MB": 150_000_000, "2GiB": 2 << 30, "7B": 7} {
		var b byteSize
		require.NoError(t, b.Set(in), in)
		require.Equal(t, want, int64(b), in)
	}
	for _, in := range []string{"", "-1", "1TB", "MB", "1.5MB"} {
		var b byteSize
		require.Error(t, b.Set(in), in)
	}
	b := byteSize(150_000_000)
	require.Equal(t, "150MB", b.String())
}

// TestDoesNotLinkTesting keeps package testing (and its flags) out of the
// emulator binary: twiliotest, which the binary is built on, must not
// import it outside its _test files.
func TestDoesNotLinkTesting(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.CommandContext(t.Context(), goBin, "list", "-deps", ".").Output()
	require.NoError(t, err, "go list -deps")
	for dep := range strings.Lines(string(out)) {
		require.NotEqual(t, "testing", strings.TrimSpace(dep),
			"cmd/twilio-emulator links package testing: some non-test file of a package it imports (twiliotest?) imports it")
	}
}
