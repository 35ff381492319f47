package composetest

import (
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const dockerFile = "../../Dockerfile"

// stage is one FROM … AS name section of the Dockerfile.
type stage struct {
	name, from string
	env        map[string]string
	runs       [][]string // each shell command of each RUN, as words
	copies     [][]string // each COPY's words after COPY
	health     []string   // HEALTHCHECK's words after HEALTHCHECK
}

// parseDockerfile reads the stages of a Dockerfile: enough of its syntax
// (continuation lines, FROM, ENV, RUN, COPY) to check what it builds.
func parseDockerfile(text string) []*stage {
	var stages []*stage
	var logical []string
	var cur strings.Builder
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	for _, l := range logical {
		words := strings.Fields(l)
		if len(words) == 0 {
			continue
		}
		if strings.EqualFold(words[0], "FROM") {
			st := &stage{env: map[string]string{}}
			for i := 1; i < len(words); i++ {
				switch {
				case strings.HasPrefix(words[i], "--"):
				case strings.EqualFold(words[i], "AS") && i+1 < len(words):
					st.name = words[i+1]
					i++
				case st.from == "":
					st.from = words[i]
				}
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			continue
		}
		st := stages[len(stages)-1]
		switch strings.ToUpper(words[0]) {
		case "ENV":
			for _, kv := range words[1:] {
				if k, v, ok := strings.Cut(kv, "="); ok {
					st.env[k] = v
				}
			}
			if len(words) == 3 && !strings.Contains(words[1], "=") {
				st.env[words[1]] = words[2]
			}
		case "RUN":
			rest := words[1:]
			for len(rest) > 0 && strings.HasPrefix(rest[0], "--") {
				rest = rest[1:]
			}
			sh := strings.NewReplacer("&&", "\n", "||", "\n", ";", "\n").Replace(strings.Join(rest, " "))
			for cmd := range strings.Lines(sh) {
				if f := strings.Fields(cmd); len(f) > 0 {
					st.runs = append(st.runs, f)
				}
			}
		case "COPY":
			st.copies = append(st.copies, words[1:])
		case "HEALTHCHECK":
			st.health = words[1:]
		}
	}
	return stages
}

// lineage is a stage and the Dockerfile stages it is built FROM, nearest
// first.
func lineage(stages []*stage, st *stage) []*stage {
	out := []*stage{st}
	for {
		i := slices.IndexFunc(stages, func(s *stage) bool { return s.name != "" && s.name == st.from })
		if i < 0 || slices.Contains(out, stages[i]) {
			return out
		}
		st = stages[i]
		out = append(out, st)
	}
}

func stageNamed(stages []*stage, name string) *stage {
	i := slices.IndexFunc(stages, func(s *stage) bool { return s.name == name })
	if i < 0 {
		return nil
	}
	return stages[i]
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(dockerFile)
	require.NoError(t, err, "read the Dockerfile")
	stages := parseDockerfile(string(raw))
	require.NotEmpty(t, stages, "Dockerfile: no FROM")
	app := stageNamed(stages, "app")
	require.NotNil(t, app, "Dockerfile: no stage named app (the production image: worker and enqueue)")
	require.NotNil(t, stageNamed(stages, "emulator"), "Dockerfile: no stage named emulator (twilio-emulator's own image)")

	// The production image carries the programs an operator runs, and not
	// the emulator, which has a target of its own.
	for bin, target := range map[string]string{"worker": "app", "enqueue": "app", "twilio-emulator": "emulator"} {
		t.Run(bin, func(t *testing.T) {
			t.Parallel()
			pkg := "./cmd/" + bin
			var built *stage
			var out string
			var cgoOff bool
		search:
			for _, st := range stages {
				for _, run := range st.runs {
					i := slices.Index(run, "go")
					if i < 0 || i+1 >= len(run) || run[i+1] != "build" || !slices.Contains(run, pkg) {
						continue
					}
					o, _ := flagValue(run[i+2:], "o")
					if path.Base(o) != bin {
						continue
					}
					built, out = st, o
					assert.Truef(t, strings.Contains(strings.Join(run, " "), "-X github.com/mediasync/mediasync/internal/version.version=${VERSION}"),
						"Dockerfile: %s is built without -ldflags -X …/internal/version.version=${VERSION}: its --version would not say the image's version", bin)
					cgoOff = slices.Contains(run[:i], "CGO_ENABLED=0")
					for _, s := range lineage(stages, st) {
						cgoOff = cgoOff || s.env["CGO_ENABLED"] == "0"
					}
					break search
				}
			}
			require.NotNilf(t, built, "Dockerfile: no `go build -o …/%s %s` line", bin, pkg)
			assert.Truef(t, cgoOff, "Dockerfile: %s is built without CGO_ENABLED=0, so it may not run on the runtime image", bin)

			installedIn := func(img *stage) bool {
				installed := false
				for _, c := range img.copies {
					from := slices.IndexFunc(c, func(w string) bool { return w == "--from="+built.name })
					if from < 0 || len(c) < 2 {
						continue
					}
					dst := c[len(c)-1]
					for _, src := range c[:len(c)-1] {
						if strings.HasPrefix(src, "--") {
							continue
						}
						inSrc := src == out || strings.HasSuffix(src, "/") && strings.HasPrefix(out, src)
						if inSrc && (dst == "/usr/local/bin/" || dst == "/usr/local/bin/"+bin) {
							installed = true
						}
					}
				}
				return installed
			}
			for _, img := range []string{"app", "emulator"} {
				if img == target {
					assert.Truef(t, installedIn(stageNamed(stages, img)), "Dockerfile: stage %s does not COPY --from=%s %s into /usr/local/bin/", img, built.name, out)
				} else {
					assert.Falsef(t, installedIn(stageNamed(stages, img)), "Dockerfile: stage %s carries %s, which belongs in target %s only", img, bin, target)
				}
			}
		})
	}

	// docker run of the production image knows whether the worker serves.
	t.Run("app healthcheck", func(t *testing.T) {
		t.Parallel()
		assert.Containsf(t, strings.Join(app.health, " "), "http://127.0.0.1:9090/livez",
			"Dockerfile: stage app's HEALTHCHECK does not probe the worker's /livez")
		assert.Equal(t, ":9090", app.env["HTTP_ADDR"], "Dockerfile: stage app's HTTP_ADDR, the port its HEALTHCHECK probes")
	})

	t.Run("versitygw", func(t *testing.T) {
		t.Parallel()
		found := false
		for _, st := range stages {
			for _, run := range st.runs {
				found = found || slices.Contains(run, "install") && slices.Contains(run, "github.com/versity/versitygw/cmd/versitygw@v1.8.0")
			}
		}
		assert.True(t, found, "Dockerfile: no `go install github.com/versity/versitygw/cmd/versitygw@v1.8.0`")
	})

	// Every target docker-compose.yml builds exists, and has curl when a
	// health check runs it.
	p := setup(t)
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if s.Build == nil {
			continue
		}
		t.Run("target of "+name, func(t *testing.T) {
			t.Parallel()
			st := stageNamed(stages, s.Build.Target)
			require.NotNilf(t, st, "service %s: Dockerfile has no target %q", name, s.Build.Target)
			if s.HealthCheck == nil || len(s.HealthCheck.Test) < 2 || !strings.Contains(strings.Join(s.HealthCheck.Test[1:], " "), "curl") {
				return
			}
			hasCurl := false
			for _, anc := range lineage(stages, st) {
				for _, run := range anc.runs {
					hasCurl = hasCurl || slices.Contains(run, "install") && slices.Contains(run, "curl")
				}
			}
			assert.Truef(t, hasCurl, "service %s: healthcheck runs curl, but Dockerfile target %s does not install it", name, st.name)
		})
	}
}
