package twiliotest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The admin endpoints, under /_emulator/ on the API listener, give a
// benchmark or a test in another process what the Go methods give
// in-process. They need no credentials and are not counted in Stats.
//
//	GET  /_emulator/stats                     Stats
//	POST /_emulator/stats/reset               ResetStats
//	GET  /_emulator/requests                  Requests (the request log)
//	GET  /_emulator/faults                    Faults
//	POST /_emulator/faults                    change the fields given, e.g. {"max_in_flight": 4, "latency": "20ms"}
//	GET  /_emulator/clock                     {"now": …}
//	POST /_emulator/clock                     {"now": "2024-05-01T00:00:00Z"} or {"advance": "5h"} or {"reset": true}
//	GET  /_emulator/deletes?from=N            {"deletes": [...], "next": M}
//	GET  /_emulator/accounts                  the accounts and their credentials
//	POST /_emulator/accounts                  AccountOptions → Account
//	POST /_emulator/accounts/{AC}/media-auth  {"enabled": false}
//	POST /_emulator/accounts/{AC}/generate    Dataset → DatasetSummary
//	POST /_emulator/accounts/{AC}/messages    MessageOptions → MessageInfo
//	GET  /_emulator/media/{ME}                MediaInfo (?sha256=1 adds "sha256")
//	GET  /_emulator/media/{ME}/content        the expected bytes
//	POST /_emulator/media/{ME}/vanish         VanishContent

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	seg := strings.Split(strings.TrimPrefix(r.URL.Path, "/_emulator/"), "/")
	get, post := r.Method == http.MethodGet, r.Method == http.MethodPost
	switch {
	case len(seg) == 1 && seg[0] == "stats" && get:
		writeJSON(w, http.StatusOK, s.Stats())
	case len(seg) == 2 && seg[0] == "stats" && seg[1] == "reset" && post:
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	case len(seg) == 1 && seg[0] == "requests" && get:
		writeJSON(w, http.StatusOK, s.Requests())
	case len(seg) == 1 && seg[0] == "faults" && get:
		writeJSON(w, http.StatusOK, s.Faults())
	case len(seg) == 1 && seg[0] == "faults" && post:
		f := s.Faults()
		if !decodeAdmin(w, r, &f) {
			return
		}
		if err := s.SetFaults(f); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, s.Faults())
	case len(seg) == 1 && seg[0] == "clock":
		s.adminClock(w, r)
	case len(seg) == 1 && seg[0] == "deletes" && get:
		from, _ := strconv.Atoi(r.URL.Query().Get("from"))
		d := s.Deletes(from)
		writeJSON(w, http.StatusOK, map[string]any{"deletes": d, "next": max(from, 0) + len(d)})
	case len(seg) == 1 && seg[0] == "accounts" && get:
		writeJSON(w, http.StatusOK, s.Accounts())
	case len(seg) == 1 && seg[0] == "accounts" && post:
		var opts AccountOptions
		if !decodeAdmin(w, r, &opts) {
			return
		}
		a, err := s.AddAccount(opts)
		adminResult(w, http.StatusCreated, a, err)
	case len(seg) == 3 && seg[0] == "accounts" && post:
		s.adminAccount(w, r, seg[1], seg[2])
	case len(seg) >= 2 && seg[0] == "media":
		s.adminMedia(w, r, seg[1], seg[2:])
	default:
		adminError(w, http.StatusNotFound, fmt.Errorf("no admin endpoint %s %s", r.Method, r.URL.Path))
	}
}

func (s *Server) adminAccount(w http.ResponseWriter, r *http.Request, acct, action string) {
	switch action {
	case "media-auth":
		var body struct {
			Enabled *bool `json:"enabled"`
		}
		if !decodeAdmin(w, r, &body) {
			return
		}
		if body.Enabled == nil {
			adminError(w, http.StatusBadRequest, errors.New(`want {"enabled": true|false}`))
			return
		}
		adminResult(w, http.StatusOK, map[string]bool{"enabled": *body.Enabled}, s.SetMediaAuth(acct, *body.Enabled))
	case "generate":
		var d Dataset
		if !decodeAdmin(w, r, &d) {
			return
		}
		sum, err := s.Generate(acct, d)
		adminResult(w, http.StatusCreated, sum, err)
	case "messages":
		var m MessageOptions
		if !decodeAdmin(w, r, &m) {
			return
		}
		info, err := s.AddMessage(acct, m)
		adminResult(w, http.StatusCreated, info, err)
	default:
		adminError(w, http.StatusNotFound, fmt.Errorf("no admin endpoint %s %s", r.Method, r.URL.Path))
	}
}

func (s *Server) adminMedia(w http.ResponseWriter, r *http.Request, sid string, rest []string) {
	info, ok := s.Media(sid)
	if !ok {
		adminError(w, http.StatusNotFound, fmt.Errorf("media %q: %w", sid, ErrNotFound))
		return
	}
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		out := struct {
			MediaInfo
			SHA256 string `json:"sha256,omitempty"`
		}{MediaInfo: info}
		if r.URL.Query().Get("sha256") != "" {
			var err error
			if out.SHA256, err = s.SHA256(sid); err != nil {
				adminError(w, http.StatusInternalServerError, err)
				return
			}
		}
		writeJSON(w, http.StatusOK, out)
	case len(rest) == 1 && rest[0] == "content" && r.Method == http.MethodGet:
		rc, err := s.Content(sid)
		if err != nil {
			adminError(w, http.StatusInternalServerError, err)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Type", info.ContentType)
		w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
		_, _ = io.Copy(w, rc)
	case len(rest) == 1 && rest[0] == "vanish" && r.Method == http.MethodPost:
		adminResult(w, http.StatusOK, map[string]string{"vanished": sid}, s.VanishContent(sid))
	default:
		adminError(w, http.StatusNotFound, fmt.Errorf("no admin endpoint %s %s", r.Method, r.URL.Path))
	}
}

func (s *Server) adminClock(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var body struct {
			Now     *time.Time `json:"now"`
			Advance string     `json:"advance"`
			Reset   bool       `json:"reset"`
		}
		if !decodeAdmin(w, r, &body) {
			return
		}
		switch {
		case body.Reset:
			s.SetNow(time.Time{})
		case body.Now != nil:
			s.SetNow(*body.Now)
		}
		if body.Advance != "" {
			d, err := time.ParseDuration(body.Advance)
			if err != nil {
				adminError(w, http.StatusBadRequest, fmt.Errorf("advance %q: %w", body.Advance, err))
				return
			}
			s.AdvanceClock(d)
		}
	} else if r.Method != http.MethodGet {
		adminError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s not allowed on %s", r.Method, r.URL.Path))
		return
	}
	writeJSON(w, http.StatusOK, map[string]time.Time{"now": s.Now()})
}

func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		adminError(w, http.StatusBadRequest, fmt.Errorf("request body: %w", err))
		return false
	}
	return true
}

func adminResult(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, ErrNotFound) {
			code = http.StatusNotFound
		}
		adminError(w, code, err)
		return
	}
	writeJSON(w, status, v)
}

func adminError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// Accounts returns every account with its credentials.
func (s *Server) Accounts() []Account {
	st := s.store
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]Account, 0, len(st.accounts))
	for _, a := range st.accounts {
		acc := Account{SID: a.sid, AuthToken: a.authToken, ServiceSID: st.serviceSID(a.defaultSvc), MessagingServiceSID: a.mgSID}
		for key, secret := range a.keys {
			acc.APIKey, acc.APISecret = key, secret
		}
		out = append(out, acc)
	}
	return out
}
