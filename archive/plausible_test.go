package archive_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// sniff writes data into a Sniffer in chunks of the given size (so that
// sequences split across Writes are exercised) and checks it.
func sniff(data []byte, chunk int, listed, served string) error {
	s := archive.NewSniffer()
	for rest := data; len(rest) > 0; {
		n := min(chunk, len(rest))
		_, _ = s.Write(rest[:n])
		rest = rest[n:]
	}
	return s.Check(listed, served)
}

var chunks = []int{1, 2, 3, 5, 4096, 1 << 20}

// perByte re-encodes binary as text the way decoders that replace every
// invalid byte do (Java, .NET, Go's range over a string).
func perByte(b []byte) []byte {
	var out strings.Builder
	for _, r := range string(b) {
		out.WriteRune(r)
	}
	return []byte(out.String())
}

// perRun re-encodes as strings.ToValidUTF8 does: one U+FFFD per run of
// invalid bytes, so no two are adjacent.
func perRun(b []byte) []byte { return []byte(strings.ToValidUTF8(string(b), "\uFFFD")) }

func TestEmulatorContentIsPlausible(t *testing.T) {
	t.Parallel()
	srv := twiliotest.NewTestServer(t, twiliotest.Config{Seed: 7})
	acct, err := srv.AddAccount(twiliotest.AccountOptions{})
	require.NoError(t, err)
	_, err = srv.Generate(acct.SID, twiliotest.Dataset{Messages: 300, MinMediaSize: 16, MaxMediaSize: 64 << 10})
	require.NoError(t, err)
	types := map[string]int{}
	for m := range srv.AllMedia(acct.SID) {
		rc, err := srv.Content(m.SID)
		require.NoError(t, err)
		data, err := io.ReadAll(rc)
		require.NoError(t, rc.Close())
		require.NoError(t, err)
		types[m.ContentType]++
		assert.NoError(t, sniff(data, 4096, m.ContentType, m.ContentType), "%s %s (%d bytes)", m.SID, m.ContentType, len(data))
		if m.ContentType != "text/plain" && m.ContentType != "text/vcard" {
			for name, mangle := range map[string]func([]byte) []byte{"per byte": perByte, "per run": perRun} {
				mangled := mangle(data)
				if bytes.Equal(mangled, data) {
					continue // a tiny media whose few bytes after the signature are text: nothing was changed
				}
				err := sniff(mangled, 4096, m.ContentType, m.ContentType)
				assert.ErrorIs(t, err, archive.ErrImplausible, "%s %s mangled %s", m.SID, m.ContentType, name)
			}
		}
	}
	assert.Len(t, types, 10, "every type the emulator generates: %v", types)
}

func TestSnifferRefusesReencodedBinary(t *testing.T) {
	t.Parallel()
	rng := rand.NewChaCha8([32]byte{1})
	body := make([]byte, 20_000)
	_, _ = rng.Read(body)
	for _, c := range []struct{ listed, magic string }{
		{"image/jpeg", "\xFF\xD8\xFF\xE0\x00\x10JFIF\x00"},
		{"image/png", "\x89PNG\r\n\x1A\n"},
		{"image/gif", "GIF89a"},
		{"image/webp", "RIFF\x10\x4E\x00\x00WEBPVP8 "},
		{"image/heic", "\x00\x00\x00\x18ftypheic\x00\x00\x00\x00heicmif1"},
		{"video/mp4", "\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"},
		{"video/3gpp", "\x00\x00\x00\x14ftyp3gp4\x00\x00\x00\x003gp4"},
		{"video/quicktime", "\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  "},
		{"audio/amr", "#!AMR\n"},
		{"audio/ogg", "OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead"},
		{"audio/mpeg", "ID3\x04\x00\x00\x00\x00\x00\x0A"},
		{"application/pdf", "%PDF-1.7\n"},
		{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "PK\x03\x04\x14\x00\x00\x00\x08\x00"},
		{"video/h264", ""},        // no signature known: the U+FFFD rule alone
		{"application/x-foo", ""}, // unknown to the detector
	} {
		data := append([]byte(c.magic), body...)
		t.Run(c.listed, func(t *testing.T) {
			for _, chunk := range chunks {
				require.NoError(t, sniff(data, chunk, c.listed, c.listed), "clean, chunk %d", chunk)
				assert.ErrorIs(t, sniff(perByte(data), chunk, c.listed, c.listed), archive.ErrImplausible, "per byte, chunk %d", chunk)
				assert.ErrorIs(t, sniff(perRun(data), chunk, c.listed, c.listed), archive.ErrImplausible, "per run, chunk %d", chunk)
			}
		})
	}
}

func TestSnifferFindsReplacementsSplitAcrossWrites(t *testing.T) {
	t.Parallel()
	// Binary bytes with two U+FFFD in a row, at every alignment against
	// every chunk size: refused. One alone in binary bytes: chance, kept.
	rng := rand.NewChaCha8([32]byte{2})
	for at := range 8 {
		base := make([]byte, 64)
		_, _ = rng.Read(base)
		base = bytes.ReplaceAll(base, []byte("\uFFFD"), []byte("xxx"))
		two := append(append(append([]byte{}, base[:at]...), "\uFFFD\uFFFD"...), base[at:]...)
		one := append(append(append([]byte{}, base[:at]...), "\uFFFD"...), base[at:]...)
		for _, chunk := range []int{1, 2, 3, 4, 5, 7} {
			assert.ErrorIs(t, sniff(two, chunk, "application/x-foo", ""), archive.ErrImplausible, "two at %d, chunk %d", at, chunk)
			assert.NoError(t, sniff(one, chunk, "application/x-foo", ""), "one at %d, chunk %d", at, chunk)
		}
	}
	// Valid UTF-8 with one U+FFFD, whatever the split of its runes:
	// re-encoded binary.
	text := []byte("é€𝄞 ascii \uFFFD and more é€𝄞")
	for _, chunk := range []int{1, 2, 3, 4, 5} {
		assert.ErrorIs(t, sniff(text, chunk, "application/x-foo", ""), archive.ErrImplausible, "chunk %d", chunk)
	}
}

func TestSnifferText(t *testing.T) {
	t.Parallel()
	vcard := []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Zoë Ålund 😀\r\nEND:VCARD\r\n")
	latin1 := []byte("caf\xe9 r\xe9sum\xe9\n")
	for _, chunk := range chunks {
		assert.NoError(t, sniff(vcard, chunk, "text/vcard", "text/vcard; charset=utf-8"))
		assert.NoError(t, sniff(vcard, chunk, "text/x-vcard", "text/vcard"))
		assert.NoError(t, sniff(latin1, chunk, "text/plain", "text/plain"), "text that is not UTF-8 was not re-encoded")
		assert.ErrorIs(t, sniff(perRun(latin1), chunk, "text/plain", "text/plain"), archive.ErrImplausible)
		assert.ErrorIs(t, sniff([]byte("{\"a\":\"\uFFFD\"}"), chunk, "application/json", ""), archive.ErrImplausible)
	}
}

func TestSnifferContentType(t *testing.T) {
	t.Parallel()
	jpeg := append([]byte("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00"), make([]byte, 100)...)
	png := append([]byte("\x89PNG\r\n\x1A\n"), make([]byte, 100)...)
	for _, c := range []struct {
		data           []byte
		listed, served string
		ok             bool
	}{
		{jpeg, "image/jpeg", "image/jpeg", true},
		{jpeg, "image/jpg", "image/jpeg", true},
		{jpeg, "image/jpeg", "IMAGE/JPEG; charset=binary", true},
		{jpeg, "image/jpeg", "", true},
		{jpeg, "image/jpeg", "application/octet-stream", true},
		{jpeg, "", "image/jpeg", true},
		{jpeg, "image/jpeg", "text/plain; charset=utf-8", false},
		{jpeg, "image/jpeg", "image/png", false},
		{png, "image/jpeg", "image/jpeg", false}, // a PNG is not the JPEG listed
		{png, "", "image/jpeg", false},
		{[]byte("<html>proxy error</html>"), "image/jpeg", "image/jpeg", false},
		{[]byte("PK\x03\x04\x14\x00\x00\x00"), "application/zip", "application/x-zip-compressed", true},
		{[]byte("ID3\x04\x00\x00\x00\x00\x00\x0A frames"), "audio/mp3", "audio/mpeg", true},
		{[]byte("\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom\x00\x00\x00\x00"), "audio/mp4", "audio/mp4", true},
		{[]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00heicmif1"), "video/mp4", "video/mp4", true},
		{[]byte("GIF89a\x01\x00"), "video/mp4", "video/mp4", false},
	} {
		err := sniff(c.data, 4096, c.listed, c.served)
		if c.ok {
			assert.NoError(t, err, "%q served as %q", c.listed, c.served)
		} else {
			assert.ErrorIs(t, err, archive.ErrImplausible, "%q served as %q", c.listed, c.served)
		}
	}
	err := sniff(jpeg, 4096, "image/jpeg", "text/plain; charset=utf-8")
	assert.EqualError(t, err, fmt.Sprintf("%v: served as text/plain, listed as image/jpeg", archive.ErrImplausible))
}

// latin1ToUTF8 re-encodes bytes read as Latin-1 into UTF-8, as a gateway
// that takes a binary body for ISO-8859-1 text does: every byte >= 0x80
// becomes two bytes, and no U+FFFD appears.
func latin1ToUTF8(b []byte) []byte {
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = utf8.AppendRune(out, rune(c))
	}
	return out
}

func TestSnifferRefusesLatin1ReencodedBinaryWithoutSignature(t *testing.T) {
	t.Parallel()
	rng := rand.NewChaCha8([32]byte{9})
	body := make([]byte, 20_000)
	_, _ = rng.Read(body)
	mangled := latin1ToUTF8(body)
	require.True(t, utf8.Valid(mangled))
	require.False(t, bytes.Contains(mangled, []byte("\uFFFD")))
	for _, typ := range []string{"audio/opus", "video/h264", "audio/x-mediasync-unknown", "image/x-mediasync-unknown", "video/x-mediasync-unknown"} {
		for _, chunk := range chunks {
			assert.NoError(t, sniff(body, chunk, typ, typ), "%s: real binary, chunk %d", typ, chunk)
			err := sniff(mangled, chunk, typ, typ)
			assert.ErrorIs(t, err, archive.ErrImplausible, "%s: Latin-1 → UTF-8, chunk %d", typ, chunk)
			assert.ErrorContains(t, err, "valid UTF-8", typ)
		}
		// Bytes with nothing >= 0x80 are what Latin-1 → UTF-8 leaves
		// unchanged, and a short body may be valid UTF-8 by chance.
		assert.NoError(t, sniff(bytes.Repeat([]byte{0, 1, 'a'}, 1000), 4096, typ, typ), typ)
		assert.NoError(t, sniff(mangled[:511], 4096, typ, typ), typ)
	}
	// Types that may legitimately be UTF-8 text are not judged by this rule.
	text := []byte(strings.Repeat("%PDF-1.4 caf\u00e9 r\u00e9sum\u00e9\n", 100))
	assert.NoError(t, sniff(text, 4096, "application/pdf", "application/pdf"))
	assert.NoError(t, sniff(text, 4096, "text/plain", "text/plain"))
	assert.NoError(t, sniff(text, 4096, "application/x-unknown", "application/x-unknown"))
}

func TestSnifferCapsServedType(t *testing.T) {
	t.Parallel()
	served := "text/" + strings.Repeat("x", 5000)
	err := sniff([]byte("\xFF\xD8\xFF\xE0"), 4096, "image/jpeg", served)
	require.ErrorIs(t, err, archive.ErrImplausible)
	assert.Less(t, len(err.Error()), 300, "a served type from the host is quoted capped")
}

// CheckStored judges a stored copy as a download is judged, against the
// listed type and the type it was stored with, and only the copy whose size
// and SHA-256 are given.
func TestCheckStored(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	rng := rand.NewChaCha8([32]byte{3})
	real := append([]byte("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00"), make([]byte, 50_000)...)
	_, _ = rng.Read(real[11:])
	put := func(key, ctype string, body []byte) [32]byte {
		sum := sha256.Sum256(body)
		_, err := s.Put(ctx, archive.PutInput{Key: key, ContentType: ctype, Size: int64(len(body)), SHA256: sum}, bytes.NewReader(body))
		require.NoError(t, err)
		return sum
	}
	goodSum := put("a/good.jpg", "image/jpeg", real)
	mangled := perByte(real)
	badSum := put("a/bad.jpg", "image/jpeg", mangled)
	pngSum := put("a/typed.jpg", "image/png", real)

	require.NoError(t, archive.CheckStored(ctx, s, "a/good.jpg", int64(len(real)), goodSum, "image/jpeg"))
	err = archive.CheckStored(ctx, s, "a/bad.jpg", int64(len(mangled)), badSum, "image/jpeg")
	require.ErrorIs(t, err, archive.ErrImplausible)
	require.ErrorIs(t, archive.CheckStored(ctx, s, "a/typed.jpg", int64(len(real)), pngSum, "image/jpeg"),
		archive.ErrImplausible, "stored as another type than listed")
	require.ErrorIs(t, archive.CheckStored(ctx, s, "a/good.jpg", int64(len(real)), badSum, "image/jpeg"),
		archive.ErrChecksumMismatch, "not the copy the row records")
	require.ErrorIs(t, archive.CheckStored(ctx, s, "a/none.jpg", 1, goodSum, "image/jpeg"), archive.ErrNotFound)
}
