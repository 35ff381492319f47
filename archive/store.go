package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mediasync/mediasync/internal/objects"
)

// Store is where archived media bytes live: an S3 bucket (S3Store) or a local
// directory (FileStore). Both keep the same contract, checked by the
// conformance suite in archive/storetest:
//
//   - Objects are create-only. Nothing ever overwrites a key.
//   - The store itself proves what it holds: it verifies the size and SHA-256
//     of what it receives before the object becomes visible, and Stat reports
//     the size and SHA-256 as the store knows them, not as the caller claims.
//   - Every call is safe to repeat: a Put that ran before (even one whose
//     caller died before seeing the answer) is reported as Existed.
type Store interface {
	// Put stores body under in.Key, create-only. Put reads body from its
	// start (it seeks to offset 0) to its end. The store verifies that the
	// bytes have in.Size and in.SHA256 (S3: the server checks
	// x-amz-checksum-sha256) and rejects them with ErrChecksumMismatch
	// otherwise, storing nothing.
	//
	// If an object with the same key already exists with the same size and
	// SHA-256, Put succeeds with Existed set (an idempotent retry); if its
	// content differs, Put returns ErrConflict and never overwrites.
	Put(ctx context.Context, in PutInput, body io.ReadSeeker) (PutResult, error)

	// Stat returns what the store holds at key: size and SHA-256 as the
	// store proves them (S3: the server's full-object checksum; file store:
	// the file re-hashed), content type, metadata and version id.
	// It returns ErrNotFound if there is no such object.
	Stat(ctx context.Context, key string) (ObjectInfo, error)

	// Open streams the object. Reading to the end returns ErrChecksumMismatch
	// instead of io.EOF when the bytes read differ from the size or SHA-256
	// the store recorded for them. It returns ErrNotFound if there is no such
	// object.
	Open(ctx context.Context, key string) (io.ReadCloser, error)

	// List yields the keys that begin with prefix, in ascending byte order,
	// a page at a time: a listing is never held in memory whole. It stops
	// after yielding an error.
	List(ctx context.Context, prefix string) iter.Seq2[string, error]

	// Location names the archive, for the catalog row.
	Location() objects.Location
}

// PutInput describes an object to store.
type PutInput struct {
	// Key is the object key, usually built by ObjectKey. It must be
	// 1-1024 bytes of UTF-8 without control characters or backslashes, must
	// not begin or end with "/", and must have no empty, "." or ".."
	// segment.
	Key string
	// ContentType is stored with the object, parameters and all; empty is
	// stored as application/octet-stream.
	ContentType string
	// Size is the exact length of the body in bytes.
	Size int64
	// SHA256 is the SHA-256 of the body.
	SHA256 [32]byte
	// Metadata is stored with the object. Keys are lower-case letters,
	// digits and '-'; values printable ASCII without spaces at either end;
	// at most 2 KiB in all (the S3 limit). The store adds MetaSHA256 itself. Never put secrets here:
	// metadata is readable by anyone who can read the object.
	Metadata map[string]string

	// Object Lock (WORM): S3Store writes these with the object, in the same
	// PUT that carries its SHA-256 checksum (S3 requires a checksum on
	// locked writes). FileStore cannot lock and refuses them, so nobody
	// believes an object is locked when it is not.

	// LockMode is the retention mode (ObjectLockGovernance or
	// ObjectLockCompliance) applied until RetainUntil.
	LockMode objects.LockMode
	// RetainUntil is when retention ends.
	RetainUntil time.Time
	// LegalHold puts the object under legal hold.
	LegalHold bool
}

// PutResult is the outcome of a successful Put.
type PutResult struct {
	// VersionID is the S3 version id, when the bucket is versioned.
	VersionID string
	// Existed reports that the object was already there with the same size
	// and SHA-256: an earlier attempt stored it, or this one did but its
	// answer was lost on the way back. Either way the bytes are stored.
	Existed bool

	// LockMode and RetainUntil are the Object Lock retention the store
	// reports for the object once written, when PutInput asked for one:
	// what to record, rather than what was asked. Put fails with
	// ErrLockNotApplied when the store applied none, or less.
	LockMode    objects.LockMode
	RetainUntil time.Time
}

// ObjectInfo is what a store holds at a key.
type ObjectInfo struct {
	Key  string
	Size int64
	// SHA256 is the object's SHA-256 as the store proves it, or zero when
	// the store cannot (an S3 object uploaded in parts has no full-object
	// SHA-256 on the server). Verify reads such objects back.
	SHA256      [32]byte
	ContentType string
	Metadata    map[string]string
	VersionID   string
}

// Metadata keys written by mediasync. Values are printable ASCII; times are
// RFC 3339 in UTC.
const (
	MetaAccountSID  = "account-sid"
	MetaMessageSID  = "message-sid"
	MetaMediaSID    = "media-sid"
	MetaDateSent    = "date-sent"
	MetaDateCreated = "date-created"
	// A Conversations media's source, conversation SID, its message's
	// author and its filename. Author and filename may be any UTF-8:
	// they are percent-encoded (url.PathEscape), and cut to fit S3's
	// metadata limit; Postgres and the message's record keep them whole.
	MetaSource          = "source"
	MetaConversationSID = "conversation-sid"
	MetaAuthor          = "author"
	MetaFilename        = "filename"
	// MetaSHA256 is the lower-case hex SHA-256 of the object. Stores set it
	// on every Put; a PutStream cannot (headers go before the body whose
	// hash they would carry), and S3's own full-object SHA-256 checksum,
	// which Stat and Verify read, is the record for both.
	MetaSHA256 = "sha256"
)

// MediaMetadata returns the object metadata mediasync records for a Twilio
// media: its account, message and media SIDs, the message's date sent and
// the media's date created. A zero time is left out.
func MediaMetadata(k KeyInfo, dateCreated time.Time) map[string]string {
	m := map[string]string{
		MetaAccountSID: k.AccountSID,
		MetaMessageSID: k.MessageSID,
		MetaMediaSID:   k.MediaSID,
	}
	if !k.DateSent.IsZero() {
		m[MetaDateSent] = k.DateSent.UTC().Format(time.RFC3339)
	}
	if !dateCreated.IsZero() {
		m[MetaDateCreated] = dateCreated.UTC().Format(time.RFC3339)
	}
	if k.Source != "" && k.Source != "messaging" {
		m[MetaSource] = k.Source
		if k.ConversationSID != "" {
			m[MetaConversationSID] = k.ConversationSID
		}
		if v := escapeMeta(k.Author); v != "" {
			m[MetaAuthor] = v
		}
		if v := escapeMeta(k.Filename); v != "" {
			m[MetaFilename] = v
		}
	}
	return m
}

// maxEscapedMeta bounds one free-text metadata value, so that a media's
// metadata stays within S3's 2 KB whatever its author and filename.
const maxEscapedMeta = 600

// escapeMeta percent-encodes s into printable ASCII, cut at a rune
// boundary to at most maxEscapedMeta characters.
func escapeMeta(s string) string {
	v := url.PathEscape(s)
	for len(v) > maxEscapedMeta {
		r := []rune(s)
		s = string(r[:len(r)*3/4])
		v = url.PathEscape(s)
	}
	return v
}

var (
	// ErrNotFound means the store has no object at the key.
	ErrNotFound = errors.New("object not found")
	// ErrConflict means a different object already exists at the key; it
	// was not overwritten.
	ErrConflict = errors.New("a different object already exists at this key")
	// ErrChecksumMismatch means bytes did not have the size or SHA-256
	// they were expected to have: a store rejected them on Put, or Verify or
	// a read found the stored object differs.
	ErrChecksumMismatch = errors.New("size or sha256 mismatch")
	// ErrInvalidInput means a request was malformed (a bad key, metadata or
	// size); retrying it cannot succeed.
	ErrInvalidInput = errors.New("invalid input")
	// ErrLockNotApplied means a store kept an object without the Object
	// Lock retention asked for, or with a weaker mode or an earlier date.
	ErrLockNotApplied = errors.New("object lock retention not applied")
)

// Verify proves that the object at key has exactly size bytes with SHA-256
// sha. It trusts the store's own proof (Stat) when the store has one, and
// otherwise reads the object back and hashes it. It returns an error wrapping
// ErrNotFound or ErrChecksumMismatch, naming the key, when the proof fails.
func Verify(ctx context.Context, s Store, key string, size int64, sha [32]byte) error {
	_, err := verifyObject(ctx, s, key, size, sha)
	return err
}

// verifyObject is Verify, also returning what Stat said.
func verifyObject(ctx context.Context, s Store, key string, size int64, sha [32]byte) (ObjectInfo, error) {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return info, fmt.Errorf("verify %q: %w", key, err)
	}
	if info.Size != size {
		return info, fmt.Errorf("verify %q: store holds %d bytes, want %d: %w", key, info.Size, size, ErrChecksumMismatch)
	}
	if info.SHA256 != ([32]byte{}) {
		if info.SHA256 != sha {
			return info, fmt.Errorf("verify %q: store holds sha256 %x, want %x: %w", key, info.SHA256, sha, ErrChecksumMismatch)
		}
		return info, nil
	}
	// The store has no proof of its own (an S3 multipart object): hash what
	// it serves.
	rc, err := s.Open(ctx, key)
	if err != nil {
		return info, fmt.Errorf("verify %q: %w", key, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return info, fmt.Errorf("verify %q: read back: %w", key, err)
	}
	var got [32]byte
	h.Sum(got[:0])
	if n != size || got != sha {
		return info, fmt.Errorf("verify %q: read back %d bytes with sha256 %x, want %d bytes with %x: %w",
			key, n, got, size, sha, ErrChecksumMismatch)
	}
	return info, nil
}

// maxMetadataBytes is S3's limit on user metadata (keys plus values).
const maxMetadataBytes = 2048

// checkPutInput validates what both stores require of a PutInput and returns
// the metadata to store: in.Metadata plus MetaSHA256.
func checkPutInput(in PutInput) (map[string]string, error) {
	if err := checkKey(in.Key); err != nil {
		return nil, err
	}
	if in.Size < 0 {
		return nil, fmt.Errorf("%w: PutInput.Size %d is negative", ErrInvalidInput, in.Size)
	}
	if !printableASCII(in.ContentType) || len(in.ContentType) > 255 {
		return nil, fmt.Errorf("%w: PutInput.ContentType %q must be at most 255 printable ASCII characters", ErrInvalidInput, in.ContentType)
	}
	switch in.LockMode {
	case "":
		if !in.RetainUntil.IsZero() {
			return nil, fmt.Errorf("%w: PutInput.RetainUntil is set without a LockMode", ErrInvalidInput)
		}
	case objects.LockGovernance, objects.LockCompliance:
		if in.RetainUntil.IsZero() {
			return nil, fmt.Errorf("%w: PutInput.LockMode %s needs a RetainUntil", ErrInvalidInput, in.LockMode)
		}
	default:
		return nil, fmt.Errorf("%w: PutInput.LockMode %q (want GOVERNANCE or COMPLIANCE)", ErrInvalidInput, in.LockMode)
	}
	shaHex := hex.EncodeToString(in.SHA256[:])
	meta := make(map[string]string, len(in.Metadata)+1)
	total := 0
	for k, v := range in.Metadata {
		if !metadataKey(k) {
			return nil, fmt.Errorf("%w: PutInput.Metadata key %q must be lower-case letters, digits and '-'", ErrInvalidInput, k)
		}
		if !printableASCII(v) {
			return nil, fmt.Errorf("%w: PutInput.Metadata[%q] must be printable ASCII", ErrInvalidInput, k)
		}
		// HTTP trims header values, so S3 would store something else.
		if strings.TrimSpace(v) != v {
			return nil, fmt.Errorf("%w: PutInput.Metadata[%q] = %q has leading or trailing spaces", ErrInvalidInput, k, v)
		}
		if k == MetaSHA256 && v != shaHex {
			return nil, fmt.Errorf("%w: PutInput.Metadata[%q] = %q disagrees with PutInput.SHA256 %s", ErrInvalidInput, k, v, shaHex)
		}
		meta[k] = v
		total += len(k) + len(v)
	}
	if _, ok := meta[MetaSHA256]; !ok {
		meta[MetaSHA256] = shaHex
		total += len(MetaSHA256) + len(shaHex)
	}
	if total > maxMetadataBytes {
		return nil, fmt.Errorf("%w: PutInput.Metadata is %d bytes, more than the %d S3 allows", ErrInvalidInput, total, maxMetadataBytes)
	}
	return meta, nil
}

// checkKey enforces the key rules documented on PutInput.Key. They are
// stricter than S3's so that every key is also a safe relative path for the
// file store, and both stores accept exactly the same keys.
func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: key is empty", ErrInvalidInput)
	case len(key) > 1024:
		return fmt.Errorf("%w: key is %d bytes, more than 1024", ErrInvalidInput, len(key))
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key %q is not valid UTF-8", ErrInvalidInput, key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: key %q contains %U", ErrInvalidInput, key, r)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: key %q has an empty segment (leading, trailing or double '/')", ErrInvalidInput, key)
		case ".", "..":
			return fmt.Errorf("%w: key %q has a %q segment", ErrInvalidInput, key, seg)
		}
	}
	return nil
}

func metadataKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkBodySize measures a seekable body and leaves it at offset 0. A body
// whose length differs from the declared size is rejected before any byte is
// sent, as the store would reject it.
func checkBodySize(body io.ReadSeeker, want int64) error {
	n, err := body.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("measure body: %w", err)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind body: %w", err)
	}
	if n != want {
		return fmt.Errorf("body is %d bytes, PutInput.Size says %d: %w", n, want, ErrChecksumMismatch)
	}
	return nil
}
