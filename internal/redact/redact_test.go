package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://db:5432/x", "postgres://db:5432/x"},
		{"postgres://u:pw@db:5432/x", "postgres://xxxxx@db:5432/x"},
		{"postgres://u:p/w?#@x@db:99999/x", "postgres://xxxxx@db:99999/x"},
		{"postgres://db/x?password=pw&sslmode=disable", "postgres://db/x?xxxxx"},
		{"redis://:pw@host:port/0", "redis://xxxxx@host:port/0"},
		{"u:pw@host", "xxxxx@host"},
		{"https://api.twilio.com/a#frag", "https://api.twilio.com/a?xxxxx"},
		{"", ""},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(URL(tc.in), "pw") {
			t.Errorf("URL(%q) = %q keeps the password", tc.in, URL(tc.in))
		}
	}
}

func TestParseURLNeverRepeatsASecret(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:s3cr/et@db/x", `cannot parse "postgres://xxxxx@db/x": invalid user information or query`},
		{"postgres://u:s3cr/et@db:port/x", `cannot parse "postgres://xxxxx@db:port/x": invalid port ":port" after host`},
		{"postgres://u:s3cret@db:port/x", `invalid port ":port" after host`},
		{"redis://:s3cret@[::1/0", `missing ']' in host`},
		{"https://u:s3c ret@host", `cannot parse "https://xxxxx@host"`},
	} {
		_, err := ParseURL(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3c") {
			t.Errorf("ParseURL(%q) = %v, want an error with %q and no secret", tc.in, err, tc.want)
		}
	}
	if u, err := ParseURL("postgres://u:pw@db/x"); err != nil || u.Host != "db" {
		t.Errorf("ParseURL of a good URL = %v, %v", u, err)
	}
}

// Whatever follows them, credentials before the host never appear in the
// error, and a password in the query never does either.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"db:5432/x", "db:port/x", "[::1/0", "h/%zz", "a@b/c", "x?y#z", ""} {
		f.Add(s)
	}
	const canary = "Zq9SECRETcanary"
	f.Fuzz(func(t *testing.T, raw string) {
		for _, in := range []string{"postgres://u:" + canary + "@" + raw, "redis://" + canary + "/x@" + raw, raw + "?password=" + canary} {
			if _, err := ParseURL(in); err != nil && strings.Contains(err.Error(), canary) {
				t.Fatalf("ParseURL(%q) repeats the secret: %v", in, err)
			}
		}
	})
}
