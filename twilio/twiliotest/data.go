package twiliotest

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"time"
)

// MaxMediaPerMessage and MaxMessageMediaBytes are Twilio's limits for one
// message: at most 10 media, 5 MB in total. AddMessage and AddMedia refuse
// more, as Twilio refuses such a message.
const (
	MaxMediaPerMessage   = 10
	MaxMessageMediaBytes = 5 * 1024 * 1024
)

// ErrNotFound is returned by the data API for a SID the emulator does not
// hold.
var ErrNotFound = errors.New("not found")

// MediaOptions describes a media to add. Give Content, or a Size for
// content generated from the seed.
type MediaOptions struct {
	ContentType string `json:"content_type"` // defaults to image/jpeg
	Filename    string `json:"filename"`     // defaults to a name generated from the type and SID
	Content     []byte `json:"content"`      // base64 in JSON
	Size        int64  `json:"size"`
	// DateCreated defaults to the parent's creation date.
	DateCreated time.Time `json:"date_created"`
}

// MessageOptions describes a message to add.
type MessageOptions struct {
	// From and To default to a customer number and one of the account's.
	From     string    `json:"from"`
	To       string    `json:"to"`
	Body     string    `json:"body"`
	DateSent time.Time `json:"date_sent"` // defaults to the emulator's now
	// Outbound makes an outbound-api/delivered message; the default is an
	// inbound/received one, as archived MMS mostly are.
	Outbound bool           `json:"outbound"`
	Media    []MediaOptions `json:"media"`
}

// MessageInfo is what the emulator holds for a message.
type MessageInfo struct {
	SID         string    `json:"sid"`
	AccountSID  string    `json:"account_sid"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	Body        string    `json:"body"`
	DateSent    time.Time `json:"date_sent"`
	DateCreated time.Time `json:"date_created"`
	NumMedia    int       `json:"num_media"`  // media not deleted
	MediaSIDs   []string  `json:"media_sids"` // every media ever attached, deleted ones too
	Deleted     bool      `json:"deleted"`
}

// MediaInfo is what the emulator holds for a media.
type MediaInfo struct {
	SID         string    `json:"sid"`
	AccountSID  string    `json:"account_sid"`
	ContentType string    `json:"content_type"`
	Filename    string    `json:"filename"`
	Size        int64     `json:"size"`
	DateCreated time.Time `json:"date_created"`
	// MessageSID is the parent Message (MM…/SM…) or, for Conversations
	// media, the conversation message (IM…); empty for a detached upload.
	MessageSID      string `json:"message_sid,omitempty"`
	ConversationSID string `json:"conversation_sid,omitempty"` // Conversations media only
	ServiceSID      string `json:"service_sid,omitempty"`      // Conversations media only
	Conversation    bool   `json:"conversation"`               // true for Conversations/MCS media
	Deleted         bool   `json:"deleted"`
	Vanished        bool   `json:"vanished"` // content answers 404 while the media is listed
}

func (s *Server) accountIndex(sid string) (uint16, error) {
	acct, ok := s.store.accountBySID[sid]
	if !ok {
		return 0, fmt.Errorf("account %q: %w", sid, ErrNotFound)
	}
	return acct, nil
}

// AddMessage adds a message with its media to an account and returns it.
func (s *Server) AddMessage(accountSID string, m MessageOptions) (MessageInfo, error) {
	if len(m.Media) > MaxMediaPerMessage {
		return MessageInfo{}, fmt.Errorf("add message: %d media: Twilio allows at most %d", len(m.Media), MaxMediaPerMessage)
	}
	var total int64
	for i, md := range m.Media {
		if err := md.validate(); err != nil {
			return MessageInfo{}, fmt.Errorf("add message: media %d: %w", i, err)
		}
		total += md.size()
	}
	if total > MaxMessageMediaBytes {
		return MessageInfo{}, fmt.Errorf("add message: media total %d bytes: Twilio allows at most %d", total, MaxMessageMediaBytes)
	}
	now := s.Now()
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	acct, err := s.accountIndex(accountSID)
	if err != nil {
		return MessageInfo{}, fmt.Errorf("add message: %w", err)
	}
	a := st.accounts[acct]
	sent := m.DateSent
	if sent.IsZero() {
		sent = now
	}
	rec := msgRec{dateSent: sent.Unix(), account: acct, segments: 1}
	if m.Outbound {
		rec.flags |= msgOutbound
	}
	if len(m.Media) > 0 {
		rec.flags |= msgMMS
	}
	twilioNum, customer := st.strs[a.numbers[0]], "+15005550006"
	from, to := customer, twilioNum
	if m.Outbound {
		from, to = twilioNum, customer
	}
	rec.from, rec.to = st.intern(cmp.Or(m.From, from)), st.intern(cmp.Or(m.To, to))
	if len(st.messages) >= 1<<32-2 {
		return MessageInfo{}, errors.New("add message: arena full")
	}
	idx := uint32(len(st.messages))
	st.messages = append(st.messages, rec)
	if m.Body != "" {
		st.bodies[idx] = m.Body
	}
	for _, md := range m.Media {
		st.addMediaLocked(idx, false, md, rec.dateSent)
	}
	a.msgs = insertSorted(a.msgs, idx, st.msgKey)
	return s.messageInfoLocked(idx), nil
}

func (md MediaOptions) size() int64 {
	if md.Content != nil {
		return int64(len(md.Content))
	}
	return md.Size
}

func (md MediaOptions) validate() error {
	if md.Content != nil && md.Size != 0 && md.Size != int64(len(md.Content)) {
		return fmt.Errorf("Size %d disagrees with len(Content) %d", md.Size, len(md.Content))
	}
	if md.Size < 0 {
		return fmt.Errorf("Size %d: must be >= 0", md.Size)
	}
	return nil
}

// addMediaLocked appends a media to a message (or conversation message) and
// returns its index.
func (st *store) addMediaLocked(parent uint32, conversation bool, md MediaOptions, parentCreated int64) uint32 {
	idx := uint32(len(st.media))
	rec := mediaRec{parent: parent, size: md.size(), created: parentCreated, mime: st.mime.intern(cmp.Or(md.ContentType, "image/jpeg"))}
	if !md.DateCreated.IsZero() {
		rec.created = md.DateCreated.Unix()
	}
	if conversation {
		rec.flags |= mediaConversation
	}
	if md.Filename != "" {
		rec.flags |= mediaCustomName
		st.names[idx] = md.Filename
	}
	if md.Content != nil {
		rec.flags |= mediaBlob
		st.blobs[idx] = md.Content
	}
	st.media = append(st.media, rec)
	if conversation {
		cm := &st.convMsgs[parent]
		cm.media = append(cm.media[:len(cm.media):len(cm.media)], idx)
	} else {
		m := &st.messages[parent]
		// The full slice expression makes append copy: media slices of
		// generated messages share one backing array.
		m.media = append(m.media[:len(m.media):len(m.media)], idx)
	}
	return idx
}

// AddMedia attaches one more media to an existing message, within Twilio's
// limits of 10 media and 5 MB per message.
func (s *Server) AddMedia(accountSID, messageSID string, md MediaOptions) (MediaInfo, error) {
	if err := md.validate(); err != nil {
		return MediaInfo{}, fmt.Errorf("add media: %w", err)
	}
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	acct, err := s.accountIndex(accountSID)
	if err != nil {
		return MediaInfo{}, fmt.Errorf("add media: %w", err)
	}
	mi, ok := s.lookupMessageLocked(acct, messageSID)
	if !ok || st.messages[mi].flags&msgDeleted != 0 {
		return MediaInfo{}, fmt.Errorf("add media: message %q: %w", messageSID, ErrNotFound)
	}
	m := &st.messages[mi]
	if len(m.media) >= MaxMediaPerMessage {
		return MediaInfo{}, fmt.Errorf("add media: message %s already has %d media", messageSID, len(m.media))
	}
	total := md.size()
	for _, id := range m.media {
		total += st.media[id].size
	}
	if total > MaxMessageMediaBytes {
		return MediaInfo{}, fmt.Errorf("add media: message %s would carry %d bytes: Twilio allows at most %d", messageSID, total, MaxMessageMediaBytes)
	}
	created := m.dateSent - int64(m.lag)
	idx := st.addMediaLocked(mi, false, md, created)
	return s.mediaInfoLocked(idx), nil
}

func (s *Server) lookupMessageLocked(acct uint16, sid string) (uint32, bool) {
	idx, prefix, ok, err := s.codec.parseSID("MessageSid", sid, kindMessage, "SM", "MM")
	if err != nil || !ok || int(idx) >= len(s.store.messages) {
		return 0, false
	}
	m := &s.store.messages[idx]
	wantPrefix := "SM"
	if m.flags&msgMMS != 0 {
		wantPrefix = "MM"
	}
	return idx, m.account == acct && prefix == wantPrefix
}

// ConversationOptions describes a conversation to add.
type ConversationOptions struct {
	ServiceSID  string    `json:"service_sid"`  // defaults to the account's default service
	DateCreated time.Time `json:"date_created"` // defaults to the emulator's now
	State       string    `json:"state"`        // active (default), inactive or closed
}

// ConversationMessageOptions describes a conversation message to add.
type ConversationMessageOptions struct {
	Author      string         `json:"author"` // defaults to "customer"
	Body        string         `json:"body"`
	DateCreated time.Time      `json:"date_created"` // defaults to the emulator's now
	Media       []MediaOptions `json:"media"`
}

// AddConversation adds a conversation and returns its SID.
func (s *Server) AddConversation(accountSID string, c ConversationOptions) (string, error) {
	now := s.Now()
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	acct, err := s.accountIndex(accountSID)
	if err != nil {
		return "", fmt.Errorf("add conversation: %w", err)
	}
	svc := st.accounts[acct].defaultSvc
	if c.ServiceSID != "" {
		i, _, ok, err := s.codec.parseSID("ServiceSid", c.ServiceSID, kindService, "IS")
		if err != nil || !ok || int(i) >= len(st.services) || st.services[i].account != acct {
			return "", fmt.Errorf("add conversation: service %q: %w", c.ServiceSID, ErrNotFound)
		}
		svc = uint16(i)
	}
	state := uint8(0)
	if c.State != "" {
		found := false
		for i, name := range convStates {
			if name == c.State {
				state, found = uint8(i), true
			}
		}
		if !found {
			return "", fmt.Errorf("add conversation: State %q: want active, inactive or closed", c.State)
		}
	}
	created := c.DateCreated
	if created.IsZero() {
		created = now
	}
	idx := st.addConvLocked(acct, svc, created.Unix(), state)
	return st.convSID(idx), nil
}

func (st *store) addConvLocked(acct, svc uint16, created int64, state uint8) uint32 {
	idx := uint32(len(st.convs))
	st.convs = append(st.convs, convRec{created: created, account: acct, service: svc, state: state})
	st.services[svc].convs = insertSorted(st.services[svc].convs, idx, st.convKey)
	return idx
}

// AddConversationMessage adds a message with media to a conversation and
// returns it; its media are served by MCS.
func (s *Server) AddConversationMessage(accountSID, conversationSID string, m ConversationMessageOptions) (ConversationMessageInfo, error) {
	for i, md := range m.Media {
		if err := md.validate(); err != nil {
			return ConversationMessageInfo{}, fmt.Errorf("add conversation message: media %d: %w", i, err)
		}
	}
	now := s.Now()
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	acct, err := s.accountIndex(accountSID)
	if err != nil {
		return ConversationMessageInfo{}, fmt.Errorf("add conversation message: %w", err)
	}
	ci, _, ok, err := s.codec.parseSID("ConversationSid", conversationSID, kindConversation, "CH")
	if err != nil || !ok || int(ci) >= len(st.convs) || st.convs[ci].account != acct {
		return ConversationMessageInfo{}, fmt.Errorf("add conversation message: conversation %q: %w", conversationSID, ErrNotFound)
	}
	created := m.DateCreated
	if created.IsZero() {
		created = now
	}
	idx := st.addConvMsgLocked(ci, created.Unix(), cmp.Or(m.Author, "customer"))
	if m.Body != "" {
		st.convBodies[idx] = m.Body
	}
	for _, md := range m.Media {
		st.addMediaLocked(idx, true, md, created.Unix())
	}
	return s.convMessageInfoLocked(idx), nil
}

func (st *store) addConvMsgLocked(conv uint32, created int64, author string) uint32 {
	idx := uint32(len(st.convMsgs))
	c := &st.convs[conv]
	st.convMsgs = append(st.convMsgs, convMsgRec{created: created, conv: conv, index: c.nextIndex, author: st.intern(author)})
	c.nextIndex++
	c.msgs = append(c.msgs, idx)
	return idx
}

// ConversationMessageInfo is what the emulator holds for a conversation
// message.
type ConversationMessageInfo struct {
	SID             string    `json:"sid"`
	ConversationSID string    `json:"conversation_sid"`
	Index           int       `json:"index"`
	Author          string    `json:"author"`
	DateCreated     time.Time `json:"date_created"`
	MediaSIDs       []string  `json:"media_sids"`
	Deleted         bool      `json:"deleted"` // deleted through the API, with its media
}

func (s *Server) convMessageInfoLocked(i uint32) ConversationMessageInfo {
	st := s.store
	cm := &st.convMsgs[i]
	info := ConversationMessageInfo{
		SID: st.convMsgSID(i), ConversationSID: st.convSID(cm.conv), Index: int(cm.index),
		Author: st.strs[cm.author], DateCreated: time.Unix(cm.created, 0).UTC(), Deleted: cm.deleted,
	}
	for _, id := range cm.media {
		info.MediaSIDs = append(info.MediaSIDs, st.mediaSID(id))
	}
	return info
}

func (s *Server) messageInfoLocked(i uint32) MessageInfo {
	st := s.store
	m := &st.messages[i]
	info := MessageInfo{
		SID: st.messageSID(i), AccountSID: st.accounts[m.account].sid,
		From: st.strs[m.from], To: st.strs[m.to], Body: st.messageBody(i),
		DateSent: time.Unix(m.dateSent, 0).UTC(), DateCreated: time.Unix(m.dateSent-int64(m.lag), 0).UTC(),
		NumMedia: st.liveMedia(m), Deleted: m.flags&msgDeleted != 0,
	}
	for _, id := range m.media {
		info.MediaSIDs = append(info.MediaSIDs, st.mediaSID(id))
	}
	return info
}

func (s *Server) mediaInfoLocked(i uint32) MediaInfo {
	st := s.store
	m := &st.media[i]
	info := MediaInfo{
		SID: st.mediaSID(i), AccountSID: st.accounts[st.mediaAccount(i)].sid,
		ContentType: st.mime.types[m.mime].contentType, Filename: st.filename(i), Size: m.size,
		DateCreated: time.Unix(m.created, 0).UTC(),
		Deleted:     m.flags&mediaDeleted != 0, Vanished: s.vanishedLocked(i),
		Conversation: m.flags&mediaConversation != 0,
	}
	switch {
	case m.flags&mediaDetached != 0:
		info.ServiceSID = st.serviceSID(st.uploads[m.parent].service)
	case m.flags&mediaConversation != 0:
		cm := &st.convMsgs[m.parent]
		info.MessageSID, info.ConversationSID = st.convMsgSID(m.parent), st.convSID(cm.conv)
		info.ServiceSID = st.serviceSID(st.convs[cm.conv].service)
	default:
		info.MessageSID = st.messageSID(m.parent)
	}
	return info
}

// lookupMedia decodes a media SID issued by the emulator.
func (s *Server) lookupMediaLocked(sid string) (uint32, bool) {
	idx, _, ok, err := s.codec.parseSID("Sid", sid, kindMedia, "ME")
	if err != nil || !ok || int(idx) >= len(s.store.media) {
		return 0, false
	}
	return idx, true
}

// Media returns what the emulator holds for a media SID (Messaging or
// Conversations), deleted or not.
func (s *Server) Media(sid string) (MediaInfo, bool) {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	idx, ok := s.lookupMediaLocked(sid)
	if !ok {
		return MediaInfo{}, false
	}
	return s.mediaInfoLocked(idx), true
}

// ConversationMessage returns what the emulator holds for a conversation
// message SID (IM…), deleted or not.
func (s *Server) ConversationMessage(sid string) (ConversationMessageInfo, bool) {
	st := s.store
	st.mu.RLock()
	defer st.mu.RUnlock()
	idx, _, ok, err := s.codec.parseSID("Sid", sid, kindConvMessage, "IM")
	if err != nil || !ok || int(idx) >= len(st.convMsgs) {
		return ConversationMessageInfo{}, false
	}
	return s.convMessageInfoLocked(idx), true
}

// Message returns what the emulator holds for a message SID.
func (s *Server) Message(sid string) (MessageInfo, bool) {
	st := s.store
	st.mu.RLock()
	defer st.mu.RUnlock()
	idx, prefix, ok, err := s.codec.parseSID("MessageSid", sid, kindMessage, "SM", "MM")
	if err != nil || !ok || int(idx) >= len(st.messages) {
		return MessageInfo{}, false
	}
	if want := st.messageSID(idx)[:2]; prefix != want {
		return MessageInfo{}, false
	}
	return s.messageInfoLocked(idx), true
}

// Content returns the bytes a media holds (also after it was deleted from the
// API, so a test can compare an archive against it). Generated content is
// produced as it is read.
func (s *Server) Content(sid string) (io.ReadCloser, error) {
	s.store.mu.RLock()
	idx, ok := s.lookupMediaLocked(sid)
	var src contentSource
	if ok {
		src = s.contentSourceLocked(idx)
	}
	s.store.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("content of %q: %w", sid, ErrNotFound)
	}
	return src.open()
}

// SHA256 returns the hex SHA-256 of a media's content, read as Content does.
func (s *Server) SHA256(sid string) (string, error) {
	rc, err := s.Content(sid)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", fmt.Errorf("sha256 of %s: %w", sid, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Messages yields an account's messages newest first, as the API lists them
// (deleted ones included, marked), as of the call. The loop may call the
// Server, and the API, freely: no lock is held while it runs.
func (s *Server) Messages(accountSID string) iter.Seq[MessageInfo] {
	return func(yield func(MessageInfo) bool) {
		st := s.store
		st.mu.RLock()
		acct, ok := st.accountBySID[accountSID]
		var ids []uint32
		if ok {
			ids = slices.Clone(st.accounts[acct].msgs)
		}
		st.mu.RUnlock()
		for i := len(ids) - 1; i >= 0; i-- {
			st.mu.RLock()
			info := s.messageInfoLocked(ids[i])
			st.mu.RUnlock()
			if !yield(info) {
				return
			}
		}
	}
}

// AllMedia yields every media of an account (Messaging and Conversations)
// in the order they were added, deleted ones included and marked, as of the
// call. No lock is held while the loop runs.
func (s *Server) AllMedia(accountSID string) iter.Seq[MediaInfo] {
	return func(yield func(MediaInfo) bool) {
		st := s.store
		st.mu.RLock()
		acct, ok := st.accountBySID[accountSID]
		n := len(st.media)
		st.mu.RUnlock()
		if !ok {
			return
		}
		for i := range uint32(n) {
			st.mu.RLock()
			mine := st.mediaAccount(i) == acct
			var info MediaInfo
			if mine {
				info = s.mediaInfoLocked(i)
			}
			st.mu.RUnlock()
			if mine && !yield(info) {
				return
			}
		}
	}
}

// VanishContent makes a media's content answer 404 while the media stays
// listed, as content lost on Twilio's side does.
func (s *Server) VanishContent(mediaSID string) error {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	idx, ok := s.lookupMediaLocked(mediaSID)
	if !ok {
		return fmt.Errorf("vanish %q: %w", mediaSID, ErrNotFound)
	}
	st.media[idx].flags |= mediaVanished
	return nil
}

// Delete is one entry of the delete log.
type Delete struct {
	MediaSID   string    `json:"media_sid"`
	MessageSID string    `json:"message_sid"`
	AccountSID string    `json:"account_sid"`
	Time       time.Time `json:"time"`
}

// Deletes returns the media deleted through the API, in order, from the
// given offset on (0 for all), so that a poller can read only what is new.
func (s *Server) Deletes(from int) []Delete {
	st := s.store
	st.mu.RLock()
	defer st.mu.RUnlock()
	from = min(max(from, 0), len(st.deletes))
	out := make([]Delete, 0, len(st.deletes)-from)
	for _, d := range st.deletes[from:] {
		info := s.mediaInfoLocked(d.media)
		out = append(out, Delete{MediaSID: info.SID, MessageSID: info.MessageSID, AccountSID: info.AccountSID, Time: time.Unix(0, d.at).UTC()})
	}
	return out
}
