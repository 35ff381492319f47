package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzArgs feeds the CLI arbitrary arguments (the fuzz input split on NUL)
// with a configuration that lacks DATABASE_URL, so nothing connects: the
// CLI must never panic, must exit 0, 1 or 2, and a refusal is exactly one
// line on stderr, which is what scripts and operators read.
func FuzzArgs(f *testing.F) {
	for _, args := range [][]string{
		{"backfill", "--since", "2026-03-01", "--until", "2026-03-02"},
		{"backfill", "--since", "2026-03-01", "--until", "2026-03-02", "--delete", "--wait"},
		{"backfill", "--since", "2026-13-01", "--until", "2026-03-02"},
		{"backfill", "--since", "2026-03-02", "--until", "2026-03-01"},
		{"backfill", "--since=2026-03-01", "--until=2026-03-02", "--from", "+15550100", "--to", "whatsapp:+15550199"},
		{"backfill", "--since", "2026-03-01", "--until", "2026-03-02", "--delete", "--dry-run"},
		{"backfill", "--since", "2026-03-01", "--until", "2026-03-02", "--from", "555\n0100"},
		{"backfill", "extra"},
		{"message", "MM0123456789abcdef0123456789abcdef", "--delete"},
		{"message", "MM123"},
		{"message"},
		{"status", "6f1c3b1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f", "--wait"},
		{"status", "yesterday"},
		{"statu"},
		{"policy", "set", "nightly", "--schedule", "0 3 * * *", "--archive-after", "1d", "--delete-after", "30d"},
		{"policy", "set", "p", "--schedule", "@every 1h", "--archive-after", "2d", "--delete-after", "1d"},
		{"policy", "set", "no spaces", "--schedule", "@every 1h"},
		{"policy", "list"},
		{"policy", "remove", "nightly"},
		{"policy", "run", "nightly"},
		{"hold", "add", "--reason", "litigation", "--from", "+15550100", "--since", "2026-01-01", "--until", "2026-02-01"},
		{"hold", "add", "--reason", "x", "--message", "MM1"},
		{"hold", "list"},
		{"hold", "release", "1", "--reason", "settled"},
		{"hold", "release", "first"},
		{"audit", "--since", "2026-01-01", "--json"},
		{"audit", "verify"},
		{"runs", "--state", "cancelled", "--limit", "5", "--json"},
		{"runs", "--state", "done"},
		{"failures", "6f1c3b1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f", "--json"},
		{"cancel", "6f1c3b1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f"},
		{"retry", "nope"},
		{"verify", "--since", "2026-01-01", "--until", "2026-02-01", "--sample", "10%", "--wait"},
		{"verify", "--sample", "1.5"},
		{"policy", "set", "v", "--schedule", "@every 1h", "--kind", "verify", "--sample", "0.1"},
		{"status", "6f1c3b1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f", "--json"},
		{"--actor", "ops\nroot", "backfill"},
		{"--purge"},
		{"-x"},
		{"--since"},
		{"help", "backfill"},
		{"backfill", "--help"},
		{""},
		{},
	} {
		f.Add(strings.Join(args, "\x00"))
	}
	env := map[string]string{
		"TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
		// An unreachable Redis, in case a command ever got past the
		// missing DATABASE_URL: the fuzzer must not touch real services.
		"REDIS_URL": "redis://127.0.0.1:1/0",
	}
	f.Fuzz(func(t *testing.T, in string) {
		var args []string
		if in != "" {
			args = strings.Split(in, "\x00")
		}
		var stdout, stderr bytes.Buffer
		code := Main(t.Context(), args, &stdout, &stderr, func(k string) string { return env[k] })
		switch code {
		case 0:
		case 1, 2:
			if got := stderr.String(); strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
				t.Fatalf("args %q: exit %d with stderr of %d lines, want exactly one:\n%s", args, code, strings.Count(got, "\n"), got)
			}
		default:
			t.Fatalf("args %q: exit %d, want 0, 1 or 2\nstderr: %s", args, code, stderr.String())
		}
	})
}

// FuzzParseSample: --sample either is refused as bad input, naming the
// flag, or is a share in (0, 1].
func FuzzParseSample(f *testing.F) {
	for _, s := range []string{"0.1", "1", "10%", "100%", "0", "0%", "1.5", "150%", "NaN", "Inf", "1e-300", "-0", "%", " 5% ", "0x1p-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		v, err := parseSample(in)
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) || !strings.HasPrefix(ue.msg, "--sample ") {
				t.Fatalf("%q: %v, want a usage error naming --sample", in, err)
			}
			return
		}
		if !(v > 0 && v <= 1) {
			t.Fatalf("%q: %v is not in (0, 1]", in, v)
		}
	})
}
