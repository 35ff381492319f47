package catalog

import (
	"fmt"
	"time"
)

// EarliestDay is the first day a run, an export or a policy's watermark
// may name. Twilio sent its first message in 2008, so an earlier day is a
// typo (2007 for 2027), as is one more than MaxAhead after now: such a
// range would cut thousands of windows with nothing in them.
var EarliestDay = time.Date(2008, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxAhead is how far after now a range may end: a day, so that "until
// tomorrow" is always accepted whatever the time zone of the operator.
const MaxAhead = 24 * time.Hour

// DayRangeError reports a day outside [EarliestDay, now+MaxAhead].
type DayRangeError struct {
	Day   time.Time
	Now   time.Time
	Early bool // before EarliestDay; else too far ahead
}

func (e *DayRangeError) Error() string {
	if e.Early {
		return fmt.Sprintf("%s is before %s: Twilio had no messages then", e.Day.Format(time.DateOnly), EarliestDay.Format(time.DateOnly))
	}
	return fmt.Sprintf("%s is more than a day after now (%s)", e.Day.Format(time.DateOnly), e.Now.UTC().Format("2006-01-02 15:04 UTC"))
}

// CheckDay returns a *DayRangeError unless day is between EarliestDay and
// now+MaxAhead. Every range mediasync is asked to list or export passes
// through it (CreateRun, CreateExport, SetPolicy), and so does the CLI,
// which names the flag.
func CheckDay(day, now time.Time) error {
	switch {
	case day.Before(EarliestDay):
		return &DayRangeError{Day: day, Now: now, Early: true}
	case day.After(now.Add(MaxAhead)):
		return &DayRangeError{Day: day, Now: now}
	}
	return nil
}

// checkRange is CheckDay for both ends of a range, with now as now.
func checkRange(since, until time.Time) error {
	now := time.Now()
	for _, d := range []struct {
		name string
		t    time.Time
	}{{"since", since}, {"until", until}} {
		if d.t.IsZero() {
			continue
		}
		if err := CheckDay(d.t, now); err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
	}
	return nil
}
