package config

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/retention"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

var base = []string{
	"TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef",
	"TWILIO_AUTH_TOKEN", "s3cr3tT0ken",
	"DATABASE_URL", "postgres://u:dbpassword@db/mediasync",
	"ARCHIVE_URL", "file:///tmp/archive",
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(base...), Need{TwilioCredentials: true, Archive: true})
	require.NoError(t, err)
	require.Equal(t, "https://api.twilio.com", c.Twilio.APIURL)
	require.Equal(t, "https://conversations.twilio.com", c.Twilio.ConversationsURL)
	require.Equal(t, "https://mcs.us1.twilio.com", c.Twilio.MCSURL)
	require.Equal(t, "redis://127.0.0.1:6379/0", c.RedisURL)
	require.Equal(t, "mediasync", c.Namespace)
	require.Equal(t, 40, c.Concurrency, "twice TWILIO_MAX_CONCURRENCY")
	require.Equal(t, 20, c.Twilio.MaxConcurrency)
	require.Empty(t, c.HTTPAddr)
	require.Empty(t, c.UIToken, "no token: the web UI is off")
	require.Equal(t, retention.Days(400), c.Twilio.Retention, "Twilio's longest window, its default")
	for _, days := range []int{7, 30, 400} {
		c, err := Load(env(append(append([]string{}, base...), "TWILIO_RETENTION_DAYS", strconv.Itoa(days))...), Need{})
		require.NoError(t, err)
		require.Equal(t, days, c.Twilio.Retention.Days())
	}

	// Only the account's limit set: the worker's tasks follow it.
	c, err = Load(env(append(append([]string{}, base...), "TWILIO_MAX_CONCURRENCY", "16")...), Need{})
	require.NoError(t, err)
	require.Equal(t, 32, c.Concurrency)
	c, err = Load(env(append(append([]string{}, base...), "TWILIO_MAX_CONCURRENCY", "16", "WORKER_CONCURRENCY", "8")...), Need{})
	require.NoError(t, err)
	require.Equal(t, 8, c.Concurrency, "WORKER_CONCURRENCY, set, wins")
	require.Empty(t, c.PprofAddr)

	c, err = Load(env(append(append([]string{}, base...), "HTTP_ADDR", ":9090", "MEDIASYNC_PPROF_ADDR", "127.0.0.1:6060")...), Need{})
	require.NoError(t, err)
	require.Equal(t, ":9090", c.HTTPAddr)
	require.Equal(t, "127.0.0.1:6060", c.PprofAddr)

	c, err = Load(env(append(append([]string{}, base...), "MEDIASYNC_UI_TOKEN", " ui-t0ken ")...), Need{})
	require.NoError(t, err)
	require.Equal(t, "ui-t0ken", c.UIToken)

	c, err = Load(env(append(append([]string{}, base...), "TWILIO_CONVERSATIONS_URL", "http://twilio-emulator:4010",
		"TWILIO_MCS_URL", "http://twilio-emulator:4011")...), Need{})
	require.NoError(t, err)
	require.Equal(t, "http://twilio-emulator:4010", c.Twilio.ConversationsURL)
	require.Equal(t, "http://twilio-emulator:4011", c.Twilio.MCSURL)
}

func TestLoadErrorsNameTheVariableNeverTheSecret(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc string
		kv   []string
		need Need
		want string
	}{
		{"no credentials", []string{"TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef", "DATABASE_URL", "postgres://db/x"}, Need{TwilioCredentials: true}, "no Twilio credentials"},
		{"both credentials", append(append([]string{}, base...), "TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef", "TWILIO_API_SECRET", "k3ysecret"), Need{TwilioCredentials: true}, "not both"},
		{"api key without secret", []string{"TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef", "TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef", "DATABASE_URL", "postgres://db/x"}, Need{TwilioCredentials: true}, "TWILIO_API_SECRET is not set"},
		{"bad concurrency", append(append([]string{}, base...), "WORKER_CONCURRENCY", "many"), Need{}, `WORKER_CONCURRENCY: "many"`},
		{"api url with credentials", append(append([]string{}, base...), "TWILIO_API_URL", "https://AC1:s3cr3tT0ken@api.twilio.com"), Need{}, "TWILIO_API_URL: must not carry credentials"},
		{"database url not postgres", append(append([]string{}, base...), "DATABASE_URL", "mysql://u:dbpassword@db/x"), Need{}, `DATABASE_URL: not a postgres:// or postgresql:// URL (scheme "mysql")`},
		{"database dsn", append(append([]string{}, base...), "DATABASE_URL", "host=db password=dbpassword"), Need{}, `DATABASE_URL: not a postgres:// or postgresql:// URL (scheme "")`},
		// A URL that does not parse is shown with its user information cut,
		// and the reason is that of the redacted text.
		{"database url unparsable", append(append([]string{}, base...), "DATABASE_URL", "postgres://u:dbpassword@db:port/x"), Need{}, `DATABASE_URL: cannot parse "postgres://xxxxx@db:port/x": invalid port ":port" after host`},
		{"database url password with a slash", append(append([]string{}, base...), "DATABASE_URL", "postgres://u:dbpassword/1@db/x"), Need{}, `DATABASE_URL: cannot parse "postgres://xxxxx@db/x"`},
		{"database url password in the query", append(append([]string{}, base...), "DATABASE_URL", "postgres://db:port/x?password=dbpassword"), Need{}, `DATABASE_URL: cannot parse "postgres://db:port/x?xxxxx": invalid port`},
		{"redis url unparsable", append(append([]string{}, base...), "REDIS_URL", "redis://:dbpassword@[::1/0"), Need{}, `REDIS_URL: cannot parse "redis://xxxxx@[::1/0": missing ']' in host`},
		{"redis url not redis", append(append([]string{}, base...), "REDIS_URL", "http://:dbpassword@host/0"), Need{}, `REDIS_URL: not a redis:// or rediss:// URL (scheme "http")`},
		{"api url unparsable with credentials", append(append([]string{}, base...), "TWILIO_API_URL", "https://AC1:s3cr3tT0ken@api.twilio.com:port"), Need{}, `TWILIO_API_URL: cannot parse "https://xxxxx@api.twilio.com:port"`},
		{"api url not http", append(append([]string{}, base...), "TWILIO_API_URL", "ftp://mcs.example?token=s3cr3tT0ken"), Need{}, `TWILIO_API_URL: not an http(s) URL (scheme "ftp", host "mcs.example")`},
		{"conversations url with credentials", append(append([]string{}, base...), "TWILIO_CONVERSATIONS_URL", "https://AC1:s3cr3tT0ken@conversations.twilio.com"), Need{}, "TWILIO_CONVERSATIONS_URL: must not carry credentials"},
		{"mcs url not http", append(append([]string{}, base...), "TWILIO_MCS_URL", "ftp://mcs.example?token=s3cr3tT0ken"), Need{}, `TWILIO_MCS_URL: not an http(s) URL (scheme "ftp", host "mcs.example")`},
		{"pprof not loopback", append(append([]string{}, base...), "MEDIASYNC_PPROF_ADDR", ":6060"), Need{}, `MEDIASYNC_PPROF_ADDR: ":6060" must be a loopback address`},
		{"pprof not host:port", append(append([]string{}, base...), "MEDIASYNC_PPROF_ADDR", "127.0.0.1"), Need{}, `MEDIASYNC_PPROF_ADDR: "127.0.0.1": address 127.0.0.1: missing port in address`},
		// A secret pasted in the wrong variable is described, not echoed.
		{"token as account sid", append(append([]string{}, base...), "TWILIO_ACCOUNT_SID", "s3cr3tT0ken"), Need{}, `TWILIO_ACCOUNT_SID must be AC followed by 32 hex digits (got 11 characters)`},
		{"secret as api key", []string{"TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef", "TWILIO_API_KEY", "k3ysecret", "TWILIO_API_SECRET", "k3ysecret", "DATABASE_URL", "postgres://db/x"}, Need{TwilioCredentials: true}, `TWILIO_API_KEY must be SK followed by 32 hex digits (got 9 characters)`},
		// 213504 days overflows time.Duration to 25m26s: refused, named.
		{"shutdown timeout overflows", append(append([]string{}, base...), "WORKER_SHUTDOWN_TIMEOUT", "2562048h"), Need{}, `WORKER_SHUTDOWN_TIMEOUT: "2562048h"`},
		{"shutdown timeout in days", append(append([]string{}, base...), "WORKER_SHUTDOWN_TIMEOUT", "213504d"), Need{}, `WORKER_SHUTDOWN_TIMEOUT: "213504d"`},
		{"clock offset overflows", append(append([]string{}, base...), "MEDIASYNC_CLOCK_OFFSET", "-2562048h"), Need{}, `MEDIASYNC_CLOCK_OFFSET: "-2562048h"`},
		{"retention overflows", append(append([]string{}, base...), "ARCHIVE_OBJECT_LOCK", "GOVERNANCE", "ARCHIVE_RETENTION", "213504d"), Need{}, `ARCHIVE_RETENTION: duration "213504d" is out of range`},
		{"twilio retention too short", append(append([]string{}, base...), "TWILIO_RETENTION_DAYS", "6"), Need{}, `TWILIO_RETENTION_DAYS: "6" is not a whole number of days from 7 to 400`},
		{"twilio retention too long", append(append([]string{}, base...), "TWILIO_RETENTION_DAYS", "401"), Need{}, `TWILIO_RETENTION_DAYS: "401" is not a whole number of days from 7 to 400`},
		{"twilio retention not days", append(append([]string{}, base...), "TWILIO_RETENTION_DAYS", "13mo"), Need{}, `TWILIO_RETENTION_DAYS: "13mo"`},
		{"archive missing", base[:6], Need{Archive: true}, "ARCHIVE_URL is not set"},
		{"bad namespace", append(append([]string{}, base...), "MEDIASYNC_NAMESPACE", "a b"), Need{}, "MEDIASYNC_NAMESPACE"},
		{"bad lock mode", append(append([]string{}, base...), "ARCHIVE_OBJECT_LOCK", "FOREVER", "ARCHIVE_RETENTION", "1d"), Need{}, `ARCHIVE_OBJECT_LOCK: "FOREVER"`},
		{"lock without retention", append(append([]string{}, base...), "ARCHIVE_OBJECT_LOCK", "COMPLIANCE"), Need{}, "ARCHIVE_RETENTION"},
		{"retention without lock", append(append([]string{}, base...), "ARCHIVE_RETENTION", "7y"), Need{}, "ARCHIVE_RETENTION is set but ARCHIVE_OBJECT_LOCK is not"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := Load(env(tc.kv...), tc.need)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			for _, secret := range []string{"s3cr3tT0ken", "dbpassword", "k3ysecret"} {
				require.False(t, strings.Contains(err.Error(), secret), "error leaks a secret: %v", err)
			}
		})
	}
}

func TestLoadMigrate(t *testing.T) {
	t.Parallel()
	c, err := Load(env(base...), Need{})
	require.NoError(t, err)
	require.True(t, c.Migrate, "migrating at start is the default")
	c, err = Load(env(append(append([]string{}, base...), "MEDIASYNC_MIGRATE", "false")...), Need{})
	require.NoError(t, err)
	require.False(t, c.Migrate)
	_, err = Load(env(append(append([]string{}, base...), "MEDIASYNC_MIGRATE", "nope")...), Need{})
	require.ErrorContains(t, err, `MEDIASYNC_MIGRATE: "nope" (want true or false)`)
}
