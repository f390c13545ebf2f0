// Command npm measures Coffer's npm format against Verdaccio and against
// the floor of the same packuments and tarballs served as static files,
// all in the same run on this machine: packument GETs per second (full and
// abbreviated), tarball GETs per second (wrk, rotating over every package),
// and the wall time of a cold-cache npm install of a project with ~20
// dependencies (median of -installs runs). It prints Markdown for
// docs/benchmarks.md.
//
//	go run ./bench/npm [-d 8s] [-c 32] [-runs 3] [-installs 5]
//
// Verdaccio (6.8.0, no uplinks, htpasswd) is installed into a cache
// directory by scripts/install-npm-clients.sh --verdaccio.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/cofferhq/coffer/bench/internal/benchkit"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/format/npm/npmtest"
)

const pw = "bench-admin-password"

var (
	dur      = flag.Duration("d", 8*time.Second, "duration of each wrk measurement")
	conc     = flag.Int("c", 32, "wrk connections")
	runs     = flag.Int("runs", 3, "wrk measurements per figure (median)")
	installs = flag.Int("installs", 5, "cold installs per server (median)")
	keep     = flag.Bool("keep", false, "keep the work directory")
)

func main() {
	flag.Parse()
	if _, err := exec.LookPath("wrk"); err != nil {
		fail("wrk is required (apt-get install -y wrk)")
	}
	dir, err := os.MkdirTemp("", "coffer-npm-bench")
	check(err)
	if !*keep {
		defer os.RemoveAll(dir)
	}
	loadStart := loadavg()
	out, err := exec.Command("./scripts/install-npm-clients.sh", "--verdaccio").Output()
	check(err)
	tools := strings.TrimSpace(string(out))

	bin := filepath.Join(dir, "coffer")
	run("go", "build", "-o", bin, "./cmd/coffer")
	pkgs := append(npmtest.Upstream(), npmtest.Local()...)

	coffer := startCoffer(bin, filepath.Join(dir, "coffer-data"))
	defer coffer.stop()
	for _, p := range pkgs {
		check(npmtest.Publish(http.DefaultClient, coffer.registry, "admin", pw, p, "latest"))
	}
	verdaccio := startVerdaccio(filepath.Join(tools, "verdaccio"), filepath.Join(dir, "verdaccio"))
	defer verdaccio.stop()
	token := verdaccioUser(verdaccio.registry)
	for _, p := range pkgs {
		check(npmtest.Publish(http.DefaultClient, verdaccio.registry, "", token, p, "latest"))
	}
	static := startStatic(coffer.registry, filepath.Join(dir, "static"), pkgs)
	defer static.stop()

	var names []string
	seen := map[string]bool{}
	for _, p := range pkgs {
		if !seen[p.Name] {
			seen[p.Name] = true
			names = append(names, p.Name)
		}
	}
	servers := []*server{coffer, verdaccio, static}
	type figure struct{ full, abbr, tgz, install float64 }
	figs := map[string]*figure{}
	for _, s := range servers {
		figs[s.name] = &figure{}
		checkServes(s, names, pkgs)
	}
	const abbrAccept = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
	for _, s := range servers {
		f := figs[s.name]
		f.full = medianOf(*runs, func() float64 { return wrk(s, dir, packumentPaths(s, names), "application/json") })
		f.abbr = medianOf(*runs, func() float64 { return wrk(s, dir, packumentPaths(s, names), abbrAccept) })
		f.tgz = medianOf(*runs, func() float64 { return wrk(s, dir, tarballPaths(s, pkgs), "*/*") })
		fmt.Fprintf(os.Stderr, "%s: full %.0f/s, abbreviated %.0f/s, tarballs %.0f/s\n", s.name, f.full, f.abbr, f.tgz)
	}
	// Cold installs, interleaved so that the machine's drift hits all alike.
	times := map[string][]float64{}
	for i := 0; i < *installs; i++ {
		for _, s := range servers {
			d := coldInstall(s, filepath.Join(dir, fmt.Sprintf("install-%s-%d", s.name, i)))
			times[s.name] = append(times[s.name], d)
			fmt.Fprintf(os.Stderr, "install %d %s: %.2fs\n", i+1, s.name, d)
		}
	}
	for _, s := range servers {
		figs[s.name].install = median(times[s.name])
	}

	loadEnd := loadavg()
	c, v, st := figs["coffer"], figs["verdaccio"], figs["static"]
	fmt.Printf("## Issue 4 — npm format (%s)\n\n", time.Now().Format("2006-01-02"))
	fmt.Printf("Machine: %d vCPUs (%s), %s; Go %s, node %s, npm %s; load average %s at the start, %s at the end.\n"+
		"wrk -t2 -c%d, %s per run, median of %d runs, every request rotating over the %d packages (%d names).\n\n",
		runtime.NumCPU(), benchkit.CPUModel(), osName(), strings.TrimPrefix(runtime.Version(), "go"), version("node"), version("npm"),
		loadStart, loadEnd, *conc, *dur, *runs, len(pkgs), len(names))
	fmt.Println("| measurement | Coffer | Verdaccio 6.8.0 | static files | Coffer ÷ Verdaccio | target |")
	fmt.Println("|---|---|---|---|---|---|")
	row := func(what string, c, v, st float64, target string) {
		fmt.Printf("| %s | %.0f | %.0f | %.0f | %.1f× | %s |\n", what, c, v, st, c/v, target)
	}
	row("packument GET, full (req/s)", c.full, v.full, st.full, "≥ 5×")
	row("packument GET, abbreviated (req/s)", c.abbr, v.abbr, st.abbr, "≥ 5×")
	row("tarball GET (req/s)", c.tgz, v.tgz, st.tgz, "≥ 5×")
	fmt.Printf("| cold `npm install`, %d packages (s, median of %d) | %.2f | %.2f | %.2f | Coffer ÷ static: %.2f× | ≤ 1.3× static |\n",
		npmtest.InstalledCount, *installs, c.install, v.install, st.install, c.install/st.install)
	fmt.Printf("\nInstalls, each run (s): Coffer %s; Verdaccio %s; static %s.\n",
		fmtList(times["coffer"]), fmtList(times["verdaccio"]), fmtList(times["static"]))
}

type server struct {
	name     string
	registry string // ends in "/"
	cmd      *exec.Cmd
	srv      *http.Server
}

func (s *server) stop() {
	if s.srv != nil {
		s.srv.Close()
	}
	if s.cmd != nil {
		s.cmd.Process.Signal(os.Interrupt)
		s.cmd.Wait()
	}
}

func startCoffer(bin, data string) *server {
	check(os.MkdirAll(data, 0o755))
	addrFile := filepath.Join(data, "addr")
	cfg := filepath.Join(data, "coffer.yaml")
	check(os.WriteFile(cfg, []byte(`log: {level: warn}
repositories:
  - {key: npm-bench, format: npm, kind: local, tier: release, anonymous_read: true}
`), 0o644))
	cmd := exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--config", cfg)
	cmd.Env = append(os.Environ(), "COFFER_ADMIN_PASSWORD="+pw)
	cmd.Stderr = os.Stderr
	check(cmd.Start())
	for i := 0; i < 300; i++ {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return &server{name: "coffer", registry: "http://" + string(b) + "/repository/npm-bench/", cmd: cmd}
		}
		time.Sleep(50 * time.Millisecond)
	}
	fail("coffer did not start")
	return nil
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().String()
}

func startVerdaccio(install, dir string) *server {
	check(os.MkdirAll(filepath.Join(dir, "storage"), 0o755))
	addr := freePort()
	cfg := filepath.Join(dir, "config.yaml")
	check(os.WriteFile(cfg, []byte(fmt.Sprintf(`storage: %s
auth:
  htpasswd:
    file: %s
    max_users: 100
uplinks: {}
packages:
  '**':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
server:
  keepAliveTimeout: 60
web:
  enable: false
log: {type: stdout, format: pretty, level: warn}
max_body_size: 100mb
`, filepath.Join(dir, "storage"), filepath.Join(dir, "htpasswd"))), 0o644))
	cmd := exec.Command(filepath.Join(install, "node_modules", ".bin", "verdaccio"), "--config", cfg, "--listen", "http://"+addr)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	check(cmd.Start())
	s := &server{name: "verdaccio", registry: "http://" + addr + "/", cmd: cmd}
	for i := 0; i < 600; i++ {
		if resp, err := http.Get(s.registry + "-/ping"); err == nil {
			resp.Body.Close()
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	fail("verdaccio did not start")
	return nil
}

// verdaccioUser registers a user through npm's CouchDB flow and returns
// its token.
func verdaccioUser(registry string) string {
	body := `{"_id":"org.couchdb.user:bench","name":"bench","password":"bench-password","type":"user","roles":[]}`
	req, _ := http.NewRequest(http.MethodPut, registry+"-/user/org.couchdb.user:bench", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	check(err)
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	b, _ := io.ReadAll(resp.Body)
	if json.Unmarshal(b, &out) != nil || out.Token == "" {
		fail("verdaccio adduser: " + resp.Status + " " + string(b))
	}
	return out.Token
}

// startStatic writes every packument (full and abbreviated, as Coffer
// generates them, tarball URLs pointing at the static server) and tarball
// to files and serves them with Go's http.ServeContent: the floor.
func startStatic(from, dir string, pkgs []npmtest.Package) *server {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	base := "http://" + l.Addr().String() + "/"
	for _, p := range pkgs {
		esc := npmtest.EscapeName(p.Name)
		for kind, accept := range map[string]string{"full": "application/json", "abbr": "application/vnd.npm.install-v1+json"} {
			b := getBody(from+esc, accept)
			b = bytes.ReplaceAll(b, []byte(from), []byte(base))
			writeFile(filepath.Join(dir, "packuments", kind, esc), b)
		}
		file := tarballName(p)
		writeFile(filepath.Join(dir, "tarballs", p.Name, "-", file), p.Tarball())
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.EscapedPath(), "/")
		var file string
		if i := strings.Index(path, "/-/"); i >= 0 {
			name, _ := url.PathUnescape(path[:i])
			file = filepath.Join(dir, "tarballs", name, "-", filepath.Base(path[i+3:]))
			w.Header().Set("Content-Type", "application/octet-stream")
		} else {
			kind := "full"
			if strings.Contains(r.Header.Get("Accept"), "application/vnd.npm.install-v1+json") {
				kind = "abbr"
			}
			name, _ := url.PathUnescape(path)
			file = filepath.Join(dir, "packuments", kind, npmtest.EscapeName(name))
			w.Header().Set("Content-Type", "application/json")
		}
		f, err := os.Open(file)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		http.ServeContent(w, r, "", st.ModTime(), f)
	})
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	return &server{name: "static", registry: base, srv: srv}
}

func tarballName(p npmtest.Package) string {
	return p.Name[strings.LastIndex(p.Name, "/")+1:] + "-" + p.Version + ".tgz"
}

func packumentPaths(s *server, names []string) []string {
	prefix := strings.TrimPrefix(s.registry, "http://")
	prefix = prefix[strings.Index(prefix, "/"):]
	var out []string
	for _, n := range names {
		out = append(out, prefix+npmtest.EscapeName(n))
	}
	return out
}

func tarballPaths(s *server, pkgs []npmtest.Package) []string {
	prefix := strings.TrimPrefix(s.registry, "http://")
	prefix = prefix[strings.Index(prefix, "/"):]
	var out []string
	for _, p := range pkgs {
		out = append(out, prefix+p.Name+"/-/"+tarballName(p))
	}
	return out
}

// checkServes makes sure every measured URL answers 200 with the right
// content before anything is timed.
func checkServes(s *server, names []string, pkgs []npmtest.Package) {
	host := strings.TrimSuffix(s.registry[:strings.Index(s.registry[7:], "/")+7], "/")
	for _, p := range packumentPaths(s, names) {
		for _, accept := range []string{"application/json", "application/vnd.npm.install-v1+json"} {
			b := getBody(host+p, accept)
			var doc struct {
				Versions map[string]any `json:"versions"`
			}
			if json.Unmarshal(b, &doc) != nil || len(doc.Versions) == 0 {
				fail(fmt.Sprintf("%s: %s is not a packument: %.200s", s.name, p, b))
			}
		}
	}
	for i, p := range tarballPaths(s, pkgs) {
		if !bytes.Equal(getBody(host+p, "*/*"), pkgs[i].Tarball()) {
			fail(fmt.Sprintf("%s: %s is not the tarball", s.name, p))
		}
	}
}

func getBody(u, accept string) []byte {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	check(err)
	if resp.StatusCode != http.StatusOK {
		fail(fmt.Sprintf("GET %s: %s %.200s", u, resp.Status, b))
	}
	return b
}

// wrk measures req/s over paths, each connection rotating through them.
func wrk(s *server, dir string, paths []string, accept string) float64 {
	var lua strings.Builder
	lua.WriteString("local paths = {")
	for _, p := range paths {
		lua.WriteString(strconv.Quote(p) + ",")
	}
	lua.WriteString("}\nlocal i = 0\nwrk.headers[\"Accept\"] = " + strconv.Quote(accept) + "\n")
	lua.WriteString("request = function()\n  i = i + 1\n  return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n")
	script := filepath.Join(dir, "rotate.lua")
	writeFile(script, []byte(lua.String()))
	host := s.registry[:strings.Index(s.registry[7:], "/")+7]
	out, err := exec.Command("wrk", "-t2", fmt.Sprintf("-c%d", *conc), fmt.Sprintf("-d%ds", int(dur.Seconds())), "-s", script, host).CombinedOutput()
	check(err)
	if strings.Contains(string(out), "Non-2xx") || strings.Contains(string(out), "Socket errors") {
		fail(fmt.Sprintf("%s: wrk saw errors:\n%s", s.name, out))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "Requests/sec:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	fail("wrk output: " + string(out))
	return 0
}

// coldInstall times npm install of the fixture project with an empty cache
// and no lockfile.
func coldInstall(s *server, dir string) float64 {
	deps, _ := json.Marshal(npmtest.ProjectDependencies())
	writeFile(filepath.Join(dir, "package.json"), []byte(`{"name":"bench","version":"1.0.0","private":true,"dependencies":`+string(deps)+`}`))
	writeFile(filepath.Join(dir, ".npmrc"), []byte("registry="+s.registry+"\n"))
	cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--no-update-notifier", "--cache", filepath.Join(dir, ".cache"),
		"--userconfig", filepath.Join(dir, ".npmrc"))
	cmd.Dir = dir
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0).Seconds()
	if err != nil {
		fail(fmt.Sprintf("npm install from %s: %v\n%s", s.name, err, out))
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "node_modules"))
	if len(entries) < 10 {
		fail(fmt.Sprintf("npm install from %s installed too little:\n%s", s.name, out))
	}
	os.RemoveAll(dir)
	return d
}

func medianOf(n int, f func() float64) float64 {
	var xs []float64
	for i := 0; i < n; i++ {
		xs = append(xs, f())
	}
	return median(xs)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func fmtList(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(parts, ", ")
}

func writeFile(path string, b []byte) {
	check(os.MkdirAll(filepath.Dir(path), 0o755))
	check(os.WriteFile(path, b, 0o644))
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Run())
}

func version(tool string) string {
	out, err := exec.Command(tool, "--version").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func osName() string {
	b, _ := os.ReadFile("/etc/os-release")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

func check(err error) {
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "bench/npm:", msg)
	os.Exit(1)
}
