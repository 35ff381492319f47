package archive_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
)

// shortWriter takes at most n bytes, then fails.
type shortWriter struct{ n int }

func (s *shortWriter) Write(p []byte) (int, error) {
	if len(p) > s.n {
		p, s.n = p[:s.n], 0
		return len(p), errors.New("full")
	}
	s.n -= len(p)
	return len(p), nil
}

func TestHashWriter(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := archive.NewHashWriter(&buf)
	_, _ = w.Write([]byte("hello, "))
	_, _ = w.Write([]byte("world"))
	require.Equal(t, "hello, world", buf.String())
	require.EqualValues(t, 12, w.Size())
	require.Equal(t, sha256.Sum256([]byte("hello, world")), w.SHA256())

	// Only what the underlying writer took is counted and hashed.
	w = archive.NewHashWriter(&shortWriter{n: 5})
	n, err := w.Write([]byte("hello, world"))
	require.Error(t, err)
	require.Equal(t, 5, n)
	require.EqualValues(t, 5, w.Size())
	require.Equal(t, sha256.Sum256([]byte("hello")), w.SHA256())

	require.Equal(t, sha256.Sum256(nil), archive.NewHashWriter(nil).SHA256())
}
