package twilio

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
)

// Fuzz targets for every parser of outside input. Each is seeded with the
// shapes of Twilio's OpenAPI examples and twilio-facts.md; `go test` runs
// the seeds, `go test -fuzz=FuzzX ./twilio/` explores further. (Time, Count
// and SIDs are fuzzed beside their tests.)

func FuzzDecodePage(f *testing.F) {
	next := messagesPath() + "?PageSize=2&Page=1&PageToken=PAMMc26223853f8c46b4ab7dfaa6abba0a26"
	for _, s := range []string{
		pageJSON("messages", []string{messageJSON(testMessage, `"3"`), messageJSON(sid("SM", 1), `null`)}, 0, 2, page0URI, next),
		pageJSON("media_list", []string{mediaJSON(testMessage, testMedia)}, 0, 50, mediaListPath(testMessage), ""),
		`{"messages": null, "next_page_uri": null}`,
		`{"messages": [{"num_media": 3, "date_sent": null}]}`,
		`{"messages": {"sid": 1}}`,
		`{"media_list": [{"date_created": "Fri, 17 Jul 2009 01:52:49 +0000", "sid": null}], "page": "0"}`,
		`{"page_size": 1e400}`,
		`null`, `[]`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"messages": [{}, {}, {}]}`))
	f.Add([]byte(`{"messages": [{"from": "` + strings.Repeat("1", 5000) + `"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := pageLimits{body: 1 << 20, value: 8 << 10, items: 2, kept: 1 << 10}
		var meta PageMeta
		msgs, err := decodePage[Message](bytes.NewReader(b), lim, "messages", &meta)
		if err == nil {
			if len(msgs) > lim.items {
				t.Fatalf("%d items past the limit of %d", len(msgs), lim.items)
			}
			for _, m := range msgs {
				if m.keptBytes() > lim.kept {
					t.Fatalf("item keeps %d bytes", m.keptBytes())
				}
				if m.NumMedia.N < 0 || !m.NumMedia.Known && m.NumMedia.N != 0 {
					t.Fatalf("bad count %+v", m.NumMedia)
				}
				if !m.DateSent.IsZero() && m.DateSent.Location() != time.UTC {
					t.Fatalf("date not in UTC: %s", m.DateSent.Time)
				}
			}
		} else if err.Error() == "" || len(err.Error()) > 1024 {
			t.Fatalf("error text of %d bytes", len(err.Error()))
		}
		_, _ = decodePage[Media](bytes.NewReader(b), lim, "media_list", &meta)
	})
}

func FuzzRequestedPageSize(f *testing.F) {
	for _, s := range []string{"", "PageSize=2", "DateSent%3E=2008-01-02&PageSize=1000&Page=1&PageToken=PAMMc26223853f8c46b4ab7dfaa6abba0a26",
		"PageSize=0", "PageSize=-1", "PageSize=1001", "PageSize=99999999999999999999", "PageSize=%zz", "PageSize=1&PageSize=5", ";"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if n := requestedPageSize(q, 0); n < 1 || n > maxPageSize {
			t.Fatalf("requestedPageSize(%q) = %d", q, n)
		}
	})
}

func FuzzErrorBody(f *testing.F) {
	for _, s := range []string{
		`{"code": 20404, "message": "The requested resource /2010-04-01/Accounts/AC/Messages/MM.json was not found", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}`,
		`{"code": 20003, "detail": "Your AccountSid or AuthToken was incorrect.", "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}`,
		`{"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}`,
		`{"code": "20404", "message": 5, "details": {"x": 1}}`,
		`{"message": "token ` + testToken + ` leaked\n\u0000"}`,
		`<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code></Error>`,
		`{"more_info": "javascript:alert(1)"}`,
		``, `null`,
	} {
		f.Add(uint16(404), []byte(s))
	}
	creds := newCredentials(testAccount, testToken)
	f.Fuzz(func(t *testing.T, status uint16, body []byte) {
		resp := &http.Response{StatusCode: int(status), Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}
		e := newError(resp, "GET", "/p", creds.redact)
		text := e.Error()
		if strings.Contains(text, testToken) {
			t.Fatalf("secret in error: %q", text)
		}
		if strings.IndexFunc(text, unicode.IsControl) >= 0 {
			t.Fatalf("control character in error: %q", text)
		}
		if len(text) > 2048 {
			t.Fatalf("error text of %d bytes", len(text))
		}
		if e.Code < 0 {
			t.Fatalf("negative code %d", e.Code)
		}
	})
}

func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2024, 5, 24, 17, 44, 46, 0, time.UTC)
	for _, s := range []string{"", "0", "5", "120", " 7 ", "-1", "1.5", "99999999999999999999999",
		"Fri, 24 May 2024 17:45:46 GMT", "Friday, 24-May-24 17:45:46 GMT", "Fri May 24 17:45:46 2024", "Fri, 31 Dec 9999 23:59:59 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %s", s, d)
		}
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %s without ok", s, d)
		}
	})
}

func FuzzPageURI(f *testing.F) {
	for _, s := range []string{
		page0URI, page1URI, page2URI,
		"/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages.json?To=%2B123456789&From=%2B987654321&DateSent%3E=2008-01-02&PageSize=2&Page=1&PageToken=PAMMc26223853f8c46b4ab7dfaa6abba0a26",
		"http://127.0.0.1:8080" + messagesPath() + "?Page=1",
		"https://evil.example" + messagesPath(), "//evil.example" + messagesPath(),
		messagesPath() + "/../x", "/2010-04-01/Accounts/" + testAccount + "/Messages%2Ejson",
		"http://u:p@127.0.0.1:8080" + messagesPath(), messagesPath() + "#frag", messagesPath() + "?a=b c",
		"", "%", "javascript:x",
	} {
		f.Add(s)
	}
	c, err := New(testAccount, WithAuthToken(testToken), WithBaseURL("http://127.0.0.1:8080"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, rel, err := c.pageURI(&c.api, raw, c.Messages.isListPath)
		if err != nil {
			return
		}
		if u.Scheme != "http" || u.Host != "127.0.0.1:8080" || u.User != nil {
			t.Fatalf("%q resolved off the API host: %s", raw, u)
		}
		if u.Path != messagesPath() || u.EscapedPath() != messagesPath() {
			t.Fatalf("%q resolved to another path: %q", raw, u.EscapedPath())
		}
		if strings.ContainsAny(u.RequestURI(), " \r\n\t") {
			t.Fatalf("%q gives request URI %q", raw, u.RequestURI())
		}
		if !strings.HasPrefix(rel, messagesPath()) || !strings.HasSuffix(raw, strings.TrimPrefix(rel, messagesPath())) && !strings.Contains(raw, "#") {
			t.Fatalf("%q normalised to %q", raw, rel)
		}
		back, err := url.Parse(u.String())
		if err != nil || back.RawQuery != u.RawQuery {
			t.Fatalf("%q: query changed in transit: %q vs %q", raw, back.RawQuery, u.RawQuery)
		}
	})
}

func FuzzRedirectTarget(f *testing.F) {
	for _, s := range []string{
		"https://mms.twiliocdn.com/AC/abc?Expires=1&Signature=x&Key-Pair-Id=y", "/relative?x", "http://mms.twiliocdn.com/x",
		"https://127.0.0.1/x", "https://[::ffff:10.0.0.1]/x", "https://localhost./x", "https://u:p@cdn.example.com/x",
		"ftp://x/y", "https://0x7f.0.0.1/x", "https://2130706433/x", "https://intranet/x", "", "https://[fe80::1%25eth0]/x",
	} {
		f.Add(s)
	}
	c, err := New(testAccount, WithAuthToken(testToken))
	if err != nil {
		f.Fatal(err)
	}
	c.lookupHost = func(context.Context, string) ([]netip.Addr, error) { return nil, context.DeadlineExceeded }
	from, _ := url.Parse("https://api.twilio.com/2010-04-01/Accounts/" + testAccount + "/Messages/" + testMessage + "/Media/" + testMedia)
	f.Fuzz(func(t *testing.T, location string) {
		next, err := c.redirectTarget(t.Context(), &c.api, from, location)
		if err != nil {
			return
		}
		if next.Scheme != "https" || next.User != nil || next.Hostname() == "" {
			t.Fatalf("%q accepted as %s", location, next)
		}
		if isLocalHost(next.Hostname()) {
			t.Fatalf("%q accepted a local host %q", location, next.Hostname())
		}
		if a, err := netip.ParseAddr(next.Hostname()); err == nil && !publicAddr(a) {
			t.Fatalf("%q accepted a private address", location)
		}
	})
}
