package twiliotest

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
)

// REST 2010-04-01 Messages: list (newest first, filtered, paged), fetch and
// delete. Shapes follow the OpenAPI document's api.v2010.account.message.

type messageJSON struct {
	AccountSID          string            `json:"account_sid"`
	APIVersion          string            `json:"api_version"`
	Body                string            `json:"body"`
	DateCreated         string            `json:"date_created"`
	DateSent            string            `json:"date_sent"`
	DateUpdated         string            `json:"date_updated"`
	Direction           string            `json:"direction"`
	ErrorCode           *int              `json:"error_code"`
	ErrorMessage        *string           `json:"error_message"`
	From                string            `json:"from"`
	MessagingServiceSID *string           `json:"messaging_service_sid"`
	NumMedia            string            `json:"num_media"`
	NumSegments         string            `json:"num_segments"`
	Price               *string           `json:"price"`
	PriceUnit           string            `json:"price_unit"`
	SID                 string            `json:"sid"`
	Status              string            `json:"status"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
	To                  string            `json:"to"`
	URI                 string            `json:"uri"`
}

var bodies = []string{
	"Here are the photos from today",
	"See attached",
	"Invoice attached, thanks!",
	"Can you check this?",
	"ok",
	"Sent from my phone",
}

func (st *store) messageBody(i uint32) string {
	if b, ok := st.bodies[i]; ok {
		return b
	}
	return bodies[i%uint32(len(bodies))]
}

func accountPath(acctSID string) string { return "/2010-04-01/Accounts/" + acctSID }

func (s *Server) messageJSONLocked(i uint32) messageJSON {
	st := s.store
	m := &st.messages[i]
	a := st.accounts[m.account]
	sid := st.messageSID(i)
	base := accountPath(a.sid) + "/Messages/" + sid
	direction, status, price := "inbound", "received", "-0.01000"
	if m.flags&msgOutbound != 0 {
		direction, status, price = "outbound-api", "delivered", "-0.02000"
	}
	mg := a.mgSID
	updated := m.dateSent
	return messageJSON{
		AccountSID: a.sid, APIVersion: "2010-04-01", Body: st.messageBody(i),
		DateCreated: formatRFC2822(m.dateSent - int64(m.lag)), DateSent: formatRFC2822(m.dateSent),
		DateUpdated: formatRFC2822(updated), Direction: direction,
		From: st.strs[m.from], To: st.strs[m.to], MessagingServiceSID: &mg,
		NumMedia: strconv.Itoa(st.liveMedia(m)), NumSegments: strconv.Itoa(int(m.segments)),
		Price: &price, PriceUnit: "USD", SID: sid, Status: status,
		SubresourceURIs: map[string]string{"media": base + "/Media.json", "feedback": base + "/Feedback.json"},
		URI:             base + ".json",
	}
}

// dateFilters reads name, name< and name> in that order, keeping each for
// the page links, and intersects their ranges.
func dateFilters(q url.Values, name string, filters *query) (timeRange, *twilioError) {
	r := fullRange
	for _, op := range []string{"", "<", ">"} {
		v, ok := lastValue(q, name+op)
		if !ok {
			continue
		}
		t, dateOnly, err := parseFilterDate(v)
		if err != nil {
			e := errInvalidParam(name+op, v, err.Error())
			return r, &e
		}
		filters.add(name+op, v)
		opByte := byte('=')
		if op != "" {
			opByte = op[0]
		}
		r = r.intersect(dateFilter(opByte, t, dateOnly))
	}
	return r, nil
}

// listPage2010 is the envelope of a REST 2010-04-01 list page; the items go
// under key.
func listPage2010(path, key string, items any, n int, p pageParams, l pageLinks) map[string]any {
	start := p.page * p.size
	end := start
	if n > 0 {
		end = start + n - 1
	}
	var next, prev *string
	if l.hasNext {
		next = optional(true, path+"?"+l.next)
	}
	if l.hasPrevious {
		prev = optional(true, path+"?"+l.previous)
	}
	return map[string]any{
		key:                 items,
		"end":               end,
		"first_page_uri":    path + "?" + l.first,
		"next_page_uri":     next,
		"page":              p.page,
		"page_size":         p.size,
		"previous_page_uri": prev,
		"start":             start,
		"uri":               path + "?" + l.self,
	}
}

func (s *Server) listMessages(c *call) {
	q := c.r.URL.Query()
	var filters query
	var to, from string
	var hasTo, hasFrom bool
	if to, hasTo = lastValue(q, "To"); hasTo {
		filters.add("To", to)
	}
	if from, hasFrom = lastValue(q, "From"); hasFrom {
		filters.add("From", from)
	}
	rng, e := dateFilters(q, "DateSent", &filters)
	if e != nil {
		writeError(c.w, c.r, *e)
		return
	}

	st := s.store
	st.mu.RLock()
	a := st.accounts[c.acct]
	p, e := parsePaging(q, 1000, tokens2010, func(sid string) (sortKey, bool) {
		i, ok := s.lookupMessageLocked(c.acct, sid)
		if !ok {
			return sortKey{}, false
		}
		return st.msgKey(i), true
	})
	if e != nil {
		st.mu.RUnlock()
		writeError(c.w, c.r, *e)
		return
	}
	toIdx, toOK := st.strIndex[to]
	fromIdx, fromOK := st.strIndex[from]
	match := func(i uint32) bool {
		m := &st.messages[i]
		return m.flags&msgDeleted == 0 &&
			(!hasTo || toOK && m.to == toIdx) &&
			(!hasFrom || fromOK && m.from == fromIdx)
	}
	ids := a.msgs
	lo := sort.Search(len(ids), func(j int) bool { return st.messages[ids[j]].dateSent >= rng.from })
	hi := sort.Search(len(ids), func(j int) bool { return st.messages[ids[j]].dateSent > rng.to })
	v := view{ids: ids[lo:max(lo, hi)], key: st.msgKey, desc: true}
	items, more := v.page(p, match)
	out := make([]messageJSON, len(items))
	for k, i := range items {
		out[k] = s.messageJSONLocked(i)
	}
	path := accountPath(a.sid) + "/Messages.json"
	body := listPage2010(path, "messages", out, len(items), p, links(filters, p, items, more, st.messageSID, tokens2010))
	st.mu.RUnlock()
	writeJSON(c.w, http.StatusOK, body)
}

// messageOf resolves the MessageSid path parameter of a call: 400 for a
// malformed SID, 404 for one not of this account or deleted.
func (s *Server) messageOfLocked(c *call, sid string) (uint32, *twilioError) {
	if _, ok := checkSIDShape(sid, "SM", "MM"); !ok {
		e := errInvalidParam("MessageSid", sid, "want SM or MM followed by 32 hex digits")
		return 0, &e
	}
	i, ok := s.lookupMessageLocked(c.acct, sid)
	if !ok || s.store.messages[i].flags&msgDeleted != 0 {
		e := errNotFound(c.r)
		return 0, &e
	}
	return i, nil
}

func (s *Server) fetchMessage(c *call) {
	st := s.store
	st.mu.RLock()
	i, e := s.messageOfLocked(c, c.params[1])
	if e != nil {
		st.mu.RUnlock()
		writeError(c.w, c.r, *e)
		return
	}
	body := s.messageJSONLocked(i)
	st.mu.RUnlock()
	writeJSON(c.w, http.StatusOK, body)
}

// deleteMessage deletes a message and, as Twilio does, its media.
func (s *Server) deleteMessage(c *call) {
	now := s.Now().UnixNano()
	st := s.store
	st.mu.Lock()
	i, e := s.messageOfLocked(c, c.params[1])
	if e != nil {
		st.mu.Unlock()
		writeError(c.w, c.r, *e)
		return
	}
	m := &st.messages[i]
	m.flags |= msgDeleted
	n := 0
	for _, id := range m.media {
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
