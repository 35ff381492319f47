package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/testenv"
)

// DATABASE_URL's pool_max_conns is read as pgx reads it, in either form,
// not found as a substring of the URL (a database named after it).
func TestPoolConfigMaxConns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, url string
		want      int32
	}{
		{"unset: a connection per task and a few", "postgres://u@db.example/mediasync", 12},
		{"set in the URL", "postgres://u@db.example/mediasync?pool_max_conns=1", 1},
		{"set as key=value", "host=db.example user=u dbname=mediasync pool_max_conns=3", 3},
		{"only the database's name says it", "postgres://u@db.example/pool_max_conns_test", 12},
		{"only a key=value database name says it", "host=db.example user=u dbname=pool_max_conns_test", 12},
	} {
		cfg, err := poolConfig(tc.url, 8)
		require.NoError(t, err, tc.desc)
		require.Equal(t, tc.want, cfg.MaxConns, tc.desc)
	}
	_, err := poolConfig("postgres://u:s3cret@db.example:notaport/x", 8)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
}

// Worker connections run with a statement_timeout and a lock_timeout (the
// defaults, or DATABASE_URL's): a catalog call that meets a lock held by
// someone else fails with a lock timeout, and its task is retried, instead
// of holding its connection forever.
func TestWorkerConnectionsTimeOut(t *testing.T) {
	t.Parallel()
	db := testenv.NewDatabase(t)
	show := func(pool *pgxpool.Pool, name string) string {
		var v string
		require.NoError(t, pool.QueryRow(t.Context(), "SHOW "+name).Scan(&v))
		return v
	}
	open := func(url string) *pgxpool.Pool {
		cfg, err := poolConfig(url, 8)
		require.NoError(t, err)
		pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return pool
	}

	pool := open(db.URL)
	require.Equal(t, catalog.DefaultStatementTimeout, show(pool, "statement_timeout"))
	require.Equal(t, catalog.DefaultLockTimeout, show(pool, "lock_timeout"))
	_, err := catalog.Migrate(t.Context(), pool)
	require.NoError(t, err)

	pool = open(db.URL + "&lock_timeout=200ms&statement_timeout=10s")
	require.Equal(t, "200ms", show(pool, "lock_timeout"), "DATABASE_URL's setting wins")
	require.Equal(t, "10s", show(pool, "statement_timeout"))
	pool = open(db.URL + "&options=-c%20lock_timeout%3D300ms")
	require.Equal(t, "300ms", show(pool, "lock_timeout"), "and so does one in options")

	other, err := pgxpool.New(t.Context(), db.URL)
	require.NoError(t, err)
	t.Cleanup(other.Close)
	tx, err := other.Begin(t.Context())
	require.NoError(t, err)
	defer tx.Rollback(context.WithoutCancel(t.Context()))
	_, err = tx.Exec(t.Context(), `LOCK TABLE holds IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err = catalog.NewCatalog(pool).Holds(ctx, true)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want a Postgres error, got %v", err)
	require.Equal(t, "55P03", pgErr.Code, "lock_not_available")
	require.NoError(t, ctx.Err(), "failed by lock_timeout, not by the test's deadline")
}
