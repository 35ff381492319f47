package twiliotest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSIDCodecRoundTrip(t *testing.T) {
	t.Parallel()
	c := newSIDCodec(1)
	for _, idx := range []uint32{0, 1, 2, 1 << 20, 1<<32 - 1} {
		body := c.encode(kindMedia, idx)
		require.Len(t, body, 32)
		require.Equal(t, strings.ToLower(body), body)
		got, ok := c.decode(kindMedia, body)
		require.True(t, ok)
		require.Equal(t, idx, got)
		got, ok = c.decode(kindMedia, strings.ToUpper(body))
		require.True(t, ok, "SIDs are accepted in either hex case")
		require.Equal(t, idx, got)
		_, ok = c.decode(kindMessage, body)
		require.False(t, ok, "a media SID never decodes as a message")
		_, ok = newSIDCodec(2).decode(kindMedia, body)
		require.False(t, ok, "another seed's SIDs are unknown")
	}
	require.NotEqual(t, c.encode(kindMedia, 1), newSIDCodec(2).encode(kindMedia, 1))
}

func TestCheckSIDShape(t *testing.T) {
	t.Parallel()
	hex := strings.Repeat("aB", 16)
	for s, want := range map[string]bool{
		"ME" + hex:            true,
		"MM" + hex:            false, // wrong prefix for this check
		"ME" + hex[:31]:       false,
		"ME" + hex + "0":      false,
		"ME" + hex[:31] + "g": false,
		"me" + hex:            false,
		"":                    false,
	} {
		_, ok := checkSIDShape(s, "ME")
		require.Equal(t, want, ok, s)
	}
}
