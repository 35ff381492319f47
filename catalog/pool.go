package catalog

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Statement and lock timeouts of every mediasync connection, unless
// DATABASE_URL sets them: no statement waits forever on a lock or a stuck
// query, so a task, a loop or a command fails (and a task is retried)
// instead of holding its connection. Generous enough for the largest
// migration and export selection.
const (
	DefaultStatementTimeout = "5min"
	DefaultLockTimeout      = "30s"
)

// PoolConfig parses DATABASE_URL (URL or key=value form) for a pool of
// the catalog's connections: maxConns of them unless the URL sets
// pool_max_conns (0 keeps pgx's default), the default timeouts unless it
// sets them, as parameters or in options=-c…, and application as the
// application_name Postgres shows. Errors never repeat the URL: it may
// hold a password.
func PoolConfig(databaseURL string, maxConns int32, application string) (*pgxpool.Config, error) {
	pcfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, errors.New("DATABASE_URL: cannot parse")
	}
	// pgxpool removes its own settings from what it parsed; pgconn keeps
	// every setting it does not know, the pool's included.
	given, err := pgconn.ParseConfig(databaseURL)
	if err != nil {
		return nil, errors.New("DATABASE_URL: cannot parse")
	}
	if _, ok := given.RuntimeParams["pool_max_conns"]; !ok && maxConns > 0 {
		pcfg.MaxConns = maxConns
	}
	params := pcfg.ConnConfig.RuntimeParams
	for name, def := range map[string]string{"statement_timeout": DefaultStatementTimeout, "lock_timeout": DefaultLockTimeout} {
		if _, ok := params[name]; !ok && !strings.Contains(params["options"], name) {
			params[name] = def
		}
	}
	params["application_name"] = application
	return pcfg, nil
}
