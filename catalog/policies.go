package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mediasync/mediasync/internal/schedule"
	"github.com/mediasync/mediasync/internal/sids"
)

// KindPolicy is a run started by a retention policy.
const KindPolicy = "policy"

// ErrPolicyNotFound is returned for an unknown policy name.
var ErrPolicyNotFound = errors.New("no such policy")

// PolicyAccountError is SetPolicy refusing to change a policy that another
// account owns: names are unique across accounts.
type PolicyAccountError struct {
	Name    string
	Owner   string // the account the policy belongs to
	Account string // the account that asked
}

func (e *PolicyAccountError) Error() string {
	return fmt.Sprintf("policy %s belongs to account %s, not %s", e.Name, e.Owner, e.Account)
}

// DefaultLookback is where a new policy's first window begins when it
// names neither a watermark nor a Lookback: 400 days ago, the longest
// Twilio keeps messages (a little more than the 13 months it keeps MMS
// media).
const DefaultLookback = 400 * 24 * time.Hour

var policyNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Policy is a retention policy: at each tick of Schedule, archive messages
// sent in [Watermark, tick − ArchiveAfter) and delete from Twilio the
// archived media of messages sent before tick − DeleteAfter (when Delete).
type Policy struct {
	Name         string
	AccountSID   string
	Schedule     string
	ArchiveAfter time.Duration
	Delete       bool
	DeleteAfter  time.Duration
	Watermark    time.Time
	From, To     string
	// Source is SourceMessaging ("" means it) or SourceConversations,
	// with the Conversations services it lists (none: the default one).
	Source   string
	Services []string
	// NoBodies: the policy's runs archive message records without their
	// body (policy set --no-bodies).
	NoBodies  bool
	LastTick  time.Time
	CreatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time

	// Kind is PolicyArchive (the default) or PolicyVerify: a verify
	// policy, at each tick, starts a verify run that re-reads VerifySample
	// of the archive (and archives and deletes nothing).
	Kind         string
	VerifySample float64

	// Lookback is where a new policy without a Watermark starts: Lookback
	// before today (DefaultLookback if 0). The CLI sets it to Twilio's
	// retention window (TWILIO_RETENTION_DAYS): a policy on an account
	// that keeps 30 days has nothing older to list. Not stored; an update
	// ignores it.
	Lookback time.Duration
}

// Policy kinds.
const (
	PolicyArchive = "archive"
	PolicyVerify  = "verify"
)

// Validate returns an *InvalidError unless p is a policy SetPolicy may
// record: a name of letters, digits, '.', '_' or '-' (at most 63), a
// schedule that parses, no negative age, media deleted no sooner than they
// are archived, and numbers in E.164 form.
func (p Policy) Validate() error {
	if !policyNameRe.MatchString(p.Name) {
		return &InvalidError{Field: "name", Value: p.Name, Reason: "is not valid: use letters, digits, '.', '_' or '-' (at most 63)"}
	}
	if _, err := schedule.Parse(p.Schedule); err != nil {
		return &InvalidError{Field: "schedule", Err: err}
	}
	switch p.Kind {
	case "", PolicyArchive:
		if p.VerifySample != 0 {
			return &InvalidError{Field: "sample", Value: fmt.Sprint(p.VerifySample), Reason: "is only for a policy of --kind verify"}
		}
	case PolicyVerify:
		if !(p.VerifySample > 0 && p.VerifySample <= 1) {
			return &InvalidError{Field: "sample", Value: fmt.Sprint(p.VerifySample), Reason: "is not in (0, 1]"}
		}
		if p.Delete {
			return &InvalidError{Field: "delete-after", Value: schedule.FormatDuration(p.DeleteAfter), Reason: "is not for a policy of --kind verify: it deletes nothing"}
		}
	default:
		return &InvalidError{Field: "kind", Value: p.Kind, Reason: "is not archive or verify"}
	}
	switch {
	case p.ArchiveAfter < 0:
		return &InvalidError{Field: "archive-after", Value: schedule.FormatDuration(p.ArchiveAfter), Reason: "is negative"}
	case p.Delete && p.DeleteAfter < p.ArchiveAfter:
		return &InvalidError{Field: "delete-after", Value: schedule.FormatDuration(p.DeleteAfter),
			Reason: "is shorter than {archive-after} " + schedule.FormatDuration(p.ArchiveAfter) + ": media would be deleted before they are archived"}
	}
	switch p.Source {
	case "", SourceMessaging:
		if len(p.Services) > 0 {
			return &InvalidError{Field: "service", Value: p.Services[0], Reason: "is for the conversations source only"}
		}
	case SourceConversations:
		if p.From != "" || p.To != "" {
			return &InvalidError{Field: "from", Reason: "and {to} filter Messaging only: Conversations has no such filter"}
		}
		if p.NoBodies {
			return &InvalidError{Field: "no-bodies", Reason: "is for the messaging source only, for now: Conversations records keep their body"}
		}
		for _, sv := range p.Services {
			if !sids.ValidService(sv) {
				return &InvalidError{Field: "service", Value: sv, Reason: "is not a Conversations service SID (IS followed by 32 hex digits)"}
			}
		}
	default:
		return &InvalidError{Field: "source", Value: p.Source, Reason: "is not a source: want messaging or conversations"}
	}
	return checkNumbers("from", p.From, "to", p.To)
}

const policyColumns = `name, account_sid, schedule, archive_after, delete_after IS NOT NULL,
	coalesce(delete_after, '0'), watermark, coalesce(from_number, ''), coalesce(to_number, ''),
	last_tick, created_by, created_at, updated_at, kind, coalesce(verify_sample, 0), source, coalesce(services, '{}'), no_bodies`

func scanPolicy(row pgx.Row) (Policy, error) {
	var p Policy
	var last *time.Time
	err := row.Scan(&p.Name, &p.AccountSID, &p.Schedule, &p.ArchiveAfter, &p.Delete, &p.DeleteAfter,
		&p.Watermark, &p.From, &p.To, &last, &p.CreatedBy, &p.CreatedAt, &p.UpdatedAt, &p.Kind, &p.VerifySample, &p.Source, &p.Services, &p.NoBodies)
	if errors.Is(err, pgx.ErrNoRows) {
		return Policy{}, ErrPolicyNotFound
	}
	p.LastTick, p.Watermark = deref(last), p.Watermark.UTC()
	return p, err
}

// SetPolicy creates or updates a policy and records which in the audit
// log, in one transaction; it reports whether the policy was created. A
// policy p.Validate refuses returns its *InvalidError, and one of another
// account a *PolicyAccountError: the upsert itself refuses to change
// another account's row, so two accounts racing for a name cannot take
// each other's policy. A new policy without a watermark starts
// p.Lookback (or DefaultLookback) ago. On an update the watermark and last tick are kept
// unless p.Watermark is set: changing a schedule must not skip or repeat
// what was archived.
func (c *Catalog) SetPolicy(ctx context.Context, p Policy, actor string) (bool, error) {
	if err := p.Validate(); err != nil {
		return false, fmt.Errorf("set policy %s: %w", p.Name, err)
	}
	if !p.Watermark.IsZero() {
		if err := CheckDay(p.Watermark, time.Now()); err != nil {
			return false, fmt.Errorf("set policy %s: watermark: %w", p.Name, err)
		}
	}
	var deleteAfter *time.Duration
	if p.Delete {
		deleteAfter = &p.DeleteAfter
	}
	watermark := p.Watermark
	if watermark.IsZero() {
		watermark = time.Now().UTC().Add(-cmp.Or(p.Lookback, DefaultLookback)).Truncate(24 * time.Hour)
	}
	var created bool
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO policies (name, account_sid, schedule, archive_after, delete_after, watermark,
			                      from_number, to_number, created_by, kind, verify_sample, source, services, no_bodies)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $11, $12, $13, $14, $15)
			ON CONFLICT (name) DO UPDATE SET schedule = EXCLUDED.schedule,
				kind = EXCLUDED.kind, verify_sample = EXCLUDED.verify_sample,
				source = EXCLUDED.source, services = EXCLUDED.services, no_bodies = EXCLUDED.no_bodies,
				archive_after = EXCLUDED.archive_after, delete_after = EXCLUDED.delete_after,
				from_number = EXCLUDED.from_number, to_number = EXCLUDED.to_number,
				watermark = CASE WHEN $10 THEN EXCLUDED.watermark ELSE policies.watermark END,
				updated_at = now()
			WHERE policies.account_sid = EXCLUDED.account_sid
			RETURNING (xmax = 0)`,
			p.Name, p.AccountSID, p.Schedule, p.ArchiveAfter, deleteAfter, watermark,
			nullString(p.From), nullString(p.To), actor, !p.Watermark.IsZero(), cmp.Or(p.Kind, PolicyArchive), nullSample(p.VerifySample),
			cmp.Or(p.Source, SourceMessaging), p.Services, p.NoBodies).Scan(&created)
		if errors.Is(err, pgx.ErrNoRows) {
			// The name is taken by another account: the row stays as it is.
			var owner string
			if err := tx.QueryRow(ctx, `SELECT account_sid FROM policies WHERE name = $1`, p.Name).Scan(&owner); err != nil {
				return err
			}
			return &PolicyAccountError{Name: p.Name, Owner: owner, Account: p.AccountSID}
		}
		if err != nil {
			return err
		}
		action := AuditPolicyChanged
		if created {
			action = AuditPolicyCreated
		}
		d := map[string]any{"schedule": p.Schedule, "archive_after": p.ArchiveAfter.String(), "account_sid": p.AccountSID}
		if p.Delete {
			d["delete_after"] = p.DeleteAfter.String()
		}
		if !p.Watermark.IsZero() {
			d["start"] = p.Watermark
		}
		if p.From != "" {
			d["from"] = p.From
		}
		if p.To != "" {
			d["to"] = p.To
		}
		if p.Kind == PolicyVerify {
			d["kind"], d["sample"] = p.Kind, p.VerifySample
		}
		if p.Source == SourceConversations {
			d["source"], d["services"] = p.Source, p.Services
		}
		if p.NoBodies {
			d["no_bodies"] = true
		}
		return audit(ctx, tx, actor, action, p.Name, d)
	})
	if err != nil {
		return false, fmt.Errorf("set policy %s: %w", p.Name, err)
	}
	return created, nil
}

// RemovePolicy removes a policy (its runs stay) and records it.
func (c *Catalog) RemovePolicy(ctx context.Context, name, actor string) error {
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM policies WHERE name = $1`, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrPolicyNotFound
		}
		return audit(ctx, tx, actor, AuditPolicyRemoved, name, nil)
	})
	if err != nil {
		return fmt.Errorf("remove policy %s: %w", name, err)
	}
	return nil
}

// Policies lists the policies of an account ("" for all), by name.
func (c *Catalog) Policies(ctx context.Context, account string) ([]Policy, error) {
	rows, err := c.pool.Query(ctx, `SELECT `+policyColumns+` FROM policies
		WHERE $1 = '' OR account_sid = $1 ORDER BY name`, account)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Policy, error) { return scanPolicy(r) })
}

// StartPolicyRun records the run of a policy's tick, exactly once however
// many workers ask: the policy row is locked, a tick at or before its last
// one is refused, and a unique index on (policy, tick) backs that up. The
// run archives from the watermark, or from where a run still going will
// stop, so two runs of a policy never list the same window at once. A
// manual run (enqueue policy run) has no tick to compare: now is its tick.
// It reports whether this call created the run.
func (c *Catalog) StartPolicyRun(ctx context.Context, name string, tick time.Time, manual bool, actor string) (Run, bool, error) {
	var id uuid.UUID
	created := false
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		p, err := scanPolicy(tx.QueryRow(ctx, `SELECT `+policyColumns+` FROM policies WHERE name = $1 FOR UPDATE`, name))
		if err != nil {
			return err
		}
		if !manual && !p.LastTick.IsZero() && !tick.After(p.LastTick) {
			return nil // another worker started this tick
		}
		if p.Kind == PolicyVerify {
			// Reads what is archived: no range, no watermark. A tick while
			// the last verify still reads is skipped (the next one after it
			// ends reads again): two would read the archive twice at once.
			var busy bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM runs
				WHERE policy_name = $1 AND state IN ('queued', 'running'))`, name).Scan(&busy); err != nil {
				return err
			}
			if busy && !manual {
				_, err := tx.Exec(ctx, `UPDATE policies SET last_tick = $2 WHERE name = $1`, name, tick)
				return err
			}
			if id, err = insertVerifyRun(ctx, tx, VerifySpec{AccountSID: p.AccountSID, Sample: p.VerifySample, Actor: actor}, &p.Name, &tick); err != nil {
				return err
			}
			created = true
			if manual {
				return nil
			}
			_, err := tx.Exec(ctx, `UPDATE policies SET last_tick = $2 WHERE name = $1`, name, tick)
			return err
		}
		var busyUntil *time.Time
		if err := tx.QueryRow(ctx, `SELECT max(until) FROM runs
			WHERE policy_name = $1 AND state IN ('queued', 'running')`, name).Scan(&busyUntil); err != nil {
			return err
		}
		since := p.Watermark
		if busyUntil != nil && busyUntil.After(since) {
			since = *busyUntil
		}
		until := tick.Add(-p.ArchiveAfter)
		spec := RunSpec{Kind: KindPolicy, AccountSID: p.AccountSID, From: p.From, To: p.To, Delete: p.Delete, Actor: actor,
			Source: p.Source, Services: p.Services, NoBodies: p.NoBodies}
		if since.Before(until) {
			spec.Since, spec.Until = since, until
		}
		var deleteBefore *time.Time
		if p.Delete {
			t := tick.Add(-p.DeleteAfter)
			deleteBefore = &t
		}
		if id, err = insertRun(ctx, tx, spec, &p.Name, &tick, deleteBefore); err != nil {
			return err
		}
		if !manual {
			if _, err := tx.Exec(ctx, `UPDATE policies SET last_tick = $2 WHERE name = $1`, name, tick); err != nil {
				return err
			}
		}
		created = true
		return nil
	})
	if err != nil {
		return Run{}, false, fmt.Errorf("start run of policy %s: %w", name, err)
	}
	if !created {
		return Run{}, false, nil
	}
	run, err := c.GetRun(ctx, id)
	return run, err == nil, err
}

// advanceWatermark moves a policy's watermark over every succeeded run
// that starts at or before it, in the transaction that finished a run. A
// failed run leaves a gap the watermark does not cross, so the next tick
// covers it again.
func advanceWatermark(ctx context.Context, tx pgx.Tx, policy string) error {
	for range 1000 {
		tag, err := tx.Exec(ctx, `
			UPDATE policies p SET watermark = r.until, updated_at = now()
			FROM (SELECT max(until) AS until FROM runs r, policies p
			      WHERE r.policy_name = $1 AND p.name = $1 AND r.state = 'succeeded'
			        AND r.since <= p.watermark AND r.until > p.watermark) r
			WHERE p.name = $1 AND r.until IS NOT NULL`, policy)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
	}
	return nil
}

// SeedDeletes joins to a policy run every archived media of its account
// (and filters) whose message was sent before the run's delete_before, so
// they are deleted by this run. Media joined already keep their state.
// Media a hold covers are left out: a hold on a million media would
// otherwise cost a million delete tasks (and S3 HEADs) every run; the next
// run after the hold's release seeds them.
func (c *Catalog) SeedDeletes(ctx context.Context, run Run) (int64, error) {
	if !run.Delete || run.DeleteBefore.IsZero() {
		return 0, nil
	}
	// A Conversations policy deletes only in its services: those named,
	// and the default one when it has none or names it ('').
	named := []string{}
	for _, sv := range run.Services {
		if sv != "" {
			named = append(named, sv)
		}
	}
	// updated_at in the past: the reconciler queues them at once.
	tag, err := c.pool.Exec(ctx, `
		INSERT INTO run_media (run_id, media_sid, message_sid, state, delete_wanted, reused, updated_at)
		SELECT $1, m.sid, m.message_sid, 'archived', true, true, '-infinity'
		FROM media m JOIN messages g ON g.sid = m.message_sid
		WHERE m.state = 'archived' AND m.account_sid = $2 AND m.source = $6
		  AND coalesce(g.date_sent, g.date_created) < $3
		  AND ($4 = '' OR g.from_number = $4) AND ($5 = '' OR g.to_number = $5)
		  AND ($6 <> 'conversations' OR g.service_sid = ANY($7::text[])
		       -- The default service ('') is known by its SID only from
		       -- what runs over it listed: runs of the default service alone.
		       OR ($8 AND g.service_sid IN (
		           SELECT rc.service_sid FROM run_conversations rc JOIN runs r ON r.id = rc.run_id
		           WHERE r.account_sid = $2 AND r.source = 'conversations'
		             AND coalesce(r.services, '{}') <@ ARRAY['']::text[])))
		  AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.released_at IS NULL AND `+holdCovers+`)
		ON CONFLICT (run_id, media_sid) DO NOTHING`,
		run.ID, run.AccountSID, run.DeleteBefore, run.From, run.To, cmp.Or(run.Source, SourceMessaging),
		named, len(run.Services) == 0 || slices.Contains(run.Services, ""))
	if err != nil {
		return 0, fmt.Errorf("seed deletes of run %s: %w", run.ID, err)
	}
	return tag.RowsAffected(), nil
}

// PolicyHealth is what an operator needs to know about a policy against
// Twilio's purge (its retention window, TWILIO_RETENTION_DAYS).
type PolicyHealth struct {
	Policy
	LastRun        *Run
	WatermarkAge   time.Duration
	OldestUnsaved  time.Time // date of the oldest media not archived (pending or failed); zero if none
	OldestUnsavedN int       // how many such media
}

// PolicyHealth reports a policy's last run, and the ages that tell whether
// Twilio may purge media before they are archived.
func (c *Catalog) PolicyHealth(ctx context.Context, p Policy, now time.Time) (PolicyHealth, error) {
	h := PolicyHealth{Policy: p, WatermarkAge: now.Sub(p.Watermark)}
	last, err := scanRun(c.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM runs
		WHERE policy_name = $1 ORDER BY created_at DESC LIMIT 1`, p.Name))
	switch {
	case err == nil:
		h.LastRun = &last
	case !errors.Is(err, ErrRunNotFound):
		return h, fmt.Errorf("health of policy %s: %w", p.Name, err)
	}
	var oldest *time.Time
	err = c.pool.QueryRow(ctx, `
		SELECT min(coalesce(g.date_sent, g.date_created)), count(*)
		FROM media m JOIN messages g ON g.sid = m.message_sid
		WHERE m.state IN ('pending', 'failed', 'suspect') AND m.account_sid = $1 AND m.source = $4
		  AND ($2 = '' OR g.from_number = $2) AND ($3 = '' OR g.to_number = $3)`,
		p.AccountSID, p.From, p.To, cmp.Or(p.Source, SourceMessaging)).Scan(&oldest, &h.OldestUnsavedN)
	if err != nil {
		return h, fmt.Errorf("health of policy %s: %w", p.Name, err)
	}
	h.OldestUnsaved = deref(oldest)
	return h, nil
}

func nullSample(f float64) *float64 {
	if f == 0 {
		return nil
	}
	return &f
}
