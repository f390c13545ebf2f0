package gc_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/gc"
	"github.com/cofferhq/coffer/internal/repo"
)

const conf = `
gc: {grace: 1s, interval: 0s}
repositories:
  - {key: dev, format: raw, kind: local, tier: dev}
  - {key: other, format: raw, kind: local, tier: dev}
`

func blobFiles(t *testing.T, e *apptest.Env) int {
	n, _ := e.BlobFiles()
	return n
}

func TestCollectsWhatNothingReferences(t *testing.T) {
	e := apptest.New(t, conf)
	e.Put("dev", "a.bin", strings.Repeat("a", 1000))
	e.Put("dev", "b.bin", strings.Repeat("b", 2000))
	e.Put("other", "b-copy.bin", strings.Repeat("b", 2000)) // the same blob in two repositories
	e.Put("dev", "c.bin", strings.Repeat("c", 3000))
	for _, p := range []string{"/repository/dev/a.bin", "/repository/dev/b.bin"} {
		if resp, _ := e.Do(http.MethodDelete, p, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE %s: %d", p, resp.StatusCode)
		}
	}
	if n := blobFiles(t, e); n != 3 {
		t.Fatalf("%d blob files before collection", n)
	}
	// Within the grace period nothing goes.
	rep, err := e.App.GC.Run(context.Background(), false)
	if err != nil || rep.Blobs != 0 {
		t.Fatalf("collection within the grace period: %+v, %v", rep, err)
	}
	time.Sleep(1100 * time.Millisecond)
	dry, err := e.App.GC.Run(context.Background(), true)
	if err != nil || dry.Blobs != 1 || dry.Bytes != 1000 {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	if n := blobFiles(t, e); n != 3 {
		t.Fatalf("a dry run deleted files: %d left", n)
	}
	rep, err = e.App.GC.Run(context.Background(), false)
	if err != nil || rep.Blobs != 1 || rep.Bytes != 1000 {
		t.Fatalf("collection: %+v, %v", rep, err)
	}
	if n := blobFiles(t, e); n != 2 {
		t.Fatalf("%d blob files after collection, want 2", n)
	}
	// What is still referenced is intact.
	for path, want := range map[string]string{"/repository/other/b-copy.bin": strings.Repeat("b", 2000), "/repository/dev/c.bin": strings.Repeat("c", 3000)} {
		if resp, body := e.Do(http.MethodGet, path, nil); resp.StatusCode != 200 || body != want {
			t.Fatalf("GET %s after collection: %d", path, resp.StatusCode)
		}
	}
	// The metrics tell.
	if _, body := e.Do(http.MethodGet, "/metrics", nil); !strings.Contains(body, "coffer_gc_reclaimed_bytes_total 1000") {
		t.Fatal("metrics do not report the reclaimed bytes")
	}
}

// The race that bit Distribution, Harbor and Quay: a push reusing a blob
// while collection has decided it is garbage. Collection marks the blob,
// the push starts and must wait; collection deletes the file and the row;
// the push then stores its own bytes. Nothing is lost.
func TestPushReusingABlobBeingCollected(t *testing.T) {
	e := apptest.New(t, conf)
	content := strings.Repeat("reused layer ", 10000)
	e.Put("dev", "old.bin", content)
	e.Do(http.MethodDelete, "/repository/dev/old.bin", nil)
	time.Sleep(1100 * time.Millisecond)
	// Collection, step 1: mark.
	marked, err := e.App.Store.MarkGarbage(context.Background(), time.Now().Add(-time.Second), 10)
	if err != nil || len(marked) != 1 {
		t.Fatalf("mark: %+v %v", marked, err)
	}
	// A push of the same content starts now.
	u, _ := e.App.Store.GetUser(context.Background(), "admin")
	ctx := auth.WithPrincipal(context.Background(), &auth.Principal{User: u})
	dev, _ := e.App.Repos.Repo("dev")
	done := make(chan error, 1)
	go func() {
		_, err := e.App.Repos.Put(ctx, dev, "new.bin", strings.NewReader(content), repo.PutOptions{Size: int64(len(content))})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the push finished while the blob was being collected (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	// Collection, steps 2 and 3: the file, then the row.
	if err := e.App.Blobs.Delete(context.Background(), digest.Digest(marked[0].Digest)); err != nil {
		t.Fatal(err)
	}
	if err := e.App.Store.DeleteBlob(context.Background(), marked[0].Digest); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("push: %v", err)
	}
	if resp, body := e.Do(http.MethodGet, "/repository/dev/new.bin", nil); resp.StatusCode != 200 || body != content {
		t.Fatalf("the pushed blob after the collection: %d, %d bytes", resp.StatusCode, len(body))
	}
	// And a full collection later keeps it: it is referenced.
	time.Sleep(1100 * time.Millisecond)
	if rep, _ := e.App.GC.Run(context.Background(), false); rep.Blobs != 0 {
		t.Fatalf("collected a referenced blob: %+v", rep)
	}
}

// A collection interrupted after marking resumes where it stopped.
func TestResumesMarkedBlobs(t *testing.T) {
	e := apptest.New(t, conf)
	e.Put("dev", "x.bin", "x")
	e.Do(http.MethodDelete, "/repository/dev/x.bin", nil)
	time.Sleep(1100 * time.Millisecond)
	if m, _ := e.App.Store.MarkGarbage(context.Background(), time.Now(), 10); len(m) != 1 {
		t.Fatal("mark")
	}
	rep, err := gc.New(e.App.Store, e.App.Blobs, gc.Options{Grace: time.Hour}).Run(context.Background(), false)
	if err != nil || rep.Unfinished != 1 || rep.Blobs != 1 {
		t.Fatalf("resumed: %+v %v", rep, err)
	}
	if n := blobFiles(t, e); n != 0 {
		t.Fatalf("%d files left", n)
	}
}
