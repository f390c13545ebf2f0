package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/format/npm/npmtest"
)

// The npm format with the real clients: the machine's npm, and yarn
// (classic) and pnpm at the versions scripts/install-npm-clients.sh pins,
// installed by it into a cache directory when missing. Every client runs
// isolated: its own HOME, user config, project .npmrc and fresh caches,
// with the registry pointing at a Coffer on loopback.

var (
	npmClientsOnce sync.Once
	npmClientsDir  string
	npmClientsErr  error
)

// npmTool returns the path of "npm", "yarn" or "pnpm". A missing client
// fails the test: these tests never skip.
func npmTool(t *testing.T, name string) string {
	t.Helper()
	if name == "npm" {
		p, err := exec.LookPath("npm")
		if err != nil {
			t.Fatalf("npm is not installed (Debian: apt-get install -y npm): %v", err)
		}
		return p
	}
	npmClientsOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "install-npm-clients.sh")
		cmd := exec.Command(script)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			npmClientsErr = fmt.Errorf("%s: %v\n%s", script, err, errb.String())
			return
		}
		npmClientsDir = strings.TrimSpace(out.String())
	})
	if npmClientsErr != nil {
		t.Fatalf("installing yarn and pnpm: %v", npmClientsErr)
	}
	p := filepath.Join(npmClientsDir, "clients", "node_modules", ".bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing after scripts/install-npm-clients.sh: %v", name, err)
	}
	return p
}

// npmProject is a directory with a package.json and an isolated client
// configuration for one registry.
type npmProject struct {
	t        *testing.T
	Dir      string
	home     string
	registry string
	env      []string
}

// newNpmProject makes a project whose clients use registry (a repository
// URL ending in "/") with token as _authToken (none when "").
func newNpmProject(t *testing.T, registry, token string, deps map[string]string) *npmProject {
	t.Helper()
	p := &npmProject{t: t, Dir: t.TempDir(), home: t.TempDir(), registry: registry}
	auth := ""
	if token != "" {
		auth = "//" + strings.TrimPrefix(registry, "http://") + ":_authToken=" + token + "\n"
	}
	npmrc := "registry=" + registry + "\n" + auth +
		"cache=" + filepath.Join(p.home, "npm-cache") + "\n" +
		"update-notifier=false\nfund=false\n"
	must(t, os.WriteFile(filepath.Join(p.Dir, ".npmrc"), []byte(npmrc), 0o600))
	must(t, os.WriteFile(filepath.Join(p.home, ".npmrc"), []byte(auth), 0o600))
	must(t, os.WriteFile(filepath.Join(p.Dir, ".yarnrc"), []byte("registry \""+registry+"\"\n"), 0o644))
	pj := map[string]any{"name": "e2e-project", "version": "1.0.0", "private": true, "dependencies": deps}
	b, _ := json.MarshalIndent(pj, "", "  ")
	must(t, os.WriteFile(filepath.Join(p.Dir, "package.json"), b, 0o644))
	for _, kv := range os.Environ() {
		k := strings.ToLower(kv[:strings.IndexByte(kv, '=')])
		if strings.HasPrefix(k, "npm_config_") || strings.HasPrefix(k, "yarn_") || strings.HasPrefix(k, "pnpm_") ||
			k == "home" || k == "ci" || strings.HasSuffix(k, "_proxy") {
			continue
		}
		p.env = append(p.env, kv)
	}
	p.env = append(p.env, "HOME="+p.home, "NPM_CONFIG_USERCONFIG="+filepath.Join(p.home, ".npmrc"),
		"NPM_CONFIG_REGISTRY="+registry, "NPM_CONFIG_UPDATE_NOTIFIER=false",
		"YARN_CACHE_FOLDER="+filepath.Join(p.home, "yarn-cache"), "XDG_CONFIG_HOME="+filepath.Join(p.home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(p.home, ".cache"), "XDG_DATA_HOME="+filepath.Join(p.home, ".local"),
		"NO_PROXY=127.0.0.1,localhost", "COREPACK_ENABLE_STRICT=0")
	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// run runs a client in the project and returns its combined output.
func (p *npmProject) run(tool string, args ...string) (string, error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npmTool(p.t, tool), args...)
	cmd.Dir, cmd.Env = p.Dir, p.env
	if tool == "yarn" {
		// yarn classic sends credentials for unscoped packages only with
		// always-auth (which npm 11 no longer knows, so not in .npmrc).
		cmd.Env = append(cmd.Env, "npm_config_always_auth=true")
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// must runs a client and fails the test unless it succeeds.
func (p *npmProject) must(tool string, args ...string) string {
	p.t.Helper()
	out, err := p.run(tool, args...)
	if err != nil {
		p.t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return out
}

// fails runs a client and fails the test unless it fails with output
// containing every part.
func (p *npmProject) fails(tool string, args []string, parts ...string) string {
	p.t.Helper()
	out, err := p.run(tool, args...)
	if err == nil {
		p.t.Fatalf("%s %s succeeded, want a failure:\n%s", tool, strings.Join(args, " "), out)
	}
	for _, part := range parts {
		if !strings.Contains(out, part) {
			p.t.Errorf("%s %s: output does not mention %q:\n%s", tool, strings.Join(args, " "), part, out)
		}
	}
	return out
}

// installedVersion reads node_modules/<name>/package.json (following
// pnpm's symlinks).
func (p *npmProject) installedVersion(name string) string {
	b, err := os.ReadFile(filepath.Join(p.Dir, "node_modules", name, "package.json"))
	if err != nil {
		return ""
	}
	var m struct{ Version string }
	json.Unmarshal(b, &m)
	return m.Version
}

// checkInstalled asserts what a user of the project sees after an install:
// every package of the fixture graph at its version, requirable by node.
func (p *npmProject) checkInstalled(tool string) {
	p.t.Helper()
	if tool == "pnpm" {
		// pnpm links direct dependencies only; the rest lives in .pnpm.
		entries, err := os.ReadDir(filepath.Join(p.Dir, "node_modules", ".pnpm"))
		if err != nil {
			p.t.Fatalf("pnpm: %v", err)
		}
		have := map[string]bool{}
		for _, e := range entries {
			have[strings.ReplaceAll(e.Name(), "+", "/")] = true
		}
		for name, v := range npmtest.Installed {
			if !have[name+"@"+v] {
				p.t.Errorf("pnpm: %s@%s not installed (have %v)", name, v, sortedKeys(have))
			}
		}
		if !have["util-leaf@1.2.0"] {
			p.t.Errorf("pnpm: util-leaf@1.2.0 (needed by util-str) not installed")
		}
		for name, spec := range npmtest.ProjectDependencies() {
			if got := p.installedVersion(name); got == "" {
				p.t.Errorf("pnpm: direct dependency %s (%s) not linked", name, spec)
			}
		}
	} else {
		for name, v := range npmtest.Installed {
			if got := p.installedVersion(name); got != v {
				p.t.Errorf("%s: node_modules/%s is %q, want %s", tool, name, got, v)
			}
		}
		b, _ := os.ReadFile(filepath.Join(p.Dir, "node_modules", "util-str", "node_modules", "util-leaf", "package.json"))
		if !strings.Contains(string(b), `"1.2.0"`) {
			p.t.Errorf("%s: util-str's own util-leaf@1.2.0 not installed", tool)
		}
	}
	// The code runs: each direct dependency exports "name@version".
	var names []string
	for name := range npmtest.ProjectDependencies() {
		names = append(names, name)
	}
	sort.Strings(names)
	script := "for (const n of process.argv.slice(1)) console.log(require(n));"
	cmd := exec.Command("node", append([]string{"-e", script}, names...)...)
	cmd.Dir = p.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("%s: node cannot require the dependencies: %v\n%s", tool, err, out)
	}
	for _, n := range names {
		if want := n + "@" + npmtest.Installed[n]; !strings.Contains(string(out), want) {
			p.t.Errorf("%s: require(%q) did not give %s:\n%s", tool, n, want, out)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// install runs a cold install with the client (no lockfile, empty caches).
func (p *npmProject) install(tool string) string {
	p.t.Helper()
	switch tool {
	case "npm":
		return p.must("npm", "install", "--no-fund")
	case "yarn":
		return p.must("yarn", "install", "--non-interactive", "--no-progress", "--cache-folder", filepath.Join(p.home, "yarn-cache"))
	case "pnpm":
		return p.must("pnpm", "install", "--no-frozen-lockfile", "--reporter=append-only",
			"--store-dir", filepath.Join(p.home, "pnpm-store"), "--cache-dir", filepath.Join(p.home, "pnpm-cache"))
	}
	p.t.Fatalf("unknown client %s", tool)
	return ""
}

// apiToken creates an API token as user (admin with its password when
// user is "admin") and returns its secret.
func apiToken(t *testing.T, s *Server, user, pw string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v1/tokens", strings.NewReader(`{"name":"e2e"}`))
	req.SetBasicAuth(user, pw)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Token string `json:"token"`
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &out) != nil || out.Token == "" {
		t.Fatalf("creating a token: %d %s", resp.StatusCode, body)
	}
	return out.Token
}

func apiJSON(t *testing.T, s *Server, method, path, body string) {
	t.Helper()
	resp := s.Do(method, path, strings.NewReader(body), "Content-Type", "application/json")
	if msg := ReadBody(t, resp); resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, msg)
	}
}

func npmPublish(t *testing.T, s *Server, repoKey string, pkgs ...npmtest.Package) {
	t.Helper()
	for _, p := range pkgs {
		if err := npmtest.Publish(http.DefaultClient, s.URL+"/repository/"+repoKey+"/", "admin", adminPassword, p, "latest"); err != nil {
			t.Fatal(err)
		}
	}
}

const npmUpstreamConfig = `
repositories:
  - {key: npm-up, format: npm, kind: local, tier: dev}
`

// npmDownstreamConfig is the canonical structure of examples/coffer.yaml,
// with a short metadata TTL.
func npmDownstreamConfig(upstreamURL string) string {
	return fmt.Sprintf(`
repositories:
  - {key: npm-dev-local, format: npm, kind: local, tier: dev}
  - {key: npm-staging-local, format: npm, kind: local, tier: staging}
  - {key: npm-release-local, format: npm, kind: local, tier: release}
  - key: npm-remote
    format: npm
    kind: remote
    upstream: {url: %q, username: admin, password_env: UPSTREAM_PW, timeout: 3s}
    metadata_ttl: 1s
    negative_ttl: 1s
  - key: npm
    format: npm
    kind: virtual
    members: [npm-release-local, npm-staging-local, npm-dev-local, npm-remote]
    default_deploy: npm-dev-local
`, upstreamURL)
}

// TestNpmInstallThroughVirtual installs a project of ~20 packages (scoped,
// unscoped, transitive; private ones published to Coffer, public ones from
// an upstream registry — a second Coffer) through the virtual repository
// with npm, yarn and pnpm, each with a cold cache; then stops the upstream
// and does it again.
func TestNpmInstallThroughVirtual(t *testing.T) {
	for _, tool := range []string{"yarn", "pnpm"} {
		npmTool(t, tool) // install (or fail) before starting servers
	}
	up := StartServer(t, npmUpstreamConfig)
	npmPublish(t, up, "npm-up", npmtest.Upstream()...)
	// Squatters on the private names, with higher versions: never to be taken.
	npmPublish(t, up, "npm-up", npmtest.Package{Name: "acme-internal-tool", Version: "9.9.9", Description: "dependency confusion"},
		npmtest.Package{Name: "@acme/config", Version: "99.0.0", Description: "dependency confusion"})

	down := &Server{t: t, DataDir: t.TempDir(), Env: []string{"UPSTREAM_PW=" + adminPassword}}
	down.Config = writeConfig(t, npmDownstreamConfig(up.URL+"/repository/npm-up/"))
	down.Start()
	t.Cleanup(down.Stop)
	npmPublish(t, down, "npm-release-local", npmtest.Local()...)
	token := apiToken(t, down, "admin", adminPassword)
	registry := down.URL + "/repository/npm/"

	clients := []string{"npm", "yarn", "pnpm"}
	for _, tool := range clients {
		t.Run(tool+"/upstream-up", func(t *testing.T) {
			p := newNpmProject(t, registry, token, npmtest.ProjectDependencies())
			defer func() {
				if t.Failed() {
					for _, l := range strings.Split(down.Log(), "\n") {
						if strings.Contains(l, "status=4") || strings.Contains(l, "status=5") {
							t.Log(l)
						}
					}
				}
			}()
			out := p.install(tool)
			p.checkInstalled(tool)
			if tool == "npm" && strings.Contains(out, "audit") && strings.Contains(out, "error") {
				t.Errorf("npm install reported an audit error:\n%s", out)
			}
		})
	}

	// Dependency confusion, as npm shows it.
	p := newNpmProject(t, registry, token, nil)
	if out := p.must("npm", "view", "acme-internal-tool", "versions", "--json"); strings.Contains(out, "9.9.9") || !strings.Contains(out, "1.0.0") {
		t.Errorf("npm view acme-internal-tool versions: %s", out)
	}
	if out := p.must("npm", "view", "@acme/config", "version"); strings.TrimSpace(out) != "1.0.0" {
		t.Errorf("npm view @acme/config version: %s", out)
	}
	p.fails("npm", []string{"install", "acme-internal-tool@9.9.9"}, "9.9.9")

	// The left-pad lesson: pinned-dep@1.0.0 is unpublished upstream; the
	// project pins it and keeps installing it.
	resp := up.Do(http.MethodDelete, "/repository/npm-up/pinned-dep/-/pinned-dep-1.0.0.tgz/-rev/1", nil)
	if b := ReadBody(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("unpublishing upstream: %d %s", resp.StatusCode, b)
	}
	time.Sleep(1100 * time.Millisecond) // past metadata_ttl: the packument is revalidated
	if out := p.must("npm", "view", "pinned-dep", "versions", "--json"); !strings.Contains(out, "1.0.0") || !strings.Contains(out, "1.0.1") {
		t.Errorf("npm view pinned-dep versions after the upstream unpublish: %s", out)
	}

	// The upstream goes away; the cache serves every install.
	up.Stop()
	time.Sleep(1100 * time.Millisecond)
	for _, tool := range clients {
		t.Run(tool+"/upstream-down", func(t *testing.T) {
			p := newNpmProject(t, registry, token, npmtest.ProjectDependencies())
			p.install(tool)
			p.checkInstalled(tool)
		})
	}
	if !strings.Contains(down.Log(), "upstream failed; serving cached copy") {
		t.Errorf("the downstream never served a stale copy while the upstream was down")
	}
}

const npmTiersConfig = `
repositories:
  - {key: npm-dev-local, format: npm, kind: local, tier: dev}
  - {key: npm-staging-local, format: npm, kind: local, tier: staging}
  - {key: npm-release-local, format: npm, kind: local, tier: release}
  - key: npm
    format: npm
    kind: virtual
    members: [npm-release-local, npm-staging-local, npm-dev-local]
    default_deploy: npm-dev-local
`

// pkgDir writes a package to publish with npm publish: package.json,
// index.js and a README.
func pkgDir(t *testing.T, p *npmProject, name, version string) string {
	t.Helper()
	dir := filepath.Join(p.Dir, strings.NewReplacer("@", "", "/", "-").Replace(name)+"-"+version)
	must(t, os.MkdirAll(dir, 0o755))
	pj := fmt.Sprintf(`{"name":%q,"version":%q,"description":"%s for the e2e tests","main":"index.js","license":"MIT","keywords":["e2e","coffer"]}`,
		name, version, name)
	must(t, os.WriteFile(filepath.Join(dir, "package.json"), []byte(pj), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "index.js"), []byte(fmt.Sprintf("module.exports = %q;\n", name+"@"+version)), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("# "+name+"\n"), 0o644))
	return dir
}

// publishFrom runs npm publish in a package directory, as the project's
// configuration.
func (p *npmProject) publishFrom(dir string, args ...string) (string, error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npmTool(p.t, "npm"), append([]string{"publish", "--userconfig", filepath.Join(p.Dir, ".npmrc")}, args...)...)
	cmd.Dir, cmd.Env = dir, p.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// packumentOf fetches a packument from s as admin (a quick look, where
// running npm view would only repeat what the tests with npm show).
func packumentOf(t *testing.T, s *Server, repoKey, name string) (map[string]json.RawMessage, map[string]string) {
	t.Helper()
	resp := s.Do(http.MethodGet, "/repository/"+repoKey+"/"+npmtest.EscapeName(name), nil)
	b := ReadBody(t, resp)
	var doc struct {
		DistTags map[string]string          `json:"dist-tags"`
		Versions map[string]json.RawMessage `json:"versions"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(b), &doc) != nil {
		return nil, nil
	}
	return doc.Versions, doc.DistTags
}

// TestNpmPublishAndTiers publishes with npm (scoped and unscoped), pnpm
// and yarn, then runs npm view, search, dist-tag, deprecate and unpublish, and
// reads each tier's refusals as npm prints them. (Every case of each
// endpoint is in internal/format/npm's tests; here the real client.)
func TestNpmPublishAndTiers(t *testing.T) {
	s := StartServer(t, npmTiersConfig)
	token := apiToken(t, s, "admin", adminPassword)
	virtual := newNpmProject(t, s.URL+"/repository/npm/", token, nil)

	// npm publish through the virtual repository (to its default_deploy),
	// scoped and unscoped; pnpm and yarn publish.
	for _, pkg := range []string{"@acme/widget", "plain-widget"} {
		if out, err := virtual.publishFrom(pkgDir(t, virtual, pkg, "1.0.0")); err != nil || !strings.Contains(out, "+ "+pkg+"@1.0.0") {
			t.Fatalf("npm publish %s: %v\n%s", pkg, err, out)
		}
	}
	cmd := exec.Command(npmTool(t, "pnpm"), "publish", "--no-git-checks")
	cmd.Dir, cmd.Env = pkgDir(t, virtual, "@acme/widget", "1.1.0"), append(virtual.env, "NPM_CONFIG_USERCONFIG="+filepath.Join(virtual.Dir, ".npmrc"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pnpm publish: %v\n%s", err, b)
	}
	cmd = exec.Command(npmTool(t, "yarn"), "publish", "--non-interactive", "--new-version", "1.1.0", "--no-git-tag-version")
	cmd.Dir, cmd.Env = pkgDir(t, virtual, "plain-widget", "1.1.0"), append(virtual.env, "NPM_CONFIG_USERCONFIG="+filepath.Join(virtual.Dir, ".npmrc"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("yarn publish: %v\n%s", err, b)
	}
	out := virtual.must("npm", "view", "@acme/widget")
	for _, want := range []string{"@acme/widget@1.1.0", "latest: 1.1.0", "versions: 2", "/repository/npm/@acme/widget/-/widget-1.1.0.tgz", "keywords: e2e, coffer"} {
		if !strings.Contains(out, want) {
			t.Errorf("npm view @acme/widget does not show %q:\n%s", want, out)
		}
	}
	// Republishing a version: npm checks first; with --force the registry refuses.
	virtual.fails("npm", []string{"publish", "--force", pkgDir(t, virtual, "plain-widget", "1.0.0")},
		"403", "You cannot publish over the previously published versions: 1.0.0")
	if out := virtual.must("npm", "search", "widget"); !strings.Contains(out, "@acme/widget") || !strings.Contains(out, "plain-widget") {
		t.Errorf("npm search widget:\n%s", out)
	}

	// deprecate: npm install warns; un-deprecate clears it.
	virtual.must("npm", "deprecate", "plain-widget@1.0.0", "use 1.1.0 or later")
	inst := newNpmProject(t, s.URL+"/repository/npm/", token, map[string]string{"plain-widget": "1.0.0"})
	if out := inst.must("npm", "install"); !strings.Contains(out, "deprecated plain-widget@1.0.0: use 1.1.0 or later") {
		t.Errorf("npm install of a deprecated version does not warn:\n%s", out)
	}
	virtual.must("npm", "deprecate", "plain-widget@1.0.0", "")
	if vs, _ := packumentOf(t, s, "npm", "plain-widget"); strings.Contains(string(vs["1.0.0"]), "deprecated") {
		t.Errorf("after un-deprecate: %s", vs["1.0.0"])
	}

	// dist-tag add, rm, ls.
	virtual.must("npm", "dist-tag", "add", "@acme/widget@1.0.0", "stable")
	virtual.must("npm", "dist-tag", "add", "@acme/widget@1.1.0", "next")
	virtual.must("npm", "dist-tag", "rm", "@acme/widget", "next")
	if out := virtual.must("npm", "dist-tag", "ls", "@acme/widget"); out != "latest: 1.1.0\nstable: 1.0.0\n" {
		t.Errorf("npm dist-tag ls:\n%s", out)
	}

	// Tiers, each through its own registry URL.
	for _, key := range []string{"npm-dev-local", "npm-staging-local", "npm-release-local"} {
		npmPublish(t, s, key, npmtest.Package{Name: "@acme/tiered", Version: "1.0.0"}, npmtest.Package{Name: "@acme/tiered", Version: "2.0.0"})
	}
	t.Run("release", func(t *testing.T) {
		p := newNpmProject(t, s.URL+"/repository/npm-release-local/", token, nil)
		p.fails("npm", []string{"unpublish", "@acme/tiered@1.0.0"}, "403", "npm deprecate")
		p.must("npm", "deprecate", "@acme/tiered@1.0.0", "retired")
		if vs, _ := packumentOf(t, s, "npm-release-local", "@acme/tiered"); len(vs) != 2 || !strings.Contains(string(vs["1.0.0"]), `"deprecated":"retired"`) {
			t.Errorf("release after unpublish and deprecate: %d versions, %s", len(vs), vs["1.0.0"])
		}
	})
	t.Run("staging", func(t *testing.T) {
		p := newNpmProject(t, s.URL+"/repository/npm-staging-local/", token, nil)
		// latest points at 2.0.0 and moves only by npm dist-tag add.
		p.fails("npm", []string{"unpublish", "@acme/tiered@2.0.0"}, "403", "dist-tag", "latest")
		p.must("npm", "unpublish", "@acme/tiered@1.0.0")
		if vs, tags := packumentOf(t, s, "npm-staging-local", "@acme/tiered"); len(vs) != 1 || tags["latest"] != "2.0.0" {
			t.Errorf("staging after unpublish: %v %v", keysOf(vs), tags)
		}
	})
	t.Run("dev", func(t *testing.T) {
		p := newNpmProject(t, s.URL+"/repository/npm-dev-local/", token, nil)
		p.must("npm", "unpublish", "@acme/tiered@2.0.0")
		if vs, tags := packumentOf(t, s, "npm-dev-local", "@acme/tiered"); len(vs) != 1 || tags["latest"] != "1.0.0" {
			t.Errorf("dev after unpublishing latest: %v %v", keysOf(vs), tags)
		}
		p.must("npm", "unpublish", "@acme/tiered", "--force")
		if vs, _ := packumentOf(t, s, "npm-dev-local", "@acme/tiered"); vs != nil {
			t.Errorf("dev after unpublishing the package: %v", keysOf(vs))
		}
	})
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// runWithTTY runs npm in a pseudo-terminal (util-linux script), answering
// its prompts in order: npm login reads the user name and password from a
// terminal.
func (p *npmProject) runWithTTY(answers []string, args ...string) (string, error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	script, err := exec.LookPath("script")
	if err != nil {
		p.t.Fatalf("script (util-linux) is needed to answer npm login's prompts: %v", err)
	}
	quoted := []string{npmTool(p.t, "npm")}
	for _, a := range args {
		quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	cmd := exec.CommandContext(ctx, script, "-qec", strings.Join(quoted, " "), "/dev/null")
	cmd.Dir, cmd.Env = p.Dir, p.env
	stdin, _ := cmd.StdinPipe()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	prompts := []string{"Username:", "Password:", "Email"}
	for i, a := range answers {
		for !strings.Contains(out.String(), prompts[i]) {
			if ctx.Err() != nil {
				cmd.Wait()
				return out.String(), fmt.Errorf("no %q prompt", prompts[i])
			}
			time.Sleep(50 * time.Millisecond)
		}
		io.WriteString(stdin, a+"\n")
	}
	err = cmd.Wait()
	stdin.Close()
	return out.String(), err
}

// TestNpmLoginAndTokenAuth logs in with npm login (the CouchDB user
// document flow) as a Coffer user, then uses the token it stored.
func TestNpmLoginAndTokenAuth(t *testing.T) {
	s := StartServer(t, npmTiersConfig)
	apiJSON(t, s, http.MethodPost, "/api/v1/users", `{"name":"alice","password":"alice-password-1","email":"alice@example.test"}`)
	apiJSON(t, s, http.MethodPost, "/api/v1/permissions", `{"principal_type":"user","principal":"alice","repos":"npm*","actions":["read","write"]}`)
	p := newNpmProject(t, s.URL+"/repository/npm/", "", nil)
	userrc := filepath.Join(p.home, ".npmrc")

	out, err := p.runWithTTY([]string{"alice", "not-her-password"}, "login", "--auth-type=legacy")
	if err == nil || !strings.Contains(out, "E401") || !strings.Contains(out, "Incorrect or missing password") {
		t.Errorf("npm login with a wrong password: %v\n%s", err, out)
	}
	out, err = p.runWithTTY([]string{"alice", "alice-password-1"}, "login", "--auth-type=legacy")
	if err != nil || !strings.Contains(out, "Logged in") {
		t.Fatalf("npm login: %v\n%s", err, out)
	}
	rc, _ := os.ReadFile(userrc)
	if !strings.Contains(string(rc), strings.TrimPrefix(s.URL, "http:")+"/repository/npm/:_authToken=cft_") {
		t.Fatalf("npm login stored no token for the registry:\n%s", rc)
	}
	if out := p.must("npm", "whoami"); strings.TrimSpace(out) != "alice" {
		t.Errorf("npm whoami: %q", out)
	}
	// The token publishes, as alice.
	if out, err := p.publishFrom(pkgDir(t, p, "@acme/alices", "1.0.0"), "--userconfig", userrc); err != nil {
		t.Fatalf("npm publish with the login token: %v\n%s", err, out)
	}
	if out := p.must("npm", "view", "@acme/alices", "_npmUser"); !strings.Contains(out, "alice") {
		t.Errorf("publisher: %s", out)
	}
	// adduser is login here: no account is created.
	out, err = p.runWithTTY([]string{"mallory", "mallory-password", "mallory@example.test"}, "adduser", "--auth-type=legacy")
	if err == nil || !strings.Contains(out, "E401") {
		t.Errorf("npm adduser of a new user: %v\n%s", err, out)
	}
	// npm logout revokes the token on the server.
	rc, _ = os.ReadFile(userrc)
	p.must("npm", "logout")
	tok := string(rc)[strings.Index(string(rc), "cft_"):]
	tok = strings.TrimSpace(strings.SplitN(tok, "\n", 2)[0])
	resp := s.Do(http.MethodGet, "/repository/npm/-/whoami", nil, "Authorization", "Bearer "+tok)
	if b := ReadBody(t, resp); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the token still works after npm logout: %d %s", resp.StatusCode, b)
	}
	p.fails("npm", []string{"whoami"}, "ENEEDAUTH")
}
