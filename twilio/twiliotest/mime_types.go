package twiliotest

import "strings"

// mimeType is one content type the emulator knows: its file extension, the
// prefix of generated filenames and the magic bytes generated content starts
// with, so that sniffing (http.DetectContentType, `file`, mimetype) agrees
// with the declared type: a whole header where a detector checks more than
// the first bytes (ID3v2: version, flags, a non-zero size).
type mimeType struct {
	contentType string
	ext         string
	namePrefix  string
	magic       []byte
	text        bool // generated content is printable text
}

// builtinMIME lists the types MMS carries most (Twilio's "accepted content
// types" for MMS); the generator picks among them with the weights below.
var builtinMIME = []mimeType{
	{contentType: "image/jpeg", ext: ".jpg", namePrefix: "IMG_", magic: []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00}},
	{contentType: "image/png", ext: ".png", namePrefix: "IMG_", magic: []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}},
	{contentType: "image/gif", ext: ".gif", namePrefix: "GIF_", magic: []byte("GIF89a")},
	{contentType: "video/mp4", ext: ".mp4", namePrefix: "VID_", magic: []byte{0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'm', 'p', '4', '2'}},
	{contentType: "video/3gpp", ext: ".3gp", namePrefix: "VID_", magic: []byte{0, 0, 0, 0x14, 'f', 't', 'y', 'p', '3', 'g', 'p', '4'}},
	{contentType: "audio/mpeg", ext: ".mp3", namePrefix: "AUD_", magic: []byte("ID3\x04\x00\x00\x00\x00\x00\x0A")},
	{contentType: "audio/amr", ext: ".amr", namePrefix: "AUD_", magic: []byte("#!AMR\n")},
	{contentType: "application/pdf", ext: ".pdf", namePrefix: "DOC_", magic: []byte("%PDF-1.7\n")},
	{contentType: "text/vcard", ext: ".vcf", namePrefix: "contact_", magic: []byte("BEGIN:VCARD\r\nVERSION:3.0\r\n"), text: true},
	{contentType: "text/plain", ext: ".txt", namePrefix: "note_", text: true},
}

// mimeWeights is how often the generator picks each builtin type (per mille):
// mostly photos, as in real MMS traffic.
var mimeWeights = []int{450, 150, 60, 120, 30, 60, 20, 50, 30, 30}

// mimeTable interns content types so that a media record keeps a uint16.
type mimeTable struct {
	types []mimeType
	index map[string]uint16
}

func newMIMETable() *mimeTable {
	t := &mimeTable{index: make(map[string]uint16)}
	for _, m := range builtinMIME {
		t.index[m.contentType] = uint16(len(t.types))
		t.types = append(t.types, m)
	}
	return t
}

// intern returns the index of a content type, adding it with a best-guess
// extension when it is new.
func (t *mimeTable) intern(contentType string) uint16 {
	if i, ok := t.index[contentType]; ok {
		return i
	}
	m := mimeType{contentType: contentType, ext: ".bin", namePrefix: "file_"}
	if _, sub, ok := strings.Cut(contentType, "/"); ok && sub != "" && len(sub) <= 8 && isToken(sub) {
		m.ext = "." + sub
	}
	m.text = strings.HasPrefix(contentType, "text/")
	i := uint16(len(t.types))
	t.types = append(t.types, m)
	t.index[contentType] = i
	return i
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
