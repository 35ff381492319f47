// Package retention models Twilio's retention window: how long after a
// message was sent Twilio keeps its record and media. By default Twilio
// deletes MMS media after 13 months; an account may shorten the window to
// anywhere from 7 to 400 days (Messaging settings, "Message Records Data
// Access"). The window is TWILIO_RETENTION_DAYS; 400 days, the longest
// setting, models the default. 13 months are 395-397 days, so on the
// default a computed purge date is a few days late: the warnings (from 365
// days of age) still come a month before the real purge.
package retention

import (
	"fmt"
	"time"
)

// The settings Twilio allows, in days.
const (
	MinDays     = 7
	MaxDays     = 400
	DefaultDays = MaxDays
)

const day = 24 * time.Hour

// Window is how long Twilio keeps a message and its media after it was sent.
type Window time.Duration

// Default is the window of an account that did not shorten it.
const Default = Window(DefaultDays * day)

// Days is a window of n days.
func Days(n int) Window { return Window(time.Duration(n) * day) }

// Days is the window in whole days.
func (w Window) Days() int { return int(time.Duration(w) / day) }

func (w Window) String() string { return fmt.Sprintf("%d days", w.Days()) }

// Duration is the window as a time.Duration.
func (w Window) Duration() time.Duration { return time.Duration(w) }

// PurgeAt is when Twilio purges what was sent at sent.
func (w Window) PurgeAt(sent time.Time) time.Time { return sent.Add(time.Duration(w)) }

// Deadline is the oldest send time Twilio still serves at now: what was
// sent before it is purged.
func (w Window) Deadline(now time.Time) time.Time { return now.Add(-time.Duration(w)) }

// PurgedBefore reports whether a range of send times starting at since
// reaches past the window at now, and the deadline: what was sent before
// it is purged, so Twilio no longer serves it.
func (w Window) PurgedBefore(since, now time.Time) (time.Time, bool) {
	d := w.Deadline(now)
	return d, !since.IsZero() && since.Before(d)
}

// Warning is the age past which media not yet archived warrant a warning:
// 35 days before the purge (365 days on the default window, as before
// the window was configurable), or a quarter of a shorter window.
func (w Window) Warning() time.Duration { return time.Duration(w) - min(35*day, time.Duration(w)/4) }

// Imminent is the age past which the purge is days away: 20 days before
// it, or an eighth of a shorter window.
func (w Window) Imminent() time.Duration { return time.Duration(w) - min(20*day, time.Duration(w)/8) }
