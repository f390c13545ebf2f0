package repo_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/repo"
)

// A format can cache a fetched file together with its package version, and
// may fetch from URLs found in upstream metadata; the upstream's credentials
// go only to the upstream's own host.
func TestFetchWithComponentAndForeignURL(t *testing.T) {
	var mu sync.Mutex
	auths := map[string]string{}
	handler := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			auths[name] = r.Header.Get("Authorization")
			mu.Unlock()
			fmt.Fprint(w, "content from "+name)
		}
	}
	up := httptest.NewServer(handler("upstream"))
	defer up.Close()
	cdn := httptest.NewServer(handler("cdn"))
	defer cdn.Close()

	e := apptest.New(t, fmt.Sprintf(`repositories:
  - {key: rem, format: raw, kind: remote, upstream: {url: %q, username: u}}
`, up.URL+"/"))
	m := e.App.Repos
	ctx := adminCtx(t, e)
	rem, _ := m.Repo("rem")

	g0 := m.Generation(rem.ID, "pkg")
	a, err := m.Fetch(ctx, rem, "pkg/-/pkg-1.0.0.tgz", repo.FetchSpec{
		Immutable: true,
		URL:       cdn.URL + "/pkg-1.0.0.tgz",
		Component: &repo.ComponentSpec{Name: "pkg", Version: "1.0.0", Attributes: []byte(`{"version":"1.0.0"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.ComponentID == "" || m.Generation(rem.ID, "pkg") == g0 {
		t.Fatalf("fetched asset not linked to its component (%q) or generation not bumped", a.ComponentID)
	}
	c, err := e.App.Store.GetComponent(context.Background(), rem.ID, "pkg", "1.0.0")
	if err != nil || string(c.Attributes) != `{"version":"1.0.0"}` || c.ID != a.ComponentID {
		t.Fatalf("component: %+v %v", c, err)
	}
	if _, err := m.Fetch(ctx, rem, "other.txt", repo.FetchSpec{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if auths["cdn"] != "" {
		t.Errorf("upstream credentials sent to another host: %q", auths["cdn"])
	}
	if auths["upstream"] == "" {
		t.Errorf("upstream credentials not sent to the upstream")
	}
}
