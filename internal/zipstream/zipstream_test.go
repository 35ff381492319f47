package zipstream

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

type testEntry struct {
	name     string
	method   uint16
	modified time.Time
	data     []byte
}

func sampleEntries() []testEntry {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 200<<10)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	text := []byte(strings.Repeat("message SID, media SID, sha256\n", 5000))
	at := time.Date(2024, 3, 9, 17, 45, 31, 0, time.UTC)
	return []testEntry{
		{"2024-03-09/MM1/ME1.jpg", Store, at, random},
		{"manifest.csv", Deflate, at.Add(time.Hour), text},
		{"empty-stored", Store, at, nil},
		{"empty-deflated", Deflate, at, nil},
		{"café/naïve-ü.txt", Deflate, time.Date(2031, 12, 31, 23, 59, 59, 0, time.UTC), []byte("non-ASCII name")},
		{"2024-03-09/MM1/ME2.png", Store, time.Date(1999, 1, 2, 3, 4, 6, 0, time.UTC), random[:1000]},
	}
}

// writeZip writes entries, each in two Writes so entries span calls.
func writeZip(t *testing.T, w io.Writer, entries []testEntry) {
	t.Helper()
	z := NewWriter(w, t.TempDir())
	for _, e := range entries {
		fw, err := z.Create(e.name, e.method, e.modified)
		if err != nil {
			t.Fatalf("Create(%q): %v", e.name, err)
		}
		half := len(e.data) / 2
		if _, err := fw.Write(e.data[:half]); err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(e.data[half:]); err != nil {
			t.Fatal(err)
		}
	}
	if err := z.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// setLimits lowers the zip64 limits for one test.
func setLimits(t *testing.T, l32, l16 uint64) {
	old32, old16 := max32, max16
	max32, max16 = l32, l16
	t.Cleanup(func() { max32, max16 = old32, old16 })
}

// endRecord returns the end of central directory record's entry count and
// whether a zip64 end record and locator precede it.
func endRecord(t *testing.T, b []byte) (records uint16, zip64 bool) {
	t.Helper()
	end := b[len(b)-dirEndLen:]
	if binary.LittleEndian.Uint32(end) != dirEndSig {
		t.Fatalf("archive does not end with an end of central directory record")
	}
	loc := len(b) - dirEndLen - dir64LocatorLen
	zip64 = loc >= 0 && binary.LittleEndian.Uint32(b[loc:]) == dir64LocatorSig
	return binary.LittleEndian.Uint16(end[10:]), zip64
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		max32     uint64
		wantZip64 bool
	}{
		{"plain", math.MaxUint32, false},
		// Every size and offset past 1 byte takes the zip64 fields, as an
		// entry or archive past 4 GiB would.
		{"zip64 everywhere", 1, true},
		// The first entries fit, later offsets do not: both kinds of
		// central record in one archive.
		{"zip64 from 100 KiB on", 100 << 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setLimits(t, tt.max32, math.MaxUint16)
			entries := sampleEntries()
			var buf bytes.Buffer
			writeZip(t, &buf, entries)
			checkArchive(t, buf.Bytes(), entries)
			if _, zip64 := endRecord(t, buf.Bytes()); zip64 != tt.wantZip64 {
				t.Errorf("zip64 end records written: %v, want %v", zip64, tt.wantZip64)
			}
			unzipTest(t, buf.Bytes(), len(entries))
		})
	}
}

// checkArchive reads b with archive/zip and compares every entry, reading
// each in full so the reader checks its CRC-32 and size.
func checkArchive(t *testing.T, b []byte, want []testEntry) {
	t.Helper()
	r, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("archive/zip cannot open the archive: %v", err)
	}
	if len(r.File) != len(want) {
		t.Fatalf("archive has %d entries, want %d", len(r.File), len(want))
	}
	for i, f := range r.File {
		w := want[i]
		if f.Name != w.name || f.Method != w.method {
			t.Errorf("entry %d: %q method %d, want %q method %d", i, f.Name, f.Method, w.name, w.method)
		}
		if !f.Modified.Equal(w.modified) {
			t.Errorf("%s: modified %v, want %v", f.Name, f.Modified, w.modified)
		}
		if f.NonUTF8 || (f.Flags&flagUTF8 != 0) == isASCII(f.Name) {
			t.Errorf("%s: UTF-8 flag %v", f.Name, f.Flags&flagUTF8 != 0)
		}
		if f.UncompressedSize64 != uint64(len(w.data)) {
			t.Errorf("%s: size %d, want %d", f.Name, f.UncompressedSize64, len(w.data))
		}
		if f.Mode() != 0o644 {
			t.Errorf("%s: mode %v, want -rw-r--r--", f.Name, f.Mode())
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		got, err := io.ReadAll(rc) // fails on a CRC-32 or size mismatch
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if !bytes.Equal(got, w.data) {
			t.Errorf("%s: contents differ (%d bytes, want %d)", f.Name, len(got), len(w.data))
		}
	}
}

// unzipTest runs Info-ZIP's unzip -t on b and checks zipinfo sees n entries
// with the times of archive/zip (so unzip restores them).
func unzipTest(t *testing.T, b []byte, n int) {
	t.Helper()
	if _, err := exec.LookPath("unzip"); err != nil {
		t.Fatalf("unzip (Info-ZIP) is needed, as scripts/install-tools.sh ensures: %v", err)
	}
	p := filepath.Join(t.TempDir(), "a.zip")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("unzip", "-t", p).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("No errors detected")) {
		t.Fatalf("unzip -t: %v\n%s", err, tail(out))
	}
	cmd := exec.Command("zipinfo", "-T", p)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("zipinfo: %v\n%s", err, tail(out))
	}
	if !bytes.Contains(out, []byte(fmt.Sprintf("%d files", n))) {
		t.Errorf("zipinfo does not count %d files:\n%s", n, tail(out))
	}
	r, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.File[:min(len(r.File), 10)] {
		if ts := f.Modified.UTC().Format("20060102.150405"); !bytes.Contains(out, []byte(ts+" "+f.Name)) {
			t.Errorf("zipinfo does not list %s at %s:\n%s", f.Name, ts, tail(out))
		}
	}
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}

// More than 65535 entries need the zip64 end records; small entries make
// it quick.
func TestManyEntries(t *testing.T) {
	const n = 70_000
	at := time.Date(2024, 1, 2, 3, 4, 6, 0, time.UTC)
	entries := make([]testEntry, n)
	for i := range entries {
		entries[i] = testEntry{fmt.Sprintf("d/%06d.txt", i), Store, at, []byte(fmt.Sprint(i))}
	}
	var buf bytes.Buffer
	writeZip(t, &buf, entries)
	if records, zip64 := endRecord(t, buf.Bytes()); records != 0xFFFF || !zip64 {
		t.Errorf("end record: %d entries, zip64 %v; want 0xFFFF and zip64 records", records, zip64)
	}
	checkArchive(t, buf.Bytes(), entries)
	unzipTest(t, buf.Bytes(), n)
}

// The point of the package: writing many entries holds no per-entry memory,
// where archive/zip holds a header per entry until Close.
func TestMemoryFlat(t *testing.T) {
	const n = 200_000
	const bound = 4 << 20
	name := func(i int) string {
		return fmt.Sprintf("2024-01-02/MM%032d/ME%032d.jpg", i, i)
	}
	at := time.Date(2024, 1, 2, 3, 4, 6, 0, time.UTC)
	data := []byte("0123456789")

	out := &countWriter{w: io.Discard}
	z := NewWriter(out, t.TempDir())
	growth := heapGrowth(func() {
		for i := range n {
			fw, err := z.Create(name(i), Store, at)
			if err == nil {
				_, err = fw.Write(data)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	before := out.n
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if dir := out.n - before; dir < n*(centralHeaderLen+uint64(len(name(0)))) {
		t.Errorf("Close wrote %d bytes, less than %d entries' central directory", dir, n)
	}
	t.Logf("zipstream: heap grew %d KB over %d entries", growth>>10, n)
	if growth > bound {
		t.Errorf("heap grew %d KB writing %d entries, want < %d KB", growth>>10, n, bound>>10)
	}

	// The bound must tell the two apart, or the check above proves nothing.
	zw := zip.NewWriter(io.Discard)
	std := heapGrowth(func() {
		for i := range n {
			fw, err := zw.CreateHeader(&zip.FileHeader{Name: name(i), Method: zip.Store, Modified: at})
			if err == nil {
				_, err = fw.Write(data)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Logf("archive/zip: heap grew %d KB over %d entries", std>>10, n)
	if std < 4*bound {
		t.Errorf("archive/zip grew only %d KB for the same entries; the bound no longer discriminates", std>>10)
	}
	_ = zw.Close()
}

// heapGrowth returns how much live heap f leaves behind.
func heapGrowth(f func()) int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	before := m.HeapAlloc
	f()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc) - int64(before)
}

func TestSpoolRemoved(t *testing.T) {
	for _, abort := range []bool{false, true} {
		t.Run(fmt.Sprintf("abort=%v", abort), func(t *testing.T) {
			dir := t.TempDir()
			z := NewWriter(io.Discard, dir)
			for i := range 3 {
				fw, err := z.Create(fmt.Sprint(i), Deflate, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprint(fw, "hello")
			}
			if abort {
				z.Abort()
				if _, err := z.Create("after", Store, time.Now()); err == nil {
					t.Error("Create after Abort succeeded")
				}
			} else if err := z.Close(); err != nil {
				t.Fatal(err)
			}
			left, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Errorf("spool dir holds %v after the archive ended", left[0].Name())
			}
		})
	}
}

func TestSpoolDirUsed(t *testing.T) {
	z := NewWriter(io.Discard, filepath.Join(t.TempDir(), "missing"))
	defer z.Abort()
	_, err := z.Create("a", Store, time.Now())
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Create with a missing spool dir: %v, want a not-exist error", err)
	}
}

// failAfter accepts n bytes, then fails.
type failAfter struct{ n int }

var errDisk = errors.New("upload refused")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, errDisk
	}
	f.n -= len(p)
	return len(p), nil
}

// A failed write to the stream loses the archive: every later call says
// why, rather than writing an archive with a hole in it.
func TestWriteErrorSticks(t *testing.T) {
	for _, limit := range []int{0, 10, 100, 5000} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			z := NewWriter(&failAfter{n: limit}, t.TempDir())
			var first error
			for i := 0; i < 5 && first == nil; i++ {
				fw, err := z.Create(fmt.Sprint(i), Store, time.Now())
				if err == nil {
					_, err = fw.Write(make([]byte, 1000))
				}
				first = err
			}
			if first == nil {
				first = z.Close()
			} else if err := z.Close(); !errors.Is(err, errDisk) {
				t.Errorf("Close after a failed write: %v, want it to wrap %v", err, errDisk)
			}
			if !errors.Is(first, errDisk) {
				t.Fatalf("first error %v, want it to wrap %v", first, errDisk)
			}
		})
	}
}

func TestEntryWriterEndsWithEntry(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2024, 1, 2, 3, 4, 6, 0, time.UTC)
	z := NewWriter(&buf, t.TempDir())
	a, _ := z.Create("a", Store, at)
	if _, err := z.Create("b", Store, at); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("late")); err == nil {
		t.Error("write to an ended entry succeeded")
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	checkArchive(t, buf.Bytes(), []testEntry{{"a", Store, at, nil}, {"b", Store, at, nil}})
}

func TestCreateRejects(t *testing.T) {
	for _, tt := range []struct {
		name   string
		method uint16
	}{
		{"bzip2", 12},
		{"bad\xffutf8", Store},
		{strings.Repeat("x", 70000), Store},
	} {
		z := NewWriter(io.Discard, t.TempDir())
		if _, err := z.Create(tt.name, tt.method, time.Now()); err == nil {
			t.Errorf("Create(%.20q, %d) succeeded", tt.name, tt.method)
		}
		z.Abort()
	}
}
