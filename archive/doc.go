// Package archive is where media end up and the record of how they got
// there: the object stores (S3Store, FileStore), the key layout, the spool
// that hashes a download on its way, and the Postgres catalog. It is the
// only package that builds object keys and SQL.
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
// and, only when a run asked to delete:
//
//	Verify(ctx, store, key, size, sha)        // the store proves it holds those bytes, now
//	catalog.ClaimDelete(ctx, sid, size, sha)  // the row still says exactly that
//	twilio DELETE                             // only now, each attempt guarded by
//	    catalog.LeaseDelete(ctx, sid)         // no hold, now: sent before the lease ends
//	catalog.MarkDeleted(ctx, run, sid)        // refused (ErrHeld) under a hold
//
// A hold placed meanwhile wins: AddHold and LeaseDelete share a lock, and
// AddHold returns only once every lease on a media it covers has ended.
//
// The schema backs this up: a row cannot say archived without size, SHA-256
// and key, nor deleted without a verified copy and a claim, nor hold a claim
// while suspect.
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
// # Rules of the data
//
// The rules of what may be recorded live beside the types, so the CLI, the
// workers and any later caller share them: Policy.Validate, Hold.Validate
// and ExportSpec.Validate return an *InvalidError naming the field and the
// value at fault, and SetPolicy, AddHold and CreateExport apply them again.
// Rules that hold across rows live in the SQL: SetPolicy's upsert changes
// only a policy of the same account (else *PolicyAccountError), so two
// accounts racing for a name cannot take each other's policy.
//
//	if err := p.Validate(); err != nil { … }  // *InvalidError: exit 2 in the CLI
//	created, err := catalog.SetPolicy(ctx, p, actor)
//
// # Idempotence
//
// Objects are create-only: a Put repeated with the same bytes reports
// Existed; different bytes at the same key are refused with ErrConflict,
// never overwritten. Catalog updates are guarded by the state they move
// from, so every step may run twice.
package archive
