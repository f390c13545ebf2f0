package npm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format/npm/npmtest"
)

const upstreamConfig = `
repositories:
  - {key: npm-up, format: npm, kind: local, tier: dev, anonymous_read: true}
`

func downstreamConfig(upURL string) string {
	return fmt.Sprintf(`
repositories:
  - {key: npm-local, format: npm, kind: local, tier: release}
  - key: npm-remote
    format: npm
    kind: remote
    upstream: {url: %q, timeout: 2s}
    metadata_ttl: 1s
    negative_ttl: 1s
  - {key: npm, format: npm, kind: virtual, members: [npm-local, npm-remote], default_deploy: npm-local}
`, upURL+"/repository/npm-up/")
}

func TestRemoteAndVirtual(t *testing.T) {
	up := apptest.New(t, upstreamConfig)
	down := apptest.New(t, downstreamConfig(up.URL))
	admin := down.Admin()
	for _, p := range []npmtest.Package{
		{Name: "left-pad", Version: "1.0.0"}, {Name: "left-pad", Version: "1.1.0"},
		{Name: "@up/core", Version: "2.0.0"},
		{Name: "acme-secret", Version: "99.0.0", Description: "a squatted internal name"},
	} {
		publish(t, up, "npm-up", p, "latest")
	}
	publish(t, down, "npm", npmtest.Package{Name: "acme-secret", Version: "1.0.0"}, "latest")

	// Through the remote and the virtual repository, tarball URLs point at
	// the repository the client asked.
	for _, key := range []string{"npm-remote", "npm"} {
		p, resp, body := getPackument(t, admin, key, "left-pad")
		if resp.StatusCode != http.StatusOK || len(p.Versions) != 2 || p.DistTags["latest"] != "1.1.0" {
			t.Fatalf("%s: %d %s", key, resp.StatusCode, body)
		}
		m := p.manifest(t, "1.0.0")
		if want := repoURL(down, key) + "left-pad/-/left-pad-1.0.0.tgz"; m.Dist.Tarball != want {
			t.Errorf("%s: tarball URL %s, want %s", key, m.Dist.Tarball, want)
		}
		if strings.Contains(body, up.URL) {
			t.Errorf("%s: the packument leaks the upstream's URL: %s", key, body)
		}
	}
	tgz := npmtest.Package{Name: "left-pad", Version: "1.0.0"}.Tarball()
	resp, got := admin.Do(http.MethodGet, "/repository/npm/left-pad/-/left-pad-1.0.0.tgz", nil)
	if resp.StatusCode != http.StatusOK || got != string(tgz) || resp.Header.Get("X-Coffer-Repository") != "npm-remote" {
		t.Fatalf("tarball through the virtual repository: %d from %q", resp.StatusCode, resp.Header.Get("X-Coffer-Repository"))
	}
	p, _, _ := getPackument(t, admin, "npm", "@up/core", "Accept", "application/vnd.npm.install-v1+json")
	if m := p.manifest(t, "2.0.0"); m.Dist.Tarball != repoURL(down, "npm")+"@up/core/-/core-2.0.0.tgz" {
		t.Errorf("scoped tarball URL: %s", m.Dist.Tarball)
	}
	resp, _ = admin.Do(http.MethodGet, "/repository/npm/@up/core/-/core-2.0.0.tgz", nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("scoped tarball: %d", resp.StatusCode)
	}

	// Dependency confusion: acme-secret is published locally, so the
	// upstream's 99.0.0 is never seen, nor its tarball served.
	p, _, _ = getPackument(t, admin, "npm", "acme-secret")
	if len(p.Versions) != 1 || p.DistTags["latest"] != "1.0.0" {
		t.Errorf("acme-secret through the virtual repository: %v %v", keys(p.Versions), p.DistTags)
	}
	resp, body := admin.Do(http.MethodGet, "/repository/npm/acme-secret/-/acme-secret-99.0.0.tgz", nil)
	wantError(t, resp, body, http.StatusNotFound, "local member")
	resp, body = admin.Do(http.MethodGet, "/repository/npm/acme-secret/99.0.0", nil)
	wantError(t, resp, body, http.StatusNotFound)

	// Within metadata_ttl the upstream is not asked; after it, a conditional
	// GET answered 304 revalidates the cached packument.
	getPackument(t, admin, "npm-remote", "left-pad") // fresh from here on
	before := upstreamCounts(t, up)
	getPackument(t, admin, "npm-remote", "left-pad")
	if after := upstreamCounts(t, up); after["200"] != before["200"] || after["304"] != before["304"] {
		t.Errorf("a GET within metadata_ttl reached the upstream: %v -> %v", before, after)
	}
	time.Sleep(1100 * time.Millisecond)
	getPackument(t, admin, "npm-remote", "left-pad")
	if after := upstreamCounts(t, up); after["304"] != before["304"]+1 || after["200"] != before["200"] {
		t.Errorf("revalidation was not one conditional GET answered 304: %v -> %v", before, after)
	}

	// Unpublished upstream: the cached version stays installable.
	if resp, body := up.Admin().Do(http.MethodDelete, "/repository/npm-up/left-pad/-/left-pad-1.0.0.tgz/-rev/x", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("unpublish upstream: %d %s", resp.StatusCode, body)
	}
	if _, resp, _ := getPackument(t, up.Admin(), "npm-up", "left-pad"); resp.StatusCode != http.StatusOK {
		t.Fatal("upstream lost left-pad entirely")
	}
	time.Sleep(1100 * time.Millisecond) // past metadata_ttl: the packument is revalidated
	p, _, _ = getPackument(t, admin, "npm", "left-pad")
	if m := p.manifest(t, "1.0.0"); !strings.Contains(m.Deprecated, "unpublished") || p.DistTags["latest"] != "1.1.0" {
		t.Errorf("kept version: deprecated %q, tags %v", m.Deprecated, p.DistTags)
	}
	resp, got = admin.Do(http.MethodGet, "/repository/npm/left-pad/-/left-pad-1.0.0.tgz", nil)
	if resp.StatusCode != http.StatusOK || got != string(tgz) {
		t.Errorf("kept tarball: %d", resp.StatusCode)
	}

	// A new upstream version appears after the TTL (the ETag changed).
	publish(t, up, "npm-up", npmtest.Package{Name: "left-pad", Version: "1.2.0"}, "latest")
	time.Sleep(1100 * time.Millisecond)
	p, _, _ = getPackument(t, admin, "npm-remote", "left-pad")
	if p.DistTags["latest"] != "1.2.0" || len(p.Versions) != 3 {
		t.Errorf("after an upstream publish: %v %v", p.DistTags, keys(p.Versions))
	}

	// Upstream down: what is cached still serves; what is not is a 502.
	up.Srv.Close()
	time.Sleep(1100 * time.Millisecond)
	p, resp, body = getPackument(t, admin, "npm", "left-pad")
	if resp.StatusCode != http.StatusOK || len(p.Versions) != 3 {
		t.Fatalf("stale packument: %d %s", resp.StatusCode, body)
	}
	resp, got = admin.Do(http.MethodGet, "/repository/npm/left-pad/-/left-pad-1.0.0.tgz", nil)
	if resp.StatusCode != http.StatusOK || got != string(tgz) {
		t.Errorf("cached tarball with the upstream down: %d", resp.StatusCode)
	}
	resp, body = admin.Do(http.MethodGet, "/repository/npm/never-fetched", nil)
	wantError(t, resp, body, http.StatusBadGateway, "npm-remote")

	// Remote repositories are read-only.
	resp, body = putDoc(admin, "npm-remote", "x", "{}")
	wantError(t, resp, body, http.StatusMethodNotAllowed, "remote")
}

// The upstream's tarball must match the integrity its packument declares.
func TestRemoteIntegrityMismatch(t *testing.T) {
	var tarballHits int
	fake := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/evil":
			p := npmtest.Package{Name: "evil", Version: "1.0.0"}
			good := p.Tarball()
			fmt.Fprintf(w, `{"name":"evil","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"evil","version":"1.0.0",
				"dist":{"tarball":"http://%s/evil/-/evil-1.0.0.tgz","integrity":%q,"shasum":%q}}}}`,
				r.Host, npmtest.Integrity(good), npmtest.Shasum(good))
		case "/evil/-/evil-1.0.0.tgz":
			tarballHits++
			w.Write(npmtest.Package{Name: "evil", Version: "1.0.0", Description: "tampered"}.Tarball())
		default:
			http.NotFound(w, r)
		}
	})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	down := apptest.New(t, fmt.Sprintf(`
repositories:
  - {key: npm-remote, format: npm, kind: remote, upstream: {url: %q}}
`, srv.URL+"/"))
	resp, body := down.Admin().Do(http.MethodGet, "/repository/npm-remote/evil/-/evil-1.0.0.tgz", nil)
	wantError(t, resp, body, http.StatusBadGateway, "verification")
	rem, _ := down.App.Repos.Repo("npm-remote")
	if _, err := down.App.Store.GetAsset(context.Background(), rem.ID, "evil/-/evil-1.0.0.tgz"); !errors.Is(err, errs.NotFound) {
		t.Errorf("the tampered tarball was cached: %v", err)
	}
	if tarballHits != 1 {
		t.Errorf("tarball fetched %d times", tarballHits)
	}
}

// upstreamCounts sums the upstream's GETs of npm-up by status.
func upstreamCounts(t *testing.T, up *apptest.Env) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(up.Metrics(), "\n") {
		if !strings.HasPrefix(line, "coffer_http_requests_total{") || !strings.Contains(line, `repository="npm-up"`) ||
			!strings.Contains(line, `method="GET"`) {
			continue
		}
		i := strings.Index(line, `status="`)
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil || i < 0 {
			t.Fatalf("metrics line %q", line)
		}
		out[line[i+8:i+11]] += f
	}
	return out
}
