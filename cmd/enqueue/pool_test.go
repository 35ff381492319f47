package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/testenv"
)

// The CLI's connections have the worker's statement and lock timeouts: a
// command that meets a lock held elsewhere (a migration, a stuck session)
// fails with the reason instead of hanging the operator's terminal.
func TestCommandsConnectWithTimeouts(t *testing.T) {
	t.Parallel()
	db := testenv.NewDatabase(t)
	env := map[string]string{"DATABASE_URL": db.URL, "TWILIO_ACCOUNT_SID": "AC" + strings.Repeat("0", 32), "TWILIO_AUTH_TOKEN": "unused"}
	a := &app{getenv: func(k string) string { return env[k] }}
	_, pool, err := a.openDatabase(t.Context())
	require.NoError(t, err)
	defer pool.Close()
	for name, want := range map[string]string{
		"statement_timeout": catalog.DefaultStatementTimeout,
		"lock_timeout":      catalog.DefaultLockTimeout,
		"application_name":  "mediasync-enqueue",
	} {
		var got string
		require.NoError(t, pool.QueryRow(t.Context(), "SHOW "+name).Scan(&got))
		require.Equal(t, want, got, name)
	}
}
