package twilio

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The patterns of Twilio's OpenAPI document (operations_test.go checks
// these strings against the document itself).
var sidPatterns = map[string]func(string) bool{
	"^AC[0-9a-fA-F]{32}$":      ValidAccountSID,
	"^(SM|MM)[0-9a-fA-F]{32}$": ValidMessageSID,
	"^ME[0-9a-fA-F]{32}$":      ValidMediaSID,
	"^SK[0-9a-fA-F]{32}$":      ValidAPIKeySID,
	"^IS[0-9a-fA-F]{32}$":      ValidServiceSID,
	"^CH[0-9a-fA-F]{32}$":      ValidConversationSID,
	"^IM[0-9a-fA-F]{32}$":      ValidConversationMessageSID,
}

func TestValidSIDs(t *testing.T) {
	t.Parallel()
	require.True(t, ValidAccountSID(testAccount))
	require.True(t, ValidMessageSID(testMessage))
	require.True(t, ValidMessageSID("SMded05904ccb347238880ca9264e8fe1c"))
	require.True(t, ValidMediaSID("MEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
	require.True(t, ValidMediaSID("ME0123456789ABCDEF0123456789ABCDEF"))
	require.True(t, ValidAPIKeySID(testKeySID))
	for _, bad := range []string{"", "AC", "ac" + testAccount[2:], testAccount + "0", testAccount[:33], "AC" + "g" + testAccount[3:], "MM" + testAccount[2:]} {
		require.False(t, ValidAccountSID(bad), bad)
	}
	require.False(t, ValidMessageSID("IM"+testMessage[2:]))
	require.False(t, ValidMediaSID(testMessage))
	require.False(t, ValidMediaSID("ME/../"+testMedia[6:]))
}

func FuzzSIDs(f *testing.F) {
	for _, s := range []string{testAccount, testMessage, testMedia, testKeySID, "SMded05904ccb347238880ca9264e8fe1c", "", "AC", "MMc26223853f8c46b4ab7dfaa6abba0a2", "ME0123456789abcdef0123456789abcdeG", "ac0123456789abcdef0123456789abcdef", "ACé123456789abcdef0123456789abcde"} {
		f.Add(s)
	}
	compiled := map[*regexp.Regexp]func(string) bool{}
	for pattern, fn := range sidPatterns {
		compiled[regexp.MustCompile(pattern)] = fn
	}
	f.Fuzz(func(t *testing.T, s string) {
		for re, fn := range compiled {
			if fn(s) != re.MatchString(s) {
				t.Fatalf("%q: validator says %v, pattern %s says %v", s, fn(s), re, re.MatchString(s))
			}
		}
	})
}

func TestCheckSIDsQuoteOutsideInputCutShort(t *testing.T) {
	t.Parallel()
	require.NoError(t, CheckMessageSID(testMessage))
	require.NoError(t, CheckMediaSID(testMedia))
	hostile := "MM" + strings.Repeat("z", 1<<20) + "\n\x00"
	for _, err := range []error{CheckMessageSID(hostile), CheckMediaSID(hostile), CheckMediaSID(testMessage)} {
		require.ErrorIs(t, err, ErrInvalidSID)
		require.Less(t, len(err.Error()), 256, "the error quotes the SID cut short")
		require.NotContains(t, err.Error(), "\n")
	}
	require.ErrorContains(t, CheckMediaSID(testMessage), `media SID "`+testMessage+`" is not valid: want ME`)
}
