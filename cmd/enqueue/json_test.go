package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hold list --json and export list --json: one document each, every field
// named as README.md says, parsed back; and empty lists are [] not null.
func TestListsJSON(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)

	var hd struct {
		Holds []holdJSON `json:"holds"`
	}
	var ed struct {
		Exports []exportListJSON `json:"exports"`
	}
	var rd runsDoc
	for _, c := range []struct {
		v    any
		args []string
	}{{&hd, []string{"hold", "list"}}, {&ed, []string{"export", "list"}}, {&rd, []string{"runs"}}} {
		code, out, errOut := d.cli(t, append(c.args, "--json")...)
		require.Equal(t, 0, code, errOut)
		require.Regexp(t, `\[\]`, out, "an empty list is []")
		d.cliJSON(t, c.v, c.args...)
	}

	code, out, errOut := d.cli(t, "hold", "add", "--reason", "litigation 7", "--from", "+15550100", "--since", "2026-01-01", "--until", "2026-02-01")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	code, out, errOut = d.cli(t, "hold", "add", "--reason", "audit", "--message", "MM0123456789abcdef0123456789abcdef")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	code, _, errOut = d.cli(t, "hold", "release", "2", "--reason", "done")
	require.Equal(t, 0, code, errOut)

	d.cliJSON(t, &hd, "hold", "list")
	require.Len(t, hd.Holds, 1, "released holds only with --all")
	h := hd.Holds[0]
	require.Equal(t, int64(1), h.ID)
	require.Equal(t, "litigation 7", h.Reason)
	require.Equal(t, "+15550100", h.From)
	require.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), *h.Since)
	require.Equal(t, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), *h.Until)
	require.True(t, h.Active)
	require.Nil(t, h.ReleasedAt)
	require.Nil(t, h.S3Unconfirmed, "the test bucket sets no S3 legal holds")
	d.cliJSON(t, &hd, "hold", "list", "--all")
	require.Len(t, hd.Holds, 2)
	r := hd.Holds[0]
	if r.ID != 2 {
		r = hd.Holds[1]
	}
	require.Equal(t, int64(2), r.ID)
	require.False(t, r.Active)
	require.Equal(t, []string{"MM0123456789abcdef0123456789abcdef"}, r.MessageSIDs)
	require.NotNil(t, r.ReleasedAt)
	require.Equal(t, "done", r.ReleaseReason)

	dir := t.TempDir()
	code, out, errOut = d.cli(t, "export", "--since", "2026-03-02", "--until", "2026-03-05", "--out", "file://"+dir, "--format", "zip")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	id := runID(t, out)
	d.cliJSON(t, &ed, "export", "list")
	require.Len(t, ed.Exports, 1)
	e := ed.Exports[0]
	require.Equal(t, id, e.ID)
	require.Equal(t, "export", e.Kind)
	require.Equal(t, "queued", e.State, "no worker runs in this test")
	require.Equal(t, "zip", e.Format)
	require.Equal(t, "file://"+dir, e.Out)
	require.Equal(t, "2026-03-02T00:00:00Z", e.Since.Format(time.RFC3339))

	d.cliJSON(t, &rd, "runs", "--state", "queued")
	require.Len(t, rd.Runs, 1)
	require.Equal(t, id, rd.Runs[0].ID)
}
