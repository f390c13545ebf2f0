// Package backup takes consistent backups of a Coffer instance while it
// serves, restores them into an empty data directory, and verifies a
// store's blobs against their digests and its references against the blob
// store.
//
// A backup directory holds any number of snapshots and one
// content-addressed blob tree they share, so that a blob is copied once,
// by the first backup that sees it (incremental):
//
//	DIR/blobs/sha256/ab/<hex>         the blobs (the filesystem blob layout)
//	DIR/snapshots/<id>/meta.db        the metadata, a consistent snapshot
//	DIR/snapshots/<id>/manifest.json  what the snapshot holds (Report)
//	DIR/LATEST                        the id of the newest complete snapshot
//
// Consistency: the metadata snapshot is one read transaction (SQLite's
// VACUUM INTO), taken after the backup has put a hold on garbage
// collection (meta.GCHoldPrefix). Every blob the snapshot references was
// live when it was taken, and no blob is marked as garbage while the hold
// lasts, so every one of them is still there when the backup copies it;
// see docs/backup.md.
package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/meta/sqlite"
)

// Source is what a backup reads: the live stores of an instance.
type Source struct {
	Store meta.Store
	Blobs blob.Store
	Log   *slog.Logger
}

// Report describes one backup (also written as the snapshot's manifest).
type Report struct {
	ID          string    `json:"id"`
	Dir         string    `json:"dir"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	Blobs       int       `json:"blobs"`        // blobs the snapshot references
	Bytes       int64     `json:"bytes"`        // their total size
	Copied      int       `json:"copied"`       // blobs copied by this backup
	CopiedBytes int64     `json:"copied_bytes"` // bytes copied by this backup
}

// Tunables (variables so that tests can shorten them).
var (
	holdFor     = 10 * time.Minute // a hold's lifetime if the backup dies
	holdRefresh = time.Minute
	workers     = 4
)

// Run backs src up into the directory dir (created if needed).
func Run(ctx context.Context, src Source, dir string) (Report, error) {
	d, err := NewDir(dir)
	if err != nil {
		return Report{}, err
	}
	return RunTo(ctx, src, d)
}

// RunTo backs src up into dest. The snapshot becomes visible once its
// manifest is written, after its metadata and every blob it references.
func RunTo(ctx context.Context, src Source, dest Dest) (rep Report, err error) {
	log := src.Log
	if log == nil {
		log = slog.Default()
	}
	snap, ok := src.Store.(meta.Snapshotter)
	if !ok {
		return rep, errs.New(errs.NotAllowed, "this metadata store cannot take a snapshot")
	}
	rep = Report{ID: time.Now().UTC().Format("20060102T150405Z") + "-" + randomHex(3), Started: time.Now().UTC(), Dir: dest.String()}
	work, err := os.MkdirTemp("", "coffer-backup-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(work)

	// Hold garbage collection first, then snapshot: see the package doc.
	stopHold, err := hold(ctx, src.Store, rep.ID, log)
	if err != nil {
		return rep, err
	}
	defer stopHold()
	dbPath := filepath.Join(work, "meta.db")
	if err := snap.Snapshot(ctx, dbPath); err != nil {
		return rep, err
	}
	snapDB, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return rep, fmt.Errorf("open the snapshot: %w", err)
	}
	var missing []string
	var mu sync.Mutex
	var copied, copiedBytes atomic.Int64
	err = eachBlob(ctx, snapDB, func(ctx context.Context, b *meta.Blob) error {
		mu.Lock()
		rep.Blobs++
		rep.Bytes += b.Size
		mu.Unlock()
		n, err := copyBlob(ctx, src.Blobs, dest.Blobs(), digest.Digest(b.Digest), b.Size)
		switch {
		case errors.Is(err, errs.NotFound):
			mu.Lock()
			missing = append(missing, b.Digest)
			mu.Unlock()
			return nil
		case err != nil:
			return err
		}
		if n > 0 {
			copied.Add(1)
			copiedBytes.Add(n)
		}
		return nil
	})
	if cerr := snapDB.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rep, err
	}
	if len(missing) > 0 {
		return rep, fmt.Errorf("backup incomplete: %d blobs the metadata references are missing from the blob store (first: %s); run `coffer verify`",
			len(missing), missing[0])
	}
	rep.Copied, rep.CopiedBytes = int(copied.Load()), copiedBytes.Load()
	rep.Finished = time.Now().UTC()
	if err := dest.Put(ctx, "snapshots/"+rep.ID+"/meta.db", dbPath); err != nil {
		return rep, err
	}
	man := filepath.Join(work, "manifest.json")
	if err := writeJSON(man, rep); err != nil {
		return rep, err
	}
	if err := dest.Put(ctx, "snapshots/"+rep.ID+"/manifest.json", man); err != nil {
		return rep, err
	}
	latest := filepath.Join(work, "LATEST")
	if err := writeFileSync(latest, []byte(rep.ID+"\n")); err != nil {
		return rep, err
	}
	if err := dest.Put(ctx, "LATEST", latest); err != nil {
		return rep, err
	}
	log.Info("backup", "id", rep.ID, "to", dest.String(), "blobs", rep.Blobs, "bytes", rep.Bytes,
		"copied", rep.Copied, "copied_bytes", rep.CopiedBytes, "duration", rep.Finished.Sub(rep.Started))
	return rep, nil
}

// hold puts a garbage-collection hold in the store and refreshes it until
// the returned function is called (which removes it).
func hold(ctx context.Context, store meta.Store, id string, log *slog.Logger) (func(), error) {
	key := meta.GCHoldPrefix + id
	if err := store.SetSetting(ctx, key, meta.HoldValue(time.Now().Add(holdFor))); err != nil {
		return nil, fmt.Errorf("hold garbage collection: %w", err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(holdRefresh)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := store.SetSetting(context.WithoutCancel(ctx), key, meta.HoldValue(time.Now().Add(holdFor))); err != nil {
					log.Warn("backup: refreshing the garbage-collection hold", "err", err)
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		if err := store.DeleteSetting(context.WithoutCancel(ctx), key); err != nil {
			log.Warn("backup: releasing the garbage-collection hold (it expires by itself)", "err", err)
		}
	}, nil
}

// eachBlob calls fn, from several goroutines, for every live blob row.
func eachBlob(ctx context.Context, store meta.Blobs, fn func(context.Context, *meta.Blob) error) error {
	g, ctx := errgroup.WithContext(ctx)
	ch := make(chan *meta.Blob)
	for range workers {
		g.Go(func() error {
			for b := range ch {
				if err := fn(ctx, b); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(ch)
		after := ""
		for {
			bs, err := store.ListBlobs(ctx, after, 1000)
			if err != nil {
				return err
			}
			for _, b := range bs {
				if b.State == "deleting" {
					continue // being collected: nothing references it
				}
				select {
				case ch <- b:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if len(bs) < 1000 {
				return nil
			}
			after = bs[len(bs)-1].Digest
		}
	})
	return g.Wait()
}

// copyBlob copies d from src to dst unless dst has it already, verifying
// the digest on the way. It returns the bytes copied (0 when skipped).
func copyBlob(ctx context.Context, src, dst blob.Store, d digest.Digest, size int64) (int64, error) {
	if info, err := dst.Stat(ctx, d); err == nil && info.Size == size {
		return 0, nil
	}
	r, err := src.Open(ctx, d)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	w, err := dst.Create(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Cancel(ctx)
		return 0, fmt.Errorf("copy blob %s: %w", d, err)
	}
	info, err := w.Commit(ctx, d)
	if err != nil {
		return 0, fmt.Errorf("copy blob %s: %w", d, err)
	}
	return info.Size, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileSync(path, append(b, '\n'))
}

// writeFileSync writes a small file durably and atomically.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Snapshots lists the complete snapshots in a backup directory, oldest first.
func Snapshots(dir string) ([]Report, error) {
	d, err := NewDir(dir)
	if err != nil {
		return nil, err
	}
	return SnapshotsIn(context.Background(), d)
}

// SnapshotsIn lists the complete snapshots of a destination, oldest first.
func SnapshotsIn(ctx context.Context, dest Dest) ([]Report, error) {
	names, err := dest.List(ctx, "snapshots/")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errs.New(errs.NotFound, "%s holds no Coffer backup", dest)
	}
	sort.Strings(names)
	var out []Report
	for _, n := range names {
		b, err := dest.Read(ctx, "snapshots/"+n+"/manifest.json")
		if err != nil {
			continue // not complete
		}
		var r Report
		if json.Unmarshal(b, &r) == nil && r.ID == n {
			out = append(out, r)
		}
	}
	return out, nil
}
