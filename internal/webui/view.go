package webui

import (
	"fmt"
	"html/template"
	"time"

	"github.com/google/uuid"

	"github.com/mediasync/mediasync/catalog"
)

// funcs are the templates' formatting helpers. Each returns plain text:
// html/template escapes it where it lands.
func funcs(now func() time.Time) template.FuncMap {
	return template.FuncMap{
		// A UUIDv7 begins with its time, the same for runs made together:
		// the short form is its random end.
		"short": func(id uuid.UUID) string { s := id.String(); return "…" + s[len(s)-8:] },
		"ts":    timestamp,
		"date": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.DateOnly)
		},
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return human(now().Sub(t)) + " ago"
		},
		"human":   human,
		"elapsed": func(r catalog.Run) string { return elapsed(r, now()) },
		"bytes":   humanBytes,
		"scope":   scope,
		"mode":    mode,
		"progress": func(done, total int) progressBar {
			return progressBar{Done: done, Total: total}
		},
	}
}

type progressBar struct{ Done, Total int }

// Percent is how much is done, rounded down, so 100 means all of it.
func (p progressBar) Percent() int {
	if p.Total <= 0 {
		return 0
	}
	return p.Done * 100 / p.Total
}

func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// human is a duration as an operator reads it: the two largest units.
func human(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
		if sec := int(d.Seconds()) % 60; sec != 0 {
			s += fmt.Sprintf(" %ds", sec)
		}
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int(d.Hours()))
		if m := int(d.Minutes()) % 60; m != 0 {
			s += fmt.Sprintf(" %dm", m)
		}
	default:
		s = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if neg {
		return "-" + s
	}
	return s
}

func elapsed(r catalog.Run, now time.Time) string {
	if r.StartedAt.IsZero() {
		return ""
	}
	end := r.FinishedAt
	if end.IsZero() {
		end = now
	}
	return human(end.Sub(r.StartedAt))
}

// scope is what a run covers: its range, message or policy tick.
func scope(r catalog.Run) string {
	var s string
	switch {
	case r.MessageSID != "":
		s = r.MessageSID
	case r.PolicyName != "" && !r.Since.IsZero():
		s = fmt.Sprintf("%s: %s – %s", r.PolicyName, r.Since.Format(time.DateOnly), r.Until.Format(time.DateOnly))
	case r.PolicyName != "":
		s = r.PolicyName + ": deletes only"
	case !r.Since.IsZero():
		s = r.Since.Format(time.DateOnly) + " – " + r.Until.Format(time.DateOnly)
	}
	if r.From != "" {
		s += " from " + r.From
	}
	if r.To != "" {
		s += " to " + r.To
	}
	return s
}

func mode(r catalog.Run) string {
	switch {
	case r.Kind == catalog.KindExport:
		return "export"
	case r.DryRun:
		return "dry run"
	case r.Delete && !r.DeleteBefore.IsZero():
		return "archive + delete sent before " + r.DeleteBefore.Format(time.DateOnly)
	case r.Delete:
		return "archive + delete"
	}
	return "archive"
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
