package catalog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/mediasync/mediasync/migrations"
)

// Migrate brings the database schema up to date. It holds a Postgres
// advisory lock while it works, so several workers starting at once apply
// each migration exactly once; it returns the names of those it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == insufficientPrivilege {
		// Each migration runs in its own transaction: nothing was half done.
		return nil, fmt.Errorf("migrate: this database role may not change the schema (%s): run `enqueue migrate` as the role that owns it, and start workers with MEDIASYNC_MIGRATE=false", pgErr.Message)
	}
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	applied := make([]string, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Path)
	}
	return applied, nil
}

// insufficientPrivilege is Postgres's SQLSTATE for "permission denied".
const insufficientPrivilege = "42501"

// SchemaBehindError is a database whose schema is older than this program's
// migrations, found by CheckSchema.
type SchemaBehindError struct {
	Current, Want int64 // migration versions; Current 0: no schema at all
}

func (e *SchemaBehindError) Error() string {
	return fmt.Sprintf("database schema is at version %d, but this program needs version %d: run `enqueue migrate` as the role that owns the schema (MEDIASYNC_MIGRATE=false is set, so this program does not migrate)", e.Current, e.Want)
}

// CheckSchema returns a *SchemaBehindError unless the database has every
// migration this program carries. It only reads, so a role without rights
// to change the schema can run it: workers started with
// MEDIASYNC_MIGRATE=false call it instead of Migrate.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool) error {
	want, err := latestMigration()
	if err != nil {
		return err
	}
	var current int64
	var versioned bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('goose_db_version') IS NOT NULL`).Scan(&versioned); err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	if versioned {
		err := pool.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&current)
		if err != nil {
			return fmt.Errorf("check schema: %w", err)
		}
	}
	if current < want {
		return &SchemaBehindError{Current: current, Want: want}
	}
	return nil
}

// latestMigration is the version of the newest migration in migrations.FS:
// the number its file name begins with, as goose reads it.
func latestMigration() (int64, error) {
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return 0, fmt.Errorf("check schema: %w", err)
	}
	var latest int64
	for _, name := range names {
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("check schema: migration %q has no version number", name)
		}
		latest = max(latest, v)
	}
	return latest, nil
}
