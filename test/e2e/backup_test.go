package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	gtypes "github.com/google/go-containerregistry/pkg/v1/types"
)

// The backup promise, end to end with the real binary: `coffer backup`
// while images are pushed, deleted and garbage-collected through a running
// server; `coffer restore` into an empty directory; a server on the restored
// directory serves every image acknowledged before the backup began with
// the same digests; `coffer verify` passes, and fails on a corrupted blob.
func TestBackupRestoreUnderLoad(t *testing.T) {
	s := StartServer(t, "gc: {grace: 1s, interval: 1s}\n"+ociConfig)
	cli := newCLIRunner(t)
	pool := make([]v1.Layer, 10)
	for i := range pool {
		l, err := random.Layer(256<<10+int64(i)*4096, gtypes.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		pool[i] = l
	}
	type pushed struct {
		ref    string
		digest v1.Hash
	}
	var (
		mu     sync.Mutex
		live   = map[string]pushed{}
		gone   = map[string]bool{} // deleted at some point: may or may not be in a backup
		pushes atomic.Int64
		stop   = make(chan struct{})
		wg     sync.WaitGroup
		failed atomic.Value
	)
	push := func(w, i int) {
		r := rand.New(rand.NewPCG(uint64(w), uint64(i)))
		img := empty.Image
		for _, k := range r.Perm(len(pool))[:2+r.IntN(3)] {
			img, _ = mutate.AppendLayers(img, pool[k])
		}
		img, _ = mutate.Config(img, v1.Config{Labels: map[string]string{"n": fmt.Sprint(w, "-", i)}})
		ref := fmt.Sprintf("%s/docker-dev-local/backup/w%d:%d", s.Addr, w, i)
		if err := remote.Write(mustRef(t, ref), img, ggcrAuth()); err != nil {
			failed.Store(fmt.Sprintf("push %s: %v", ref, err))
			return
		}
		dg, _ := img.Digest()
		mu.Lock()
		live[ref] = pushed{ref, dg}
		mu.Unlock()
		pushes.Add(1)
	}
	for i := range 20 { // what must be in the backup
		push(9, i)
	}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				push(w, i)
				if i%3 == 2 { // and delete some, so that GC has work
					ref := fmt.Sprintf("%s/docker-dev-local/backup/w%d:%d", s.Addr, w, i-1)
					mu.Lock()
					p, ok := live[ref]
					delete(live, ref)
					gone[ref] = true
					mu.Unlock()
					if ok {
						remote.Delete(mustRef(t, ref[:strings.LastIndex(ref, ":")]+"@"+p.digest.String()), ggcrAuth())
					}
				}
			}
		}()
	}
	time.Sleep(time.Second)
	mu.Lock()
	before := make(map[string]pushed, len(live))
	for k, v := range live {
		before[k] = v
	}
	mu.Unlock()

	backupDir := filepath.Join(t.TempDir(), "backup")
	first := cli.ok("", "backup", "--data", s.DataDir, "--to", backupDir, "-o", "json")
	second := cli.ok("", "backup", "--data", s.DataDir, "--to", backupDir, "-o", "json")
	close(stop)
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatalf("load: %v", f)
	}
	var r1, r2 struct {
		ID     string `json:"id"`
		Blobs  int    `json:"blobs"`
		Copied int    `json:"copied"`
	}
	parseJSON(t, "backup", first.stdout, &r1)
	parseJSON(t, "backup", second.stdout, &r2)
	t.Logf("%d pushes; first backup %d blobs, %d copied; second %d blobs, %d copied", pushes.Load(), r1.Blobs, r1.Copied, r2.Blobs, r2.Copied)
	if r1.Copied != r1.Blobs || r2.Copied >= r2.Blobs {
		t.Fatalf("incremental backups: first copied %d of %d, second %d of %d", r1.Copied, r1.Blobs, r2.Copied, r2.Blobs)
	}

	// Restore the first snapshot and serve it.
	restored := filepath.Join(t.TempDir(), "restored")
	out := cli.ok("", "restore", "--from", backupDir, "--snapshot", r1.ID, "--data", restored)
	mustContain(t, "restore", out.stdout, r1.ID, "verified")
	cli.fails("", []string{"restore", "--from", backupDir, "--data", restored}, "not empty")
	s2 := StartServerIn(t, restored, ociConfig)
	checked := 0
	for _, p := range before {
		if gone[p.ref] {
			continue
		}
		checked++
		ref := strings.Replace(p.ref, s.Addr, s2.Addr, 1)
		img, err := remote.Image(mustRef(t, ref), ggcrAuth())
		if err != nil {
			t.Errorf("pull %s from the restored server: %v", ref, err)
			continue
		}
		if d, _ := img.Digest(); d != p.digest {
			t.Errorf("%s: restored digest %s, pushed %s", ref, d, p.digest)
		}
		if err := pullAll(t, ref); err != nil {
			t.Errorf("pull %s from the restored server: %v", ref, err)
		}
	}
	s2.Stop()
	if checked < 20 {
		t.Fatalf("only %d images checked", checked)
	}
	cli.ok("", "verify", "--data", restored)

	// A corrupted blob is found and reported, not repaired.
	var victim string
	filepath.Walk(filepath.Join(restored, "blobs", "sha256"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Size() > 1000 && victim == "" {
			victim = p
		}
		return nil
	})
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(victim, b, 0o644); err != nil {
		t.Fatal(err)
	}
	res := cli.fails("", []string{"verify", "--data", restored}, "1 not matching their digest")
	mustContain(t, "verify", res.stdout, filepath.Base(victim))
	cli.ok("", "verify", "--quick", "--data", restored) // sizes are right: the quick check cannot see it
}
