package main

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/config"
	"github.com/mediasync/mediasync/internal/logging"
	"github.com/mediasync/mediasync/internal/worker"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// The setup README.md documents: an owner role applies migrations with
// `enqueue migrate`; workers and the CLI connect as a role that may only
// read and write rows, with MEDIASYNC_MIGRATE=false, and work. Without
// MEDIASYNC_MIGRATE=false that role's worker refuses to start, saying why,
// and changes nothing.
func TestMigrationsUnderASeparateOwnerRole(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	ctx := t.Context()
	// Roles are cluster-wide: named after this test's own database.
	var dbName string
	require.NoError(t, d.Pool.QueryRow(ctx, `SELECT current_database()`).Scan(&dbName))
	owner, app := "owner_"+dbName, "app_"+dbName
	if len(dbName) > 50 {
		owner, app = "owner_"+dbName[len(dbName)-20:], "app_"+dbName[len(dbName)-20:]
	}
	oid, aid := pgx.Identifier{owner}.Sanitize(), pgx.Identifier{app}.Sanitize()
	_, err := d.Pool.Exec(ctx, fmt.Sprintf(`CREATE ROLE %[1]s LOGIN; CREATE ROLE %[2]s LOGIN;
		ALTER SCHEMA public OWNER TO %[1]s;
		GRANT USAGE ON SCHEMA public TO %[2]s;
		ALTER DEFAULT PRIVILEGES FOR ROLE %[1]s IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %[2]s;
		ALTER DEFAULT PRIVILEGES FOR ROLE %[1]s IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO %[2]s`, oid, aid))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		_, err := d.Pool.Exec(ctx, fmt.Sprintf(`DROP OWNED BY %[2]s; DROP OWNED BY %[1]s; DROP ROLE %[2]s; DROP ROLE %[1]s`, oid, aid))
		if err != nil {
			t.Errorf("drop roles: %v", err)
		}
	})
	as := func(role string) string {
		u, err := url.Parse(d.Env["DATABASE_URL"])
		require.NoError(t, err)
		u.User = url.User(role)
		return u.String()
	}
	ownerURL, appURL := as(owner), as(app)
	noSchema := func() {
		t.Helper()
		var tables int
		require.NoError(t, d.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables))
		require.Zero(t, tables, "nothing was created")
	}

	// The restricted role, told to migrate: a clear refusal, nothing done.
	d.Env["DATABASE_URL"] = appURL
	code, out, errOut := d.cli(t, "audit")
	require.Equal(t, 1, code, out)
	require.Contains(t, errOut, "this database role may not change the schema")
	require.Contains(t, errOut, "MEDIASYNC_MIGRATE=false")
	cfg, err := config.Load(d.getenv, config.Need{TwilioCredentials: true, Archive: true})
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = worker.Run(wctx, cfg, logging.New(d.logs, "json", "info"))
	require.ErrorContains(t, err, "may not change the schema")
	noSchema()

	// Told not to migrate, before the owner has: it says the schema is behind.
	d.Env["MEDIASYNC_MIGRATE"] = "false"
	code, _, errOut = d.cli(t, "audit")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "database schema is at version 0, but this program needs version")
	require.Contains(t, errOut, "run `enqueue migrate`")

	// The owner migrates.
	d.Env["DATABASE_URL"] = ownerURL
	code, out, errOut = d.cli(t, "migrate")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "applied 00001_init.sql\n")
	require.Contains(t, out, "database schema up to date")
	code, out, errOut = d.cli(t, "migrate")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "database schema up to date\n", out, "a second migrate applies nothing")

	// The restricted role runs the worker and the CLI: a run archives, a
	// hold is audited, the log verifies.
	d.Env["DATABASE_URL"] = appURL
	msg, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC),
		Media: []twiliotest.MediaOptions{{Size: 2048}}})
	require.NoError(t, err)
	d.startWorker(t)
	code, out, errOut = d.cli(t, "message", msg.SID, "--wait")
	require.Equal(t, 0, code, "%s\n%s\n%s", out, errOut, d.logs.String())
	d.CheckArchived(t, map[string]string{msg.MediaSIDs[0]: msg.SID}, "archived")
	code, _, errOut = d.cli(t, "--actor", "ops", "hold", "add", "--reason", "case 9", "--to", "+15550100123")
	require.Equal(t, 0, code, errOut)
	code, out, errOut = d.cli(t, "audit", "verify")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "chain intact")
}
