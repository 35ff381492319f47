// Package version is the version of mediasync's programs: what the build
// stamped with -ldflags, else what the Go toolchain recorded of the
// checkout it was built from, so a binary always says what it is.
//
// Stamp it with
//
//	go build -ldflags "-X github.com/mediasync/mediasync/internal/version.version=v1.2.3" ./cmd/worker
//
// (make build and the Docker image do, from git describe).
package version

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set by -ldflags -X; empty in an unstamped build.
var version string

// readBuildInfo is debug.ReadBuildInfo, replaced by tests.
var readBuildInfo = debug.ReadBuildInfo

// String is the program's version: the stamped one; else the module's
// version when it was installed as a module (go install …@v1.2.3); else
// the VCS revision go build recorded ("+dirty" with uncommitted changes);
// else "devel", for a build that recorded neither (go run, go test, or
// -buildvcs=false) — never the toolchain's "(devel)".
func String() string {
	if version != "" {
		return version
	}
	bi, ok := readBuildInfo()
	if !ok {
		return "devel"
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return "devel-" + rev
}

// Line is what a program's --version prints:
// "worker v1.2.3 (go1.26.0 linux/amd64)".
func Line(program string) string {
	return fmt.Sprintf("%s %s (%s %s/%s)", program, String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Print writes Line and a newline.
func Print(w io.Writer, program string) { fmt.Fprintln(w, Line(program)) }
