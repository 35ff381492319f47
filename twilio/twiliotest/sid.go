package twiliotest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// sidKind tells apart the objects whose SIDs share one 32-hex space. It is
// the first byte of the block the SID encrypts, so a SID of one kind never
// decodes as another.
type sidKind byte

const (
	kindAccount sidKind = iota + 1
	kindAPIKey
	kindMessage
	kindMedia
	kindService
	kindConversation
	kindConvMessage
	kindParticipant
	kindMessagingService
	kindContentPath // the 32 hex in a signed URL's path
	kindRequest
)

// sidCodec turns (kind, index) into a 32-hex SID body and back. The body is
// one AES block [kind, index (4 bytes), 11 zero bytes] encrypted under a key
// derived from the seed: SIDs look random like Twilio's, are deterministic
// for a seed, map straight to an arena index without a lookup table (a
// million media cost no map), and a SID the emulator never issued fails the
// zero check (a 2^-88 chance of a false match).
type sidCodec struct {
	block cipher.Block
}

func newSIDCodec(seed int64) *sidCodec {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seed))
	key := sha256.Sum256(append([]byte("twiliotest sid key\x00"), b[:]...))
	block, err := aes.NewCipher(key[:16])
	if err != nil {
		panic(err) // a 16-byte key never fails
	}
	return &sidCodec{block: block}
}

func (c *sidCodec) encode(kind sidKind, index uint32) string {
	var plain, out [16]byte
	plain[0] = byte(kind)
	binary.BigEndian.PutUint32(plain[1:5], index)
	c.block.Encrypt(out[:], plain[:])
	return hex.EncodeToString(out[:])
}

// decode returns the index of a 32-hex body issued for kind.
func (c *sidCodec) decode(kind sidKind, body string) (uint32, bool) {
	if len(body) != 32 {
		return 0, false
	}
	var in, plain [16]byte
	if _, err := hex.Decode(in[:], []byte(body)); err != nil {
		return 0, false
	}
	c.block.Decrypt(plain[:], in[:])
	if sidKind(plain[0]) != kind {
		return 0, false
	}
	for _, b := range plain[5:] {
		if b != 0 {
			return 0, false
		}
	}
	return binary.BigEndian.Uint32(plain[1:5]), true
}

// sid builds a full SID: two-letter prefix plus the encoded body.
func (c *sidCodec) sid(prefix string, kind sidKind, index uint32) string {
	return prefix + c.encode(kind, index)
}

// sidError reports a SID that does not have the shape Twilio gives that kind
// of resource (two letters and 32 hex digits); Twilio answers such a request
// with 400 before it looks anything up.
type sidError struct {
	Field string // the path parameter, e.g. "MessageSid"
	Value string
}

func (e *sidError) Error() string {
	return fmt.Sprintf("invalid %s %q: want one of its prefixes followed by 32 hex digits", e.Field, e.Value)
}

// checkSIDShape reports whether s is one of prefixes followed by 32 hex
// digits (either case, as Twilio's patterns `^ME[0-9a-fA-F]{32}$` allow).
func checkSIDShape(s string, prefixes ...string) (prefix string, ok bool) {
	if len(s) != 34 {
		return "", false
	}
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			for i := 2; i < 34; i++ {
				if !isHex(s[i]) {
					return "", false
				}
			}
			return p, true
		}
	}
	return "", false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// parseSID checks the shape of a SID from a request (field names it for the
// error) and, when the shape is right, decodes its index. ok is false for a
// well-formed SID the emulator never issued: the caller answers 404.
func (c *sidCodec) parseSID(field, s string, kind sidKind, prefixes ...string) (index uint32, prefix string, ok bool, err error) {
	prefix, shaped := checkSIDShape(s, prefixes...)
	if !shaped {
		return 0, "", false, &sidError{Field: field, Value: s}
	}
	index, ok = c.decode(kind, strings.ToLower(s[2:]))
	return index, prefix, ok, nil
}
