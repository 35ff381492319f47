package catalog_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/testenv"
)

// AuditLog holds no connection while its callback runs: on a
// one-connection pool, a callback that reads the catalog (or writes to a
// pipe nobody reads yet) does not wait forever on the pool.
func TestAuditLogHoldsNoConnectionDuringCallback(t *testing.T) {
	t.Parallel()
	db := testenv.NewDatabase(t)
	pool, err := pgxpool.New(t.Context(), db.URL+"&pool_max_conns=1")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = catalog.Migrate(t.Context(), pool)
	require.NoError(t, err)
	c := catalog.NewCatalog(pool)
	for i := range 3 {
		_, err := c.AddHold(t.Context(), catalog.Hold{Reason: "case", From: fmt.Sprintf("+1555010000%d", i), CreatedBy: "test"})
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	n := 0
	for _, err := range c.AuditLog(ctx, time.Time{}) {
		require.NoError(t, err)
		n++
		_, err = c.Holds(ctx, true)
		require.NoError(t, err)
	}
	require.Equal(t, 3, n)
}
