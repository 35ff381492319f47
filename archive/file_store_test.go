package archive_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/archive/storetest"
	"github.com/mediasync/mediasync/internal/objects"
)

func newFileStore(t *testing.T) *archive.FileStore {
	t.Helper()
	s, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	return s
}

func TestFileStoreConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) archive.Store {
		s := newFileStore(t)
		archive.SetListWindow(s, 3) // directories larger than the window, with a few keys
		return s
	})
}

func putBytes(t *testing.T, s archive.Store, key, contentType string, data []byte) archive.PutInput {
	t.Helper()
	in := archive.PutInput{Key: key, ContentType: contentType, Size: int64(len(data)), SHA256: sha256.Sum256(data)}
	_, err := s.Put(t.Context(), in, bytes.NewReader(data))
	require.NoError(t, err)
	return in
}

func TestFileStoreLayout(t *testing.T) {
	t.Parallel()
	s := newFileStore(t)
	data := []byte("GIF89a…")
	putBytes(t, s, "media/AC1/2024/01/02/MM1/ME1.gif", "image/gif", data)

	obj := filepath.Join(s.Dir(), "media", "AC1", "2024", "01", "02", "MM1", "ME1.gif")
	got, err := os.ReadFile(obj)
	require.NoError(t, err)
	assert.Equal(t, data, got, "the object is a plain file at its key")
	st, err := os.Stat(obj)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o444), st.Mode().Perm(), "objects are read-only")

	raw, err := os.ReadFile(filepath.Join(s.Dir(), ".mediasync", "meta", "media", "AC1", "2024", "01", "02", "MM1", "ME1.gif.json"))
	require.NoError(t, err)
	var side map[string]any
	require.NoError(t, json.Unmarshal(raw, &side))
	assert.Equal(t, "image/gif", side["content_type"])
	assert.Equal(t, float64(len(data)), side["size"])

	tmp, err := os.ReadDir(filepath.Join(s.Dir(), ".mediasync", "tmp"))
	require.NoError(t, err)
	assert.Empty(t, tmp, "no temporary file is left behind")
	assert.Equal(t, objects.Location{Kind: "file", Bucket: s.Dir()}, s.Location())
}

func TestFileStoreRefusesReservedAndEscapingKeys(t *testing.T) {
	t.Parallel()
	s := newFileStore(t)
	for _, key := range []string{".mediasync/meta/x.json", ".mediasync", "../outside", "a/../../outside", "/etc/passwd"} {
		data := []byte("x")
		_, err := s.Put(t.Context(), archive.PutInput{Key: key, Size: 1, SHA256: sha256.Sum256(data)}, bytes.NewReader(data))
		require.ErrorIs(t, err, archive.ErrInvalidInput, key)
		_, err = s.Stat(t.Context(), key)
		require.ErrorIs(t, err, archive.ErrInvalidInput, key)
		_, err = s.Open(t.Context(), key)
		require.ErrorIs(t, err, archive.ErrInvalidInput, key)
	}
	_, err := os.Stat(filepath.Join(filepath.Dir(s.Dir()), "outside"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// Bit rot or tampering on disk is caught: Stat re-hashes, and a read ends
// with ErrChecksumMismatch.
func TestFileStoreDetectsChangedBytes(t *testing.T) {
	t.Parallel()
	s := newFileStore(t)
	data := bytes.Repeat([]byte("media "), 10_000)
	in := putBytes(t, s, "tamper.bin", "", data)

	path := filepath.Join(s.Dir(), "tamper.bin")
	require.NoError(t, os.Chmod(path, 0o644))
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("X"), 30_000)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	err = archive.Verify(t.Context(), s, in.Key, in.Size, in.SHA256)
	require.ErrorIs(t, err, archive.ErrChecksumMismatch)

	rc, err := s.Open(t.Context(), in.Key)
	require.NoError(t, err)
	defer rc.Close()
	_, err = io.ReadAll(rc)
	require.ErrorIs(t, err, archive.ErrChecksumMismatch)

	// A retry of the original Put must not call the changed file a match.
	_, err = s.Put(t.Context(), in, bytes.NewReader(data))
	require.ErrorIs(t, err, archive.ErrConflict)
}

// A crash after the object was published but before its sidecar was written
// leaves bytes without metadata; the retried Put completes it.
func TestFileStoreRetryCompletesMissingSidecar(t *testing.T) {
	t.Parallel()
	s := newFileStore(t)
	data := []byte("%PDF-1.7")
	in := putBytes(t, s, "doc.pdf", "application/pdf", data)
	side := filepath.Join(s.Dir(), ".mediasync", "meta", "doc.pdf.json")
	require.NoError(t, os.Remove(side))

	info, err := s.Stat(t.Context(), "doc.pdf")
	require.NoError(t, err, "the bytes are there even without a sidecar")
	assert.Equal(t, sha256.Sum256(data), info.SHA256)
	assert.Empty(t, info.ContentType)

	res, err := s.Put(t.Context(), in, bytes.NewReader(data))
	require.NoError(t, err)
	assert.True(t, res.Existed)
	info, err = s.Stat(t.Context(), "doc.pdf")
	require.NoError(t, err)
	assert.Equal(t, "application/pdf", info.ContentType)
}

// A key reused after its object was removed by hand gets a fresh sidecar,
// not the old object's.
func TestFileStoreReplacesStaleSidecar(t *testing.T) {
	t.Parallel()
	s := newFileStore(t)
	putBytes(t, s, "reused.txt", "text/plain", []byte("old"))
	require.NoError(t, os.Remove(filepath.Join(s.Dir(), "reused.txt")))
	in := putBytes(t, s, "reused.txt", "text/csv", []byte("new,bytes"))

	info, err := s.Stat(t.Context(), "reused.txt")
	require.NoError(t, err)
	assert.Equal(t, "text/csv", info.ContentType)
	require.NoError(t, archive.Verify(t.Context(), s, in.Key, in.Size, in.SHA256))
}

func TestFileStoreKeyBelowAnObject(t *testing.T) {
	t.Parallel()
	s := newFileStore(t)
	putBytes(t, s, "a", "", []byte("file"))
	data := []byte("below")
	_, err := s.Put(t.Context(), archive.PutInput{Key: "a/b", Size: int64(len(data)), SHA256: sha256.Sum256(data)}, bytes.NewReader(data))
	require.ErrorIs(t, err, archive.ErrInvalidInput)
	_, err = s.Stat(t.Context(), "a/b")
	require.ErrorIs(t, err, archive.ErrNotFound)
}

func TestNewFileStoreRemovesOnlyStaleTempFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := archive.NewFileStore(dir)
	require.NoError(t, err)
	tmp := filepath.Join(dir, ".mediasync", "tmp")
	old := filepath.Join(tmp, "put-old")
	young := filepath.Join(tmp, "put-young")
	require.NoError(t, os.WriteFile(old, []byte("crashed put"), 0o600))
	require.NoError(t, os.WriteFile(young, []byte("running put"), 0o600))
	past := time.Now().Add(-25 * time.Hour)
	require.NoError(t, os.Chtimes(old, past, past))

	_, err = archive.NewFileStore(dir)
	require.NoError(t, err)
	_, err = os.Stat(old)
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(young)
	assert.NoError(t, err)
}

func TestNewFileStoreErrors(t *testing.T) {
	t.Parallel()
	_, err := archive.NewFileStore("")
	require.ErrorContains(t, err, "directory is empty")

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = archive.NewFileStore(file)
	require.Error(t, err)
	require.Contains(t, err.Error(), file)
}

// A directory cannot lock objects: the file store refuses lock settings
// rather than let anyone believe an object is write-once when it is not.
func TestFileStoreRefusesObjectLock(t *testing.T) {
	t.Parallel()
	s, err := archive.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("worm")
	for name, in := range map[string]archive.PutInput{
		"lock":       {Key: "a/b", Size: 4, SHA256: sha256.Sum256(body), LockMode: objects.LockCompliance, RetainUntil: time.Now().Add(time.Hour)},
		"legal hold": {Key: "a/c", Size: 4, SHA256: sha256.Sum256(body), LegalHold: true},
	} {
		if _, err := s.Put(t.Context(), in, bytes.NewReader(body)); !errors.Is(err, archive.ErrInvalidInput) {
			t.Errorf("%s: got %v, want ErrInvalidInput", name, err)
		}
	}
}
