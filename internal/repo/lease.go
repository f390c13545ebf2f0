package repo

import (
	"context"
	"errors"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
)

// Blob leases: the writer's half of the garbage-collection protocol (see
// docs/gc.md). A writer that is about to rely on a blob file it did not
// write (its content was already stored: deduplication) first leases the
// blob row, so that collection, which only takes blobs nobody leased for
// the grace period, leaves it alone until the writer's reference is
// committed. A blob already being collected is waited out, then written
// again from the writer's own bytes.

// collectWait bounds how long a writer waits for a collection in progress.
const collectWait = 30 * time.Second

// lease leases d before a commit that may reuse an existing file.
func (m *Manager) lease(ctx context.Context, d digest.Digest, size int64) error {
	deadline := time.Now().Add(collectWait)
	for {
		err := m.store.PutBlob(ctx, d.String(), size)
		if errs.KindOf(err) != errs.Unavailable {
			return err
		}
		if err := m.waitCollected(ctx, d, deadline); err != nil {
			return err
		}
	}
}

// waitCollected waits until a blob row being collected is gone.
func (m *Manager) waitCollected(ctx context.Context, d digest.Digest, deadline time.Time) error {
	for {
		if _, err := m.store.GetBlob(ctx, d.String()); errors.Is(err, errs.NotFound) {
			return nil
		}
		if time.Now().After(deadline) {
			return errs.New(errs.Unavailable, "blob %s is being garbage-collected; retry shortly", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// inTxOwnBytes runs a commit transaction for an asset whose bytes the
// writer has just made durable itself: if collection was deleting an older
// copy of the same blob (its file already gone), the writer waits for the
// row to go and commits again; its own file stands.
func (m *Manager) inTxOwnBytes(ctx context.Context, d string, fn func(tx meta.Tx) error) error {
	deadline := time.Now().Add(collectWait)
	for {
		err := m.store.InTx(ctx, fn)
		if errs.KindOf(err) != errs.Unavailable {
			return err
		}
		if werr := m.waitCollected(ctx, digest.Digest(d), deadline); werr != nil {
			return werr
		}
	}
}
