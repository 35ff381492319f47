package twilio

import (
	"encoding/base64"
	"fmt"
	"strings"
)

const redacted = "[redacted]"

// credentials are the HTTP Basic credentials for the API hosts: the Account
// SID and Auth Token, or an API Key SID and its secret. The secret is held
// only inside closures: no fmt verb, and no logger that walks structs by
// reflection, can print a closure's captured values. The methods below
// print "[redacted]" for good measure.
type credentials struct {
	header func() string // "Basic <base64>"
	secret func() string
}

func newCredentials(username, password string) *credentials {
	header := "Basic " + base64.StdEncoding.EncodeToString([]byte(username+":"+password))
	return &credentials{
		header: func() string { return header },
		secret: func() string { return password },
	}
}

func (credentials) String() string   { return redacted }
func (credentials) GoString() string { return redacted }

// Format keeps every verb (%v, %+v, %#v, %s, %q, %x) from the fields.
func (credentials) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// redact removes the secret, and the encoded header that contains it, from
// text that came from outside (an error message a server sent back), so a
// server that echoes a request cannot put the secret into our errors.
func (c *credentials) redact(s string) string {
	if c == nil {
		return s
	}
	s = strings.ReplaceAll(s, strings.TrimPrefix(c.header(), "Basic "), redacted)
	if secret := c.secret(); secret != "" {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	return s
}

// checkSecret validates a token or secret without ever echoing it.
func checkSecret(option, field, v string) error {
	if v == "" {
		return fmt.Errorf("twilio: %s: %s is empty", option, field)
	}
	for _, r := range v {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("twilio: %s: %s contains whitespace or control characters (value not shown)", option, field)
		}
	}
	return nil
}
