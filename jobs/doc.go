// Package jobs holds mediasync's Asynq task types and their handlers: the
// steps of a run, each idempotent, with Postgres (catalog.Catalog) deciding
// what is left to do.
//
// # The task graph
//
// One file per task type (run_start.go, list_page.go, archive_message.go,
// restore.go),
// each with its payload, constructor and handler; every handler is one
// runStep (run_task.go): decode → live-run check → work → finish.
//
//	enqueue backfill ──► run:start ──► messages:page (one chain per UTC day,
//	                        │               │  two days released at a time)
//	                        │               │  records messages, then queues, 64
//	                        │ policy with   ▼  at a time, a task per ≤ 8 with media
//	                        │ --delete:  message:archive
//	                        │ seeded     ├─ list their media (≤ 10 each), unless listed,
//	                        └──────────► │    3 at a time; recorded with the messages,
//	                          messages   │    and what the run still has to do with
//	                          archived   │    them read, in one round trip (Postgres
//	                          earlier    │    decides; a replay skips what is committed)
//	                                     ├─ copy, 3 at a time: download → spool (SHA-256)
//	                                     │    + sniffer → bytes plausible for the type,
//	                                     │    or the media is suspect (kept aside, never
//	                                     │    deleted) → create-only PUT, store-verified
//	                                     │    (past 1 MiB to https S3: streamed into the
//	                                     │    PUT, SHA-256 a trailer, judged before S3
//	                                     │    may commit; media_stream.go)
//	                                     ├─ commit every copy and outcome: one statement
//	                                     └─ only with --delete, 3 at a time, each media:
//	                                          verify the stored copy now → never judged
//	                                          (archived before the check)? read it back
//	                                          and judge it → claim in Postgres → DELETE
//	                                          on Twilio, each attempt leased (no hold)
//	                                          first → row deleted (or held)
//
// Each messages:page task also archives the record of each message it
// lists (the object Twilio returned, or without its body for a
// --no-bodies run), once, before the messages' rows and tasks
// (message_records.go, issue #17); a message run's run:start does so for
// its message. A page is stored, recorded and queued in parts of 8 tasks
// (pageParts), so its first tasks run while its other records are
// stored; a short page (under 256 messages with media) puts fewer than
// 8 in a task, so that it still makes 32 tasks, or one per message.
//
// A restore (restore.go, restore_upload.go; issue #15) is a run of its own
// kind: run:start fixes its media in Postgres (restore_media, once per
// target service), restore:batch tasks upload ten each into the Media
// Content Service (each upload claimed before it is sent, its archived
// copy checked against its row on the way out), and restore:finish writes
// the manifest of old → new Media SIDs into the archive and ends the run.
//
// A verify run (enqueue verify, or a verify policy) lists nothing: run:start
// chooses its media once (run_verify), then verify:batch tasks (verify.go)
// read them back 50 at a time, two chains at a time, each batch queueing the
// next while the backlog allows, and record each result. A retry run
// (enqueue retry) starts like a backfill, from the failures of the run it
// retries, copied when it was created. A cancelled run is finished: every
// step's live-run check drops it, and each DELETE attempt's lease is
// refused (catalog.LeaseRunDelete).
//
// The Conversations source (issue #15; conversations_list.go,
// archive_conversation_message.go) runs in the same graph: a run's window
// per service pages its conversations (messages:page), each conversation
// is scanned newest message first, one page per conversation:page task,
// down to since or to where an earlier run read it (conversation_progress),
// and each message with media is one conversation:message task: its record
// (JSON) archived, its media copied, committed and proven by the Messaging
// task's core (archiveBatch, claimArchived), and, with --delete, the
// message deleted whole once every media of it is proven, each attempt
// leased for every one of them. Media download from MCS (media_source.go).
//
// Workers before issue #14 queued a message:media task per message, a
// media:archive per media and a media:delete per media; such tasks left in
// Redis by an upgrade mid-run each do their message's work
// (legacy_media.go), a media:delete after its scope checks.
//
// # What each step keeps
//
//   - Payloads hold identifiers only; page cursors live in run_windows, so a
//     task replayed late cannot fetch a stale page, and no list is ever in
//     Redis.
//   - Task IDs are derived from the work (run, window, page, SID), so the
//     same work queued twice runs once while it is queued; a replay after it
//     ran finds its row done and returns.
//   - Each step commits its rows before it queues what follows, and queues
//     what follows before it marks itself done: a crash repeats work, never
//     skips it. Reconcile re-queues from Postgres whatever Redis lost.
//   - Pages are listed one at a time across the fleet, and only while the
//     queues hold at most MaxBacklog tasks, so Redis memory stays flat
//     however large the run and however many workers. A run's days are
//     released into the queue a few at a time, the next as one ends, and
//     the backlog leaves their page tasks out: a page never waits on work
//     that only listing drains.
//   - A day whose cursors go round (A→B→A), kept in Postgres across tasks,
//     or that passes maxWindowPages, fails with the reason.
//   - Nothing is deleted from Twilio unless the store proves, at that
//     moment, the size and SHA-256 the committed row records.
//   - A legal hold wins every race: each DELETE attempt is leased against
//     the holds after its rate-limit slot is taken and sent before the lease
//     ends, and placing a hold waits out the leases it covers.
//   - A message task acts only on media of its run's account, and deletes
//     only those its run marked to delete (run_media.delete_wanted).
//   - A message task's media are bounded: at most 8 messages (a full
//     page's go 8 to a task, so the run, its "done?" check, the record, the
//     work read and the commit are one round trip each for all of them),
//     read from Postgres 50 media at a time, and at most 3 at once are
//     downloaded, stored or deleted.
//   - A media is recorded gone only on the API's own 404 / 20404 for it
//     (twilio.IsGone); a 404 from the signed-URL host, or without the code,
//     fetches the media again and retries the download while Twilio has it.
//   - SIDs from Twilio are checked against their pattern before anything
//     records them; a bad one fails its window or message with the reason.
//
// # Retries
//
// Twilio's 429 and queue backpressure return a RetryLaterError, which does
// not use up a retry (IsFailure, RetryDelay); its pause, like every retry
// delay, is capped at 5 minutes whatever Retry-After asks; a listing task's
// backoff (start, page, message: each a gate the rest of its day or message
// waits on) at 1 minute, with retries to keep trying as long. Each reconcile
// pass logs one line: what it found stale, in which state each task was, and
// how long the longest left in a backoff or pause still waits.
//
// Errors no retry can fix (a corrupt payload, a 4xx from Twilio, a
// conflicting object) wrap asynq.SkipRetry; the media is recorded as failed
// with the reason, and the run counts it. A message task goes on with its
// other media when one fails: it is retried while a retry may help one of
// them, and otherwise ends with the failures no retry can fix.
package jobs
