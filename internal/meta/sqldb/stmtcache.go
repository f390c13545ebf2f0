package sqldb

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache prepares each query text once per pool and reuses it: parsing
// SQL is most of the cost of a point lookup in SQLite. Queries built at run
// time (search filters) beyond maxCached distinct texts are not cached.
type stmtCache struct {
	db     *sql.DB
	mu     sync.RWMutex
	m      map[string]*sql.Stmt
	wanted map[string]bool
}

const maxCached = 256

var _ execer = (*stmtCache)(nil)

func newStmtCache(db *sql.DB) *stmtCache { return &stmtCache{db: db, m: map[string]*sql.Stmt{}} }

func (c *stmtCache) stmt(ctx context.Context, query string) *sql.Stmt {
	c.mu.RLock()
	st, ok := c.m[query]
	full := len(c.m) >= maxCached
	c.mu.RUnlock()
	if ok {
		return st
	}
	if full {
		return nil
	}
	// Prepare without holding the lock: preparing needs a connection, and
	// a transaction holding the pool's connection may be asking (peek).
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil // the unprepared call reports the error
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok {
		st.Close()
		return prev
	}
	c.m[query] = st
	return st
}

// peek returns the statement if it is already prepared.
func (c *stmtCache) peek(query string) *sql.Stmt {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[query]
}

// want records a query to prepare later, when the pool's connection is
// free (it cannot be prepared while a transaction holds it).
func (c *stmtCache) want(query string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wanted == nil {
		c.wanted = map[string]bool{}
	}
	if len(c.wanted) < maxCached {
		c.wanted[query] = true
	}
}

// prepareWanted prepares what transactions asked for.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	c.mu.Lock()
	w := c.wanted
	c.wanted = nil
	c.mu.Unlock()
	for q := range w {
		c.stmt(ctx, q)
	}
}

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.db.ExecContext(ctx, query, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.db.QueryContext(ctx, query, args...)
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.db.QueryRowContext(ctx, query, args...)
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = map[string]*sql.Stmt{}
}

// txExec runs a transaction's statements through the pool's prepared
// statements (a write transaction runs on the pool's one connection, where
// they are already prepared), so statements inside transactions are not
// parsed again either.
type txExec struct {
	tx    *sql.Tx
	cache *stmtCache
}

var _ execer = txExec{}

// Inside a transaction a statement is used only if already prepared (the
// transaction holds the pool's connection, so preparing would wait for
// itself); otherwise it runs unprepared and is prepared after the commit.

func (t txExec) prepared(query string) *sql.Stmt {
	st := t.cache.peek(query)
	if st == nil {
		t.cache.want(query)
	}
	return st
}

func (t txExec) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.prepared(query); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t txExec) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.prepared(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t txExec) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.prepared(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}
