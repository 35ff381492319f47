package version

import (
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/mediasync/mediasync/internal/devtools"
)

func TestFromBuildInfo(t *testing.T) {
	rev := "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"module version", debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"checkout", debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "false"}}}, "devel-0123456789ab"},
		{"dirty checkout", debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}}, "devel-0123456789ab+dirty"},
		{"nothing recorded", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fromBuildInfo(&tt.bi); got != tt.want {
				t.Errorf("fromBuildInfo = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStampWins(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v9.9.9"
	if got := String(); got != "v9.9.9" {
		t.Fatalf("String = %q, want the stamped v9.9.9", got)
	}
	var b strings.Builder
	Print(&b, "worker")
	if !strings.HasPrefix(b.String(), "worker v9.9.9 (go") {
		t.Fatalf("Print = %q", b.String())
	}
}

func TestNeverDevelInParens(t *testing.T) {
	if got := String(); strings.Contains(got, "(devel)") || got == "" {
		t.Fatalf("String = %q", got)
	}
}

// TestProgramsPrintTheStampedVersion builds every program as make build and
// the Docker image do, stamped, and runs each with --version.
func TestProgramsPrintTheStampedVersion(t *testing.T) {
	root, err := devtools.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	const stamp = "v1.2.3-test"
	build := exec.Command("go", "build", "-ldflags", "-X github.com/mediasync/mediasync/internal/version.version="+stamp,
		"-o", bin+string(filepath.Separator), "./cmd/worker", "./cmd/enqueue", "./cmd/twilio-emulator", "./cmd/bench")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, prog := range []string{"worker", "enqueue", "twilio-emulator", "bench"} {
		t.Run(prog, func(t *testing.T) {
			// No environment: --version needs no configuration and
			// starts nothing.
			cmd := exec.Command(filepath.Join(bin, prog), "--version")
			cmd.Env = []string{}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s --version: %v\n%s", prog, err, out)
			}
			if want := prog + " " + stamp; !strings.HasPrefix(string(out), want) {
				t.Fatalf("%s --version printed %q, want it to start with %q", prog, out, want)
			}
		})
	}
}
