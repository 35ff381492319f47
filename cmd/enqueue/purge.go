package main

import (
	"fmt"
	"io"
	"time"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/retention"
)

// warnPastRetention says on stderr, before a backfill starts, what of its
// range Twilio no longer serves. The run still goes: the rest may be there,
// and what is already archived is reused.
func warnPastRetention(stderr io.Writer, spec catalog.RunSpec, w retention.Window, now time.Time) {
	d, past := w.PurgedBefore(spec.Since, now)
	if !past {
		return
	}
	what := fmt.Sprintf("media sent before %s", d.UTC().Format(time.DateOnly))
	if !spec.Until.After(d) {
		what = "media of the whole range"
	}
	fmt.Fprintf(stderr, "enqueue: warning: --since %s: %s are older than Twilio keeps them (%s, TWILIO_RETENTION_DAYS=%d): Twilio will not serve them; the rest of the range runs\n",
		spec.Since.UTC().Format(time.DateOnly), what, w, w.Days())
}

// statusPurged is the status line of a backfill or policy run whose range
// reaches past Twilio's retention window, if it does.
func statusPurged(st catalog.Status, w retention.Window, now time.Time) (time.Time, bool) {
	if st.Kind != catalog.KindBackfill && st.Kind != catalog.KindPolicy {
		return time.Time{}, false
	}
	return w.PurgedBefore(st.Since, now)
}
