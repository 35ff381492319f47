package devtools

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Not parallel: it sets VERSITYGW for the process.
func TestVersityGWFromEnv(t *testing.T) {
	t.Setenv("VERSITYGW", filepath.Join(t.TempDir(), "missing-versitygw"))
	_, err := VersityGW()
	require.ErrorContains(t, err, "VERSITYGW=")

	bin := filepath.Join(t.TempDir(), "versitygw")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755))
	t.Setenv("VERSITYGW", bin)
	got, err := VersityGW()
	require.NoError(t, err)
	assert.Equal(t, bin, got)
}
