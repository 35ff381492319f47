package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AdminDatabaseURL is the server tests create their databases on. CI and
// every developer machine run PostgreSQL on loopback with trust auth;
// TEST_DATABASE_URL points elsewhere.
func AdminDatabaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Database is a fresh, empty database of the test's own, dropped at cleanup.
type Database struct {
	Name string
	URL  string // connection URL for this database, for pools or subprocesses
}

// NewDatabase creates an empty database for t (no schema: the caller, or
// the code under test, migrates it).
func NewDatabase(t testing.TB) *Database {
	t.Helper()
	return NewDatabaseOn(t, AdminDatabaseURL())
}

// NewDatabaseOn is NewDatabase on a given server (a test's own, e.g. one it
// restarts), reached through adminURL.
func NewDatabaseOn(t testing.TB, adminURL string) *Database {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatalf("testenv: connect to Postgres at %s: %v (is PostgreSQL running?)", redactURL(adminURL), err)
	}
	defer admin.Close(ctx)

	name := "mediasync_test_" + sanitize(t.Name()) + "_" + randomHex(4)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx := context.WithoutCancel(context.Background())
		c, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatalf("testenv: admin database URL: %v", err)
	}
	u.Path = "/" + name
	return &Database{Name: name, URL: u.String()}
}

// Pool opens a pool on the database, closed at cleanup.
func (d *Database) Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), d.URL)
	if err != nil {
		t.Fatalf("testenv: open pool on %s: %v", d.Name, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Postgres gives t its own empty database and a pool on it. Tests that need
// the schema call catalog.Migrate on it (as the worker does at start).
func Postgres(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return NewDatabase(t).Pool(t)
}

func sanitize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 30 { // identifiers are at most 63 bytes
			break
		}
	}
	return b.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
