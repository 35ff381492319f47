// Package rediskeys builds every Redis key and Asynq queue name of a
// mediasync deployment from its namespace (MEDIASYNC_NAMESPACE), as
// asynq's internal/base builds asynq's keys: in one place, so deployments
// sharing a Redis never touch each other's keys, and so whatever lists or
// deletes a namespace's keys (a test's cleanup) finds all of them.
//
// The layout, for namespace N:
//
//	asynq:{N}:…                  Asynq's keys of the media queue N, and
//	asynq:{N.list}:…             of the list queue N.list (Asynq builds them)
//	N:twilio:AC…:slots|backoff|ceiling
//	                             the account's shared limiter (internal/ratelimit)
//	rate:N:twilio:AC…:rps        its per-second bound: redis_rate puts "rate:"
//	                             in front of every key it is given
//	N:reconcile                  the reconciler's lock: one pass at a time, fleet-wide
//	N:audit-anchor               the audit anchor's lock
//	N:{N.list}:listing-slot      the fleet's one listing slot, hash-tagged like
//	                             the list queue's keys
//
// Asynq's shared keys (asynq:queues, asynq:servers:…, asynq:workers:…)
// hold the records of every deployment on the Redis, and are not the
// namespace's.
//
// The package lives apart from internal/config, which holds the namespace,
// because jobs and the test helpers need the keys and must not depend on
// the package that reads the environment.
package rediskeys

// Namespace is a deployment's namespace: 1 to 40 letters, digits, - or _
// (internal/config checks MEDIASYNC_NAMESPACE), so it holds no glob or
// hash-tag character.
type Namespace string

// ratePrefix is what redis_rate puts in front of every key it is given.
const ratePrefix = "rate:"

// MediaQueue is the Asynq queue of archive and delete tasks.
func (n Namespace) MediaQueue() string { return string(n) }

// ListQueue is the Asynq queue of run, page and message tasks.
func (n Namespace) ListQueue() string { return string(n) + ".list" }

// TwilioLimiter is the ratelimit.Config.Key of an account's limiter, shared
// by every worker of the deployment.
func (n Namespace) TwilioLimiter(accountSID string) string {
	return string(n) + ":twilio:" + accountSID
}

// ReconcileLock is the lock that lets one worker at a time reconcile.
func (n Namespace) ReconcileLock() string { return string(n) + ":reconcile" }

// AuditAnchorLock is the lock that lets one worker at a time anchor the
// audit log.
func (n Namespace) AuditAnchorLock() string { return string(n) + ":audit-anchor" }

// ListingSlot is the fleet's one listing slot. It carries the list queue's
// hash tag, so on Redis Cluster it sits in that queue's slot.
func (n Namespace) ListingSlot() string { return string(n) + ":{" + n.ListQueue() + "}:listing-slot" }

// Patterns returns SCAN/KEYS patterns that together match every key of the
// namespace, Asynq's queue keys included, and no key of another namespace.
func (n Namespace) Patterns() []string {
	return []string{
		"asynq:{" + n.MediaQueue() + "}:*",
		"asynq:{" + n.ListQueue() + "}:*",
		string(n) + ":*",
		ratePrefix + string(n) + ":*",
	}
}

// Queues returns the namespace's Asynq queue names, the members Asynq adds
// to its shared asynq:queues set.
func (n Namespace) Queues() []string { return []string{n.MediaQueue(), n.ListQueue()} }
