package sids_test

import (
	"testing"

	"github.com/mediasync/mediasync/internal/sids"
)

func TestValid(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		s, prefix string
		want      bool
	}{
		{"MM0123456789abcdef0123456789ABCDEF", "MM", true},
		{"MM0123456789abcdef0123456789abcde", "MM", false},  // 33 characters
		{"MM0123456789abcdef0123456789abcdeg", "MM", false}, // not hex
		{"SM0123456789abcdef0123456789abcdef", "MM", false}, // another type
		{"mm0123456789abcdef0123456789abcdef", "MM", false}, // the prefix is upper case
		{"", "MM", false},
	} {
		if got := sids.Valid(c.s, c.prefix); got != c.want {
			t.Errorf("Valid(%q, %q) = %v, want %v", c.s, c.prefix, got, c.want)
		}
	}
	if !sids.ValidMessage("SM0123456789abcdef0123456789abcdef") || sids.ValidMessage("ME0123456789abcdef0123456789abcdef") {
		t.Error("ValidMessage takes SM and MM, nothing else")
	}
	for _, c := range []struct {
		name  string
		valid func(string) bool
		good  string
	}{
		{"ValidMedia", sids.ValidMedia, "ME0123456789abcdef0123456789abcdef"},
		{"ValidService", sids.ValidService, "IS0123456789abcdef0123456789abcdef"},
		{"ValidConversation", sids.ValidConversation, "CH0123456789abcdef0123456789abcdef"},
		{"ValidConversationMessage", sids.ValidConversationMessage, "IM0123456789abcdef0123456789abcdef"},
	} {
		if !c.valid(c.good) {
			t.Errorf("%s(%q) = false", c.name, c.good)
		}
		for _, bad := range []string{"", c.good[:33], c.good[:33] + "g", "XX" + c.good[2:], c.good + "0"} {
			if c.valid(bad) {
				t.Errorf("%s(%q) = true", c.name, bad)
			}
		}
	}
}
