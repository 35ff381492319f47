package twilio

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func mcsPath() string { return "/v1/Services/" + testService + "/Media/" + testMedia }

// mcsJSON is a Media resource as the older Chat page spells it (file_name,
// Size), with a direct link of the given expiry.
func mcsJSON(direct string, size int) string {
	d := "null"
	if direct != "" {
		d = strconv.Quote(direct)
	}
	return fmt.Sprintf(`{"sid": %q, "account_sid": %q, "service_sid": %q, "channel_sid": null, "message_sid": null,
 "date_created": "2024-01-02T03:04:05.000000+00:00", "date_upload_updated": "2024-01-02T03:04:05.123456+00:00",
 "date_updated": "2024-01-02T03:04:05.000000+00:00", "Size": %d, "content_type": "image/png", "file_name": "old.png",
 "author": "sender", "category": "media", "is_multipart_upstream": false, "url": "x",
 "Links": {"content": "/v1/Services/%s/Media/%s/Content", "content_direct_temporary": %s}}`,
		testMedia, testAccount, testService, size, testService, testMedia, d)
}

func TestMCSGetAcceptsBothSpellings(t *testing.T) {
	t.Parallel()
	s := newScript(t, step{uri: mcsPath(), body: mcsJSON("", 12)})
	b, _ := setupV1(t, s)
	m, err := b.client.MCS.Get(t.Context(), testService, testMedia)
	require.NoError(t, err)
	require.Equal(t, "old.png", m.Filename)
	require.Equal(t, int64(12), m.Size)
	require.Equal(t, "/v1/Services/"+testService+"/Media/"+testMedia+"/Content", m.Links.Content)
	require.Empty(t, m.Links.ContentDirectTemporary)
	require.Equal(t, 123456000, m.DateUploadUpdated.Nanosecond())
}

func TestMCSOpenHandlesTheDirectURL(t *testing.T) {
	t.Parallel()
	const file = "0123456789ab"
	for _, tc := range []struct {
		desc          string
		cdn           []int // statuses the direct URL answers, in turn
		size          int   // the resource's size
		wantErr       error
		wantRefetches int
		wantDirect    bool
	}{
		{"served at once", []int{200}, len(file), nil, 0, true},
		{"403 then fresh URL", []int{403, 200}, len(file), nil, 1, true},
		{"404 from the CDN is not gone", []int{404, 404, 200}, len(file), nil, 2, true},
		{"5xx retried by the retry policy", []int{503, 200}, len(file), nil, 0, true},
		{"every URL refused: links.content", []int{403, 403, 403}, len(file), nil, 2, false},
		{"Content-Length disagrees with size", []int{200}, 99, ErrSizeMismatch, 0, true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			_, cdn := storageHost(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/signed" { // where links.content redirects
					serveFile(file, "image/png", "old.png")(w, r)
					return
				}
				n := int(hits.Add(1)) - 1
				if n >= len(tc.cdn) || tc.cdn[n] != 200 {
					status := http.StatusForbidden
					if n < len(tc.cdn) {
						status = tc.cdn[n]
					}
					w.WriteHeader(status)
					_, _ = io.WriteString(w, "<Error><Code>AccessDenied</Code></Error>")
					return
				}
				serveFile(file, "image/png", "old.png")(w, r)
			})
			direct := cdn + "/" + testMedia + "?Expires=4102444800&Signature=SECRETSIG&Key-Pair-Id=K"
			steps := []step{{uri: mcsPath(), body: mcsJSON(direct, tc.size)}}
			for range tc.wantRefetches {
				steps = append(steps, step{uri: mcsPath(), body: mcsJSON(direct, tc.size)})
			}
			if !tc.wantDirect {
				steps = append(steps, step{uri: mcsPath() + "/Content", status: http.StatusFound, body: redirectXML,
					header: map[string]string{"Location": cdn + "/signed?Signature=SECRETSIG"}})
			}
			s := newScript(t, steps...)
			b, _ := setupV1(t, s)
			content, err := b.client.MCS.Open(t.Context(), testService, testMedia)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.NotContains(t, err.Error(), "SECRETSIG")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantDirect, content.Direct)
			require.Equal(t, tc.wantRefetches, content.Refetches)
			data, err := io.ReadAll(content.Body)
			require.NoError(t, err)
			require.NoError(t, content.Body.Close())
			require.Equal(t, file, string(data))
		})
	}
}

func TestMCSOpenRefusesLinksContentElsewhere(t *testing.T) {
	t.Parallel()
	body := strings.Replace(mcsJSON("", 1), `"content": "/v1/Services/`+testService+`/Media/`+testMedia+`/Content"`,
		`"content": "https://evil.example/steal"`, 1)
	s := newScript(t, step{uri: mcsPath(), body: body})
	b, _ := setupV1(t, s)
	_, err := b.client.MCS.Open(t.Context(), testService, testMedia)
	require.ErrorContains(t, err, "not this media's content on the MCS host")
}

// uploadServer answers each upload attempt with the next status, after
// reading the whole body when read is set, and records what it got.
type uploadServer struct {
	t        *testing.T
	statuses []int
	read     bool
	n        atomic.Int32
	bodies   []string
	lengths  []int64
	lose     int // bytes the recorded size falls short of the body
}

func (u *uploadServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int(u.n.Add(1)) - 1
	if r.Method != http.MethodPost || r.URL.Path != "/v1/Services/"+testService+"/Media" {
		u.t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
	}
	if r.Header.Get("Authorization") != testAuthHeader {
		u.t.Errorf("upload without the account's credentials")
	}
	if r.Header.Get("Content-Size") != strconv.FormatInt(r.ContentLength, 10) {
		u.t.Errorf("Content-Size %q, Content-Length %d", r.Header.Get("Content-Size"), r.ContentLength)
	}
	status := u.statuses[min(i, len(u.statuses)-1)]
	if u.read || status == http.StatusCreated {
		data, _ := io.ReadAll(r.Body)
		u.bodies = append(u.bodies, string(data))
		u.lengths = append(u.lengths, r.ContentLength)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status == http.StatusCreated {
		_, _ = io.WriteString(w, strings.Replace(mcsJSON("", len(u.bodies[len(u.bodies)-1])-u.lose), `"file_name": "old.png"`, `"filename": "new.png"`, 1))
		return
	}
	_, _ = fmt.Fprintf(w, `{"code": %d, "message": "echo %s", "status": %d}`, 20000+status, testToken, status)
}

func TestMCSUploadRetries(t *testing.T) {
	t.Parallel()
	const file = "the file's bytes"
	t.Run("with GetBody every failure is retried", func(t *testing.T) {
		t.Parallel()
		u := &uploadServer{t: t, statuses: []int{429, 503, 201}, read: true}
		b, _ := setupV1(t, u)
		opened := 0
		m, err := b.client.MCS.Upload(t.Context(), testService, MCSUploadParams{ContentType: "image/png", Filename: "new.png",
			Body: strings.NewReader(file), Size: int64(len(file)),
			GetBody: func() (io.ReadCloser, error) { opened++; return io.NopCloser(strings.NewReader(file)), nil }})
		require.NoError(t, err)
		require.Equal(t, "new.png", m.Filename)
		require.Equal(t, 2, opened)
		require.Equal(t, []string{file, file, file}, u.bodies, "each attempt sent the whole file")
		acquired, inFlight := b.limiter.held()
		require.Equal(t, 3, acquired)
		require.Zero(t, inFlight)
	})
	t.Run("without GetBody a body once read is not sent again", func(t *testing.T) {
		t.Parallel()
		u := &uploadServer{t: t, statuses: []int{503, 201}, read: true}
		b, _ := setupV1(t, u)
		_, err := b.client.MCS.Upload(t.Context(), testService, MCSUploadParams{ContentType: "image/png",
			Body: strings.NewReader(file), Size: int64(len(file))})
		require.ErrorContains(t, err, "not retried")
		var e *Error
		require.True(t, errors.As(err, &e))
		require.Equal(t, http.StatusServiceUnavailable, e.Status)
		require.NotContains(t, err.Error(), testToken, "the echoed secret is redacted")
		require.Equal(t, int32(1), u.n.Load())
	})
	t.Run("a size Twilio records otherwise", func(t *testing.T) {
		t.Parallel()
		u := &uploadServer{t: t, statuses: []int{201}, lose: 3}
		b, _ := setupV1(t, u)
		m, err := b.client.MCS.Upload(t.Context(), testService, MCSUploadParams{ContentType: "image/png",
			Body: strings.NewReader(file), Size: int64(len(file))})
		require.ErrorIs(t, err, ErrSizeMismatch)
		require.NotNil(t, m, "the new resource comes with the error, so the caller can record it")
		require.Equal(t, int64(len(file)-3), m.Size)
	})
}
