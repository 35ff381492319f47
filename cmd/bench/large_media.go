package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"time"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// Large files. The emulator holds a message to Twilio's MMS limit of 5 MB,
// as Twilio does, and mediasync archives Messaging media; files of 50 MB
// and more exist on Twilio as Conversations media (up to 150 MB). So the
// large scenario generates Conversations media of the size wanted in the
// emulator, adds one message per file with a small placeholder media, and
// puts a proxy before the emulator's API that changes one thing: the
// Location of those placeholders' content redirect, which it points at the
// large media's signed URL (MCS links.content_direct_temporary) on the
// emulator. Every request still reaches the emulator and is counted there;
// the bytes are the emulator's; mediasync and the bare copy cannot tell.

// largeMedia is the large scenario's data and its proxy.
type largeMedia struct {
	proxyURL string
	server   *http.Server
}

// addLargeMedia adds n messages dated day whose media content is size
// bytes each, and starts the proxy that serves them.
func addLargeMedia(ctx context.Context, emu *emulator, n int, size int64, day time.Time) (*largeMedia, error) {
	large, err := largeSignedURLs(ctx, emu, n, size, day)
	if err != nil {
		return nil, err
	}
	target := map[string]string{} // placeholder media SID → signed URL of a large one
	for i, l := range large {
		// The placeholder is listed with the large media's type: mediasync
		// checks that the bytes served are plausibly the media listed.
		info, err := emu.addMessage(ctx, twiliotest.MessageOptions{
			DateSent: day.Add(time.Duration(i) * time.Minute),
			Body:     "large file",
			Media:    []twiliotest.MediaOptions{{ContentType: l.contentType, Size: 1024}},
		})
		if err != nil {
			return nil, err
		}
		target[info.MediaSIDs[0]] = l.url
	}

	api, err := url.Parse(emu.apiURL)
	if err != nil {
		return nil, err
	}
	content := regexp.MustCompile(`/Messages/[A-Z]{2}[0-9a-f]{32}/Media/(ME[0-9a-f]{32})$`)
	proxy := httputil.NewSingleHostReverseProxy(api)
	proxy.ModifyResponse = func(resp *http.Response) error {
		m := content.FindStringSubmatch(resp.Request.URL.Path)
		if m == nil || resp.StatusCode/100 != 3 {
			return nil
		}
		if u, ok := target[m[1]]; ok {
			resp.Header.Set("Location", u)
		}
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return &largeMedia{proxyURL: "http://" + l.Addr().String(), server: srv}, nil
}

func (lm *largeMedia) close() { _ = lm.server.Close() }

// largeFile is one large Conversations media: its signed URL and type.
type largeFile struct{ url, contentType string }

// largeSignedURLs generates Conversations media of size bytes until there
// are n, and returns their signed URLs and types.
func largeSignedURLs(ctx context.Context, emu *emulator, n int, size int64, day time.Time) ([]largeFile, error) {
	sum, err := emu.generate(ctx, twiliotest.Dataset{
		Start: day.Add(-24 * time.Hour), End: day,
		Conversations: n/15 + 2, ConversationMessages: 10, MaxConversationMedia: 3,
		LargeMediaSize: size, LargeMediaShare: 1,
	})
	if err != nil {
		return nil, err
	}
	if sum.ConversationMedia < n {
		return nil, fmt.Errorf("generated %d conversation media, want %d", sum.ConversationMedia, n)
	}

	type page struct {
		Conversations []struct {
			SID            string            `json:"sid"`
			ChatServiceSID string            `json:"chat_service_sid"`
			Links          map[string]string `json:"links"`
		} `json:"conversations"`
	}
	type messages struct {
		Messages []struct {
			Media []struct {
				SID  string `json:"sid"`
				Size int64  `json:"size"`
			} `json:"media"`
		} `json:"messages"`
	}
	type mcsMedia struct {
		ContentType string `json:"content_type"`
		Links       struct {
			Direct string `json:"content_direct_temporary"`
		} `json:"links"`
	}
	var convs page
	if err := emu.getJSON(ctx, "/v1/Conversations?PageSize=100", &convs); err != nil {
		return nil, err
	}
	var urls []largeFile
	for _, c := range convs.Conversations {
		var ms messages
		if err := emu.getJSON(ctx, c.Links["messages"]+"?PageSize=100", &ms); err != nil {
			return nil, err
		}
		for _, m := range ms.Messages {
			for _, md := range m.Media {
				if md.Size != size || len(urls) == n {
					continue
				}
				var mm mcsMedia
				if err := emu.getJSON(ctx, "/v1/Services/"+c.ChatServiceSID+"/Media/"+md.SID, &mm); err != nil {
					return nil, err
				}
				if mm.Links.Direct == "" {
					return nil, errors.New("MCS media without links.content_direct_temporary")
				}
				urls = append(urls, largeFile{url: mm.Links.Direct, contentType: mm.ContentType})
			}
		}
	}
	if len(urls) < n {
		return nil, fmt.Errorf("found %d large media, want %d", len(urls), n)
	}
	return urls, nil
}
