package archive_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
)

const (
	testAccount = "AC0123456789abcdef0123456789abcdef"
	testMessage = "MM89abcdef0123456789abcdef01234567"
	testMedia   = "ME456789abcdef0123456789abcdef0123"
)

// The key layout is a contract with every object already archived: these
// keys must never change.
func TestObjectKeyGolden(t *testing.T) {
	t.Parallel()
	sent := time.Date(2024, 3, 9, 14, 5, 0, 0, time.UTC)
	newYork, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	cases := []struct {
		desc        string
		prefix      string
		contentType string
		dateSent    time.Time
		want        string
	}{
		{"plain", "media", "image/jpeg", sent,
			"media/AC0123456789abcdef0123456789abcdef/2024/03/09/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123.jpg"},
		{"no prefix", "", "image/png", sent,
			"AC0123456789abcdef0123456789abcdef/2024/03/09/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123.png"},
		{"prefix slashes trimmed", "/archive/twilio//", "video/mp4", sent,
			"archive/twilio/AC0123456789abcdef0123456789abcdef/2024/03/09/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123.mp4"},
		{"only slashes", "///", "audio/amr", sent,
			"AC0123456789abcdef0123456789abcdef/2024/03/09/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123.amr"},
		{"unknown type has no extension", "m", "application/x-unknown", sent,
			"m/AC0123456789abcdef0123456789abcdef/2024/03/09/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123"},
		{"empty type", "m", "", sent,
			"m/AC0123456789abcdef0123456789abcdef/2024/03/09/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123"},
		{"parameters and case ignored", "m", "Audio/OGG; codecs=opus", sent,
			"m/AC0123456789abcdef0123456789abcdef/2024/03/09/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123.ogg"},
		{"date is UTC: evening in New York is the next day", "m", "text/vcard",
			time.Date(2024, 12, 31, 21, 30, 0, 0, newYork),
			"m/AC0123456789abcdef0123456789abcdef/2025/01/01/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123.vcf"},
		{"last second of a UTC day", "m", "application/pdf", time.Date(2024, 2, 29, 23, 59, 59, 999, time.UTC),
			"m/AC0123456789abcdef0123456789abcdef/2024/02/29/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123.pdf"},
		{"east of UTC is the previous day", "m", "image/heic", time.Date(2024, 1, 1, 5, 0, 0, 0, time.FixedZone("UTC+9", 9*3600)),
			"m/AC0123456789abcdef0123456789abcdef/2023/12/31/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123.heic"},
	}
	for _, c := range cases {
		got := archive.ObjectKey(c.prefix, archive.KeyInfo{
			AccountSID: testAccount, MessageSID: testMessage, MediaSID: testMedia,
			ContentType: c.contentType, DateSent: c.dateSent,
		})
		assert.Equal(t, c.want, got, c.desc)
	}
}

// Every entry of the extension table, pinned. Adding a type means adding it
// here; changing one breaks the keys of archived objects.
func TestExtensionForGolden(t *testing.T) {
	t.Parallel()
	golden := map[string]string{
		"image/jpeg":                    ".jpg",
		"image/jpg":                     ".jpg",
		"image/pjpeg":                   ".jpg",
		"image/png":                     ".png",
		"image/gif":                     ".gif",
		"image/webp":                    ".webp",
		"image/heic":                    ".heic",
		"image/heif":                    ".heif",
		"image/avif":                    ".avif",
		"image/bmp":                     ".bmp",
		"image/x-ms-bmp":                ".bmp",
		"image/tiff":                    ".tiff",
		"image/svg+xml":                 ".svg",
		"video/mp4":                     ".mp4",
		"video/mpeg":                    ".mpeg",
		"video/3gpp":                    ".3gp",
		"video/3gpp2":                   ".3g2",
		"video/quicktime":               ".mov",
		"video/webm":                    ".webm",
		"video/h264":                    ".h264",
		"video/h263":                    ".h263",
		"video/x-msvideo":               ".avi",
		"audio/mpeg":                    ".mp3",
		"audio/mp3":                     ".mp3",
		"audio/amr":                     ".amr",
		"audio/ogg":                     ".ogg",
		"audio/opus":                    ".opus",
		"audio/aac":                     ".aac",
		"audio/wav":                     ".wav",
		"audio/wave":                    ".wav",
		"audio/x-wav":                   ".wav",
		"audio/vnd.wave":                ".wav",
		"audio/mp4":                     ".m4a",
		"audio/x-m4a":                   ".m4a",
		"audio/3gpp":                    ".3gp",
		"audio/webm":                    ".weba",
		"text/plain":                    ".txt",
		"text/vcard":                    ".vcf",
		"text/x-vcard":                  ".vcf",
		"text/directory":                ".vcf",
		"text/calendar":                 ".ics",
		"text/csv":                      ".csv",
		"text/html":                     ".html",
		"text/xml":                      ".xml",
		"text/rtf":                      ".rtf",
		"application/pdf":               ".pdf",
		"application/zip":               ".zip",
		"application/json":              ".json",
		"application/xml":               ".xml",
		"application/rtf":               ".rtf",
		"application/vcard":             ".vcf",
		"application/msword":            ".doc",
		"application/vnd.ms-excel":      ".xls",
		"application/vnd.ms-powerpoint": ".ppt",
		"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   ".docx",
		"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         ".xlsx",
		"application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
		"application/vnd.oasis.opendocument.text":                                   ".odt",
		"application/vnd.oasis.opendocument.spreadsheet":                            ".ods",
		"application/vnd.oasis.opendocument.presentation":                           ".odp",
		"application/vnd.apple.pkpass":                                              ".pkpass",
	}
	for typ, ext := range golden {
		assert.Equal(t, ext, archive.ExtensionFor(typ), typ)
		assert.Equal(t, ext, archive.ExtensionFor(" "+strings.ToUpper(typ)+" ; charset=UTF-8"), typ)
	}
	assert.Equal(t, len(golden), archive.ExtensionCount(), "the extension table and this golden list must match entry for entry")

	for _, unknown := range []string{"", "image", "image/", "application/octet-stream", "image/jpeg2", "x/jpg", "imagе/jpeg" /* Cyrillic е */} {
		assert.Empty(t, archive.ExtensionFor(unknown), unknown)
	}
}

func FuzzExtensionFor(f *testing.F) {
	for _, s := range []string{
		"image/jpeg", "IMAGE/JPEG", "audio/ogg; codecs=opus", " text/plain ;charset=utf-8",
		"application/vnd.apple.pkpass", "application/vnd.apple.p\u212apass", "", ";", "image/jpeg;", "\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, contentType string) {
		ext := archive.ExtensionFor(contentType)
		if ext == "" {
			return
		}
		if ext[0] != '.' || strings.ContainsAny(ext[1:], "./\\ ") || len(ext) > 8 {
			t.Fatalf("ExtensionFor(%q) = %q, not a plain extension", contentType, ext)
		}
		// Case and parameters never matter.
		if got := archive.ExtensionFor(asciiUpper(contentType)); got != ext {
			t.Fatalf("ExtensionFor(upper(%q)) = %q, want %q", contentType, got, ext)
		}
		base, _, _ := strings.Cut(contentType, ";")
		if got := archive.ExtensionFor(base + "; x=y"); got != ext {
			t.Fatalf("ExtensionFor(%q with other parameters) = %q, want %q", contentType, got, ext)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func TestSuspectKey(t *testing.T) {
	t.Parallel()
	k := archive.KeyInfo{
		AccountSID: testAccount, MessageSID: testMessage, MediaSID: testMedia,
		ContentType: "image/jpeg", DateSent: time.Date(2024, 3, 9, 14, 5, 0, 0, time.UTC),
	}
	sha := [32]byte{0xab, 0xcd, 0xef, 1, 2, 3, 4, 5, 6}
	for prefix, want := range map[string]string{
		"media/": "media/suspect/AC0123456789abcdef0123456789abcdef/2024/03/09/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123-abcdef0102030405.jpg",
		"":       "suspect/AC0123456789abcdef0123456789abcdef/2024/03/09/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123-abcdef0102030405.jpg",
	} {
		got := archive.SuspectKey(prefix, k, sha)
		assert.Equal(t, want, got)
		assert.NotEqual(t, archive.ObjectKey(prefix, k), got, "the media's own key stays free for its verified copy")
	}
	k.ContentType = "application/x-unknown"
	assert.True(t, strings.HasSuffix(archive.SuspectKey("m", k, sha), testMedia+"-abcdef0102030405"))
}

// Audit anchors are found again by their keys, in listing order: the layout
// is a contract too.
func TestAuditAnchorKeyGolden(t *testing.T) {
	t.Parallel()
	hash := make([]byte, 32)
	hash[0], hash[31] = 0xab, 0x01
	assert.Equal(t, "media/_audit/anchors/AC0123456789abcdef0123456789abcdef/00000000000000/00000000000000000042-ab00000000000000000000000000000000000000000000000000000000000001.json",
		archive.AuditAnchorKey("/media/", testAccount, 42, hash))
	assert.Equal(t, "_audit/anchors/AC0123456789abcdef0123456789abcdef/00000000001234/00000000001234567890-ab00000000000000000000000000000000000000000000000000000000000001.json",
		archive.AuditAnchorKey("", testAccount, 1234567890, hash), "a directory per million head ids")
	assert.Equal(t, "_audit/anchors/AC0123456789abcdef0123456789abcdef/09223372036854/09223372036854775807-ab00000000000000000000000000000000000000000000000000000000000001.json",
		archive.AuditAnchorKey("", testAccount, math.MaxInt64, hash), "the widths hold any id")
	assert.Equal(t, "_audit/anchors/AC0123456789abcdef0123456789abcdef/", archive.AuditAnchorPrefix("", testAccount))
	ids := []int64{0, 9, 10, 999_999, 1_000_000, 1_000_001, 10_000_000, math.MaxInt64}
	for i := 1; i < len(ids); i++ {
		assert.Less(t, archive.AuditAnchorKey("", testAccount, ids[i-1], hash), archive.AuditAnchorKey("", testAccount, ids[i], hash),
			"keys sort as their head ids, across shards")
	}
}

// The export layout is a contract with every export already written (their
// manifests and SHA256SUMS name these paths) and with the reviewers who
// open them: these names must never change.
func TestExportKeysGolden(t *testing.T) {
	t.Parallel()
	newYork, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	item := func(contentType string, sent time.Time) archive.KeyInfo {
		return archive.KeyInfo{
			AccountSID: testAccount, MessageSID: testMessage, MediaSID: testMedia,
			ContentType: contentType, DateSent: sent,
		}
	}
	id := uuid.MustParse("0193a4b2-7c1d-7e3f-8a9b-0c1d2e3f4a5b")
	cases := []struct {
		desc string
		got  string
		want string
	}{
		{"media path", archive.ExportMediaPath(item("image/jpeg", time.Date(2024, 3, 9, 14, 5, 0, 0, time.UTC))),
			"2024-03-09/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123.jpg"},
		{"media path: date is UTC", archive.ExportMediaPath(item("Audio/OGG; codecs=opus", time.Date(2024, 12, 31, 21, 30, 0, 0, newYork))),
			"2025-01-01/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123.ogg"},
		{"media path: unknown type has no extension", archive.ExportMediaPath(item("application/x-unknown", time.Date(2024, 3, 9, 0, 0, 0, 0, time.UTC))),
			"2024-03-09/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123"},
		{"media key under a root", archive.ExportKey("exports/case-7", archive.ExportMediaPath(item("video/mp4", time.Date(2024, 3, 9, 0, 0, 0, 0, time.UTC)))),
			"exports/case-7/2024-03-09/MM89abcdef0123456789abcdef01234567/ME456789abcdef0123456789abcdef0123.mp4"},
		{"no root", archive.ExportKey("", archive.ExportSummaryName), "export.json"},
		{"jsonl manifest", archive.ExportKey("exports", archive.ExportJSONLName), "exports/manifest.jsonl"},
		{"csv manifest", archive.ExportKey("exports", archive.ExportCSVName), "exports/manifest.csv"},
		{"sums", archive.ExportKey("exports", archive.ExportSumsName), "exports/SHA256SUMS"},
		{"summary", archive.ExportKey("exports", archive.ExportSummaryName), "exports/export.json"},
		{"zip", archive.ExportKey("exports/by-number", archive.ExportZipName(id)),
			"exports/by-number/mediasync-export-0193a4b2-7c1d-7e3f-8a9b-0c1d2e3f4a5b.zip"},
		{"zip without root", archive.ExportKey("", archive.ExportZipName(id)),
			"mediasync-export-0193a4b2-7c1d-7e3f-8a9b-0c1d2e3f4a5b.zip"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, c.got, c.desc)
	}
}
