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

// Retention on npm versions: keep_last 1, a dist-tag kept by keep_tags,
// latest always kept; the packument and tarballs follow.
func TestRetentionNPM(t *testing.T) {
	e := apptest.New(t, `
repositories:
  - {key: npm-dev, format: npm, kind: local, tier: dev, retention: {keep_last: 1, keep_tags: [beta]}}
`)
	publish(t, e, "npm-dev", npmtest.Package{Name: "@acme/ui", Version: "1.0.0"}, "beta")
	publish(t, e, "npm-dev", npmtest.Package{Name: "@acme/ui", Version: "1.1.0"}, "next")
	publish(t, e, "npm-dev", npmtest.Package{Name: "@acme/ui", Version: "0.9.0"}, "old")
	publish(t, e, "npm-dev", npmtest.Package{Name: "@acme/ui", Version: "1.2.0"}, "latest")
	var rep struct {
		Repositories []struct {
			Expired []struct{ Version, Rule string }
		}
	}
	e.Admin().MustJSON("POST", "/api/v1/retention", map[string]any{"repos": []string{"npm-dev"}}, 200, &rep)
	var got []string
	for _, x := range rep.Repositories[0].Expired {
		got = append(got, x.Version)
	}
	if strings.Join(got, ",") != "1.1.0,0.9.0" {
		t.Fatalf("expired %v", got)
	}
	resp, body := e.Admin().Do("GET", "/repository/npm-dev/"+npmtest.EscapeName("@acme/ui"), nil)
	var doc struct {
		DistTags map[string]string         `json:"dist-tags"`
		Versions map[string]map[string]any `json:"versions"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &doc) != nil {
		t.Fatalf("packument: %d %s", resp.StatusCode, body)
	}
	if len(doc.Versions) != 2 || doc.Versions["1.0.0"] == nil || doc.Versions["1.2.0"] == nil ||
		doc.DistTags["latest"] != "1.2.0" || doc.DistTags["beta"] != "1.0.0" || doc.DistTags["next"] != "" {
		t.Fatalf("packument after retention: %v %v", doc.DistTags, len(doc.Versions))
	}
	if resp, _ := e.Admin().Do("GET", "/repository/npm-dev/@acme/ui/-/ui-1.1.0.tgz", nil); resp.StatusCode != 404 {
		t.Errorf("tarball of an expired version: %d", resp.StatusCode)
	}
	if resp, _ := e.Admin().Do("GET", "/repository/npm-dev/@acme/ui/-/ui-1.2.0.tgz", nil); resp.StatusCode != 200 {
		t.Errorf("tarball of a kept version: %d", resp.StatusCode)
	}
}
