package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// CopyTables copies every row of every Coffer table from src (a read
// transaction: one consistent view) into dst, a SQLite database with the
// same schema and foreign keys off, in one transaction. It is how a store
// that cannot snapshot its files (PostgreSQL) writes a backup: the schema
// is portable by rule (TEXT, BIGINT, BOOLEAN), so rows copy as they are.
func CopyTables(ctx context.Context, src *sql.Tx, dst *sql.DB) error {
	tables, err := sqliteTables(ctx, dst)
	if err != nil {
		return err
	}
	tx, err := dst.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range tables {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+t.name); err != nil {
			return err
		}
		cols := strings.Join(t.cols, ", ")
		rows, err := src.QueryContext(ctx, `SELECT `+cols+` FROM `+t.name)
		if err != nil {
			return fmt.Errorf("copy %s: %w", t.name, err)
		}
		ph := make([]string, len(t.cols))
		for i := range ph {
			ph[i] = fmt.Sprintf("$%d", i+1)
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO `+t.name+` (`+cols+`) VALUES (`+strings.Join(ph, ", ")+`)`)
		if err != nil {
			rows.Close()
			return err
		}
		vals := make([]any, len(t.cols))
		ptrs := make([]any, len(t.cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return err
			}
			if _, err := ins.ExecContext(ctx, vals...); err != nil {
				rows.Close()
				return fmt.Errorf("copy %s: %w", t.name, err)
			}
		}
		ins.Close()
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return tx.Commit()
}

type table struct {
	name string
	cols []string
}

// SQLiteTables lists the tables of a SQLite database (but goose's
// bookkeeping) with their columns, parents before children (foreign keys).
func SQLiteTables(ctx context.Context, db *sql.DB) (names [][]string, err error) {
	ts, err := sqliteTables(ctx, db)
	if err != nil {
		return nil, err
	}
	parents := map[string][]string{}
	for _, t := range ts {
		rows, err := db.QueryContext(ctx, `SELECT "table" FROM pragma_foreign_key_list($1)`, t.name)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return nil, err
			}
			if p != t.name {
				parents[t.name] = append(parents[t.name], p)
			}
		}
		rows.Close()
	}
	done := map[string]bool{}
	var visit func(t table)
	byName := map[string]table{}
	for _, t := range ts {
		byName[t.name] = t
	}
	visit = func(t table) {
		if done[t.name] {
			return
		}
		done[t.name] = true
		for _, p := range parents[t.name] {
			if pt, ok := byName[p]; ok {
				visit(pt)
			}
		}
		names = append(names, append([]string{t.name}, t.cols...))
	}
	for _, t := range ts {
		visit(t)
	}
	return names, nil
}

// sqliteTables lists the tables of a SQLite database and their columns,
// but goose's bookkeeping (each side keeps its own).
func sqliteTables(ctx context.Context, db *sql.DB) ([]table, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT LIKE 'sqlite_%' AND name <> 'goose_db_version' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	var out []table
	for _, n := range names {
		crows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info($1) ORDER BY cid`, n)
		if err != nil {
			return nil, err
		}
		t := table{name: n}
		for crows.Next() {
			var c string
			if err := crows.Scan(&c); err != nil {
				crows.Close()
				return nil, err
			}
			t.cols = append(t.cols, c)
		}
		crows.Close()
		out = append(out, t)
	}
	return out, nil
}
