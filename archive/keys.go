package archive

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// KeyInfo is what an object key is made of.
type KeyInfo struct {
	AccountSID  string
	MessageSID  string
	MediaSID    string
	ContentType string
	// DateSent is the message's date_sent. Twilio leaves it null on
	// messages that were never sent; callers then pass its date_created.
	// A Conversations message has no date_sent: its date_created.
	DateSent time.Time

	// Source is "" or "messaging" for Programmable Messaging media (the
	// layout without a source segment, as archived before #15), and
	// "conversations" for Conversations media (MCS).
	Source string
	// A Conversations media's conversation (CH…), its message's author and
	// its filename, for the object's metadata (not its key).
	ConversationSID, Author, Filename string
}

// SourceConversations is KeyInfo.Source for Conversations media.
const SourceConversations = "conversations"

// ObjectKey returns the key under which a media is archived:
//
//	{prefix}/{AccountSid}/{yyyy}/{mm}/{dd}/{MessageSid}/{MediaSid}{.ext}
//
// for example
//
//	media/AC0123…/2024/03/09/MM89ab…/ME4567….jpg
//
// The date is the UTC date of the message's date_sent. The extension comes
// from ExtensionFor(ContentType) and is absent for unknown types. Slashes at
// either end of prefix are trimmed; an empty prefix gives a key without a
// leading slash.
//
// Conversations media (Source "conversations") carry the source right after
// the account, where a Messaging key has its year (never a clash):
//
//	{prefix}/{AccountSid}/conversations/{yyyy}/{mm}/{dd}/{MessageSid}/{MediaSid}{.ext}
//
// with the UTC date of the message's date_created.
//
// This layout is a stable contract: archived objects are found again by it,
// and the catalog stores keys built by it. Changing it (or the extension
// table) strands every object already archived, so it is pinned by a golden
// test. Add a new layout beside this one rather than editing it.
func ObjectKey(prefix string, k KeyInfo) string {
	d := k.DateSent.UTC()
	var b strings.Builder
	if p := strings.Trim(prefix, "/"); p != "" {
		b.WriteString(p)
		b.WriteByte('/')
	}
	b.WriteString(k.AccountSID)
	b.WriteByte('/')
	if k.Source != "" && k.Source != "messaging" {
		b.WriteString(k.Source)
		b.WriteByte('/')
	}
	b.WriteString(d.Format("2006/01/02"))
	b.WriteByte('/')
	b.WriteString(k.MessageSID)
	b.WriteByte('/')
	b.WriteString(k.MediaSID)
	b.WriteString(ExtensionFor(k.ContentType))
	return b.String()
}

// SuspectKey returns the key under which a download that failed the
// plausibility check (Sniffer.Check) is kept for inspection:
//
//	{prefix}/suspect/{AccountSid}/{yyyy}/{mm}/{dd}/{MessageSid}/{MediaSid}-{sha256[:16]}{.ext}
//
// It is never the media's ObjectKey, which stays free for the verified copy
// a later run archives (objects are create-only), and it names the bytes, so
// the same suspect download stored twice is one object and different ones
// do not conflict. One prefix for all suspect copies lets a lifecycle rule
// expire them.
func SuspectKey(prefix string, k KeyInfo, sha [32]byte) string {
	p := strings.Trim(prefix, "/")
	if p != "" {
		p += "/"
	}
	key := ObjectKey(p+"suspect", k)
	ext := ExtensionFor(k.ContentType)
	return strings.TrimSuffix(key, ext) + "-" + hex.EncodeToString(sha[:8]) + ext
}

// MessageRecordKey returns the key of a message's own record, as JSON,
// beside its media: a Messaging message's (the object Twilio's list
// returned, issue #17)
//
//	{prefix}/{AccountSid}/{yyyy}/{mm}/{dd}/{MessageSid}/{MessageSid}-{sha256[:16]}.json
//
// and a Conversations message's (its author, body, attributes, date and
// media)
//
//	{prefix}/{AccountSid}/conversations/{yyyy}/{mm}/{dd}/{MessageSid}/{MessageSid}-{sha256[:16]}.json
//
// The record's SHA-256 is in its name, so an object is never overwritten
// (objects are create-only): storing the same record twice is one object,
// and a message edited between two tries gets a second one.
func MessageRecordKey(prefix string, k KeyInfo, sha [32]byte) string {
	k.MediaSID, k.ContentType = k.MessageSID+"-"+hex.EncodeToString(sha[:8]), ""
	return ObjectKey(prefix, k) + ".json"
}

// AuditAnchorPrefix returns the key prefix of an account's anchors:
//
//	{prefix}/_audit/anchors/{AccountSid}/
//
// No account SID begins with "_", so anchors never share a key with media.
func AuditAnchorPrefix(prefix, accountSID string) string {
	var b strings.Builder
	if p := strings.Trim(prefix, "/"); p != "" {
		b.WriteString(p)
		b.WriteByte('/')
	}
	b.WriteString("_audit/anchors/")
	b.WriteString(accountSID)
	b.WriteByte('/')
	return b.String()
}

// AuditAnchorKey returns the key of an audit anchor (see AuditAnchor):
//
//	{prefix}/_audit/anchors/{AccountSid}/{head id / 1e6, 14 digits}/{head id, 20 digits}-{head hash, hex}.json
//
// The fixed widths make the listing order the chain's order, so
// verification reads the log and the anchors side by side in one pass; the
// shard directory (AuditAnchorsPerShard head ids each) bounds what one
// directory of a file store holds, however many anchors there are. The
// hash in the key makes anchors of the same head share one key, so two
// workers anchoring at once write one object.
func AuditAnchorKey(prefix, accountSID string, headID int64, headHash []byte) string {
	return fmt.Sprintf("%s%014d/%020d-%s.json", AuditAnchorPrefix(prefix, accountSID), headID/AuditAnchorsPerShard, headID, hex.EncodeToString(headHash))
}

// AuditAnchorsPerShard is how many head ids share one directory of anchors
// (see AuditAnchorKey).
const AuditAnchorsPerShard = 1_000_000

// Names of an export's own files. A dir export puts them at its root,
// beside the media (ExportKey); a zip export puts them at the zip's root.
const (
	ExportJSONLName   = "manifest.jsonl" // one JSON line per media
	ExportCSVName     = "manifest.csv"   // the same, one row per media
	ExportSumsName    = "SHA256SUMS"     // for sha256sum -c
	ExportSummaryName = "export.json"    // the query, the counts, the other files' SHA-256
)

// ExportMediaPath returns where a media goes inside an export, relative to
// its root (the name of a dir export's file, or of a zip's entry):
//
//	{yyyy-mm-dd}/{MessageSid}/{MediaSid}{.ext}
//
// with the UTC date of the message's date_sent and ExtensionFor's extension.
// Like ObjectKey, it is a contract with exports already written (their
// manifests name these paths), pinned by a golden test.
// The account SID is not in the path: an export holds one account's media.
func ExportMediaPath(k KeyInfo) string {
	return k.DateSent.UTC().Format(time.DateOnly) + "/" + k.MessageSID + "/" + k.MediaSID + ExtensionFor(k.ContentType)
}

// ExportKey returns the key of a file of an export in its destination
// store: name (an ExportMediaPath, an Export…Name or ExportZipName) under
// root, the prefix the destination URL gives (see OpenStore), or name
// itself when root is empty.
func ExportKey(root, name string) string {
	if root == "" {
		return name
	}
	return root + "/" + name
}

// ExportZipName returns the name of a zip export's one object:
//
//	mediasync-export-{run id}.zip
func ExportZipName(id uuid.UUID) string {
	return "mediasync-export-" + id.String() + ".zip"
}

// ExtensionFor returns the file extension, with its leading dot, for a MIME
// type of media Twilio carries (MMS, WhatsApp, Conversations), or "" for a
// type not in its table. Parameters (";charset=…") and case are ignored.
//
// The table is fixed in code on purpose: mime.ExtensionsByType answers from
// the operating system's MIME database, so the same media would get
// different keys on different machines.
func ExtensionFor(contentType string) string {
	t, _, _ := strings.Cut(contentType, ";")
	return extensions[asciiLower(strings.TrimSpace(t))]
}

// asciiLower lower-cases ASCII letters only: MIME types are ASCII, and
// Unicode case folding would let look-alikes (the Kelvin sign for 'k') match.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// extensions is part of the key layout contract (see ObjectKey): entries may
// be added for types that had none, never changed or removed.
var extensions = map[string]string{
	// Images.
	"image/jpeg":     ".jpg",
	"image/jpg":      ".jpg",
	"image/pjpeg":    ".jpg",
	"image/png":      ".png",
	"image/gif":      ".gif",
	"image/webp":     ".webp",
	"image/heic":     ".heic",
	"image/heif":     ".heif",
	"image/avif":     ".avif",
	"image/bmp":      ".bmp",
	"image/x-ms-bmp": ".bmp",
	"image/tiff":     ".tiff",
	"image/svg+xml":  ".svg",

	// Video.
	"video/mp4":       ".mp4",
	"video/mpeg":      ".mpeg",
	"video/3gpp":      ".3gp",
	"video/3gpp2":     ".3g2",
	"video/quicktime": ".mov",
	"video/webm":      ".webm",
	"video/h264":      ".h264",
	"video/h263":      ".h263",
	"video/x-msvideo": ".avi",

	// Audio.
	"audio/mpeg":     ".mp3",
	"audio/mp3":      ".mp3",
	"audio/amr":      ".amr",
	"audio/ogg":      ".ogg",
	"audio/opus":     ".opus",
	"audio/aac":      ".aac",
	"audio/wav":      ".wav",
	"audio/wave":     ".wav",
	"audio/x-wav":    ".wav",
	"audio/vnd.wave": ".wav",
	"audio/mp4":      ".m4a",
	"audio/x-m4a":    ".m4a",
	"audio/3gpp":     ".3gp",
	"audio/webm":     ".weba",

	// Text.
	"text/plain":     ".txt",
	"text/vcard":     ".vcf",
	"text/x-vcard":   ".vcf",
	"text/directory": ".vcf",
	"text/calendar":  ".ics",
	"text/csv":       ".csv",
	"text/html":      ".html",
	"text/xml":       ".xml",
	"text/rtf":       ".rtf",

	// Documents and archives.
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
