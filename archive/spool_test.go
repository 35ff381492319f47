package archive_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
)

func TestSpoolRoundTrip(t *testing.T) {
	t.Parallel()
	const memory = 1024
	for _, size := range []int{0, 1, memory - 1, memory, memory + 1, 3*memory + 7, 200_000} {
		for _, chunk := range []int{1, 100, memory, 64 << 10} {
			t.Run(fmt.Sprintf("size=%d/chunk=%d", size, chunk), func(t *testing.T) {
				t.Parallel()
				data := make([]byte, size)
				_, _ = rand.NewChaCha8([32]byte{byte(size), byte(chunk)}).Read(data)
				dir := t.TempDir()
				s := archive.NewSpool(archive.SpoolConfig{Dir: dir, Memory: memory})
				defer s.Close()
				for rest := data; len(rest) > 0; {
					n := min(chunk, len(rest))
					w, err := s.Write(rest[:n])
					require.NoError(t, err)
					require.Equal(t, n, w)
					rest = rest[n:]
				}
				assert.Equal(t, int64(size), s.Size())
				assert.Equal(t, sha256.Sum256(data), s.SHA256())

				r, err := s.Reader()
				require.NoError(t, err)
				// Read, Seek and ReadAt agree with the bytes written, across
				// the memory/file boundary.
				require.NoError(t, iotest.TestReader(r, data))
				r2, err := s.Reader()
				require.NoError(t, err)
				got, err := io.ReadAll(r2)
				require.NoError(t, err)
				assert.Equal(t, data, got)

				entries, err := os.ReadDir(dir)
				require.NoError(t, err)
				assert.Empty(t, entries, "the temporary file is unlinked from the start")
			})
		}
	}
}

func TestSpoolLifecycle(t *testing.T) {
	t.Parallel()
	s := archive.NewSpool(archive.SpoolConfig{Dir: t.TempDir(), Memory: 4})
	_, err := s.Write([]byte("hello, spool"))
	require.NoError(t, err)
	r, err := s.Reader()
	require.NoError(t, err)

	_, err = s.Write([]byte("more"))
	require.Error(t, err, "writing after Reader would change what readers see")

	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	_, err = r.Read(make([]byte, 4))
	require.ErrorIs(t, err, os.ErrClosed)
	_, err = s.Reader()
	require.ErrorIs(t, err, os.ErrClosed)
}

func TestSpoolMaxSize(t *testing.T) {
	t.Parallel()
	s := archive.NewSpool(archive.SpoolConfig{Dir: t.TempDir(), Memory: 8, MaxSize: 20})
	defer s.Close()
	_, err := s.Write(make([]byte, 20))
	require.NoError(t, err)
	_, err = s.Write([]byte{1})
	require.ErrorIs(t, err, archive.ErrTooLarge)
	_, err = s.Reader()
	require.ErrorIs(t, err, archive.ErrTooLarge, "a failed spool cannot be uploaded")
}

func TestSpoolTempDirError(t *testing.T) {
	t.Parallel()
	s := archive.NewSpool(archive.SpoolConfig{Dir: "/nonexistent/mediasync-spool", Memory: 2})
	defer s.Close()
	_, err := s.Write([]byte("ab"))
	require.NoError(t, err, "fits in memory")
	_, err = s.Write([]byte("c"))
	require.ErrorContains(t, err, "create temporary file")
	_, err = s.Reader()
	require.Error(t, err)
}

// Memory stays bounded however much is spooled: 64 MiB written and read
// back allocate little more than the 1 MiB kept in memory.
//
// Not parallel: it measures the process's allocations, which other tests
// running at the same time would inflate.
func TestSpoolMemoryBound(t *testing.T) {
	const size = 64 << 20
	chunk := bytes.Repeat([]byte("twilio media "), 32<<10/13)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	s := archive.NewSpool(archive.SpoolConfig{Dir: t.TempDir()})
	defer s.Close()
	want := sha256.New()
	for written := 0; written < size; written += len(chunk) {
		_, err := s.Write(chunk)
		require.NoError(t, err)
		want.Write(chunk)
	}
	r, err := s.Reader()
	require.NoError(t, err)
	h := sha256.New()
	buf := make([]byte, 32<<10)
	n, err := io.CopyBuffer(h, r, buf)
	require.NoError(t, err)

	runtime.ReadMemStats(&after)
	assert.Equal(t, s.Size(), n)
	assert.Equal(t, want.Sum(nil), h.Sum(nil))
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB to spool and read back %d MiB", allocated>>10, size>>20)
	assert.Less(t, allocated, uint64(8<<20), "memory must not grow with the size spooled")
}
