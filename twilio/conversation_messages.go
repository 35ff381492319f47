package twilio

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"strings"
)

// Bounds of one conversation message in a list page. A message keeps
// what the archive needs, its body (1,600 characters, at most 6.4 KB of
// UTF-8) and attributes (a JSON string Twilio caps at 16 KB, inferred
// from its limits page) among them, so its bounds are wider than a
// Messaging item's: 100 messages of at most 48 KiB kept hold under 5 MiB,
// and one value, JSON-escaped, may take 256 KiB on the wire.
const (
	maxConvMessageValueBytes = 256 << 10
	maxConvMessageKeptBytes  = 48 << 10
	// mediaEntryBytes is what one media entry costs beyond its strings.
	mediaEntryBytes = 64
)

// ConversationMessage is a message of a conversation, with what mediasync
// archives of it. Every field may be null in Twilio's schema; null decodes
// to the zero value.
type ConversationMessage struct {
	SID             string `json:"sid"`
	AccountSID      string `json:"account_sid"`
	ChatServiceSID  string `json:"chat_service_sid"`
	ConversationSID string `json:"conversation_sid"`
	// Index is the message's position in its conversation, from 0; it only
	// grows, so a run can resume after the last index it archived.
	Index          int64  `json:"index"`
	Author         string `json:"author"`
	Body           string `json:"body"`
	ParticipantSID string `json:"participant_sid"`
	// Attributes is the message's metadata: a string that holds JSON
	// ("{}" when unset), kept as Twilio sent it.
	Attributes  string              `json:"attributes"`
	DateCreated ISOTime             `json:"date_created"`
	DateUpdated ISOTime             `json:"date_updated"`
	Media       []ConversationMedia `json:"media"` // nil when the message has none
	URL         string              `json:"url"`
}

// ConversationMedia describes one media file of a conversation message.
// Its content is served by the Media Content Service (MCSService) under
// the message's ChatServiceSID.
type ConversationMedia struct {
	SID         string `json:"sid"`
	ContentType string `json:"content_type"`
	Filename    string `json:"filename"`
	// Size is the file's size in bytes, -1 when Twilio sent none.
	Size     int64  `json:"size"`
	Category string `json:"category"` // "media" where sent
}

// UnmarshalJSON accepts both spellings the MCS pages use, filename or
// file_name and size or Size (field names match case-insensitively), and a
// size sent as a number or a numeric string.
func (m *ConversationMedia) UnmarshalJSON(b []byte) error {
	type plain ConversationMedia
	var w struct {
		plain
		Size     json.RawMessage `json:"size"`
		FileName string          `json:"file_name"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*m = ConversationMedia(w.plain)
	if m.Filename == "" {
		m.Filename = w.FileName
	}
	var err error
	m.Size, err = decodeSize(w.Size)
	return err
}

func (m *ConversationMessage) keptBytes() int {
	n := len(m.SID) + len(m.AccountSID) + len(m.ChatServiceSID) + len(m.ConversationSID) + len(m.Author) +
		len(m.Body) + len(m.ParticipantSID) + len(m.Attributes) + len(m.URL)
	for _, md := range m.Media {
		n += mediaEntryBytes + len(md.SID) + len(md.ContentType) + len(md.Filename) + len(md.Category)
	}
	return n
}

// check validates the SIDs of a message read from conversation ch of
// service svc, and fills in the service SID, which Twilio sends on the
// service-scoped paths only.
func (m *ConversationMessage) check(svc, ch string) error {
	if err := CheckConversationMessageSID(m.SID); err != nil {
		return err
	}
	if m.ConversationSID != ch {
		return fmt.Errorf("message %s: conversation_sid is %s, want %s", m.SID, quoteInput(m.ConversationSID), ch)
	}
	switch m.ChatServiceSID {
	case "":
		m.ChatServiceSID = svc
	case svc:
	default:
		return fmt.Errorf("message %s: chat_service_sid is %s, want %s", m.SID, quoteInput(m.ChatServiceSID), svc)
	}
	for i, md := range m.Media {
		if err := CheckMediaSID(md.SID); err != nil {
			return fmt.Errorf("message %s: media %d: %w", m.SID, i, err)
		}
	}
	return nil
}

// ConversationMessagePage is one page of a conversation's message list.
type ConversationMessagePage struct {
	Meta
	Messages []ConversationMessage `json:"messages"`
}

// Order is the order of a conversation's message list.
type Order string

// The orders of a message list: by index, ascending (Twilio's default) or
// descending.
const (
	OrderAsc  Order = "asc"
	OrderDesc Order = "desc"
)

// ConversationMessageListParams shapes a message list. Zero values are
// unset. Conversations cannot filter messages by date.
type ConversationMessageListParams struct {
	// Order is OrderAsc (oldest first, Twilio's default when unset) or
	// OrderDesc.
	Order Order
	// PageSize is 1..100; 0 leaves Twilio's default (50).
	PageSize int
}

func (p ConversationMessageListParams) query() (string, error) {
	if p.PageSize < 0 || p.PageSize > maxV1PageSize {
		return "", fmt.Errorf("twilio: ConversationMessageListParams.PageSize is %d: must be between 1 and %d, or 0 for Twilio's default (50)", p.PageSize, maxV1PageSize)
	}
	switch p.Order {
	case "", OrderAsc, OrderDesc:
	default:
		return "", fmt.Errorf("twilio: ConversationMessageListParams.Order is %s: want asc or desc", quoteInput(string(p.Order)))
	}
	var q queryBuilder
	q.add("Order", string(p.Order))
	q.addInt("PageSize", p.PageSize)
	return q.String(), nil
}

// ConversationMessagesService handles the messages of a conversation of a
// Conversations service:
// /v1/Services/{ChatServiceSid}/Conversations/{ConversationSid}/Messages.
// Its calls name the service: the conversation's ChatServiceSID, which is
// also where the messages' media live in MCS.
type ConversationMessagesService service

func (s *ConversationMessagesService) listPath(serviceSID, conversationSID string) string {
	return "/v1/Services/" + serviceSID + "/Conversations/" + conversationSID + "/Messages"
}

func checkConversation(method, serviceSID, conversationSID string) error {
	if err := CheckServiceSID(serviceSID); err != nil {
		return fmt.Errorf("twilio: ConversationMessages.%s: %w", method, err)
	}
	if err := CheckConversationSID(conversationSID); err != nil {
		return fmt.Errorf("twilio: ConversationMessages.%s: %w", method, err)
	}
	return nil
}

// listOf returns the service and conversation a message list path names,
// ok false for any other path.
func listOf(path string) (svc, ch string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/v1/Services/")
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || parts[1] != "Conversations" || parts[3] != "Messages" ||
		!ValidServiceSID(parts[0]) || !ValidConversationSID(parts[2]) {
		return "", "", false
	}
	return parts[0], parts[2], true
}

func (s *ConversationMessagesService) isListPath(path string) bool {
	_, _, ok := listOf(path)
	return ok
}

// ListURL returns the absolute URL of the first page of a conversation's
// message list. A job can store it as its cursor and fetch it with Page.
func (s *ConversationMessagesService) ListURL(serviceSID, conversationSID string, params ConversationMessageListParams) (string, error) {
	if err := checkConversation("ListURL", serviceSID, conversationSID); err != nil {
		return "", err
	}
	q, err := params.query()
	if err != nil {
		return "", err
	}
	return s.client.conversations.url(s.listPath(serviceSID, conversationSID), q).String(), nil
}

// Page fetches exactly one page of a conversation's message list at uri:
// a ListURL, or a NextPageURL as Twilio gave it. It refuses a URL of
// another host or list, and a page whose next_page_url leaves the list or
// points back at the page (ErrInvalidPageURI). Every message's SID, its
// conversation and service, and its media SIDs are checked.
//
// Twilio API docs: https://www.twilio.com/docs/conversations/api/service-conversation-message-resource#read-multiple-serviceconversationmessage-resources
//
//twilio:operation GET /v1/Services/{ChatServiceSid}/Conversations/{ConversationSid}/Messages
func (s *ConversationMessagesService) Page(ctx context.Context, uri string) (*ConversationMessagePage, error) {
	c := s.client
	m, items, err := fetchPage[ConversationMessage, *ConversationMessage, Meta](ctx, c, listSpec{
		host: &c.conversations, wantPath: s.isListPath, itemsKey: "messages", maxPageSize: maxV1PageSize,
		value: maxConvMessageValueBytes, kept: maxConvMessageKeptBytes,
	}, uri)
	if err != nil {
		return nil, err
	}
	path := pathOf(m.selfRel)
	if err := m.checkKey("messages"); err != nil {
		return nil, fmt.Errorf("twilio: GET %s: %w", path, err)
	}
	svc, ch, _ := listOf(path)
	for i := range items {
		if err := items[i].check(svc, ch); err != nil {
			return nil, fmt.Errorf("twilio: GET %s: %w", path, err)
		}
	}
	return &ConversationMessagePage{Meta: m, Messages: items}, nil
}

// Pages iterates over the pages of a conversation's message list in
// params.Order, following meta.next_page_url. Nothing is fetched until the
// sequence is ranged over; an error is yielded once, last.
//
// Twilio API docs: https://www.twilio.com/docs/conversations/api/service-conversation-message-resource#read-multiple-serviceconversationmessage-resources
//
//twilio:operation GET /v1/Services/{ChatServiceSid}/Conversations/{ConversationSid}/Messages
func (s *ConversationMessagesService) Pages(ctx context.Context, serviceSID, conversationSID string, params ConversationMessageListParams) iter.Seq2[*ConversationMessagePage, error] {
	uri, err := s.ListURL(serviceSID, conversationSID, params)
	return pageSeq(ctx, err, uri, s.Page)
}

// PagesFrom is Pages starting at a stored page URL (see Page).
//
// Twilio API docs: https://www.twilio.com/docs/conversations/api/service-conversation-message-resource#read-multiple-serviceconversationmessage-resources
//
//twilio:operation GET /v1/Services/{ChatServiceSid}/Conversations/{ConversationSid}/Messages
func (s *ConversationMessagesService) PagesFrom(ctx context.Context, uri string) iter.Seq2[*ConversationMessagePage, error] {
	return pageSeq(ctx, nil, uri, s.Page)
}

// All iterates over every message of a conversation, page by page.
//
// Twilio API docs: https://www.twilio.com/docs/conversations/api/service-conversation-message-resource#read-multiple-serviceconversationmessage-resources
//
//twilio:operation GET /v1/Services/{ChatServiceSid}/Conversations/{ConversationSid}/Messages
func (s *ConversationMessagesService) All(ctx context.Context, serviceSID, conversationSID string, params ConversationMessageListParams) iter.Seq2[*ConversationMessage, error] {
	return itemSeq(s.Pages(ctx, serviceSID, conversationSID, params), func(p *ConversationMessagePage) []ConversationMessage { return p.Messages })
}

func (s *ConversationMessagesService) messageURL(method, serviceSID, conversationSID, sid string) (string, error) {
	if err := checkConversation(method, serviceSID, conversationSID); err != nil {
		return "", err
	}
	if err := CheckConversationMessageSID(sid); err != nil {
		return "", fmt.Errorf("twilio: ConversationMessages.%s: %w", method, err)
	}
	return s.listPath(serviceSID, conversationSID) + "/" + sid, nil
}

// Get fetches one message of a conversation. A message that does not
// exist, or was deleted, gives an *Error for which IsGone is true.
//
// Twilio API docs: https://www.twilio.com/docs/conversations/api/service-conversation-message-resource#fetch-a-serviceconversationmessage-resource
//
//twilio:operation GET /v1/Services/{ChatServiceSid}/Conversations/{ConversationSid}/Messages/{Sid}
func (s *ConversationMessagesService) Get(ctx context.Context, serviceSID, conversationSID, sid string) (*ConversationMessage, error) {
	path, err := s.messageURL("Get", serviceSID, conversationSID, sid)
	if err != nil {
		return nil, err
	}
	c := s.client
	m, err := getJSONFrom[ConversationMessage](ctx, c, &c.conversations, c.conversations.url(path, ""), maxConvMessageValueBytes)
	if err != nil {
		return nil, err
	}
	if err := m.check(serviceSID, conversationSID); err != nil {
		return nil, fmt.Errorf("twilio: GET %s: %w", path, err)
	}
	if m.SID != sid {
		return nil, fmt.Errorf("twilio: GET %s: the answer is message %s", path, m.SID)
	}
	if n := m.keptBytes(); n > maxConvMessageKeptBytes {
		return nil, fmt.Errorf("twilio: GET %s: its fields hold %d bytes, more than the %d a message holds", path, n, maxConvMessageKeptBytes)
	}
	return m, nil
}

// Delete deletes one message of a conversation, and with it its media:
// MCS has no delete of its own, and deleting the message is how Twilio
// removes them. Twilio answers 204. A message already gone answers 404 /
// 20404: IsGone, which an idempotent caller counts as done, including a
// retry after a 5xx or a dropped connection whose first attempt did
// delete it. WithGuard lets the caller veto each attempt at the last
// moment (a hold placed meanwhile).
//
// Twilio API docs: https://www.twilio.com/docs/conversations/api/service-conversation-message-resource#delete-a-serviceconversationmessage-resource
//
//twilio:operation DELETE /v1/Services/{ChatServiceSid}/Conversations/{ConversationSid}/Messages/{Sid}
func (s *ConversationMessagesService) Delete(ctx context.Context, serviceSID, conversationSID, sid string, opts ...CallOption) error {
	path, err := s.messageURL("Delete", serviceSID, conversationSID, sid)
	if err != nil {
		return err
	}
	return s.client.delete(ctx, &s.client.conversations, path, opts)
}
