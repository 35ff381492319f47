// Package zipstream writes a zip archive to a stream in one pass, with
// memory that does not grow with the number of entries: the central
// directory is spooled to a temporary file and copied out at Close.
//
// archive/zip keeps every entry's header in memory until Close; for an
// export of a million media that is hundreds of MB. This writer holds one
// entry's state at a time.
//
// Sizes and CRCs are not known when an entry starts, so every entry sets
// general purpose bit 3 and ends with a data descriptor. Every local header
// carries a zip64 extra field, so that data descriptor always has 8-byte
// sizes and an entry may be any size, as APPNOTE 4.3.9.2 lets a streaming
// reader expect. The central directory and end records use zip64 only where
// a value does not fit, so small archives stay plain for old readers.
package zipstream

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"time"
	"unicode/utf8"
)

// Compression methods, the same values as archive/zip's Store and Deflate.
const (
	Store   uint16 = 0
	Deflate uint16 = 8
)

// Record signatures and sizes (APPNOTE.TXT section 4.3).
const (
	localHeaderSig    = 0x04034b50
	dataDescriptorSig = 0x08074b50
	centralHeaderSig  = 0x02014b50
	dir64EndSig       = 0x06064b50
	dir64LocatorSig   = 0x07064b50
	dirEndSig         = 0x06054b50

	localHeaderLen    = 30
	dataDescriptorLen = 24 // with signature and 8-byte sizes
	centralHeaderLen  = 46
	dir64EndLen       = 56
	dir64LocatorLen   = 20
	dirEndLen         = 22

	zip64ExtraID   = 0x0001
	extTimeExtraID = 0x5455

	versionPlain = 20 // deflate
	versionZip64 = 45
	creatorUnix  = 3 << 8 // so unzip applies the mode in the external attributes

	flagDataDescriptor = 1 << 3
	flagUTF8           = 1 << 11

	fileMode = 0o100644 // regular file, rw-r--r--
)

// The limits past which a value goes to a zip64 field. Variables only so
// tests can reach the zip64 paths without writing 4 GiB.
var (
	max32 uint64 = math.MaxUint32
	max16 uint64 = math.MaxUint16
)

// Writer writes a zip archive to a stream. It is not safe for concurrent
// use. Call Close to finish the archive, or Abort to give it up; either
// removes the spool file.
type Writer struct {
	out      *countWriter
	spoolDir string
	spool    *os.File
	dir      *bufio.Writer // buffers central directory records into spool
	dirLen   uint64
	entries  uint64
	cur      *entry
	fw       *flate.Writer // reused across entries: each costs ~1 MB
	err      error         // sticky: once writing failed, the archive is lost
	done     bool
}

// NewWriter returns a Writer that writes the archive to w and spools the
// central directory in spoolDir ("" means os.TempDir()).
func NewWriter(w io.Writer, spoolDir string) *Writer {
	return &Writer{out: &countWriter{w: w}, spoolDir: spoolDir}
}

// entry is the entry being written.
type entry struct {
	z                *Writer
	name             string
	method, flags    uint16
	dosDate, dosTime uint16
	extra            []byte // extended timestamp, same in local and central headers
	offset           uint64 // of the local header
	start            uint64 // of the data
	crc              hash.Hash32
	size             uint64 // uncompressed
	dst              io.Writer
	closed           bool
}

// Create adds an entry named name, compressed with method (Store or
// Deflate), and returns a writer for its contents, valid until the next
// Create or Close.
func (z *Writer) Create(name string, method uint16, modified time.Time) (io.Writer, error) {
	if err := z.finishEntry(); err != nil {
		return nil, err
	}
	if method != Store && method != Deflate {
		return nil, fmt.Errorf("zipstream: %s: unsupported compression method %d", name, method)
	}
	if len(name) > math.MaxUint16 {
		return nil, fmt.Errorf("zipstream: name too long (%d bytes)", len(name))
	}
	if !utf8.ValidString(name) {
		return nil, fmt.Errorf("zipstream: name %q is not UTF-8", name)
	}
	if z.spool == nil {
		if err := z.openSpool(); err != nil {
			return nil, err
		}
	}
	e := &entry{z: z, name: name, method: method, flags: flagDataDescriptor, offset: z.out.n, crc: crc32.NewIEEE()}
	if !isASCII(name) {
		e.flags |= flagUTF8
	}
	e.dosDate, e.dosTime = dosTime(modified)
	e.extra = extTime(modified)

	// Local header: CRC and sizes follow in the data descriptor; the sizes
	// here are 0xFFFFFFFF pointing at a zip64 extra of zeros (4.5.3).
	extraLen := 20 + len(e.extra)
	b := make([]byte, 0, localHeaderLen+len(name)+extraLen)
	b = le32(b, localHeaderSig)
	b = le16(b, versionZip64)
	b = le16(b, e.flags)
	b = le16(b, method)
	b = le16(b, e.dosTime)
	b = le16(b, e.dosDate)
	b = le32(b, 0) // CRC-32
	b = le32(b, math.MaxUint32)
	b = le32(b, math.MaxUint32)
	b = le16(b, uint16(len(name)))
	b = le16(b, uint16(extraLen))
	b = append(b, name...)
	b = le16(b, zip64ExtraID)
	b = le16(b, 16)
	b = le64(b, 0) // uncompressed size
	b = le64(b, 0) // compressed size
	b = append(b, e.extra...)
	if err := z.write(b); err != nil {
		return nil, fmt.Errorf("zipstream: %s: local header: %w", name, err)
	}
	e.start = z.out.n
	e.dst = z.out
	if method == Deflate {
		if z.fw == nil {
			fw, err := flate.NewWriter(z.out, flate.DefaultCompression)
			if err != nil {
				return nil, fmt.Errorf("zipstream: %w", err)
			}
			z.fw = fw
		} else {
			z.fw.Reset(z.out)
		}
		e.dst = z.fw
	}
	z.cur = e
	return e, nil
}

// Write writes p to the entry, compressed with its method.
func (e *entry) Write(p []byte) (int, error) {
	if e.closed {
		return 0, fmt.Errorf("zipstream: %s: write after the entry ended", e.name)
	}
	if e.z.err != nil {
		return 0, e.z.err
	}
	n, err := e.dst.Write(p)
	e.crc.Write(p[:n])
	e.size += uint64(n)
	if err != nil {
		e.z.fail(err)
		return n, fmt.Errorf("zipstream: %s: %w", e.name, err)
	}
	return n, nil
}

// finishEntry ends the current entry, if any: its data descriptor goes to
// the stream and its central directory record to the spool.
func (z *Writer) finishEntry() error {
	if z.done {
		return errors.New("zipstream: archive already closed")
	}
	if z.err != nil {
		return z.err
	}
	e := z.cur
	if e == nil {
		return nil
	}
	z.cur, e.closed = nil, true
	if e.method == Deflate {
		if err := z.fw.Close(); err != nil {
			z.fail(err)
			return fmt.Errorf("zipstream: %s: %w", e.name, err)
		}
	}
	csize, crc := z.out.n-e.start, e.crc.Sum32()
	b := make([]byte, 0, dataDescriptorLen)
	b = le32(b, dataDescriptorSig)
	b = le32(b, crc)
	b = le64(b, csize)
	b = le64(b, e.size)
	if err := z.write(b); err != nil {
		return fmt.Errorf("zipstream: %s: data descriptor: %w", e.name, err)
	}

	// Central record: zip64 only if a value does not fit, with all three
	// in the extra (as archive/zip does; readers take them in order).
	version, usize, c32, off := uint16(versionPlain), e.size, csize, e.offset
	var z64 []byte
	if usize >= max32 || c32 >= max32 || off >= max32 {
		version = versionZip64
		z64 = le16(z64, zip64ExtraID)
		z64 = le16(z64, 24)
		z64 = le64(z64, usize)
		z64 = le64(z64, c32)
		z64 = le64(z64, off)
		usize, c32, off = math.MaxUint32, math.MaxUint32, math.MaxUint32
	}
	r := make([]byte, 0, centralHeaderLen+len(e.name)+len(z64)+len(e.extra))
	r = le32(r, centralHeaderSig)
	r = le16(r, creatorUnix|version)
	r = le16(r, version)
	r = le16(r, e.flags)
	r = le16(r, e.method)
	r = le16(r, e.dosTime)
	r = le16(r, e.dosDate)
	r = le32(r, crc)
	r = le32(r, uint32(c32))
	r = le32(r, uint32(usize))
	r = le16(r, uint16(len(e.name)))
	r = le16(r, uint16(len(z64)+len(e.extra)))
	r = le16(r, 0) // comment length
	r = le16(r, 0) // disk number start
	r = le16(r, 0) // internal attributes
	r = le32(r, fileMode<<16)
	r = le32(r, uint32(off))
	r = append(r, e.name...)
	r = append(r, z64...)
	r = append(r, e.extra...)
	if _, err := z.dir.Write(r); err != nil {
		z.fail(err)
		return fmt.Errorf("zipstream: spool central directory: %w", err)
	}
	z.dirLen += uint64(len(r))
	z.entries++
	return nil
}

// Close ends the last entry and writes the central directory and the end
// records. It does not close the underlying writer. The spool file is
// removed whether or not Close succeeds, and the Writer is done either way.
func (z *Writer) Close() error {
	if z.done {
		return errors.New("zipstream: archive already closed")
	}
	defer func() { z.done = true; z.release() }()
	if err := z.finishEntry(); err != nil {
		return err
	}
	dirOff := z.out.n
	if z.spool != nil {
		if err := z.dir.Flush(); err != nil {
			return fmt.Errorf("zipstream: spool central directory: %w", err)
		}
		if _, err := z.spool.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("zipstream: rewind central directory spool: %w", err)
		}
		n, err := io.Copy(z.out, z.spool)
		if err != nil {
			z.fail(err)
			return fmt.Errorf("zipstream: copy central directory: %w", err)
		}
		if uint64(n) != z.dirLen {
			return fmt.Errorf("zipstream: central directory spool holds %d bytes, wrote %d", n, z.dirLen)
		}
	}
	records, size, off := z.entries, z.dirLen, dirOff
	var b []byte
	if records >= max16 || size >= max32 || off >= max32 {
		end64 := z.out.n
		b = le32(b, dir64EndSig)
		b = le64(b, dir64EndLen-12) // size of the rest of this record
		b = le16(b, creatorUnix|versionZip64)
		b = le16(b, versionZip64)
		b = le32(b, 0) // this disk
		b = le32(b, 0) // disk of the central directory
		b = le64(b, records)
		b = le64(b, records)
		b = le64(b, size)
		b = le64(b, off)

		b = le32(b, dir64LocatorSig)
		b = le32(b, 0) // disk of the zip64 end record
		b = le64(b, end64)
		b = le32(b, 1) // total disks
		records, size, off = math.MaxUint16, math.MaxUint32, math.MaxUint32
	}
	b = le32(b, dirEndSig)
	b = le16(b, 0) // this disk
	b = le16(b, 0) // disk of the central directory
	b = le16(b, uint16(records))
	b = le16(b, uint16(records))
	b = le32(b, uint32(size))
	b = le32(b, uint32(off))
	b = le16(b, 0) // comment length
	if err := z.write(b); err != nil {
		return fmt.Errorf("zipstream: end of central directory: %w", err)
	}
	return nil
}

// Abort gives up the archive: it removes the spool file, and later calls
// fail. What was written to the stream stays there; the caller discards it
// (an unfinished upload, say). Abort after Close does nothing.
func (z *Writer) Abort() {
	if z.done {
		return
	}
	if z.err == nil {
		z.err = errors.New("zipstream: archive aborted")
	}
	z.release()
}

// release ends the current entry's writer and removes the spool file.
func (z *Writer) release() {
	if z.cur != nil {
		z.cur.closed = true
		z.cur = nil
	}
	if z.spool != nil {
		name := z.spool.Name()
		_ = z.spool.Close()
		_ = os.Remove(name) // normally gone already; see openSpool
		z.spool, z.dir = nil, nil
	}
}

// openSpool creates the central directory's spool file.
func (z *Writer) openSpool() error {
	f, err := os.CreateTemp(z.spoolDir, "mediasync-zipdir-*")
	if err != nil {
		z.fail(err)
		return fmt.Errorf("zipstream: create central directory spool: %w", err)
	}
	// Unlinked at once: the open descriptor keeps the data, and the kernel
	// frees it when the descriptor closes, however the process ends. Where
	// that is refused (Windows), Abort removes it.
	_ = os.Remove(f.Name())
	z.spool, z.dir = f, bufio.NewWriterSize(f, 64<<10)
	return nil
}

func (z *Writer) write(b []byte) error {
	if _, err := z.out.Write(b); err != nil {
		z.fail(err)
		return err
	}
	return nil
}

// fail makes err sticky: a stream with a gap in it is no archive.
func (z *Writer) fail(err error) {
	if z.err == nil {
		z.err = fmt.Errorf("zipstream: an earlier write failed: %w", err)
	}
}

// countWriter counts the bytes written, which give the entries' offsets.
type countWriter struct {
	w io.Writer
	n uint64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

// dosTime returns t's MS-DOS date and time (2 s resolution, local to t's
// zone), clamped to the range the format holds (1980-2107).
func dosTime(t time.Time) (date, tm uint16) {
	if t.IsZero() || t.Year() < 1980 {
		return 1<<5 | 1, 0 // 1980-01-01 00:00
	}
	if t.Year() > 2107 {
		return 127<<9 | 12<<5 | 31, 23<<11 | 59<<5 | 29
	}
	date = uint16(t.Day() + int(t.Month())<<5 + (t.Year()-1980)<<9)
	tm = uint16(t.Second()/2 + t.Minute()<<5 + t.Hour()<<11)
	return date, tm
}

// extTime returns the extended timestamp extra field (Info-ZIP "UT") with
// t's modification time, which unzip and archive/zip prefer to the MS-DOS
// fields: it is in UTC with 1 s resolution. None if t does not fit.
func extTime(t time.Time) []byte {
	u := t.Unix()
	if t.IsZero() || u < 0 || u > math.MaxUint32 {
		return nil
	}
	b := make([]byte, 0, 9)
	b = le16(b, extTimeExtraID)
	b = le16(b, 5)
	b = append(b, 1) // flags: modification time present
	return le32(b, uint32(u))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func le16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func le64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }
