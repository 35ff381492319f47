package twilio

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestErrorText(t *testing.T) {
	t.Parallel()
	e := &Error{Status: 404, Code: 20404, Message: "The requested resource was not found",
		MoreInfo: "https://www.twilio.com/docs/errors/20404", Method: "GET", Path: "/2010-04-01/Accounts/AC/Messages/MM.json",
		RequestID: "RQ1"}
	require.Equal(t, "twilio: GET /2010-04-01/Accounts/AC/Messages/MM.json: 404 Not Found (code 20404): The requested resource was not found; see https://www.twilio.com/docs/errors/20404 [RQ1]", e.Error())
	require.Equal(t, "twilio: 599", (&Error{Status: 599}).Error())
	rl := &RateLimitError{RetryAfter: 3 * time.Second, Err: &Error{Status: 429, Code: 20429, Method: "DELETE", Path: "/p"}}
	require.Equal(t, "twilio: DELETE /p: 429 Too Many Requests (code 20429); retry after 3s", rl.Error())
	require.Equal(t, "twilio: rate limited; retry after 0s", (&RateLimitError{}).Error())
	require.NoError(t, (&RateLimitError{}).Unwrap())
}

// countingReader is an endless body that counts what was read from it.
type countingReader struct{ n int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	r.n += int64(len(p))
	return len(p), nil
}

func TestErrorBodyIsBounded(t *testing.T) {
	t.Parallel()
	body := &countingReader{}
	e := newError(&http.Response{StatusCode: 500, Header: http.Header{}, Body: io.NopCloser(body)}, "GET", "/p", func(s string) string { return s })
	require.Equal(t, 500, e.Status)
	require.LessOrEqual(t, body.n, int64(maxErrorBytes+4096), "read %d bytes of an endless error body", body.n)
}

func TestJSONBodyIsBounded(t *testing.T) {
	t.Parallel()
	body := &countingReader{}
	var v struct{}
	err := decodeJSON(body, 1<<20, &v)
	require.ErrorContains(t, err, "larger than the 1048576 byte limit")
	require.LessOrEqual(t, body.n, int64(1<<20+32<<10))
}

func TestHugeErrorBodyOverHTTP(t *testing.T) {
	t.Parallel()
	huge := `{"code": 21211, "message": "` + strings.Repeat("m", 10<<20) + `", "status": 400}`
	b := setup(t, newScript(t, step{uri: msgPath(testMessage), status: 400, body: huge}))

	_, err := b.client.Messages.Get(t.Context(), testMessage)
	var apiErr *Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 400, apiErr.Status)
	require.Less(t, len(err.Error()), 2048, "the error text stays short")
}

func TestLongErrorMessageIsCut(t *testing.T) {
	t.Parallel()
	e := &Error{}
	decodeErrorBody(e, []byte(`{"code": "20404", "message": "`+strings.Repeat("é", 1000)+`\u0000\n", "more_info": "javascript:alert(1)"}`), func(s string) string { return s })
	require.Equal(t, 20404, e.Code, "a numeric string code is read too")
	require.LessOrEqual(t, len(e.Message), 512+len("…"))
	require.True(t, strings.HasSuffix(e.Message, "…"))
	require.NotContains(t, e.Message, "\n")
	require.Empty(t, e.MoreInfo, "only http(s) links are kept")
}

func TestErrorBodyOfWrongShapeKeepsStatus(t *testing.T) {
	t.Parallel()
	for _, body := range []string{``, `null`, `[]`, `"x"`, `{"code": {}, "message": 5, "more_info": []}`, `<html>`, `{"code": 1e99}`} {
		e := &Error{Status: 400}
		decodeErrorBody(e, []byte(body), func(s string) string { return s })
		require.Equal(t, 400, e.Status)
		require.Zero(t, e.Code, body)
		require.Empty(t, e.Message, body)
	}
}

// A server that echoes the request back into its error message cannot put
// the credentials into our error.
func TestErrorRedactsEchoedCredentials(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t, step{uri: msgPath(testMessage), serve: func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = fmt.Fprintf(w, `{"code": 20003, "message": "bad header %s (token %s)", "more_info": "https://x.example/?t=%s"}`,
			r.Header.Get("Authorization"), testToken, testToken)
	}}))

	_, err := b.client.Messages.Get(t.Context(), testMessage)
	require.Error(t, err)
	encoded := base64.StdEncoding.EncodeToString([]byte(testAccount + ":" + testToken))
	require.NotContains(t, err.Error(), testToken)
	require.NotContains(t, err.Error(), encoded)
	require.Contains(t, err.Error(), redacted)
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestIsRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"429", &Error{Status: 429}, true},
		{"20429 on another status", &Error{Status: 400, Code: 20429}, true},
		{"rate limit error", &RateLimitError{Err: &Error{Status: 429}}, true},
		{"500", &Error{Status: 500}, true},
		{"503 wrapped", fmt.Errorf("archive: %w", &Error{Status: 503}), true},
		{"501", &Error{Status: 501}, false},
		{"404", &Error{Status: 404}, false},
		{"401", &Error{Status: 401}, false},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"EOF before response", fmt.Errorf("GET: %w", io.EOF), true},
		{"connection reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{"connection refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), true},
		{"net timeout", &net.OpError{Op: "read", Err: timeoutErr{}}, true},
		{"temporary DNS", &net.DNSError{IsTemporary: true}, true},
		{"no such host", &net.DNSError{IsNotFound: true}, false},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{"deadline joined", errors.Join(errors.New("a"), context.DeadlineExceeded), false},
		{"canceled while reading a body", fmt.Errorf("%w: %w", io.ErrUnexpectedEOF, context.Canceled), false},
		{"bad page URI", fmt.Errorf("%w: x", ErrInvalidPageURI), false},
		{"refused redirect", fmt.Errorf("%w: x", ErrRedirectRefused), false},
		{"other", errors.New("boom"), false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, IsRetryable(tt.err), tt.desc)
	}
}

func TestErrorHelpers(t *testing.T) {
	t.Parallel()
	nf := fmt.Errorf("delete media: %w", &Error{Status: 404, Code: 20404})
	require.True(t, IsNotFound(nf))
	require.Equal(t, 20404, ErrorCode(nf))
	require.True(t, IsNotFound(&Error{Status: 400, Code: 20404}))
	require.False(t, IsNotFound(&Error{Status: 410}))
	require.False(t, IsNotFound(errors.New("404")))

	require.True(t, IsGone(nf), "the API's 404 / 20404")
	require.False(t, IsGone(&Error{Status: 404}), "a 404 without Twilio's code")
	require.False(t, IsGone(&Error{Status: 404, Code: 20404, Storage: true}), "a signed-URL host's 404")
	require.False(t, IsGone(&Error{Status: 400, Code: 20404}))
	require.False(t, IsGone(errors.New("404")))
	require.Zero(t, ErrorCode(errors.New("x")))
	require.True(t, IsRateLimited(&Error{Status: 429}))
	require.False(t, IsRateLimited(&Error{Status: 503}))
	require.False(t, IsRateLimited(nil))
}
