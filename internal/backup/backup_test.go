package backup_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/app"
	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/backup"
	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/gc"
	"github.com/cofferhq/coffer/internal/meta"
)

const repos = `
repositories:
  - {key: files, format: raw, kind: local, tier: dev}
`

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// content is deterministic per (writer, n) and shares a pool of bodies, so
// that many files deduplicate to the same blobs.
func content(w, n int) string {
	if n%3 == 0 {
		return fmt.Sprintf("shared body %d\n", n%7)
	}
	return strings.Repeat(fmt.Sprintf("writer %d file %d\n", w, n), 50+n%200)
}

var quiet = slog.New(slog.DiscardHandler)

// embedded returns an environment on the embedded default (SQLite and
// files), the back-ends restore writes; backups of a PostgreSQL store are
// refused (docs/backup.md), which the last test checks.
func embedded(t *testing.T) *apptest.Env {
	if m, b := apptest.Backends(); m != "sqlite" || b != "fs" {
		t.Skipf("restore targets the embedded default (SQLite and files), not %s+%s (docs/backup.md)", m, b)
	}
	return apptest.New(t, repos)
}

func fsRoot(e *apptest.Env) string { return e.App.Blobs.(interface{ Root() string }).Root() }

func source(e *apptest.Env) backup.Source {
	return backup.Source{Store: e.App.Store, Blobs: e.App.Blobs, Log: quiet}
}

// A backup taken while files are uploaded, deleted and garbage-collected
// restores into an instance that serves every file acknowledged before the
// backup began, and every file it holds with its recorded digest.
func TestBackupUnderLoadRestoresEverything(t *testing.T) {
	e := embedded(t)
	for n := range 300 { // a base that the backup must hold
		e.Put("files", fmt.Sprintf("base/%d.txt", n), content(99, n))
	}

	var (
		mu    sync.Mutex
		acked = map[string]string{}          // path → sha256 of what was acknowledged
		ever  = map[string]map[string]bool{} // path → every sha256 acknowledged
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		puts  atomic.Int64
	)
	for n := range 300 {
		acked[fmt.Sprintf("base/%d.txt", n)] = sum(content(99, n))
	}
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("load/%d/%d.txt", w, n%40)
				body := content(w, n)
				resp, _ := e.Do(http.MethodPut, "/repository/files/"+p, strings.NewReader(body))
				if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
					puts.Add(1)
					mu.Lock()
					acked[p] = sum(body)
					if ever[p] == nil {
						ever[p] = map[string]bool{}
					}
					ever[p][sum(body)] = true
					mu.Unlock()
				}
				if n%5 == 4 { // deletes make garbage for the collector
					e.Do(http.MethodDelete, "/repository/files/"+p, nil)
					mu.Lock()
					delete(acked, p)
					mu.Unlock()
				}
			}
		}()
	}
	// The collector runs in a loop with a grace period of a millisecond.
	collector := gc.New(e.App.Store, e.App.Blobs, gc.Options{Grace: time.Millisecond, Logger: quiet})
	var collected atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			rep, err := collector.Run(context.Background(), false)
			if err != nil {
				t.Errorf("gc: %v", err)
				return
			}
			collected.Add(int64(rep.Blobs))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	before := make(map[string]string, len(acked)) // acknowledged before the backup began
	for k, v := range acked {
		before[k] = v
	}
	mu.Unlock()

	dir := t.TempDir()
	rep, err := backup.Run(context.Background(), source(e), dir)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup under load: %v", err)
	}
	t.Logf("backup %s: %d blobs (%d bytes), %d copied; %d puts, %d blobs collected meanwhile",
		rep.ID, rep.Blobs, rep.Bytes, rep.Copied, puts.Load(), collected.Load())
	if rep.Blobs == 0 || rep.Copied != rep.Blobs {
		t.Fatalf("first backup copied %d of %d blobs, want all", rep.Copied, rep.Blobs)
	}
	if puts.Load() == 0 || collected.Load() == 0 {
		t.Fatalf("the load did not run: %d puts, %d blobs collected", puts.Load(), collected.Load())
	}

	// Incremental: the next backup copies only what changed since, and one
	// of an unchanged instance copies nothing.
	rep2, err := backup.Run(context.Background(), source(e), dir)
	if err != nil {
		t.Fatal(err)
	}
	rep3, err := backup.Run(context.Background(), source(e), dir)
	if err != nil {
		t.Fatal(err)
	}
	live := 0
	bs, _ := e.App.Store.ListBlobs(context.Background(), "", 1_000_000)
	for _, b := range bs {
		if b.State == "live" {
			live++
		}
	}
	if rep2.Copied >= rep2.Blobs || rep3.Copied != 0 || rep3.Blobs != live {
		t.Fatalf("incremental backups: second copied %d of %d, third %d of %d (live blobs: %d)",
			rep2.Copied, rep2.Blobs, rep3.Copied, rep3.Blobs, live)
	}
	snaps, err := backup.Snapshots(dir)
	if err != nil || len(snaps) != 3 {
		t.Fatalf("snapshots: %v %v", snaps, err)
	}

	// Restore the first snapshot elsewhere and serve it.
	restored := filepath.Join(t.TempDir(), "data")
	rrep, err := backup.Restore(context.Background(), dir, rep.ID, restored, quiet)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if rrep.Blobs != rep.Blobs || !rrep.Verify.OK() {
		t.Fatalf("restore: %+v (backup had %d blobs)", rrep, rep.Blobs)
	}
	// The base, untouched while the backup ran, is all there; files being
	// rewritten hold one of the versions acknowledged for them.
	r := apptest.NewIn(t, restored, repos)
	for p, want := range before {
		if !strings.HasPrefix(p, "base/") {
			continue
		}
		resp, body := r.Do(http.MethodGet, "/repository/files/"+p, nil)
		if resp.StatusCode != http.StatusOK || sum(body) != want {
			t.Errorf("restored %s: %d, sha256 %s, want %s", p, resp.StatusCode, sum(body), want)
		}
	}
	// Every file the restored instance holds has the content its digest names.
	repo, err := r.App.Store.GetRepo(context.Background(), "files")
	if err != nil {
		t.Fatal(err)
	}
	assets, err := r.App.Store.ListAssets(context.Background(), repo.ID, meta.AssetQuery{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	if len(assets) < 300 {
		t.Fatalf("restored %d assets, acknowledged before the backup: %d", len(assets), len(before))
	}
	for _, a := range assets {
		resp, body := r.Do(http.MethodGet, "/repository/files/"+a.Path, nil)
		if resp.StatusCode != http.StatusOK || "sha256:"+sum(body) != a.Blob {
			t.Errorf("restored %s: %d, content sha256:%s, recorded %s", a.Path, resp.StatusCode, sum(body), a.Blob)
		}
		if strings.HasPrefix(a.Path, "load/") && !ever[a.Path][sum(body)] {
			t.Errorf("restored %s holds content never acknowledged for it", a.Path)
		}
	}
	v, err := backup.Verify(context.Background(), r.App.Store, r.App.Blobs, true)
	if err != nil || !v.OK() || len(v.Unreferenced) != 0 {
		t.Fatalf("verify of the restored instance: %+v %v", v, err)
	}
}

func TestRestoreRefusesANonEmptyDataDirectory(t *testing.T) {
	e := embedded(t)
	e.Put("files", "a.txt", "a")
	dir := t.TempDir()
	if _, err := backup.Run(context.Background(), source(e), dir); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	os.WriteFile(filepath.Join(target, "keep.txt"), []byte("mine"), 0o644)
	_, err := backup.Restore(context.Background(), dir, "", target, nil)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into a non-empty directory: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "keep.txt")); string(b) != "mine" {
		t.Fatal("restore touched the non-empty directory")
	}
	if _, err := backup.Restore(context.Background(), t.TempDir(), "", filepath.Join(t.TempDir(), "x"), nil); err == nil ||
		!strings.Contains(err.Error(), "no complete backup") {
		t.Fatalf("restore from an empty directory: %v", err)
	}
}

// A backup whose blob store lost its copy of a blob fails with a message
// naming it instead of writing an incomplete snapshot, and a restore from
// a backup that lost a blob fails and leaves nothing behind.
func TestMissingBlobsAreReportedNotHidden(t *testing.T) {
	e := embedded(t)
	e.Put("files", "a.txt", "alpha")
	e.Put("files", "b.txt", "bravo")
	d := digest.Digest("sha256:" + sum("bravo"))
	dir := t.TempDir()
	if _, err := backup.Run(context.Background(), source(e), dir); err != nil {
		t.Fatal(err)
	}
	// The backup's copy goes missing: restore refuses.
	if err := os.Remove(filepath.Join(dir, "blobs", "sha256", d.Encoded()[:2], d.Encoded())); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "data")
	if _, err := backup.Restore(context.Background(), dir, "", target, nil); err == nil || !strings.Contains(err.Error(), d.String()) {
		t.Fatalf("restore from a backup missing a blob: %v", err)
	}
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Fatalf("a failed restore left %d entries in %s", len(ents), target)
	}
	// The live copy goes missing: the next backup refuses.
	if err := e.App.Blobs.Delete(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Run(context.Background(), source(e), t.TempDir()); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("backup of a store missing a blob: %v", err)
	}
}

// Verify finds missing files, files of the wrong size, corrupted contents
// (deep only) and files nothing references, and repairs none of them.
func TestVerifyReportsWhatIsWrong(t *testing.T) {
	e := embedded(t)
	for _, s := range []string{"one", "two", "three", "four"} {
		e.Put("files", s+".txt", strings.Repeat(s, 100))
	}
	ctx := context.Background()
	v, err := backup.Verify(ctx, e.App.Store, e.App.Blobs, true)
	if err != nil || !v.OK() || v.Blobs != 4 {
		t.Fatalf("healthy store: %+v %v", v, err)
	}
	path := func(s string) string {
		d := digest.Digest("sha256:" + sum(strings.Repeat(s, 100)))
		return filepath.Join(fsRoot(e), "sha256", d.Encoded()[:2], d.Encoded())
	}
	os.Remove(path("one"))
	os.WriteFile(path("two"), []byte("short"), 0o644)
	corrupt := []byte(strings.Repeat("three", 100))
	corrupt[7] ^= 1
	os.WriteFile(path("three"), corrupt, 0o644)
	stray := filepath.Join(fsRoot(e), "sha256", "ab", "ab"+strings.Repeat("0", 62))
	os.MkdirAll(filepath.Dir(stray), 0o755)
	os.WriteFile(stray, []byte("stray"), 0o644)

	quick, err := backup.Verify(ctx, e.App.Store, e.App.Blobs, false)
	if err != nil || len(quick.Missing) != 1 || len(quick.SizeMismatch) != 1 || len(quick.DigestMismatch) != 0 {
		t.Fatalf("quick verify: %+v %v", quick, err)
	}
	deep, err := backup.Verify(ctx, e.App.Store, e.App.Blobs, true)
	if err != nil || deep.OK() || len(deep.Missing) != 1 || len(deep.SizeMismatch) != 1 || len(deep.DigestMismatch) != 1 ||
		len(deep.Unreferenced) != 1 {
		t.Fatalf("deep verify: %+v %v", deep, err)
	}
	if !strings.Contains(deep.Summary(), "1 missing") {
		t.Fatalf("summary: %s", deep.Summary())
	}
	if _, err := os.Stat(stray); err != nil {
		t.Fatal("verify removed an unreferenced file; it must only report it")
	}
}

// While a backup holds collection, no blob is marked as garbage; once the
// hold is gone (or expired), collection resumes.
func TestHoldStopsCollection(t *testing.T) {
	e := embedded(t)
	ctx := context.Background()
	e.Put("files", "gone.txt", "garbage soon")
	e.Do(http.MethodDelete, "/repository/files/gone.txt", nil)
	c := gc.New(e.App.Store, e.App.Blobs, gc.Options{Grace: time.Nanosecond, Logger: quiet})
	time.Sleep(time.Millisecond)
	if err := e.App.Store.SetSetting(ctx, meta.GCHoldPrefix+"test", meta.HoldValue(time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if rep, err := c.Run(ctx, false); err != nil || rep.Blobs != 0 {
		t.Fatalf("collection under a hold: %+v %v", rep, err)
	}
	// An expired hold holds nothing.
	e.App.Store.SetSetting(ctx, meta.GCHoldPrefix+"test", meta.HoldValue(time.Now().Add(-time.Second)))
	if rep, err := c.Run(ctx, false); err != nil || rep.Blobs != 1 {
		t.Fatalf("collection after the hold expired: %+v %v", rep, err)
	}
}

// A store that cannot snapshot itself is refused with a message saying so.
func TestBackupOfAStoreWithoutSnapshots(t *testing.T) {
	e := apptest.New(t, repos)
	_, err := backup.Run(context.Background(), backup.Source{Store: noSnapshot{e.App.Store}, Blobs: e.App.Blobs, Log: quiet}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "cannot take a snapshot") {
		t.Fatalf("backup of a store without snapshots: %v", err)
	}
}

// noSnapshot hides the store's Snapshot method.
type noSnapshot struct{ meta.Store }

// A PostgreSQL metadata store backs up as a logical copy into the same
// backup format (one REPEATABLE READ transaction), and the backup restores
// into the embedded default: every file served with its content.
func TestBackupFromPostgresRestoresEmbedded(t *testing.T) {
	t.Setenv(apptest.BackendsEnv, "pg+fs")
	e := apptest.New(t, repos)
	files := map[string]string{}
	for n := range 40 {
		p := fmt.Sprintf("pg/%d.txt", n)
		files[p] = content(7, n)
		e.Put("files", p, files[p])
	}
	e.Do(http.MethodPost, "/api/v1/repositories/files/deprecations", strings.NewReader(`{"path":"pg/1.txt","message":"old"}`),
		"Content-Type", "application/json")
	dir := t.TempDir()
	rep, err := backup.Run(context.Background(), source(e), dir)
	if err != nil {
		t.Fatalf("backup of a PostgreSQL store: %v", err)
	}
	t.Setenv(apptest.BackendsEnv, "sqlite+fs")
	restored := filepath.Join(t.TempDir(), "data")
	if _, err := backup.Restore(context.Background(), dir, rep.ID, restored, quiet); err != nil {
		t.Fatalf("restore: %v", err)
	}
	r := apptest.NewIn(t, restored, repos)
	for p, want := range files {
		resp, body := r.Do(http.MethodGet, "/repository/files/"+p, nil)
		if resp.StatusCode != http.StatusOK || body != want {
			t.Fatalf("restored %s: %d %q", p, resp.StatusCode, body)
		}
	}
	resp, body := r.Do(http.MethodGet, "/api/v1/repositories/files/artifacts/pg/1.txt", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"deprecated": true`) {
		t.Fatalf("the deprecation did not survive PostgreSQL → backup → SQLite: %s", body)
	}
}

// A backup of the embedded default restores into an empty PostgreSQL
// database and S3 bucket (the way onto the scale-out back-ends): every file
// served with its content, deprecations kept; a non-empty target is refused.
func TestRestoreIntoPostgresAndS3(t *testing.T) {
	t.Setenv(apptest.BackendsEnv, "sqlite+fs")
	e := apptest.New(t, repos)
	files := map[string]string{}
	for n := range 30 {
		p := fmt.Sprintf("s3/%d.txt", n)
		files[p] = content(5, n)
		e.Put("files", p, files[p])
	}
	e.Do(http.MethodPost, "/api/v1/repositories/files/deprecations", strings.NewReader(`{"path":"s3/2.txt","message":"old"}`),
		"Content-Type", "application/json")
	dir := t.TempDir()
	if _, err := backup.Run(context.Background(), source(e), dir); err != nil {
		t.Fatal(err)
	}

	t.Setenv(apptest.BackendsEnv, "pg+s3")
	var st config.Storage
	st.DataDir = t.TempDir()
	secrets := apptest.UseBackends(t, &st)
	getenv := func(k string) string { return secrets[k] }
	store, blobs, err := app.OpenStorage(context.Background(), config.Config{Storage: st}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := backup.RestoreInto(context.Background(), dir, "", store, blobs, quiet)
	if err != nil {
		t.Fatalf("restore into PostgreSQL and S3: %v", err)
	}
	if _, err := backup.RestoreInto(context.Background(), dir, "", store, blobs, quiet); err == nil || !strings.Contains(err.Error(), "empty database") {
		t.Fatalf("a second restore into the same database: %v", err)
	}
	store.Close()
	t.Logf("restored %d blobs into PostgreSQL + S3", rep.Blobs)
	r := apptest.NewOn(t, st, secrets, repos)
	for p, want := range files {
		resp, body := r.Do(http.MethodGet, "/repository/files/"+p, nil)
		if resp.StatusCode != http.StatusOK || body != want {
			t.Fatalf("restored %s: %d %q", p, resp.StatusCode, body)
		}
	}
	resp, body := r.Do(http.MethodGet, "/api/v1/repositories/files/artifacts/s3/2.txt", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"deprecated": true`) {
		t.Fatalf("the deprecation did not survive the restore into PostgreSQL: %s", body)
	}
	// The restored instance takes new uploads (sequences, counters and
	// constraints are intact).
	r.Put("files", "after-restore.txt", "new")
}
