package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	gtypes "github.com/google/go-containerregistry/pkg/v1/types"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The GC soak: pushes that reuse layers across images, pulls, and deletes
// run concurrently while garbage collection runs in a loop with a short
// grace period. Afterwards every image that was acknowledged and not
// deleted pulls completely, and the bytes of deleted images were really
// reclaimed. Duration: COFFER_GC_SOAK (default 2m; 15s with -short).
func TestGCSoak(t *testing.T) {
	d := 2 * time.Minute
	if testing.Short() {
		d = 15 * time.Second
	}
	if v := os.Getenv("COFFER_GC_SOAK"); v != "" {
		if p, err := time.ParseDuration(v); err == nil {
			d = p
		}
	}
	s := StartServer(t, "gc: {grace: 1s, interval: 0s}\n"+ociConfig)
	host := s.Addr
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, duration %s", seed, d)

	// A pool of shared layers: images combine them, so pushes keep reusing
	// blobs that deleted images released.
	pool := make([]v1.Layer, 12)
	for i := range pool {
		l, err := random.Layer(64<<10+int64(i)*1024, gtypes.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		pool[i] = l
	}
	type pushed struct {
		ref    string
		digest v1.Hash
	}
	var mu sync.Mutex
	live := map[string]pushed{} // acknowledged, not deleted
	var deleted []pushed
	var pushes, pulls, dels, gcs atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	errc := make(chan string, 100)
	fail := func(f string, a ...any) {
		select {
		case errc <- fmt.Sprintf(f, a...):
		default:
		}
	}

	// Pushers.
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := 0; time.Now().Before(deadline); i++ {
				img := empty.Image
				for _, k := range r.Perm(len(pool))[:2+r.IntN(3)] {
					img, _ = mutate.AppendLayers(img, pool[k])
				}
				// A unique config makes each image distinct.
				img, _ = mutate.Config(img, v1.Config{Labels: map[string]string{"n": fmt.Sprint(w, "-", i)}})
				ref := fmt.Sprintf("%s/docker-dev-local/soak/w%d:%d", host, w, i)
				if err := remote.Write(mustRef(t, ref), img, ggcrAuth()); err != nil {
					fail("push %s: %v", ref, err)
					return
				}
				dg, _ := img.Digest()
				mu.Lock()
				live[ref] = pushed{ref, dg}
				mu.Unlock()
				pushes.Add(1)
			}
		}(w)
	}
	// A deleter: removes random images (manifest and tags), releasing blobs.
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(seed, 99))
		for time.Now().Before(deadline) {
			time.Sleep(150 * time.Millisecond)
			mu.Lock()
			var victim *pushed
			for _, p := range live {
				if r.IntN(3) == 0 {
					p := p
					victim = &p
					break
				}
			}
			if victim != nil {
				delete(live, victim.ref)
			}
			mu.Unlock()
			if victim == nil {
				continue
			}
			name := strings.TrimPrefix(victim.ref, host+"/docker-dev-local/")
			name = name[:strings.LastIndex(name, ":")]
			resp := s.Do("DELETE", "/v2/docker-dev-local/"+name+"/manifests/"+victim.digest.String(), nil)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				fail("delete %s: %d", victim.ref, resp.StatusCode)
				return
			}
			mu.Lock()
			deleted = append(deleted, *victim)
			mu.Unlock()
			dels.Add(1)
		}
	}()
	// Pullers.
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				mu.Lock()
				var p *pushed
				for _, x := range live {
					x := x
					p = &x
					break
				}
				mu.Unlock()
				if p == nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				if err := pullAll(t, p.ref); err != nil {
					// It may have been deleted since: only a live image must pull.
					mu.Lock()
					_, still := live[p.ref]
					mu.Unlock()
					if still {
						fail("pull %s: %v", p.ref, err)
						return
					}
					continue
				}
				pulls.Add(1)
			}
		}()
	}
	// Garbage collection in a loop.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for time.Now().Before(deadline) {
			resp := s.Do("POST", "/api/v1/gc", nil)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				fail("gc: %d", resp.StatusCode)
				return
			}
			gcs.Add(1)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	wg.Wait()
	close(errc)
	for e := range errc {
		t.Error(e)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d pushes, %d pulls, %d deletes, %d collections", pushes.Load(), pulls.Load(), dels.Load(), gcs.Load())
	if dels.Load() == 0 || pushes.Load() < 10 {
		t.Fatalf("the soak did too little to prove anything")
	}
	// Every live image pulls completely.
	for _, p := range live {
		if err := pullAll(t, p.ref); err != nil {
			t.Errorf("after the soak, %s: %v", p.ref, err)
		}
	}
	// Bytes are really reclaimed: blobs of deleted images nobody else uses go.
	time.Sleep(1100 * time.Millisecond)
	before := storage(t, s)
	resp := s.Do("POST", "/api/v1/gc", nil)
	var rep struct {
		Blobs int   `json:"blobs"`
		Bytes int64 `json:"bytes"`
	}
	json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	after := storage(t, s)
	total := rep.Bytes
	t.Logf("final collection: %d blobs, %d bytes; physical %d → %d bytes", rep.Blobs, rep.Bytes, before, after)
	if after > before || before-after != total {
		t.Fatalf("physical usage %d → %d does not match the %d bytes reclaimed", before, after, total)
	}
	// The deleted images' configs (unique to each) are gone for good.
	gone := 0
	for _, p := range deleted {
		if err := pullAll(t, p.ref[:strings.LastIndex(p.ref, ":")]+"@"+p.digest.String()); err != nil {
			gone++
		}
	}
	if gone != len(deleted) {
		t.Fatalf("%d of %d deleted images still pull", len(deleted)-gone, len(deleted))
	}
	for _, p := range live {
		if err := pullAll(t, p.ref); err != nil {
			t.Errorf("after the last collection, %s: %v", p.ref, err)
		}
	}
}

func pullAll(t *testing.T, ref string) error {
	img, err := remote.Image(mustRef(t, ref), ggcrAuth())
	if err != nil {
		return err
	}
	if _, err := img.ConfigFile(); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		n, err := drain(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if size, _ := l.Size(); n != size {
			return fmt.Errorf("layer: %d of %d bytes", n, size)
		}
	}
	return nil
}

func storage(t *testing.T, s *Server) int64 {
	resp := s.Do("GET", "/api/v1/storage", nil)
	defer resp.Body.Close()
	var st struct {
		Physical struct {
			Bytes int64 `json:"bytes"`
		} `json:"physical"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	return st.Physical.Bytes
}

func TestGCCommand(t *testing.T) {
	s := StartServer(t, "gc: {grace: 1s, interval: 0s}\n"+ociConfig)
	resp := s.Do("POST", "/v2/docker-dev-local/x/blobs/uploads/?digest=sha256:"+sha([]byte("garbage")), strings.NewReader("garbage"))
	resp.Body.Close()
	resp = s.Do("DELETE", "/v2/docker-dev-local/x/blobs/sha256:"+sha([]byte("garbage")), nil)
	resp.Body.Close()
	time.Sleep(1100 * time.Millisecond)
	env := append(os.Environ(), "COFFER_SERVER="+s.URL, "COFFER_USER=admin", "COFFER_PASSWORD="+adminPassword)
	run := func(args ...string) string {
		cmd := exec.Command(cofferBin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("coffer %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("gc", "--dry-run"); !strings.Contains(out, "Would reclaim") || !strings.Contains(out, "in 1 blobs") {
		t.Fatalf("coffer gc --dry-run:\n%s", out)
	}
	if out := run("gc"); !strings.Contains(out, "Reclaimed") || !strings.Contains(out, "in 1 blobs") {
		t.Fatalf("coffer gc:\n%s", out)
	}
	if out := run("gc", "-o", "json"); !strings.Contains(out, `"blobs": 0`) {
		t.Fatalf("second coffer gc:\n%s", out)
	}
}
