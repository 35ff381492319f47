package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/testenv"
)

// Bad input gets one clear line naming the problem, exit code 2, and
// nothing enqueued: no run row, no task in Redis.
func TestBadInputExitsTwoAndEnqueuesNothing(t *testing.T) {
	t.Parallel()
	db := testenv.NewDatabase(t)
	rds := testenv.NewRedis(t)
	good := map[string]string{
		"TWILIO_ACCOUNT_SID":  "AC0123456789abcdef0123456789abcdef",
		"DATABASE_URL":        db.URL,
		"REDIS_URL":           rds.URL,
		"MEDIASYNC_NAMESPACE": rds.Namespace,
	}
	without := func(k string) map[string]string {
		m := map[string]string{}
		for kk, v := range good {
			if kk != k {
				m[kk] = v
			}
		}
		return m
	}
	with := func(k, v string) map[string]string {
		m := without(k)
		m[k] = v
		return m
	}
	cases := []struct {
		desc string
		env  map[string]string
		args []string
		want string // in the one line on stderr
	}{
		{"malformed since", good, []string{"backfill", "--since", "2026-13-01", "--until", "2026-02-01"}, `--since "2026-13-01" is not a date`},
		{"since not before until", good, []string{"backfill", "--since", "2026-02-01", "--until", "2026-02-01"}, "must be before --until"},
		{"since after until", good, []string{"backfill", "--since", "2026-03-01", "--until", "2026-02-01"}, "must be before --until"},
		{"missing until", good, []string{"backfill", "--since", "2026-01-01"}, `"until" not set`},
		{"unknown flag", good, []string{"backfill", "--since", "2026-01-01", "--until", "2026-01-02", "--purge"}, "unknown flag: --purge"},
		{"unknown command", good, []string{"archive-everything"}, "unknown command"},
		{"delete with dry-run", good, []string{"backfill", "--since", "2026-01-01", "--until", "2026-01-02", "--delete", "--dry-run"}, "exclude each other"},
		{"bad from number", good, []string{"backfill", "--since", "2026-01-01", "--until", "2026-01-02", "--from", "555-0100"}, `--from "555-0100"`},
		{"unknown source", good, []string{"backfill", "--source", "chat", "--since", "2026-01-01", "--until", "2026-01-02"}, `--source "chat": want messaging or conversations`},
		{"bad service", good, []string{"backfill", "--source", "conversations", "--service", "IS12", "--since", "2026-01-01", "--until", "2026-01-02"}, `--service "IS12" is not a Conversations service SID`},
		{"service without conversations", good, []string{"backfill", "--service", "IS0123456789abcdef0123456789abcdef", "--since", "2026-01-01", "--until", "2026-01-02"}, "is for --source conversations only"},
		{"from with conversations", good, []string{"backfill", "--source", "conversations", "--from", "+15550100", "--since", "2026-01-01", "--until", "2026-01-02"}, "--from and --to filter Messaging only"},
		{"no-bodies with conversations", good, []string{"backfill", "--source", "conversations", "--no-bodies", "--since", "2026-01-01", "--until", "2026-01-02"}, "--no-bodies is for --source messaging only"},
		{"policy no-bodies with conversations", good, []string{"policy", "set", "p1", "--schedule", "@every 1h", "--source", "conversations", "--no-bodies"}, "--no-bodies is for the messaging source only"},
		{"malformed message SID", good, []string{"message", "MM123"}, `message SID "MM123" is not valid`},
		{"media SID as message", good, []string{"message", "ME0123456789abcdef0123456789abcdef"}, "is not valid"},
		{"no message SID", good, []string{"message"}, "accepts 1 arg"},
		{"malformed run id", good, []string{"status", "yesterday"}, `run id "yesterday"`},
		{"missing account", without("TWILIO_ACCOUNT_SID"), []string{"backfill", "--since", "2026-01-01", "--until", "2026-01-02"}, "TWILIO_ACCOUNT_SID is not set"},
		{"malformed account", with("TWILIO_ACCOUNT_SID", "AC12"), []string{"message", "MM0123456789abcdef0123456789abcdef"}, `TWILIO_ACCOUNT_SID must be AC followed by 32 hex digits (got 4 characters starting "AC")`},
		{"missing database", without("DATABASE_URL"), []string{"message", "MM0123456789abcdef0123456789abcdef"}, "DATABASE_URL is not set"},
		{"bad schedule", good, []string{"policy", "set", "p1", "--schedule", "every night"}, "--schedule: schedule \"every night\""},
		{"bad cron", good, []string{"policy", "set", "p1", "--schedule", "61 * * * *"}, "--schedule"},
		{"bad duration", good, []string{"policy", "set", "p1", "--schedule", "@every 1h", "--archive-after", "3 days"}, `--archive-after: duration "3 days"`},
		{"delete before archive", good, []string{"policy", "set", "p1", "--schedule", "@every 1h", "--archive-after", "2d", "--delete-after", "1d"}, "shorter than --archive-after"},
		{"bad policy name", good, []string{"policy", "set", "no spaces", "--schedule", "@every 1h"}, `policy name "no spaces"`},
		{"bad policy number", good, []string{"policy", "set", "p1", "--schedule", "@every 1h", "--to", "5550100"}, `--to "5550100"`},
		{"bad start", good, []string{"policy", "set", "p1", "--schedule", "@every 1h", "--start", "yesterday"}, `--start "yesterday"`},
		// Days Twilio cannot have messages for, and durations that overflow.
		{"since before Twilio", good, []string{"backfill", "--since", "2007-12-31", "--until", "2026-01-02"}, "--since 2007-12-31 is before 2008-01-01"},
		{"until far ahead", good, []string{"backfill", "--since", "2026-01-01", "--until", "2099-01-01"}, "--until 2099-01-01 is more than a day after now"},
		{"export since before Twilio", good, []string{"export", "--since", "2007-12-31", "--until", "2026-04-01", "--out", "file:///tmp/x"}, "--since 2007-12-31 is before 2008-01-01"},
		{"export until far ahead", good, []string{"export", "--since", "2026-03-01", "--until", "2227-04-01", "--out", "file:///tmp/x"}, "--until 2227-04-01 is more than a day after now"},
		{"start before Twilio", good, []string{"policy", "set", "p1", "--schedule", "@every 1h", "--start", "2007-12-31"}, "--start 2007-12-31 is before 2008-01-01"},
		{"start far ahead", good, []string{"policy", "set", "p1", "--schedule", "@every 1h", "--start", "2099-01-01"}, "--start 2099-01-01 is more than a day after now"},
		{"archive-after overflows", good, []string{"policy", "set", "p1", "--schedule", "@every 1h", "--archive-after", "213504d"}, `--archive-after: duration "213504d" is out of range`},
		{"delete-after overflows", good, []string{"policy", "set", "p1", "--schedule", "@every 1h", "--delete-after", "213504d"}, `--delete-after: duration "213504d" is out of range`},
		{"every overflows", good, []string{"policy", "set", "p1", "--schedule", "@every 213504d"}, `duration "213504d" is out of range`},
		{"presign overflows", good, []string{"export", "--since", "2026-03-01", "--until", "2026-04-01", "--out", "s3://bkt/x", "--presign", "213504d"}, `--presign "213504d"`},
		{"hold without reason", good, []string{"hold", "add", "--from", "+15550100"}, "--reason is required"},
		{"hold with two scopes", good, []string{"hold", "add", "--reason", "x", "--from", "+15550100", "--to", "+15550199"}, "exactly one of"},
		{"hold bad message", good, []string{"hold", "add", "--reason", "x", "--message", "MM1"}, `--message "MM1"`},
		{"hold bad id", good, []string{"hold", "release", "first", "--reason", "x"}, `hold id "first"`},
		{"audit bad since", good, []string{"audit", "--since", "March"}, `--since "March"`},
		{"export bad date", good, []string{"export", "--since", "2026-03-32", "--until", "2026-04-01", "--out", "file:///tmp/x"}, `--since "2026-03-32"`},
		{"export since after until", good, []string{"export", "--since", "2026-04-01", "--until", "2026-03-01", "--out", "file:///tmp/x"}, "must be before --until"},
		{"export no out", good, []string{"export", "--since", "2026-03-01", "--until", "2026-04-01"}, `"out" not set`},
		{"export bad url", good, []string{"export", "--since", "2026-03-01", "--until", "2026-04-01", "--out", "ftp://host/x"}, "--out: "},
		{"export url with credentials", good, []string{"export", "--since", "2026-03-01", "--until", "2026-04-01", "--out", "s3://AKIA:s3cr3t@bucket/x"}, "credentials in the URL are not allowed"},
		{"export bad number", good, []string{"export", "--since", "2026-03-01", "--until", "2026-04-01", "--out", "file:///tmp/x", "--number", "0100"}, `--number "0100"`},
		{"export bad message", good, []string{"export", "--since", "2026-03-01", "--until", "2026-04-01", "--out", "file:///tmp/x", "--message", "SM12"}, `--message "SM12"`},
		{"export bad format", good, []string{"export", "--since", "2026-03-01", "--until", "2026-04-01", "--out", "file:///tmp/x", "--format", "tar"}, `--format "tar"`},
		{"export rsmf limit on a zip", good, []string{"export", "--since", "2026-03-01", "--until", "2026-04-01", "--out", "file:///tmp/x", "--format", "zip", "--rsmf-max-events", "5"}, `--rsmf-max-events "5"`},
		{"export bad presign", good, []string{"export", "--since", "2026-03-01", "--until", "2026-04-01", "--out", "s3://bkt/x", "--presign", "soon"}, `--presign "soon"`},
		{"export presign too long", good, []string{"export", "--since", "2026-03-01", "--until", "2026-04-01", "--out", "s3://bkt/x", "--presign", "8d"}, "1s to 7d"},
		{"export presign to a folder", good, []string{"export", "--since", "2026-03-01", "--until", "2026-04-01", "--out", "file:///tmp/x", "--presign", "1h"}, "needs an s3://"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := Main(t.Context(), tc.args, &out, &errb, func(k string) string { return tc.env[k] })
			require.Equal(t, 2, code, "stderr: %s", errb.String())
			require.Contains(t, errb.String(), tc.want)
			require.Equal(t, 1, strings.Count(errb.String(), "\n"), "one line: %q", errb.String())
			require.Empty(t, out.String())
		})
	}
	t.Cleanup(func() {
		// Nothing was enqueued: no task keys in the test's namespace, and
		// no run recorded (the database may not even have been migrated).
		ctx := context.Background()
		keys, err := rds.Client.Keys(ctx, "asynq:{"+rds.Namespace+"*").Result()
		if err != nil || len(keys) != 0 {
			t.Errorf("tasks were enqueued: %v %v", keys, err)
		}
		pool := db.Pool(t)
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM runs`).Scan(&n); err == nil && n != 0 {
			t.Errorf("%d runs recorded", n)
		}
	})
}
