// Command pypi measures the PyPI format against a real coffer process on
// loopback, next to a static PEP 503 tree served by python3 -m http.server
// measured in the same run (the floor of what any index costs):
//
//   - simple page GET req/s (HTML and PEP 691 JSON) for a project of 500 files;
//   - file GET: req/s for a small wheel, MB/s for a large one;
//   - pip install of 20 packages with a cold pip cache (median of 5).
//
// It prints a Markdown table for docs/benchmarks.md.
//
//	go run ./bench/pypi [-c 32] [-d 10s] [-runs 5]
package main

import (
	"archive/zip"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"github.com/cofferhq/coffer/bench/internal/benchkit"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

const pw = "bench-admin-password"

func main() {
	conc := flag.Int("c", 32, "concurrent connections for the GET measurements")
	dur := flag.Duration("d", 10*time.Second, "duration of each GET measurement")
	runs := flag.Int("runs", 5, "pip install runs (the median is reported)")
	bigSize := flag.Int64("big", 256<<20, "bytes of the large wheel for the download throughput")
	flag.Parse()
	dir, err := os.MkdirTemp("", "coffer-bench-pypi")
	benchkit.Check(err)
	defer os.RemoveAll(dir)
	for _, tool := range []string{"wrk", "/usr/bin/python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "bench/pypi needs %s (apt-get install -y wrk python3-venv)\n", tool)
			os.Exit(1)
		}
	}

	load0 := benchkit.Loadavg()
	bin := filepath.Join(dir, "coffer")
	run("go", "build", "-o", bin, "./cmd/coffer")
	srv := start(bin, filepath.Join(dir, "data"))
	defer srv.stop()
	static := filepath.Join(dir, "static")

	// A project of 500 files: 250 releases, a wheel and an sdist each.
	t0 := time.Now()
	var files []dist
	for i := 0; i < 250; i++ {
		v := fmt.Sprintf("1.%d.0", i)
		files = append(files, makeWheel("bench-big", v, nil, 2<<10, uint64(i)), makeSdist("bench-big", v, uint64(i)))
	}
	for _, f := range files {
		uploadDist(srv.url, f)
	}
	upSecs := time.Since(t0).Seconds()
	writeStatic(static, "bench-big", files)

	// A large wheel for the download throughput.
	big := makeWheel("bench-large", "1.0.0", nil, *bigSize, 7)
	uploadDist(srv.url, big)
	writeStatic(static, "bench-large", []dist{big})
	small := files[0]

	// 20 packages for pip: an application and 19 libraries, 3 versions each.
	var app []string
	for i := 1; i <= 19; i++ {
		name := fmt.Sprintf("bench-lib-%02d", i)
		var ds []dist
		for _, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
			d := makeWheel(name, v, nil, 4<<10, uint64(i*10+len(v)))
			uploadDist(srv.url, d)
			ds = append(ds, d)
		}
		writeStatic(static, name, ds)
		app = append(app, name+">=1.1")
	}
	appDist := makeWheel("bench-app", "1.0.0", app, 4<<10, 99)
	uploadDist(srv.url, appDist)
	writeStatic(static, "bench-app", []dist{appDist})

	py := startStatic(static)
	defer py.Process.Kill()
	staticURL := "http://" + staticAddr

	base := srv.url + "/repository/bench/"
	page := base + "simple/bench-big/"
	htmlSize, jsonSize, gzSize := pageSize(page, "text/html", ""), pageSize(page, "application/vnd.pypi.simple.v1+json", ""),
		pageSize(page, "application/vnd.pypi.simple.v1+json", "gzip")
	htmlRPS := wrk(page, *conc, *dur, "Accept: text/html")
	jsonRPS := wrk(page, *conc, *dur, "Accept: application/vnd.pypi.simple.v1+json")
	gzipRPS := wrk(page, *conc, *dur, "Accept: application/vnd.pypi.simple.v1+json", "Accept-Encoding: gzip")
	staticPageRPS := wrk(staticURL+"/simple/bench-big/", *conc, *dur, "")
	smallRPS := wrk(base+small.path(), *conc, *dur, "")
	staticSmallRPS := wrk(staticURL+"/"+small.path(), *conc, *dur, "")
	waitChecksums(srv.url, big.path())
	// The machine is shared: Coffer and the static server take turns, so
	// that a change of load hits both.
	bigMBs, staticBigMBs := benchkit.Alternate(5, func() float64 { return download(base + big.path()) },
		func() float64 { return download(staticURL + "/" + big.path()) })

	venv := filepath.Join(dir, "venv")
	run("/usr/bin/python3", "-m", "venv", venv)
	pip := filepath.Join(venv, "bin", "pip")
	pipSecs, staticPipSecs := benchkit.Alternate(*runs, func() float64 { return pipInstall(pip, dir, base+"simple/") },
		func() float64 { return pipInstall(pip, dir, staticURL+"/simple/") })

	fmt.Printf("\nMachine: %s, %d CPUs, %s; %s; load average at the start %s, at the end %s\n\n", benchkit.CPUModel(), runtime.NumCPU(), runtime.Version(),
		time.Now().UTC().Format("2006-01-02"), load0, benchkit.Loadavg())
	fmt.Println("| measurement | Coffer | static PEP 503 tree (python3 -m http.server) | Coffer ÷ static |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| simple page of a 500-file project, HTML, %s (%d connections, %s, wrk) | %.0f req/s | %.0f req/s | %.1f× |\n", human(htmlSize), *conc, *dur, htmlRPS, staticPageRPS, htmlRPS/staticPageRPS)
	fmt.Printf("| same page, PEP 691 JSON, %s | %.0f req/s | (no JSON) | %.1f× the static HTML |\n", human(jsonSize), jsonRPS, jsonRPS/staticPageRPS)
	fmt.Printf("| same page, JSON gzipped (what pip asks for), %s | %.0f req/s | (no gzip) | %.1f× the static HTML |\n", human(gzSize), gzipRPS, gzipRPS/staticPageRPS)
	fmt.Printf("| file GET, %s wheel | %.0f req/s | %.0f req/s | %.1f× |\n", human(small.size()), smallRPS, staticSmallRPS, smallRPS/staticSmallRPS)
	fmt.Printf("| file GET, %s wheel (curl, median of 5) | %.0f MB/s | %.0f MB/s | %.1f× |\n", human(big.size()), bigMBs, staticBigMBs, bigMBs/staticBigMBs)
	fmt.Printf("| pip install of 20 packages, cold cache (pip %s, median of %d, taking turns) | %.2f s | %.2f s | %.2f× the time |\n", pipVersion(pip), *runs, pipSecs, staticPipSecs, pipSecs/staticPipSecs)
	fmt.Printf("| upload of the 500 files (legacy API, one at a time, durable) | %.1f s (%.0f files/s) | | |\n", upSecs, float64(len(files))/upSecs)
}

// dist is a distribution file in memory.
type dist struct {
	project, version, filename string
	body                       []byte
	metadata                   string
}

func (d dist) size() int64 { return int64(len(d.body)) }

func (d dist) path() string {
	return "packages/" + d.project + "/" + d.version + "/" + d.filename
}

func metadata(name, version string, requires []string) string {
	s := "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\nSummary: benchmark package\nRequires-Python: >=3.7\n"
	for _, r := range requires {
		s += "Requires-Dist: " + r + "\n"
	}
	return s + "\nBenchmark package.\n"
}

// makeWheel builds a pure-Python wheel pip can install, with a module and
// a data file of about payload random bytes (stored, not compressed).
func makeWheel(name, version string, requires []string, payload int64, seed uint64) dist {
	mod := strings.ReplaceAll(name, "-", "_")
	di := mod + "-" + version + ".dist-info/"
	md := metadata(name, version, requires)
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	var record strings.Builder
	add := func(path string, body []byte, method uint16) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: path, Method: method})
		benchkit.Check(err)
		w.Write(body)
		s := sha256.Sum256(body)
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", path, base64.RawURLEncoding.EncodeToString(s[:]), len(body))
	}
	add(mod+"/__init__.py", []byte("VERSION = '"+version+"'\n"), zip.Deflate)
	data := make([]byte, payload)
	r := rand.New(rand.NewPCG(seed, 42))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	add(mod+"/data.bin", data, zip.Store)
	add(di+"METADATA", []byte(md), zip.Deflate)
	add(di+"WHEEL", []byte("Wheel-Version: 1.0\nGenerator: coffer-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"), zip.Deflate)
	record.WriteString(di + "RECORD,,\n")
	w, err := zw.Create(di + "RECORD")
	benchkit.Check(err)
	io.WriteString(w, record.String())
	benchkit.Check(zw.Close())
	return dist{project: name, version: version, filename: mod + "-" + version + "-py3-none-any.whl", body: b.Bytes(), metadata: md}
}

func makeSdist(name, version string, seed uint64) dist {
	// A zip sdist keeps this program free of tar code; the index treats both alike.
	top := name + "-" + version + "/"
	md := metadata(name, version, nil)
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for p, c := range map[string]string{top + "PKG-INFO": md, top + "setup.py": "from setuptools import setup\nsetup()\n"} {
		w, _ := zw.Create(p)
		io.WriteString(w, c)
	}
	benchkit.Check(zw.Close())
	return dist{project: name, version: version, filename: name + "-" + version + ".zip", body: b.Bytes(), metadata: md}
}

func uploadDist(base string, d dist) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	kind := "sdist"
	if strings.HasSuffix(d.filename, ".whl") {
		kind = "bdist_wheel"
	}
	s := sha256.Sum256(d.body)
	m := md5.Sum(d.body)
	for _, kv := range [][2]string{{":action", "file_upload"}, {"protocol_version", "1"}, {"name", d.project}, {"version", d.version},
		{"filetype", kind}, {"sha256_digest", hex.EncodeToString(s[:])}, {"md5_digest", hex.EncodeToString(m[:])}} {
		mw.WriteField(kv[0], kv[1])
	}
	fw, _ := mw.CreateFormFile("content", d.filename)
	fw.Write(d.body)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, base+"/repository/bench/", &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.SetBasicAuth("admin", pw)
	resp, err := http.DefaultClient.Do(req)
	benchkit.Check(err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		panic(fmt.Sprintf("upload %s: %s %s", d.filename, resp.Status, body))
	}
}

// writeStatic adds a project to a static PEP 503 tree (what a
// dir2pi-style mirror serves): simple/<project>/index.html and the files.
func writeStatic(root, project string, ds []dist) {
	var page strings.Builder
	page.WriteString("<!DOCTYPE html>\n<html><head><title>Links for " + project + "</title></head><body><h1>Links for " + project + "</h1>\n")
	for _, d := range ds {
		p := filepath.Join(root, d.path())
		benchkit.Check(os.MkdirAll(filepath.Dir(p), 0o755))
		benchkit.Check(os.WriteFile(p, d.body, 0o644))
		s := sha256.Sum256(d.body)
		fmt.Fprintf(&page, "<a href=\"../../%s#sha256=%s\" data-requires-python=\"&gt;=3.7\">%s</a><br/>\n", d.path(), hex.EncodeToString(s[:]), d.filename)
	}
	page.WriteString("</body></html>\n")
	idx := filepath.Join(root, "simple", project, "index.html")
	benchkit.Check(os.MkdirAll(filepath.Dir(idx), 0o755))
	benchkit.Check(os.WriteFile(idx, []byte(page.String()), 0o644))
}

var staticAddr string

func startStatic(root string) *exec.Cmd {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	benchkit.Check(err)
	staticAddr = l.Addr().String()
	l.Close()
	port := staticAddr[strings.LastIndex(staticAddr, ":")+1:]
	cmd := exec.Command("/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", root, port)
	benchkit.Check(cmd.Start())
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + staticAddr + "/simple/"); err == nil {
			resp.Body.Close()
			return cmd
		}
		time.Sleep(50 * time.Millisecond)
	}
	panic("python3 -m http.server did not start")
}

func wrk(url string, conc int, d time.Duration, headers ...string) float64 {
	args := []string{"-t2", fmt.Sprintf("-c%d", conc), fmt.Sprintf("-d%ds", int(d.Seconds()))}
	for _, h := range headers {
		if h != "" {
			args = append(args, "-H", h)
		}
	}
	header := strings.Join(headers, "; ")
	out, err := exec.Command("wrk", append(args, url)...).CombinedOutput()
	benchkit.Check(err)
	if strings.Contains(string(out), "Non-2xx") {
		panic("wrk saw errors for " + url + ":\n" + string(out))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "Requests/sec:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			fmt.Fprintf(os.Stderr, "%s %s: %.0f req/s\n", url, header, v)
			return v
		}
	}
	panic("wrk output: " + string(out))
}

// pageSize is the size of a page as sent.
func pageSize(url, accept, encoding string) int64 {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", accept)
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	benchkit.Check(err)
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return n
}

func download(url string) float64 {
	t0 := time.Now()
	out, err := exec.Command("curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download}", url).Output()
	benchkit.Check(err)
	n, _ := strconv.ParseFloat(string(out), 64)
	return n / 1e6 / time.Since(t0).Seconds()
}

// pipInstall installs bench-app and its 19 dependencies into a fresh
// directory with no pip cache, and returns the seconds it took.
func pipInstall(pip, dir, index string) float64 {
	target, err := os.MkdirTemp(dir, "target")
	benchkit.Check(err)
	defer os.RemoveAll(target)
	cmd := exec.Command(pip, "install", "--no-cache-dir", "--target", target, "--index-url", index, "bench-app")
	cmd.Env = cleanPipEnv(dir)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	secs := time.Since(t0).Seconds()
	if err != nil {
		panic(fmt.Sprintf("pip install from %s: %v\n%s", index, err, out))
	}
	if n := strings.Count(string(out), "Downloading "); n != 20 {
		panic(fmt.Sprintf("pip downloaded %d files, want 20:\n%s", n, out))
	}
	fmt.Fprintf(os.Stderr, "pip install from %s: %.2f s\n", index, secs)
	return secs
}

func cleanPipEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(strings.ToUpper(k), "PIP_") || strings.HasSuffix(strings.ToUpper(k), "_PROXY") || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "PIP_CONFIG_FILE=/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1")
}

func pipVersion(pip string) string {
	out, err := exec.Command(pip, "--version").Output()
	benchkit.Check(err)
	return strings.Fields(string(out))[1]
}

type server struct {
	cmd *exec.Cmd
	url string
}

func start(bin, data string) *server {
	addrFile := data + ".addr"
	cfg := data + ".yaml"
	benchkit.Check(os.WriteFile(cfg, []byte("log: {level: warn}\nrepositories:\n  - {key: bench, format: pypi, kind: local, tier: dev, anonymous_read: true}\n"), 0o644))
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

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	benchkit.Check(cmd.Run())
}

func human(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// alternate runs a and b in turns n times each and returns their medians.

// waitChecksums waits until the background filler has computed the sha1
// of a large upload (it would compete with the measurement).
func waitChecksums(base, path string) {
	for i := 0; i < 600; i++ {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/repositories/bench/artifacts/"+path, nil)
		req.SetBasicAuth("admin", pw)
		resp, err := http.DefaultClient.Do(req)
		benchkit.Check(err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(b, []byte(`"sha1": "`)) || bytes.Contains(b, []byte(`"sha1":"`)) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	panic("checksums never filled in: " + path)
}

// loadavg is the 1-minute load average: this machine's cores are shared,
// and the figures mean little without it.
