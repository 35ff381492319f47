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
}
