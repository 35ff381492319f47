package twilio

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/url"
	"strings"
	"time"
)

// Message is a Message resource, with the fields mediasync uses. The body
// is deliberately not decoded: it is customer content mediasync only
// archives, as part of Raw. Every field may be null in Twilio's schema;
// null decodes to the zero value (and to an unknown Count).
type Message struct {
	SID                 string          `json:"sid"`
	AccountSID          string          `json:"account_sid"`
	MessagingServiceSID string          `json:"messaging_service_sid"`
	From                string          `json:"from"`
	To                  string          `json:"to"`
	Direction           string          `json:"direction"` // inbound, outbound-api, outbound-call, outbound-reply
	Status              string          `json:"status"`
	NumMedia            Count           `json:"num_media"`
	DateSent            Time            `json:"date_sent"`
	DateCreated         Time            `json:"date_created"`
	DateUpdated         Time            `json:"date_updated"`
	URI                 string          `json:"uri"`
	SubresourceURIs     SubresourceURIs `json:"subresource_uris"`

	// Raw is the message's JSON object byte for byte as Twilio sent it
	// (body, price, status, error fields and all), for the archive's
	// record of it (issue #17): from Get, and on a page read with
	// MessagesService.PageRecords (Page leaves it nil). Twilio's Message
	// resource holds no credential. A listed one is at most the page
	// decoder's value limit.
	Raw json.RawMessage `json:"-"`
}

// keepRaw keeps the message's object as sent (decodeItem, decodeJSON).
func (m *Message) keepRaw(b json.RawMessage) { m.Raw = b }

// SubresourceURIs are a message's related lists, relative to the API host.
type SubresourceURIs struct {
	Media string `json:"media"`
}

// MessagePage is one page of a message list.
type MessagePage struct {
	PageMeta
	Messages []Message `json:"messages"`
}

// MessageListParams filters a message list. Zero values are unset.
type MessageListParams struct {
	To   string
	From string
	// DateSent keeps messages sent on that GMT day (Twilio's DateSent).
	DateSent time.Time
	// DateSentAfter keeps messages sent on or after it (Twilio's DateSent>,
	// which is inclusive despite the name).
	DateSentAfter time.Time
	// DateSentBefore keeps messages sent on or before it (DateSent<).
	// Twilio documents DateSent<=YYYY-MM-DD as "on and before" that day
	// but not whether the whole day is included; an instant other than
	// midnight UTC is sent as RFC 3339, as twilio-go sends it, and Twilio's
	// handling of its time of day is likewise undocumented. A caller that
	// must not miss messages overlaps its windows.
	DateSentBefore time.Time
	// PageSize is 1..1000; 0 leaves Twilio's default (50).
	PageSize int
}

func (p MessageListParams) query() (string, error) {
	if err := checkPageSize("MessageListParams", p.PageSize); err != nil {
		return "", err
	}
	if err := checkRange("MessageListParams", "DateSent", p.DateSentAfter, p.DateSentBefore); err != nil {
		return "", err
	}
	var q queryBuilder
	q.add("To", p.To)
	q.add("From", p.From)
	q.addTime("DateSent", p.DateSent)
	q.addTime("DateSent<", p.DateSentBefore)
	q.addTime("DateSent>", p.DateSentAfter)
	q.addInt("PageSize", p.PageSize)
	return q.String(), nil
}

func (s *MessagesService) listPath() string {
	return "/2010-04-01/Accounts/" + s.client.accountSID + "/Messages.json"
}

// ListURI returns the relative URI of the first page of the message list
// params select. A job can store it as its cursor and fetch it with Page.
func (s *MessagesService) ListURI(params MessageListParams) (string, error) {
	q, err := params.query()
	if err != nil {
		return "", err
	}
	return withQuery(s.listPath(), q), nil
}

// Get fetches one message.
//
// Twilio API docs: https://www.twilio.com/docs/messaging/api/message-resource#fetch-a-message-resource
//
//twilio:operation GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json
func (s *MessagesService) Get(ctx context.Context, sid string) (*Message, error) {
	if err := CheckMessageSID(sid); err != nil {
		return nil, fmt.Errorf("twilio: Messages.Get: %w", err)
	}
	c := s.client
	return getJSON[Message](ctx, c, c.api.url("/2010-04-01/Accounts/"+c.accountSID+"/Messages/"+sid+".json", ""))
}

// Page fetches exactly one page of the account's message list at uri: a
// ListURI, or a NextPageURI as Twilio gave it. It refuses a URI of another
// host or list, and a page whose next_page_uri does (ErrInvalidPageURI), so
// a job may store NextPageURI as its next cursor.
//
// Twilio API docs: https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources
//
//twilio:operation GET /2010-04-01/Accounts/{AccountSid}/Messages.json
func (s *MessagesService) Page(ctx context.Context, uri string) (*MessagePage, error) {
	m, items, err := fetchPage[Message, *Message, PageMeta](ctx, s.client, listSpec{host: &s.client.api, wantPath: s.isListPath, itemsKey: "messages"}, uri)
	if err != nil {
		return nil, err
	}
	return &MessagePage{PageMeta: m, Messages: items}, nil
}

// PageRecords is Page keeping each message's JSON object as Twilio sent it
// (Message.Raw): the page's bytes are held until it is dropped, up to the
// client's JSON limit, where Page holds a few KiB a message.
//
// Twilio API docs: https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources
//
//twilio:operation GET /2010-04-01/Accounts/{AccountSid}/Messages.json
func (s *MessagesService) PageRecords(ctx context.Context, uri string) (*MessagePage, error) {
	m, items, err := fetchPage[Message, *Message, PageMeta](ctx, s.client, listSpec{host: &s.client.api, wantPath: s.isListPath, itemsKey: "messages", raw: true}, uri)
	if err != nil {
		return nil, err
	}
	return &MessagePage{PageMeta: m, Messages: items}, nil
}

func (s *MessagesService) isListPath(path string) bool { return path == s.listPath() }

// Pages iterates over the pages of the message list params select, in
// Twilio's order (newest first: widely relied on, not documented),
// following next_page_uri. Nothing is fetched until the
// sequence is ranged over; an error is yielded once, last.
//
// Twilio API docs: https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources
//
//twilio:operation GET /2010-04-01/Accounts/{AccountSid}/Messages.json
func (s *MessagesService) Pages(ctx context.Context, params MessageListParams) iter.Seq2[*MessagePage, error] {
	uri, err := s.ListURI(params)
	return pageSeq(ctx, err, uri, s.Page)
}

// PagesFrom is Pages starting at a stored page URI (see Page).
//
// Twilio API docs: https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources
//
//twilio:operation GET /2010-04-01/Accounts/{AccountSid}/Messages.json
func (s *MessagesService) PagesFrom(ctx context.Context, uri string) iter.Seq2[*MessagePage, error] {
	return pageSeq(ctx, nil, uri, s.Page)
}

// All iterates over every message params select, page by page.
//
// Twilio API docs: https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources
//
//twilio:operation GET /2010-04-01/Accounts/{AccountSid}/Messages.json
func (s *MessagesService) All(ctx context.Context, params MessageListParams) iter.Seq2[*Message, error] {
	return itemSeq(s.Pages(ctx, params), func(p *MessagePage) []Message { return p.Messages })
}

// queryBuilder writes a query string in a fixed order, as Twilio's own
// *_uri fields do, escaping names too: DateSent> goes out as DateSent%3E.
type queryBuilder struct{ parts []string }

func (q *queryBuilder) add(name, value string) {
	if value != "" {
		q.parts = append(q.parts, url.QueryEscape(name)+"="+url.QueryEscape(value))
	}
}

func (q *queryBuilder) addTime(name string, t time.Time) {
	if !t.IsZero() {
		q.add(name, formatDateFilter(t))
	}
}

func (q *queryBuilder) addInt(name string, n int) {
	if n != 0 {
		q.add(name, fmt.Sprint(n))
	}
}

func (q *queryBuilder) String() string { return strings.Join(q.parts, "&") }

func withQuery(path, query string) string {
	if query == "" {
		return path
	}
	return path + "?" + query
}

const maxPageSize = 1000

func checkPageSize(params string, n int) error {
	if n < 0 || n > maxPageSize {
		return fmt.Errorf("twilio: %s.PageSize is %d: must be between 1 and %d, or 0 for Twilio's default (50)", params, n, maxPageSize)
	}
	return nil
}

func checkRange(params, field string, after, before time.Time) error {
	if !after.IsZero() && !before.IsZero() && after.After(before) {
		return fmt.Errorf("twilio: %s.%sAfter (%s) is later than %sBefore (%s): the list would be empty",
			params, field, after.UTC().Format(time.RFC3339), field, before.UTC().Format(time.RFC3339))
	}
	return nil
}
