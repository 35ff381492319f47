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

// ValidServiceSID reports whether s is a Conversations Service SID
// (^IS[0-9a-fA-F]{32}$).
func ValidServiceSID(s string) bool { return sids.ValidService(s) }

// ValidConversationSID reports whether s is a Conversation SID
// (^CH[0-9a-fA-F]{32}$).
func ValidConversationSID(s string) bool { return sids.ValidConversation(s) }

// ValidConversationMessageSID reports whether s is a Conversation Message
// SID (^IM[0-9a-fA-F]{32}$).
func ValidConversationMessageSID(s string) bool { return sids.ValidConversationMessage(s) }

// checkSID returns nil if valid(s), else an error (ErrInvalidSID) naming
// what s should be and quoting it cut short.
func checkSID(what, prefix string, valid func(string) bool, s string) error {
	if valid(s) {
		return nil
	}
	return fmt.Errorf("%s SID %s is %w: want %s followed by 32 hex digits", what, quoteInput(s), ErrInvalidSID, prefix)
}

// CheckServiceSID returns nil if s is a Conversations Service SID, else an
// error (ErrInvalidSID).
func CheckServiceSID(s string) error { return checkSID("service", "IS", ValidServiceSID, s) }

// CheckConversationSID returns nil if s is a Conversation SID, else an
// error (ErrInvalidSID).
func CheckConversationSID(s string) error {
	return checkSID("conversation", "CH", ValidConversationSID, s)
}

// CheckConversationMessageSID returns nil if s is a Conversation Message
// SID, else an error (ErrInvalidSID).
func CheckConversationMessageSID(s string) error {
	return checkSID("conversation message", "IM", ValidConversationMessageSID, s)
}
