package twiliotest

import (
	"cmp"
	"slices"
	"sort"
	"sync"
)

// The store keeps every resource in flat arenas of small fixed-size records,
// addressed by index; a SID is the encrypted index (see sidCodec), so no map
// from SID to record exists and a million media cost about 30 MB. Text that
// repeats (phone numbers, authors) is interned; text set by tests (bodies,
// filenames, bytes) lives in side maps keyed by index, which stay small.

// message flags
const (
	msgDeleted uint8 = 1 << iota
	msgOutbound
	msgMMS // SID prefix MM rather than SM
)

// media flags
const (
	mediaDeleted uint8 = 1 << iota
	mediaVanished
	mediaConversation // belongs to Conversations/MCS, not to a Message
	mediaCustomName
	mediaBlob     // bytes given by a test, in store.blobs
	mediaFile     // uploaded through MCS, spooled to a file
	mediaDetached // an MCS upload not attached to a conversation message
)

type msgRec struct {
	dateSent int64    // unix seconds
	media    []uint32 // media indexes, in the order attached
	from, to uint32   // interned strings
	account  uint16
	lag      uint8 // date_created = dateSent - lag
	flags    uint8
	segments uint8
}

type mediaRec struct {
	created int64 // unix seconds
	size    int64
	parent  uint32 // message, conversation message, or upload index
	mime    uint16
	flags   uint8
}

type svcRec struct {
	convs   []uint32 // ascending by (created, index)
	account uint16
}

type convRec struct {
	created   int64
	msgs      []uint32 // in index order
	account   uint16
	service   uint16
	state     uint8
	nextIndex uint32
}

type convMsgRec struct {
	created int64
	media   []uint32
	conv    uint32
	index   uint32
	author  uint32 // interned
	deleted bool   // deleted through the API, with its media
}

// upload is what an MCS upload keeps beyond its media record.
type upload struct {
	path    string // spooled content
	author  string
	account uint16
	service uint16
}

// conversation states, in Twilio's words.
var convStates = []string{"active", "inactive", "closed"}

type account struct {
	sid        string
	authToken  string
	keys       map[string]string // API key SID → secret
	mediaAuth  bool
	msgs       []uint32 // ascending by (dateSent, index)
	services   []uint16
	defaultSvc uint16
	mgSID      string // messaging service
	numbers    []uint32
}

type deleteRec struct {
	at    int64 // unix nanoseconds
	media uint32
}

type store struct {
	mu sync.RWMutex

	codec *sidCodec
	mime  *mimeTable

	accounts     []*account
	accountBySID map[string]uint16
	keyOwner     map[string]uint16

	messages []msgRec
	media    []mediaRec
	services []svcRec
	convs    []convRec
	convMsgs []convMsgRec

	strs     []string
	strIndex map[string]uint32

	bodies     map[uint32]string // message index → body set by a test
	convBodies map[uint32]string
	names      map[uint32]string // media index → filename set by a test
	blobs      map[uint32][]byte
	uploads    []upload

	deletes []deleteRec
}

func newStore(codec *sidCodec) *store {
	return &store{
		codec:        codec,
		mime:         newMIMETable(),
		accountBySID: make(map[string]uint16),
		keyOwner:     make(map[string]uint16),
		strIndex:     make(map[string]uint32),
		bodies:       make(map[uint32]string),
		convBodies:   make(map[uint32]string),
		names:        make(map[uint32]string),
		blobs:        make(map[uint32][]byte),
	}
}

func (s *store) intern(v string) uint32 {
	if i, ok := s.strIndex[v]; ok {
		return i
	}
	i := uint32(len(s.strs))
	s.strs = append(s.strs, v)
	s.strIndex[v] = i
	return i
}

// SIDs of records.

func (s *store) messageSID(i uint32) string {
	prefix := "SM"
	if s.messages[i].flags&msgMMS != 0 {
		prefix = "MM"
	}
	return s.codec.sid(prefix, kindMessage, i)
}

func (s *store) mediaSID(i uint32) string       { return s.codec.sid("ME", kindMedia, i) }
func (s *store) serviceSID(i uint16) string     { return s.codec.sid("IS", kindService, uint32(i)) }
func (s *store) convSID(i uint32) string        { return s.codec.sid("CH", kindConversation, i) }
func (s *store) convMsgSID(i uint32) string     { return s.codec.sid("IM", kindConvMessage, i) }
func (s *store) participantSID(i uint32) string { return s.codec.sid("MB", kindParticipant, i) }

// sortKey orders list items: time, then arena index as the tiebreak, so that
// every item has a distinct, stable position a page token can name.
type sortKey struct {
	t  int64
	id uint32
}

func (a sortKey) compare(b sortKey) int {
	if c := cmp.Compare(a.t, b.t); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

func (s *store) msgKey(i uint32) sortKey   { return sortKey{s.messages[i].dateSent, i} }
func (s *store) mediaKey(i uint32) sortKey { return sortKey{s.media[i].created, i} }
func (s *store) convKey(i uint32) sortKey  { return sortKey{s.convs[i].created, i} }
func (s *store) convMsgKey(i uint32) sortKey {
	return sortKey{int64(s.convMsgs[i].index), i}
}

// insertSorted inserts id into ids (ascending by key), appending in O(1) in
// the common case of a newest item.
func insertSorted(ids []uint32, id uint32, key func(uint32) sortKey) []uint32 {
	k := key(id)
	if n := len(ids); n == 0 || key(ids[n-1]).compare(k) < 0 {
		return append(ids, id)
	}
	at := sort.Search(len(ids), func(j int) bool { return key(ids[j]).compare(k) >= 0 })
	return slices.Insert(ids, at, id)
}

// mergeSorted adds ids (in any order) to a sorted slice.
func mergeSorted(sorted, ids []uint32, key func(uint32) sortKey) []uint32 {
	sortIDs(ids, key)
	if len(sorted) == 0 || len(ids) == 0 || key(sorted[len(sorted)-1]).compare(key(ids[0])) < 0 {
		return append(sorted, ids...)
	}
	sorted = append(sorted, ids...)
	sortIDs(sorted, key)
	return sorted
}

func sortIDs(ids []uint32, key func(uint32) sortKey) {
	slices.SortFunc(ids, func(a, b uint32) int { return key(a).compare(key(b)) })
}

// liveMedia counts the media of a message not yet deleted (num_media).
func (s *store) liveMedia(m *msgRec) int {
	n := 0
	for _, id := range m.media {
		if s.media[id].flags&mediaDeleted == 0 {
			n++
		}
	}
	return n
}

// mediaAccount is the account a media record belongs to.
func (s *store) mediaAccount(i uint32) uint16 {
	m := &s.media[i]
	switch {
	case m.flags&mediaDetached != 0:
		return s.uploads[m.parent].account
	case m.flags&mediaConversation != 0:
		return s.convs[s.convMsgs[m.parent].conv].account
	default:
		return s.messages[m.parent].account
	}
}

// mediaService is the Conversations service of a Conversations media.
func (s *store) mediaService(i uint32) uint16 {
	m := &s.media[i]
	if m.flags&mediaDetached != 0 {
		return s.uploads[m.parent].service
	}
	return s.convs[s.convMsgs[m.parent].conv].service
}

// filename is the original filename of a media: set by a test or an upload,
// else generated from the type and SID, like a phone names a photo.
func (s *store) filename(i uint32) string {
	if s.media[i].flags&mediaCustomName != 0 {
		return s.names[i]
	}
	mt := s.mime.types[s.media[i].mime]
	sid := s.mediaSID(i)
	return mt.namePrefix + sid[2:10] + mt.ext
}
