// Command raw measures the raw format end to end against a real coffer
// process on loopback, next to the machine's own limits measured in the
// same run: Go's sha256 throughput and the disk's write throughput with
// fsync. It prints a Markdown table for docs/benchmarks.md.
//
//	go run ./bench/raw [-size 1GiB] [-rss-size 2GiB] [-dir /path/on/the/disk]
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"github.com/cofferhq/coffer/bench/internal/benchkit"
	"io"
	"math/rand/v2"
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
)

const pw = "bench-admin-password"

func main() {
	size := flag.Int64("size", 1<<30, "bytes for the upload and download measurements")
	rssSize := flag.Int64("rss-size", 2<<30, "bytes uploaded while sampling RSS")
	dir := flag.String("dir", "", "working directory on the disk to measure (default: a temp dir)")
	conc := flag.Int("c", 32, "concurrent connections for the small-file GET test")
	dur := flag.Duration("d", 10*time.Second, "duration of the small-file GET test")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "coffer-bench")
		benchkit.Check(err)
		defer os.RemoveAll(d)
		*dir = d
	}
	bin := filepath.Join(*dir, "coffer")
	run("go", "build", "-o", bin, "./cmd/coffer")

	// The disk of a VM varies from run to run: every figure that touches it
	// is the median of three.
	shaMBs := sha256Throughput(512 << 20)

	srv := start(bin, filepath.Join(*dir, "data"))
	defer srv.stop()

	// Upload of -size bytes with curl -T from a file, paired with a disk
	// probe right before it: this VM's disk varies by a factor of two from
	// one minute to the next (and rewrites freed blocks much faster than it
	// allocates new ones), so each upload is compared with a write of the
	// same file to a new file with fsync, made just before, and the median
	// of five pairs is reported. Content and paths differ every time (new
	// blobs, no dedupe); between pairs the server finishes the background
	// sha1/md5 of the previous upload, so each upload is measured alone.
	const pairs = 5
	var ups, disks, ratios []float64
	for i := 0; i < pairs; i++ {
		seed := uint64(101 + i)
		src := filepath.Join(*dir, fmt.Sprintf("src-%d", seed))
		writeSource(src, *size, seed)
		disk := copyFsync(src, filepath.Join(*dir, fmt.Sprintf("disk-probe-%d", i)))
		url := fmt.Sprintf("%s/repository/bench/big-%d.bin", srv.url, seed)
		t0 := time.Now()
		run("curl", "-sS", "-f", "-o", "/dev/null", "-u", "admin:"+pw, "-T", src, url)
		up := mb(*size) / time.Since(t0).Seconds()
		os.Remove(src)
		waitChecksums(srv.url, fmt.Sprintf("big-%d.bin", seed))
		ups, disks, ratios = append(ups, up), append(disks, disk), append(ratios, up/min(disk, shaMBs))
		fmt.Fprintf(os.Stderr, "pair %d: disk %.0f MB/s, upload %.0f MB/s\n", i+1, disk, up)
	}
	upMBs, diskMBs, ratio := med(ups), med(disks), med(ratios)
	upSecs := mb(*size) / upMBs

	// Download with curl.
	downSecs := median(3, func() float64 {
		t0 := time.Now()
		run("curl", "-sS", "-f", "-o", "/dev/null", srv.url+"/repository/bench/big-101.bin")
		return time.Since(t0).Seconds()
	})
	downMBs := mb(*size) / downSecs

	// Small-file GET rate.
	upload(srv.url+"/repository/bench/small.txt", 1024, 2)
	rps, how := smallGets(srv.url+"/repository/bench/small.txt", *conc, *dur)

	// Peak RSS while uploading -rss-size bytes.
	idle := rssKB(srv.cmd.Process.Pid)
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if r := rssKB(srv.cmd.Process.Pid); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	upload(srv.url+"/repository/bench/huge.bin", *rssSize, 3)
	close(stop)
	wg.Wait()

	fmt.Printf("\n### Raw format — %s, %d CPUs, %s\n\n", time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), cpuModel())
	fmt.Println("| measurement | result | reference |")
	fmt.Println("|---|---|---|")
	fmt.Printf("| machine: sha256 (Go crypto/sha256, one core) | %.0f MB/s | |\n", shaMBs)
	fmt.Printf("| machine: disk, copy of %s to a new file + fsync (median of %d) | %.0f MB/s | |\n", human(*size), pairs, diskMBs)
	fmt.Printf("| raw upload of %s (curl -T, sha256 inline, sha1/md5 after the commit, fsync; median of %d) | %.0f MB/s (%.1f s) | median of the pairs' upload ÷ min(sha256, disk just before): %.0f %%; target ≥ 80 %% |\n",
		human(*size), pairs, upMBs, upSecs, 100*ratio)
	fmt.Printf("| raw download of %s (curl, median of 3) | %.0f MB/s (%.1f s) | |\n", human(*size), downMBs, downSecs)
	fmt.Printf("| GET of a 1 KiB file, %d connections, %s (%s) | %.0f req/s | |\n", *conc, *dur, how, rps)
	fmt.Printf("| RSS idle → peak while uploading %s | %.0f MiB → %.0f MiB | target: flat, < 100 MB |\n",
		human(*rssSize), float64(idle)/1024, float64(peak.Load())/1024)
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	benchkit.Check(cmd.Run())
}

func mb(n int64) float64 { return float64(n) / 1e6 }

func human(n int64) string {
	if n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

func sha256Throughput(n int) float64 {
	buf := make([]byte, 1<<20)
	h := sha256.New()
	t0 := time.Now()
	for i := 0; i < n/len(buf); i++ {
		h.Write(buf)
	}
	return mb(int64(n)) / time.Since(t0).Seconds()
}

func fill(b []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

type server struct {
	cmd *exec.Cmd
	url string
}

func start(bin, data string) *server {
	addrFile := data + ".addr"
	os.Remove(addrFile)
	cfg := data + ".yaml"
	benchkit.Check(os.WriteFile(cfg, []byte("log: {level: warn}\nrepositories:\n  - {key: bench, format: raw, kind: local, tier: dev, anonymous_read: true}\n"), 0o644))
	cmd := exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--config", cfg)
	cmd.Env = append(os.Environ(), "COFFER_ADMIN_PASSWORD="+pw)
	cmd.Stderr = os.Stderr
	benchkit.Check(cmd.Start())
	for i := 0; i < 300; i++ {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return &server{cmd: cmd, url: "http://" + string(b)}
		}
		time.Sleep(50 * time.Millisecond)
	}
	panic("coffer did not start")
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	s.cmd.Wait()
}

// genReader produces n pseudo-random bytes without holding them.
type genReader struct {
	left int64
	buf  []byte
	off  int
}

func newGen(n int64, seed uint64) *genReader {
	g := &genReader{left: n, buf: make([]byte, 4<<20)}
	fill(g.buf, seed)
	return g
}

func (g *genReader) Read(p []byte) (int, error) {
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

func upload(url string, n int64, seed uint64) {
	req, err := http.NewRequest(http.MethodPut, url, newGen(n, seed))
	benchkit.Check(err)
	req.ContentLength = n
	req.SetBasicAuth("admin", pw)
	resp, err := http.DefaultClient.Do(req)
	benchkit.Check(err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		panic(fmt.Sprintf("upload: %d %s", resp.StatusCode, body))
	}
}

func writeSource(path string, n int64, seed uint64) {
	f, err := os.Create(path)
	benchkit.Check(err)
	_, err = io.Copy(f, newGen(n, seed))
	benchkit.Check(err)
	benchkit.Check(f.Sync()) // its writeback must not compete with the measured upload
	benchkit.Check(f.Close())
}

// waitChecksums waits until the server has filled in the md5 of an asset.
func waitChecksums(base, path string) {
	for i := 0; i < 600; i++ {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/repositories/bench/artifacts/"+path, nil)
		req.SetBasicAuth("admin", pw)
		resp, err := http.DefaultClient.Do(req)
		benchkit.Check(err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(b, []byte(`"md5"`)) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	panic("checksums never filled in")
}

// smallGets measures GET req/s with wrk when installed (a C client costs the
// shared CPUs less), else with Go's client.
func smallGets(url string, conc int, d time.Duration) (float64, string) {
	if path, err := exec.LookPath("wrk"); err == nil {
		out, err := exec.Command(path, "-t2", fmt.Sprintf("-c%d", conc), fmt.Sprintf("-d%ds", int(d.Seconds())), url).CombinedOutput()
		benchkit.Check(err)
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "Requests/sec:" {
				v, _ := strconv.ParseFloat(f[1], 64)
				return v, "wrk"
			}
		}
		panic("wrk output: " + string(out))
	}
	tr := &http.Transport{MaxIdleConnsPerHost: conc}
	client := &http.Client{Transport: tr}
	var count atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				resp, err := client.Get(url)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					count.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(count.Load()) / d.Seconds(), "Go client"
}

func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
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

func median(n int, f func() float64) float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = f()
	}
	return med(v)
}

func med(v []float64) float64 {
	v = append([]float64(nil), v...)
	sort.Float64s(v)
	return v[len(v)/2]
}

// copyFsync copies src to a new file dst, fsyncs it, and returns MB/s.
func copyFsync(src, dst string) float64 {
	in, err := os.Open(src)
	benchkit.Check(err)
	defer in.Close()
	out, err := os.Create(dst)
	benchkit.Check(err)
	t0 := time.Now()
	n, err := io.CopyBuffer(out, in, make([]byte, 1<<20))
	benchkit.Check(err)
	benchkit.Check(out.Sync())
	d := time.Since(t0)
	benchkit.Check(out.Close())
	return mb(n) / d.Seconds()
}
