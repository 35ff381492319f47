// Package objects names what the archive's objects are and where they live,
// for the two packages that must agree on it without depending on each
// other: archive, which stores objects, and catalog, which records them.
// It holds vocabulary only: no I/O, no imports of this module.
package objects

import "time"

// Location names an archive: Kind is LocationS3 or LocationFile; Bucket is
// the bucket name or the directory.
type Location struct {
	Kind   string
	Bucket string
}

// Location kinds.
const (
	LocationS3   = "s3"
	LocationFile = "file"
)

// LockMode is an S3 Object Lock retention mode.
type LockMode string

// Object Lock retention modes.
const (
	LockGovernance LockMode = "GOVERNANCE"
	LockCompliance LockMode = "COMPLIANCE"
)

// MaxPresign is the longest a SigV4 presigned URL can be valid.
const MaxPresign = 7 * 24 * time.Hour

// AuditAnchor is the head of the audit chain as written to the archive. The
// database alone cannot prove that its newest rows were not removed: the
// chain that remains links perfectly. An anchor in the archive, create-only
// (and Object-Locked under WORM), is out of reach of whoever can change the
// database, and the catalog checks the log against every anchor.
type AuditAnchor struct {
	HeadID   int64     `json:"head_id"`   // the newest row at the time
	HeadHash []byte    `json:"head_hash"` // its hash
	At       time.Time `json:"at"`        // when the anchor was written

	// Key is where the anchor is in the archive (set when anchors are
	// listed from their keys: At is then zero).
	//
	// There is no row count: counting the log would scan all of it on
	// every anchor, and the hashes already prove the chain up to the head.
	Key string `json:"-"`
}
