// Package postgres is the scale-out metadata back-end: meta/sqldb over a
// PostgreSQL database through pgx v5 (its database/sql driver), shared by
// every node of an installation.
//
// The SQL is the same as on SQLite (see meta/sqldb); this package supplies
// the connection pool, the error translation (SQLSTATE 23505 unique, 23503
// foreign key) and the PostgreSQL-only coordination helpers (advisory locks,
// LISTEN/NOTIFY) in coord.go. Migrations are applied under an advisory lock
// so that nodes starting together do not race.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/cofferhq/coffer/internal/meta/sqldb"
)

// Options tune the pool.
type Options struct {
	// MaxConns bounds the pool (0: 20).
	MaxConns int
	// Password, when set, overrides the DSN's (it comes from a secret).
	Password string
}

// Open connects to the database named by dsn (a libpq URL or key=value
// string), applies the migrations and returns the store.
func Open(ctx context.Context, dsn string, o Options) (*sqldb.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if o.Password != "" {
		cfg.Password = o.Password
	}
	db := stdlib.OpenDB(*cfg)
	n := o.MaxConns
	if n <= 0 {
		n = 20
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres %s@%s/%s: %w", cfg.User, cfg.Host, cfg.Database, err)
	}
	if err := checkCollation(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres %s/%s: %w", cfg.Host, cfg.Database, err)
	}
	if err := migrateLocked(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres %s/%s: %w", cfg.Host, cfg.Database, err)
	}
	s, err := sqldb.OpenMigrated(db, db, Dialect())
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Dialect is PostgreSQL's sqldb.Dialect.
func Dialect() sqldb.Dialect {
	return sqldb.Dialect{
		Goose:        goose.DialectPostgres,
		IsUnique:     isCode("23505"),
		IsForeignKey: isCode("23503"),
		// pgx prepares and caches statements per connection itself.
		NoStmtCache: true,
		// Serialize read-modify-write of one key across concurrent
		// transactions (SQLite has one writer; PostgreSQL has many).
		LockKey: `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
		// Backups: a logical copy into the SQLite backup format.
		Snapshot: snapshot,
		Load:     load,
	}
}

// migrationLock is the advisory lock key held while migrating.
const migrationLock = 0x636f66666572 // "coffer"

func migrateLocked(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	return sqldb.Migrate(ctx, db, goose.DialectPostgres)
}

func isCode(code string) func(error) bool {
	return func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == code
	}
}

// checkCollation refuses a database whose default collation does not sort
// by bytes: paths, names and tags are listed in byte order with keyset
// pagination (as on SQLite), which a linguistic collation would break.
func checkCollation(ctx context.Context, db *sql.DB) error {
	var coll string
	if err := db.QueryRowContext(ctx, `SELECT datcollate FROM pg_database WHERE datname = current_database()`).Scan(&coll); err != nil {
		return err
	}
	switch coll {
	case "C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic":
		return nil
	}
	return fmt.Errorf("database collation is %q; Coffer needs byte order: create the database with "+
		"CREATE DATABASE <name> TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C.UTF-8' "+
		"(or initdb --locale=C.UTF-8)", coll)
}
