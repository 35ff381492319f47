package twiliotest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Fuzz tests of the emulator's parsers of incoming parameters. Seeds are the
// forms Twilio's documents and OpenAPI examples use, plus near misses.

func FuzzParseFilterDate(f *testing.F) {
	for _, s := range []string{
		"2008-01-02", "2019-06-11", "06/11/2019 22:05:25 MST", "2019-06-11 22:05:25.000", "2019-06-11 22:05:25",
		"Wed, 19 Jun 2019 22:04:00 -0000", "Fri, 17 Jul 2009 01:52:49 +0000", "2024-01-02T00:00:00Z",
		"2024-01-02T10:00:00.123456789+02:00", "2024-01-02T10:00:00 02:00", "2024-02-30", "13/01/2019 00:00:00 PST",
		"", " ", "0000-00-00", "06/11/2019 22:05:25 XYZ", "Wed, 19 Jun 2019",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tm, dateOnly, err := parseFilterDate(v)
		if err != nil {
			return
		}
		if tm.Location() != time.UTC {
			t.Fatalf("%q parsed to %v, not in UTC", v, tm)
		}
		if dateOnly && (tm.Hour() != 0 || tm.Minute() != 0 || tm.Second() != 0) {
			t.Fatalf("%q is a bare date but parsed to %v", v, tm)
		}
		// Whatever parses, its RFC 3339 form parses to the same instant.
		again, _, err := parseFilterDate(tm.Format(time.RFC3339Nano))
		if tm.Year() >= 0 && tm.Year() <= 9999 && (err != nil || !again.Equal(tm)) {
			t.Fatalf("%q → %v → %v, %v", v, tm, again, err)
		}
		for _, op := range []byte{'=', '<', '>'} {
			r := dateFilter(op, tm, dateOnly)
			if r.from > r.to {
				t.Fatalf("%q with %c is the empty range %+v", v, op, r)
			}
		}
	})
}

func FuzzParsePageToken(f *testing.F) {
	for _, s := range []string{
		"PAMMc26223853f8c46b4ab7dfaa6abba0a26", "PBSMded05904ccb347238880ca9264e8fe1c", "PT15", "PTCH" + strings.Repeat("a", 32),
		"PA", "", "PAMM", "PA" + strings.Repeat("z", 34), "XXMMc26223853f8c46b4ab7dfaa6abba0a26",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, p := range []tokenPrefixes{tokens2010, tokensV1} {
			before, sid, ok := parsePageToken(v, p)
			if !ok {
				continue
			}
			prefix := p.after
			if before {
				prefix = p.before
			}
			if prefix+sid != v || len(sid) != 34 {
				t.Fatalf("%q split into %q and %q", v, prefix, sid)
			}
		}
	})
}

func FuzzDecodeSID(f *testing.F) {
	c := newSIDCodec(1)
	f.Add("ME"+c.encode(kindMedia, 7), uint32(7))
	f.Add("MM"+c.encode(kindMessage, 0), uint32(0))
	f.Add("ME"+strings.Repeat("0", 32), uint32(1))
	f.Add("not a sid", uint32(2))
	f.Fuzz(func(t *testing.T, s string, idx uint32) {
		if i, _, ok, err := c.parseSID("Sid", s, kindMedia, "ME"); err == nil && ok {
			if c.sid("ME", kindMedia, i) != "ME"+strings.ToLower(s[2:]) {
				t.Fatalf("%q decoded to %d, which encodes differently", s, i)
			}
		}
		sid := c.sid("ME", kindMedia, idx)
		if got, _, ok, err := c.parseSID("Sid", sid, kindMedia, "ME"); err != nil || !ok || got != idx {
			t.Fatalf("round trip of %d: %d %v %v", idx, got, ok, err)
		}
	})
}

// FuzzMessagesListQuery sends arbitrary filter and paging values to the
// message list: the answer is a page or Twilio's 400, never anything else.
func FuzzMessagesListQuery(f *testing.F) {
	f.Add("2008-01-02", "", "50", "0", "", "+15005550006")
	f.Add("", "Wed, 19 Jun 2019 22:04:00 -0000", "1", "3", "PAMMc26223853f8c46b4ab7dfaa6abba0a26", "")
	f.Add("06/11/2019 22:05:25 MST", "2100-01-01", "1000", "-1", "PB", "x")
	f.Add("", "", "1001", "a", "PA"+strings.Repeat("0", 34), "")

	s, err := NewServer(Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	acct, err := s.AddAccount(AccountOptions{})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := s.Generate(acct.SID, Dataset{Messages: 30, MaxMediaSize: 1024, Customers: 2}); err != nil {
		f.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}

	f.Fuzz(func(t *testing.T, after, before, pageSize, page, token, from string) {
		q := url.Values{}
		for k, v := range map[string]string{"DateSent>": after, "DateSent<": before, "PageSize": pageSize, "Page": page, "PageToken": token, "From": from} {
			if v != "" {
				q.Set(k, v)
			}
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+"/2010-04-01/Accounts/"+acct.SID+"/Messages.json?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(acct.SID, acct.AuthToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			var page struct {
				Messages []json.RawMessage `json:"messages"`
				PageSize int               `json:"page_size"`
			}
			if err := json.Unmarshal(body, &page); err != nil || len(page.Messages) > page.PageSize {
				t.Fatalf("bad page %s: %v", body, err)
			}
		case http.StatusBadRequest:
			var e twilioError
			if err := json.Unmarshal(body, &e); err != nil || e.Code != codeInvalidParameter || e.Status != 400 {
				t.Fatalf("bad error body %s: %v", body, err)
			}
		default:
			t.Fatalf("status %d for %s: %s", resp.StatusCode, q.Encode(), body)
		}
	})
}
