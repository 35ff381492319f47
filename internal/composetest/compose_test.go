package composetest

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/config"
)

const composeFile = "../../docker-compose.yml"

// The demo credentials docker-compose.yml documents. They open only the
// demo's own containers. Any other secret-looking value in the file fails
// TestNoUndocumentedSecrets.
const (
	demoTwilioAccountSID = "AC0123456789abcdef0123456789abcdef"
	demoTwilioAuthToken  = "mediasyncdemoauthtoken0000000000"
	demoAWSAccessKeyID   = "mediasync-demo"
	demoAWSSecretKey     = "mediasync-demo-secret"
	demoPostgresPassword = "mediasync"
)

// project is docker-compose.yml with the cli profile on, so enqueue is
// among the services. It is loaded once and only read.
var project = sync.OnceValues(func() (*types.Project, error) {
	return load(context.Background(), "cli")
})

// load reads docker-compose.yml as `docker compose --profile …` would, but
// with no OS environment and no .env file, so the file alone decides.
func load(ctx context.Context, profiles ...string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{composeFile}, cli.WithProfiles(profiles))
	if err != nil {
		return nil, err
	}
	return cli.ProjectFromOptions(ctx, opts)
}

func setup(t *testing.T) *types.Project {
	t.Helper()
	p, err := project()
	require.NoError(t, err, "docker-compose.yml does not load")
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	require.Truef(t, ok, "docker-compose.yml has no service %q (with profile cli on)", name)
	return s
}

// environment is a service's environment. A variable without a value would
// be taken from the host running compose: that fails the test.
func environment(t *testing.T, s types.ServiceConfig) map[string]string {
	t.Helper()
	env := make(map[string]string, len(s.Environment))
	for k, v := range s.Environment {
		require.NotNilf(t, v, "service %s: %s has no value, so it would come from the host's environment", s.Name, k)
		env[k] = *v
	}
	return env
}

// flagValue finds a flag's value in a command line, in any of the forms
// -name value, -name=value, --name value and --name=value.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		n, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if n != name {
			continue
		}
		if hasValue {
			return v, true
		}
		if i+1 < len(args) {
			return args[i+1], true
		}
		return "", true
	}
	return "", false
}

func mustFlag(t *testing.T, s types.ServiceConfig, name string) string {
	t.Helper()
	v, ok := flagValue(s.Command, name)
	require.Truef(t, ok, "service %s: command %q has no %s flag", s.Name, []string(s.Command), name)
	return v
}

func TestServices(t *testing.T) {
	t.Parallel()
	p := setup(t)

	tests := []struct {
		service    string
		image      string // the image when pulled, not built
		target     string // the Dockerfile target when built
		entrypoint string // the program run, when the image's is not
	}{
		{service: "twilio-emulator", target: "emulator", entrypoint: "/usr/local/bin/twilio-emulator"},
		{service: "worker", target: "app", entrypoint: "/usr/local/bin/worker"},
		{service: "enqueue", target: "app", entrypoint: "/usr/local/bin/enqueue"},
		{service: "postgres", image: "postgres:15"},
		{service: "redis", image: "redis:7"},
		{service: "s3", target: "s3"},
		{service: "s3-init", target: "s3", entrypoint: "/usr/local/bin/s3-init"},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			t.Parallel()
			s := service(t, p, tt.service)
			if tt.image != "" {
				assert.Equalf(t, tt.image, s.Image, "service %s: image", tt.service)
				assert.Nilf(t, s.Build, "service %s: built, want the %s image", tt.service, tt.image)
			}
			if tt.target != "" {
				require.NotNilf(t, s.Build, "service %s: not built from the Dockerfile", tt.service)
				assert.Equalf(t, tt.target, s.Build.Target, "service %s: Dockerfile target", tt.service)
			}
			if tt.entrypoint != "" {
				assert.Equalf(t, []string{tt.entrypoint}, []string(s.Entrypoint), "service %s: entrypoint", tt.service)
			}
		})
	}
}

// TestEnqueueOnlyWithCLIProfile: `docker compose up` leaves the CLI out, and
// `docker compose run --rm enqueue <args>` passes its arguments to it.
func TestEnqueueOnlyWithCLIProfile(t *testing.T) {
	t.Parallel()
	p := setup(t)
	s := service(t, p, "enqueue")
	assert.Equal(t, []string{"cli"}, s.Profiles, "enqueue: profiles")

	plain, err := load(t.Context())
	require.NoError(t, err, "docker-compose.yml does not load without profiles")
	assert.NotContains(t, plain.ServiceNames(), "enqueue", "`docker compose up` would start enqueue: it must be under profile cli only")
	for _, name := range []string{"twilio-emulator", "worker", "postgres", "redis", "s3", "s3-init"} {
		assert.Containsf(t, plain.ServiceNames(), name, "`docker compose up` would not start %s: it must not be under a profile", name)
	}
}

func TestPublishedPorts(t *testing.T) {
	t.Parallel()
	p := setup(t)

	// Demo ports on loopback only. Postgres and Redis stay unpublished, so
	// they never clash with servers on the host.
	want := map[string][]string{
		"twilio-emulator": {"127.0.0.1:4010->4010/tcp", "127.0.0.1:4011->4011/tcp"},
		"s3":              {"127.0.0.1:7070->7070/tcp"},
		"worker":          {"127.0.0.1:9090->9090/tcp"},
	}
	for name := range want {
		service(t, p, name)
	}
	for _, name := range p.ServiceNames() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, port := range p.Services[name].Ports {
				got = append(got, fmt.Sprintf("%s:%s->%d/%s", port.HostIP, port.Published, port.Target, port.Protocol))
			}
			assert.ElementsMatchf(t, want[name], got, "service %s: published ports", name)
		})
	}
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	p := setup(t)

	equals := func(want string) func(string) error {
		return func(v string) error {
			if v != want {
				return fmt.Errorf("is %q, want %q", v, want)
			}
			return nil
		}
	}
	emulator := func(v string) error {
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "http" || u.Host != "twilio-emulator:4010" {
			return fmt.Errorf("is %q, want the emulator's API, http://twilio-emulator:4010", v)
		}
		return nil
	}
	databaseURL := func(v string) error {
		u, err := url.Parse(v)
		if err != nil {
			return fmt.Errorf("%q does not parse: %v", v, err)
		}
		pw, _ := u.User.Password()
		if u.Scheme != "postgres" || u.Host != "postgres:5432" || u.User.Username() != "mediasync" ||
			pw != demoPostgresPassword || u.Path != "/mediasync" || u.Query().Get("sslmode") != "disable" {
			return fmt.Errorf("is %q, want postgres://mediasync:mediasync@postgres:5432/mediasync?sslmode=disable", v)
		}
		return nil
	}
	archiveURL := func(v string) error {
		u, err := url.Parse(v)
		if err != nil {
			return fmt.Errorf("%q does not parse: %v", v, err)
		}
		q := u.Query()
		if u.Scheme != "s3" || u.Host != "mediasync-archive" || q.Get("endpoint") != "http://s3:7070" ||
			q.Get("use_path_style") != "true" || q.Get("region") != "us-east-1" || q.Get("allow_http") != "true" {
			// allow_http: the gateway is plain http on the compose network.
			return fmt.Errorf("is %q, want s3://mediasync-archive/…?region=us-east-1&endpoint=http://s3:7070&allow_http=true&use_path_style=true", v)
		}
		return nil
	}

	common := map[string]func(string) error{
		"TWILIO_ACCOUNT_SID":       equals(demoTwilioAccountSID),
		"TWILIO_AUTH_TOKEN":        equals(demoTwilioAuthToken),
		"TWILIO_API_URL":           emulator,
		"TWILIO_CONVERSATIONS_URL": emulator,
		"TWILIO_MCS_URL":           emulator,
		"TWILIO_MAX_CONCURRENCY":   equals("20"),
		"REDIS_URL":                equals("redis://redis:6379/0"),
		"DATABASE_URL":             databaseURL,
		"AWS_ACCESS_KEY_ID":        equals(demoAWSAccessKeyID),
		"AWS_SECRET_ACCESS_KEY":    equals(demoAWSSecretKey),
		"WORKER_CONCURRENCY":       equals("16"),
		"LOG_FORMAT":               equals("json"),
	}
	withCommon := func(m map[string]func(string) error) map[string]func(string) error {
		maps.Copy(m, common)
		return m
	}
	tests := []struct {
		service string
		want    map[string]func(string) error
		absent  []string
		need    config.Need
	}{
		{
			service: "worker",
			want: withCommon(map[string]func(string) error{
				"ARCHIVE_URL": archiveURL,
				"HTTP_ADDR":   equals(":9090"),
			}),
			need: config.Need{TwilioCredentials: true, Archive: true},
		},
		{service: "enqueue", want: common, absent: []string{"ARCHIVE_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			t.Parallel()
			env := environment(t, service(t, p, tt.service))
			for _, name := range slices.Sorted(maps.Keys(tt.want)) {
				v, ok := env[name]
				if !assert.Truef(t, ok, "service %s: environment has no %s", tt.service, name) {
					continue
				}
				assert.NoErrorf(t, tt.want[name](v), "service %s: %s", tt.service, name)
			}
			for _, name := range tt.absent {
				assert.NotContainsf(t, env, name, "service %s: environment has %s, which it does not use", tt.service, name)
			}
			_, err := config.Load(func(k string) string { return env[k] }, tt.need)
			assert.NoErrorf(t, err, "service %s: internal/config rejects its environment", tt.service)
		})
	}
}

func TestHealthchecks(t *testing.T) {
	t.Parallel()
	p := setup(t)

	tests := []struct {
		service string
		probe   string // what the check command must contain
	}{
		{"postgres", "pg_isready -U mediasync -d mediasync"},
		{"redis", "redis-cli ping"},
		{"s3", "http://127.0.0.1:7070/healthz"},
		{"twilio-emulator", "http://127.0.0.1:4010/_emulator/stats"},
		{"worker", "http://127.0.0.1:9090/readyz"}, // healthy = ready, not only alive
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			t.Parallel()
			s := service(t, p, tt.service)
			hc := s.HealthCheck
			require.NotNilf(t, hc, "service %s: no healthcheck", tt.service)
			require.Falsef(t, hc.Disable, "service %s: healthcheck disabled", tt.service)
			require.NotEmptyf(t, hc.Test, "service %s: healthcheck has no test", tt.service)
			assert.Containsf(t, []string{"CMD", "CMD-SHELL"}, hc.Test[0], "service %s: healthcheck test", tt.service)
			assert.Containsf(t, strings.Join(hc.Test[1:], " "), tt.probe, "service %s: healthcheck test", tt.service)
		})
	}

	// The app image's HEALTHCHECK probes the worker's /livez: a service
	// that runs another of its programs turns it off, or it would report
	// unhealthy for ever.
	t.Run("enqueue has no worker healthcheck", func(t *testing.T) {
		t.Parallel()
		hc := service(t, p, "enqueue").HealthCheck
		assert.True(t, hc != nil && hc.Disable, "service enqueue: healthcheck not disabled, so it inherits the app image's probe of /livez")
	})

	// What the worker serves is what its check probes.
	t.Run("worker serves HTTP_ADDR", func(t *testing.T) {
		t.Parallel()
		env := environment(t, service(t, p, "worker"))
		_, port, err := net.SplitHostPort(env["HTTP_ADDR"])
		require.NoError(t, err, "worker: HTTP_ADDR")
		assert.Equal(t, "9090", port, "worker: HTTP_ADDR port, which its healthcheck and published port use")
	})

	// A service waited on as healthy must have a check, or it never is.
	for _, name := range p.ServiceNames() {
		for dep, d := range p.Services[name].DependsOn {
			if d.Condition != types.ServiceConditionHealthy {
				continue
			}
			t.Run(name+" waits on "+dep, func(t *testing.T) {
				t.Parallel()
				target := service(t, p, dep)
				assert.Truef(t, target.HealthCheck != nil && !target.HealthCheck.Disable,
					"service %s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			})
		}
	}
}

func TestDependsOn(t *testing.T) {
	t.Parallel()
	p := setup(t)

	const (
		healthy   = types.ServiceConditionHealthy
		completed = types.ServiceConditionCompletedSuccessfully
	)
	tests := []struct {
		service string
		want    map[string]string // dependency → condition
	}{
		{"worker", map[string]string{"postgres": healthy, "redis": healthy, "s3": healthy, "s3-init": completed}},
		{"enqueue", map[string]string{"postgres": healthy, "redis": healthy}},
		{"s3-init", map[string]string{"s3": healthy}},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			t.Parallel()
			s := service(t, p, tt.service)
			for _, dep := range slices.Sorted(maps.Keys(tt.want)) {
				d, ok := s.DependsOn[dep]
				if !assert.Truef(t, ok, "service %s: does not depend on %s", tt.service, dep) {
					continue
				}
				assert.Equalf(t, tt.want[dep], d.Condition, "service %s: depends_on %s condition", tt.service, dep)
			}
		})
	}
}

func TestRedisNeverEvicts(t *testing.T) {
	t.Parallel()
	s := service(t, setup(t), "redis")
	require.NotEmpty(t, s.Command, "redis: no command, so Redis runs with its default (evicting) policy")
	assert.Equal(t, "redis-server", s.Command[0], "redis: command")
	// Asynq keeps tasks and leases in Redis: an evicted key is a lost task.
	policy, _ := flagValue(s.Command, "maxmemory-policy")
	assert.Equal(t, "noeviction", policy, "redis: --maxmemory-policy (ecosystem notes §1.6)")
	aof, _ := flagValue(s.Command, "appendonly")
	assert.Equal(t, "yes", aof, "redis: --appendonly")
}

// TestWorkerOutlivesShutdownTimeout: Docker must not SIGKILL the worker
// while it is still handing unfinished tasks back to the queue.
func TestWorkerOutlivesShutdownTimeout(t *testing.T) {
	t.Parallel()
	s := service(t, setup(t), "worker")
	env := environment(t, s)
	cfg, err := config.Load(func(k string) string { return env[k] }, config.Need{TwilioCredentials: true, Archive: true})
	require.NoError(t, err, "worker: internal/config rejects its environment")
	require.NotNil(t, s.StopGracePeriod, "worker: no stop_grace_period, so Docker kills it after 10s")
	grace := time.Duration(*s.StopGracePeriod)
	assert.Greaterf(t, grace, cfg.ShutdownTimeout, "worker: stop_grace_period %s must exceed WORKER_SHUTDOWN_TIMEOUT %s", grace, cfg.ShutdownTimeout)
}

// TestDemoCredentialsAgree: the servers are started with the credentials
// the clients sign with, and the S3 names agree.
func TestDemoCredentialsAgree(t *testing.T) {
	t.Parallel()
	p := setup(t)
	emu, s3 := service(t, p, "twilio-emulator"), service(t, p, "s3")
	worker := environment(t, service(t, p, "worker"))
	enqueue := environment(t, service(t, p, "enqueue"))
	s3init := environment(t, service(t, p, "s3-init"))
	archive, err := url.Parse(worker["ARCHIVE_URL"])
	require.NoError(t, err, "worker: ARCHIVE_URL")

	tests := []struct {
		what       string
		want, got  string
		wantSource string
	}{
		{"worker TWILIO_ACCOUNT_SID", mustFlag(t, emu, "account-sid"), worker["TWILIO_ACCOUNT_SID"], "twilio-emulator -account-sid"},
		{"worker TWILIO_AUTH_TOKEN", mustFlag(t, emu, "auth-token"), worker["TWILIO_AUTH_TOKEN"], "twilio-emulator -auth-token"},
		{"enqueue TWILIO_ACCOUNT_SID", mustFlag(t, emu, "account-sid"), enqueue["TWILIO_ACCOUNT_SID"], "twilio-emulator -account-sid"},
		{"enqueue TWILIO_AUTH_TOKEN", mustFlag(t, emu, "auth-token"), enqueue["TWILIO_AUTH_TOKEN"], "twilio-emulator -auth-token"},
		{"worker AWS_ACCESS_KEY_ID", mustFlag(t, s3, "access"), worker["AWS_ACCESS_KEY_ID"], "s3 --access"},
		{"worker AWS_SECRET_ACCESS_KEY", mustFlag(t, s3, "secret"), worker["AWS_SECRET_ACCESS_KEY"], "s3 --secret"},
		{"enqueue AWS_ACCESS_KEY_ID", mustFlag(t, s3, "access"), enqueue["AWS_ACCESS_KEY_ID"], "s3 --access"},
		{"enqueue AWS_SECRET_ACCESS_KEY", mustFlag(t, s3, "secret"), enqueue["AWS_SECRET_ACCESS_KEY"], "s3 --secret"},
		{"s3-init AWS_ACCESS_KEY_ID", mustFlag(t, s3, "access"), s3init["AWS_ACCESS_KEY_ID"], "s3 --access"},
		{"s3-init AWS_SECRET_ACCESS_KEY", mustFlag(t, s3, "secret"), s3init["AWS_SECRET_ACCESS_KEY"], "s3 --secret"},
		{"s3-init S3_BUCKET", archive.Host, s3init["S3_BUCKET"], "the worker's ARCHIVE_URL bucket"},
		{"s3-init S3_ENDPOINT", archive.Query().Get("endpoint"), s3init["S3_ENDPOINT"], "the worker's ARCHIVE_URL endpoint"},
		{"s3-init AWS_REGION", archive.Query().Get("region"), s3init["AWS_REGION"], "the worker's ARCHIVE_URL region"},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			t.Parallel()
			assert.Equalf(t, tt.want, tt.got, "%s must equal %s", tt.what, tt.wantSource)
		})
	}
}

// TestServersReachable: the servers listen where the clients connect, on
// addresses other containers can reach, under names they can resolve.
func TestServersReachable(t *testing.T) {
	t.Parallel()
	p := setup(t)
	emu, s3 := service(t, p, "twilio-emulator"), service(t, p, "s3")
	apiURL, err := url.Parse(environment(t, service(t, p, "worker"))["TWILIO_API_URL"])
	require.NoError(t, err, "worker: TWILIO_API_URL")

	// listens checks a listen address: all interfaces (a loopback listener
	// is unreachable from other containers) on the wanted port.
	listens := func(t *testing.T, what, addr, port string) {
		t.Helper()
		host, p, err := net.SplitHostPort(addr)
		require.NoErrorf(t, err, "%s %q", what, addr)
		assert.Containsf(t, []string{"", "0.0.0.0", "::"}, host, "%s %q must listen on all interfaces, or other containers cannot connect", what, addr)
		assert.Equalf(t, port, p, "%s %q: port", what, addr)
	}

	t.Run("emulator API", func(t *testing.T) {
		t.Parallel()
		listens(t, "twilio-emulator -api-addr", mustFlag(t, emu, "api-addr"), apiURL.Port())
		assert.Equal(t, "twilio-emulator", apiURL.Hostname(), "worker: TWILIO_API_URL host must be the emulator service")
		assert.Equal(t, apiURL.Hostname(), mustFlag(t, emu, "api-host"),
			"twilio-emulator -api-host: the absolute URLs the emulator hands out must name a host the worker resolves")
	})
	t.Run("emulator dataset", func(t *testing.T) {
		t.Parallel()
		// The demo's backfill window is written down: the data must not move
		// with the day the demo runs (the emulator's default range does).
		for _, f := range []string{"seed", "start", "end"} {
			mustFlag(t, emu, f)
		}
	})
	t.Run("emulator signed media", func(t *testing.T) {
		t.Parallel()
		listens(t, "twilio-emulator -signed-addr", mustFlag(t, emu, "signed-addr"), "4011")
		host := mustFlag(t, emu, "signed-host")
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		assert.NotEqualf(t, apiURL.Hostname(), host,
			"twilio-emulator -signed-host %q must differ from the API host name, or Go keeps Authorization on the redirect", host)
		names := []string{emu.Name}
		for _, n := range emu.Networks {
			if n != nil {
				names = append(names, n.Aliases...)
			}
		}
		assert.Containsf(t, names, host,
			"twilio-emulator -signed-host %q must be a name of the emulator on the compose network (service name or alias), or the worker cannot follow signed URLs", host)
	})
	t.Run("s3", func(t *testing.T) {
		t.Parallel()
		archive, err := url.Parse(environment(t, service(t, p, "worker"))["ARCHIVE_URL"])
		require.NoError(t, err, "worker: ARCHIVE_URL")
		endpoint, err := url.Parse(archive.Query().Get("endpoint"))
		require.NoError(t, err, "worker: ARCHIVE_URL endpoint")
		assert.Equal(t, "s3", endpoint.Hostname(), "worker: ARCHIVE_URL endpoint host must be the s3 service")
		listens(t, "s3 --port", mustFlag(t, s3, "port"), endpoint.Port())
		// versitygw: posix [--versioning-dir DIR] ROOT, with DIR outside ROOT.
		i := slices.Index(s3.Command, "posix")
		require.GreaterOrEqualf(t, i, 0, "s3: command %q has no posix backend", []string(s3.Command))
		backend := s3.Command[i:]
		root := backend[len(backend)-1]
		versions, ok := flagValue(backend, "versioning-dir")
		require.True(t, ok, "s3: posix backend has no --versioning-dir")
		assert.Falsef(t, versions == root || strings.HasPrefix(versions, strings.TrimSuffix(root, "/")+"/"),
			"s3: --versioning-dir %q must be outside the root %q", versions, root)
	})
}

// TestNoUndocumentedSecrets: the only credentials in the file are the
// documented demo ones, and none comes from elsewhere (env_file).
func TestNoUndocumentedSecrets(t *testing.T) {
	t.Parallel()
	p := setup(t)
	documented := []string{demoTwilioAccountSID, demoTwilioAuthToken, demoAWSAccessKeyID, demoAWSSecretKey, demoPostgresPassword}

	secretName := regexp.MustCompile(`(?i)token|secret|passw|private|credential|access|key|sid`)
	secretValue := regexp.MustCompile(`^(AC|SK|PN|MM|ME)[0-9a-fA-F]{32}$|^(AKIA|ASIA)[0-9A-Z]{16}$|^[0-9a-fA-F]{32,}$|BEGIN [A-Z ]*PRIVATE KEY`)

	check := func(t *testing.T, where, v string) {
		t.Helper()
		assert.Containsf(t, documented, v, "%s holds %q, which is not one of the documented demo credentials", where, v)
	}
	for _, name := range p.ServiceNames() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := p.Services[name]
			assert.Emptyf(t, s.EnvFiles, "service %s: env_file brings values this check cannot see", name)
			for k, v := range environment(t, s) {
				where := fmt.Sprintf("service %s: %s", name, k)
				if secretName.MatchString(k) || secretValue.MatchString(v) {
					check(t, where, v)
				}
				if u, err := url.Parse(v); err == nil && u.User != nil {
					if pw, ok := u.User.Password(); ok {
						check(t, where+" (URL password)", pw)
					}
				}
			}
			var hc []string
			if s.HealthCheck != nil {
				hc = s.HealthCheck.Test
			}
			for part, args := range map[string][]string{"command": s.Command, "entrypoint": s.Entrypoint, "healthcheck": hc} {
				for i, a := range args {
					where := fmt.Sprintf("service %s: %s argument %d", name, part, i)
					if secretValue.MatchString(a) {
						check(t, where, a)
					}
					if !strings.HasPrefix(a, "-") {
						continue
					}
					flag, v, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
					if !secretName.MatchString(flag) {
						continue
					}
					if !inline && i+1 < len(args) {
						v = args[i+1]
					}
					check(t, where+" ("+a+")", v)
				}
			}
		})
	}

	t.Run("raw text", func(t *testing.T) {
		t.Parallel()
		raw, err := os.ReadFile(composeFile)
		require.NoError(t, err)
		for _, re := range []*regexp.Regexp{regexp.MustCompile(`(AKIA|ASIA)[0-9A-Z]{16}`), regexp.MustCompile(`BEGIN [A-Z ]*PRIVATE KEY`)} {
			assert.Falsef(t, re.Match(raw), "docker-compose.yml contains something like a real credential: %s", re.FindString(string(raw)))
		}
	})
}
