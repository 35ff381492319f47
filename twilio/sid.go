package twilio

import (
	"errors"
	"fmt"

	"github.com/mediasync/mediasync/internal/sids"
)

// Twilio SIDs are a two-letter type prefix followed by 32 hexadecimal digits
// (Twilio's OpenAPI patterns, e.g. ^ME[0-9a-fA-F]{32}$). The checks below
// match those patterns exactly; sid_test.go holds them to the regular
// expressions in the OpenAPI document.

const sidLen = sids.Len

// ValidAccountSID reports whether s is an Account SID (^AC[0-9a-fA-F]{32}$).
func ValidAccountSID(s string) bool { return validSID(s, "AC") }

// ValidMessageSID reports whether s is a Message SID: SM for SMS, MM for MMS
// (^(SM|MM)[0-9a-fA-F]{32}$).
func ValidMessageSID(s string) bool { return sids.ValidMessage(s) }

// ValidMediaSID reports whether s is a Media SID (^ME[0-9a-fA-F]{32}$).
func ValidMediaSID(s string) bool { return validSID(s, "ME") }

// ValidAPIKeySID reports whether s is an API Key SID (^SK[0-9a-fA-F]{32}$).
func ValidAPIKeySID(s string) bool { return validSID(s, "SK") }

// ErrInvalidSID marks a SID that does not match its pattern, from a caller
// or read from a Twilio response.
var ErrInvalidSID = errors.New("not valid")

// CheckMessageSID returns nil if s is a Message SID, else an error
// (ErrInvalidSID) that quotes s cut short: s may be outside input of any
// length.
func CheckMessageSID(s string) error {
	if ValidMessageSID(s) {
		return nil
	}
	return fmt.Errorf("message SID %s is %w: want SM or MM followed by 32 hex digits", quoteInput(s), ErrInvalidSID)
}

// CheckMediaSID returns nil if s is a Media SID, else an error
// (ErrInvalidSID) that quotes s cut short.
func CheckMediaSID(s string) error {
	if ValidMediaSID(s) {
		return nil
	}
	return fmt.Errorf("media SID %s is %w: want ME followed by 32 hex digits", quoteInput(s), ErrInvalidSID)
}

func validSID(s, prefix string) bool { return sids.Valid(s, prefix) }
