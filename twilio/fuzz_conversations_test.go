package twilio

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for the Conversations v1 and MCS decoders. Seeds are the
// OpenAPI document's examples and the MCS pages' shapes, here and in
// testdata/fuzz.

func FuzzDecodeConversationPage(f *testing.F) {
	media := `, "media": [{"sid": "MEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "size": 42056, "content_type": "image/jpeg", "filename": "car.jpg"}]`
	base := "https://conversations.twilio.com"
	for _, s := range []string{
		v1PageJSON("messages", []string{convMessageJSON(testConvMsg, 0, ""), convMessageJSON(testConvMsg, 1, media)}, base+messagesListPath(), ""),
		v1PageJSON("conversations", nil, base+"/v1/Conversations?PageSize=50&Page=0", base+"/v1/Conversations?PageSize=50&Page=1&PageToken=PT1"),
		`{"messages": null, "meta": null}`,
		`{"messages": [{"media": [{"Size": "12", "file_name": "a"}]}], "meta": {"key": "messages"}}`,
		`{"messages": [{"media": [{"size": -1}]}]}`,
		`{"messages": [{"index": 1e99, "date_created": "2016-03-24T20:38:21.5+02:00"}]}`,
		`{"meta": {"page_size": "x"}}`,
		`null`, `[]`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"messages": [{"body": "` + strings.Repeat("é", 3000) + `"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := pageLimits{body: 1 << 20, value: 16 << 10, items: 2, kept: 8 << 10}
		var meta Meta
		msgs, err := decodePage[ConversationMessage](bytes.NewReader(b), lim, "messages", &meta)
		if err == nil {
			if len(msgs) > lim.items {
				t.Fatalf("%d items past the limit of %d", len(msgs), lim.items)
			}
			for _, m := range msgs {
				if m.keptBytes() > lim.kept {
					t.Fatalf("item keeps %d bytes", m.keptBytes())
				}
				for _, md := range m.Media {
					if md.Size < -1 {
						t.Fatalf("size %d", md.Size)
					}
				}
				if !m.DateCreated.IsZero() && m.DateCreated.Location() != time.UTC {
					t.Fatalf("date not in UTC: %s", m.DateCreated.Time)
				}
			}
		} else if len(err.Error()) > 1024 {
			t.Fatalf("error text of %d bytes", len(err.Error()))
		}
		var cmeta Meta
		_, _ = decodePage[Conversation](bytes.NewReader(b), lim, "conversations", &cmeta)
	})
}

func FuzzMCSMedia(f *testing.F) {
	for _, s := range []string{
		mcsJSON("https://media.us1.twilio.com/ME?Expires=1&Signature=x&Key-Pair-Id=y", 42056),
		mcsJSON("", 0),
		`{"sid": "ME1", "size": "12", "filename": "a", "file_name": "b"}`,
		`{"size": null, "links": null}`, `{"size": 1.5}`, `{"size": "-3"}`, `{"size": true}`, `{"Size": 99999999999999999999}`,
		`{"date_created": "2024-01-02T03:04:05.000000+00:00"}`, `{"date_created": 5}`,
		`null`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m MCSMedia
		if err := json.Unmarshal(b, &m); err != nil {
			return
		}
		if m.Size < -1 {
			t.Fatalf("size %d", m.Size)
		}
		if !m.DateCreated.IsZero() && m.DateCreated.Location() != time.UTC {
			t.Fatalf("date not in UTC")
		}
		var md ConversationMedia
		if err := json.Unmarshal(b, &md); err == nil && md.Size < -1 {
			t.Fatalf("size %d", md.Size)
		}
		_ = urlExpired(m.Links.ContentDirectTemporary, time.Unix(0, 0))
	})
}

func FuzzISOTime(f *testing.F) {
	for _, s := range []string{`"2016-03-24T20:38:21Z"`, `"2024-01-02T03:04:05.000000+00:00"`, `"2015-12-16T22:18:37.123-07:00"`,
		`null`, `""`, `"2016-03-24"`, `"Fri, 17 Jul 2009 01:52:49 +0000"`, `5`, `"9999-12-31T23:59:59Z"`, `"2016-13-24T20:38:21Z"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v ISOTime
		if err := v.UnmarshalJSON(b); err != nil {
			if len(err.Error()) > 256 {
				t.Fatalf("error text of %d bytes", len(err.Error()))
			}
			return
		}
		if v.IsZero() {
			return
		}
		if v.Location() != time.UTC {
			t.Fatalf("not UTC: %s", v.Time)
		}
		out, err := v.MarshalJSON()
		if err != nil {
			return // a year past 9999 does not marshal
		}
		var back ISOTime
		if err := back.UnmarshalJSON(out); err != nil || !back.Equal(v.Time) {
			t.Fatalf("%s does not round-trip: %v", out, err)
		}
	})
}

func FuzzV1PageURL(f *testing.F) {
	base := "http://127.0.0.1:8080"
	for _, s := range []string{
		base + messagesListPath() + "?Order=desc&PageSize=50&Page=1&PageToken=PT15",
		messagesListPath() + "?PageSize=2",
		"https://conversations.twilio.com" + messagesListPath(),
		base + "/v1/Services/" + testService + "/Conversations/" + testConv + "/Messages/../Participants",
		base + "/v1/Services/" + testService + "/Conversations/" + testConv + "%2FMessages",
		base + "/v1/Services/IS1/Conversations/" + testConv + "/Messages",
		"//evil.example" + messagesListPath(), "http://u:p@127.0.0.1:8080" + messagesListPath(), "", "%",
	} {
		f.Add(s)
	}
	c, err := New(testAccount, WithAuthToken(testToken), WithConversationsURL(base))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, _, err := c.pageURI(&c.conversations, raw, c.ConversationMessages.isListPath)
		if err != nil {
			return
		}
		if u.Scheme != "http" || u.Host != "127.0.0.1:8080" || u.User != nil {
			t.Fatalf("%q resolved off the Conversations host: %s", raw, u)
		}
		if _, _, ok := listOf(u.EscapedPath()); !ok {
			t.Fatalf("%q resolved to a path that is no message list: %q", raw, u.EscapedPath())
		}
	})
}
