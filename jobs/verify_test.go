package jobs

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
)

// readStored (a verify run's read, and an export's) streams: reading a
// 64 MiB object back allocates a small fraction of it. And it tells a
// matching object from one of other bytes, of another size, or missing.
//
// Not parallel: the allocation count is the process's.
func TestReadStoredStreamsAndJudges(t *testing.T) {
	fs, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	h := &Handlers{store: fs}
	const size = 64 << 20
	sp := archive.NewSpool(archive.SpoolConfig{Dir: t.TempDir()})
	t.Cleanup(func() { _ = sp.Close() })
	chunk := bytes.Repeat([]byte{0x5a}, 1<<20)
	for range size / len(chunk) {
		_, err := sp.Write(chunk)
		require.NoError(t, err)
	}
	body, err := sp.Reader()
	require.NoError(t, err)
	_, err = fs.Put(t.Context(), archive.PutInput{Key: "big/object", Size: sp.Size(), SHA256: sp.SHA256()}, body)
	require.NoError(t, err)
	cp := catalog.CopyAt{Store: fs.Location().Kind, Bucket: fs.Location().Bucket, Key: "big/object"}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	result, reason, err := h.readStored(t.Context(), "ME1", cp, size, sp.SHA256(), io.Discard)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Equal(t, catalog.VerifyOK, result, reason)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("reading %d MiB allocated %d KiB", size>>20, alloc>>10)
	require.Less(t, alloc, uint64(size/16), "reading back allocates with the object's size")

	other := sha256.Sum256([]byte("other"))
	for _, c := range []struct {
		name   string
		size   int64
		sha    [32]byte
		key    string
		result string
	}{
		{"other bytes", size, other, "big/object", catalog.VerifyMismatch},
		{"shorter than recorded", size + 1, sp.SHA256(), "big/object", catalog.VerifyMismatch},
		{"longer than recorded", size - 1, sp.SHA256(), "big/object", catalog.VerifyMismatch},
		{"missing", size, sp.SHA256(), "big/none", catalog.VerifyMissing},
	} {
		t.Run(c.name, func(t *testing.T) {
			result, reason, err := h.readStored(t.Context(), "ME1", catalog.CopyAt{Store: cp.Store, Bucket: cp.Bucket, Key: c.key}, c.size, c.sha, io.Discard)
			require.NoError(t, err)
			require.Equal(t, c.result, result)
			require.Contains(t, reason, c.key)
		})
	}
	result, reason, err = h.readStored(t.Context(), "ME1", catalog.CopyAt{Store: "s3", Bucket: "elsewhere", Key: "big/object"}, size, sp.SHA256(), io.Discard)
	require.NoError(t, err)
	require.Equal(t, catalog.VerifyError, result)
	require.Contains(t, reason, `"elsewhere"`)

	// Bytes changed under the store's feet (same size) are found too.
	path := filepath.Join(fs.Dir(), "big", "object")
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteAt([]byte{0x00}, size/2)
		require.NoError(t, f.Close())
	}
	require.NoError(t, err)
	result, _, err = h.readStored(t.Context(), "ME1", cp, size, sp.SHA256(), io.Discard)
	require.NoError(t, err)
	require.Equal(t, catalog.VerifyMismatch, result)
}
