// Command gc measures online garbage collection: a pass over N blobs of
// which half are garbage, and the p99 latency of pushes and pulls running
// against the same server with and without a collection in progress.
//
//	go run ./bench/gc [-blobs 100000]
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"github.com/cofferhq/coffer/bench/internal/benchkit"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cofferhq/coffer/internal/app"
	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/gc"
	"github.com/cofferhq/coffer/internal/meta"
)

const pw = "bench-admin-password"

func main() {
	n := flag.Int("blobs", 100000, "blobs in the store (half of them garbage)")
	loadFor := flag.Duration("load", 10*time.Second, "duration of each latency measurement")
	alone := flag.Bool("alone", false, "time the pass alone, without pushes and pulls running")
	flag.Parse()
	dir, err := os.MkdirTemp("", "coffer-gc-bench")
	benchkit.Check(err)
	defer os.RemoveAll(dir)

	cfg := config.Defaults()
	cfg.Storage.DataDir = dir
	cfg.Log.Level = "error"
	cfg.GC.Interval = 0
	cfg.Repositories = []config.Repository{{Key: "bench", Format: "raw", Kind: "local", Tier: "dev"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	benchkit.Check(err)
	base := "http://" + ln.Addr().String()
	a, err := app.New(context.Background(), cfg, base, app.Options{Stderr: io.Discard,
		Getenv: func(k string) string {
			if k == "COFFER_ADMIN_PASSWORD" {
				return pw
			}
			return ""
		}})
	benchkit.Check(err)
	defer a.Close()
	a.Server.SetReady(true)
	go http.Serve(ln, a.Server)

	fmt.Fprintf(os.Stderr, "seeding %d blobs...\n", *n)
	t0 := time.Now()
	seed(a, *n)
	fmt.Fprintf(os.Stderr, "seeded in %s\n", time.Since(t0).Round(time.Millisecond))
	time.Sleep(1100 * time.Millisecond) // past the grace period

	if *alone {
		col := gc.New(a.Store, a.Blobs, gc.Options{Grace: time.Second, Logger: a.Log})
		t := time.Now()
		r, err := col.Run(context.Background(), false)
		benchkit.Check(err)
		fmt.Printf("| GC pass alone over %d blobs, %d of them garbage | %.1f s (%d blobs, %.1f MiB reclaimed) |\n",
			*n, *n/2, time.Since(t).Seconds(), r.Blobs, float64(r.Bytes)/(1<<20))
		return
	}
	// Latency without a collection.
	quiet := load(base, *loadFor, nil)
	// Latency while a collection runs (it is started with the load and the
	// load lasts at least as long as the collection).
	var rep gc.Report
	var gcDur time.Duration
	busy := load(base, *loadFor, func() {
		col := gc.New(a.Store, a.Blobs, gc.Options{Grace: time.Second, Logger: a.Log})
		t := time.Now()
		r, err := col.Run(context.Background(), false)
		benchkit.Check(err)
		rep, gcDur = r, time.Since(t)
	})

	fmt.Printf("\n### Garbage collection — %s, %d CPUs\n\n", time.Now().UTC().Format("2006-01-02"), runtime.NumCPU())
	fmt.Println("| measurement | result |")
	fmt.Println("|---|---|")
	fmt.Printf("| GC pass over %d blobs, %d of them garbage (files deleted, rows removed) | %.1f s (%d blobs, %.1f MiB reclaimed) |\n",
		*n, *n/2, gcDur.Seconds(), rep.Blobs, float64(rep.Bytes)/(1<<20))
	fmt.Printf("| push (1 KiB raw PUT) p99, without / during GC | %.1f ms / %.1f ms (%d / %d requests) |\n",
		ms(quiet.push), ms(busy.push), quiet.pushes, busy.pushes)
	fmt.Printf("| pull (1 KiB raw GET) p99, without / during GC | %.1f ms / %.1f ms (%d / %d requests) |\n",
		ms(quiet.pull), ms(busy.pull), quiet.pulls, busy.pulls)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// seed writes n small blobs straight into the store's layout (no fsync:
// this is set-up, not the measurement) and their rows; every other blob
// gets an asset, the rest are garbage.
func seed(a *app.App, n int) {
	ctx := context.Background()
	rp, err := a.Repos.Repo("bench")
	benchkit.Check(err)
	root := a.Blobs.(interface{ Root() string }).Root()
	type b struct {
		d    string
		size int64
	}
	var batch []b
	flush := func() {
		benchkit.Check(a.Store.InTx(ctx, func(tx meta.Tx) error {
			for i, x := range batch {
				if err := tx.PutBlob(ctx, x.d, x.size); err != nil {
					return err
				}
				if i%2 == 0 {
					if err := tx.PutAsset(ctx, &meta.Asset{RepoID: rp.ID, Path: "f/" + x.d[7:], Blob: x.d, Size: x.size}); err != nil {
						return err
					}
				}
			}
			return nil
		}))
		batch = batch[:0]
	}
	for i := 0; i < n; i++ {
		content := []byte(fmt.Sprintf("blob %d %s", i, strings.Repeat("x", 1000)))
		sum := sha256.Sum256(content)
		h := hex.EncodeToString(sum[:])
		p := filepath.Join(root, "sha256", h[:2], h)
		os.MkdirAll(filepath.Dir(p), 0o755)
		benchkit.Check(os.WriteFile(p, content, 0o644))
		batch = append(batch, b{"sha256:" + h, int64(len(content))})
		if len(batch) == 5000 {
			flush()
		}
	}
	flush()
}

type result struct {
	push, pull    time.Duration
	pushes, pulls int
}

// load runs 2 pushers and 2 pullers for d (or until during, if given, has
// also finished) and returns p99 latencies.
func load(base string, d time.Duration, during func()) result {
	var mu sync.Mutex
	var push, pull []time.Duration
	var stop atomic.Bool
	var wg sync.WaitGroup
	var seq atomic.Int64
	body := bytes.Repeat([]byte("p"), 1024)
	put := func(path string, b []byte) time.Duration {
		req, _ := http.NewRequest("PUT", base+"/repository/bench/"+path, bytes.NewReader(b))
		req.SetBasicAuth("admin", pw)
		t := time.Now()
		resp, err := http.DefaultClient.Do(req)
		benchkit.Check(err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			panic(fmt.Sprintf("PUT %s: %d", path, resp.StatusCode))
		}
		return time.Since(t)
	}
	put("load/seed", body)
	for w := 0; w < 2; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				i := seq.Add(1)
				b := append([]byte(fmt.Sprint(i)), body...)
				l := put(fmt.Sprintf("load/%d", i), b)
				mu.Lock()
				push = append(push, l)
				mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			for !stop.Load() {
				req, _ := http.NewRequest("GET", base+"/repository/bench/load/seed", nil)
				req.SetBasicAuth("admin", pw)
				t := time.Now()
				resp, err := http.DefaultClient.Do(req)
				benchkit.Check(err)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				pull = append(pull, time.Since(t))
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	if during != nil {
		go func() { during(); close(done) }()
	} else {
		close(done)
	}
	time.Sleep(d)
	<-done
	stop.Store(true)
	wg.Wait()
	return result{p99(push), p99(pull), len(push), len(pull)}
}

func p99(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)*99/100]
}
