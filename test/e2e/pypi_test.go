package e2e

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// PyPI repositories with the real clients: twine uploads, pip (in fresh
// virtual environments) installs, downloads and lists versions, through a
// local, a remote (a second Coffer on loopback as its upstream) and a
// virtual repository. The packages are built offline by python -m build.

// systemPython is Debian's interpreter, which has build, venv and twine's
// modules (a pyenv shim in PATH may not).
const systemPython = "/usr/bin/python3"

// requirePythonTools fails (never skips) when the clients are missing:
// .ci/run installs them.
func requirePythonTools(t *testing.T) {
	t.Helper()
	var missing []string
	for _, m := range []string{"venv", "build", "twine"} {
		if err := exec.Command(systemPython, "-c", "import "+m).Run(); err != nil {
			missing = append(missing, m)
		}
	}
	if _, err := exec.LookPath("twine"); err != nil {
		missing = append(missing, "twine (command)")
	}
	if len(missing) > 0 {
		t.Fatalf("the PyPI end-to-end tests need %s; install them with: apt-get install -y twine python3-build python3-venv (.ci/run does)", strings.Join(missing, ", "))
	}
}

// pyEnv is a clean environment for pip and twine: no user or machine pip
// configuration (find-links, caches, indexes), no proxies, no keyring.
func pyEnv(home string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		ku := strings.ToUpper(k)
		if strings.HasPrefix(ku, "PIP_") || strings.HasPrefix(ku, "PYTHON") || strings.HasPrefix(ku, "TWINE_") ||
			strings.HasSuffix(ku, "_PROXY") || ku == "HOME" || ku == "NETRC" || ku == "VIRTUAL_ENV" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, append([]string{
		"HOME=" + home,
		"PIP_CONFIG_FILE=/dev/null",
		"PIP_NO_INPUT=1",
		"PIP_DISABLE_PIP_VERSION_CHECK=1",
		"PIP_NO_CACHE_DIR=1",
		"PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring",
		"PYTHONDONTWRITEBYTECODE=1",
		"NO_COLOR=1",
	}, extra...)...)
}

// run runs a command and returns its combined output and exit code.
func run(t *testing.T, env []string, dir string, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Dir = env, dir
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(out), code
}

func mustRun(t *testing.T, env []string, dir string, name string, args ...string) string {
	t.Helper()
	out, code := run(t, env, dir, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s", name, strings.Join(args, " "), code, out)
	}
	return out
}

// pyPackage is a built test package: its wheel and sdist.
type pyPackage struct {
	Name, Version string
	Wheel, Sdist  string // paths
}

// buildPackages builds small packages offline, in parallel. Each spec is
// "name version [dependency ...]"; body is added to the module.
func buildPackages(t *testing.T, specs ...string) map[string]*pyPackage {
	t.Helper()
	out := map[string]*pyPackage{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errc := make(chan string, len(specs))
	root := t.TempDir()
	for i, spec := range specs {
		f := strings.Fields(spec)
		name, version, deps := f[0], f[1], f[2:]
		dir := filepath.Join(root, fmt.Sprintf("src%d", i))
		mod := strings.ReplaceAll(name, "-", "_")
		quoted := make([]string, len(deps))
		for i, d := range deps {
			quoted[i] = fmt.Sprintf("%q", d)
		}
		files := map[string]string{
			"pyproject.toml": fmt.Sprintf(`[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = %q
version = %q
description = "Coffer test package %s"
requires-python = ">=3.7"
dependencies = [%s]
`, name, version, name, strings.Join(quoted, ", ")),
			"src/" + mod + "/__init__.py": fmt.Sprintf("NAME = %q\nVERSION = %q\n", name, version),
		}
		for p, c := range files {
			os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
			if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dist := filepath.Join(dir, "dist")
			cmd := exec.Command(systemPython, "-m", "build", "--no-isolation", "--outdir", dist, dir)
			cmd.Env = pyEnv(root)
			if b, err := cmd.CombinedOutput(); err != nil {
				errc <- fmt.Sprintf("building %s %s: %v\n%s", name, version, err, b)
				return
			}
			whl, _ := filepath.Glob(filepath.Join(dist, "*.whl"))
			sd, _ := filepath.Glob(filepath.Join(dist, "*.tar.gz"))
			if len(whl) != 1 || len(sd) != 1 {
				errc <- fmt.Sprintf("building %s %s: got %v %v", name, version, whl, sd)
				return
			}
			mu.Lock()
			out[name+"=="+version] = &pyPackage{Name: name, Version: version, Wheel: whl[0], Sdist: sd[0]}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errc)
	for e := range errc {
		t.Fatal(e)
	}
	return out
}

func fileSHA256(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// venv creates a fresh virtual environment and returns its pip.
func venv(t *testing.T, home string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "venv")
	mustRun(t, pyEnv(home), "", systemPython, "-m", "venv", dir)
	return filepath.Join(dir, "bin", "pip")
}

// installed returns name==version lines of a virtual environment.
func installed(t *testing.T, pip, home string) string {
	t.Helper()
	return mustRun(t, pyEnv(home), "", pip, "freeze")
}

// twine uploads dists; it returns twine's output and exit code.
func twine(t *testing.T, home, repoURL, user, pw string, args ...string) (string, int) {
	t.Helper()
	all := append([]string{"upload", "--non-interactive", "--disable-progress-bar", "--repository-url", repoURL}, args...)
	return run(t, pyEnv(home, "TWINE_USERNAME="+user, "TWINE_PASSWORD="+pw), "", "twine", all...)
}

// recorder is a reverse proxy that records what pip asked for and what it
// got, to check the negotiation really happened on the wire.
type recorder struct {
	mu    sync.Mutex
	pages []string // "Accept → Content-Type" of simple pages
	srv   *httptest.Server
}

func newRecorder(t *testing.T, target string) *recorder {
	u, _ := url.Parse(target)
	rec := &recorder{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if strings.Contains(resp.Request.URL.Path, "/simple/") {
			rec.mu.Lock()
			rec.pages = append(rec.pages, resp.Request.Header.Get("Accept")+" → "+resp.Header.Get("Content-Type"))
			rec.mu.Unlock()
		}
		return nil
	}
	rec.srv = httptest.NewServer(rp)
	t.Cleanup(rec.srv.Close)
	return rec
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.pages...)
}

func withCreds(u, user, pw string) string {
	return strings.Replace(u, "http://", "http://"+url.PathEscape(user)+":"+url.PathEscape(pw)+"@", 1)
}

const pypiUpstreamConfig = `
repositories:
  - {key: pypi-up, format: pypi, kind: local, tier: release}
`

func pypiDownstreamConfig(upstream string) string {
	return fmt.Sprintf(`
repositories:
  - {key: pypi-dev-local, format: pypi, kind: local, tier: dev}
  - {key: pypi-staging-local, format: pypi, kind: local, tier: staging}
  - {key: pypi-release-local, format: pypi, kind: local, tier: release}
  - key: pypi-remote
    format: pypi
    kind: remote
    upstream: {url: %q, username: admin, password_env: UPSTREAM_PW, timeout: 3s}
    metadata_ttl: 1s
  - key: pypi
    format: pypi
    kind: virtual
    members: [pypi-release-local, pypi-staging-local, pypi-dev-local, pypi-remote]
    default_deploy: pypi-staging-local
  - key: pypi-public
    format: pypi
    kind: virtual
    anonymous_read: true
    members: [pypi-release-local]
`, upstream)
}

func TestPypiEndToEnd(t *testing.T) {
	requirePythonTools(t)
	home := t.TempDir()
	pkgs := buildPackages(t,
		"coffer-alpha 1.0.0 coffer-beta>=1.0",
		"coffer-beta 1.0.0 coffer-gamma",
		"coffer-beta 1.1.0 coffer-gamma",
		"coffer-gamma 1.0.0",
		"Coffer_Delta 2.0.0",
	)
	alpha, beta10, beta11, gamma, delta := pkgs["coffer-alpha==1.0.0"], pkgs["coffer-beta==1.0.0"], pkgs["coffer-beta==1.1.0"], pkgs["coffer-gamma==1.0.0"], pkgs["Coffer_Delta==2.0.0"]

	up := StartServer(t, pypiUpstreamConfig)
	down := &Server{t: t, DataDir: t.TempDir(), Env: []string{"UPSTREAM_PW=" + adminPassword}}
	down.Config = writeConfig(t, pypiDownstreamConfig(up.URL+"/repository/pypi-up/simple/"))
	down.Start()
	t.Cleanup(down.Stop)

	// twine: beta and gamma to the upstream; alpha (wheel + sdist) to
	// staging through the virtual repository's default_deploy.
	out, code := twine(t, home, up.URL+"/repository/pypi-up/", "admin", adminPassword, beta10.Wheel, beta10.Sdist, beta11.Wheel, beta11.Sdist, gamma.Wheel, gamma.Sdist)
	if code != 0 {
		t.Fatalf("twine upload to the upstream: %d\n%s", code, out)
	}
	out, code = twine(t, home, down.URL+"/repository/pypi/", "admin", adminPassword, alpha.Wheel, alpha.Sdist)
	if code != 0 {
		t.Fatalf("twine upload through the virtual repository: %d\n%s", code, out)
	}
	resp := down.Do("GET", "/repository/pypi-staging-local/simple/coffer-alpha/", nil)
	if page := ReadBody(t, resp); resp.StatusCode != 200 || !strings.Contains(page, filepath.Base(alpha.Wheel)) || !strings.Contains(page, filepath.Base(alpha.Sdist)) {
		t.Fatalf("alpha not in staging: %d\n%s", resp.StatusCode, page)
	}
	// The upstream yanks beta 1.1.0.
	resp = up.Do("POST", "/repository/pypi-up/pypi/coffer-beta/1.1.0/yank", strings.NewReader("reason=broken"), "Content-Type", "application/x-www-form-urlencoded")
	if b := ReadBody(t, resp); resp.StatusCode != 200 {
		t.Fatalf("yank: %d %s", resp.StatusCode, b)
	}

	index := down.URL + "/repository/pypi/simple/"
	auth := withCreds(index, "admin", adminPassword)
	rec := newRecorder(t, down.URL)
	proxied := rec.srv.URL + "/repository/pypi/simple/"
	// One fresh virtual environment; later installs go to fresh --target
	// directories (a venv costs seconds on these machines).
	pip := venv(t, home)

	t.Run("install with dependencies through the virtual repository", func(t *testing.T) {
		out := mustRun(t, pyEnv(home), "", pip, "install", "--index-url", withCreds(proxied, "admin", adminPassword), "coffer-alpha")
		got := installed(t, pip, home)
		for _, want := range []string{"coffer-alpha==1.0.0", "coffer-beta==1.0.0", "coffer-gamma==1.0.0"} {
			if !strings.Contains(got, want) {
				t.Fatalf("pip freeze lacks %s (yanked 1.1.0 must be skipped):\n%s\npip said:\n%s", want, got, out)
			}
		}
		// pip asked for PEP 691 JSON and got it, for every page.
		pages := rec.seen()
		if len(pages) < 3 {
			t.Fatalf("pages seen: %v", pages)
		}
		for _, p := range pages {
			if !strings.HasPrefix(p, "application/vnd.pypi.simple.v1+json") || !strings.HasSuffix(p, "→ application/vnd.pypi.simple.v1+json") {
				t.Fatalf("a simple page was not negotiated as JSON: %s", p)
			}
		}
		// The remote kept what pip installed.
		resp := down.Do("GET", "/api/v1/repositories/pypi-remote/artifacts?limit=100", nil)
		if b := ReadBody(t, resp); !strings.Contains(b, filepath.Base(gamma.Wheel)) {
			t.Fatalf("gamma's wheel not cached by the remote: %s", b)
		}
	})

	t.Run("a yanked version installs only when pinned", func(t *testing.T) {
		target := t.TempDir()
		out := mustRun(t, pyEnv(home), "", pip, "install", "--no-deps", "--target", target, "--index-url", auth, "coffer-beta==1.1.0")
		if _, err := os.Stat(filepath.Join(target, "coffer_beta-1.1.0.dist-info")); err != nil {
			t.Fatalf("pinned yanked version not installed: %v\n%s", err, out)
		}
		if !strings.Contains(out, "yanked") || !strings.Contains(out, "broken") {
			t.Fatalf("pip did not warn about the yank and its reason:\n%s", out)
		}
		out = mustRun(t, pyEnv(home), "", pip, "index", "versions", "--index-url", auth, "coffer-beta")
		if !strings.Contains(out, "Available versions: 1.0.0") {
			t.Fatalf("pip index versions lists the yanked version:\n%s", out)
		}
	})

	t.Run("require-hashes", func(t *testing.T) {
		req := filepath.Join(t.TempDir(), "requirements.txt")
		lines := []string{}
		for _, p := range []*pyPackage{alpha, beta10, gamma} {
			lines = append(lines, fmt.Sprintf("%s==%s --hash=sha256:%s", p.Name, p.Version, fileSHA256(t, p.Wheel)))
		}
		writeFile(req, strings.Join(lines, "\n")+"\n")
		target := t.TempDir()
		mustRun(t, pyEnv(home), "", pip, "install", "--require-hashes", "--only-binary", ":all:", "--target", target, "--index-url", auth, "-r", req)
		for _, d := range []string{"coffer_alpha-1.0.0.dist-info", "coffer_beta-1.0.0.dist-info", "coffer_gamma-1.0.0.dist-info"} {
			if _, err := os.Stat(filepath.Join(target, d)); err != nil {
				t.Fatalf("require-hashes install: %v", err)
			}
		}
		// A wrong hash is refused by pip.
		writeFile(req, fmt.Sprintf("coffer-gamma==1.0.0 --hash=sha256:%s\n", strings.Repeat("0", 64)))
		out, code := run(t, pyEnv(home), "", pip, "download", "--no-deps", "--require-hashes", "-d", t.TempDir(), "--index-url", auth, "-r", req)
		if code == 0 || !strings.Contains(out, "DO NOT MATCH THE HASHES") {
			t.Fatalf("wrong hash: exit %d\n%s", code, out)
		}
	})

	t.Run("upstream stopped: cached pages and files still install", func(t *testing.T) {
		up.Stop()
		time.Sleep(1100 * time.Millisecond) // past the remote's metadata TTL
		target := t.TempDir()
		out := mustRun(t, pyEnv(home), "", pip, "install", "--target", target, "--index-url", auth, "coffer-alpha")
		for _, d := range []string{"coffer_alpha-1.0.0.dist-info", "coffer_beta-1.0.0.dist-info", "coffer_gamma-1.0.0.dist-info"} {
			if _, err := os.Stat(filepath.Join(target, d)); err != nil {
				t.Fatalf("install with the upstream stopped: %v\n%s", err, out)
			}
		}
	})

	t.Run("credentials: URL, netrc, none", func(t *testing.T) {
		// netrc, no credentials in the URL.
		nhome := t.TempDir()
		writeFile(filepath.Join(nhome, ".netrc"), fmt.Sprintf("machine 127.0.0.1\nlogin admin\npassword %s\n", adminPassword))
		os.Chmod(filepath.Join(nhome, ".netrc"), 0o600)
		dl := t.TempDir()
		out := mustRun(t, pyEnv(nhome), "", pip, "download", "--no-deps", "-d", dl, "--index-url", index, "coffer-alpha")
		if _, err := os.Stat(filepath.Join(dl, filepath.Base(alpha.Wheel))); err != nil {
			t.Fatalf("pip download with netrc: %v\n%s", err, out)
		}
		// No credentials at all: refused on a private repository...
		out, code := run(t, pyEnv(home), "", pip, "download", "--no-deps", "-d", t.TempDir(), "--index-url", index, "coffer-alpha")
		if code == 0 || !strings.Contains(out, "No matching distribution found for coffer-alpha") ||
			!strings.Contains(down.Log(), `path=/repository/pypi/simple/coffer-alpha/ status=401`) {
			t.Fatalf("anonymous pip on a private repository: exit %d\n%s", code, out)
		}
		// ...and served by one with anonymous read.
		out, code = twine(t, home, down.URL+"/repository/pypi-release-local/", "admin", adminPassword, delta.Wheel)
		if code != 0 {
			t.Fatalf("twine to release: %s", out)
		}
		target := t.TempDir()
		out = mustRun(t, pyEnv(home), "", pip, "install", "--target", target, "--index-url", down.URL+"/repository/pypi-public/simple/", "coffer-delta")
		if _, err := os.Stat(filepath.Join(target, "Coffer_Delta-2.0.0.dist-info")); err != nil {
			t.Fatalf("anonymous install from a public repository: %v\n%s", err, out)
		}
		// An API token with twine's __token__ user name.
		resp := down.Do("POST", "/api/v1/tokens", strings.NewReader(`{"name":"ci"}`), "Content-Type", "application/json")
		var tok struct{ Token string }
		json.Unmarshal([]byte(ReadBody(t, resp)), &tok)
		out, code = twine(t, home, down.URL+"/repository/pypi-dev-local/", "__token__", tok.Token, delta.Sdist)
		if code != 0 {
			t.Fatalf("twine with __token__: %d\n%s", code, out)
		}
	})

	t.Run("refusals per tier through twine", func(t *testing.T) {
		// The same file name with other bytes (a rebuild).
		rebuilt := filepath.Join(t.TempDir(), filepath.Base(alpha.Wheel))
		addToZip(t, alpha.Wheel, rebuilt, "coffer_alpha/rebuilt.py", "REBUILT = True\n")
		for _, key := range []string{"pypi-dev-local", "pypi-staging-local", "pypi-release-local"} {
			u := down.URL + "/repository/" + key + "/"
			if key != "pypi-staging-local" {
				if out, code := twine(t, home, u, "admin", adminPassword, alpha.Wheel); code != 0 {
					t.Fatalf("%s: first upload: %s", key, out)
				}
			}
			out, code := twine(t, home, u, "admin", adminPassword, rebuilt)
			if code == 0 || !strings.Contains(out, "400 Bad Request") || !regexp.MustCompile(`File already exists \('coffer_alpha-1\.0\.0-py3-none-any\.whl'`).MatchString(out) {
				t.Fatalf("%s: re-upload of other bytes: exit %d\n%s", key, code, out)
			}
		}
		// --skip-existing understands the refusal; identical bytes are fine.
		u := down.URL + "/repository/pypi-release-local/"
		if out, code := twine(t, home, u, "admin", adminPassword, "--skip-existing", rebuilt, alpha.Wheel); code != 0 || !strings.Contains(out, "Skipping") {
			t.Fatalf("--skip-existing: exit %d\n%s", code, out)
		}
		// Delete: refused on release (yank instead), done on dev.
		resp := down.Do("DELETE", "/repository/pypi-release-local/pypi/coffer-alpha/1.0.0", nil)
		if b := ReadBody(t, resp); resp.StatusCode != http.StatusConflict || !strings.Contains(b, "yank it instead") {
			t.Fatalf("delete on release: %d %s", resp.StatusCode, b)
		}
		resp = down.Do("POST", "/repository/pypi-release-local/pypi/coffer-alpha/1.0.0/yank", strings.NewReader(`{"reason":"superseded"}`), "Content-Type", "application/json")
		if b := ReadBody(t, resp); resp.StatusCode != 200 {
			t.Fatalf("yank on release: %d %s", resp.StatusCode, b)
		}
		resp = down.Do("DELETE", "/repository/pypi-dev-local/pypi/coffer-alpha/1.0.0", nil)
		if b := ReadBody(t, resp); resp.StatusCode != 200 {
			t.Fatalf("delete on dev: %d %s", resp.StatusCode, b)
		}
		resp = down.Do("GET", "/repository/pypi-dev-local/simple/coffer-alpha/", nil)
		if ReadBody(t, resp); resp.StatusCode != 404 {
			t.Fatalf("dev page after delete: %d", resp.StatusCode)
		}
		// Bad input through twine: a wheel whose file name contradicts its metadata.
		fake := filepath.Join(t.TempDir(), "coffer_gamma-9.0.0-py3-none-any.whl")
		b, _ := os.ReadFile(gamma.Wheel)
		os.WriteFile(fake, b, 0o644)
		out, code := twine(t, home, down.URL+"/repository/pypi-dev-local/", "admin", adminPassword, fake)
		if code == 0 || !strings.Contains(out, "contradicts") {
			t.Fatalf("wheel with contradicting metadata: exit %d\n%s", code, out)
		}
	})

	if t.Failed() {
		t.Logf("downstream log:\n%s", lastLines(down.Log(), 60))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// addToZip copies a zip archive with one more member.
func addToZip(t *testing.T, src, dst, name, body string) {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range zr.File {
		if err := zw.Copy(f); err != nil {
			t.Fatal(err)
		}
	}
	w, _ := zw.Create(name)
	w.Write([]byte(body))
	zw.Close()
	if err := os.WriteFile(dst, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
