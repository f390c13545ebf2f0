// Package pgtest gives tests their own PostgreSQL database on the server
// named by $COFFER_TEST_PG_DSN: created empty, dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Env names the variable holding the DSN of a PostgreSQL server on which
// tests may create and drop databases.
const Env = "COFFER_TEST_PG_DSN"

// Available reports whether PostgreSQL tests can run.
func Available() bool { return os.Getenv(Env) != "" }

// Require skips the test under -short when $COFFER_TEST_PG_DSN is unset and
// fails it otherwise; it returns the admin DSN.
func Require(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(Env)
	if admin == "" {
		if testing.Short() {
			t.Skip(Env + " is not set (PostgreSQL tests skipped under -short)")
		}
		t.Fatal(Env + " is not set: the PostgreSQL tests need a server where they may create databases, " +
			"e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable (or run with -short)")
	}
	return admin
}

// Database creates an empty database coffer_test_<random> on the server at
// $COFFER_TEST_PG_DSN, drops it when the test ends, and returns its DSN.
func Database(t testing.TB) string {
	t.Helper()
	dsn, drop, err := Create(context.Background(), Require(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("dropping test database: %v", err)
		}
	})
	return dsn
}

// Create creates a fresh database on the server admin names and returns
// its DSN and a function that drops it (closing its connections).
func Create(ctx context.Context, admin string) (string, func() error, error) {
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", Env, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "coffer_test_" + hex.EncodeToString(b)
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`); err != nil {
		return "", nil, fmt.Errorf("creating a test database on %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	drop := func() error {
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		_, err := db.ExecContext(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
		return err
	}
	return WithDatabase(admin, name), drop, nil
}

// WithDatabase returns dsn naming database name instead.
func WithDatabase(dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			u.Path = "/" + name
			return u.String()
		}
	}
	return dsn + " dbname=" + name
}
