package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/meta/postgres"
)

// Scale-out coordination, active when the metadata store is PostgreSQL:
// nodes tell each other of changes (LISTEN/NOTIFY) so that cached
// generated metadata is dropped everywhere, and the scheduled jobs
// (garbage collection, upload expiry, replication, retention) run on one
// node at a time, the one holding an advisory lock.

// ElectionInterval is how often a node that does not run the scheduled
// jobs checks whether the node that did is gone.
var ElectionInterval = 2 * time.Second

func (a *App) pgPool() *sql.DB {
	if a.Config.Storage.Database.Postgres == nil {
		return nil
	}
	if p, ok := a.Store.(interface{ Pool() *sql.DB }); ok {
		return p.Pool()
	}
	return nil
}

// startCoordination wires change notifications; it stops with ctx.
func (a *App) startCoordination(ctx context.Context, getenv func(string) string) error {
	pool := a.pgPool()
	if pool == nil {
		return nil
	}
	b := make([]byte, 8)
	rand.Read(b)
	a.node = hex.EncodeToString(b)
	pg := a.Config.Storage.Database.Postgres
	dsn := pg.DSN
	if pg.DSNEnv != "" {
		dsn = getenv(pg.DSNEnv)
	}
	pw, err := secret(getenv, pg.PasswordEnv, pg.PasswordFile)
	if err != nil {
		return err
	}
	a.Repos.SetChangeNotifier(func(repoID, name string, whole bool) {
		kind := "name"
		if whole {
			kind = "repo"
		}
		nctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := postgres.Notify(nctx, pool, strings.Join([]string{a.node, kind, repoID, name}, "\n")); err != nil {
			// The others may serve cached metadata until their next change.
			a.Log.Warn("change notification not sent", "err", err)
		}
	})
	go postgres.Listen(ctx, dsn, pw, a.Log, func(payload string) {
		f := strings.SplitN(payload, "\n", 4)
		if len(f) != 4 || f[0] == a.node {
			return
		}
		a.Repos.Invalidate(f[2], f[3], f[1] == "repo")
	}, a.Repos.InvalidateAll)
	return nil
}

// jobs runs every scheduled job until ctx ends: housekeeping (GC, upload
// expiry), replication's loops and retention.
func (a *App) jobs(ctx context.Context) {
	var wg sync.WaitGroup
	run := func(fn func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); fn(ctx) }()
	}
	run(a.housekeeping)
	if a.Replicator != nil {
		run(a.Replicator.Run)
	}
	run(a.retentionSchedule)
	wg.Wait()
}

// schedule runs the scheduled jobs: here, or (PostgreSQL) on whichever node
// holds the scheduler lock, taking over when that node goes away.
func (a *App) schedule(ctx context.Context) {
	pool := a.pgPool()
	if pool == nil {
		a.jobs(ctx)
		return
	}
	for ctx.Err() == nil {
		err := postgres.Exclusive(ctx, pool, "scheduler", func(ctx context.Context) error {
			a.Log.Info("this node runs the scheduled jobs", "node", a.node)
			a.jobs(ctx)
			return ctx.Err()
		})
		if err != nil && !errors.Is(err, postgres.ErrBusy) && ctx.Err() == nil {
			a.Log.Warn("scheduler lock", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(ElectionInterval):
		}
	}
}
