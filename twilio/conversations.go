package twilio

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"strings"
	"time"
)

// Conversations v1 lists page through a `meta` object whose *_url fields
// are absolute URLs on the Conversations host; PageSize is 1..100.

// maxV1PageSize is the largest PageSize Conversations v1 takes.
const maxV1PageSize = 100

// Meta is the paging part of a Conversations v1 list response: the
// response's "meta" object. Follow NextPageURL as given (the Client's
// methods do); never build page URLs.
type Meta struct {
	Page            int    `json:"page"`
	PageSize        int    `json:"page_size"`
	FirstPageURL    string `json:"first_page_url"`
	PreviousPageURL string `json:"previous_page_url"`
	URL             string `json:"url"`
	NextPageURL     string `json:"next_page_url"` // "" on the last page
	// Key names the list's items array ("conversations", "messages").
	Key string `json:"key"`

	selfRel, nextRel string
}

func (m *Meta) field(key string) any {
	if key == "meta" {
		return m
	}
	return new(json.RawMessage)
}

func (m *Meta) nextURI() string { return m.NextPageURL }

func (m *Meta) setCursor(self, next string) { m.selfRel, m.nextRel = self, next }

func (m *Meta) cursor() (self, next, nextRaw string) { return m.selfRel, m.nextRel, m.NextPageURL }

// checkKey refuses a page whose meta.key names another list than the one
// asked for; Twilio always sends it, an old or odd server may not.
func (m *Meta) checkKey(want string) error {
	if m.Key != "" && m.Key != want {
		return fmt.Errorf("meta.key is %s, want %q", quoteInput(m.Key), want)
	}
	return nil
}

// ConversationState is a conversation's state.
type ConversationState string

// The states a conversation list can be filtered by.
const (
	ConversationActive   ConversationState = "active"
	ConversationInactive ConversationState = "inactive"
	ConversationClosed   ConversationState = "closed"
	// ConversationInitializing is the fourth state of the OpenAPI enum.
	ConversationInitializing ConversationState = "initializing"
)

// Conversation is a Conversation resource, with the fields mediasync uses.
type Conversation struct {
	SID            string            `json:"sid"`
	AccountSID     string            `json:"account_sid"`
	ChatServiceSID string            `json:"chat_service_sid"`
	FriendlyName   string            `json:"friendly_name"`
	UniqueName     string            `json:"unique_name"`
	State          ConversationState `json:"state"`
	DateCreated    ISOTime           `json:"date_created"`
	DateUpdated    ISOTime           `json:"date_updated"`
	URL            string            `json:"url"`
}

func (c *Conversation) keptBytes() int {
	return len(c.SID) + len(c.AccountSID) + len(c.ChatServiceSID) + len(c.FriendlyName) + len(c.UniqueName) +
		len(c.State) + len(c.URL)
}

// ConversationPage is one page of a conversation list.
type ConversationPage struct {
	Meta
	Conversations []Conversation `json:"conversations"`
}

// ConversationListParams filters a conversation list. Zero values are
// unset.
type ConversationListParams struct {
	// StartDate keeps conversations created on or after it. Twilio
	// documents both bounds as whole days (StartDate at
	// YYYY-MM-DDT00:00:00Z, EndDate at YYYY-MM-DDT23:59:59Z) and does not
	// say what it does with another time of day, so a caller that needs an
	// exact window checks DateCreated too. With either bound set, Twilio
	// lists newest first.
	StartDate time.Time
	// EndDate keeps conversations created on or before it.
	EndDate time.Time
	// State keeps conversations in that state.
	State ConversationState
	// PageSize is 1..100; 0 leaves Twilio's default (50).
	PageSize int
}

func (p ConversationListParams) query() (string, error) {
	if p.PageSize < 0 || p.PageSize > maxV1PageSize {
		return "", fmt.Errorf("twilio: ConversationListParams.PageSize is %d: must be between 1 and %d, or 0 for Twilio's default (50)", p.PageSize, maxV1PageSize)
	}
	if !p.StartDate.IsZero() && !p.EndDate.IsZero() && p.StartDate.After(p.EndDate) {
		return "", fmt.Errorf("twilio: ConversationListParams.StartDate (%s) is later than EndDate (%s): the list would be empty",
			formatISOFilter(p.StartDate), formatISOFilter(p.EndDate))
	}
	switch p.State {
	case "", ConversationActive, ConversationInactive, ConversationClosed, ConversationInitializing:
	default:
		return "", fmt.Errorf("twilio: ConversationListParams.State is %s: want active, inactive, closed or initializing", quoteInput(string(p.State)))
	}
	var q queryBuilder
	if !p.StartDate.IsZero() {
		q.add("StartDate", formatISOFilter(p.StartDate))
	}
	if !p.EndDate.IsZero() {
		q.add("EndDate", formatISOFilter(p.EndDate))
	}
	q.add("State", string(p.State))
	q.addInt("PageSize", p.PageSize)
	return q.String(), nil
}

// ConversationsService handles the Conversation resource of a
// Conversations service: /v1/Services/{ChatServiceSid}/Conversations, or
// /v1/Conversations for the account's default service.
type ConversationsService service

// listPath is the conversation list of serviceSID, or of the default
// service when it is "".
func (s *ConversationsService) listPath(serviceSID string) string {
	if serviceSID == "" {
		return "/v1/Conversations"
	}
	return "/v1/Services/" + serviceSID + "/Conversations"
}

// isListPath accepts the conversation list of the default service or of
// any service.
func (s *ConversationsService) isListPath(path string) bool {
	if path == "/v1/Conversations" {
		return true
	}
	svc, ok := strings.CutPrefix(path, "/v1/Services/")
	if !ok {
		return false
	}
	svc, ok = strings.CutSuffix(svc, "/Conversations")
	return ok && ValidServiceSID(svc)
}

// ListURL returns the absolute URL of the first page of serviceSID's
// conversation list ("" for the account's default service). A job can
// store it as its cursor and fetch it with Page.
func (s *ConversationsService) ListURL(serviceSID string, params ConversationListParams) (string, error) {
	if serviceSID != "" {
		if err := CheckServiceSID(serviceSID); err != nil {
			return "", fmt.Errorf("twilio: Conversations.ListURL: %w", err)
		}
	}
	q, err := params.query()
	if err != nil {
		return "", err
	}
	return s.client.conversations.url(s.listPath(serviceSID), q).String(), nil
}

// Page fetches exactly one page of a conversation list at uri: a ListURL,
// or a NextPageURL as Twilio gave it. It refuses a URL of another host or
// list, and a page whose next_page_url leaves the list or points back at
// the page (ErrInvalidPageURI). Each conversation's SID and service SID
// are checked; on a service's list the service must be that one.
//
// Twilio API docs: https://www.twilio.com/docs/conversations/api/service-conversation-resource#read-multiple-serviceconversation-resources
//
//twilio:operation GET /v1/Services/{ChatServiceSid}/Conversations
//twilio:operation GET /v1/Conversations
func (s *ConversationsService) Page(ctx context.Context, uri string) (*ConversationPage, error) {
	c := s.client
	m, items, err := fetchPage[Conversation, *Conversation, Meta](ctx, c, listSpec{
		host: &c.conversations, wantPath: s.isListPath, itemsKey: "conversations", maxPageSize: maxV1PageSize,
		// A conversation's attributes (not kept) may be as long as a
		// message's.
		value: maxConvMessageValueBytes,
	}, uri)
	if err != nil {
		return nil, err
	}
	path := pathOf(m.selfRel)
	if err := m.checkKey("conversations"); err != nil {
		return nil, fmt.Errorf("twilio: GET %s: %w", path, err)
	}
	wantSvc := ""
	if rest, ok := strings.CutPrefix(path, "/v1/Services/"); ok {
		wantSvc, _, _ = strings.Cut(rest, "/")
	}
	for i := range items {
		cv := &items[i]
		if err := CheckConversationSID(cv.SID); err != nil {
			return nil, fmt.Errorf("twilio: GET %s: conversation %d: %w", path, i, err)
		}
		if err := CheckServiceSID(cv.ChatServiceSID); err != nil {
			return nil, fmt.Errorf("twilio: GET %s: conversation %s: %w", path, cv.SID, err)
		}
		if wantSvc != "" && cv.ChatServiceSID != wantSvc {
			return nil, fmt.Errorf("twilio: GET %s: conversation %s belongs to service %s, not to the one listed", path, cv.SID, cv.ChatServiceSID)
		}
	}
	return &ConversationPage{Meta: m, Conversations: items}, nil
}

// Pages iterates over the pages of serviceSID's conversation list ("" for
// the account's default service), following meta.next_page_url. Nothing is
// fetched until the sequence is ranged over; an error is yielded once,
// last.
//
// Twilio API docs: https://www.twilio.com/docs/conversations/api/service-conversation-resource#read-multiple-serviceconversation-resources
//
//twilio:operation GET /v1/Services/{ChatServiceSid}/Conversations
//twilio:operation GET /v1/Conversations
func (s *ConversationsService) Pages(ctx context.Context, serviceSID string, params ConversationListParams) iter.Seq2[*ConversationPage, error] {
	uri, err := s.ListURL(serviceSID, params)
	return pageSeq(ctx, err, uri, s.Page)
}

// PagesFrom is Pages starting at a stored page URL (see Page).
//
// Twilio API docs: https://www.twilio.com/docs/conversations/api/service-conversation-resource#read-multiple-serviceconversation-resources
//
//twilio:operation GET /v1/Services/{ChatServiceSid}/Conversations
//twilio:operation GET /v1/Conversations
func (s *ConversationsService) PagesFrom(ctx context.Context, uri string) iter.Seq2[*ConversationPage, error] {
	return pageSeq(ctx, nil, uri, s.Page)
}

// All iterates over every conversation params select, page by page.
//
// Twilio API docs: https://www.twilio.com/docs/conversations/api/service-conversation-resource#read-multiple-serviceconversation-resources
//
//twilio:operation GET /v1/Services/{ChatServiceSid}/Conversations
//twilio:operation GET /v1/Conversations
func (s *ConversationsService) All(ctx context.Context, serviceSID string, params ConversationListParams) iter.Seq2[*Conversation, error] {
	return itemSeq(s.Pages(ctx, serviceSID, params), func(p *ConversationPage) []Conversation { return p.Conversations })
}
