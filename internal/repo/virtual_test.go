package repo_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

const virtualConfig = `
repositories:
  - {key: v-release, format: raw, kind: local, tier: release}
  - {key: v-staging, format: raw, kind: local, tier: staging}
  - {key: v-dev, format: raw, kind: local, tier: dev}
  - {key: v-inner, format: raw, kind: virtual, members: [v-staging, v-dev]}
  - {key: v-all, format: raw, kind: virtual, members: [v-release, v-inner], default_deploy: v-release}
`

func TestVirtualResolvesInOrder(t *testing.T) {
	e := apptest.New(t, virtualConfig)
	e.Put("v-dev", "lib/x.txt", "from dev")
	e.Put("v-staging", "lib/x.txt", "from staging")
	e.Put("v-dev", "lib/only-dev.txt", "only in dev")
	e.Put("v-release", "lib/r.txt", "from release")

	tests := []struct{ repo, path, want, from string }{
		{"v-inner", "lib/x.txt", "from staging", "v-staging"},
		{"v-all", "lib/x.txt", "from staging", "v-staging"},
		{"v-all", "lib/only-dev.txt", "only in dev", "v-dev"},
		{"v-all", "lib/r.txt", "from release", "v-release"},
	}
	for _, tt := range tests {
		resp, body := e.Admin().Do(http.MethodGet, "/repository/"+tt.repo+"/"+tt.path, nil)
		if resp.StatusCode != http.StatusOK || body != tt.want || resp.Header.Get("X-Coffer-Repository") != tt.from {
			t.Errorf("GET %s/%s: %d %q from %q; want %q from %s", tt.repo, tt.path, resp.StatusCode, body,
				resp.Header.Get("X-Coffer-Repository"), tt.want, tt.from)
		}
	}
	// A newer copy in an earlier member wins at once.
	e.Put("v-release", "lib/x.txt", "from release")
	if _, body := e.Admin().Do(http.MethodGet, "/repository/v-all/lib/x.txt", nil); body != "from release" {
		t.Errorf("after deploying to the first member: %q", body)
	}
	resp, body := e.Admin().Do(http.MethodGet, "/repository/v-all/lib/none.txt", nil)
	if resp.StatusCode != http.StatusNotFound || !json.Valid([]byte(body)) {
		t.Errorf("missing everywhere: %d %s", resp.StatusCode, body)
	}
	wantMessage(t, body, "lib/none.txt", "v-all")

	// The listing merges the members, first member wins a name.
	resp, body = e.Admin().Do(http.MethodGet, "/repository/v-all/lib/", nil)
	var l struct {
		Children []struct {
			Name, SHA256 string
		} `json:"children"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &l) != nil {
		t.Fatalf("virtual listing: %d %s", resp.StatusCode, body)
	}
	var names []string
	for _, c := range l.Children {
		names = append(names, c.Name)
	}
	if len(names) != 3 || names[0] != "only-dev.txt" || names[1] != "r.txt" || names[2] != "x.txt" {
		t.Errorf("virtual listing names: %v", names)
	}

	// Deploying through v-all goes to its default_deploy, under its policy.
	st, body := put(t, e, "v-all", "lib/r.txt", "changed")
	if st != http.StatusConflict {
		t.Fatalf("overwrite through the virtual repository: %d %s", st, body)
	}
	wantMessage(t, body, "v-release", "release tier")
}
