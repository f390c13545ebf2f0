package maven_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

func TestSearchAPI(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	deploy(t, e, "mvn-dev", "com.acme", "lib", "1.0.0")
	deploy(t, e, "mvn-dev", "com.acme", "lib", "1.1.0")
	deploy(t, e, "mvn-release", "com.acme", "lib", "1.0.0")
	deploy(t, e, "mvn-dev", "com.acme", "other", "1.0.0")
	deploy(t, e, "mvn-dev", "com.acme.sub", "lib", "3.0")
	type item struct {
		Repo, GroupID, ArtifactID, Version string
		Files                              []struct{ Path string }
	}
	search := func(q string) []item {
		t.Helper()
		resp, body := e.Do(http.MethodGet, "/api/v1/search/maven?"+q, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("search %s: %d %s", q, resp.StatusCode, body)
		}
		var out struct {
			Items []struct {
				Repo       string `json:"repo"`
				GroupID    string `json:"group_id"`
				ArtifactID string `json:"artifact_id"`
				Version    string `json:"version"`
				Files      []struct {
					Path string `json:"path"`
				} `json:"files"`
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatal(err)
		}
		var items []item
		for _, i := range out.Items {
			it := item{Repo: i.Repo, GroupID: i.GroupID, ArtifactID: i.ArtifactID, Version: i.Version}
			for _, f := range i.Files {
				it.Files = append(it.Files, struct{ Path string }{f.Path})
			}
			items = append(items, it)
		}
		return items
	}
	if got := search("g=com.acme&a=lib&v=1.0.0"); len(got) != 2 || got[0].Repo != "mvn-dev" || got[1].Repo != "mvn-release" || len(got[0].Files) != 2 {
		t.Fatalf("g+a+v: %+v", got)
	}
	if got := search("g=com.acme&a=lib"); len(got) != 3 {
		t.Fatalf("g+a: %+v", got)
	}
	if got := search("g=com.acme"); len(got) != 4 { // lib x3, other; not com.acme.sub
		t.Fatalf("g: %+v", got)
	}
	if got := search("g=com.acme*"); len(got) != 5 {
		t.Fatalf("g prefix: %+v", got)
	}
	if got := search("a=lib&repo=mvn-dev"); len(got) != 3 {
		t.Fatalf("a in one repo: %+v", got)
	}
	if got := search("v=3.0"); len(got) != 1 || got[0].GroupID != "com.acme.sub" {
		t.Fatalf("v: %+v", got)
	}
	// Deleted versions disappear; unreadable repositories are not searched.
	if resp, _ := e.Do(http.MethodDelete, "/repository/mvn-dev/com/acme/lib/1.1.0/", nil); resp.StatusCode != 204 {
		t.Fatal("delete failed")
	}
	if got := search("g=com.acme&a=lib&repo=mvn-dev"); len(got) != 1 {
		t.Fatalf("after delete: %+v", got)
	}
	e.CreateUser("carol", "carol-password")
	resp, body := e.As("carol", "carol-password").Do(http.MethodGet, "/api/v1/search/maven?g=com.acme", nil)
	if resp.StatusCode != 200 || body != "{\n  \"items\": []\n}\n" && body != `{"items":[]}`+"\n" {
		t.Fatalf("a user without read sees: %d %s", resp.StatusCode, body)
	}
}
