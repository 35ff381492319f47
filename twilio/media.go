package twilio

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"strings"
	"time"
)

// Media is a Media subresource: one file attached to a message. Twilio's
// resource has no size; the size is only known from the content download
// (Content.Size).
type Media struct {
	SID         string `json:"sid"`
	AccountSID  string `json:"account_sid"`
	ParentSID   string `json:"parent_sid"` // the message
	ContentType string `json:"content_type"`
	DateCreated Time   `json:"date_created"`
	DateUpdated Time   `json:"date_updated"`
	URI         string `json:"uri"` // the .json resource, relative to the API host
}

// MediaPage is one page of a message's media list.
type MediaPage struct {
	PageMeta
	Media []Media `json:"media_list"`
}

// MediaListParams filters a media list. Zero values are unset.
type MediaListParams struct {
	// DateCreated keeps media created on that GMT day.
	DateCreated time.Time
	// DateCreatedAfter keeps media created on or after it (DateCreated>).
	DateCreatedAfter time.Time
	// DateCreatedBefore keeps media created on or before it (DateCreated<).
	DateCreatedBefore time.Time
	// PageSize is 1..1000; 0 leaves Twilio's default (50).
	PageSize int
}

func (p MediaListParams) query() (string, error) {
	if err := checkPageSize("MediaListParams", p.PageSize); err != nil {
		return "", err
	}
	if err := checkRange("MediaListParams", "DateCreated", p.DateCreatedAfter, p.DateCreatedBefore); err != nil {
		return "", err
	}
	var q queryBuilder
	q.addTime("DateCreated", p.DateCreated)
	q.addTime("DateCreated<", p.DateCreatedBefore)
	q.addTime("DateCreated>", p.DateCreatedAfter)
	q.addInt("PageSize", p.PageSize)
	return q.String(), nil
}

func (s *MediaService) messagePath(messageSID string) string {
	return "/2010-04-01/Accounts/" + s.client.accountSID + "/Messages/" + messageSID
}

// isListPath accepts the media list of any message of this account.
func (s *MediaService) isListPath(path string) bool {
	rest, ok := strings.CutPrefix(path, "/2010-04-01/Accounts/"+s.client.accountSID+"/Messages/")
	if !ok {
		return false
	}
	msg, ok := strings.CutSuffix(rest, "/Media.json")
	return ok && ValidMessageSID(msg)
}

func checkMediaSIDs(method, messageSID, sid string) error {
	if err := CheckMessageSID(messageSID); err != nil {
		return fmt.Errorf("twilio: Media.%s: %w", method, err)
	}
	if err := CheckMediaSID(sid); err != nil {
		return fmt.Errorf("twilio: Media.%s: %w", method, err)
	}
	return nil
}

// ListURI returns the relative URI of the first page of messageSID's media
// list. A job can store it as its cursor and fetch it with Page.
func (s *MediaService) ListURI(messageSID string, params MediaListParams) (string, error) {
	if err := CheckMessageSID(messageSID); err != nil {
		return "", fmt.Errorf("twilio: Media.ListURI: %w", err)
	}
	q, err := params.query()
	if err != nil {
		return "", err
	}
	return withQuery(s.messagePath(messageSID)+"/Media.json", q), nil
}

// Get fetches the metadata of one media file.
//
// Twilio API docs: https://www.twilio.com/docs/messaging/api/media-resource#retrieve-media
//
//twilio:operation GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}.json
func (s *MediaService) Get(ctx context.Context, messageSID, sid string) (*Media, error) {
	if err := checkMediaSIDs("Get", messageSID, sid); err != nil {
		return nil, err
	}
	c := s.client
	return getJSON[Media](ctx, c, c.api.url(s.messagePath(messageSID)+"/Media/"+sid+".json", ""))
}

// Delete deletes one media file from Twilio. Twilio answers 204. A media
// that is already gone answers 404: IsNotFound, which an idempotent caller
// counts as done. That includes a retry after a 5xx or a dropped connection
// whose first attempt did delete it. WithGuard lets the caller veto each
// attempt at the last moment.
//
// Twilio API docs: https://www.twilio.com/docs/messaging/api/media-resource#delete-media
//
//twilio:operation DELETE /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}.json
func (s *MediaService) Delete(ctx context.Context, messageSID, sid string, opts ...CallOption) error {
	if err := checkMediaSIDs("Delete", messageSID, sid); err != nil {
		return err
	}
	return s.client.delete(ctx, &s.client.api, s.messagePath(messageSID)+"/Media/"+sid+".json", opts)
}

// delete sends a DELETE of path on h, with the call's options (a Guard),
// and reads nothing of the answer: Twilio answers 204.
func (c *Client) delete(ctx context.Context, h *apiHost, path string, opts []CallOption) error {
	r := &request{
		method: http.MethodDelete,
		url:    h.url(path, ""),
		host:   h,
		accept: "application/json",
		read: func(resp *http.Response) error {
			drainAndClose(resp.Body)
			return nil
		},
	}
	for _, o := range opts {
		o(r)
	}
	_, err := c.do(ctx, r)
	return err
}

// Page fetches exactly one page of a message's media list at uri: a
// ListURI, or a NextPageURI as Twilio gave it. It refuses a URI of another
// host, account or list, and a page whose next_page_uri leaves the list or
// points back at the page (ErrInvalidPageURI).
//
// Twilio API docs: https://www.twilio.com/docs/messaging/api/media-resource#retrieve-a-list-of-media
//
//twilio:operation GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json
func (s *MediaService) Page(ctx context.Context, uri string) (*MediaPage, error) {
	m, items, err := fetchPage[Media, *Media, PageMeta](ctx, s.client, listSpec{host: &s.client.api, wantPath: s.isListPath, itemsKey: "media_list"}, uri)
	if err != nil {
		return nil, err
	}
	return &MediaPage{PageMeta: m, Media: items}, nil
}

// Pages iterates over the pages of messageSID's media list, following
// next_page_uri. Nothing is fetched until the sequence is ranged over; an
// error is yielded once, last.
//
// Twilio API docs: https://www.twilio.com/docs/messaging/api/media-resource#retrieve-a-list-of-media
//
//twilio:operation GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json
func (s *MediaService) Pages(ctx context.Context, messageSID string, params MediaListParams) iter.Seq2[*MediaPage, error] {
	uri, err := s.ListURI(messageSID, params)
	return pageSeq(ctx, err, uri, s.Page)
}

// PagesFrom is Pages starting at a stored page URI (see Page).
//
// Twilio API docs: https://www.twilio.com/docs/messaging/api/media-resource#retrieve-a-list-of-media
//
//twilio:operation GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json
func (s *MediaService) PagesFrom(ctx context.Context, uri string) iter.Seq2[*MediaPage, error] {
	return pageSeq(ctx, nil, uri, s.Page)
}

// All iterates over every media file of messageSID, page by page.
//
// Twilio API docs: https://www.twilio.com/docs/messaging/api/media-resource#retrieve-a-list-of-media
//
//twilio:operation GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json
func (s *MediaService) All(ctx context.Context, messageSID string, params MediaListParams) iter.Seq2[*Media, error] {
	return itemSeq(s.Pages(ctx, messageSID, params), func(p *MediaPage) []Media { return p.Media })
}
