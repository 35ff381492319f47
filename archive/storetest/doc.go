// Package storetest is the conformance suite for archive.Store: every
// implementation must pass Run, so that the jobs can rely on one contract
// whatever the archive is.
//
//	func TestFileStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) archive.Store {
//			s, err := archive.NewFileStore(t.TempDir())
//			require.NoError(t, err)
//			return s
//		})
//	}
//
// newStore is called once per case and must return an empty store that no
// other case uses, so cases run in parallel. The suite checks what callers
// rely on: not-found, read-after-write of bytes and metadata, checksum and
// size mismatches rejected with nothing stored, idempotent and conflicting
// puts (sequential and concurrent), Verify, a large object streamed from
// an archive.Spool, and, for a store that streams (archive.Streamer), puts
// of a body read once whose refusal at its end (the caller's verdict, a
// short, long or broken body) leaves nothing at the key. Stores must prove the SHA-256 of objects below 5 MiB in
// Stat without reading them back (archive.ObjectInfo.SHA256 non-zero).
package storetest
