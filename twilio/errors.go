package twilio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// Twilio error codes callers branch on (https://www.twilio.com/docs/api/errors).
const (
	CodeAuthenticate    = 20003 // bad credentials
	CodeNotFound        = 20404 // the resource does not exist (or is already deleted)
	CodeTooManyRequests = 20429 // the account's concurrent request limit
)

// Sentinel errors, for errors.Is.
var (
	// ErrInvalidPageURI marks a page URI (a stored cursor or a
	// next_page_uri from a response) that the client refuses to follow:
	// another host, another list, or a loop.
	ErrInvalidPageURI = errors.New("twilio: invalid page URI")
	// ErrRedirectRefused marks a media content redirect the client refuses
	// to follow: a scheme change, a private address, a loop or too many hops.
	ErrRedirectRefused = errors.New("twilio: media redirect refused")
)

// Error is a response from Twilio (or from a media storage host it
// redirected to) that is not a success. Status is the HTTP status; Code,
// Message and MoreInfo come from Twilio's JSON error body when there is one.
type Error struct {
	Status   int
	Code     int
	Message  string
	MoreInfo string
	Method   string
	// Path is the request path without its query (phone-number filters and
	// URL signatures stay out of errors); for hosts other than the API host
	// it is prefixed by scheme and host.
	Path string
	// RequestID is Twilio's Twilio-Request-Id header (RQ…), for support.
	RequestID string
	// Storage is set when the answer came from a host a download was
	// redirected to (a signed URL), not from the API: its status says
	// nothing of whether Twilio still has the resource.
	Storage bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("twilio: ")
	if e.Method != "" || e.Path != "" {
		b.WriteString(strings.TrimSpace(e.Method + " " + e.Path))
		b.WriteString(": ")
	}
	b.WriteString(strconv.Itoa(e.Status))
	if text := http.StatusText(e.Status); text != "" {
		b.WriteString(" " + text)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, " (code %d)", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.MoreInfo != "" {
		b.WriteString("; see " + e.MoreInfo)
	}
	if e.RequestID != "" {
		b.WriteString(" [" + e.RequestID + "]")
	}
	return b.String()
}

// RateLimitError is returned when Twilio still answers 429 (code 20429)
// after the client's retries, or when the wait it asks for is longer than
// the retry policy allows. The request was not processed: retry it after
// RetryAfter. It is not a failure of the job that made it.
type RateLimitError struct {
	// RetryAfter is the server's Retry-After when it sent one, otherwise
	// the client's next backoff wait.
	RetryAfter time.Duration
	Err        *Error
}

func (e *RateLimitError) Error() string {
	msg := "twilio: rate limited"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s; retry after %s", msg, e.RetryAfter)
}

// Unwrap returns the underlying *Error, so errors.As finds it.
func (e *RateLimitError) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return e.Err
}

// IsNotFound reports whether err is Twilio's 404 / 20404: the resource does
// not exist, or was already deleted (a second DELETE of the same media).
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusNotFound || e.Code == CodeNotFound)
}

// IsGone reports whether err is the API itself saying the resource does not
// exist: 404 with Twilio's code 20404, from the API host. Unlike IsNotFound
// it is false for a 404 from the signed-URL host a download was redirected
// to, and for a 404 without Twilio's code (a proxy or an edge answering):
// those say nothing of the resource, so a caller that must not give up on
// what Twilio still holds fetches the resource again to know.
func IsGone(err error) bool {
	var e *Error
	return errors.As(err, &e) && !e.Storage && e.Status == http.StatusNotFound && e.Code == CodeNotFound
}

// IsRateLimited reports whether err is Twilio's 429 / 20429.
func IsRateLimited(err error) bool {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return true
	}
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusTooManyRequests || e.Code == CodeTooManyRequests)
}

// ErrorCode returns the Twilio error code carried by err, or 0.
func ErrorCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// IsRetryable reports whether the operation that returned err may succeed
// if repeated later: 429, 5xx (but 501), connection resets and refusals, a
// body cut short (io.ErrUnexpectedEOF) and timeouts. The cancellation or
// deadline of the caller's own context is not retryable.
func IsRetryable(err error) bool {
	if err == nil || isContextErr(err) {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return retryableStatus(e.Status) || e.Code == CodeTooManyRequests
	}
	if errors.Is(err, ErrInvalidPageURI) || errors.Is(err, ErrRedirectRefused) {
		return false
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true // the connection closed before a whole response arrived
	}
	for _, errno := range []syscall.Errno{syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED,
		syscall.EPIPE, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

func retryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500 && status != http.StatusNotImplemented
}

// isContextErr reports whether err's chain holds context.Canceled or
// context.DeadlineExceeded itself. errors.Is is not enough: net/http's
// Client.Timeout error also answers Is(context.DeadlineExceeded), and that
// one is a retryable timeout, not the caller giving up.
func isContextErr(err error) bool {
	for err != nil {
		if err == context.Canceled || err == context.DeadlineExceeded {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				if isContextErr(inner) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// wireError is Twilio's error body. Fields are raw so that a field of an
// unexpected type loses only that field, never the error.
type wireError struct {
	Code     json.RawMessage `json:"code"`
	Message  json.RawMessage `json:"message"`
	MoreInfo json.RawMessage `json:"more_info"`
}

// newError builds an *Error from a failed response, reading at most
// maxErrorBytes of its body. Only a JSON body is used; anything else (an
// HTML page, a storage host's XML, which can echo the request's signature)
// is left out of the error. redact strips the client's secret from text the
// server sent back.
func newError(resp *http.Response, method, path string, redact func(string) string) *Error {
	e := &Error{
		Status:    resp.StatusCode,
		Method:    method,
		Path:      path,
		RequestID: cleanText(resp.Header.Get("Twilio-Request-Id"), 64),
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	decodeErrorBody(e, body, redact)
	return e
}

func decodeErrorBody(e *Error, body []byte, redact func(string) string) {
	var w wireError
	if err := json.Unmarshal(body, &w); err != nil {
		return
	}
	e.Code = rawInt(w.Code)
	e.Message = redact(cleanText(rawString(w.Message), 512))
	if info := cleanText(rawString(w.MoreInfo), 256); info != "" {
		if u, err := url.Parse(info); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.User == nil {
			e.MoreInfo = redact(info)
		}
	}
}

// rawInt reads a JSON number or numeric string; anything else is 0.
func rawInt(raw json.RawMessage) int {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0
		}
		raw = []byte(s)
	}
	n, err := strconv.ParseInt(string(raw), 10, 32)
	if err != nil || n < 0 {
		return 0
	}
	return int(n)
}

// rawString reads a JSON string; anything else is "".
func rawString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// cleanText makes server-sent text safe for one log line: valid UTF-8, no
// control characters, at most limit bytes.
func cleanText(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// jsonKind names the JSON type of a raw value for decode errors.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// quoteInput quotes outside input for an error message, cut to a length
// that keeps the message readable.
func quoteInput(s string) string { return quoteLimit(s, 64) }

func quoteLimit(s string, limit int) string {
	if len(s) > limit {
		return fmt.Sprintf("%q… (%d bytes)", s[:limit], len(s))
	}
	return fmt.Sprintf("%q", s)
}
