package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PolicyGauge is what a scrape reports of one policy.
type PolicyGauge struct {
	Name           string
	Watermark      time.Time
	OldestUnsaved  time.Time // zero if none
	OldestUnsavedN int
}

// RunCount is how many runs of a kind are in a state.
type RunCount struct {
	Kind  string
	State RunState
	N     int
}

// Gauges is what the worker's /metrics reports from Postgres.
type Gauges struct {
	Policies []PolicyGauge
	Runs     []RunCount
}

// Gauges reads, in one round trip whatever the number of policies, each
// policy's watermark and oldest unarchived media (as PolicyHealth does one
// at a time) and the account's runs by kind and state, for a scrape.
func (c *Catalog) Gauges(ctx context.Context, account string) (Gauges, error) {
	var g Gauges
	b := &pgx.Batch{}
	b.Queue(`
		SELECT p.name, p.watermark, o.oldest, o.n
		FROM policies p
		CROSS JOIN LATERAL (
			SELECT min(coalesce(g.date_sent, g.date_created)) AS oldest, count(*) AS n
			FROM media m JOIN messages g ON g.sid = m.message_sid
			WHERE m.state IN ('pending', 'failed', 'suspect') AND m.account_sid = p.account_sid AND m.source = p.source
			  AND (coalesce(p.from_number, '') = '' OR g.from_number = p.from_number)
			  AND (coalesce(p.to_number, '') = '' OR g.to_number = p.to_number)) o
		WHERE ($1 = '' OR p.account_sid = $1)
		  AND p.kind <> 'verify' -- a verify policy archives nothing: its watermark never moves
		ORDER BY p.name`, account).Query(func(rows pgx.Rows) error {
		var err error
		g.Policies, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PolicyGauge, error) {
			var p PolicyGauge
			var oldest *time.Time
			err := r.Scan(&p.Name, &p.Watermark, &oldest, &p.OldestUnsavedN)
			p.OldestUnsaved = deref(oldest)
			return p, err
		})
		return err
	})
	b.Queue(`SELECT kind, state, count(*) FROM runs WHERE $1 = '' OR account_sid = $1
		GROUP BY kind, state ORDER BY kind, state`, account).Query(func(rows pgx.Rows) error {
		var err error
		g.Runs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunCount, error) {
			var rc RunCount
			return rc, r.Scan(&rc.Kind, &rc.State, &rc.N)
		})
		return err
	})
	if err := c.pool.SendBatch(ctx, b).Close(); err != nil {
		return Gauges{}, fmt.Errorf("metrics gauges: %w", err)
	}
	return g, nil
}
