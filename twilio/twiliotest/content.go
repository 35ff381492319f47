package twiliotest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
)

// Generated content is never held in memory: each media's bytes are a
// ChaCha8 stream keyed by the seed and the media's index (equivalently its
// SID), prefixed by the magic bytes of its type, produced as they are read.
// The same seed gives the same bytes in every run and every process.

// contentKeys derives per-media stream keys from the server seed.
type contentKeys struct {
	base [32]byte
}

func newContentKeys(seed int64) contentKeys {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seed))
	return contentKeys{base: sha256.Sum256(append([]byte("twiliotest content\x00"), b[:]...))}
}

func (k contentKeys) key(index uint32) [32]byte {
	var buf [36]byte
	copy(buf[:], k.base[:])
	binary.BigEndian.PutUint32(buf[32:], index)
	return sha256.Sum256(buf[:])
}

// textAlphabet is what text/* content is made of, so it reads as text.
const textAlphabet = "abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ.,\n"

// genReader streams generated content.
type genReader struct {
	rng   *rand.ChaCha8
	magic []byte
	off   int64
	size  int64
	text  bool
}

func newGenReader(key [32]byte, mt mimeType, size int64) *genReader {
	return &genReader{rng: rand.NewChaCha8(key), magic: mt.magic, size: size, text: mt.text}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	if rest := g.size - g.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n := 0
	if g.off < int64(len(g.magic)) {
		n = copy(p, g.magic[g.off:])
	}
	if n < len(p) {
		tail := p[n:]
		_, _ = g.rng.Read(tail) // ChaCha8.Read never fails and keeps the stream independent of chunking
		if g.text {
			for i, b := range tail {
				tail[i] = textAlphabet[int(b)%len(textAlphabet)]
			}
		}
		n = len(p)
	}
	g.off += int64(n)
	return n, nil
}

// contentSource says where the bytes of a media come from; it is captured
// under the store lock and opened outside it.
type contentSource struct {
	size int64
	gen  *genReader
	blob []byte
	path string
}

func (s *Server) contentSourceLocked(i uint32) contentSource {
	st := s.store
	m := &st.media[i]
	switch {
	case m.flags&mediaBlob != 0:
		return contentSource{size: m.size, blob: st.blobs[i]}
	case m.flags&mediaFile != 0:
		return contentSource{size: m.size, path: st.uploads[m.parent].path}
	default:
		return contentSource{size: m.size, gen: newGenReader(s.keys.key(i), st.mime.types[m.mime], m.size)}
	}
}

// open returns the content as a stream; the caller closes it.
func (c contentSource) open() (io.ReadCloser, error) {
	switch {
	case c.blob != nil:
		return io.NopCloser(bytes.NewReader(c.blob)), nil
	case c.path != "":
		f, err := os.Open(c.path)
		if err != nil {
			return nil, err
		}
		return f, nil
	case c.gen != nil:
		return io.NopCloser(c.gen), nil
	default:
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
}
