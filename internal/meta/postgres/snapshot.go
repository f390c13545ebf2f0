package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cofferhq/coffer/internal/meta/sqldb"
	"github.com/cofferhq/coffer/internal/meta/sqlite"
)

// snapshot writes a consistent logical copy of the database into a new
// SQLite file at path (the backup format of every store): the schema comes
// from the same migrations, the rows from one REPEATABLE READ read-only
// transaction, so writers go on meanwhile.
func snapshot(ctx context.Context, db *sql.DB, path string) error {
	schema, err := sqlite.Open(ctx, path)
	if err != nil {
		return fmt.Errorf("postgres snapshot: %w", err)
	}
	schema.Close()
	dst, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(OFF)&_pragma=synchronous(FULL)")
	if err != nil {
		return err
	}
	defer dst.Close()
	dst.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := sqldb.CopyTables(ctx, tx, dst); err != nil {
		return fmt.Errorf("postgres snapshot: %w", err)
	}
	return nil
}
