package twiliotest

import (
	"maps"
	"sync"
	"time"
)

// Stats are the emulator's counters since the last ResetStats. Tests and
// benchmarks read them through Server.Stats or GET /_emulator/stats.
type Stats struct {
	// Requests counts API requests answered (admin calls excluded).
	Requests int64 `json:"requests"`
	// InFlight is, per account SID, the API requests being processed now.
	InFlight map[string]int `json:"in_flight"`
	// PeakInFlight is, per account, the most API requests processed at once.
	// It never exceeds Faults.MaxInFlight when that is set.
	PeakInFlight map[string]int `json:"peak_in_flight"`
	// PeakDemand is, per account, the most API requests that were in the
	// emulator at once, counting those refused with 429: what the client
	// attempted.
	PeakDemand map[string]int `json:"peak_demand"`
	// InFlightSeconds is, per account, InFlight integrated over time: the
	// seconds of request processing the emulator did. Over a run's length
	// it is the mean number of requests in flight; over the requests
	// admitted, how long the emulator held each (a benchmark tells from it
	// whether a client kept the allowed slots busy or the emulator, short
	// of CPU, answered late).
	InFlightSeconds map[string]float64 `json:"in_flight_seconds"`
	// ByStatus counts API answers by HTTP status.
	ByStatus map[int]int64 `json:"by_status"`
	// ByRoute counts API requests by route name (see Request.Route).
	ByRoute map[string]int64 `json:"by_route"`
	// RateLimited counts 429 answers.
	RateLimited int64 `json:"rate_limited"`
	// InjectedErrors counts 500/503 answers injected by Faults.ErrorRate.
	InjectedErrors int64 `json:"injected_errors"`
	// SignedRequests counts requests to the signed-URL host.
	SignedRequests int64 `json:"signed_requests"`
	// SignedWithAuthorization counts requests to the signed-URL host that
	// carried an Authorization header: credentials that followed a redirect.
	// A correct client keeps it at 0.
	SignedWithAuthorization int64 `json:"signed_with_authorization"`
	// SignedRejected counts signed URLs refused as expired or forged.
	SignedRejected int64 `json:"signed_rejected"`
	// ContentBytes counts content bytes written to clients.
	ContentBytes int64 `json:"content_bytes"`
	// CutBodies and ResetBodies count downloads broken by Faults.
	CutBodies   int64 `json:"cut_bodies"`
	ResetBodies int64 `json:"reset_bodies"`
	// VanishedContent counts content requests answered 404 for vanished media.
	VanishedContent int64 `json:"vanished_content"`
	// Deletes counts media deleted through the API.
	Deletes int64 `json:"deletes"`
}

// Request is one entry of the request log.
type Request struct {
	Time      time.Time     `json:"time"`
	Host      string        `json:"host"` // "api" or "signed"
	Method    string        `json:"method"`
	Path      string        `json:"path"`
	Query     string        `json:"query,omitempty"`
	Route     string        `json:"route"`
	Account   string        `json:"account,omitempty"`
	Status    int           `json:"status"`
	Duration  time.Duration `json:"duration_ns"`
	RequestID string        `json:"request_id,omitempty"`
	// Authorization is true when the request carried an Authorization header.
	Authorization bool `json:"authorization"`
}

// accountLoad is the live load of one account.
type accountLoad struct {
	inFlight   int
	demand     int
	peak       int
	peakDemand int
	busy       time.Duration // inFlight integrated since the last reset
	changed    time.Time     // when inFlight or busy last changed
	tokens     float64
	rate       float64 // the RequestsPerSecond the bucket was filled for
	last       time.Time
}

// meter holds the counters, the per-account load and the request log.
type meter struct {
	mu       sync.Mutex
	stats    Stats
	load     map[string]*accountLoad
	log      []Request
	logNext  int
	logFull  bool
	logLimit int
}

func newMeter(logLimit int) *meter {
	m := &meter{load: make(map[string]*accountLoad), logLimit: max(logLimit, 0)}
	m.resetLocked()
	return m
}

func (m *meter) resetLocked() {
	m.stats = Stats{
		InFlight: map[string]int{}, PeakInFlight: map[string]int{}, PeakDemand: map[string]int{},
		ByStatus: map[int]int64{}, ByRoute: map[string]int64{}, InFlightSeconds: map[string]float64{},
	}
	now := time.Now()
	for _, l := range m.load {
		l.peak, l.peakDemand = l.inFlight, l.demand
		l.busy, l.changed = 0, now
	}
	m.log, m.logNext, m.logFull = nil, 0, false
}

func (m *meter) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resetLocked()
}

// enter admits a request of acct under the limits in f, or refuses it. The
// caller calls leave(acct, admitted) when the answer is written. inFlight is
// the account's count after admission, for Twilio-Concurrent-Requests.
func (m *meter) enter(acct string, f Faults, now time.Time) (admitted bool, inFlight int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.load[acct]
	if l == nil {
		l = &accountLoad{changed: now}
		m.load[acct] = l
	}
	if l.rate != f.RequestsPerSecond {
		// A new rate starts with a full bucket.
		l.rate, l.tokens, l.last = f.RequestsPerSecond, max(f.RequestsPerSecond, 1), now
	}
	l.demand++
	l.peakDemand = max(l.peakDemand, l.demand)
	admitted = true
	if f.MaxInFlight > 0 && l.inFlight >= f.MaxInFlight {
		admitted = false
	}
	if admitted && f.RequestsPerSecond > 0 {
		burst := max(f.RequestsPerSecond, 1)
		l.tokens = min(burst, l.tokens+now.Sub(l.last).Seconds()*f.RequestsPerSecond)
		l.last = now
		if l.tokens < 1 {
			admitted = false
		} else {
			l.tokens--
		}
	}
	if admitted {
		l.advance(now)
		l.inFlight++
		l.peak = max(l.peak, l.inFlight)
	}
	return admitted, l.inFlight
}

func (m *meter) leave(acct string, admitted bool, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.load[acct]
	l.demand--
	if admitted {
		l.advance(now)
		l.inFlight--
	}
}

// advance adds to busy the requests in flight since the last change.
func (l *accountLoad) advance(now time.Time) {
	if now.After(l.changed) {
		l.busy += time.Duration(l.inFlight) * now.Sub(l.changed)
		l.changed = now
	}
}

// inFlightNow is the account's count of requests in flight.
func (m *meter) inFlightNow(acct string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.load[acct]; l != nil {
		return l.inFlight
	}
	return 0
}

func (m *meter) add(f func(*Stats)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&m.stats)
}

// record counts an answered request and appends it to the log.
func (m *meter) record(r Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.Host == "api" {
		m.stats.Requests++
		m.stats.ByStatus[r.Status]++
		m.stats.ByRoute[r.Route]++
		if r.Status == 429 {
			m.stats.RateLimited++
		}
	}
	if m.logLimit == 0 {
		return
	}
	if len(m.log) < m.logLimit {
		m.log = append(m.log, r)
		return
	}
	m.log[m.logNext] = r
	m.logNext = (m.logNext + 1) % m.logLimit
	m.logFull = true
}

func (m *meter) snapshot() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.ByStatus = maps.Clone(m.stats.ByStatus)
	s.ByRoute = maps.Clone(m.stats.ByRoute)
	s.InFlight, s.PeakInFlight, s.PeakDemand = map[string]int{}, map[string]int{}, map[string]int{}
	s.InFlightSeconds = map[string]float64{}
	now := time.Now()
	for acct, l := range m.load {
		if acct == "" {
			continue
		}
		l.advance(now)
		s.InFlightSeconds[acct] = l.busy.Seconds()
		s.InFlight[acct] = l.inFlight
		s.PeakInFlight[acct] = l.peak
		s.PeakDemand[acct] = l.peakDemand
	}
	return s
}

func (m *meter) requests() []Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.logFull {
		return append([]Request(nil), m.log...)
	}
	out := make([]Request, 0, len(m.log))
	out = append(out, m.log[m.logNext:]...)
	return append(out, m.log[:m.logNext]...)
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats { return s.meter.snapshot() }

// ResetStats zeroes the counters and the request log; peaks restart from the
// requests in flight now. The delete log is data, not a statistic: it stays.
func (s *Server) ResetStats() { s.meter.reset() }

// Requests returns the request log, oldest first: the last
// Config.RequestLogSize requests.
func (s *Server) Requests() []Request { return s.meter.requests() }
