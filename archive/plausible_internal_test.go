package archive

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// hasHigh is bytes.ContainsFunc(p, r >= utf8.RuneSelf), at every length
// and offset of the high byte.
func TestHasHighIsContainsFunc(t *testing.T) {
	for n := range 40 {
		for at := -1; at < n; at++ {
			p := bytes.Repeat([]byte("a"), n)
			if at >= 0 {
				p[at] = 0x80 | byte(at)
			}
			want := bytes.ContainsFunc(p, func(r rune) bool { return r >= utf8.RuneSelf })
			if got := hasHigh(p); got != want {
				t.Fatalf("hasHigh(%q) = %v, want %v", p, got, want)
			}
		}
	}
}
