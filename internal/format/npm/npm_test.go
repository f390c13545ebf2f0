package npm_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/format/npm/npmtest"
)

const hostedConfig = `
repositories:
  - {key: npm-dev, format: npm, kind: local, tier: dev}
  - {key: npm-staging, format: npm, kind: local, tier: staging}
  - {key: npm-release, format: npm, kind: local, tier: release}
  - {key: npm-small, format: npm, kind: local, tier: dev, max_upload_size: 2KiB}
  - {key: npm, format: npm, kind: virtual, members: [npm-release, npm-staging, npm-dev], default_deploy: npm-dev}
`

func repoURL(e *apptest.Env, key string) string { return e.URL + "/repository/" + key + "/" }

// publish publishes p to repository key as admin and fails unless stored.
func publish(t testing.TB, e *apptest.Env, key string, p npmtest.Package, tag string) {
	t.Helper()
	if err := npmtest.Publish(http.DefaultClient, repoURL(e, key), "admin", apptest.AdminPassword, p, tag); err != nil {
		t.Fatal(err)
	}
}

// putDoc sends a publish (or update) document as c and returns status and body.
func putDoc(c apptest.Caller, key, name string, doc any) (*http.Response, string) {
	var b []byte
	switch d := doc.(type) {
	case string:
		b = []byte(d)
	case []byte:
		b = d
	default:
		b, _ = json.Marshal(doc)
	}
	return c.Do(http.MethodPut, "/repository/"+key+"/"+npmtest.EscapeName(name), bytes.NewReader(b),
		"Content-Type", "application/json")
}

// npmError decodes {"error": "..."} and fails unless the body has that shape.
func npmError(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("not an npm error body: %q", body)
	}
	return e.Error
}

func wantError(t *testing.T, resp *http.Response, body string, status int, parts ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	msg := npmError(t, body)
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not mention %q", msg, p)
		}
	}
}

type packument struct {
	ID       string                     `json:"_id"`
	Rev      string                     `json:"_rev"`
	Name     string                     `json:"name"`
	DistTags map[string]string          `json:"dist-tags"`
	Versions map[string]json.RawMessage `json:"versions"`
	Time     map[string]string          `json:"time"`
	Modified string                     `json:"modified"`
}

type manifest struct {
	Name       string            `json:"name"`
	Version    string            `json:"version"`
	Deprecated string            `json:"deprecated"`
	Deps       map[string]string `json:"dependencies"`
	Dist       struct {
		Tarball   string `json:"tarball"`
		Integrity string `json:"integrity"`
		Shasum    string `json:"shasum"`
	} `json:"dist"`
}

func getPackument(t *testing.T, c apptest.Caller, key, name string, header ...string) (packument, *http.Response, string) {
	t.Helper()
	resp, body := c.Do(http.MethodGet, "/repository/"+key+"/"+npmtest.EscapeName(name), nil, header...)
	var p packument
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("packument of %s: %v: %s", name, err, body)
		}
	}
	return p, resp, body
}

func (p packument) manifest(t *testing.T, v string) manifest {
	t.Helper()
	var m manifest
	raw, ok := p.Versions[v]
	if !ok {
		t.Fatalf("packument of %s has no version %s (has %v)", p.Name, v, keys(p.Versions))
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPublishAndRead(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	admin := e.Admin()
	scoped := npmtest.Package{Name: "@acme/ui", Version: "1.0.0", Dependencies: map[string]string{"left": "^1.0.0"}}
	publish(t, e, "npm", scoped, "latest") // through the virtual repository: to npm-dev
	publish(t, e, "npm", npmtest.Package{Name: "@acme/ui", Version: "1.1.0-beta.1"}, "beta")
	publish(t, e, "npm-dev", npmtest.Package{Name: "left", Version: "1.0.0"}, "latest")

	for _, key := range []string{"npm-dev", "npm"} {
		p, resp, body := getPackument(t, admin, key, "@acme/ui", "Accept", "application/json")
		if resp.StatusCode != http.StatusOK || p.Name != "@acme/ui" || p.ID != "@acme/ui" || p.Rev == "" {
			t.Fatalf("GET packument from %s: %d %s", key, resp.StatusCode, body)
		}
		if p.DistTags["latest"] != "1.0.0" || p.DistTags["beta"] != "1.1.0-beta.1" || len(p.Versions) != 2 {
			t.Errorf("%s: dist-tags %v, versions %v", key, p.DistTags, keys(p.Versions))
		}
		if p.Time["created"] == "" || p.Time["modified"] == "" || p.Time["1.0.0"] == "" {
			t.Errorf("%s: time %v", key, p.Time)
		}
		m := p.manifest(t, "1.0.0")
		tgz := scoped.Tarball()
		if m.Dist.Integrity != npmtest.Integrity(tgz) || m.Dist.Shasum != npmtest.Shasum(tgz) || m.Deps["left"] != "^1.0.0" {
			t.Errorf("%s: manifest %+v", key, m)
		}
		if want := repoURL(e, key) + "@acme/ui/-/ui-1.0.0.tgz"; m.Dist.Tarball != want {
			t.Errorf("%s: tarball URL %s, want %s", key, m.Dist.Tarball, want)
		}
		// The tarball comes back byte for byte.
		resp, got := admin.Do(http.MethodGet, strings.TrimPrefix(m.Dist.Tarball, e.URL), nil)
		if resp.StatusCode != http.StatusOK || got != string(tgz) {
			t.Errorf("%s: tarball GET %d (%d bytes, want %d)", key, resp.StatusCode, len(got), len(tgz))
		}
	}

	// The abbreviated form for installers, with its own content type.
	resp, body := admin.Do(http.MethodGet, "/repository/npm/@acme%2fui", nil, "Accept", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/vnd.npm.install-v1+json" {
		t.Fatalf("abbreviated: %d %s", resp.StatusCode, ct)
	}
	var abbr map[string]json.RawMessage
	json.Unmarshal([]byte(body), &abbr)
	if abbr["modified"] == nil || abbr["time"] != nil || abbr["_rev"] != nil || !strings.Contains(string(abbr["versions"]), `"dependencies":{"left":"^1.0.0"}`) {
		t.Errorf("abbreviated packument: %s", body)
	}

	// ETag and If-None-Match; a publish changes the ETag.
	etag := resp.Header.Get("ETag")
	resp, _ = admin.Do(http.MethodGet, "/repository/npm/@acme%2fui", nil, "Accept", "application/vnd.npm.install-v1+json", "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the current ETag: %d", resp.StatusCode)
	}
	publish(t, e, "npm", npmtest.Package{Name: "@acme/ui", Version: "1.2.0"}, "latest")
	resp, body = admin.Do(http.MethodGet, "/repository/npm/@acme%2fui", nil, "Accept", "application/vnd.npm.install-v1+json", "If-None-Match", etag)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag || !strings.Contains(body, `"1.2.0"`) {
		t.Errorf("after a publish: %d, ETag %s (was %s)", resp.StatusCode, resp.Header.Get("ETag"), etag)
	}
	// Gzip when asked.
	resp, _ = admin.Do(http.MethodGet, "/repository/npm/@acme%2fui", nil, "Accept-Encoding", "gzip")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("gzip: %d", resp.StatusCode)
	}

	// /<name>/<version> and /<name>/<tag>; unscoped names; scoped names in
	// both spellings.
	for path, want := range map[string]string{
		"/repository/npm/@acme%2fui/1.0.0":          "1.0.0",
		"/repository/npm/@acme/ui/latest":           "1.2.0",
		"/repository/npm/@acme%2Fui/beta":           "1.1.0-beta.1",
		"/repository/npm-dev/left/latest":           "1.0.0",
		"/repository/npm/left/1.0.0":                "1.0.0",
		"/repository/npm-dev/@acme%2fui/1.2.0":      "1.2.0",
		"/repository/npm-dev/@acme/ui/1.1.0-beta.1": "1.1.0-beta.1",
	} {
		resp, body := admin.Do(http.MethodGet, path, nil)
		var m manifest
		json.Unmarshal([]byte(body), &m)
		if resp.StatusCode != http.StatusOK || m.Version != want || m.Dist.Tarball == "" {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	resp, body = admin.Do(http.MethodGet, "/repository/npm/@acme%2fui/9.9.9", nil)
	wantError(t, resp, body, http.StatusNotFound, "9.9.9")
	resp, body = admin.Do(http.MethodGet, "/repository/npm/nothing-here", nil)
	wantError(t, resp, body, http.StatusNotFound, "nothing-here")
	resp, body = admin.Do(http.MethodGet, "/repository/npm/left/-/left-9.9.9.tgz", nil)
	wantError(t, resp, body, http.StatusNotFound)

	// Reads need read permission; the error is npm's shape.
	resp, body = e.Anonymous().Do(http.MethodGet, "/repository/npm/left", nil)
	wantError(t, resp, body, http.StatusUnauthorized)
}

// Concurrent publishes of one version: exactly one wins, the others are
// told it exists; the winner's tarball is the one served.
func TestConcurrentPublish(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	const n = 6
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := npmtest.Package{Name: "race", Version: "1.0.0", Description: fmt.Sprintf("writer %d", i)}
			resp, _ := putDoc(e.Admin(), "npm-staging", "race", npmtest.PublishDocument(p, p.Tarball(), "latest", ""))
			codes <- resp.StatusCode
		}(i)
	}
	wg.Wait()
	close(codes)
	won := 0
	for c := range codes {
		switch c {
		case http.StatusCreated:
			won++
		case http.StatusForbidden:
		default:
			t.Errorf("concurrent publish answered %d", c)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent publishes of one version succeeded, want 1", won)
	}
	p, _, _ := getPackument(t, e.Admin(), "npm-staging", "race")
	m := p.manifest(t, "1.0.0")
	resp, got := e.Admin().Do(http.MethodGet, strings.TrimPrefix(m.Dist.Tarball, e.URL), nil)
	if resp.StatusCode != http.StatusOK || npmtest.Integrity([]byte(got)) != m.Dist.Integrity {
		t.Errorf("the served tarball does not match the packument's integrity")
	}
}
