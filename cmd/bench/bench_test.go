package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mediasync/mediasync/internal/e2etest"
)

// TestQuickRunReportsEveryFigure proves the benchmark still runs: every
// scenario end to end on a handful of media (files of 1 MiB in the large
// one), the real pipeline and the bare copy, and a report that carries
// every figure and every target. It asserts nothing about the figures
// themselves: they are timings on a shared machine. The scenarios run in
// parallel groups, each a benchmark of its own, to keep the test short.
func TestQuickRunReportsEveryFigure(t *testing.T) {
	t.Parallel()
	bin := filepath.Dir(e2etest.Binary(t, "worker")) // built once per test process
	// Every figure of the issue is a column of the table…
	header := regexp.MustCompile(`(?m)^ *scenario +media +MB +conc +media/s +MB/s +Twilio req/media +worker CPU s/1k media +worker peak RSS +Redis peak +PG rows/s +PG xacts/media +bare media/s +bare MB/s +pipeline÷bare *$`)
	for _, tc := range []struct {
		scenarios string
		rows      []string // a full row of figures for each run
		targets   []string // and each target beside its figure
	}{
		{"small,mix", []string{"small", "mix"}, []string{
			`small +pipeline ÷ bare ≥ 0\.80 +[0-9.]+ \([0-9.]+ vs [0-9.]+ media/s\) +(PASS|MISS)`,
			// …and what the records of issue #17 leave of it.
			`small +storing each message's record \(issue #17\) +the bare copy, then its records: [0-9.]+ media/s, [0-9.]+ of the bare copy's [0-9.]+: the most a pipeline that stores them reaches`,
			`small +both +the checked bare copy, then the records: [0-9.]+ media/s, [0-9.]+ of the bare copy's [0-9.]+: the most a pipeline that does both reaches`,
		}},
		{"large", []string{"large"}, []string{
			`large +pipeline ÷ bare ≥ 0\.90 +[0-9.]+ \([0-9.]+ vs [0-9.]+ MB/s\) +(PASS|MISS)`,
			`large +worker peak RSS < 200 MiB at 4-way, 1 MiB files +[0-9.]+ MiB +(PASS|MISS)`,
			`large +no spool file written \(downloads streamed into S3 over TLS\) +[0-9]+ spool files +(PASS|MISS)`,
			// …and what invariant 1's checks leave of it.
			`large +SHA-256 and the Sniffer over every byte, the hash verified by S3 \(invariant 1\) +the bare copy with them: [0-9.]+ MB/s, [0-9.]+ of the bare copy's [0-9.]+: the most a pipeline that checks reaches`,
			`large +bare checked( +([0-9.]+|-)){7} +[0-9]+% of the CPUs`,
		}},
		{"twilio", []string{"twilio", "twilio-16"}, []string{
			`twilio +≥ 90% of the limit's bound, no failed media +[0-9]+% \(.*\); [0-9]+ failed; [0-9]+ × 429; peak [0-9]+ in flight, mean [0-9.]+, each held [0-9.]+ ms by the emulator \(latency [0-9]+ms\); in flight by tenth of the run:( [0-9.]+){10} +(PASS|MISS)`,
			`twilio-16 +≥ 90% of the limit's bound, no failed media +[0-9]+% \(.*\); [0-9]+ failed; [0-9]+ × 429; peak [0-9]+ in flight, mean [0-9.]+, each held [0-9.]+ ms by the emulator \(latency [0-9]+ms\); in flight by tenth of the run:( [0-9.]+){10} +(PASS|MISS)`,
		}},
		{"conversations", []string{"conversations-102kib", "conversations-1mib"}, []string{
			`conversations-1mib +pipeline ÷ bare ≥ 0\.90 +[0-9.]+ \([0-9.]+ vs [0-9.]+ MB/s\) +(PASS|MISS)`,
			`conversations-1mib +worker peak RSS < 200 MiB at 4-way, 1MiB files +[0-9.]+ MiB +(PASS|MISS)`,
			`conversations +peak RSS does not follow file size \(×10 files: ≤ ×1\.5 RSS\) +.* +(PASS|MISS)`,
		}},
		{"export", []string{"export", `export \(zip export\)`}, []string{
			`export +zip export holds every archived media, re-verified +[0-9]+ of [0-9]+ media \(.*\); 0 failed +PASS`,
			`export +zip export: worker peak RSS < 200 MiB +[0-9.]+ MiB for [0-9]+ media +(PASS|MISS)`,
		}},
		{"worm,delete", []string{"small-worm", "small-delete"}, []string{
			`small-delete +deletes from Twilio every media it archived +([0-9]+) of ([0-9]+) media deleted; 0 failed +PASS`,
		}},
		{"redis", []string{`redis-12 \(dry run\)`, `redis-120 \(dry run\)`}, []string{
			`redis +peak Redis memory flat as the run grows 10× \(≤ ×1\.25\) +[0-9.]+ MiB at [0-9]+ media → [0-9.]+ MiB at [0-9]+ media \(×[0-9.]+\) +(PASS|MISS)`,
		}},
	} {
		t.Run(tc.scenarios, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := run(ctx, []string{"-quick", "-scenarios", tc.scenarios, "-media", "12", "-large-mib", "1",
				"-bin", bin, "-workdir", t.TempDir()}, &stdout, &stderr)
			if err != nil {
				t.Fatalf("bench: %v\nstderr:\n%s", err, stderr.String())
			}
			out := stdout.String()
			if !header.MatchString(out) {
				t.Errorf("report lacks the table header with every figure:\n%s", out)
			}
			for _, name := range tc.rows {
				row := regexp.MustCompile(`(?m)^ *` + name + `( +([0-9.]+|default)( MiB)?){11}( +([0-9.]+|-)){3} *$`)
				if !row.MatchString(out) {
					t.Errorf("report has no full row of figures for %s:\n%s", name, out)
				}
			}
			for _, want := range append(tc.targets, `CPU seconds per 1000 media, by part`) {
				if !regexp.MustCompile(want).MatchString(out) {
					t.Errorf("report lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestParseFlagsRefusesUnknownScenario(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"-scenarios", "small,huge"}, &bytes.Buffer{}, &stderr)
	if !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), `"huge"`) {
		t.Fatalf("err = %v, stderr %q; want a usage error naming the scenario", err, stderr.String())
	}
}

func TestDatabaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ admin, want string }{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/bench?sslmode=disable"},
		{"postgres://u@h/db", "postgres://u@h/bench"},
	} {
		got, err := databaseURL(tc.admin, "bench")
		if err != nil || got != tc.want {
			t.Errorf("databaseURL(%q) = %q, %v; want %q", tc.admin, got, err, tc.want)
		}
	}
	if _, err := databaseURL("host=h dbname=x", "bench"); err == nil {
		t.Error("databaseURL accepted a keyword/value DSN")
	}
}
