// Package testenv gives each test real, isolated services: a Postgres
// database, a Redis namespace, an S3 bucket on a versitygw server.
//
// Tests talk to the same kinds of servers production talks to, never to
// in-memory fakes, so checksum validation, conditional writes and signature
// checks are exercised for real. Each helper takes a testing.TB, isolates the
// test from every other test in the process (so tests can run with
// t.Parallel), and registers its own cleanup.
//
// # S3
//
// S3 starts one versitygw gateway per test process, on a free loopback port,
// and returns its address and test credentials. Bucket creates a bucket named
// after the test, optionally with Object Lock or versioning, and empties and
// removes it when the test ends:
//
//	srv := testenv.S3(t)
//	bucket := testenv.Bucket(t, testenv.WithVersioning())
//	client := srv.Client(t)
//
// The versitygw binary is found through the VERSITYGW environment variable,
// then <repo root>/.tools/bin/versitygw (installed by `make tools`), then
// PATH. A missing binary fails the test: it is never skipped.
package testenv
