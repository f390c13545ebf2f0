// Package gc is Coffer's online garbage collection: it deletes blobs that
// no asset references any more, and upload sessions nobody finished, while
// the server keeps serving pushes and pulls.
//
// The argument for why a push that reuses a blob can never lose it is in
// docs/gc.md. In short: collection decides from the metadata store alone
// (reference counts, never a walk of the blob store); it marks a blob
// "deleting" in a transaction only if nothing references it and nobody
// leased it for the grace period; it deletes the file only after that mark
// committed, and the row after the file. A writer that relies on an
// existing file leases the row first (and waits out a collection in
// progress), so that mark and lease are serialised by the database.
package gc

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
)

// Report says what a run did (or, dry, would do).
type Report struct {
	DryRun      bool      `json:"dry_run"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	Blobs       int       `json:"blobs"`
	Bytes       int64     `json:"bytes"`
	Uploads     int       `json:"uploads"`
	Unfinished  int       `json:"resumed_deletions"` // blobs a previous run had marked
	GraceCutoff time.Time `json:"grace_cutoff"`
}

// Options configure a Collector.
type Options struct {
	Grace     time.Duration // blobs leased more recently are kept
	UploadTTL time.Duration // upload sessions untouched longer expire
	Batch     int           // blobs per transaction (default 500)
	Logger    *slog.Logger
	// ExpireUploads ends upload sessions untouched since before (the
	// repository manager's); nil skips sessions.
	ExpireUploads func(ctx context.Context, before time.Time) (int, error)
	// Observe receives every report (metrics).
	Observe func(Report)
}

// Collector runs collections.
type Collector struct {
	store meta.Store
	blobs blob.Store
	o     Options
	now   func() time.Time
	last  atomic.Pointer[Report]
}

// Last returns the report of the last collection that was not a dry run.
func (c *Collector) Last() *Report { return c.last.Load() }

// New returns a Collector.
func New(store meta.Store, blobs blob.Store, o Options) *Collector {
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Collector{store: store, blobs: blobs, o: o, now: time.Now}
}

// Run collects once. A dry run lists what would go and changes nothing.
func (c *Collector) Run(ctx context.Context, dry bool) (Report, error) {
	rep := Report{DryRun: dry, Started: c.now()}
	rep.GraceCutoff = rep.Started.Add(-c.o.Grace)
	err := c.run(ctx, dry, &rep)
	rep.Finished = c.now()
	if err == nil {
		c.o.Logger.Info("garbage collection", "dry_run", dry, "blobs", rep.Blobs, "bytes", rep.Bytes,
			"uploads", rep.Uploads, "duration", rep.Finished.Sub(rep.Started))
		if !dry {
			r := rep
			c.last.Store(&r)
		}
		if c.o.Observe != nil {
			c.o.Observe(rep)
		}
	}
	return rep, err
}

func (c *Collector) run(ctx context.Context, dry bool, rep *Report) error {
	if dry {
		after := ""
		for {
			bs, err := c.store.ListGarbage(ctx, rep.GraceCutoff, after, c.o.Batch)
			if err != nil {
				return err
			}
			for _, b := range bs {
				rep.Blobs++
				rep.Bytes += b.Size
			}
			if len(bs) < c.o.Batch {
				return nil
			}
			after = bs[len(bs)-1].Digest
		}
	}
	// A previous run that stopped half-way left blobs marked: finish them.
	for {
		bs, err := c.store.ListDeleting(ctx, c.o.Batch)
		if err != nil {
			return err
		}
		if err := c.remove(ctx, bs, rep); err != nil {
			return err
		}
		rep.Unfinished += len(bs)
		if len(bs) < c.o.Batch {
			break
		}
	}
	if c.o.ExpireUploads != nil {
		n, err := c.o.ExpireUploads(ctx, rep.Started.Add(-c.o.UploadTTL))
		rep.Uploads += n
		if err != nil {
			return err
		}
	}
	// One pass over the blob table in digest order, a chunk per transaction.
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		bs, next, err := c.store.MarkGarbageAfter(ctx, rep.GraceCutoff, after, 4*c.o.Batch)
		if err != nil {
			return err
		}
		if err := c.remove(ctx, bs, rep); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// remove deletes the files of marked blobs, then their rows (one
// transaction per batch).
func (c *Collector) remove(ctx context.Context, bs []*meta.Blob, rep *Report) error {
	var gone []*meta.Blob
	var ferr error
	for _, b := range bs {
		err := c.blobs.Delete(ctx, digest.Digest(b.Digest))
		if err != nil && !errors.Is(err, errs.NotFound) {
			ferr = err // the row stays marked; the next run retries
			break
		}
		gone = append(gone, b)
	}
	if len(gone) > 0 {
		err := c.store.InTx(ctx, func(tx meta.Tx) error {
			for _, b := range gone {
				if err := tx.DeleteBlob(ctx, b.Digest); err != nil && !errors.Is(err, errs.NotFound) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, b := range gone {
			rep.Blobs++
			rep.Bytes += b.Size
		}
	}
	return ferr
}
