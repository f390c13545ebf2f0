// Command oci measures Coffer's OCI registry against the CNCF Distribution
// registry (v3.1.2, filesystem storage) in the same run, so that every
// figure is a ratio, next to the machine's own limits (sha256, disk with
// fsync, loopback TCP). It prints a Markdown table for docs/benchmarks.md.
//
//	go run ./bench/oci [-big 1GiB] [-pull 100MiB] [-images 200]
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"fmt"
	"github.com/cofferhq/coffer/bench/internal/benchkit"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var (
	bigSize  = flag.Int64("big", 1<<30, "bytes of the large blob upload")
	pullSize = flag.Int64("pull", 100<<20, "bytes of the large blob pull")
	images   = flag.Int("images", 200, "1 MiB images pushed and pulled")
	dur      = flag.Duration("d", 10*time.Second, "duration of each wrk run")
)

type target struct {
	name string
	url  string // http://host:port
	cmd  *exec.Cmd
	pid  int
	peak atomic.Int64
}

func main() {
	flag.Parse()
	root, err := os.MkdirTemp("", "coffer-oci-bench")
	benchkit.Check(err)
	defer os.RemoveAll(root)
	bin := filepath.Join(root, "coffer")
	run("go", "build", "-o", bin, "./cmd/coffer")
	reg := filepath.Join(mustAbs(".tools/bin"), "registry")
	if _, err := os.Stat(reg); err != nil {
		panic("the Distribution registry is not built: run scripts/install-oci-tools.sh")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		panic("wrk is not installed (apt-get install wrk)")
	}

	shaMBs := sha256Speed()
	tcpMBs := loopbackSpeed(1 << 30)

	coffer := startCoffer(bin, filepath.Join(root, "coffer-data"))
	defer coffer.stop()
	dist := startDistribution(reg, filepath.Join(root, "dist-data"))
	defer dist.stop()
	time.Sleep(500 * time.Millisecond)
	coffer.idle, dist.idle = rssKB(coffer.pid), rssKB(dist.pid)
	for _, t := range []*target{coffer.target, dist.target} {
		go t.sample()
	}

	rows := map[string][2]string{}
	ratio := map[string]float64{}
	for i, t := range []*target{coffer.target, dist.target} {
		// A small image to GET, and a 1 KiB blob.
		img, _ := random.Image(1024, 1)
		ref := mustRef(t.url, "bench/small:latest")
		benchkit.Check(remote.Write(ref, img, remote.WithUserAgent("bench"), auth(t)))
		m1 := wrk(t, "/v2/bench/small/manifests/latest", 1, *dur)
		m32 := wrk(t, "/v2/bench/small/manifests/latest", 32, *dur)
		blob := putBlob(t, "bench/small", randBytes(1024))
		b32 := wrk(t, "/v2/bench/small/blobs/"+blob, 32, *dur)
		pushRate, pushP99 := pushImages(t, *images)
		pullRate, pullP99 := pullImages(t, *images)
		upMBs := bigUpload(t, *bigSize)
		pullMBs := bigPull(t, *pullSize)
		vals := []float64{m1, m32, b32, pushRate, pullRate, upMBs, pullMBs}
		keys := []string{"manifest GET by tag, 1 connection (req/s)", "manifest GET by tag, 32 connections (req/s)",
			"1 KiB blob GET, 32 connections (req/s)", "push of 1 MiB images, 4 clients (images/s)",
			"pull of 1 MiB images, 4 clients (images/s)", fmt.Sprintf("upload of a %s blob (MiB/s)", human(*bigSize)),
			fmt.Sprintf("pull of a %s blob (MiB/s)", human(*pullSize))}
		for k, key := range keys {
			r := rows[key]
			r[i] = fmt.Sprintf("%.0f", vals[k])
			rows[key] = r
			if i == 0 {
				ratio[key] = vals[k]
			} else {
				ratio[key] /= vals[k]
			}
		}
		for _, kv := range []struct {
			k string
			v time.Duration
		}{{"push p99 latency (ms)", pushP99}, {"pull p99 latency (ms)", pullP99}} {
			r := rows[kv.k]
			r[i] = fmt.Sprintf("%.1f", float64(kv.v.Microseconds())/1000)
			rows[kv.k] = r
			if i == 0 {
				ratio[kv.k] = float64(kv.v)
			} else {
				ratio[kv.k] = float64(kv.v) / ratio[kv.k] // >1: Coffer is faster
			}
		}
	}
	coffer.done()
	dist.done()

	fmt.Printf("\n### OCI — %s, %d CPUs, %s\n\n", time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), cpuModel())
	fmt.Printf("Machine: sha256 %.0f MB/s on one core; loopback TCP %.0f MiB/s.\n\n", shaMBs, tcpMBs)
	fmt.Println("| measurement | Coffer | Distribution 3.1.2 | Coffer ÷ Distribution |")
	fmt.Println("|---|---|---|---|")
	order := []string{"manifest GET by tag, 1 connection (req/s)", "manifest GET by tag, 32 connections (req/s)",
		"1 KiB blob GET, 32 connections (req/s)", "push of 1 MiB images, 4 clients (images/s)", "push p99 latency (ms)",
		"pull of 1 MiB images, 4 clients (images/s)", "pull p99 latency (ms)",
		fmt.Sprintf("upload of a %s blob (MiB/s)", human(*bigSize)), fmt.Sprintf("pull of a %s blob (MiB/s)", human(*pullSize))}
	for _, k := range order {
		note := fmt.Sprintf("%.2f×", ratio[k])
		if strings.Contains(k, "latency") {
			note = fmt.Sprintf("%.2f× faster", ratio[k])
		}
		fmt.Printf("| %s | %s | %s | %s |\n", k, rows[k][0], rows[k][1], note)
	}
	pull := rows[fmt.Sprintf("pull of a %s blob (MiB/s)", human(*pullSize))][0]
	pv, _ := strconv.ParseFloat(pull, 64)
	fmt.Printf("| %s pull ÷ loopback TCP | %.0f %% | | |\n", human(*pullSize), 100*pv/tcpMBs)
	fmt.Printf("| RSS idle → peak (MiB) | %.0f → %.0f | %.0f → %.0f | |\n",
		float64(coffer.idle)/1024, float64(coffer.peak.Load())/1024, float64(dist.idle)/1024, float64(dist.peak.Load())/1024)
}

// ---- servers

type server struct {
	*target
	idle int64
	stop func()
	quit chan struct{}
}

func (s *server) done() { close(s.quit) }

func (t *target) sample() {
	for {
		if r := rssKB(t.pid); r > t.peak.Load() {
			t.peak.Store(r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	benchkit.Check(err)
	defer l.Close()
	return l.Addr().String()
}

func startCoffer(bin, data string) *server {
	benchkit.Check(os.MkdirAll(data, 0o755))
	cfg := data + ".yaml"
	benchkit.Check(os.WriteFile(cfg, []byte("log: {level: error}\nrepositories:\n  - {key: bench, format: oci, kind: local, tier: dev, anonymous_read: true}\n"), 0o644))
	addr := freePort()
	cmd := exec.Command(bin, "serve", "--data", data, "--listen", addr, "--config", cfg)
	cmd.Env = append(os.Environ(), "COFFER_ADMIN_PASSWORD=bench-admin-password")
	cmd.Stderr = os.Stderr
	benchkit.Check(cmd.Start())
	waitUp("http://" + addr + "/healthz")
	t := &target{name: "coffer", url: "http://" + addr, cmd: cmd, pid: cmd.Process.Pid}
	return &server{target: t, quit: make(chan struct{}), stop: func() { cmd.Process.Kill(); cmd.Wait() }}
}

func startDistribution(bin, data string) *server {
	benchkit.Check(os.MkdirAll(data, 0o755))
	addr := freePort()
	cfg := data + ".yml"
	benchkit.Check(os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
http: {addr: %s}
`, data, addr)), 0o644))
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	cmd.Stderr = io.Discard
	benchkit.Check(cmd.Start())
	waitUp("http://" + addr + "/v2/")
	t := &target{name: "distribution", url: "http://" + addr, cmd: cmd, pid: cmd.Process.Pid}
	return &server{target: t, quit: make(chan struct{}), stop: func() { cmd.Process.Kill(); cmd.Wait() }}
}

func waitUp(url string) {
	for i := 0; i < 200; i++ {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	panic(url + " did not come up")
}

func auth(t *target) remote.Option {
	if t.name == "coffer" {
		return remote.WithAuth(&authn.Basic{Username: "admin", Password: "bench-admin-password"})
	}
	return remote.WithAuth(authn.Anonymous)
}

// ---- measurements

func wrk(t *target, path string, conns int, d time.Duration) float64 {
	args := []string{"-t", strconv.Itoa(min(conns, 2)), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())),
		"-H", "Accept: application/vnd.oci.image.manifest.v1+json", t.url + path}
	out, err := exec.Command("wrk", args...).CombinedOutput()
	benchkit.Check(err)
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "Requests/sec:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			if strings.Contains(string(out), "Non-2xx") {
				panic("wrk saw errors against " + t.name + ": " + string(out))
			}
			return v
		}
	}
	panic("wrk: " + string(out))
}

func putBlob(t *target, repoName string, b []byte) string {
	d := fmt.Sprintf("sha256:%x", sha256.Sum256(b))
	req, _ := http.NewRequest("POST", t.url+"/v2/"+repoName+"/blobs/uploads/?digest="+d, bytes.NewReader(b))
	basicIf(t, req)
	resp, err := http.DefaultClient.Do(req)
	benchkit.Check(err)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		// Distribution answers 202 to a POST with body; finish it.
		if resp.StatusCode == 202 {
			loc := resp.Header.Get("Location")
			sep := "?"
			if strings.Contains(loc, "?") {
				sep = "&"
			}
			req, _ = http.NewRequest("PUT", abs(t, loc)+sep+"digest="+d, bytes.NewReader(b))
			resp, err = http.DefaultClient.Do(req)
			benchkit.Check(err)
			resp.Body.Close()
		}
		if resp.StatusCode != 201 {
			panic(fmt.Sprintf("%s: blob upload %d", t.name, resp.StatusCode))
		}
	}
	return d
}

func abs(t *target, loc string) string {
	if strings.HasPrefix(loc, "http") {
		return loc
	}
	return t.url + loc
}

func basicIf(t *target, req *http.Request) {
	if t.name == "coffer" {
		req.SetBasicAuth("admin", "bench-admin-password")
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[int(float64(len(ds)-1)*p)]
}

func pushImages(t *target, n int) (float64, time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	// The images are built (and their digests computed) before the clock
	// starts: random.Image gzips its layer lazily, and that client CPU
	// capped both servers at the same rate on two cores.
	imgs := make([]v1.Image, n)
	for i := range imgs {
		layer := static.NewLayer(randBytes(1<<20), types.OCILayer)
		img, err := mutate.AppendLayers(empty.Image, layer)
		benchkit.Check(err)
		img, err = mutate.Config(img, v1.Config{Labels: map[string]string{"n": strconv.Itoa(i)}})
		benchkit.Check(err)
		_, err = img.Digest()
		benchkit.Check(err)
		_, err = img.RawConfigFile()
		benchkit.Check(err)
		imgs[i] = img
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				img := imgs[i]
				ref := mustRef(t.url, fmt.Sprintf("bench/img:%d", i))
				t0 := time.Now()
				benchkit.Check(remote.Write(ref, img, auth(t)))
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), percentile(lat, 0.99)
}

func pullImages(t *target, n int) (float64, time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				t0 := time.Now()
				img, err := remote.Image(mustRef(t.url, fmt.Sprintf("bench/img:%d", i)), auth(t))
				benchkit.Check(err)
				layers, err := img.Layers()
				benchkit.Check(err)
				for _, l := range layers {
					rc, err := l.Compressed()
					benchkit.Check(err)
					io.Copy(io.Discard, rc)
					rc.Close()
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), percentile(lat, 0.99)
}

// bigUpload pushes a large blob as docker does: POST, one streamed PATCH, PUT.
func bigUpload(t *target, n int64) float64 {
	src := &gen{left: n, buf: randBytes(4 << 20)}
	h := sha256.New()
	// The digest must be known for the PUT: hash the same generated stream.
	hs := &gen{left: n, buf: src.buf}
	io.Copy(h, hs)
	d := fmt.Sprintf("sha256:%x", h.Sum(nil))
	t0 := time.Now()
	req, _ := http.NewRequest("POST", t.url+"/v2/bench/big/blobs/uploads/", nil)
	basicIf(t, req)
	resp, err := http.DefaultClient.Do(req)
	benchkit.Check(err)
	resp.Body.Close()
	loc := abs(t, resp.Header.Get("Location"))
	req, _ = http.NewRequest("PATCH", loc, src)
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/octet-stream")
	basicIf(t, req)
	resp, err = http.DefaultClient.Do(req)
	benchkit.Check(err)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		panic(fmt.Sprintf("%s: PATCH %d", t.name, resp.StatusCode))
	}
	loc = abs(t, resp.Header.Get("Location"))
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	req, _ = http.NewRequest("PUT", loc+sep+"digest="+d, nil)
	basicIf(t, req)
	resp, err = http.DefaultClient.Do(req)
	benchkit.Check(err)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		panic(fmt.Sprintf("%s: PUT %d", t.name, resp.StatusCode))
	}
	return float64(n) / (1 << 20) / time.Since(t0).Seconds()
}

func bigPull(t *target, n int64) float64 {
	d := putBlob(t, "bench/pull", randBytes(int(n)))
	get := func() float64 {
		req, _ := http.NewRequest("GET", t.url+"/v2/bench/pull/blobs/"+d, nil)
		basicIf(t, req)
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		benchkit.Check(err)
		got, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got != n {
			panic(fmt.Sprintf("%s: pulled %d of %d bytes", t.name, got, n))
		}
		return float64(n) / (1 << 20) / time.Since(t0).Seconds()
	}
	get() // warm
	v := []float64{get(), get(), get()}
	sort.Float64s(v)
	return v[1]
}

func sha256Speed() float64 {
	buf := make([]byte, 1<<20)
	h := sha256.New()
	t0 := time.Now()
	for i := 0; i < 512; i++ {
		h.Write(buf)
	}
	return 512 * float64(1<<20) / 1e6 / time.Since(t0).Seconds()
}

// loopbackSpeed is the floor of any HTTP pull on this machine: bytes moved
// over one loopback TCP connection, in MiB/s.
func loopbackSpeed(n int64) float64 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	benchkit.Check(err)
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.CopyN(c, &gen{left: n, buf: make([]byte, 1<<20)}, n)
		c.Close()
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	benchkit.Check(err)
	t0 := time.Now()
	got, _ := io.Copy(io.Discard, c)
	return float64(got) / (1 << 20) / time.Since(t0).Seconds()
}

// ---- helpers

type gen struct {
	left int64
	buf  []byte
	off  int
}

func (g *gen) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n := copy(p, g.buf[g.off:])
	g.off = (g.off + n) % len(g.buf)
	g.left -= int64(n)
	return n, nil
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func mustRef(base, repo string) name.Reference {
	r, err := name.ParseReference(strings.TrimPrefix(base, "http://")+"/"+repo, name.Insecure)
	benchkit.Check(err)
	return r
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	benchkit.Check(err)
	return a
}

func human(n int64) string {
	if n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

func rssKB(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == "VmRSS:" {
			v, _ := strconv.ParseInt(fs[1], 10, 64)
			return v
		}
	}
	return 0
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			return strings.TrimSpace(line[strings.Index(line, ":")+1:])
		}
	}
	return runtime.GOARCH
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	benchkit.Check(cmd.Run())
}
