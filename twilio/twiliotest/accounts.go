package twiliotest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/http"
)

// Account is a Twilio account of the emulator with its credentials. All
// secrets are [A-Za-z0-9] only: twilio-go refuses anything else.
type Account struct {
	SID       string `json:"account_sid"` // AC…
	AuthToken string `json:"auth_token"`
	APIKey    string `json:"api_key"` // SK…, an API key of the account
	APISecret string `json:"api_secret"`
	// ServiceSID is the account's default Conversations service (IS…), the
	// one /v1/Conversations lists.
	ServiceSID string `json:"service_sid"`
	// MessagingServiceSID is the MG… its messages carry.
	MessagingServiceSID string `json:"messaging_service_sid"`
}

// AccountOptions sets up an account. Empty credentials are generated from
// the seed, so the same seed gives the same credentials.
type AccountOptions struct {
	SID       string `json:"account_sid"`
	AuthToken string `json:"auth_token"`
	APIKey    string `json:"api_key"`
	APISecret string `json:"api_secret"`
	// MediaAuthDisabled turns off "HTTP auth on media" for the account: its
	// media content URLs then answer without credentials. Twilio now
	// enforces auth on all media, which is the default.
	MediaAuthDisabled bool `json:"media_auth_disabled"`
}

// alnum generates n characters of [A-Za-z0-9] from r.
func alnum(r *rand.Rand, n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

func hexString(r *rand.Rand, n int) string {
	const chars = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// AddAccount creates an account with its default Conversations service and
// returns its credentials.
func (s *Server) AddAccount(opts AccountOptions) (Account, error) {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	n := uint32(len(st.accounts))
	if n >= 1<<16-1 {
		return Account{}, fmt.Errorf("add account: too many accounts")
	}
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], uint64(s.cfg.Seed))
	h := sha256.Sum256(fmt.Appendf(seed[:], "account %d", n))
	r := rand.New(rand.NewPCG(binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:16])))

	a := &account{
		sid:       opts.SID,
		authToken: opts.AuthToken,
		keys:      map[string]string{},
		mediaAuth: !opts.MediaAuthDisabled,
		mgSID:     s.codec.sid("MG", kindMessagingService, n),
	}
	if a.sid == "" {
		a.sid = s.codec.sid("AC", kindAccount, n)
	} else if _, ok := checkSIDShape(a.sid, "AC"); !ok {
		return Account{}, fmt.Errorf("add account: SID %q: want AC and 32 hex digits", a.sid)
	}
	if _, dup := st.accountBySID[a.sid]; dup {
		return Account{}, fmt.Errorf("add account: SID %s already exists", a.sid)
	}
	if a.authToken == "" {
		a.authToken = hexString(r, 32)
	}
	key, secret := opts.APIKey, opts.APISecret
	if key == "" {
		key = s.codec.sid("SK", kindAPIKey, n)
	}
	if secret == "" {
		secret = alnum(r, 32)
	}
	if _, ok := checkSIDShape(key, "SK"); !ok {
		return Account{}, fmt.Errorf("add account: APIKey %q: want SK and 32 hex digits", key)
	}
	if _, dup := st.keyOwner[key]; dup {
		return Account{}, fmt.Errorf("add account: APIKey %s already exists", key)
	}
	for _, c := range []struct{ name, v string }{{"AuthToken", a.authToken}, {"APISecret", secret}} {
		if !isAlnum(c.v) {
			return Account{}, fmt.Errorf("add account: %s must be [A-Za-z0-9] only (twilio-go refuses other characters)", c.name)
		}
	}
	a.keys[key] = secret
	for range 3 {
		a.numbers = append(a.numbers, st.intern(fmt.Sprintf("+1%03d555%04d", 200+r.IntN(700), r.IntN(10000))))
	}

	idx := uint16(n)
	st.accountBySID[a.sid] = idx
	st.keyOwner[key] = idx
	st.accounts = append(st.accounts, a)
	a.defaultSvc = st.addServiceLocked(idx)
	return Account{
		SID: a.sid, AuthToken: a.authToken, APIKey: key, APISecret: secret,
		ServiceSID: st.serviceSID(a.defaultSvc), MessagingServiceSID: a.mgSID,
	}, nil
}

func (st *store) addServiceLocked(acct uint16) uint16 {
	i := uint16(len(st.services))
	st.services = append(st.services, svcRec{account: acct})
	a := st.accounts[acct]
	a.services = append(a.services, i)
	return i
}

// AddService creates another Conversations service for an account and
// returns its SID.
func (s *Server) AddService(accountSID string) (string, error) {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	acct, ok := st.accountBySID[accountSID]
	if !ok {
		return "", fmt.Errorf("add service: unknown account %q", accountSID)
	}
	if len(st.services) >= 1<<16-1 {
		return "", fmt.Errorf("add service: too many services")
	}
	return st.serviceSID(st.addServiceLocked(acct)), nil
}

// SetMediaAuth turns the account's "HTTP auth on media" setting on or off.
func (s *Server) SetMediaAuth(accountSID string, enabled bool) error {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	acct, ok := st.accountBySID[accountSID]
	if !ok {
		return fmt.Errorf("set media auth: unknown account %q", accountSID)
	}
	st.accounts[acct].mediaAuth = enabled
	return nil
}

// authenticate returns the account whose credentials the request carries:
// Account SID + Auth Token, or an API key SID + secret of the account.
func (st *store) authenticate(r *http.Request) (uint16, bool) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return 0, false
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if acct, ok := st.accountBySID[user]; ok {
		return acct, subtle.ConstantTimeCompare([]byte(pass), []byte(st.accounts[acct].authToken)) == 1
	}
	if acct, ok := st.keyOwner[user]; ok {
		return acct, subtle.ConstantTimeCompare([]byte(pass), []byte(st.accounts[acct].keys[user])) == 1
	}
	return 0, false
}
