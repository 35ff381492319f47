package archive

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"
)

// ErrImplausible is wrapped by Sniffer.Check when a download's bytes are not
// plausibly the media they claim to be: the store would hold exactly what
// was downloaded, but what was downloaded is not the media, so it must never
// be deleted from Twilio on the strength of that copy.
var ErrImplausible = errors.New("bytes are not plausible for the media's type")

// sniffLen is how many leading bytes the signature check looks at: what
// the detector reads by default (mimetype's limit), so memory stays a few
// KiB whatever the file's size.
const sniffLen = 4096

// replacement is U+FFFD in UTF-8: what a decoder writes in place of bytes
// that are not UTF-8. A proxy or gateway that re-encodes a binary body as
// text leaves these behind.
var replacement = []byte("\uFFFD")

// Sniffer watches a download go by (it is an io.Writer, written beside the
// Spool) and then judges whether those bytes are plausible for the media:
// Check. It keeps the first sniffLen bytes for the signature check and scans
// every byte for U+FFFD and for UTF-8 validity as it streams, so its memory
// does not grow with the file's size. A U+FFFD split across two Writes is
// found. A Sniffer is written by one goroutine.
type Sniffer struct {
	head []byte
	n    int64

	// U+FFFD scan: tail holds the last bytes of the previous Write when
	// they begin a U+FFFD (EF or EF BF).
	tail         [2]byte
	tailN        int
	replacements int64
	lastEnd      int64 // offset just past the last U+FFFD found
	run, maxRun  int64 // consecutive U+FFFD

	// UTF-8 scan: partial holds an incomplete rune that ended a Write;
	// high records a byte >= 0x80 (so, in valid UTF-8, a multi-byte
	// sequence).
	invalid  bool
	partial  [utf8.UTFMax]byte
	partialN int
	high     bool
}

// NewSniffer returns an empty Sniffer.
func NewSniffer() *Sniffer { return &Sniffer{head: make([]byte, 0, sniffLen)} }

// Write implements io.Writer; it never fails.
func (s *Sniffer) Write(p []byte) (int, error) {
	if room := sniffLen - len(s.head); room > 0 {
		s.head = append(s.head, p[:min(room, len(p))]...)
	}
	s.scanReplacements(p)
	s.scanUTF8(p)
	if !s.high {
		s.high = hasHigh(p)
	}
	s.n += int64(len(p))
	return len(p), nil
}

// hasHigh reports whether p holds a byte >= 0x80 (in UTF-8, the start or
// continuation of a multi-byte sequence, or an invalid byte), eight bytes
// at a time: text stays ASCII to its end, and a rune-by-rune scan
// (bytes.ContainsFunc) was 15 % of the worker's CPU on 100 MiB text media.
func hasHigh(p []byte) bool {
	for ; len(p) >= 8; p = p[8:] {
		if binary.LittleEndian.Uint64(p)&0x8080808080808080 != 0 {
			return true
		}
	}
	for _, c := range p {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

func (s *Sniffer) scanReplacements(p []byte) {
	if len(p) == 0 {
		return
	}
	// A U+FFFD that began in the previous Write: its bytes are the tail
	// and the first few of p. U+FFFD's bytes cannot overlap another's.
	if s.tailN > 0 {
		var edge [4]byte
		e := append(edge[:0], s.tail[:s.tailN]...)
		e = append(e, p[:min(len(p), 2)]...)
		if i := bytes.Index(e, replacement); i >= 0 && i < s.tailN {
			s.found(s.n - int64(s.tailN) + int64(i))
		}
	}
	for off := 0; ; {
		i := bytes.Index(p[off:], replacement)
		if i < 0 {
			break
		}
		s.found(s.n + int64(off+i))
		off += i + len(replacement)
	}
	// The new tail: the end of what was written so far, if it begins a
	// U+FFFD. p shorter than 2 bytes extends the old tail.
	var last [2]byte
	l := last[:0]
	if len(p) >= 2 {
		l = append(l, p[len(p)-2:]...)
	} else {
		l = append(append(l, s.tail[:s.tailN]...), p...)
		if len(l) > 2 {
			l = l[len(l)-2:]
		}
	}
	s.tailN = 0
	switch {
	case len(l) == 2 && l[0] == replacement[0] && l[1] == replacement[1]:
		s.tail, s.tailN = [2]byte{l[0], l[1]}, 2
	case len(l) > 0 && l[len(l)-1] == replacement[0]:
		s.tail[0], s.tailN = l[len(l)-1], 1
	}
}

// found counts a U+FFFD at absolute offset at.
func (s *Sniffer) found(at int64) {
	if s.replacements > 0 && at == s.lastEnd {
		s.run++
	} else {
		s.run = 1
	}
	s.maxRun = max(s.maxRun, s.run)
	s.replacements++
	s.lastEnd = at + int64(len(replacement))
}

func (s *Sniffer) scanUTF8(p []byte) {
	if s.invalid {
		return // once invalid, always: no need to look further
	}
	// Complete a rune left unfinished by the previous Write.
	for s.partialN > 0 && len(p) > 0 {
		s.partial[s.partialN] = p[0]
		s.partialN++
		p = p[1:]
		if utf8.FullRune(s.partial[:s.partialN]) {
			if !utf8.Valid(s.partial[:s.partialN]) {
				s.invalid = true
				return
			}
			s.partialN = 0
		}
	}
	// Hold back an incomplete rune at the end of p for the next Write.
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				s.partialN = copy(s.partial[:], p[i:])
				p = p[:i]
			}
			break
		}
	}
	if !utf8.Valid(p) {
		s.invalid = true
	}
}

// Check reports whether the bytes written are plausible for a media that
// Twilio lists as listedType and whose download was served as servedType
// (either may be empty). It returns nil, or an error wrapping ErrImplausible
// whose text is the reason, for the record. The rules:
//
//   - Content-Type: the served type must be the listed one, ignoring
//     parameters and case, or an alias of it (image/jpg is image/jpeg). An
//     empty or generic (application/octet-stream) served type says nothing
//     and is not held against the media.
//   - Signature: for every type the detector (mimetype) recognises by a
//     signature, the bytes must carry it: the detected type must be the
//     type or of its family (see relatedTypes): what is refused is bytes
//     with no signature, or another kind's.
//   - Text types (text/*, and what the detector places under text/plain:
//     JSON, XML, SVG, vCard…) have no signature: they are refused if they
//     carry any U+FFFD, since the text of a real attachment very rarely does
//     and a decoder that met bytes it could not read leaves exactly that.
//     Text that is not UTF-8 (Latin-1) is plausible: a re-encoding proxy
//     would have made it UTF-8.
//   - Any other type is binary, with a signature or not (audio/opus,
//     video/h264, types unknown to the detector): refused if it carries
//     U+FFFD and either every byte is valid UTF-8 (real binary media almost
//     never is; a re-encoded body always is) or two U+FFFD follow each
//     other (a decoder replacing byte by byte). A lone U+FFFD in otherwise
//     binary bytes is chance (1 in 16 million positions) and plausible.
//   - Images, audio and video (image/*, audio/*, video/*: not PDF or other
//     application/* types, which may legitimately be 7-bit text) are also
//     refused when at least minBinaryLen bytes are all valid UTF-8 with a
//     multi-byte sequence among them: what a Latin-1 → UTF-8 re-encoding
//     of binary makes (every byte >= 0x80 becomes C2/C3 and a continuation
//     byte; no U+FFFD), which the rules above miss for a type without a
//     signature (audio/opus, video/h264, unknown types). See minBinaryLen.
//
// Refusing is safe: the media stays on Twilio and a later run tries again.
func (s *Sniffer) Check(listedType, servedType string) error {
	listed, served := normalType(listedType), normalType(servedType)
	if listed != "" && !genericType(served) && canonicalType(listed) != canonicalType(served) {
		return fmt.Errorf("%w: served as %s, listed as %s", ErrImplausible, capType(served), capType(listed))
	}
	t := listed
	if t == "" {
		t = served
	}
	if isTextType(t) {
		if s.replacements > 0 {
			return fmt.Errorf("%w: %s with %d U+FFFD replacement characters (re-encoded by something on the way?)",
				ErrImplausible, capType(t), s.replacements)
		}
		return nil
	}
	if s.replacements > 0 && (s.maxRun >= 2 || s.validUTF8()) {
		return fmt.Errorf("%w: binary %s re-encoded as UTF-8 text (%d U+FFFD replacement characters, %d in a row)",
			ErrImplausible, cmp.Or(capType(t), "media"), s.replacements, s.maxRun)
	}
	if isMediaType(t) && s.n >= minBinaryLen && s.high && s.validUTF8() {
		return fmt.Errorf("%w: binary %s is entirely valid UTF-8 text (%d bytes, with multi-byte sequences): re-encoded as UTF-8 on the way?",
			ErrImplausible, capType(t), s.n)
	}
	if want := signatureType(t); want != nil {
		got := mimetype.Detect(s.head)
		if !relatedTypes(want, got) {
			return fmt.Errorf("%w: %s does not begin with its signature (the bytes look like %s)",
				ErrImplausible, capType(t), got.String())
		}
	}
	return nil
}

func (s *Sniffer) validUTF8() bool { return !s.invalid && s.partialN == 0 }

// minBinaryLen is the size from which an image, audio or video body that is
// entirely valid UTF-8, with bytes >= 0x80 in it, is refused as re-encoded.
// Why this cannot refuse real media of those types: their payload is
// compressed or sampled data, close to random, and in random bytes each
// byte >= 0x80 (half of them) stays valid UTF-8 only if it is a lead byte
// followed by the right number of continuation bytes (under 1 in 4 for a
// lone high byte), so 512 bytes are all valid UTF-8 with odds far below
// 2^-100; even a mostly-ASCII body has its high bytes in invalid places
// (0xFF, 0xFE, 0xC0, 0xC1 and 0xF5+ are never valid; a lone continuation
// byte is not). Silence or other data with no byte >= 0x80 is left alone:
// Latin-1 → UTF-8 changes no such byte, so those bytes are intact. Bodies
// shorter than 512 bytes are left to the other rules: a few bytes may be
// valid UTF-8 by chance, and a real media is hardly ever that small. The
// emulator's media (TestEmulatorContentIsPlausible) are random bytes after
// a signature.
const minBinaryLen = 512

// isMediaType reports whether t is an image, audio or video type, which is
// never text (a text type such as image/svg+xml is judged as text first).
func isMediaType(t string) bool {
	return strings.HasPrefix(t, "image/") || strings.HasPrefix(t, "audio/") || strings.HasPrefix(t, "video/")
}

// maxTypeLen bounds a served type quoted in a reason: it comes from the
// host that served the download, which may be hostile.
const maxTypeLen = 100

func capType(t string) string {
	if len(t) > maxTypeLen {
		return strings.ToValidUTF8(t[:maxTypeLen], "") + "…"
	}
	return t
}

// normalType is a MIME type without parameters, trimmed and lower-cased.
func normalType(t string) string {
	if mt, _, err := mime.ParseMediaType(t); err == nil {
		return mt
	}
	t, _, _ = strings.Cut(t, ";")
	return asciiLower(strings.TrimSpace(t))
}

func genericType(t string) bool {
	return t == "" || t == "application/octet-stream" || t == "binary/octet-stream"
}

// twilioAliases are names Twilio accepts for a type that the detector does
// not know as aliases (Twilio lists image/jpg among MMS's accepted types).
var twilioAliases = map[string]string{
	"image/jpg":      "image/jpeg",
	"image/pjpeg":    "image/jpeg",
	"text/x-vcard":   "text/vcard",
	"text/directory": "text/vcard",
}

// canonicalType resolves aliases: the detector's, then Twilio's.
func canonicalType(t string) string {
	if c, ok := twilioAliases[t]; ok {
		t = c
	}
	if m := mimetype.Lookup(t); m != nil {
		return normalType(m.String())
	}
	return t
}

func isTextType(t string) bool {
	if strings.HasPrefix(t, "text/") {
		return true
	}
	if m := mimetype.Lookup(canonicalType(t)); m != nil {
		for ; m != nil; m = m.Parent() {
			if m.Is("text/plain") {
				return true
			}
		}
	}
	return false
}

// signatureType returns the detector's node for a type it recognises by a
// signature, or nil.
func signatureType(t string) *mimetype.MIME {
	if t == "" || isTextType(t) {
		return nil
	}
	m := mimetype.Lookup(canonicalType(t))
	if m == nil || m.Parent() == nil { // unknown, or the root: octet-stream
		return nil
	}
	return m
}

// relatedTypes reports whether detected bytes fit the wanted type: the
// same type, or one of its family in the detector's tree (a more specific
// or more general form of the same container: 3GP or M4A for video/mp4 and
// audio/mp4, a ZIP for a .docx whose parts lie past the first KiB). The
// root (no signature at all) is nobody's family.
func relatedTypes(want, got *mimetype.MIME) bool {
	for g := got; g != nil && g.Parent() != nil; g = g.Parent() {
		for w := want; w != nil && w.Parent() != nil; w = w.Parent() {
			if g.Is(w.String()) || w.Is(g.String()) {
				return true
			}
		}
	}
	return false
}

// CheckStored reads the object at key back from the store and judges it as
// a download is judged (Sniffer.Check), against the media's listed type and
// the type the object was stored with: for a copy archived before copies
// were judged, whose bytes nobody has looked at. It streams (memory does
// not grow with the object's size) and also proves that what it read is
// exactly size bytes with SHA-256 sha, so the bytes judged are the copy the
// row records. It returns nil, or an error wrapping ErrImplausible,
// ErrNotFound or ErrChecksumMismatch (the copy must not be deleted from
// Twilio), or another error (the store could not be read: try again).
func CheckStored(ctx context.Context, s Store, key string, size int64, sha [32]byte, listedType string) error {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return fmt.Errorf("check %q: %w", key, err)
	}
	rc, err := s.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("check %q: %w", key, err)
	}
	defer rc.Close()
	h, sniff := sha256.New(), NewSniffer()
	n, err := io.Copy(io.MultiWriter(h, sniff), rc)
	if err != nil {
		return fmt.Errorf("check %q: read back: %w", key, err)
	}
	var got [32]byte
	h.Sum(got[:0])
	if n != size || got != sha {
		return fmt.Errorf("check %q: read back %d bytes with sha256 %x, want %d bytes with %x: %w",
			key, n, got, size, sha, ErrChecksumMismatch)
	}
	if err := sniff.Check(listedType, info.ContentType); err != nil {
		return fmt.Errorf("check %q: %w", key, err)
	}
	return nil
}
