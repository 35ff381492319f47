// Package catalog is mediasync's record, in Postgres: runs and their
// windows, messages and media with their states, policies, legal holds,
// exports and the hash-chained audit log. It is the only package that
// builds SQL (its schema is package migrations), and Postgres, not Redis,
// decides what is left to do: every update is guarded by the state it moves
// from, so every step may run twice. The bytes themselves are package
// archive's; the two share only the names in internal/objects.
//
// # The steps that make a delete safe
//
//	c.CommitMessage(ctx, run, copies, …) // size, sha256, key of a message's media: one statement
//	                                     // (MarkArchived: the same for one media)
//	c.ClaimDelete(ctx, sid, size, sha, at) // the row still says exactly that
//	c.LeaseDelete(ctx, sid)              // before each DELETE attempt: no hold, now
//	c.MarkDeleted(ctx, run, sid)         // refused (ErrHeld) under a hold
//
// A hold placed meanwhile wins: AddHold and LeaseDelete share a lock, and
// AddHold returns only once every lease on a media it covers has ended.
//
// The schema backs this up: a row cannot say archived without size, SHA-256
// and key, nor deleted without a verified copy and a claim, nor hold a claim
// while suspect.
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
//	created, err := c.SetPolicy(ctx, p, actor)
package catalog
