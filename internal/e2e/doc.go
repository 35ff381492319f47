// Package e2e holds mediasync's process-level tests: real worker and
// enqueue processes against the Twilio emulator, Postgres, Redis and an S3
// server, under load, faults and crashes (see internal/e2etest for the
// harness and docs/reliability.md for what each test proves).
package e2e
