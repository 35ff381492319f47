// Package logging builds the zerolog logger every mediasync program uses:
// JSON lines to stderr by default, a console format for people.
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

// zerolog keeps its time format in a global; it is set once, here, so
// loggers made concurrently (several in-process workers in a test) do not
// race on it.
func init() { zerolog.TimeFieldFormat = time.RFC3339Nano }
