// Package sids checks the syntax of Twilio SIDs: a two-letter type prefix
// followed by 32 hexadecimal digits (Twilio's OpenAPI patterns, e.g.
// ^ME[0-9a-fA-F]{32}$). It is a leaf, so the twilio client, which speaks
// Twilio, and the catalog, which validates what users name, share one
// definition without either importing the other.
package sids

// Len is the length of every SID.
const Len = 34

// Valid reports whether s is a SID with the given two-letter prefix.
func Valid(s, prefix string) bool {
	if len(s) != Len || s[:2] != prefix {
		return false
	}
	for i := 2; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// ValidMessage reports whether s is a Message SID: SM for SMS, MM for MMS
// (^(SM|MM)[0-9a-fA-F]{32}$).
func ValidMessage(s string) bool { return Valid(s, "SM") || Valid(s, "MM") }

// ValidMedia reports whether s is a Media SID, of Messaging or of the Media
// Content Service (^ME[0-9a-fA-F]{32}$).
func ValidMedia(s string) bool { return Valid(s, "ME") }

// ValidService reports whether s is a Conversations (Chat) Service SID
// (^IS[0-9a-fA-F]{32}$).
func ValidService(s string) bool { return Valid(s, "IS") }

// ValidConversation reports whether s is a Conversation SID
// (^CH[0-9a-fA-F]{32}$).
func ValidConversation(s string) bool { return Valid(s, "CH") }

// ValidConversationMessage reports whether s is a Conversation Message SID
// (^IM[0-9a-fA-F]{32}$).
func ValidConversationMessage(s string) bool { return Valid(s, "IM") }

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}
