package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"36h", 36 * time.Hour, false},
		{"30d", 30 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"0", 0, false},
		{"", 0, true},
		{"-1h", 0, true},
		{"-3d", 0, true},
		{"d", 0, true},
		{"3days", 0, true},
		{"1y", 0, true},
	} {
		got, err := ParseDuration(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseDuration(%q) = %v, %v", tc.in, got, err)
		}
		if !tc.bad {
			if back, err := ParseDuration(FormatDuration(got)); err != nil || back != got {
				t.Errorf("FormatDuration(%v) = %q does not parse back: %v", got, FormatDuration(got), err)
			}
		}
	}
}

func TestLatestTick(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		spec, after, now, want string
	}{
		{"@every 2s", "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z", "2026-01-01T00:00:04Z"},
		{"@every 2s", "2026-01-01T00:00:04Z", "2026-01-01T00:00:05Z", ""}, // already ticked
		{"@every 24h", "2026-01-01T00:00:00Z", "2026-01-04T10:00:00Z", "2026-01-04T00:00:00Z"},
		{"0 3 * * *", "2026-01-01T03:00:00Z", "2026-01-04T10:00:00Z", "2026-01-04T03:00:00Z"}, // 3 days down: one tick covers them
		{"0 3 * * *", "2026-01-04T03:00:00Z", "2026-01-04T10:00:00Z", ""},
		{"@daily", "", "2026-01-04T10:00:00Z", "2026-01-04T00:00:00Z"},
	} {
		s, err := Parse(tc.spec)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.spec, err)
		}
		var after time.Time
		if tc.after != "" {
			after = at(tc.after)
		}
		got := s.Latest(after, at(tc.now))
		want := time.Time{}
		if tc.want != "" {
			want = at(tc.want)
		}
		if !got.Equal(want) {
			t.Errorf("%s after %s now %s: got %v, want %v", tc.spec, tc.after, tc.now, got, want)
		}
	}
}

func TestParseRefusesBadSpecs(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"", "every 2s", "@every", "@every 0s", "@every -1h", "61 * * * *", "* * *", "CRON_TZ=Europe/Paris 0 3 * * *"} {
		if _, err := Parse(spec); err == nil {
			t.Errorf("Parse(%q) accepted", spec)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"@every 2s", "0 3 * * *", "@daily", "@every 1d12h", "*/5 * * * *", "", "@every"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := Parse(spec)
		if err != nil {
			return
		}
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		if tick := s.Latest(now.Add(-48*time.Hour), now); !tick.IsZero() && tick.After(now) {
			t.Fatalf("%q: tick %v after now", spec, tick)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"36h", "30d", "1d12h", "", "-1d", "9999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("%q parsed to negative %v", s, d)
		}
	})
}

// Durations too long for time.Duration are refused, naming the value, not
// wrapped around: 213504 days times 24h overflows int64 nanoseconds to
// 25m26s, which a retention or a policy would then silently use.
func TestParseDurationRefusesOverflow(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"213504d",               // wraps to 25m26s
		"106752d",               // wraps negative
		"4294967295d",           // the largest uint32
		"18446744073709551616d", // more than uint64
		"36501d",                // just past the 100-year bound
		"36500d1h",              // the bound plus a little
		"1d2562047h",            // each part fits, the sum does not
		"@every 213504d",
	} {
		var err error
		if rest, ok := strings.CutPrefix(in, "@every "); ok {
			_, err = Parse(in)
			in = rest
		} else {
			var d time.Duration
			d, err = ParseDuration(in)
			if err == nil {
				t.Errorf("ParseDuration(%q) = %v, want an error", in, d)
				continue
			}
		}
		if err == nil || !strings.Contains(err.Error(), in) {
			t.Errorf("%q: error %v does not name the value", in, err)
		}
	}
	if d, err := ParseDuration("36500d"); err != nil || d != MaxDuration {
		t.Errorf("ParseDuration(36500d) = %v, %v; want the bound itself", d, err)
	}
}
