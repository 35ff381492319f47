// Package redact renders values that may hold secrets so that they can be
// put in an error message.
package redact

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// URL returns raw with its user information and query replaced by
// "xxxxx", for error messages. It works on text, not on a parsed URL,
// because it is needed most for URLs that do not parse (url.URL.Redacted
// needs a parsed one, and url.Error repeats the whole input). Everything
// from the scheme's "://" (or the start, without one) to the last "@" is
// cut, so a password holding '/', '?', '#' or '@' goes too; the query goes
// because Postgres and Redis URLs may carry password=… there.
func URL(raw string) string {
	head, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		head, rest = raw[:i+3], raw[i+3:]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		head, rest = head+"xxxxx@", rest[at+1:]
	}
	if q := strings.IndexAny(rest, "?#"); q >= 0 {
		rest = rest[:q] + "?xxxxx"
	}
	return head + rest
}

// ParseURL is url.Parse with an error that never repeats a secret: it shows
// the URL as URL renders it, and takes the reason from parsing that
// rendering, since url.Error's reason may quote any part of its input
// (`invalid port ":p4ss" after host` for an unescaped '/' in a password).
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err == nil {
		return u, nil
	}
	shown := URL(raw)
	reason := "invalid user information or query" // what URL cut
	var ue *url.Error
	if _, err := url.Parse(shown); errors.As(err, &ue) {
		reason = ue.Err.Error()
	}
	return nil, fmt.Errorf("cannot parse %q: %s", shown, reason)
}

// SID says what a would-be SID looks like without printing it: its length
// and, when they are upper-case letters as a SID's are, its first two
// characters. A mistyped SID is harmless to show, but a secret passed in
// the wrong place (a hex auth token, an API secret) is not.
func SID(s string) string {
	if len(s) < 2 {
		return fmt.Sprintf("got %d characters", len(s))
	}
	prefix := s[:2]
	for i := 0; i < len(prefix); i++ {
		if prefix[i] < 'A' || prefix[i] > 'Z' {
			return fmt.Sprintf("got %d characters", len(s))
		}
	}
	return fmt.Sprintf("got %d characters starting %q", len(s), prefix)
}
