package twiliotest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediasync/mediasync/internal/sleep"
)

// Server is a running emulator: the Twilio API on one listener, signed
// media URLs on a second one under another host name.
type Server struct {
	cfg   Config
	codec *sidCodec
	keys  contentKeys
	store *store
	meter *meter
	clock *clock

	faultsMu sync.RWMutex
	faults   Faults
	rngMu    sync.Mutex
	rng      *rand.Rand

	signKey   [32]byte
	keyPairID string
	reqSeq    atomic.Uint32

	apiURL, signedURL string
	apiLn, signedLn   net.Listener
	apiSrv, signedSrv *http.Server
	uploadDir         string
	ownUploadDir      bool
	baseCtx           context.Context // parent of every request's context
	cancelBase        context.CancelFunc
	conns             connTracker
	closeOnce         sync.Once
	closeErr          error
}

// connTracker knows the connections that never sent a request: Shutdown
// would wait five seconds for each (net/http issue 22682), so Close closes
// them itself.
type connTracker struct {
	mu  sync.Mutex
	new map[net.Conn]struct{}
}

func (t *connTracker) track(c net.Conn, state http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if state == http.StateNew {
		t.new[c] = struct{}{}
	} else {
		delete(t.new, c)
	}
}

func (t *connTracker) closeNew() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.new {
		_ = c.Close()
		delete(t.new, c)
	}
}

// NewServer starts an emulator with no accounts; add them with AddAccount.
func NewServer(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("twiliotest: config: %w", err)
	}
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], uint64(cfg.Seed))
	s := &Server{
		cfg:     cfg,
		codec:   newSIDCodec(cfg.Seed),
		keys:    newContentKeys(cfg.Seed),
		meter:   newMeter(max(cfg.RequestLogSize, 0)),
		clock:   &clock{base: cfg.Now},
		faults:  cfg.Faults,
		signKey: sha256.Sum256(append([]byte("twiliotest signing key\x00"), seed[:]...)),
	}
	s.store = newStore(s.codec)
	s.rng = rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7477696c696f))
	s.keyPairID = "APKA" + strings.ToUpper(s.codec.encode(kindAPIKey, 1<<31)[:16])

	s.uploadDir = cfg.UploadDir
	if s.uploadDir == "" {
		if s.uploadDir, err = os.MkdirTemp("", "twiliotest-uploads-"); err != nil {
			return nil, fmt.Errorf("twiliotest: upload dir: %w", err)
		}
		s.ownUploadDir = true
	}

	if s.apiLn, err = net.Listen("tcp", cfg.APIAddr); err != nil {
		s.cleanup()
		return nil, fmt.Errorf("twiliotest: listen on APIAddr %s: %w", cfg.APIAddr, err)
	}
	if s.signedLn, err = net.Listen("tcp", cfg.SignedAddr); err != nil {
		s.cleanup()
		return nil, fmt.Errorf("twiliotest: listen on SignedAddr %s: %w", cfg.SignedAddr, err)
	}
	apiHost, signedHost, err := hostNames(cfg, s.apiLn.Addr(), s.signedLn.Addr())
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("twiliotest: %w", err)
	}
	s.apiURL = "http://" + net.JoinHostPort(apiHost, port(s.apiLn.Addr()))
	s.signedURL = "http://" + net.JoinHostPort(signedHost, port(s.signedLn.Addr()))

	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.conns.new = map[net.Conn]struct{}{}
	base := func(net.Listener) context.Context { return s.baseCtx }
	s.apiSrv = &http.Server{Handler: http.HandlerFunc(s.serveAPI), ReadHeaderTimeout: 30 * time.Second, BaseContext: base, ConnState: s.conns.track}
	s.signedSrv = &http.Server{Handler: http.HandlerFunc(s.serveSigned), ReadHeaderTimeout: 30 * time.Second, BaseContext: base, ConnState: s.conns.track}
	go func() { _ = s.apiSrv.Serve(s.apiLn) }()
	go func() { _ = s.signedSrv.Serve(s.signedLn) }()
	return s, nil
}

// hostNames picks the advertised host names and checks they differ.
func hostNames(cfg Config, apiAddr, signedAddr net.Addr) (string, string, error) {
	apiHost := cfg.APIHost
	if apiHost == "" {
		apiHost = apiAddr.(*net.TCPAddr).IP.String()
		if ip := apiAddr.(*net.TCPAddr).IP; ip.IsUnspecified() {
			apiHost = "127.0.0.1"
		}
	}
	signedHost := cfg.SignedHost
	if signedHost == "" {
		signedHost = "localhost"
		if strings.EqualFold(apiHost, "localhost") {
			signedHost = "127.0.0.1"
		}
	}
	if strings.EqualFold(apiHost, signedHost) {
		return "", "", fmt.Errorf("APIHost %q and SignedHost %q must differ: Go's http.Client keeps Authorization on a redirect to the same host name", apiHost, signedHost)
	}
	return apiHost, signedHost, nil
}

func port(a net.Addr) string { return strconv.Itoa(a.(*net.TCPAddr).Port) }

// TB is the part of testing.TB that NewTestServer uses; a *testing.T or
// *testing.B is one. twiliotest declares it rather than import package
// testing, so the emulator binary (cmd/twilio-emulator) does not link it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
}

// NewTestServer starts an emulator for a test and closes it at cleanup.
func NewTestServer(t TB, cfg Config) *Server {
	t.Helper()
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("twiliotest.NewServer: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("twiliotest: close: %v", err)
		}
	})
	return s
}

// URL is the API base URL, e.g. "http://127.0.0.1:41234": Messaging
// (/2010-04-01/…), Conversations and MCS (/v1/…) and the admin endpoints
// (/_emulator/…) all live under it.
func (s *Server) URL() string { return s.apiURL }

// SignedURLBase is the base of signed media URLs, e.g.
// "http://localhost:41235": another host name than URL.
func (s *Server) SignedURLBase() string { return s.signedURL }

// Close stops both listeners, ends requests in progress (slow bodies and
// added latency stop at once), waits for their handlers and removes
// spooled uploads.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if s.cancelBase != nil {
			s.cancelBase()
		}
		s.conns.closeNew()
		var errs []error
		for _, srv := range []*http.Server{s.apiSrv, s.signedSrv} {
			if srv == nil {
				continue
			}
			if err := srv.Shutdown(ctx); err != nil {
				errs = append(errs, srv.Close())
			}
		}
		errs = append(errs, s.cleanup())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func (s *Server) cleanup() error {
	var errs []error
	for _, ln := range []net.Listener{s.apiLn, s.signedLn} {
		if ln != nil {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	if s.ownUploadDir {
		errs = append(errs, os.RemoveAll(s.uploadDir))
	}
	return errors.Join(errs...)
}

// Faults returns the faults in force.
func (s *Server) Faults() Faults {
	s.faultsMu.RLock()
	defer s.faultsMu.RUnlock()
	return s.faults
}

// SetFaults replaces the faults in force; requests already admitted finish
// under the old ones.
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("set faults: %w", err)
	}
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	s.faults = f
	return nil
}

// draw returns a pseudo-random number in [0, 1) from the seeded stream that
// decides faults.
func (s *Server) draw() float64 {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64()
}

// vanishedLocked reports whether a media's content is gone: marked by
// VanishContent, or chosen by Faults.VanishRate from its index.
func (s *Server) vanishedLocked(i uint32) bool {
	if s.store.media[i].flags&mediaVanished != 0 {
		return true
	}
	rate := s.Faults().VanishRate
	if rate <= 0 {
		return false
	}
	k := s.keys.key(i ^ 0x5a5a5a5a)
	return float64(binary.BigEndian.Uint64(k[:8])>>11)/(1<<53) < rate
}

// call is one API request on its way through the emulator.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	route  *route
	params []string // path parameters, in route order
	acct   uint16   // the account, once known
}

// serveAPI is the API listener's handler: admin, routing, Twilio's checks
// in Twilio's order, limits and faults, then the route.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_emulator/") {
		s.serveAdmin(w, r)
		return
	}
	start := time.Now()
	acctSID := ""
	entered, admitted := false, false
	requestID := "RQ" + s.codec.encode(kindRequest, s.reqSeq.Add(1))
	rec := Request{Time: s.Now(), Host: "api", Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Route: "unknown", RequestID: requestID, Authorization: r.Header.Get("Authorization") != ""}
	aw := &trackedWriter{ResponseWriter: w, head: r.Method == http.MethodHead}
	// Twilio's headers go on every API answer, errors included.
	aw.onHeader = func(h http.Header) {
		h.Set("Twilio-Request-Id", requestID)
		h.Set("Twilio-Concurrent-Requests", strconv.Itoa(s.meter.inFlightNow(acctSID)))
		h.Set("Twilio-Request-Duration", strconv.FormatFloat(time.Since(start).Seconds(), 'f', 3, 64))
	}
	aw.finish = func(status int) {
		if entered {
			s.meter.leave(acctSID, admitted, time.Now())
		}
		rec.Account, rec.Status, rec.Duration = acctSID, status, time.Since(start)
		s.meter.record(rec)
	}
	defer aw.done()

	c := &call{w: aw, r: r}
	rt, params := matchRoute(r.URL.Path)
	if rt == nil {
		writeError(aw, r, errNotFound(r))
		return
	}
	rec.Route, c.route, c.params = rt.name, rt, params
	h := rt.handlers[r.Method]
	if r.Method == http.MethodHead && h == nil {
		h = rt.handlers[http.MethodGet]
	}
	if h == nil {
		aw.Header().Set("Allow", rt.allow())
		writeError(aw, r, errMethodNotAllowed(r))
		return
	}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && hasBody(r) {
		// Twilio refuses a GET with a body since 2024-02-15.
		writeError(aw, r, newTwilioError(http.StatusForbidden, codeForbidden, "GET requests must not carry a body"))
		return
	}
	acct, e := s.authorize(c)
	if e != nil {
		if e.Status == http.StatusUnauthorized {
			aw.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		}
		writeError(aw, r, *e)
		return
	}
	c.acct = acct
	s.store.mu.RLock()
	acctSID = s.store.accounts[acct].sid
	s.store.mu.RUnlock()

	f := s.Faults()
	admitted, _ = s.meter.enter(acctSID, f, time.Now())
	entered = true
	if !admitted {
		if f.RetryAfter > 0 {
			aw.Header().Set("Retry-After", strconv.FormatInt(int64((f.RetryAfter+time.Second-1)/time.Second), 10))
		}
		writeError(aw, r, errTooManyRequests())
		return
	}
	latency := f.Latency
	if r.Method == http.MethodDelete {
		latency += f.DeleteLatency
	}
	if latency > 0 {
		if sleep.For(r.Context(), latency) != nil {
			return
		}
	}
	if f.ErrorRate > 0 {
		if d := s.draw(); d < f.ErrorRate {
			s.meter.add(func(st *Stats) { st.InjectedErrors++ })
			if d < f.ErrorRate/2 {
				writeError(aw, r, newTwilioError(http.StatusInternalServerError, codeInternal, "Internal Server Error"))
			} else {
				writeError(aw, r, newTwilioError(http.StatusServiceUnavailable, codeUnavailable, "Service Unavailable"))
			}
			return
		}
	}
	h(s, c)
}

// hasBody reports whether a request carries a non-empty body, reading at
// most one byte of a chunked one.
func hasBody(r *http.Request) bool {
	if r.ContentLength > 0 {
		return true
	}
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return false
	}
	var b [1]byte
	n, _ := io.ReadFull(r.Body, b[:])
	return n > 0
}

// authorize authenticates a call and returns its account. Messaging paths
// name the account; the credentials must be that account's. Media content
// of an account with media auth off needs no credentials.
func (s *Server) authorize(c *call) (uint16, *twilioError) {
	st := s.store
	if c.route.pathAccount {
		sid := c.params[0]
		if _, ok := checkSIDShape(sid, "AC"); !ok {
			e := errInvalidParam("AccountSid", sid, "want AC followed by 32 hex digits")
			return 0, &e
		}
		if c.route.mediaContent {
			st.mu.RLock()
			acct, ok := st.accountBySID[sid]
			open := ok && !st.accounts[acct].mediaAuth
			st.mu.RUnlock()
			if open {
				return acct, nil
			}
		}
		acct, ok := st.authenticate(c.r)
		if !ok || st.accountSIDOf(acct) != sid {
			e := errAuthenticate()
			return 0, &e
		}
		return acct, nil
	}
	acct, ok := st.authenticate(c.r)
	if !ok {
		e := errAuthenticate()
		return 0, &e
	}
	return acct, nil
}

func (st *store) accountSIDOf(acct uint16) string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.accounts[acct].sid
}

// route is one API path shape with its handlers per method.
type route struct {
	name         string
	handlers     map[string]func(*Server, *call)
	pathAccount  bool // params[0] is the AccountSid
	mediaContent bool // subject to the account's media-auth switch
	unscoped     bool // a /v1/Conversations path: the account's default service
}

func (rt *route) allow() string {
	var ms []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete} {
		if rt.handlers[m] != nil || m == http.MethodHead && rt.handlers[http.MethodGet] != nil {
			ms = append(ms, m)
		}
	}
	return strings.Join(ms, ", ")
}

var (
	routeMessages = &route{name: "messages.list", pathAccount: true,
		handlers: map[string]func(*Server, *call){http.MethodGet: (*Server).listMessages}}
	routeMessage = &route{name: "messages.fetch", pathAccount: true,
		handlers: map[string]func(*Server, *call){http.MethodGet: (*Server).fetchMessage, http.MethodDelete: (*Server).deleteMessage}}
	routeMediaList = &route{name: "media.list", pathAccount: true,
		handlers: map[string]func(*Server, *call){http.MethodGet: (*Server).listMedia}}
	routeMedia = &route{name: "media.fetch", pathAccount: true,
		handlers: map[string]func(*Server, *call){http.MethodGet: (*Server).fetchMedia, http.MethodDelete: (*Server).deleteMedia}}
	routeMediaXML = &route{name: "media.fetch_xml", pathAccount: true,
		handlers: map[string]func(*Server, *call){http.MethodGet: (*Server).fetchMediaXML}}
	routeMediaContent = &route{name: "media.content", pathAccount: true, mediaContent: true,
		handlers: map[string]func(*Server, *call){http.MethodGet: (*Server).mediaContent}}
	routeConversations = &route{name: "conversations.list", unscoped: true,
		handlers: map[string]func(*Server, *call){http.MethodGet: (*Server).listConversations}}
	routeServiceConversations = &route{name: "service_conversations.list",
		handlers: map[string]func(*Server, *call){http.MethodGet: (*Server).listConversations}}
	routeConvMessages = &route{name: "conversation_messages.list", unscoped: true,
		handlers: map[string]func(*Server, *call){http.MethodGet: (*Server).listConversationMessages}}
	routeServiceConvMessages = &route{name: "service_conversation_messages.list",
		handlers: map[string]func(*Server, *call){http.MethodGet: (*Server).listConversationMessages}}
	routeConvMessage = &route{name: "conversation_messages.fetch", unscoped: true,
		handlers: map[string]func(*Server, *call){http.MethodGet: (*Server).fetchConversationMessage, http.MethodDelete: (*Server).deleteConversationMessage}}
	routeServiceConvMessage = &route{name: "service_conversation_messages.fetch",
		handlers: map[string]func(*Server, *call){http.MethodGet: (*Server).fetchConversationMessage, http.MethodDelete: (*Server).deleteConversationMessage}}
	routeMCSUpload = &route{name: "mcs.upload",
		handlers: map[string]func(*Server, *call){http.MethodPost: (*Server).uploadMCS}}
	routeMCSMedia = &route{name: "mcs.fetch",
		handlers: map[string]func(*Server, *call){http.MethodGet: (*Server).fetchMCS}}
	routeMCSContent = &route{name: "mcs.content",
		handlers: map[string]func(*Server, *call){http.MethodGet: (*Server).contentMCS}}
)

// matchRoute finds the route of a path and its parameters. Resource names
// keep their extension in the parameter (the handler strips it).
func matchRoute(path string) (*route, []string) {
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for _, s := range seg {
		if s == "" {
			return nil, nil
		}
	}
	switch {
	case len(seg) >= 4 && seg[0] == "2010-04-01" && seg[1] == "Accounts":
		acct, rest := seg[2], seg[3:]
		switch {
		case len(rest) == 1 && rest[0] == "Messages.json":
			return routeMessages, []string{acct}
		case len(rest) == 2 && rest[0] == "Messages" && strings.HasSuffix(rest[1], ".json"):
			return routeMessage, []string{acct, strings.TrimSuffix(rest[1], ".json")}
		case len(rest) == 3 && rest[0] == "Messages" && rest[2] == "Media.json":
			return routeMediaList, []string{acct, rest[1]}
		case len(rest) == 4 && rest[0] == "Messages" && rest[2] == "Media":
			name := rest[3]
			switch {
			case strings.HasSuffix(name, ".json"):
				return routeMedia, []string{acct, rest[1], strings.TrimSuffix(name, ".json")}
			case strings.HasSuffix(name, ".xml"):
				return routeMediaXML, []string{acct, rest[1], strings.TrimSuffix(name, ".xml")}
			case !strings.Contains(name, "."):
				return routeMediaContent, []string{acct, rest[1], name}
			}
		}
	case len(seg) >= 2 && seg[0] == "v1":
		switch {
		case len(seg) == 2 && seg[1] == "Conversations":
			return routeConversations, nil
		case len(seg) == 4 && seg[1] == "Conversations" && seg[3] == "Messages":
			return routeConvMessages, []string{"", seg[2]}
		case len(seg) == 5 && seg[1] == "Conversations" && seg[3] == "Messages":
			return routeConvMessage, []string{"", seg[2], seg[4]}
		case len(seg) == 7 && seg[1] == "Services" && seg[3] == "Conversations" && seg[5] == "Messages":
			return routeServiceConvMessage, []string{seg[2], seg[4], seg[6]}
		case len(seg) == 4 && seg[1] == "Services" && seg[3] == "Conversations":
			return routeServiceConversations, []string{seg[2]}
		case len(seg) == 6 && seg[1] == "Services" && seg[3] == "Conversations" && seg[5] == "Messages":
			return routeServiceConvMessages, []string{seg[2], seg[4]}
		case len(seg) == 4 && seg[1] == "Services" && seg[3] == "Media":
			return routeMCSUpload, []string{seg[2]}
		case len(seg) == 5 && seg[1] == "Services" && seg[3] == "Media":
			return routeMCSMedia, []string{seg[2], seg[4]}
		case len(seg) == 6 && seg[1] == "Services" && seg[3] == "Media" && seg[5] == "Content":
			return routeMCSContent, []string{seg[2], seg[4]}
		}
	}
	return nil, nil
}
