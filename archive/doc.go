// Package archive is where media end up: the object stores (S3Store,
// FileStore), the key layout, the spool that hashes a download on its way,
// the check that the bytes are plausibly what Twilio listed, Object Lock
// and presigned URLs. It is the only package that builds object keys. The
// record of what is where is package catalog; the two share only the names
// in internal/objects, and jobs puts them together in the order below.
//
// # The order that makes a copy trustworthy
//
//	spool, sniff := NewSpool(SpoolConfig{}), NewSniffer() // hash, count and judge while Twilio streams
//	io.Copy(io.MultiWriter(spool, sniff), content)
//	body, _ := spool.Reader()
//	sniff.Check(listedType, servedType)       // else: Put under SuspectKey, MarkSuspect; stop
//	store.Put(ctx, PutInput{Key: ObjectKey(prefix, k), Size: spool.Size(), SHA256: spool.SHA256()}, body)
//	                                          // create-only; S3 verifies x-amz-checksum-sha256
//	catalog.MarkArchived(ctx, run, sid, ...)  // size, sha256, key: one transaction
//
// A download past the spool's memory, to a store that streams (Streamer:
// S3 over https), skips the spool: it goes straight into one PUT whose
// SHA-256 travels as a trailing checksum that S3 verifies, judged as it
// passes, the verdict given at the end of the body, before S3 may commit:
//
//	sniff := NewSniffer()
//	res, err := store.PutStream(ctx, PutInput{Key: key, Size: content.Size, ...},
//		io.TeeReader(content, sniff), func() error { return sniff.Check(listedType, servedType) })
//	                                          // refused: nothing at key; download again, spooled, for SuspectKey
//	catalog.MarkArchived(ctx, run, sid, ...)  // res.Size, res.SHA256: hashed on the way, verified by S3
//
// Over plain http the SDK sends no trailing checksum, so such a store does
// not stream and downloads are spooled.
//
// and, only when a run asked to delete:
//
//	Verify(ctx, store, key, size, sha)        // the store proves it holds those bytes, now
//	catalog.ClaimDelete(ctx, sid, size, sha, at) // the row still says exactly that
//	twilio DELETE                             // only now, each attempt guarded by
//	    catalog.LeaseDelete(ctx, sid)         // no hold, now: sent before the lease ends
//	catalog.MarkDeleted(ctx, run, sid)        // refused (ErrHeld) under a hold
//
// A hold placed meanwhile wins (see package catalog).
//
// # Key layout
//
//	{prefix}/{AccountSid}/{yyyy}/{mm}/{dd}/{MessageSid}/{MediaSid}{.ext}
//
// The date is the message's date_sent in UTC, and the extension comes from
// a fixed table (ExtensionFor), so the same media always has the same key.
// Audit anchors (AuditAnchor) live under {prefix}/_audit/anchors/, where no
// account SID can be.
//
// An export writes to its own destination, under the root its URL gives
// (ExportKey): each media at ExportMediaPath, {yyyy-mm-dd}/{MessageSid}/{MediaSid}{.ext},
// beside manifest.jsonl, manifest.csv, SHA256SUMS and export.json; a zip
// export is the one object ExportZipName, holding the same paths. Every
// object key, media or export, is built in keys.go.
//
// # Idempotence
//
// Objects are create-only: a Put repeated with the same bytes reports
// Existed; different bytes at the same key are refused with ErrConflict,
// never overwritten, so every step may run twice.
package archive
