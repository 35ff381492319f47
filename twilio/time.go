package twilio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Time is a timestamp as Twilio's REST API 2010-04-01 writes it: RFC 2822
// ("Fri, 17 Jul 2009 01:52:49 +0000"), always GMT. JSON null (and an empty
// string) decode to the zero Time, which IsZero reports. Decoded times are
// in UTC.
type Time struct {
	time.Time
}

// rfc2822Layouts are the RFC 2822 shapes Twilio and its examples use: with
// and without the day name, one- or two-digit days ("2" accepts both when
// parsing), with and without seconds. Textual zones are rewritten to +0000
// before parsing (see ParseTime).
var rfc2822Layouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700", // time.RFC1123Z, the form Twilio emits
	"2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04 -0700",
	"2 Jan 2006 15:04 -0700",
}

// utcZoneNames are the only textual zones accepted. Go's time.Parse gives
// other abbreviations ("MST") an offset that depends on the machine's local
// zone, which would make decoding non-deterministic.
var utcZoneNames = []string{" GMT", " UTC", " UT", " Z"}

// ParseTime parses a Twilio timestamp: RFC 2822 as Twilio emits it
// (time.RFC1123Z, "-0000", GMT, no day name, one-digit day) or, as a
// fallback for APIs that use ISO 8601, RFC 3339. The result is in UTC.
func ParseTime(s string) (time.Time, error) {
	v := strings.TrimSpace(s)
	for _, z := range utcZoneNames {
		if strings.HasSuffix(v, z) {
			v = strings.TrimSuffix(v, z) + " +0000"
			break
		}
	}
	for _, layout := range rfc2822Layouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("twilio: time %s is not an RFC 2822 date (want e.g. %q)",
		quoteInput(s), "Fri, 17 Jul 2009 01:52:49 +0000")
}

// UnmarshalJSON decodes an RFC 2822 string or null.
func (t *Time) UnmarshalJSON(b []byte) (err error) {
	t.Time, err = unmarshalTime(b, ParseTime)
	return err
}

// unmarshalTime decodes a JSON string with parse; null and "" are the zero
// time, as Twilio writes an unset timestamp either way.
func unmarshalTime(b []byte, parse func(string) (time.Time, error)) (time.Time, error) {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return time.Time{}, nil
	}
	if len(b) == 0 || b[0] != '"' {
		return time.Time{}, fmt.Errorf("twilio: time must be a JSON string or null, got %s", jsonKind(b))
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return time.Time{}, fmt.Errorf("twilio: time: %w", err)
	}
	if s == "" {
		return time.Time{}, nil
	}
	return parse(s)
}

// MarshalJSON encodes the time as Twilio does (time.RFC1123Z in UTC), and
// the zero Time as null.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC1123Z))
}

// formatDateFilter renders a list filter value (DateSent>, DateCreated<, …).
// Twilio documents YYYY-MM-DD as "that GMT day", so midnight UTC is sent in
// that form; any other instant goes as RFC 3339 in UTC, as twilio-go sends
// it. Twilio's timestamps have whole seconds, so sub-second parts are
// dropped.
func formatDateFilter(t time.Time) string {
	u := t.UTC().Truncate(time.Second)
	if u.Hour() == 0 && u.Minute() == 0 && u.Second() == 0 {
		return u.Format(time.DateOnly)
	}
	return u.Format(time.RFC3339)
}

// ISOTime is a timestamp as Conversations v1 and the Media Content Service
// write it: ISO 8601 in the RFC 3339 profile ("2016-03-24T20:38:21Z"; MCS
// also sends microseconds and a numeric offset,
// "2024-01-02T03:04:05.000000+00:00"). JSON null (and an empty string)
// decode to the zero ISOTime. Decoded times are in UTC.
type ISOTime struct {
	time.Time
}

// ParseISOTime parses an RFC 3339 timestamp, with or without fractional
// seconds, into UTC.
func ParseISOTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("twilio: time %s is not an ISO 8601 date (want e.g. %q)", quoteInput(s), "2016-03-24T20:38:21Z")
	}
	return t.UTC(), nil
}

// UnmarshalJSON decodes an RFC 3339 string or null.
func (t *ISOTime) UnmarshalJSON(b []byte) (err error) {
	t.Time, err = unmarshalTime(b, ParseISOTime)
	return err
}

// MarshalJSON encodes the time as RFC 3339 in UTC (fractional seconds only
// when there are any), and the zero ISOTime as null.
func (t ISOTime) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// formatISOFilter renders a Conversations date filter (StartDate,
// EndDate): RFC 3339 in UTC, whole seconds, as the OpenAPI document's
// examples write them (YYYY-MM-DDT00:00:00Z).
func formatISOFilter(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}
