// Package config reads mediasync's configuration from the environment, once,
// in each program's main. Variable names are those Twilio's and AWS's own
// tools use. An error names the variable, and names its value only when the
// value is not a secret.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mediasync/mediasync/internal/redact"
	"github.com/mediasync/mediasync/internal/retention"
	"github.com/mediasync/mediasync/internal/schedule"
)

// Config is everything the worker and the CLI need.
type Config struct {
	Twilio Twilio

	// RedisURL is the Asynq broker and the home of the shared rate limit:
	// redis://host:port/db (REDIS_URL). Defaults to redis://127.0.0.1:6379/0.
	RedisURL string
	// DatabaseURL is the Postgres catalog (DATABASE_URL). Required.
	DatabaseURL string
	// ArchiveURL is where media go: s3://bucket/prefix?region=…&endpoint=…
	// or file:///dir (ARCHIVE_URL). Required by the worker.
	ArchiveURL string

	// Namespace prefixes the Asynq queues and mediasync's Redis keys, so
	// several deployments can share one Redis (MEDIASYNC_NAMESPACE).
	// Defaults to "mediasync".
	Namespace string
	// Concurrency is how many tasks one worker runs at once
	// (WORKER_CONCURRENCY). Defaults to DefaultConcurrency of
	// TWILIO_MAX_CONCURRENCY: twice the account's Twilio requests in
	// flight, so one worker keeps all of them busy while half its tasks
	// wait on Postgres or S3.
	Concurrency int
	// SpoolDir holds downloads larger than the in-memory spool while they are
	// hashed and uploaded to a plain-http S3 endpoint (over https they
	// stream into S3), and a zip export's central directory
	// (MEDIASYNC_SPOOL_DIR). Defaults to the OS temp dir.
	SpoolDir string
	// ShutdownTimeout is how long a stopping worker lets tasks finish before
	// handing them back to the queue (WORKER_SHUTDOWN_TIMEOUT). Defaults to 25s.
	ShutdownTimeout time.Duration
	// LogFormat is json or console (LOG_FORMAT); LogLevel is debug, info,
	// warn or error (LOG_LEVEL).
	LogFormat, LogLevel string
	// ObjectLock is the S3 Object Lock mode every archived object is written
	// with, GOVERNANCE or COMPLIANCE (ARCHIVE_OBJECT_LOCK), for Retention
	// (ARCHIVE_RETENTION, e.g. 2555d); "" for none. The bucket must have
	// Object Lock enabled: the worker refuses to start otherwise.
	ObjectLock string
	Retention  time.Duration

	// Migrate says whether the worker and the CLI bring the database schema
	// up to date at start (MEDIASYNC_MIGRATE, default true). Set it to
	// false where they connect as a role without rights to change the
	// schema: they then only check it is current, and `enqueue migrate`,
	// run as the schema's owner, applies migrations.
	Migrate bool

	// HTTPAddr is where the worker serves GET /livez, /readyz and Prometheus
	// GET /metrics, e.g. :9090 (HTTP_ADDR); "" for nowhere. Defaults to "".
	HTTPAddr string
	// PprofAddr is a loopback address where the worker serves
	// net/http/pprof, e.g. 127.0.0.1:6060 (MEDIASYNC_PPROF_ADDR), for
	// profiling under load; "" for nowhere. Defaults to "".
	PprofAddr string
	// UIToken is the password of the web UI under /ui/ on HTTPAddr
	// (MEDIASYNC_UI_TOKEN, secret; HTTP basic auth, any user name); ""
	// turns the UI off.
	UIToken string

	// ClockOffset shifts the clock of policy ticks
	// (MEDIASYNC_CLOCK_OFFSET, e.g. 72h): for tests and drills of catch-up
	// after downtime only. Defaults to 0.
	ClockOffset time.Duration
}

// Twilio holds the account and credentials. Either AuthToken, or APIKey with
// APISecret, is set.
type Twilio struct {
	AccountSID string // TWILIO_ACCOUNT_SID
	AuthToken  string // TWILIO_AUTH_TOKEN (secret)
	APIKey     string // TWILIO_API_KEY (SK…)
	APISecret  string // TWILIO_API_SECRET (secret)

	APIURL string // TWILIO_API_URL, default https://api.twilio.com
	// ConversationsURL is the Conversations v1 host
	// (TWILIO_CONVERSATIONS_URL). Defaults to https://conversations.twilio.com.
	ConversationsURL string
	// MCSURL is the Media Content Service host (TWILIO_MCS_URL), where
	// Conversations media are fetched and uploaded. Defaults to
	// https://mcs.us1.twilio.com, the base the MCS page documents.
	MCSURL string

	// MaxConcurrency bounds the account's requests in flight across every
	// worker (TWILIO_MAX_CONCURRENCY). Defaults to 20.
	MaxConcurrency int
	// MaxRPS bounds the account's requests per second across every worker
	// (TWILIO_MAX_RPS); 0 means no rate bound beyond concurrency.
	MaxRPS float64

	// Retention is how long Twilio keeps the account's messages and media
	// (TWILIO_RETENTION_DAYS, 7 to 400, as the account's Messaging
	// settings say). Defaults to 400 days. Purge warnings, gauges and the
	// CLI's checks count from it.
	Retention retention.Window
}

// Need says which parts of the configuration a program cannot run without.
type Need struct {
	TwilioCredentials bool // the worker calls Twilio; the CLI only names the account
	Archive           bool
}

var (
	accountSIDRe = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	apiKeyRe     = regexp.MustCompile(`^SK[0-9a-fA-F]{32}$`)
	namespaceRe  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`)
)

// FromEnv reads the configuration from the process environment.
func FromEnv(need Need) (Config, error) { return Load(os.Getenv, need) }

// Load reads the configuration through getenv; all problems are reported
// together, one per line, so an operator fixes them in one go.
func Load(getenv func(string) string, need Need) (Config, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}

	c := Config{
		RedisURL:    get("REDIS_URL", "redis://127.0.0.1:6379/0"),
		DatabaseURL: get("DATABASE_URL", ""),
		ArchiveURL:  get("ARCHIVE_URL", ""),
		Namespace:   get("MEDIASYNC_NAMESPACE", "mediasync"),
		SpoolDir:    get("MEDIASYNC_SPOOL_DIR", os.TempDir()),
		LogFormat:   get("LOG_FORMAT", "json"),
		LogLevel:    get("LOG_LEVEL", "info"),
		Twilio: Twilio{
			AccountSID: get("TWILIO_ACCOUNT_SID", ""),
			AuthToken:  get("TWILIO_AUTH_TOKEN", ""),
			APIKey:     get("TWILIO_API_KEY", ""),
			APISecret:  get("TWILIO_API_SECRET", ""),
			APIURL:     get("TWILIO_API_URL", "https://api.twilio.com"),

			ConversationsURL: get("TWILIO_CONVERSATIONS_URL", "https://conversations.twilio.com"),
			MCSURL:           get("TWILIO_MCS_URL", "https://mcs.us1.twilio.com"),
		},
		HTTPAddr:  get("HTTP_ADDR", ""),
		PprofAddr: get("MEDIASYNC_PPROF_ADDR", ""),
		UIToken:   get("MEDIASYNC_UI_TOKEN", ""),
	}

	var err error
	if c.Twilio.MaxConcurrency, err = positiveInt(get("TWILIO_MAX_CONCURRENCY", "20")); err != nil {
		bad("TWILIO_MAX_CONCURRENCY: %v", err)
	}
	if c.Concurrency, err = positiveInt(get("WORKER_CONCURRENCY", strconv.Itoa(DefaultConcurrency(c.Twilio.MaxConcurrency)))); err != nil {
		bad("WORKER_CONCURRENCY: %v", err)
	}
	if v := get("TWILIO_MAX_RPS", "0"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			bad("TWILIO_MAX_RPS: %q is not a number ≥ 0", v)
		}
		c.Twilio.MaxRPS = f
	}
	if c.Twilio.Retention, err = retentionDays(get("TWILIO_RETENTION_DAYS", strconv.Itoa(retention.DefaultDays))); err != nil {
		bad("TWILIO_RETENTION_DAYS: %v", err)
	}
	c.ObjectLock = strings.ToUpper(get("ARCHIVE_OBJECT_LOCK", ""))
	switch c.ObjectLock {
	case "":
		if get("ARCHIVE_RETENTION", "") != "" {
			bad("ARCHIVE_RETENTION is set but ARCHIVE_OBJECT_LOCK is not (GOVERNANCE or COMPLIANCE)")
		}
	case "GOVERNANCE", "COMPLIANCE":
		c.Retention, err = schedule.ParseDuration(get("ARCHIVE_RETENTION", ""))
		switch {
		case err != nil:
			bad("ARCHIVE_RETENTION: %v; want a duration like 2555d with ARCHIVE_OBJECT_LOCK=%s", err, c.ObjectLock)
		case c.Retention <= 0:
			bad("ARCHIVE_RETENTION: %q must be a duration like 2555d with ARCHIVE_OBJECT_LOCK=%s", get("ARCHIVE_RETENTION", ""), c.ObjectLock)
		}
	default:
		bad("ARCHIVE_OBJECT_LOCK: %q (want GOVERNANCE or COMPLIANCE)", c.ObjectLock)
	}
	if c.Migrate, err = strconv.ParseBool(get("MEDIASYNC_MIGRATE", "true")); err != nil {
		bad("MEDIASYNC_MIGRATE: %q (want true or false)", get("MEDIASYNC_MIGRATE", ""))
	}
	if c.ClockOffset, err = time.ParseDuration(get("MEDIASYNC_CLOCK_OFFSET", "0s")); err != nil {
		bad("MEDIASYNC_CLOCK_OFFSET: %q is not a duration like 72h", get("MEDIASYNC_CLOCK_OFFSET", ""))
	}
	if c.ShutdownTimeout, err = time.ParseDuration(get("WORKER_SHUTDOWN_TIMEOUT", "25s")); err != nil || c.ShutdownTimeout < 0 {
		bad("WORKER_SHUTDOWN_TIMEOUT: %q is not a duration like 25s", get("WORKER_SHUTDOWN_TIMEOUT", ""))
	}

	switch {
	case c.Twilio.AccountSID == "":
		bad("TWILIO_ACCOUNT_SID is not set")
	case !accountSIDRe.MatchString(c.Twilio.AccountSID):
		// Described, not echoed: a token pasted in the wrong variable
		// would otherwise land in the error.
		bad("TWILIO_ACCOUNT_SID must be AC followed by 32 hex digits (%s)", redact.SID(c.Twilio.AccountSID))
	}
	if need.TwilioCredentials {
		switch {
		case c.Twilio.AuthToken != "" && c.Twilio.APIKey != "":
			bad("set either TWILIO_AUTH_TOKEN or TWILIO_API_KEY with TWILIO_API_SECRET, not both")
		case c.Twilio.APIKey != "":
			if !apiKeyRe.MatchString(c.Twilio.APIKey) {
				bad("TWILIO_API_KEY must be SK followed by 32 hex digits (%s)", redact.SID(c.Twilio.APIKey))
			}
			if c.Twilio.APISecret == "" {
				bad("TWILIO_API_SECRET is not set (needed with TWILIO_API_KEY)")
			}
		case c.Twilio.AuthToken == "":
			bad("no Twilio credentials: set TWILIO_AUTH_TOKEN, or TWILIO_API_KEY and TWILIO_API_SECRET")
		}
	}
	for _, u := range []struct{ name, v string }{
		{"TWILIO_API_URL", c.Twilio.APIURL},
		{"TWILIO_CONVERSATIONS_URL", c.Twilio.ConversationsURL},
		{"TWILIO_MCS_URL", c.Twilio.MCSURL},
	} {
		if err := httpURL(u.v); err != nil {
			bad("%s: %v", u.name, err)
		}
	}
	if c.PprofAddr != "" {
		if err := CheckPprofAddr(c.PprofAddr); err != nil {
			bad("MEDIASYNC_PPROF_ADDR: %v", err)
		}
	}

	if c.DatabaseURL == "" {
		bad("DATABASE_URL is not set (a Postgres URL such as postgres://user@host:5432/mediasync)")
	} else if err := urlWithScheme(c.DatabaseURL, "postgres", "postgresql"); err != nil {
		bad("DATABASE_URL: %v", err)
	}
	if err := urlWithScheme(c.RedisURL, "redis", "rediss"); err != nil {
		bad("REDIS_URL: %v", err)
	}
	if need.Archive && c.ArchiveURL == "" {
		bad("ARCHIVE_URL is not set (s3://bucket/prefix?region=… or file:///dir)")
	}
	if !namespaceRe.MatchString(c.Namespace) {
		bad("MEDIASYNC_NAMESPACE: %q must be 1-40 letters, digits, - or _", c.Namespace)
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		bad("LOG_FORMAT: %q (want json or console)", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL: %q (want debug, info, warn or error)", c.LogLevel)
	}
	return c, errors.Join(errs...)
}

// CheckPprofAddr checks that addr is a loopback host:port, for serving
// net/http/pprof: profiles reveal no secrets but cost CPU to take, so they
// are not served beyond the machine.
func CheckPprofAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q must be a loopback address, e.g. 127.0.0.1:6060", addr)
	}
	return nil
}

func positiveInt(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q is not a whole number ≥ 1", s)
	}
	return n, nil
}

// retentionDays reads a retention window in whole days, within the range
// Twilio's settings allow.
func retentionDays(s string) (retention.Window, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < retention.MinDays || n > retention.MaxDays {
		return 0, fmt.Errorf("%q is not a whole number of days from %d to %d (the account's retention window in Twilio's Messaging settings)",
			s, retention.MinDays, retention.MaxDays)
	}
	return retention.Days(n), nil
}

func httpURL(s string) error {
	u, err := redact.ParseURL(s)
	if err != nil {
		return err
	}
	if u.User != nil {
		return errors.New("must not carry credentials (use TWILIO_AUTH_TOKEN or TWILIO_API_KEY)")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("not an http(s) URL (scheme %q, host %q)", u.Scheme, u.Host)
	}
	return nil
}

// urlWithScheme checks that s is a URL with one of schemes. Such URLs may
// carry a password: errors show them redacted.
func urlWithScheme(s string, schemes ...string) error {
	u, err := redact.ParseURL(s)
	if err != nil {
		return err
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			return nil
		}
	}
	// Only the scheme is named: a key=value DSN (password=…) parses as a
	// URL without one.
	return fmt.Errorf("not a %s:// URL (scheme %q)", strings.Join(schemes, ":// or "), u.Scheme)
}

// DefaultConcurrency is WORKER_CONCURRENCY's default for an account that
// allows twilioMaxConcurrency requests in flight: twice as many tasks.
// Each task spends part of its time in Postgres and S3, not at Twilio;
// with only as many tasks as slots, those slots idle meanwhile (issue
// #14: 16 tasks kept about half of 16 slots busy). The fleet-wide limiter
// still bounds the requests, whatever the tasks.
func DefaultConcurrency(twilioMaxConcurrency int) int {
	return max(2*twilioMaxConcurrency, 4)
}
