package npm_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/format/npm/npmtest"
)

func TestLoginWhoamiLogout(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	e.CreateUser("alice", "alice-password")
	e.Grant("user", "alice", "npm*", "read", "write")
	anon := e.Anonymous()
	login := func(c apptest.Caller, user, pw string) (*http.Response, string) {
		return c.JSON(http.MethodPut, "/repository/npm/-/user/org.couchdb.user:"+url.PathEscape(user),
			map[string]any{"_id": "org.couchdb.user:" + user, "name": user, "password": pw, "type": "user", "roles": []string{}})
	}
	// npm tries web login first; a 4xx makes it fall back.
	resp, body := anon.Do(http.MethodPost, "/repository/npm/-/v1/login", strings.NewReader("{}"))
	wantError(t, resp, body, http.StatusNotFound)

	resp, body = login(anon, "alice", "wrong-password")
	wantError(t, resp, body, http.StatusUnauthorized, "wrong user name or password")
	resp, body = login(anon, "nobody", "whatever-pw")
	wantError(t, resp, body, http.StatusUnauthorized, "wrong user name or password")
	resp, body = login(anon, "alice", "")
	wantError(t, resp, body, http.StatusBadRequest, "password")

	resp, body = login(anon, "alice", "alice-password")
	var out struct {
		OK    bool   `json:"ok"`
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal([]byte(body), &out) != nil || !out.OK || out.Token == "" ||
		out.ID != "org.couchdb.user:alice" {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	tok := e.Bearer(out.Token)
	resp, body = tok.Do(http.MethodGet, "/repository/npm/-/whoami", nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != `{"username":"alice"}` {
		t.Fatalf("whoami: %d %s", resp.StatusCode, body)
	}
	// The token publishes as alice.
	publishWith := func(c apptest.Caller, v string) (*http.Response, string) {
		p := npmtest.Package{Name: "@acme/tok", Version: v}
		return putDoc(c, "npm", p.Name, npmtest.PublishDocument(p, p.Tarball(), "latest", ""))
	}
	if resp, body := publishWith(tok, "1.0.0"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish with the token: %d %s", resp.StatusCode, body)
	}
	p, _, _ := getPackument(t, tok, "npm", "@acme/tok")
	if !strings.Contains(string(p.Versions["1.0.0"]), `"_npmUser":{"email":"","name":"alice"}`) {
		t.Errorf("publisher not recorded: %s", p.Versions["1.0.0"])
	}
	// A token is not a password: no exchanging a (possibly scoped) token for a new one.
	resp, body = login(anon, "alice", out.Token)
	wantError(t, resp, body, http.StatusUnauthorized, "password")

	// whoami without credentials.
	resp, body = anon.Do(http.MethodGet, "/repository/npm/-/whoami", nil)
	wantError(t, resp, body, http.StatusUnauthorized)

	// npm logout revokes the token.
	resp, body = tok.Do(http.MethodDelete, "/repository/npm/-/user/token/"+out.Token, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	resp, body = tok.Do(http.MethodGet, "/repository/npm/-/whoami", nil)
	wantError(t, resp, body, http.StatusUnauthorized)
	resp, body = publishWith(tok, "1.0.1")
	wantError(t, resp, body, http.StatusUnauthorized)

	// The audit endpoint answers harmlessly.
	resp, body = anon.Do(http.MethodPost, "/repository/npm/-/npm/v1/security/advisories/bulk", strings.NewReader(`{"x":["1.0.0"]}`))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "{}" {
		t.Errorf("advisories: %d %s", resp.StatusCode, body)
	}
	resp, body = tok.Do(http.MethodGet, "/repository/npm/-/ping", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("ping with a revoked token: %d %s", resp.StatusCode, body)
	}
}

func TestSearch(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	publish(t, e, "npm-dev", npmtest.Package{Name: "@acme/button", Version: "1.0.0", Description: "A clickable button"}, "latest")
	publish(t, e, "npm-dev", npmtest.Package{Name: "@acme/button", Version: "1.1.0", Description: "A clickable button"}, "latest")
	publish(t, e, "npm-release", npmtest.Package{Name: "icons", Version: "2.0.0", Description: "SVG icons for buttons"}, "latest")
	publish(t, e, "npm-staging", npmtest.Package{Name: "@other/grid", Version: "0.1.0", Description: "layout"}, "latest")
	search := func(key, text string) []string {
		t.Helper()
		var out struct {
			Objects []struct {
				Package struct {
					Name        string `json:"name"`
					Version     string `json:"version"`
					Maintainers []struct {
						Username string `json:"username"`
					} `json:"maintainers"`
					Date string `json:"date"`
				} `json:"package"`
			} `json:"objects"`
			Total int `json:"total"`
		}
		e.Admin().MustJSON(http.MethodGet, "/repository/"+key+"/-/v1/search?size=20&from=0&text="+url.QueryEscape(text), nil, http.StatusOK, &out)
		var names []string
		for _, o := range out.Objects {
			names = append(names, o.Package.Name+"@"+o.Package.Version)
			if o.Package.Date == "" || len(o.Package.Maintainers) == 0 {
				t.Errorf("search result without date or maintainers: %+v", o.Package)
			}
		}
		if out.Total != len(names) {
			t.Errorf("total %d for %d results", out.Total, len(names))
		}
		return names
	}
	for _, tt := range []struct{ key, text, want string }{
		{"npm", "button", "@acme/button@1.1.0 icons@2.0.0"}, // the name match first
		{"npm-dev", "button", "@acme/button@1.1.0"},
		{"npm", "scope:acme", "@acme/button@1.1.0"},
		{"npm", "svg", "icons@2.0.0"},
		{"npm", "grid", "@other/grid@0.1.0"},
		{"npm", "nothing-matches", ""},
		{"npm", "", "@acme/button@1.1.0 @other/grid@0.1.0 icons@2.0.0"},
	} {
		if got := strings.Join(search(tt.key, tt.text), " "); got != tt.want {
			t.Errorf("search %s %q: %q, want %q", tt.key, tt.text, got, tt.want)
		}
	}
}
