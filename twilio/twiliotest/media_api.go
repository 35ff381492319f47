package twiliotest

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"slices"
	"strconv"
)

// REST 2010-04-01 Media: list a message's media, fetch one as JSON or XML,
// delete it, and download its content through a redirect to a signed URL.

type mediaJSON struct {
	AccountSID  string `json:"account_sid"`
	ContentType string `json:"content_type"`
	DateCreated string `json:"date_created"`
	DateUpdated string `json:"date_updated"`
	ParentSID   string `json:"parent_sid"`
	SID         string `json:"sid"`
	URI         string `json:"uri"`
}

func (s *Server) mediaJSONLocked(i uint32) mediaJSON {
	st := s.store
	m := &st.media[i]
	msg := &st.messages[m.parent]
	acct := st.accounts[msg.account].sid
	sid, parent := st.mediaSID(i), st.messageSID(m.parent)
	return mediaJSON{
		AccountSID: acct, ContentType: st.mime.types[m.mime].contentType,
		DateCreated: formatRFC2822(m.created), DateUpdated: formatRFC2822(m.created),
		ParentSID: parent, SID: sid,
		URI: accountPath(acct) + "/Messages/" + parent + "/Media/" + sid + ".json",
	}
}

// mediaOfLocked resolves the MessageSid and Sid path parameters: 400 for a
// malformed SID, 404 for anything not a live media of that message.
func (s *Server) mediaOfLocked(c *call) (uint32, *twilioError) {
	msgSID, sid := c.params[1], c.params[2]
	mi, e := s.messageOfLocked(c, msgSID)
	if e != nil {
		return 0, e
	}
	if _, ok := checkSIDShape(sid, "ME"); !ok {
		e := errInvalidParam("Sid", sid, "want ME followed by 32 hex digits")
		return 0, &e
	}
	i, ok := s.lookupMediaLocked(sid)
	if !ok {
		e := errNotFound(c.r)
		return 0, &e
	}
	m := &s.store.media[i]
	if m.flags&(mediaConversation|mediaDeleted) != 0 || m.parent != mi {
		e := errNotFound(c.r)
		return 0, &e
	}
	return i, nil
}

func (s *Server) listMedia(c *call) {
	q := c.r.URL.Query()
	var filters query
	rng, e := dateFilters(q, "DateCreated", &filters)
	if e != nil {
		writeError(c.w, c.r, *e)
		return
	}
	st := s.store
	st.mu.RLock()
	mi, e := s.messageOfLocked(c, c.params[1])
	if e != nil {
		st.mu.RUnlock()
		writeError(c.w, c.r, *e)
		return
	}
	ids := slices.Clone(st.messages[mi].media)
	sortIDs(ids, st.mediaKey)
	p, e := parsePaging(q, 1000, tokens2010, func(sid string) (sortKey, bool) {
		i, ok := s.lookupMediaLocked(sid)
		if !ok || st.media[i].flags&mediaConversation != 0 || st.media[i].parent != mi {
			return sortKey{}, false
		}
		return st.mediaKey(i), true
	})
	if e != nil {
		st.mu.RUnlock()
		writeError(c.w, c.r, *e)
		return
	}
	match := func(i uint32) bool {
		m := &st.media[i]
		return m.flags&mediaDeleted == 0 && rng.contains(m.created)
	}
	items, more := view{ids: ids, key: st.mediaKey, desc: true}.page(p, match)
	out := make([]mediaJSON, len(items))
	for k, i := range items {
		out[k] = s.mediaJSONLocked(i)
	}
	path := accountPath(st.accounts[c.acct].sid) + "/Messages/" + st.messageSID(mi) + "/Media.json"
	body := listPage2010(path, "media_list", out, len(items), p, links(filters, p, items, more, st.mediaSID, tokens2010))
	st.mu.RUnlock()
	writeJSON(c.w, http.StatusOK, body)
}

func (s *Server) fetchMedia(c *call) {
	st := s.store
	st.mu.RLock()
	i, e := s.mediaOfLocked(c)
	if e != nil {
		st.mu.RUnlock()
		writeError(c.w, c.r, *e)
		return
	}
	body := s.mediaJSONLocked(i)
	st.mu.RUnlock()
	writeJSON(c.w, http.StatusOK, body)
}

// fetchMediaXML answers the .xml form, shaped as the founding page shows it
// (whose example Uri reads /Message/, singular: the emulator writes the path
// it serves, /Messages/).
func (s *Server) fetchMediaXML(c *call) {
	st := s.store
	st.mu.RLock()
	i, e := s.mediaOfLocked(c)
	if e != nil {
		st.mu.RUnlock()
		writeError(c.w, c.r, *e)
		return
	}
	j := s.mediaJSONLocked(i)
	st.mu.RUnlock()
	type mediaXML struct {
		SID         string `xml:"Sid"`
		AccountSID  string `xml:"AccountSid"`
		ParentSID   string `xml:"ParentSid"`
		ContentType string `xml:"ContentType"`
		DateCreated string `xml:"DateCreated"`
		DateUpdated string `xml:"DateUpdated"`
		URI         string `xml:"Uri"`
	}
	type response struct {
		XMLName xml.Name `xml:"TwilioResponse"`
		Media   mediaXML `xml:"Media"`
	}
	uri := j.URI[:len(j.URI)-len(".json")] + ".xml"
	body, err := xml.MarshalIndent(response{Media: mediaXML{j.SID, j.AccountSID, j.ParentSID, j.ContentType, j.DateCreated, j.DateUpdated, uri}}, "", " ")
	if err != nil {
		panic(err) // static shape
	}
	writeXML(c.w, http.StatusOK, body)
}

// deleteMedia deletes a media: 204 with no body; afterwards the media is
// 404 everywhere and its message's num_media drops.
func (s *Server) deleteMedia(c *call) {
	now := s.Now().UnixNano()
	st := s.store
	st.mu.Lock()
	i, e := s.mediaOfLocked(c)
	if e != nil {
		st.mu.Unlock()
		writeError(c.w, c.r, *e)
		return
	}
	st.media[i].flags |= mediaDeleted
	st.deletes = append(st.deletes, deleteRec{at: now, media: i})
	st.mu.Unlock()
	s.meter.add(func(st *Stats) { st.Deletes++ })
	c.w.WriteHeader(http.StatusNoContent)
}

// mediaContent is the first hop of a download: a redirect to a signed URL
// on the other host.
func (s *Server) mediaContent(c *call) {
	st := s.store
	st.mu.RLock()
	i, e := s.mediaOfLocked(c)
	vanished := e == nil && s.vanishedLocked(i)
	acct := st.accounts[c.acct].sid
	st.mu.RUnlock()
	if e != nil {
		writeError(c.w, c.r, *e)
		return
	}
	if vanished {
		s.meter.add(func(st *Stats) { st.VanishedContent++ })
		writeError(c.w, c.r, errNotFound(c.r))
		return
	}
	s.redirect(c.w, s.signURL(hopFirst, acct, i))
}

// redirect answers a 3xx with a short XML body, as Twilio does.
func (s *Server) redirect(w http.ResponseWriter, location string) {
	var esc bytes.Buffer
	_ = xml.EscapeText(&esc, []byte(location))
	body := xml.Header + "<TwilioResponse><RedirectTo>" + esc.String() + "</RedirectTo></TwilioResponse>\n"
	w.Header().Set("Location", location)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(s.cfg.RedirectStatus)
	_, _ = w.Write([]byte(body))
}
