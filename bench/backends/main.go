// Command backends measures the scale-out back-ends against the embedded
// ones, with real servers on loopback:
//
//   - blob push/pull throughput through Coffer (raw PUT/GET of one large
//     file) on the filesystem driver and on S3 (versitygw), with and
//     without download redirects to presigned URLs;
//   - manifest GET requests/s against one node and against two nodes
//     (round robin) sharing PostgreSQL and S3.
//
// Needs COFFER_TEST_PG_DSN and versitygw (scripts/install-backend-tools.sh).
//
//	go run ./bench/backends [-size 256MiB] [-reps 3] [-duration 10s] [-conc 32]
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/minio/minio-go/v7"

	"github.com/cofferhq/coffer/internal/app"
	"github.com/cofferhq/coffer/internal/blob/s3/s3test"
	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/meta/postgres/pgtest"
)

const pw = "bench-admin-password"

func main() {
	size := flag.Int("size", 256<<20, "bytes of the file pushed and pulled")
	reps := flag.Int("reps", 3, "pushes and pulls per back-end")
	dur := flag.Duration("duration", 10*time.Second, "each manifest GET measurement")
	conc := flag.Int("conc", 32, "concurrent manifest GETs")
	only := flag.String("only", "", "blobs or manifests (default both)")
	flag.Parse()
	admin := os.Getenv(pgtest.Env)
	if admin == "" {
		fail("set %s (a PostgreSQL server where the benchmark may create a database)", pgtest.Env)
	}
	srv, err := s3test.StartServer()
	check(err)
	host, _ := os.Hostname()
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("# backends benchmark — %s, %s, %d CPUs, load %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), host,
		runtime.NumCPU(), strings.Fields(string(load))[0])
	if *only != "manifests" {
		blobs(srv, admin, *size, *reps)
	}
	if *only != "blobs" {
		manifests(srv, admin, *dur, *conc)
	}
}

// ---- blob throughput

type backend struct {
	name     string
	pg, s3   bool
	redirect bool
}

func blobs(srv *s3test.Server, admin string, size, reps int) {
	fmt.Printf("## Blob push/pull through Coffer (raw PUT/GET of %d MiB, %d reps, median)\n\n", size>>20, reps)
	fmt.Println("| back-end | push MB/s | pull MB/s |")
	fmt.Println("|---|---|---|")
	body := make([]byte, size)
	rand.Read(body)
	for _, b := range []backend{
		{name: "sqlite + fs"},
		{name: "sqlite + s3 (versitygw)", s3: true},
		{name: "sqlite + s3, pull redirected to a presigned URL", s3: true, redirect: true},
		{name: "pg + s3", pg: true, s3: true},
	} {
		url, stop := inProcess(srv, admin, b)
		var push, pull []float64
		for i := 0; i < reps; i++ {
			body[0] = byte(i) // a new blob each time
			path := fmt.Sprintf("%s/repository/raw/f%d.bin", url, i)
			start := time.Now()
			req, _ := http.NewRequest(http.MethodPut, path, bytes.NewReader(body))
			req.SetBasicAuth("admin", pw)
			resp, err := http.DefaultClient.Do(req)
			check(err)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				fail("PUT: %s", resp.Status)
			}
			push = append(push, mbps(size, time.Since(start)))
			start = time.Now()
			req, _ = http.NewRequest(http.MethodGet, path, nil)
			req.SetBasicAuth("admin", pw)
			resp, err = http.DefaultClient.Do(req)
			check(err)
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if n != int64(size) {
				fail("GET: %d bytes", n)
			}
			pull = append(pull, mbps(size, time.Since(start)))
		}
		stop()
		fmt.Printf("| %s | %.0f | %.0f |\n", b.name, median(push), median(pull))
	}
	fmt.Println()
}

// inProcess starts Coffer in this process on the back-end b.
func inProcess(srv *s3test.Server, admin string, b backend) (string, func()) {
	dir, err := os.MkdirTemp("", "coffer-bench-backends")
	check(err)
	var cleanups []func()
	cfg := config.Defaults()
	cfg.Storage.DataDir = dir
	cfg.Log.Level = "error"
	cfg.GC.Interval = 0
	cfg.Repositories = []config.Repository{{Key: "raw", Format: "raw", Kind: "local", Tier: "dev"}}
	if b.pg {
		dsn, drop, err := pgtest.Create(context.Background(), admin)
		check(err)
		cfg.Storage.Database.Postgres = &config.Postgres{DSN: dsn}
		cleanups = append(cleanups, func() { drop() })
	}
	if b.s3 {
		bucket := newBucket(srv)
		cfg.Storage.Blobs.S3 = &config.S3{Endpoint: srv.Endpoint, Bucket: bucket, AccessKey: srv.AccessKey,
			SecretKeyEnv: "S3_SECRET", PathStyle: true, Redirect: b.redirect}
		cleanups = append(cleanups, func() { c, _ := srv.Client(); s3test.RemoveBucket(c, bucket) })
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	base := "http://" + ln.Addr().String()
	a, err := app.New(context.Background(), cfg, base, app.Options{Stderr: io.Discard, Getenv: func(k string) string {
		switch k {
		case "COFFER_ADMIN_PASSWORD":
			return pw
		case "S3_SECRET":
			return srv.SecretKey
		}
		return ""
	}})
	check(err)
	a.Server.SetReady(true)
	hs := &http.Server{Handler: a.Server}
	go hs.Serve(ln)
	return base, func() {
		hs.Close()
		a.Close()
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		os.RemoveAll(dir)
	}
}

func newBucket(srv *s3test.Server) string {
	c, err := srv.Client()
	check(err)
	b := make([]byte, 4)
	rand.Read(b)
	name := fmt.Sprintf("bench-%x", b)
	check(c.MakeBucket(context.Background(), name, minioOpts()))
	return name
}

// ---- manifest GETs, one node vs two

func manifests(srv *s3test.Server, admin string, dur time.Duration, conc int) {
	bin := filepath.Join(os.TempDir(), fmt.Sprintf("coffer-bench-%d", os.Getpid()))
	build := exec.Command("go", "build", "-o", bin, "./cmd/coffer")
	build.Stderr = os.Stderr
	check(build.Run())
	defer os.Remove(bin)
	dsn, drop, err := pgtest.Create(context.Background(), admin)
	check(err)
	defer drop()
	bucket := newBucket(srv)
	defer func() { c, _ := srv.Client(); s3test.RemoveBucket(c, bucket) }()
	conf := fmt.Sprintf(`storage:
  database: {postgres: {dsn: %q}}
  blobs: {s3: {endpoint: %q, bucket: %q, access_key: %q, secret_key_env: S3_SECRET, path_style: true}}
log: {level: error}
repositories:
  - {key: docker, format: oci, kind: local, tier: dev, anonymous_read: true}
`, dsn, srv.Endpoint, bucket, srv.AccessKey)
	dir, err := os.MkdirTemp("", "coffer-bench-nodes")
	check(err)
	defer os.RemoveAll(dir)
	check(os.WriteFile(filepath.Join(dir, "coffer.yaml"), []byte(conf), 0o644))
	var nodes []string
	for i := 0; i < 2; i++ {
		addr, stop := startNode(bin, dir, i, srv.SecretKey)
		defer stop()
		nodes = append(nodes, addr)
	}
	img, err := random.Image(1024, 2)
	check(err)
	ref, err := name.ParseReference(nodes[0]+"/docker/app:v1", name.Insecure)
	check(err)
	check(remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: pw})))

	fmt.Printf("## Manifest GET (anonymous read, %d concurrent, %s each, PostgreSQL + S3)\n\n", conc, dur)
	fmt.Println("| nodes | req/s | p50 | p99 |")
	fmt.Println("|---|---|---|---|")
	for _, n := range []int{1, 2, 1, 2} {
		rps, p50, p99 := hammer(nodes[:n], dur, conc)
		fmt.Printf("| %d | %.0f | %s | %s |\n", n, rps, p50, p99)
	}
	fmt.Println()
}

func startNode(bin, dir string, i int, secret string) (string, func()) {
	data := filepath.Join(dir, fmt.Sprintf("node%d", i))
	addrFile := filepath.Join(dir, fmt.Sprintf("addr%d", i))
	cmd := exec.Command(bin, "serve", "--config", filepath.Join(dir, "coffer.yaml"), "--data", data,
		"--listen", "127.0.0.1:0", "--addr-file", addrFile)
	cmd.Env = append(os.Environ(), "COFFER_ADMIN_PASSWORD="+pw, "S3_SECRET="+secret)
	cmd.Stderr = os.Stderr
	check(cmd.Start())
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return string(b), func() { cmd.Process.Kill(); cmd.Wait() }
		}
		if time.Now().After(deadline) {
			fail("node %d did not start", i)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hammer(nodes []string, dur time.Duration, conc int) (float64, time.Duration, time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	var count atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	end := time.Now().Add(dur)
	var wg sync.WaitGroup
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var mine []time.Duration
			for i := g; time.Now().Before(end); i++ {
				u := "http://" + nodes[i%len(nodes)] + "/v2/docker/app/manifests/v1"
				req, _ := http.NewRequest(http.MethodGet, u, nil)
				req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					fail("GET: %v", err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					fail("GET manifest: %s", resp.Status)
				}
				mine = append(mine, time.Since(t0))
				count.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(g)
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(10 * time.Microsecond) }
	return float64(count.Load()) / dur.Seconds(), q(0.5), q(0.99)
}

func mbps(n int, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "backends: "+format+"\n", args...)
	os.Exit(1)
}

func minioOpts() minio.MakeBucketOptions { return minio.MakeBucketOptions{} }
