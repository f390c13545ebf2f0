package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/cofferhq/coffer/internal/meta/sqldb"
)

// load replaces the database's rows with those of a SQLite backup file (the
// format snapshot writes), in one transaction: tables emptied children
// first, filled parents first. SQLite keeps booleans as integers; the
// PostgreSQL column types say which to convert.
func load(ctx context.Context, db *sql.DB, path string) error {
	src, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer src.Close()
	tables, err := sqldb.SQLiteTables(ctx, src)
	if err != nil {
		return fmt.Errorf("read the backup %s: %w", path, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for i := len(tables) - 1; i >= 0; i-- {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+tables[i][0]); err != nil {
			return fmt.Errorf("empty %s: %w", tables[i][0], err)
		}
	}
	for _, t := range tables {
		name, cols := t[0], t[1:]
		isBool := map[int]bool{}
		trows, err := tx.QueryContext(ctx, `SELECT column_name, data_type FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1`, name)
		if err != nil {
			return err
		}
		types := map[string]string{}
		for trows.Next() {
			var c, ty string
			if err := trows.Scan(&c, &ty); err != nil {
				trows.Close()
				return err
			}
			types[c] = ty
		}
		trows.Close()
		ph := make([]string, len(cols))
		for i, c := range cols {
			ph[i] = fmt.Sprintf("$%d", i+1)
			isBool[i] = types[c] == "boolean"
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO `+name+` (`+strings.Join(cols, ", ")+`) VALUES (`+strings.Join(ph, ", ")+`)`)
		if err != nil {
			return fmt.Errorf("load %s: %w", name, err)
		}
		rows, err := src.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+name)
		if err != nil {
			ins.Close()
			return err
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				ins.Close()
				return err
			}
			for i := range vals {
				if n, ok := vals[i].(int64); ok && isBool[i] {
					vals[i] = n != 0
				}
			}
			if _, err := ins.ExecContext(ctx, vals...); err != nil {
				rows.Close()
				ins.Close()
				return fmt.Errorf("load %s: %w", name, err)
			}
		}
		rows.Close()
		ins.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return tx.Commit()
}
