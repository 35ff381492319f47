package archive_test

import (
	"crypto/sha256"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
)

// Conversations keys are a contract too: the source after the account, and
// a Messaging key (no source, or "messaging") unchanged by it.
func TestConversationsKeysGolden(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 4, 2, 23, 30, 0, 0, time.UTC)
	k := archive.KeyInfo{
		AccountSID: testAccount, MessageSID: "IM89abcdef0123456789abcdef01234567", MediaSID: testMedia,
		ContentType: "image/png", DateSent: created, Source: archive.SourceConversations,
		ConversationSID: "CH0123456789abcdef0123456789abcdef", Author: "ana", Filename: "a.png",
	}
	assert.Equal(t, "media/AC0123456789abcdef0123456789abcdef/conversations/2026/04/02/IM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123.png",
		archive.ObjectKey("media", k))
	sha := sha256.Sum256([]byte("{}"))
	assert.Equal(t, "media/AC0123456789abcdef0123456789abcdef/conversations/2026/04/02/IM89abcdef0123456789abcdef01234567/IM89abcdef0123456789abcdef01234567-44136fa355b3678a.json",
		archive.MessageRecordKey("media", k, sha))
	m := k
	m.Source = "messaging"
	assert.Equal(t, "media/AC0123456789abcdef0123456789abcdef/2026/04/02/IM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123.png",
		archive.ObjectKey("media", m))
	// A Messaging message's record (#17): beside its media, no source segment.
	assert.Equal(t, "media/AC0123456789abcdef0123456789abcdef/2026/04/02/MM89abcdef0123456789abcdef01234567/MM89abcdef0123456789abcdef01234567-44136fa355b3678a.json",
		archive.MessageRecordKey("media", archive.KeyInfo{AccountSID: testAccount, MessageSID: "MM89abcdef0123456789abcdef01234567", DateSent: created}, sha))
}

// A Conversations media's metadata names its source, conversation, author
// and filename, in printable ASCII that decodes back to them, and stays
// within S3's limit whatever their length.
func TestConversationsMetadata(t *testing.T) {
	t.Parallel()
	k := archive.KeyInfo{
		AccountSID: testAccount, MessageSID: "IM89abcdef0123456789abcdef01234567", MediaSID: testMedia,
		Source: archive.SourceConversations, ConversationSID: "CH0123456789abcdef0123456789abcdef",
		Author: "José +1 555", Filename: "résumé final.pdf",
	}
	md := archive.MediaMetadata(k, time.Time{})
	assert.Equal(t, "conversations", md[archive.MetaSource])
	assert.Equal(t, k.ConversationSID, md[archive.MetaConversationSID])
	for _, f := range []struct{ key, want string }{{archive.MetaAuthor, k.Author}, {archive.MetaFilename, k.Filename}} {
		v := md[f.key]
		for _, r := range v {
			require.True(t, r > ' ' && r < 0x7f, "%s = %q is not printable ASCII without spaces", f.key, v)
		}
		got, err := url.PathUnescape(v)
		require.NoError(t, err)
		assert.Equal(t, f.want, got)
	}
	k.Filename = strings.Repeat("é", 255)
	md = archive.MediaMetadata(k, time.Time{})
	assert.LessOrEqual(t, len(md[archive.MetaFilename]), 600)
	got, err := url.PathUnescape(md[archive.MetaFilename])
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(k.Filename, got) && got != "", "cut at a rune boundary: %q", got)

	// Messaging media carry none of them.
	k.Source = ""
	md = archive.MediaMetadata(k, time.Time{})
	assert.NotContains(t, md, archive.MetaSource)
	assert.NotContains(t, md, archive.MetaAuthor)
}
