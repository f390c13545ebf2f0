// Package sqlite is the embedded metadata back-end: meta/sqldb over a SQLite
// file in WAL mode, with one writer connection (SQLite serialises writers
// anyway; one connection turns lock contention into a Go queue) and a pool
// of readers.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"runtime"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cofferhq/coffer/internal/meta/sqldb"
)

// Open opens (creating if needed) the SQLite database at path and applies
// the migrations.
func Open(ctx context.Context, path string) (*sqldb.DB, error) {
	pragmas := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"busy_timeout(10000)",
		"foreign_keys(ON)",
		// FULL: a commit acknowledged to a client survives power loss, not
		// just a process crash. Metadata commits are small.
		"synchronous(FULL)",
	} {
		pragmas.Add("_pragma", p)
	}
	dsn := "file:" + path + "?" + pragmas.Encode()
	write, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	read, err := sql.Open("sqlite", dsn)
	if err != nil {
		write.Close()
		return nil, err
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	read.SetConnMaxLifetime(0)
	db, err := sqldb.Open(ctx, read, write, sqldb.Dialect{
		Goose:        goose.DialectSQLite3,
		IsUnique:     isCode(sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY),
		IsForeignKey: isCode(sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY),
		Snapshot:     vacuumInto,
		Lax:          lax,
	})
	if err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	return db, nil
}

func isCode(codes ...int) func(error) bool {
	return func(err error) bool {
		var se *sqlite.Error
		if !errors.As(err, &se) {
			return false
		}
		for _, c := range codes {
			if se.Code() == c {
				return true
			}
		}
		return false
	}
}

// vacuumInto writes a consistent, compacted copy of the database: one read
// transaction, so writers go on meanwhile (WAL).
func vacuumInto(ctx context.Context, db *sql.DB, path string) error {
	if _, err := db.ExecContext(ctx, `VACUUM INTO $1`, path); err != nil {
		return fmt.Errorf("sqlite snapshot to %s: %w", path, err)
	}
	return nil
}

// lax runs one statement on the (single) writer connection with
// synchronous=NORMAL: in WAL mode the commit is not fsynced, the next FULL
// commit fsyncs it along with its own. The connection goes back to FULL
// before it is released, or is discarded.
func lax(ctx context.Context, db *sql.DB, query string, args ...any) (sql.Result, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous=NORMAL`); err != nil {
		return nil, err
	}
	res, err := conn.ExecContext(ctx, query, args...)
	if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous=FULL`); rerr != nil {
		// Never hand a lax connection back to the pool.
		conn.Raw(func(any) error { return driver.ErrBadConn })
		if err == nil {
			err = rerr
		}
	}
	return res, err
}
