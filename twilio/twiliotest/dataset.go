package twiliotest

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Dataset describes data to generate for an account. Generate can run again
// with a later date range to add messages "over time" (for catch-up tests).
type Dataset struct {
	// Seed drives dates, counts, sizes and types. Defaults to Config.Seed.
	// (SIDs and content bytes follow Config.Seed and the order of calls.)
	Seed int64 `json:"seed"`

	// Messages is how many messages to generate, with date_sent spread
	// uniformly over [Start, End). End defaults to the emulator's now, Start
	// to 30 days before End.
	Messages int       `json:"messages"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	// NoMediaShare is the share of messages without media (SMS). Defaults to
	// 0.2; set a negative value for none.
	NoMediaShare float64 `json:"no_media_share"`
	// MinMediaPerMessage and MaxMediaPerMessage bound the media count of a
	// message that has media. Default 1 and 10 (Twilio's maximum).
	MinMediaPerMessage int `json:"min_media_per_message"`
	MaxMediaPerMessage int `json:"max_media_per_message"`
	// MinMediaSize and MaxMediaSize bound one MMS media (log-uniform).
	// Default 1 KiB and 1 MiB; a message's total stays within 5 MB.
	MinMediaSize int64 `json:"min_media_size"`
	MaxMediaSize int64 `json:"max_media_size"`
	// Customers is how many distinct customer numbers write. Default 50.
	Customers int `json:"customers"`

	// Conversations is how many conversations to generate in ServiceSID
	// (default: the account's default service), created over [Start, End),
	// each with ConversationMessages messages (default 10).
	Conversations        int    `json:"conversations"`
	ConversationMessages int    `json:"conversation_messages"`
	ServiceSID           string `json:"service_sid"`
	// MaxConversationMedia bounds media per conversation message (0..N,
	// default 3).
	MaxConversationMedia int `json:"max_conversation_media"`
	// LargeMediaSize, when positive, is the size of the occasional large
	// Conversations media (e.g. 150 MB, Twilio's limit), drawn with
	// probability LargeMediaShare (default 0.02). Other Conversations media
	// follow MinMediaSize..MaxMediaSize.
	LargeMediaSize  int64   `json:"large_media_size"`
	LargeMediaShare float64 `json:"large_media_share"`
}

// DatasetSummary counts what Generate added.
type DatasetSummary struct {
	Messages             int   `json:"messages"`
	Media                int   `json:"media"`
	MediaBytes           int64 `json:"media_bytes"`
	Conversations        int   `json:"conversations"`
	ConversationMessages int   `json:"conversation_messages"`
	ConversationMedia    int   `json:"conversation_media"`
	ConversationBytes    int64 `json:"conversation_bytes"`
}

func (d Dataset) withDefaults(seed int64, now time.Time) (Dataset, error) {
	if d.Seed == 0 {
		d.Seed = seed
	}
	if d.End.IsZero() {
		d.End = now
	}
	if d.Start.IsZero() {
		d.Start = d.End.Add(-30 * 24 * time.Hour)
	}
	if d.NoMediaShare == 0 {
		d.NoMediaShare = 0.2
	}
	d.NoMediaShare = max(d.NoMediaShare, 0)
	if d.MinMediaPerMessage == 0 {
		d.MinMediaPerMessage = 1
	}
	if d.MaxMediaPerMessage == 0 {
		d.MaxMediaPerMessage = MaxMediaPerMessage
	}
	if d.MinMediaSize == 0 {
		d.MinMediaSize = 1024
	}
	if d.MaxMediaSize == 0 {
		d.MaxMediaSize = 1 << 20
	}
	if d.Customers == 0 {
		d.Customers = 50
	}
	if d.ConversationMessages == 0 {
		d.ConversationMessages = 10
	}
	if d.MaxConversationMedia == 0 {
		d.MaxConversationMedia = 3
	}
	if d.LargeMediaShare == 0 {
		d.LargeMediaShare = 0.02
	}
	var errs []error
	if d.Messages < 0 || d.Conversations < 0 || d.ConversationMessages < 0 {
		errs = append(errs, fmt.Errorf("Messages %d, Conversations %d, ConversationMessages %d: must be >= 0", d.Messages, d.Conversations, d.ConversationMessages))
	}
	if !d.End.After(d.Start) {
		errs = append(errs, fmt.Errorf("Start %s, End %s: Start must be before End", d.Start.Format(time.RFC3339), d.End.Format(time.RFC3339)))
	}
	if d.NoMediaShare > 1 {
		errs = append(errs, fmt.Errorf("NoMediaShare %g: must be <= 1", d.NoMediaShare))
	}
	if d.MinMediaPerMessage < 1 || d.MaxMediaPerMessage > MaxMediaPerMessage || d.MinMediaPerMessage > d.MaxMediaPerMessage {
		errs = append(errs, fmt.Errorf("MinMediaPerMessage %d, MaxMediaPerMessage %d: want 1 <= min <= max <= %d", d.MinMediaPerMessage, d.MaxMediaPerMessage, MaxMediaPerMessage))
	}
	if d.MinMediaSize < 1 || d.MinMediaSize > d.MaxMediaSize || d.MaxMediaSize > MaxMessageMediaBytes {
		errs = append(errs, fmt.Errorf("MinMediaSize %d, MaxMediaSize %d: want 1 <= min <= max <= %d", d.MinMediaSize, d.MaxMediaSize, MaxMessageMediaBytes))
	}
	if d.Customers < 1 {
		errs = append(errs, fmt.Errorf("Customers %d: must be >= 1", d.Customers))
	}
	if d.MaxConversationMedia < 0 || d.LargeMediaSize < 0 || d.LargeMediaShare < 0 || d.LargeMediaShare > 1 {
		errs = append(errs, fmt.Errorf("MaxConversationMedia %d, LargeMediaSize %d, LargeMediaShare %g: out of range", d.MaxConversationMedia, d.LargeMediaSize, d.LargeMediaShare))
	}
	return d, errors.Join(errs...)
}

// Generate adds a deterministic dataset to an account: the same Config.Seed,
// the same Dataset and the same sequence of calls give the same SIDs, dates,
// sizes, types and bytes. Content is not stored: it is generated when read.
func (s *Server) Generate(accountSID string, d Dataset) (DatasetSummary, error) {
	d, err := d.withDefaults(s.cfg.Seed, s.Now())
	if err != nil {
		return DatasetSummary{}, fmt.Errorf("generate: %w", err)
	}
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	acct, err := s.accountIndex(accountSID)
	if err != nil {
		return DatasetSummary{}, fmt.Errorf("generate: %w", err)
	}
	svc := st.accounts[acct].defaultSvc
	if d.ServiceSID != "" {
		i, _, ok, err := s.codec.parseSID("ServiceSid", d.ServiceSID, kindService, "IS")
		if err != nil || !ok || int(i) >= len(st.services) || st.services[i].account != acct {
			return DatasetSummary{}, fmt.Errorf("generate: service %q: %w", d.ServiceSID, ErrNotFound)
		}
		svc = uint16(i)
	}
	if len(st.messages)+d.Messages >= math.MaxUint32 || len(st.media)+d.Messages*MaxMediaPerMessage >= math.MaxUint32 {
		return DatasetSummary{}, errors.New("generate: too many records for the emulator's 32-bit indexes")
	}

	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], uint64(d.Seed))
	h := sha256.Sum256(append(append([]byte("twiliotest dataset\x00"), seed[:]...), accountSID...))
	r := rand.New(rand.NewPCG(binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:16])))

	var sum DatasetSummary
	s.generateMessagesLocked(r, acct, d, &sum)
	s.generateConversationsLocked(r, acct, svc, d, &sum)
	return sum, nil
}

func (s *Server) generateMessagesLocked(r *rand.Rand, acct uint16, d Dataset, sum *DatasetSummary) {
	st := s.store
	a := st.accounts[acct]
	customers := make([]uint32, d.Customers)
	for i := range customers {
		customers[i] = st.intern(fmt.Sprintf("+1%03d%07d", 201+r.IntN(780), r.IntN(10_000_000)))
	}
	start, span := d.Start.Unix(), d.End.Unix()-d.Start.Unix()

	// Dates first, sorted, so that arena order follows time and the
	// account's sorted list takes the batch with one append.
	dates := make([]int64, d.Messages)
	for i := range dates {
		dates[i] = start + r.Int64N(span)
	}
	slices.Sort(dates)

	// One backing array for all the batch's media index lists.
	backing := make([]uint32, 0, d.Messages*(d.MinMediaPerMessage+d.MaxMediaPerMessage)/2+16)
	ids := make([]uint32, 0, d.Messages)
	st.messages = slices.Grow(st.messages, d.Messages)
	for _, sent := range dates {
		idx := uint32(len(st.messages))
		rec := msgRec{dateSent: sent, account: acct, lag: uint8(r.IntN(4)), segments: uint8(1 + r.IntN(2))}
		customer, number := customers[r.IntN(len(customers))], a.numbers[r.IntN(len(a.numbers))]
		rec.from, rec.to = customer, number
		if r.IntN(5) == 0 {
			rec.flags |= msgOutbound
			rec.from, rec.to = number, customer
		}
		n := 0
		if r.Float64() >= d.NoMediaShare {
			n = d.MinMediaPerMessage + r.IntN(d.MaxMediaPerMessage-d.MinMediaPerMessage+1)
			rec.flags |= msgMMS
		}
		created := sent - int64(rec.lag)
		sizes := drawSizes(r, n, d.MinMediaSize, d.MaxMediaSize)
		from := len(backing)
		for _, size := range sizes {
			mi := uint32(len(st.media))
			st.media = append(st.media, mediaRec{created: created, size: size, parent: idx, mime: pickMIME(r)})
			backing = append(backing, mi)
			sum.Media++
			sum.MediaBytes += size
		}
		rec.media = backing[from:len(backing):len(backing)]
		st.messages = append(st.messages, rec)
		ids = append(ids, idx)
		sum.Messages++
	}
	a.msgs = mergeSorted(a.msgs, ids, st.msgKey)
}

// drawSizes draws n media sizes log-uniformly in [lo, hi], scaled down to
// keep the message within Twilio's 5 MB.
func drawSizes(r *rand.Rand, n int, lo, hi int64) []int64 {
	if n == 0 {
		return nil
	}
	sizes := make([]int64, n)
	var total int64
	for i := range sizes {
		sizes[i] = logUniform(r, lo, hi)
		total += sizes[i]
	}
	if total > MaxMessageMediaBytes {
		for i := range sizes {
			sizes[i] = max(1, sizes[i]*MaxMessageMediaBytes/total)
		}
	}
	return sizes
}

func logUniform(r *rand.Rand, lo, hi int64) int64 {
	if lo >= hi {
		return lo
	}
	v := math.Exp(math.Log(float64(lo)) + r.Float64()*(math.Log(float64(hi))-math.Log(float64(lo))))
	return min(max(int64(v), lo), hi)
}

func pickMIME(r *rand.Rand) uint16 {
	n := r.IntN(1000)
	for i, w := range mimeWeights {
		if n < w {
			return uint16(i)
		}
		n -= w
	}
	return 0
}

var authors = []string{"customer", "agent_ana", "agent_bo", "+15005550006", "whatsapp:+15005550009"}

func (s *Server) generateConversationsLocked(r *rand.Rand, acct, svc uint16, d Dataset, sum *DatasetSummary) {
	if d.Conversations == 0 {
		return
	}
	st := s.store
	start, span := d.Start.Unix(), d.End.Unix()-d.Start.Unix()
	dates := make([]int64, d.Conversations)
	for i := range dates {
		dates[i] = start + r.Int64N(span)
	}
	slices.Sort(dates)
	for _, created := range dates {
		state := uint8(0)
		if x := r.IntN(10); x >= 8 {
			state = uint8(x - 7) // inactive or closed
		}
		ci := st.addConvLocked(acct, svc, created, state)
		sum.Conversations++
		at := created
		for range d.ConversationMessages {
			at += 1 + r.Int64N(3600)
			mi := st.addConvMsgLocked(ci, at, authors[r.IntN(len(authors))])
			sum.ConversationMessages++
			for range r.IntN(d.MaxConversationMedia + 1) {
				size := logUniform(r, d.MinMediaSize, d.MaxMediaSize)
				if d.LargeMediaSize > 0 && r.Float64() < d.LargeMediaShare {
					size = d.LargeMediaSize
				}
				idx := uint32(len(st.media))
				st.media = append(st.media, mediaRec{created: at, size: size, parent: mi, mime: pickMIME(r), flags: mediaConversation})
				cm := &st.convMsgs[mi]
				cm.media = append(cm.media, idx)
				sum.ConversationMedia++
				sum.ConversationBytes += size
			}
		}
	}
}
