package twiliotest

import (
	"errors"
	"net/mail"
	"strings"
	"time"
)

// rfc2822 is how REST 2010-04-01 writes every date: "Fri, 17 Jul 2009
// 01:52:49 +0000", always in GMT.
const rfc2822 = time.RFC1123Z

func formatRFC2822(unix int64) string {
	return time.Unix(unix, 0).UTC().Format(rfc2822)
}

// formatISO is how Conversations v1 writes dates: "2016-03-24T20:38:21Z".
func formatISO(unix int64) string {
	return time.Unix(unix, 0).UTC().Format(time.RFC3339)
}

// formatMCS is how the Media Content Service writes dates: microseconds and
// a numeric offset, e.g. "2024-01-02T03:04:05.000000+00:00" (twilio-facts.md:
// "may carry microseconds and an offset"); clients must not expect the
// Conversations form.
func formatMCS(unix int64) string {
	return time.Unix(unix, 0).UTC().Format("2006-01-02T15:04:05.000000-07:00")
}

// usZones maps the zone abbreviations Twilio's own examples use
// ("06/11/2019 22:05:25 MST") to their offsets. Go's parser gives an unknown
// abbreviation a zero offset, which would silently shift the filter by hours.
var usZones = map[string]int{
	"UTC": 0, "GMT": 0, "Z": 0,
	"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6,
	"PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10,
}

// errBadDate is wrapped by parseFilterDate for every value it cannot read.
var errBadDate = errors.New("not a date Twilio accepts (YYYY-MM-DD, RFC 3339, RFC 2822, \"2019-06-11 22:05:25.000\" or \"06/11/2019 22:05:25 MST\")")

// parseFilterDate reads a date filter value (DateSent, DateCreated and their
// < and > forms) in every form twilio-facts.md lists. dateOnly is true for a
// bare date, which the filters treat as that whole GMT day.
func parseFilterDate(v string) (t time.Time, dateOnly bool, err error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, false, errBadDate
	}
	for _, layout := range []string{"2006-01-02", "01/02/2006"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, true, nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t.UTC(), false, nil
		}
	}
	// A client that forgot to escape "+" in "…T10:00:00+02:00" sends a space.
	if i := strings.LastIndexByte(v, ' '); i > 10 && v[10] == 'T' {
		if t, err := time.Parse(time.RFC3339Nano, v[:i]+"+"+v[i+1:]); err == nil {
			return t.UTC(), false, nil
		}
	}
	if t, ok := parseUSZoned(v); ok {
		return t.UTC(), false, nil
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t.UTC(), false, nil
	}
	return time.Time{}, false, errBadDate
}

// parseUSZoned reads "06/11/2019 22:05:25 MST".
func parseUSZoned(v string) (time.Time, bool) {
	i := strings.LastIndexByte(v, ' ')
	if i < 0 {
		return time.Time{}, false
	}
	hours, ok := usZones[strings.ToUpper(v[i+1:])]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation("01/02/2006 15:04:05", v[:i], time.UTC)
	if err != nil {
		return time.Time{}, false
	}
	return t.Add(-time.Duration(hours) * time.Hour), true
}

// timeRange is an inclusive range of unix seconds.
type timeRange struct {
	from, to int64
}

var fullRange = timeRange{from: minUnix, to: maxUnix}

const (
	minUnix = -1 << 62
	maxUnix = 1<<62 - 1
)

func (r timeRange) contains(t int64) bool { return r.from <= t && t <= r.to }

func (r timeRange) intersect(o timeRange) timeRange {
	return timeRange{from: max(r.from, o.from), to: min(r.to, o.to)}
}

// dateFilter turns one of the three filter forms into a range. "=" is the
// GMT day of the value; ">" is on or after (a bare date: from its midnight);
// "<" is on or before (a bare date: the whole day, as the OpenAPI text
// "on and before a specific date" reads). Twilio's behaviour at sub-second
// precision is unknown: instants are rounded inward to whole seconds, which
// is all a stored date carries.
func dateFilter(op byte, t time.Time, dateOnly bool) timeRange {
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Unix()
	switch op {
	case '>':
		if dateOnly {
			return timeRange{from: day, to: maxUnix}
		}
		from := t.Unix()
		if t.Nanosecond() > 0 {
			from++
		}
		return timeRange{from: from, to: maxUnix}
	case '<':
		if dateOnly {
			return timeRange{from: minUnix, to: day + 86399}
		}
		return timeRange{from: minUnix, to: t.Unix()}
	default:
		return timeRange{from: day, to: day + 86399}
	}
}
