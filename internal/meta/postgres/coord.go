package postgres

import (
	"context"
	"database/sql"
	"errors"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Coordination between the nodes sharing a database: change notifications
// (LISTEN/NOTIFY on one channel) and jobs that run on one node at a time
// (session advisory locks, released by PostgreSQL when the node's
// connection ends, so a node that dies gives its jobs up).

// Channel is the LISTEN/NOTIFY channel of change notifications.
const Channel = "coffer_changes"

// Notify sends payload to every node listening (this one included).
func Notify(ctx context.Context, db *sql.DB, payload string) error {
	_, err := db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, Channel, payload)
	return err
}

// Listen receives the channel's notifications on a dedicated connection
// until ctx ends, calling onMessage for each. After a lost connection it
// reconnects and calls onGap (notifications sent meanwhile are lost), and
// it calls onGap once first, when listening starts.
func Listen(ctx context.Context, dsn, password string, log *slog.Logger, onMessage func(string), onGap func()) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := listenOnce(ctx, dsn, password, onMessage, func() { backoff = 100 * time.Millisecond; onGap() })
		if ctx.Err() != nil {
			return
		}
		log.Warn("change notifications interrupted; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func listenOnce(ctx context.Context, dsn, password string, onMessage func(string), listening func()) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return err
	}
	if password != "" {
		cfg.Password = password
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+Channel); err != nil {
		return err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		onMessage(n.Payload)
	}
}

// LockKey turns a job name into an advisory lock key.
func LockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("coffer job " + name))
	return int64(h.Sum64())
}

// ErrBusy says another node holds the job's lock.
var ErrBusy = errors.New("another node is running this job")

// Exclusive runs fn while holding the session advisory lock of name on a
// connection of its own, or returns ErrBusy at once when another node
// holds it. If this node dies, PostgreSQL ends the session and the lock is
// free for the next node that tries. fn's context is cancelled when the
// lock's connection stops answering (the lock may be lost): fn must stop.
func Exclusive(ctx context.Context, db *sql.DB, name string, fn func(ctx context.Context) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	key := LockKey(name)
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		return err
	}
	if !got {
		return ErrBusy
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-fctx.Done():
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(fctx, 5*time.Second)
			err := conn.PingContext(pctx)
			pcancel()
			if err != nil && fctx.Err() == nil {
				cancel()
				return
			}
		}
	}()
	err = fn(fctx)
	cancel()
	<-done
	conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key)
	return err
}
