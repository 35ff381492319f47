package archive

import (
	"strings"

	"github.com/google/uuid"
)

// RestoreManifestKey returns the key, in the archive, of a restore's
// manifest (one JSON line per media uploaded: old → new Media SID):
//
//	{prefix}/_restores/{AccountSid}/restore-{run id}.jsonl
//
// No account SID begins with "_", so restore manifests never share a key
// with media; like the audit anchors, they sit beside the media they
// describe, not in an export's destination.
func RestoreManifestKey(prefix, accountSID string, id uuid.UUID) string {
	var b strings.Builder
	if p := strings.Trim(prefix, "/"); p != "" {
		b.WriteString(p)
		b.WriteByte('/')
	}
	b.WriteString("_restores/")
	b.WriteString(accountSID)
	b.WriteString("/restore-")
	b.WriteString(id.String())
	b.WriteString(".jsonl")
	return b.String()
}
