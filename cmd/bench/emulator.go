package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// emulator is a twilio-emulator process with one account and a generated
// dataset, steered through its /_emulator/ admin endpoints.
type emulator struct {
	proc    *process
	apiURL  string
	account string
	token   string
	http    *http.Client
}

// startEmulator runs the emulator with the dataset flags given (see
// twilio-emulator --help) and waits until it serves.
func (l *lab) startEmulator(ctx context.Context, name string, flags ...string) (*emulator, error) {
	envFile := filepath.Join(l.dir, "emulator-"+name+".env")
	if err := os.Remove(envFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	args := append([]string{"-seed", "1", "-request-log", "-1", "-env-file", envFile}, flags...)
	p, err := start("twilio-emulator", filepath.Join(l.dir, "emulator-"+name+".log"), nil,
		filepath.Join(l.bin, "twilio-emulator"), args...)
	if err != nil {
		return nil, err
	}
	var env map[string]string
	err = poll(ctx, time.Minute, 20*time.Millisecond, func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("twilio-emulator exited: %v\n%s", p.Err(), p.tail())
		}
		b, err := os.ReadFile(envFile) // written atomically once serving
		if err != nil {
			return false, nil
		}
		env = parseExports(b)
		return true, nil
	})
	if err != nil {
		p.stop(time.Second)
		return nil, err
	}
	return &emulator{
		proc: p, apiURL: env["TWILIO_API_URL"], account: env["TWILIO_ACCOUNT_SID"], token: env["TWILIO_AUTH_TOKEN"],
		http: &http.Client{Timeout: time.Minute},
	}, nil
}

// parseExports reads the emulator's "export NAME=value" lines.
func parseExports(b []byte) map[string]string {
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
			env[k] = v
		}
	}
	return env
}

func (e *emulator) stop() { e.proc.stop(5 * time.Second) }

// stats returns the emulator's counters.
func (e *emulator) stats(ctx context.Context) (twiliotest.Stats, error) {
	var s twiliotest.Stats
	return s, e.admin(ctx, http.MethodGet, "stats", nil, &s)
}

func (e *emulator) resetStats(ctx context.Context) error {
	return e.admin(ctx, http.MethodPost, "stats/reset", nil, nil)
}

// setFaults changes the faults named in f, e.g. {"latency": "100ms"}.
func (e *emulator) setFaults(ctx context.Context, f map[string]any) error {
	return e.admin(ctx, http.MethodPost, "faults", f, nil)
}

func (e *emulator) addMessage(ctx context.Context, m twiliotest.MessageOptions) (twiliotest.MessageInfo, error) {
	var info twiliotest.MessageInfo
	return info, e.admin(ctx, http.MethodPost, "accounts/"+e.account+"/messages", m, &info)
}

func (e *emulator) generate(ctx context.Context, d twiliotest.Dataset) (twiliotest.DatasetSummary, error) {
	var sum twiliotest.DatasetSummary
	return sum, e.admin(ctx, http.MethodPost, "accounts/"+e.account+"/generate", d, &sum)
}

func (e *emulator) admin(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.apiURL+"/_emulator/"+path, body)
	if err != nil {
		return err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return fmt.Errorf("emulator %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("emulator %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// getJSON fetches an API path (or absolute URL) with the account's
// credentials and decodes it.
func (e *emulator) getJSON(ctx context.Context, pathOrURL string, out any) error {
	u := pathOrURL
	if strings.HasPrefix(u, "/") {
		u = e.apiURL + u
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(e.account, e.token)
	resp, err := e.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", pathOrURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", pathOrURL, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
