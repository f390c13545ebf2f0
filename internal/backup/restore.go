package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/blob"
	blobfs "github.com/cofferhq/coffer/internal/blob/fs"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/meta/sqlite"
)

// RestoreReport describes a restore.
type RestoreReport struct {
	ID       string        `json:"id"`
	DataDir  string        `json:"data_dir"`
	Blobs    int           `json:"blobs"`
	Bytes    int64         `json:"bytes"`
	Duration time.Duration `json:"duration_ns"`
	Verify   VerifyReport  `json:"verify"`
}

// Restore restores snapshot id (the latest when empty) of the backup in
// from into dataDir, which must be empty or absent: the metadata, then every
// blob it references, each verified against its digest as it is copied.
// The result is verified again (sizes) before Restore returns.
func Restore(ctx context.Context, from, id, dataDir string, log *slog.Logger) (RestoreReport, error) {
	if _, err := os.Stat(from); err != nil {
		return RestoreReport{}, errs.New(errs.NotFound, "%s holds no complete backup (no LATEST file)", from)
	}
	d, err := NewDir(from)
	if err != nil {
		return RestoreReport{}, err
	}
	return RestoreFrom(ctx, d, id, dataDir, log)
}

// RestoreFrom is Restore from any destination (a directory or a bucket).
func RestoreFrom(ctx context.Context, from Dest, id, dataDir string, log *slog.Logger) (rep RestoreReport, err error) {
	if log == nil {
		log = slog.Default()
	}
	start := time.Now()
	id, err = snapshotID(ctx, from, id)
	if err != nil {
		return rep, err
	}
	rep.ID, rep.DataDir = id, dataDir
	if ents, err := os.ReadDir(dataDir); err == nil && len(ents) > 0 {
		return rep, errs.New(errs.Exists, "restore needs an empty data directory; %s is not empty", dataDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return rep, err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return rep, err
	}
	defer func() {
		if err != nil { // leave no half-restored directory behind
			os.RemoveAll(filepath.Join(dataDir, "blobs"))
			for _, f := range []string{"coffer.db", "coffer.db-wal", "coffer.db-shm"} {
				os.Remove(filepath.Join(dataDir, f))
			}
		}
	}()
	dbPath := filepath.Join(dataDir, "coffer.db")
	if err := from.Get(ctx, "snapshots/"+id+"/meta.db", dbPath); err != nil {
		return rep, fmt.Errorf("restore the metadata: %w", err)
	}
	store, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return rep, fmt.Errorf("open the restored metadata: %w", err)
	}
	defer store.Close()
	src := from.Blobs()
	dst, err := blobfs.New(filepath.Join(dataDir, "blobs"))
	if err != nil {
		return rep, err
	}
	if rep.Blobs, rep.Bytes, err = restoreBlobs(ctx, store, src, dst); err != nil {
		return rep, err
	}
	if rep.Verify, err = Verify(ctx, store, dst, false); err != nil {
		return rep, err
	}
	if !rep.Verify.OK() {
		return rep, fmt.Errorf("the restored data does not verify: %s", rep.Verify.Summary())
	}
	rep.Duration = time.Since(start)
	log.Info("restore", "id", id, "data_dir", dataDir, "blobs", rep.Blobs, "bytes", rep.Bytes, "duration", rep.Duration)
	return rep, nil
}

// RestoreInto restores snapshot id (the latest when empty) of the backup in
// from into stores other than the embedded default — a PostgreSQL database
// (meta.Loader) and any blob store (an S3 bucket) — which must hold no
// repositories and no users. Every blob is verified against its digest as
// it is copied, and the result is verified again (sizes).
func RestoreInto(ctx context.Context, from, id string, store meta.Store, blobs blob.Store, log *slog.Logger) (RestoreReport, error) {
	d, err := NewDir(from)
	if err != nil {
		return RestoreReport{}, err
	}
	return RestoreIntoFrom(ctx, d, id, store, blobs, log)
}

// RestoreIntoFrom is RestoreInto from any destination.
func RestoreIntoFrom(ctx context.Context, from Dest, id string, store meta.Store, blobs blob.Store, log *slog.Logger) (rep RestoreReport, err error) {
	if log == nil {
		log = slog.Default()
	}
	start := time.Now()
	id, err = snapshotID(ctx, from, id)
	if err != nil {
		return rep, err
	}
	rep.ID = id
	loader, ok := store.(meta.Loader)
	if !ok {
		return rep, errs.New(errs.NotAllowed, "this metadata store cannot load a backup")
	}
	repos, err := store.ListRepos(ctx)
	if err != nil {
		return rep, err
	}
	users, err := store.ListUsers(ctx)
	if err != nil {
		return rep, err
	}
	if len(repos) > 0 || len(users) > 0 {
		return rep, errs.New(errs.Exists, "restore needs an empty database; this one holds %d repositories and %d users", len(repos), len(users))
	}
	src := from.Blobs()
	work, err := os.MkdirTemp("", "coffer-restore-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(work)
	snapPath := filepath.Join(work, "meta.db")
	if err := from.Get(ctx, "snapshots/"+id+"/meta.db", snapPath); err != nil {
		return rep, err
	}
	// Blobs first, metadata last: a restore that fails half-way leaves an
	// empty database (and blobs nothing references, for GC).
	snapDB, err := sqlite.Open(ctx, snapPath)
	if err != nil {
		return rep, fmt.Errorf("open the snapshot: %w", err)
	}
	rep.Blobs, rep.Bytes, err = restoreBlobs(ctx, snapDB, src, blobs)
	snapDB.Close()
	if err != nil {
		return rep, err
	}
	if err := loader.Load(ctx, snapPath); err != nil {
		return rep, fmt.Errorf("restore the metadata: %w", err)
	}
	if rep.Verify, err = Verify(ctx, store, blobs, false); err != nil {
		return rep, err
	}
	if !rep.Verify.OK() {
		return rep, fmt.Errorf("the restored data does not verify: %s", rep.Verify.Summary())
	}
	rep.Duration = time.Since(start)
	log.Info("restore", "id", id, "blobs", rep.Blobs, "bytes", rep.Bytes, "duration", rep.Duration)
	return rep, nil
}

// restoreBlobs copies every blob the snapshot's rows name from the backup
// to dst, each verified against its digest.
func restoreBlobs(ctx context.Context, rows meta.Blobs, src, dst blob.Store) (int, int64, error) {
	var n, bytes atomic.Int64
	err := eachBlob(ctx, rows, func(ctx context.Context, b *meta.Blob) error {
		c, err := copyBlob(ctx, src, dst, digest.Digest(b.Digest), b.Size)
		if errors.Is(err, errs.NotFound) {
			return fmt.Errorf("the backup lacks blob %s that its metadata references", b.Digest)
		}
		if err != nil {
			return err
		}
		n.Add(1)
		bytes.Add(c)
		return nil
	})
	return int(n.Load()), bytes.Load(), err
}

// snapshotID checks that snapshot id (the latest when empty) is complete.
func snapshotID(ctx context.Context, from Dest, id string) (string, error) {
	if id == "" {
		b, err := from.Read(ctx, "LATEST")
		if err != nil {
			return "", errs.New(errs.NotFound, "%s holds no complete backup (no LATEST file)", from)
		}
		id = strings.TrimSpace(string(b))
	}
	if strings.ContainsAny(id, "/\\") || id == "" || id == "." || id == ".." {
		return "", errs.New(errs.Invalid, "%q is not a snapshot id", id)
	}
	if _, err := from.Read(ctx, "snapshots/"+id+"/manifest.json"); err != nil {
		return "", errs.New(errs.NotFound, "backup %s has no complete snapshot %q", from, id)
	}
	return id, nil
}

// VerifyReport lists what Verify found wrong; an empty report is a healthy
// store.
type VerifyReport struct {
	Blobs          int      `json:"blobs"`
	Bytes          int64    `json:"bytes"`
	Deep           bool     `json:"deep"`            // contents hashed, not only sizes checked
	Missing        []string `json:"missing"`         // referenced, but no file in the blob store
	SizeMismatch   []string `json:"size_mismatch"`   // file of another size than recorded
	DigestMismatch []string `json:"digest_mismatch"` // content does not hash to its name
	Unreferenced   []string `json:"unreferenced"`    // files no metadata row knows (reported, not removed)
}

// OK reports whether nothing is wrong (unreferenced files are only noted).
func (r VerifyReport) OK() bool {
	return len(r.Missing) == 0 && len(r.SizeMismatch) == 0 && len(r.DigestMismatch) == 0
}

// Summary is a one-line account of the problems.
func (r VerifyReport) Summary() string {
	if r.OK() {
		return fmt.Sprintf("%d blobs verified, no problems", r.Blobs)
	}
	return fmt.Sprintf("%d blobs checked: %d missing, %d of the wrong size, %d not matching their digest",
		r.Blobs, len(r.Missing), len(r.SizeMismatch), len(r.DigestMismatch))
}

// Verify checks every blob the metadata knows against the blob store: it
// exists, has its recorded size, and (deep) hashes to its digest. Every
// asset references a blob row (a foreign key), so this covers every
// reference. Files the metadata does not know are listed as unreferenced.
// Verify reports; it repairs nothing.
func Verify(ctx context.Context, store meta.Blobs, blobs blob.Store, deep bool) (VerifyReport, error) {
	rep := VerifyReport{Deep: deep}
	var mu sync.Mutex
	known := map[digest.Digest]bool{}
	add := func(list *[]string, d string) {
		mu.Lock()
		*list = append(*list, d)
		mu.Unlock()
	}
	err := eachBlob(ctx, store, func(ctx context.Context, b *meta.Blob) error {
		d := digest.Digest(b.Digest)
		mu.Lock()
		rep.Blobs++
		rep.Bytes += b.Size
		known[d] = true
		mu.Unlock()
		info, err := blobs.Stat(ctx, d)
		if errors.Is(err, errs.NotFound) {
			add(&rep.Missing, b.Digest)
			return nil
		} else if err != nil {
			return err
		}
		if info.Size != b.Size {
			add(&rep.SizeMismatch, b.Digest)
			return nil
		}
		if !deep {
			return nil
		}
		r, err := blobs.Open(ctx, d)
		if err != nil {
			return err
		}
		defer r.Close()
		v := d.Algorithm().Digester()
		if _, err := io.Copy(v.Hash(), r); err != nil {
			return fmt.Errorf("read blob %s: %w", d, err)
		}
		if v.Digest() != d {
			add(&rep.DigestMismatch, b.Digest)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	// Rows being collected are skipped above; their files may linger
	// briefly and are not "unreferenced".
	err = blobs.Walk(ctx, func(i blob.Info) error {
		if !known[i.Digest] {
			if b, err := store.GetBlob(ctx, i.Digest.String()); err == nil && b.State == "deleting" {
				return nil
			}
			rep.Unreferenced = append(rep.Unreferenced, i.Digest.String())
		}
		return nil
	})
	return rep, err
}

// copyFile copies a file durably.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
