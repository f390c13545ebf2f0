package npm_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/format/npm/npmtest"
)

const promoteConfig = `
repositories:
  - {key: npm-dev, format: npm, kind: local, tier: dev}
  - {key: npm-release, format: npm, kind: local, tier: release}
`

// Promoting @acme/ui@1.4.0 copies the version (its tarball row) into the
// release repository, where npm sees it in the packument and downloads it;
// the release tier refuses a different 1.4.0 afterwards.
func TestPromoteNPM(t *testing.T) {
	e := apptest.New(t, promoteConfig)
	pkg := npmtest.Package{Name: "@acme/ui", Version: "1.4.0"}
	publish(t, e, "npm-dev", pkg, "latest")
	publish(t, e, "npm-dev", npmtest.Package{Name: "@acme/ui", Version: "1.5.0-beta.1"}, "next")

	var rec map[string]any
	e.Admin().MustJSON("POST", "/api/v1/promotions", map[string]any{"source": "npm-dev", "target": "npm-release", "artifact": "@acme/ui@1.4.0"}, http.StatusCreated, &rec)
	if rec["state"] != "promoted" || rec["name"] != "@acme/ui" || rec["version"] != "1.4.0" || !strings.HasPrefix(rec["digest"].(string), "sha256:") {
		t.Fatalf("record: %v", rec)
	}
	resp, body := e.Admin().Do("GET", "/repository/npm-release/"+npmtest.EscapeName("@acme/ui"), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("packument in release: %d %s", resp.StatusCode, body)
	}
	var doc struct {
		DistTags map[string]string `json:"dist-tags"`
		Versions map[string]struct {
			Dist struct {
				Tarball string `json:"tarball"`
			} `json:"dist"`
		} `json:"versions"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Versions) != 1 || doc.DistTags["latest"] != "1.4.0" {
		t.Fatalf("release packument: %s", body)
	}
	tb := doc.Versions["1.4.0"].Dist.Tarball
	if !strings.HasPrefix(tb, e.URL+"/repository/npm-release/") {
		t.Fatalf("tarball URL %s", tb)
	}
	resp, got := e.Admin().Do("GET", strings.TrimPrefix(tb, e.URL), nil)
	if resp.StatusCode != 200 || got != string(pkg.Tarball()) {
		t.Fatalf("tarball from release: %d (%d bytes)", resp.StatusCode, len(got))
	}
	// Identical re-promotion is fine.
	e.Admin().MustJSON("POST", "/api/v1/promotions", map[string]any{"source": "npm-dev", "target": "npm-release", "artifact": "@acme/ui@1.4.0"}, http.StatusCreated, &rec)
	resp, body = e.Admin().JSON("POST", "/api/v1/promotions", map[string]any{"source": "npm-dev", "target": "npm-release", "artifact": "@acme/ui"})
	if resp.StatusCode != 400 || !strings.Contains(body, "write name@version") {
		t.Errorf("bad coordinates: %d %s", resp.StatusCode, body)
	}
}
