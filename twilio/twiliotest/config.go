package twiliotest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// Config sets up a Server. The zero value is a working emulator on loopback
// ports chosen by the system.
type Config struct {
	// APIAddr is where the API listens (Messaging, Conversations, MCS and the
	// /_emulator/ admin endpoints). Defaults to "127.0.0.1:0".
	APIAddr string
	// APIHost is the host name the API advertises in absolute URLs
	// (Conversations meta, MCS url). Defaults to the listener's IP.
	APIHost string
	// SignedAddr is where signed media URLs are served. Defaults to
	// "127.0.0.1:0".
	SignedAddr string
	// SignedHost is the host name signed URLs carry. It must differ from
	// APIHost as a NAME (Go's http.Client keeps Authorization across a
	// redirect to the same host name on another port). Defaults to
	// "localhost" (or "127.0.0.1" when APIHost is "localhost").
	SignedHost string

	// Seed makes SIDs, generated content and fault draws deterministic.
	// Defaults to 1.
	Seed int64
	// Now is the clock for dates the emulator stamps (uploads, the delete
	// log) and for signed URL expiry. Server.SetNow overrides it at run
	// time. Defaults to time.Now.
	Now func() time.Time

	// RedirectStatus is the status of the content redirect: 302 (default)
	// or 307, both seen from Twilio.
	RedirectStatus int
	// RedirectHops is how many redirects lead to the bytes: 1 (default) or 2
	// (a first signed URL that redirects to a second, as Twilio's CDN does at
	// times). Every hop rejects Authorization.
	RedirectHops int
	// SignedURLTTL is how long a signed URL stays valid. Defaults to 4 hours,
	// as Twilio documents.
	SignedURLTTL time.Duration
	// DirectURLTTL is how long an MCS links.content_direct_temporary stays
	// valid, e.g. time.Second for tests of a client that must fetch the
	// Media resource again. Twilio does not document the lifetime (clients
	// are to read Expires); defaults to SignedURLTTL.
	DirectURLTTL time.Duration

	// MaxUploadSize bounds an MCS upload. Defaults to 150 MB, Twilio's limit
	// for Conversations media.
	MaxUploadSize int64
	// UploadDir is where MCS uploads are spooled. Defaults to a temporary
	// directory removed by Close.
	UploadDir string
	// RequestLogSize bounds the request log. Defaults to 10000; -1 disables
	// it.
	RequestLogSize int

	// Faults are the load limits and injected faults in force from the
	// start; Server.SetFaults changes them at run time.
	Faults Faults
}

// Faults are the load limits and injected faults of a Server. Each can be
// set in Config, changed at run time with Server.SetFaults or POST
// /_emulator/faults, and is a flag of cmd/twilio-emulator. Shares are
// fractions in [0, 1]; zero values disable a fault.
type Faults struct {
	// MaxInFlight is the per-account limit on API requests in flight;
	// a request beyond it is answered 429 / 20429 without being processed,
	// as Twilio's concurrency limit does. 0 means no limit.
	MaxInFlight int
	// RequestsPerSecond is the per-account rate limit (a token bucket with a
	// burst of one second's worth), answered like MaxInFlight. 0: no limit.
	RequestsPerSecond float64
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up) on 429 answers. Twilio does not promise the header.
	RetryAfter time.Duration
	// Latency is added before every API answer.
	Latency time.Duration
	// DeleteLatency is added, on top of Latency, before every API DELETE
	// is processed: a slow Twilio while deletes queue behind it.
	DeleteLatency time.Duration
	// ErrorRate is the share of API requests answered 500 or 503 (half each)
	// before being processed.
	ErrorRate float64
	// CutRate is the share of content downloads whose body stops after
	// about half of Content-Length and whose connection is then closed.
	CutRate float64
	// ResetRate is the share of content downloads whose connection is reset
	// (TCP RST) after the headers and a part of the body.
	ResetRate float64
	// VanishRate is the share of media whose content answers 404 while the
	// media is still listed and fetchable as JSON (content lost on Twilio's
	// side). Which media vanish is decided by SID, so it is stable.
	VanishRate float64
	// BodyBytesPerSecond throttles content bodies. 0: full speed.
	BodyBytesPerSecond int64
}

func (f Faults) validate() error {
	var errs []error
	if f.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("MaxInFlight %d: must be >= 0", f.MaxInFlight))
	}
	if f.RequestsPerSecond < 0 {
		errs = append(errs, fmt.Errorf("RequestsPerSecond %g: must be >= 0", f.RequestsPerSecond))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"RetryAfter", f.RetryAfter}, {"Latency", f.Latency}, {"DeleteLatency", f.DeleteLatency}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must be >= 0", d.name, d.v))
		}
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"ErrorRate", f.ErrorRate}, {"CutRate", f.CutRate}, {"ResetRate", f.ResetRate}, {"VanishRate", f.VanishRate}} {
		if !(r.v >= 0 && r.v <= 1) {
			errs = append(errs, fmt.Errorf("%s %g: must be in [0, 1]", r.name, r.v))
		}
	}
	if f.CutRate+f.ResetRate > 1 {
		errs = append(errs, fmt.Errorf("CutRate %g + ResetRate %g: must not exceed 1", f.CutRate, f.ResetRate))
	}
	if f.BodyBytesPerSecond < 0 {
		errs = append(errs, fmt.Errorf("BodyBytesPerSecond %d: must be >= 0", f.BodyBytesPerSecond))
	}
	return errors.Join(errs...)
}

// faultsJSON is the wire form of Faults on the admin endpoints: snake_case
// names and durations as Go duration strings ("250ms").
type faultsJSON struct {
	MaxInFlight        *int     `json:"max_in_flight,omitempty"`
	RequestsPerSecond  *float64 `json:"requests_per_second,omitempty"`
	RetryAfter         *string  `json:"retry_after,omitempty"`
	Latency            *string  `json:"latency,omitempty"`
	DeleteLatency      *string  `json:"delete_latency,omitempty"`
	ErrorRate          *float64 `json:"error_rate,omitempty"`
	CutRate            *float64 `json:"cut_rate,omitempty"`
	ResetRate          *float64 `json:"reset_rate,omitempty"`
	VanishRate         *float64 `json:"vanish_rate,omitempty"`
	BodyBytesPerSecond *int64   `json:"body_bytes_per_second,omitempty"`
}

// MarshalJSON writes every field, durations as strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	ra, lat, dlat := f.RetryAfter.String(), f.Latency.String(), f.DeleteLatency.String()
	return json.Marshal(faultsJSON{
		MaxInFlight: &f.MaxInFlight, RequestsPerSecond: &f.RequestsPerSecond,
		RetryAfter: &ra, Latency: &lat, DeleteLatency: &dlat, ErrorRate: &f.ErrorRate, CutRate: &f.CutRate,
		ResetRate: &f.ResetRate, VanishRate: &f.VanishRate, BodyBytesPerSecond: &f.BodyBytesPerSecond,
	})
}

// UnmarshalJSON changes only the fields present, so a partial document
// updates the faults in force.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var w faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	setDur := func(name string, s *string, d *time.Duration) error {
		if s == nil {
			return nil
		}
		v, err := time.ParseDuration(*s)
		if err != nil {
			return fmt.Errorf("%s %q: %w", name, *s, err)
		}
		*d = v
		return nil
	}
	if err := setDur("retry_after", w.RetryAfter, &f.RetryAfter); err != nil {
		return err
	}
	if err := setDur("latency", w.Latency, &f.Latency); err != nil {
		return err
	}
	if err := setDur("delete_latency", w.DeleteLatency, &f.DeleteLatency); err != nil {
		return err
	}
	set := func(p *float64, v *float64) {
		if v != nil {
			*p = *v
		}
	}
	if w.MaxInFlight != nil {
		f.MaxInFlight = *w.MaxInFlight
	}
	set(&f.RequestsPerSecond, w.RequestsPerSecond)
	set(&f.ErrorRate, w.ErrorRate)
	set(&f.CutRate, w.CutRate)
	set(&f.ResetRate, w.ResetRate)
	set(&f.VanishRate, w.VanishRate)
	if w.BodyBytesPerSecond != nil {
		f.BodyBytesPerSecond = *w.BodyBytesPerSecond
	}
	return nil
}

// withDefaults fills unset fields and validates the result.
func (c Config) withDefaults() (Config, error) {
	if c.APIAddr == "" {
		c.APIAddr = "127.0.0.1:0"
	}
	if c.SignedAddr == "" {
		c.SignedAddr = "127.0.0.1:0"
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RedirectStatus == 0 {
		c.RedirectStatus = 302
	}
	if c.RedirectHops == 0 {
		c.RedirectHops = 1
	}
	if c.SignedURLTTL == 0 {
		c.SignedURLTTL = 4 * time.Hour
	}
	if c.DirectURLTTL == 0 {
		c.DirectURLTTL = c.SignedURLTTL
	}
	if c.MaxUploadSize == 0 {
		c.MaxUploadSize = 150 * 1000 * 1000
	}
	if c.RequestLogSize == 0 {
		c.RequestLogSize = 10000
	}
	var errs []error
	if c.RedirectStatus != 302 && c.RedirectStatus != 307 {
		errs = append(errs, fmt.Errorf("RedirectStatus %d: must be 302 or 307", c.RedirectStatus))
	}
	if c.RedirectHops != 1 && c.RedirectHops != 2 {
		errs = append(errs, fmt.Errorf("RedirectHops %d: must be 1 or 2", c.RedirectHops))
	}
	if c.SignedURLTTL < 0 {
		errs = append(errs, fmt.Errorf("SignedURLTTL %s: must be positive", c.SignedURLTTL))
	}
	if c.DirectURLTTL < 0 {
		errs = append(errs, fmt.Errorf("DirectURLTTL %s: must be positive", c.DirectURLTTL))
	}
	if c.MaxUploadSize < 0 {
		errs = append(errs, fmt.Errorf("MaxUploadSize %d: must be positive", c.MaxUploadSize))
	}
	if c.RequestLogSize < -1 {
		errs = append(errs, fmt.Errorf("RequestLogSize %d: must be positive, or -1 to disable", c.RequestLogSize))
	}
	for _, a := range []struct{ name, v string }{{"APIAddr", c.APIAddr}, {"SignedAddr", c.SignedAddr}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", a.name, a.v, err))
		}
	}
	if err := c.Faults.validate(); err != nil {
		errs = append(errs, fmt.Errorf("Faults: %w", err))
	}
	return c, errors.Join(errs...)
}
