package archive

import (
	"crypto/sha256"
	"hash"
	"io"
)

// HashWriter passes bytes on to another writer while it counts them and
// computes their SHA-256: what the checks of this package compare (a copy
// read back, a file written) is the bytes that actually went through.
// Only bytes the underlying writer accepted are counted and hashed.
type HashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

// NewHashWriter returns a HashWriter onto w; a nil w hashes and counts
// only.
func NewHashWriter(w io.Writer) *HashWriter {
	if w == nil {
		w = io.Discard
	}
	return &HashWriter{w: w, h: sha256.New()}
}

// Write writes p to the underlying writer and hashes what it took.
func (c *HashWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// Size is how many bytes have gone through.
func (c *HashWriter) Size() int64 { return c.n }

// SHA256 is the SHA-256 of the bytes that have gone through.
func (c *HashWriter) SHA256() (s [32]byte) {
	c.h.Sum(s[:0])
	return s
}
