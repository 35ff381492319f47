package twilio

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseTime(t *testing.T) {
	t.Parallel()
	want := time.Date(2009, 7, 17, 1, 52, 49, 0, time.UTC)
	for _, in := range []string{
		"Fri, 17 Jul 2009 01:52:49 +0000", // Twilio's form
		"Fri, 17 Jul 2009 01:52:49 -0000",
		"Fri, 17 Jul 2009 01:52:49 GMT",
		"Fri, 17 Jul 2009 01:52:49 UTC",
		"17 Jul 2009 01:52:49 +0000",
		"Fri, 17 Jul 2009 03:52:49 +0200",
		" Fri, 17 Jul 2009 01:52:49 +0000 ",
		"2009-07-17T01:52:49Z",
		"2009-07-17T03:52:49+02:00",
	} {
		got, err := ParseTime(in)
		require.NoError(t, err, in)
		require.True(t, got.Equal(want), "%q: got %s", in, got)
		require.Equal(t, time.UTC, got.Location(), in)
	}
	got, err := ParseTime("Mon, 3 Jun 2019 22:04 +0000")
	require.NoError(t, err)
	require.Equal(t, time.Date(2019, 6, 3, 22, 4, 0, 0, time.UTC), got)

	for _, in := range []string{"", "yesterday", "Fri, 17 Jul 2009 01:52:49 MST", "Fri, 17 Jul 2009 25:52:49 +0000",
		"Fri, 32 Jul 2009 01:52:49 +0000", "Fri, 17 Jul 2009 01:52:49 +9900", "1247795569"} {
		_, err := ParseTime(in)
		require.Error(t, err, in)
		require.ErrorContains(t, err, "not an RFC 2822 date")
	}
}

func TestTimeJSON(t *testing.T) {
	t.Parallel()
	var v struct {
		A, B, C Time
	}
	require.NoError(t, json.Unmarshal([]byte(`{"A": "Sun, 16 Aug 2015 15:53:54 +0000", "B": null, "C": ""}`), &v))
	require.Equal(t, time.Date(2015, 8, 16, 15, 53, 54, 0, time.UTC), v.A.Time)
	require.True(t, v.B.IsZero())
	require.True(t, v.C.IsZero())

	out, err := json.Marshal(v)
	require.NoError(t, err)
	require.JSONEq(t, `{"A": "Sun, 16 Aug 2015 15:53:54 +0000", "B": null, "C": null}`, string(out))

	for in, want := range map[string]string{
		`{"A": 1439740434}`:   "got a number",
		`{"A": {}}`:           "got an object",
		`{"A": ["x"]}`:        "got an array",
		`{"A": true}`:         "got a boolean",
		`{"A": "16/08/2015"}`: `time "16/08/2015" is not an RFC 2822 date`,
		`{"A": "` + strings.Repeat("x", 300) + `"}`: "(300 bytes)",
		`{"A": "\ud800 +0000"}`:                     "not an RFC 2822 date",
	} {
		err := json.Unmarshal([]byte(in), &v)
		require.ErrorContains(t, err, want, in)
	}
}

func TestFormatDateFilter(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	for _, tt := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), "2024-01-02"},
		{time.Date(2024, 1, 2, 0, 0, 0, 999, time.UTC), "2024-01-02"},
		{time.Date(2024, 1, 1, 19, 0, 0, 0, ny), "2024-01-02"}, // midnight UTC in another zone
		{time.Date(2024, 1, 2, 0, 0, 1, 0, time.UTC), "2024-01-02T00:00:01Z"},
		{time.Date(2024, 1, 2, 3, 4, 5, 0, ny), "2024-01-02T08:04:05Z"},
	} {
		require.Equal(t, tt.want, formatDateFilter(tt.in), tt.in.String())
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"Fri, 17 Jul 2009 01:52:49 +0000", "Wed, 19 Jun 2019 22:04:00 -0000", "Sun, 16 Aug 2015 15:53:54 +0000",
		"Fri, 24 May 2019 17:44:46 +0000", "2 Jan 2006 15:04 -0700", "Mon, 2 Jan 2006 15:04:05 GMT",
		"2016-03-24T20:38:21Z", "2019-06-11 22:05:25.000", "06/11/2019 22:05:25 MST", "", "Z", " GMT",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseTime(%q) is in %s, want UTC", s, got.Location())
		}
		// What decodes must encode as Twilio does and decode to the same
		// instant.
		out, err := json.Marshal(Time{got})
		if err != nil {
			if got.Year() < 0 || got.Year() > 9999 {
				return
			}
			t.Fatalf("marshal %s: %v", got, err)
		}
		var back Time
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("ParseTime(%q) = %s encodes as %s, which does not decode: %v", s, got, out, err)
		}
		if !back.Equal(got) {
			t.Fatalf("round trip of %q: %s != %s", s, back.Time, got)
		}
	})
}
