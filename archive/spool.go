package archive

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync/atomic"
)

// DefaultSpoolMemory is how many bytes a Spool keeps in memory before it
// spills to a temporary file: enough for most MMS media, small enough that
// dozens of concurrent downloads stay within a few tens of MiB.
const DefaultSpoolMemory = 1 << 20

// ErrTooLarge is returned by Spool.Write when the bytes would exceed
// SpoolConfig.MaxSize.
var ErrTooLarge = errors.New("more bytes than allowed")

// SpoolConfig configures a Spool.
type SpoolConfig struct {
	// Dir is where the temporary file goes. Defaults to os.TempDir().
	Dir string
	// Memory is how many leading bytes stay in memory. Defaults to
	// DefaultSpoolMemory; negative keeps nothing in memory.
	Memory int
	// MaxSize, when positive, is the most bytes the spool accepts: a
	// download that runs past it fails with ErrTooLarge instead of filling
	// the disk.
	MaxSize int64
	// SizeHint, when positive, is the size the bytes are expected to have
	// (a Content-Length): the memory part is allocated at once for up to
	// that many bytes, not grown (and copied) as they arrive.
	SizeHint int64
}

// Spool holds a download between Twilio and the store. The downloader writes
// into it (it is an io.Writer) while it counts the bytes and computes their
// SHA-256; then Reader gives a seekable view for the upload, which S3 needs
// to sign the request and to retry it.
//
// The first SpoolConfig.Memory bytes stay in memory and the rest go to a
// temporary file, so memory use does not grow with the size of the media.
// The file is unlinked as soon as it is created: it never outlives the
// process, even one killed without a chance to clean up.
//
// A Spool is written by one goroutine; readers from Reader may be used from
// others once writing is done.
type Spool struct {
	dir    string
	limit  int
	max    int64
	mem    []byte
	f      *os.File
	name   string // set while the file still has a name to remove
	n      int64
	h      hash.Hash
	err    error
	sealed bool
	closed atomic.Bool
}

// NewSpool returns an empty Spool. It creates no file until the bytes
// outgrow memory.
func NewSpool(cfg SpoolConfig) *Spool {
	limit := cfg.Memory
	switch {
	case limit == 0:
		limit = DefaultSpoolMemory
	case limit < 0:
		limit = 0
	}
	s := &Spool{dir: cfg.Dir, limit: limit, max: cfg.MaxSize, h: sha256.New()}
	if cfg.SizeHint > 0 && limit > 0 {
		s.mem = make([]byte, 0, min(cfg.SizeHint, int64(limit)))
	}
	return s
}

var errSpoolSealed = errors.New("spool: write after Reader")

// Write appends p. After a failed Write the spool is unusable and every later
// call returns the same error.
func (s *Spool) Write(p []byte) (int, error) {
	switch {
	case s.err != nil:
		return 0, s.err
	case s.closed.Load():
		return 0, fmt.Errorf("spool: %w", os.ErrClosed)
	case s.sealed:
		return 0, errSpoolSealed
	case s.max > 0 && s.n+int64(len(p)) > s.max:
		s.err = fmt.Errorf("spool: %d bytes and more, limit %d: %w", s.n+int64(len(p)), s.max, ErrTooLarge)
		return 0, s.err
	}
	s.h.Write(p)
	written := 0
	if room := s.limit - len(s.mem); room > 0 && len(p) > 0 {
		k := min(room, len(p))
		s.mem = appendCapped(s.mem, p[:k], s.limit)
		p = p[k:]
		written = k
	}
	if len(p) > 0 {
		if s.f == nil {
			if err := s.createFile(); err != nil {
				s.err = err
				s.n += int64(written)
				return written, err
			}
		}
		n, err := s.f.Write(p)
		written += n
		if err != nil {
			s.err = fmt.Errorf("spool: write temporary file: %w", err)
			s.n += int64(written)
			return written, s.err
		}
	}
	s.n += int64(written)
	return written, nil
}

// appendCapped appends p to b, growing b geometrically but never beyond
// limit bytes of capacity.
func appendCapped(b, p []byte, limit int) []byte {
	need := len(b) + len(p)
	if need > cap(b) {
		c := min(max(2*cap(b), need, 4096), limit)
		nb := make([]byte, len(b), c)
		copy(nb, b)
		b = nb
	}
	return append(b, p...)
}

func (s *Spool) createFile() error {
	f, err := os.CreateTemp(s.dir, "mediasync-spool-*")
	if err != nil {
		return fmt.Errorf("spool: create temporary file: %w", err)
	}
	s.f = f
	// Unlinked at once: the open descriptor keeps the data, and the kernel
	// frees it when the descriptor closes, however the process ends.
	if err := os.Remove(f.Name()); err != nil {
		s.name = f.Name()
	}
	return nil
}

// Size returns the number of bytes written.
func (s *Spool) Size() int64 { return s.n }

// SHA256 returns the SHA-256 of the bytes written.
func (s *Spool) SHA256() [32]byte {
	var sum [32]byte
	s.h.Sum(sum[:0])
	return sum
}

// Reader ends writing and returns a reader over everything written. It can
// be called more than once; each reader has its own offset. Readers also
// implement io.ReaderAt.
func (s *Spool) Reader() (io.ReadSeeker, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.closed.Load() {
		return nil, fmt.Errorf("spool: %w", os.ErrClosed)
	}
	s.sealed = true
	return &spoolReader{s: s}, nil
}

// Close releases the temporary file (its space is freed at once). Readers
// fail after it.
func (s *Spool) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	if s.f != nil {
		if err := s.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("spool: close temporary file: %w", err))
		}
	}
	if s.name != "" {
		if err := os.Remove(s.name); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("spool: remove temporary file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// spoolReader reads a sealed Spool: bytes [0, len(mem)) from memory, the rest
// from the file at offset (off - len(mem)).
type spoolReader struct {
	s   *Spool
	off int64
}

func (r *spoolReader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if n > 0 && err == io.EOF {
		// The next Read reports the end; some consumers mishandle data
		// and io.EOF together.
		err = nil
	}
	return n, err
}

func (r *spoolReader) ReadAt(p []byte, off int64) (int, error) {
	s := r.s
	if s.closed.Load() {
		return 0, fmt.Errorf("spool: %w", os.ErrClosed)
	}
	if off < 0 {
		return 0, errors.New("spool: negative offset")
	}
	if off >= s.n {
		return 0, io.EOF
	}
	if rest := s.n - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n := 0
	if mem := int64(len(s.mem)); off < mem {
		n = copy(p, s.mem[off:])
	}
	if n < len(p) {
		m, err := s.f.ReadAt(p[n:], off+int64(n)-int64(len(s.mem)))
		n += m
		if err != nil && !(errors.Is(err, io.EOF) && n == len(p)) {
			return n, fmt.Errorf("spool: read temporary file: %w", err)
		}
	}
	if off+int64(n) == s.n {
		return n, io.EOF
	}
	return n, nil
}

// inMemory returns the spool's bytes when all of them are in memory, for a
// request body the HTTP transport writes with its headers, without a copy.
func (r *spoolReader) inMemory() ([]byte, bool) {
	s := r.s
	if s.f != nil || s.closed.Load() {
		return nil, false
	}
	return s.mem[:s.n], true
}

func (r *spoolReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.s.n + offset
	default:
		return 0, errors.New("spool: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("spool: negative position")
	}
	r.off = abs
	return abs, nil
}
