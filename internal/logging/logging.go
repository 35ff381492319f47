// Package logging builds the zerolog logger every mediasync program uses:
// JSON lines to stderr by default, a console format for people. Each
// program calls Setup once, first, then New for its logger.
package logging

import (
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// New returns a logger writing to w in format ("json" or "console") at
// level ("debug", "info", "warn", "error"; unknown means info).
func New(w io.Writer, format, level string) zerolog.Logger {
	if w == nil {
		w = os.Stderr
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// Setup sets zerolog's process-wide settings: timestamps in RFC 3339 with
// nanoseconds. zerolog keeps them in globals that every logger reads as it
// logs, so a program calls Setup once, in main (a test package in its
// TestMain), before any goroutine logs: set later, or by each logger made
// (several in-process workers in a test), they would race.
func Setup() { zerolog.TimeFieldFormat = time.RFC3339Nano }
