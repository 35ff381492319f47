package jobs

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
)

// errArchivedCopyBad marks an archived copy that is not what its catalog
// row records: too short, too long, or other bytes.
var errArchivedCopyBad = errors.New("archived copy differs from its record")

// verifiedBody streams an archived object into an upload and checks it,
// on the way out, against the size and SHA-256 its catalog row recorded
// when it was archived (as exports do). It withholds the bytes that would
// complete the file until the whole file is proven: a copy that differs
// never reaches Twilio whole, so MCS cannot create a Media from it, and
// memory holds one read's buffer whatever the file's size.
type verifiedBody struct {
	src  io.Reader
	size int64
	want [32]byte

	mu        sync.Mutex
	h         hash.Hash
	read      int64 // bytes read from src, hashed
	delivered int64 // bytes handed to the transport
	verified  bool  // the whole file matched; only EOF is left
	bad       error // the copy differs (sticky)
}

func newVerifiedBody(src io.Reader, size int64, want [32]byte) *verifiedBody {
	return &verifiedBody{src: src, size: size, want: want, h: sha256.New()}
}

// Read implements io.Reader. The transport may call it from its own
// goroutine, hence the lock.
func (b *verifiedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bad != nil {
		return 0, b.bad
	}
	if b.verified {
		return 0, io.EOF
	}
	if rest := b.size - b.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	var n int
	var err error
	if len(p) > 0 {
		n, err = b.src.Read(p)
		b.h.Write(p[:n])
		b.read += int64(n)
	}
	switch {
	case b.read < b.size && errors.Is(err, io.EOF):
		b.bad = fmt.Errorf("%w: it ends after %d bytes, recorded %d", errArchivedCopyBad, b.read, b.size)
		return 0, b.bad
	case err != nil && !errors.Is(err, io.EOF):
		// The store's own check (archive.ErrChecksumMismatch) or a read
		// error: either way the file is not sent whole.
		return 0, err
	case b.read < b.size:
		b.delivered += int64(n)
		return n, nil
	}
	// These n bytes complete the file: prove it first.
	if err := b.finish(); err != nil {
		b.bad = err
		return 0, err
	}
	b.verified = true
	b.delivered += int64(n)
	return n, nil
}

// finish checks that src ends here and that the bytes hash as recorded.
func (b *verifiedBody) finish() error {
	var one [1]byte
	for range 100 { // a reader may return (0, nil) a few times
		n, err := b.src.Read(one[:])
		if n > 0 {
			return fmt.Errorf("%w: it holds more than the %d bytes recorded", errArchivedCopyBad, b.size)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	var got [32]byte
	b.h.Sum(got[:0])
	if got != b.want {
		return fmt.Errorf("%w: its %d bytes have sha256 %x, recorded %x", errArchivedCopyBad, b.size, got, b.want)
	}
	return nil
}

// state reports whether the transport was handed the whole, verified file
// (so Twilio may have it), and the error that stopped a copy that differs.
func (b *verifiedBody) state() (whole bool, bad error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.verified && b.delivered == b.size, b.bad
}
