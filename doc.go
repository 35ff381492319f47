// Package mediasync is the root of the mediasync module: a service that
// archives Twilio media into S3 (or a directory), records every object in
// Postgres, and deletes media from Twilio only once the archived copy is
// proven durable.
//
// The packages, in the order data flows through them:
//
//   - twilio: a client for the Twilio REST calls mediasync makes.
//   - jobs: Asynq task types that page through Twilio and archive each media.
//   - archive: the object stores (S3, local directory) and the Postgres catalog.
//   - migrations: the SQL schema, embedded and applied by the worker.
//   - cmd/worker, cmd/enqueue, cmd/twilio-emulator: the programs.
package mediasync
