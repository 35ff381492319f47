package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
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
	require.Equal(t, "redis://127.0.0.1:6379/0", c.RedisURL)
	require.Equal(t, "mediasync", c.Namespace)
	require.Equal(t, 16, c.Concurrency)
	require.Equal(t, 20, c.Twilio.MaxConcurrency)
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
		{"database url not postgres", append(append([]string{}, base...), "DATABASE_URL", "mysql://u:dbpassword@db/x"), Need{}, "DATABASE_URL: not a postgres:// URL"},
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
