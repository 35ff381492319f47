package twilio

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCountJSON(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Count{
		`"3"`:          {3, true},
		`"0"`:          {0, true},
		`7`:            {7, true},
		`0`:            {0, true},
		`null`:         {},
		`""`:           {},
		` "10" `:       {10, true},
		`"2147483647"`: {2147483647, true},
	} {
		var c Count
		require.NoError(t, json.Unmarshal([]byte(in), &c), in)
		require.Equal(t, want, c, in)
	}
	for in, want := range map[string]string{
		`"-1"`:         `count "-1" is not a whole number`,
		`-1`:           `count "-1" is not a whole number`,
		`1.5`:          `count "1.5" is not a whole number`,
		`1e3`:          `count "1e3"`,
		`"3 "`:         `count "3 "`,
		`"2147483648"`: `count "2147483648"`,
		`true`:         "got a boolean",
		`{}`:           "got an object",
		`["1"]`:        "got an array",
	} {
		var c Count
		require.ErrorContains(t, json.Unmarshal([]byte(in), &c), want, in)
	}

	// Unknown is not zero, and both survive a round trip.
	for _, c := range []Count{{}, {0, true}, {4, true}} {
		out, err := json.Marshal(c)
		require.NoError(t, err)
		var back Count
		require.NoError(t, json.Unmarshal(out, &back))
		require.Equal(t, c, back)
	}
	require.Equal(t, "unknown", Count{}.String())
	require.Equal(t, "4", Count{4, true}.String())
}

func FuzzCount(f *testing.F) {
	for _, s := range []string{`"3"`, `"0"`, `"10"`, `3`, `null`, `""`, `"-1"`, `1.5`, `1e3`, `"99999999999999999999"`, `{}`, `[]`, `true`, `"\u0033"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Count
		if err := json.Unmarshal(b, &c); err != nil {
			return
		}
		if c.N < 0 || !c.Known && c.N != 0 {
			t.Fatalf("%q decoded to %+v", b, c)
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var back Count
		if err := json.Unmarshal(out, &back); err != nil || back != c {
			t.Fatalf("round trip of %+v via %s: %+v, %v", c, out, back, err)
		}
	})
}
