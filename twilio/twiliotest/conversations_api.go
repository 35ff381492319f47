package twiliotest

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Conversations v1: list conversations (of the default service, or of a
// named one) and their messages with media. v1 lists put paging in a
// `meta` object with absolute URLs; PageSize is 1..100.

type metaJSON struct {
	Page            int     `json:"page"`
	PageSize        int     `json:"page_size"`
	FirstPageURL    string  `json:"first_page_url"`
	PreviousPageURL *string `json:"previous_page_url"`
	URL             string  `json:"url"`
	NextPageURL     *string `json:"next_page_url"`
	Key             string  `json:"key"`
}

func metaV1(base, key string, p pageParams, l pageLinks) metaJSON {
	m := metaJSON{Page: p.page, PageSize: p.size, FirstPageURL: base + "?" + l.first, URL: base + "?" + l.self, Key: key}
	if l.hasNext {
		m.NextPageURL = optional(true, base+"?"+l.next)
	}
	if l.hasPrevious {
		m.PreviousPageURL = optional(true, base+"?"+l.previous)
	}
	return m
}

type conversationJSON struct {
	AccountSID          string            `json:"account_sid"`
	ChatServiceSID      string            `json:"chat_service_sid"`
	MessagingServiceSID string            `json:"messaging_service_sid"`
	SID                 string            `json:"sid"`
	FriendlyName        string            `json:"friendly_name"`
	UniqueName          *string           `json:"unique_name"`
	Attributes          string            `json:"attributes"`
	State               string            `json:"state"`
	DateCreated         string            `json:"date_created"`
	DateUpdated         string            `json:"date_updated"`
	Timers              map[string]string `json:"timers"`
	Bindings            map[string]any    `json:"bindings"`
	URL                 string            `json:"url"`
	Links               map[string]string `json:"links"`
}

type convMediaJSON struct {
	SID         string `json:"sid"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
	Filename    string `json:"filename"`
}

type convMessageJSON struct {
	AccountSID      string            `json:"account_sid"`
	ChatServiceSID  string            `json:"chat_service_sid,omitempty"` // service-scoped paths only, as in the spec
	ConversationSID string            `json:"conversation_sid"`
	SID             string            `json:"sid"`
	Index           int               `json:"index"`
	Author          string            `json:"author"`
	Body            *string           `json:"body"`
	Media           []convMediaJSON   `json:"media"`
	Attributes      string            `json:"attributes"`
	ParticipantSID  string            `json:"participant_sid"`
	DateCreated     string            `json:"date_created"`
	DateUpdated     string            `json:"date_updated"`
	URL             string            `json:"url"`
	Delivery        any               `json:"delivery"`
	Links           map[string]string `json:"links"`
	ContentSID      *string           `json:"content_sid"`
}

// serviceOfLocked resolves the ChatServiceSid path parameter (or, on the
// unscoped paths, the account's default service).
func (s *Server) serviceOfLocked(c *call) (uint16, *twilioError) {
	st := s.store
	if c.route.unscoped {
		return st.accounts[c.acct].defaultSvc, nil
	}
	sid := c.params[0]
	if _, ok := checkSIDShape(sid, "IS"); !ok {
		e := errInvalidParam("ChatServiceSid", sid, "want IS followed by 32 hex digits")
		return 0, &e
	}
	i, _, ok, _ := s.codec.parseSID("ChatServiceSid", sid, kindService, "IS")
	if !ok || int(i) >= len(st.services) || st.services[i].account != c.acct {
		e := errNotFound(c.r)
		return 0, &e
	}
	return uint16(i), nil
}

// conversationsBase is the absolute URL of a service's conversation list:
// the unscoped path for the default service when asked that way.
func (s *Server) conversationsBase(c *call, svc uint16) string {
	if c.route.unscoped {
		return s.apiURL + "/v1/Conversations"
	}
	return s.apiURL + "/v1/Services/" + s.store.serviceSID(svc) + "/Conversations"
}

func (s *Server) conversationJSONLocked(base string, i uint32) conversationJSON {
	st := s.store
	cv := &st.convs[i]
	a := st.accounts[cv.account]
	sid := st.convSID(i)
	u := base + "/" + sid
	updated := cv.created
	if n := len(cv.msgs); n > 0 {
		updated = st.convMsgs[cv.msgs[n-1]].created
	}
	return conversationJSON{
		AccountSID: a.sid, ChatServiceSID: st.serviceSID(cv.service), MessagingServiceSID: a.mgSID,
		SID: sid, FriendlyName: "Conversation " + sid[2:8], Attributes: "{}", State: convStates[cv.state],
		DateCreated: formatISO(cv.created), DateUpdated: formatISO(updated),
		Timers: map[string]string{}, Bindings: map[string]any{}, URL: u,
		// The four links of the OpenAPI document's examples.
		Links: map[string]string{"participants": u + "/Participants", "messages": u + "/Messages", "webhooks": u + "/Webhooks", "export": u + "/Export"},
	}
}

// isoBound reads StartDate/EndDate: ISO 8601 (a date, or a date and time).
// A bare EndDate means the end of that day, as twilio-go's docs describe.
// Both bounds are inclusive ("created on or after", "on or before"). The
// OpenAPI text gives them as whole days (YYYY-MM-DDT00:00:00Z and
// YYYY-MM-DDT23:59:59Z); what Twilio does with another time of day is not
// documented, and the emulator compares the instant to the second
// (modeled).
func isoBound(q url.Values, name string, end bool, filters *query) (int64, bool, *twilioError) {
	v, ok := lastValue(q, name)
	if !ok {
		return 0, false, nil
	}
	t, dateOnly, err := parseFilterDate(v)
	if err != nil {
		e := errInvalidParam(name, v, "want an ISO 8601 date such as 2024-01-02 or 2024-01-02T00:00:00Z")
		return 0, false, &e
	}
	filters.add(name, v)
	if dateOnly && end {
		return t.Add(24*time.Hour).Unix() - 1, true, nil
	}
	return t.Unix(), true, nil
}

func (s *Server) listConversations(c *call) {
	q := c.r.URL.Query()
	var filters query
	from, hasFrom, e := isoBound(q, "StartDate", false, &filters)
	if e == nil {
		var to int64
		var hasTo bool
		to, hasTo, e = isoBound(q, "EndDate", true, &filters)
		if e == nil {
			s.listConversationsFiltered(c, q, filters, from, hasFrom, to, hasTo)
			return
		}
	}
	writeError(c.w, c.r, *e)
}

func (s *Server) listConversationsFiltered(c *call, q url.Values, filters query, from int64, hasFrom bool, to int64, hasTo bool) {
	state := -1
	if v, ok := lastValue(q, "State"); ok {
		for i, name := range convStates {
			if v == name {
				state = i
			}
		}
		// The OpenAPI enum has a fourth state, initializing, which the
		// emulator's conversations never are in: a valid filter that
		// matches nothing.
		if v == "initializing" {
			state = len(convStates)
		}
		if state < 0 {
			e := errInvalidParam("State", v, "want active, inactive, closed or initializing")
			writeError(c.w, c.r, e)
			return
		}
		filters.add("State", v)
	}
	st := s.store
	st.mu.RLock()
	svc, e := s.serviceOfLocked(c)
	if e != nil {
		st.mu.RUnlock()
		writeError(c.w, c.r, *e)
		return
	}
	p, e := parsePaging(q, 100, tokensV1, func(sid string) (sortKey, bool) {
		i, _, ok, err := s.codec.parseSID("PageToken", sid, kindConversation, "CH")
		if err != nil || !ok || int(i) >= len(st.convs) || st.convs[i].service != svc {
			return sortKey{}, false
		}
		return st.convKey(i), true
	})
	if e != nil {
		st.mu.RUnlock()
		writeError(c.w, c.r, *e)
		return
	}
	ids := st.services[svc].convs
	lo, hi := 0, len(ids)
	if hasFrom {
		lo = sort.Search(len(ids), func(j int) bool { return st.convs[ids[j]].created >= from })
	}
	if hasTo {
		hi = sort.Search(len(ids), func(j int) bool { return st.convs[ids[j]].created > to })
	}
	// Twilio documents newest first when a date filter is given; without one
	// the emulator lists in creation order (Twilio's order is undocumented).
	v := view{ids: ids[lo:max(lo, hi)], key: st.convKey, desc: hasFrom || hasTo}
	items, more := v.page(p, func(i uint32) bool { return state < 0 || int(st.convs[i].state) == state })
	base := s.conversationsBase(c, svc)
	out := make([]conversationJSON, len(items))
	for k, i := range items {
		out[k] = s.conversationJSONLocked(base, i)
	}
	body := map[string]any{
		"conversations": out,
		"meta":          metaV1(base, "conversations", p, links(filters, p, items, more, st.convSID, tokensV1)),
	}
	st.mu.RUnlock()
	writeJSON(c.w, http.StatusOK, body)
}

func (s *Server) listConversationMessages(c *call) {
	q := c.r.URL.Query()
	var filters query
	desc := false
	if v, ok := lastValue(q, "Order"); ok {
		// The OpenAPI document's examples send "AsC" and "DesC" and show
		// the page URLs with "desc": Twilio reads the value regardless of
		// case and echoes it in lower case. Other values are refused
		// (Twilio's answer to them is not documented).
		v = strings.ToLower(v)
		switch v {
		case "asc":
		case "desc":
			desc = true
		default:
			writeError(c.w, c.r, errInvalidParam("Order", v, "want asc or desc"))
			return
		}
		filters.add("Order", v)
	}
	st := s.store
	st.mu.RLock()
	svc, e := s.serviceOfLocked(c)
	if e != nil {
		st.mu.RUnlock()
		writeError(c.w, c.r, *e)
		return
	}
	ci, e := s.conversationOfLocked(c, svc)
	if e != nil {
		st.mu.RUnlock()
		writeError(c.w, c.r, *e)
		return
	}
	p, e := parsePaging(q, 100, tokensV1, func(sid string) (sortKey, bool) {
		i, _, ok, err := s.codec.parseSID("PageToken", sid, kindConvMessage, "IM")
		if err != nil || !ok || int(i) >= len(st.convMsgs) || st.convMsgs[i].conv != ci {
			return sortKey{}, false
		}
		return st.convMsgKey(i), true
	})
	if e != nil {
		st.mu.RUnlock()
		writeError(c.w, c.r, *e)
		return
	}
	items, more := view{ids: st.convs[ci].msgs, key: st.convMsgKey, desc: desc}.page(p, func(i uint32) bool { return !st.convMsgs[i].deleted })
	convURL := s.conversationsBase(c, svc) + "/" + st.convSID(ci)
	scoped := !c.route.unscoped
	out := make([]convMessageJSON, len(items))
	for k, i := range items {
		out[k] = s.convMessageJSONLocked(convURL, i, scoped)
	}
	base := convURL + "/Messages"
	body := map[string]any{
		"messages": out,
		"meta":     metaV1(base, "messages", p, links(filters, p, items, more, st.convMsgSID, tokensV1)),
	}
	st.mu.RUnlock()
	writeJSON(c.w, http.StatusOK, body)
}

func (s *Server) convMessageJSONLocked(convURL string, i uint32, scoped bool) convMessageJSON {
	st := s.store
	cm := &st.convMsgs[i]
	cv := &st.convs[cm.conv]
	sid := st.convMsgSID(i)
	u := convURL + "/Messages/" + sid
	j := convMessageJSON{
		AccountSID: st.accounts[cv.account].sid, ConversationSID: st.convSID(cm.conv), SID: sid,
		Index: int(cm.index), Author: st.strs[cm.author], Attributes: "{}",
		ParticipantSID: st.participantSID(i), DateCreated: formatISO(cm.created), DateUpdated: formatISO(cm.created),
		URL: u, Links: map[string]string{"delivery_receipts": u + "/Receipts", "channel_metadata": u + "/ChannelMetadata"},
	}
	if scoped {
		j.ChatServiceSID = st.serviceSID(cv.service)
	}
	if b, ok := st.convBodies[i]; ok {
		j.Body = &b
	} else if len(cm.media) == 0 {
		b := "Hello from " + j.Author
		j.Body = &b
	}
	for _, id := range cm.media {
		m := &st.media[id]
		j.Media = append(j.Media, convMediaJSON{SID: st.mediaSID(id), Size: m.size, ContentType: st.mime.types[m.mime].contentType, Filename: st.filename(id)})
	}
	return j
}

// conversationOfLocked resolves the ConversationSid of a call within svc.
// ConversationSid may also be a unique name in Twilio's spec; the
// emulator's conversations have none, so anything but a known SID is 404.
func (s *Server) conversationOfLocked(c *call, svc uint16) (uint32, *twilioError) {
	st := s.store
	ci, _, ok, _ := s.codec.parseSID("ConversationSid", c.params[1], kindConversation, "CH")
	if !ok || int(ci) >= len(st.convs) || st.convs[ci].service != svc {
		e := errNotFound(c.r)
		return 0, &e
	}
	return ci, nil
}

// convMessageOfLocked resolves the service, conversation and message Sid
// of a call. A malformed Sid is a 400, as for every SID with a pattern in
// the OpenAPI document; an unknown or deleted message a 404 / 20404.
func (s *Server) convMessageOfLocked(c *call) (svc uint16, msg uint32, e *twilioError) {
	st := s.store
	if svc, e = s.serviceOfLocked(c); e != nil {
		return 0, 0, e
	}
	ci, e := s.conversationOfLocked(c, svc)
	if e != nil {
		return 0, 0, e
	}
	sid := c.params[2]
	if _, ok := checkSIDShape(sid, "IM"); !ok {
		e := errInvalidParam("Sid", sid, "want IM followed by 32 hex digits")
		return 0, 0, &e
	}
	i, _, ok, err := s.codec.parseSID("Sid", sid, kindConvMessage, "IM")
	if err != nil || !ok || int(i) >= len(st.convMsgs) || st.convMsgs[i].conv != ci || st.convMsgs[i].deleted {
		e := errNotFound(c.r)
		return 0, 0, &e
	}
	return svc, i, nil
}

// fetchConversationMessage answers GET …/Messages/{Sid}.
func (s *Server) fetchConversationMessage(c *call) {
	st := s.store
	st.mu.RLock()
	svc, i, e := s.convMessageOfLocked(c)
	if e != nil {
		st.mu.RUnlock()
		writeError(c.w, c.r, *e)
		return
	}
	convURL := s.conversationsBase(c, svc) + "/" + st.convSID(st.convMsgs[i].conv)
	body := s.convMessageJSONLocked(convURL, i, !c.route.unscoped)
	st.mu.RUnlock()
	writeJSON(c.w, http.StatusOK, body)
}

// deleteConversationMessage answers DELETE …/Messages/{Sid}: 204, and the
// message and its media are gone from every list, fetch, MCS resource and
// signed URL. Twilio documents the 204; that the media go with the message
// is what the MCS pages imply (MCS has no delete of its own) and is
// modeled, not documented. A second DELETE is a 404 / 20404.
func (s *Server) deleteConversationMessage(c *call) {
	now := s.Now().UnixNano()
	st := s.store
	st.mu.Lock()
	_, i, e := s.convMessageOfLocked(c)
	if e != nil {
		st.mu.Unlock()
		writeError(c.w, c.r, *e)
		return
	}
	cm := &st.convMsgs[i]
	cm.deleted = true
	n := 0
	for _, id := range cm.media {
		if st.media[id].flags&mediaDeleted == 0 {
			st.media[id].flags |= mediaDeleted
			st.deletes = append(st.deletes, deleteRec{at: now, media: id})
			n++
		}
	}
	st.mu.Unlock()
	s.meter.add(func(st *Stats) { st.Deletes += int64(n) })
	c.w.WriteHeader(http.StatusNoContent)
}
