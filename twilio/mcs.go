package twilio

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The Media Content Service (MCS) holds Conversations media on its own
// host (https://mcs.us1.twilio.com/v1). No Twilio SDK and no OpenAPI
// document covers it; what the client does follows the MCS pages and
// twilio-facts.md.

// maxMCSResourceBytes bounds the JSON of one Media resource: a few
// hundred bytes plus a signed URL.
const maxMCSResourceBytes = 64 << 10

// maxMCSRefetches bounds how often one download fetches the Media resource
// again for a fresh links.content_direct_temporary before it falls back to
// links.content with credentials.
const maxMCSRefetches = 2

// ErrContentUnavailable marks a Media resource that stands while its
// content cannot be had: links.content answers 404 / 20404. It is not
// IsGone: the media, and its message, still exist.
var ErrContentUnavailable = errors.New("twilio: media content unavailable")

// ErrSizeMismatch marks a file whose size disagrees with the size Twilio
// records for it: a download whose Content-Length is not the Media
// resource's size, or an upload Twilio stored with another size than was
// sent.
var ErrSizeMismatch = errors.New("twilio: size mismatch")

// MCSLinks are a Media resource's links to its content.
type MCSLinks struct {
	// Content is the content URL, relative to the MCS host
	// (/v1/Services/IS…/Media/ME…/Content). It needs credentials and
	// redirects to a signed URL.
	Content string `json:"content"`
	// ContentDirectTemporary is an absolute signed URL of the content,
	// fetched without credentials; its lifetime is undocumented (see its
	// Expires query). "" when Twilio sent null.
	ContentDirectTemporary string `json:"content_direct_temporary"`
}

// MCSMedia is a Media resource of the Media Content Service: one
// Conversations media file.
type MCSMedia struct {
	SID        string `json:"sid"`
	AccountSID string `json:"account_sid"`
	ServiceSID string `json:"service_sid"`
	// ChannelSID is the conversation (CH…) and MessageSID the conversation
	// message (IM…) the media was added to; "" for an upload not attached
	// to a message yet.
	ChannelSID        string  `json:"channel_sid"`
	MessageSID        string  `json:"message_sid"`
	DateCreated       ISOTime `json:"date_created"`
	DateUpdated       ISOTime `json:"date_updated"`
	DateUploadUpdated ISOTime `json:"date_upload_updated"`
	// Size is the file's size in bytes, -1 when Twilio sent none.
	Size        int64    `json:"size"`
	ContentType string   `json:"content_type"`
	Filename    string   `json:"filename"`
	Author      string   `json:"author"`
	Category    string   `json:"category"`
	URL         string   `json:"url"`
	Links       MCSLinks `json:"links"`
}

// UnmarshalJSON accepts both spellings of the MCS pages: filename (what
// Twilio's own client reads) or file_name (the founding pages), and size
// or Size (the older Programmable Chat page; JSON names match
// case-insensitively, Links too), the size as a number or a numeric
// string.
func (m *MCSMedia) UnmarshalJSON(b []byte) error {
	type plain MCSMedia
	var w struct {
		plain
		Size     json.RawMessage `json:"size"`
		FileName string          `json:"file_name"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*m = MCSMedia(w.plain)
	if m.Filename == "" {
		m.Filename = w.FileName
	}
	var err error
	m.Size, err = decodeSize(w.Size)
	return err
}

// decodeSize reads a byte count sent as a number or a numeric string; an
// absent or null size is -1.
func decodeSize(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return -1, nil
	}
	digits := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &digits); err != nil {
			return 0, fmt.Errorf("twilio: size: %w", err)
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("twilio: size %s is not a whole number of bytes", quoteInput(digits))
	}
	return n, nil
}

// MCSContent is a Conversations media file as it streams, with the Media
// resource it was reached through. The caller must close Body.
type MCSContent struct {
	Content
	// Media is the resource as fetched last.
	Media *MCSMedia
	// Direct is true when the bytes came through
	// links.content_direct_temporary (no credentials), false when through
	// links.content.
	Direct bool
	// Refetches is how often the resource was fetched again for a fresh
	// temporary URL.
	Refetches int
}

// MCSService handles the Media resource of the Media Content Service:
// /v1/Services/{ChatServiceSid}/Media on the MCS host.
type MCSService service

func (s *MCSService) mediaPath(serviceSID, sid string) string {
	return "/v1/Services/" + serviceSID + "/Media/" + sid
}

func checkMCSSIDs(method, serviceSID, sid string) error {
	if err := CheckServiceSID(serviceSID); err != nil {
		return fmt.Errorf("twilio: MCS.%s: %w", method, err)
	}
	if err := CheckMediaSID(sid); err != nil {
		return fmt.Errorf("twilio: MCS.%s: %w", method, err)
	}
	return nil
}

// check validates a Media resource read for serviceSID.
func (m *MCSMedia) check(serviceSID string) error {
	if err := CheckMediaSID(m.SID); err != nil {
		return err
	}
	switch m.ServiceSID {
	case "":
		m.ServiceSID = serviceSID
	case serviceSID:
	default:
		return fmt.Errorf("media %s: service_sid is %s, want %s", m.SID, quoteInput(m.ServiceSID), serviceSID)
	}
	if m.ChannelSID != "" && !ValidConversationSID(m.ChannelSID) {
		return fmt.Errorf("media %s: channel_sid %s is %w", m.SID, quoteInput(m.ChannelSID), ErrInvalidSID)
	}
	if m.MessageSID != "" && !ValidConversationMessageSID(m.MessageSID) {
		return fmt.Errorf("media %s: message_sid %s is %w", m.SID, quoteInput(m.MessageSID), ErrInvalidSID)
	}
	return nil
}

// Get fetches a Media resource: its size, type, filename and links. A
// media that does not exist, or whose message was deleted, gives an *Error
// for which IsGone is true.
//
// Twilio API docs: https://www.twilio.com/docs/conversations/api/media-resource#retrieve-a-media-resource
//
//twilio:operation GET /v1/Services/{ChatServiceSid}/Media/{Sid} not-in-openapi
func (s *MCSService) Get(ctx context.Context, serviceSID, sid string) (*MCSMedia, error) {
	if err := checkMCSSIDs("Get", serviceSID, sid); err != nil {
		return nil, err
	}
	c := s.client
	path := s.mediaPath(serviceSID, sid)
	m, err := getJSONFrom[MCSMedia](ctx, c, &c.mcs, c.mcs.url(path, ""), maxMCSResourceBytes)
	if err != nil {
		return nil, err
	}
	if err := m.check(serviceSID); err != nil {
		return nil, fmt.Errorf("twilio: GET %s: %w", path, err)
	}
	if m.SID != sid {
		return nil, fmt.Errorf("twilio: GET %s: the answer is media %s", path, m.SID)
	}
	return m, nil
}

// Open fetches a Media resource and streams its file (see OpenMedia).
//
// Twilio API docs: https://www.twilio.com/docs/conversations/api/media-resource#retrieve-a-media-resource
//
//twilio:operation GET /v1/Services/{ChatServiceSid}/Media/{Sid} not-in-openapi
//twilio:operation GET /v1/Services/{ChatServiceSid}/Media/{Sid}/Content not-in-openapi
func (s *MCSService) Open(ctx context.Context, serviceSID, sid string) (*MCSContent, error) {
	m, err := s.Get(ctx, serviceSID, sid)
	if err != nil {
		return nil, err
	}
	return s.open(ctx, m, true)
}

// OpenMedia streams the file of a Media resource the caller holds (from
// Get). It downloads through links.content_direct_temporary with no
// credentials; when that URL has expired (its Expires has passed) or
// answers 4xx, it fetches the resource again for a fresh one, at most
// twice, and then falls back to links.content, which carries credentials
// to the MCS host only and is followed to its signed URL without them.
//
// The body is checked against the resource's size as it streams: a
// Content-Length that disagrees is refused at once (ErrSizeMismatch), and
// a body cut short fails with io.ErrUnexpectedEOF. A media that is gone
// gives IsGone on the resource fetch; a 4xx from a signed URL alone never
// does (Error.Storage), nor does content missing while the resource
// stands (ErrContentUnavailable).
//
// Twilio API docs: https://www.twilio.com/docs/conversations/api/media-resource#retrieve-a-media-resource
//
//twilio:operation GET /v1/Services/{ChatServiceSid}/Media/{Sid} not-in-openapi
//twilio:operation GET /v1/Services/{ChatServiceSid}/Media/{Sid}/Content not-in-openapi
func (s *MCSService) OpenMedia(ctx context.Context, m *MCSMedia) (*MCSContent, error) {
	if m == nil {
		return nil, errors.New("twilio: MCS.OpenMedia: media is nil")
	}
	if err := checkMCSSIDs("OpenMedia", m.ServiceSID, m.SID); err != nil {
		return nil, err
	}
	return s.open(ctx, m, false)
}

// open downloads m's file. fresh says m was fetched within this call, so
// its temporary URL is tried whatever its Expires says (the clocks of
// Twilio and of this machine may disagree).
func (s *MCSService) open(ctx context.Context, m *MCSMedia, fresh bool) (*MCSContent, error) {
	c := s.client
	svc, sid := m.ServiceSID, m.SID
	refetches := 0
	refetch := func() error {
		next, err := s.Get(ctx, svc, sid)
		if err != nil {
			return err
		}
		m, fresh = next, true
		refetches++
		return nil
	}
	for m.Links.ContentDirectTemporary != "" {
		direct := m.Links.ContentDirectTemporary
		if !fresh && urlExpired(direct, c.clock.Now()) {
			if refetches == maxMCSRefetches {
				break
			}
			if err := refetch(); err != nil {
				return nil, err
			}
			continue
		}
		from := c.mcs.url(s.mediaPath(svc, sid), "")
		u, err := c.redirectTarget(ctx, &c.mcs, from, direct)
		if err != nil {
			break // a URL the client will not follow: use links.content
		}
		resp, path, err := c.openContent(ctx, nil, &c.mcs, u)
		if err == nil {
			return s.content(resp, path, m, true, refetches)
		}
		if !signedURLRefused(err) {
			return nil, err
		}
		if refetches == maxMCSRefetches {
			break
		}
		if err := refetch(); err != nil {
			return nil, err
		}
	}

	want := s.mediaPath(svc, sid) + "/Content"
	link := cmp.Or(m.Links.Content, want)
	u, err := url.Parse(link)
	if err != nil || u.Path != want || u.RawQuery != "" || (u.Host != "" && !strings.EqualFold(u.Host, c.mcs.base.Host)) {
		return nil, fmt.Errorf("twilio: MCS.Open %s: links.content %s is not this media's content on the MCS host", sid, describeURI(link))
	}
	resp, path, err := c.openContent(ctx, &c.mcs, &c.mcs, c.mcs.url(want, ""))
	if IsGone(err) {
		// The content is missing; the media may not be. Only the resource
		// can say which, and a caller must not take lost content for a
		// deleted message.
		if _, gerr := s.Get(ctx, svc, sid); gerr != nil {
			return nil, gerr
		}
		return nil, fmt.Errorf("twilio: MCS.Open %s: %w: the Media resource stands but links.content answers 404", sid, ErrContentUnavailable)
	}
	if err != nil {
		return nil, err
	}
	return s.content(resp, path, m, false, refetches)
}

// content checks a download's length against the resource's size and
// wraps its body.
func (s *MCSService) content(resp *http.Response, path string, m *MCSMedia, direct bool, refetches int) (*MCSContent, error) {
	if m.Size >= 0 && resp.ContentLength >= 0 && resp.ContentLength != m.Size {
		drainAndClose(resp.Body)
		return nil, fmt.Errorf("twilio: GET %s: %w: Content-Length is %d, the media's size %d", path, ErrSizeMismatch, resp.ContentLength, m.Size)
	}
	return &MCSContent{Content: *newContent(resp, path, m.Size), Media: m, Direct: direct, Refetches: refetches}, nil
}

// signedURLRefused reports whether err is a signed URL's 4xx (expired,
// forged, gone from the CDN) but 429, which only says to slow down.
func signedURLRefused(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Storage && e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests
}

// urlExpired reports whether a signed URL's Expires (unix seconds) has
// passed; a URL without one is taken as valid.
func urlExpired(raw string, now time.Time) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	exp, err := strconv.ParseInt(u.Query().Get("Expires"), 10, 64)
	return err == nil && now.Unix() >= exp
}

// MCSUploadParams describe a file to upload.
type MCSUploadParams struct {
	// ContentType is the file's MIME type, sent as the request's
	// Content-Type. Required; multipart types are refused, since MCS
	// would read the body as a form.
	ContentType string
	// Filename is the file's name, sent as the Filename query parameter
	// (as Twilio's own MCS client sends it). Optional.
	Filename string
	// Body streams the file; it is never buffered whole.
	Body io.Reader
	// Size is Body's exact length in bytes, sent as Content-Length (and as
	// the Content-Size header the MCS page documents).
	Size int64
	// GetBody, when set, opens the file anew so that an attempt that
	// failed after sending part of the body can be retried. Without it
	// only an attempt refused before the body was read (a 429) is retried.
	GetBody func() (io.ReadCloser, error)
}

func (p MCSUploadParams) validate() error {
	switch {
	case p.Body == nil:
		return errors.New("twilio: MCS.Upload: Body is nil")
	case p.Size < 0:
		return fmt.Errorf("twilio: MCS.Upload: Size is %d: must be the body's length in bytes", p.Size)
	case len(p.Filename) > 255 || strings.IndexFunc(p.Filename, unicode.IsControl) >= 0:
		return fmt.Errorf("twilio: MCS.Upload: Filename %s: at most 255 bytes, no control characters", quoteInput(p.Filename))
	}
	mediaType, _, err := mime.ParseMediaType(p.ContentType)
	switch {
	case p.ContentType == "":
		return errors.New("twilio: MCS.Upload: ContentType is empty: give the file's MIME type")
	case err != nil:
		return fmt.Errorf("twilio: MCS.Upload: ContentType %s is not a MIME type", quoteInput(p.ContentType))
	case strings.HasPrefix(mediaType, "multipart/"):
		return fmt.Errorf("twilio: MCS.Upload: ContentType %s: MCS reads a multipart body as a form, not as the file", quoteInput(mediaType))
	}
	return nil
}

// Upload creates a Media resource in a Conversations service from a file
// sent as the raw request body, with its Content-Type, Content-Length and
// Filename, and returns the new resource (Twilio answers 201). The body
// streams; it is never held whole. When Twilio records another size than
// was sent, Upload returns the new resource together with an error
// wrapping ErrSizeMismatch. A retried upload whose first attempt reached
// Twilio (a 5xx after the body was sent) may leave a second, unattached
// Media behind.
//
// Twilio API docs: https://www.twilio.com/docs/conversations/api/media-resource#createupload-a-new-media-resource
//
//twilio:operation POST /v1/Services/{ChatServiceSid}/Media not-in-openapi
func (s *MCSService) Upload(ctx context.Context, serviceSID string, p MCSUploadParams) (*MCSMedia, error) {
	if err := CheckServiceSID(serviceSID); err != nil {
		return nil, fmt.Errorf("twilio: MCS.Upload: %w", err)
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	c := s.client
	path := "/v1/Services/" + serviceSID + "/Media"
	var q queryBuilder
	q.add("Filename", p.Filename)
	var out *MCSMedia
	_, err := c.do(ctx, &request{
		method: http.MethodPost,
		url:    c.mcs.url(path, q.String()),
		host:   &c.mcs,
		accept: "application/json",
		body: &requestBody{size: p.Size, contentType: p.ContentType, r: p.Body, getBody: p.GetBody,
			header: map[string]string{"Content-Size": strconv.FormatInt(p.Size, 10)}},
		read: func(resp *http.Response) error {
			if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
				return fmt.Errorf("unexpected status %d for an upload (want 201)", resp.StatusCode)
			}
			m := new(MCSMedia)
			if err := decodeJSON(resp.Body, maxMCSResourceBytes, m); err != nil {
				return err
			}
			out = m
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	if err := out.check(serviceSID); err != nil {
		return nil, fmt.Errorf("twilio: POST %s: %w", path, err)
	}
	if out.Size >= 0 && out.Size != p.Size {
		return out, fmt.Errorf("twilio: POST %s: %w: sent %d bytes, media %s holds %d", path, ErrSizeMismatch, p.Size, out.SID, out.Size)
	}
	return out, nil
}
