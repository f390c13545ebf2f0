package auth_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

const rbacConfig = `
repositories:
  - {key: raw-dev, format: raw, kind: local, tier: dev}
  - {key: raw-staging-a, format: raw, kind: local, tier: staging}
  - {key: raw-staging-b, format: raw, kind: local, tier: staging}
  - {key: raw-release, format: raw, kind: local, tier: release}
  - {key: raw-private, format: raw, kind: local, tier: dev}
  - {key: raw-open, format: raw, kind: local, tier: release, anonymous_read: true}
  - {key: public-docs, format: raw, kind: local, tier: release}
`

// errorMessage returns the message of a raw ({"errors":[...]}) or API
// ({"error":{...}}) error body.
func errorMessage(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Errors []struct{ Message string }     `json:"errors"`
		Error  struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not a JSON error: %q", body)
	}
	if len(e.Errors) > 0 {
		return e.Errors[0].Message
	}
	if e.Error.Message == "" {
		t.Fatalf("no error message in %q", body)
	}
	return e.Error.Message
}

func expect(t *testing.T, c apptest.Caller, method, path, body string, status int, msg ...string) {
	t.Helper()
	var resp *http.Response
	var text string
	if body != "" || method == http.MethodPut {
		resp, text = c.Do(method, path, strings.NewReader(body))
	} else {
		resp, text = c.Do(method, path, nil)
	}
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, status, text)
	}
	if status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != `Basic realm="Coffer"` {
		t.Errorf("%s %s: 401 without WWW-Authenticate (%v)", method, path, resp.Header)
	}
	if len(msg) > 0 && method != http.MethodHead {
		m := errorMessage(t, text)
		for _, part := range msg {
			if !strings.Contains(m, part) {
				t.Errorf("%s %s: message %q does not say %q", method, path, m, part)
			}
		}
	}
}

func newEnv(t *testing.T) *apptest.Env {
	e := apptest.New(t, rbacConfig)
	for _, k := range []string{"raw-dev", "raw-staging-a", "raw-release", "raw-private", "raw-open", "public-docs"} {
		e.Put(k, "f.txt", "content of "+k)
	}
	return e
}

func TestCredentials(t *testing.T) {
	e := newEnv(t)
	e.CreateUser("alice", "alice-password")
	e.Grant("user", "alice", "raw-private", "read")

	expect(t, e.As("alice", "alice-password"), "GET", "/repository/raw-private/f.txt", "", 200)
	for name, c := range map[string]apptest.Caller{
		"wrong password": e.As("alice", "wrong-password"),
		"unknown user":   e.As("mallory", "alice-password"),
		"wrong token":    e.Bearer("cft_" + strings.Repeat("A", 43)),
		"wrong admin pw": e.As("admin", "not-the-password"),
		"not a token":    e.Bearer("garbage"),
	} {
		t.Run(name, func(t *testing.T) {
			// Wrong credentials are refused even where anonymous may read.
			for _, p := range []string{"/repository/raw-private/f.txt", "/repository/raw-open/f.txt"} {
				expect(t, c, "GET", p, "", 401)
			}
			expect(t, c, "PUT", "/repository/raw-dev/new.txt", "x", 401)
			expect(t, c, "GET", "/api/v1/repositories", "", 401)
		})
	}
	// No credentials on a private repository: 401 asking for them.
	anon := e.Anonymous()
	expect(t, anon, "GET", "/repository/raw-private/f.txt", "", 401, "authentication required", "read", "raw-private")
	expect(t, anon, "HEAD", "/repository/raw-private/f.txt", "", 401)
	expect(t, anon, "GET", "/repository/raw-private/", "", 401)
	expect(t, anon, "PUT", "/repository/raw-private/g.txt", "x", 401, "write", "raw-private")
	expect(t, anon, "DELETE", "/repository/raw-private/f.txt", "", 401, "delete", "raw-private")
	expect(t, anon, "GET", "/api/v1/users", "", 401)
	expect(t, anon, "GET", "/repository/raw-private/g.txt", "", 401)
}

func TestPermissionsOverHTTP(t *testing.T) {
	e := newEnv(t)
	e.CreateUser("carol", "carol-password")
	carol := e.As("carol", "carol-password")

	// Valid credentials without a grant: 403 naming the action and repository.
	expect(t, carol, "GET", "/repository/raw-private/f.txt", "", 403, "carol", "read", "raw-private")
	expect(t, carol, "GET", "/repository/raw-private/", "", 403, "read", "raw-private")
	expect(t, carol, "PUT", "/repository/raw-private/g.txt", "x", 403, "carol", "write", "raw-private")
	expect(t, carol, "DELETE", "/repository/raw-private/f.txt", "", 403, "delete", "raw-private")
	expect(t, carol, "GET", "/api/v1/repositories/raw-private", "", 403, "read", "raw-private")
	expect(t, carol, "GET", "/api/v1/users", "", 403, "admin")

	// read, then write; overwrite and delete are separate actions.
	e.Grant("user", "carol", "raw-private", "read", "write")
	expect(t, carol, "GET", "/repository/raw-private/f.txt", "", 200)
	expect(t, carol, "PUT", "/repository/raw-private/g.txt", "carol's", 201)
	expect(t, carol, "PUT", "/repository/raw-private/g.txt", "carol's again", 403, "overwrite", "raw-private")
	expect(t, carol, "DELETE", "/repository/raw-private/g.txt", "", 403, "delete", "raw-private")
	expect(t, carol, "GET", "/repository/raw-private/g.txt", "", 200)
	e.Grant("user", "carol", "raw-private", "overwrite", "delete")
	expect(t, carol, "PUT", "/repository/raw-private/g.txt", "carol's again", 200)
	expect(t, carol, "DELETE", "/repository/raw-private/g.txt", "", 204)

	// Deploys are attributed to their author.
	expect(t, carol, "PUT", "/repository/raw-private/h.txt", "by carol", 201)
	var art struct {
		CreatedBy string `json:"created_by"`
	}
	e.Admin().MustJSON("GET", "/api/v1/repositories/raw-private/artifacts/h.txt", nil, 200, &art)
	if art.CreatedBy != "carol" {
		t.Errorf("created_by = %q", art.CreatedBy)
	}
}

// An identical re-upload is not an overwrite: a CI re-run by a user who may
// write but not overwrite succeeds without change.
func TestIdenticalReuploadNeedsNoOverwritePermission(t *testing.T) {
	e := newEnv(t)
	e.CreateUser("ci", "ci-password")
	e.Grant("user", "ci", "raw-dev", "read", "write")
	ci := e.As("ci", "ci-password")
	expect(t, ci, "PUT", "/repository/raw-dev/build.txt", "build 7", 201)
	expect(t, ci, "PUT", "/repository/raw-dev/build.txt", "build 7", 200)
	expect(t, ci, "PUT", "/repository/raw-dev/build.txt", "build 8", 403, "overwrite", "raw-dev")
	resp, body := ci.Do("GET", "/repository/raw-dev/build.txt", nil)
	if resp.StatusCode != 200 || body != "build 7" {
		t.Errorf("GET: %d %q", resp.StatusCode, body)
	}
}

func TestGroupGrants(t *testing.T) {
	e := newEnv(t)
	e.CreateGroup("devs")
	e.CreateUser("dave", "dave-password", "devs")
	e.CreateUser("erin", "erin-password")
	e.Grant("group", "devs", "raw-staging-*", "read", "write")
	dave, erin := e.As("dave", "dave-password"), e.As("erin", "erin-password")

	expect(t, dave, "PUT", "/repository/raw-staging-a/d.txt", "d", 201)
	expect(t, dave, "PUT", "/repository/raw-staging-b/d.txt", "d", 201)
	expect(t, dave, "PUT", "/repository/raw-dev/d.txt", "d", 403, "write", "raw-dev")
	expect(t, dave, "PUT", "/repository/raw-release/d.txt", "d", 403, "write", "raw-release")
	expect(t, erin, "GET", "/repository/raw-staging-a/d.txt", "", 403, "erin", "read", "raw-staging-a")

	// Joining the group gives erin its grants; leaving takes them away.
	e.Admin().MustJSON("PUT", "/api/v1/groups/devs/members/erin", nil, 204, nil)
	expect(t, erin, "GET", "/repository/raw-staging-a/d.txt", "", 200)
	e.Admin().MustJSON("DELETE", "/api/v1/groups/devs/members/erin", nil, 204, nil)
	expect(t, erin, "GET", "/repository/raw-staging-a/d.txt", "", 403)

	// Revoking the grant takes effect at once.
	var perms []struct {
		ID        string `json:"id"`
		Principal string `json:"principal"`
	}
	e.Admin().MustJSON("GET", "/api/v1/permissions", nil, 200, &perms)
	for _, p := range perms {
		if p.Principal == "devs" {
			e.Admin().MustJSON("DELETE", "/api/v1/permissions/"+p.ID, nil, 204, nil)
		}
	}
	expect(t, dave, "GET", "/repository/raw-staging-a/d.txt", "", 403)
}

func TestAnonymousAccess(t *testing.T) {
	e := newEnv(t)
	anon := e.Anonymous()

	// anonymous_read: reads without credentials, nothing else.
	expect(t, anon, "GET", "/repository/raw-open/f.txt", "", 200)
	expect(t, anon, "HEAD", "/repository/raw-open/f.txt", "", 200)
	expect(t, anon, "GET", "/repository/raw-open/", "", 200)
	expect(t, anon, "PUT", "/repository/raw-open/g.txt", "x", 401, "write", "raw-open")
	expect(t, anon, "DELETE", "/repository/raw-open/f.txt", "", 401)
	// An authenticated user without grants may read it too.
	e.CreateUser("frank", "frank-password")
	expect(t, e.As("frank", "frank-password"), "GET", "/repository/raw-open/f.txt", "", 200)

	// An anonymous grant on a pattern.
	expect(t, anon, "GET", "/repository/public-docs/f.txt", "", 401)
	e.Grant("anonymous", "", "public-*", "read")
	expect(t, anon, "GET", "/repository/public-docs/f.txt", "", 200)
	expect(t, anon, "PUT", "/repository/public-docs/g.txt", "x", 401)
	expect(t, anon, "GET", "/repository/raw-private/f.txt", "", 401)

	// Anonymous callers see only what they may read.
	var repos []struct{ Key string }
	anon.MustJSON("GET", "/api/v1/repositories", nil, 200, &repos)
	var keys []string
	for _, r := range repos {
		keys = append(keys, r.Key)
	}
	if strings.Join(keys, ",") != "public-docs,raw-open" {
		t.Errorf("anonymous repository list: %v", keys)
	}
	var who struct {
		Name      string `json:"name"`
		Anonymous bool   `json:"anonymous"`
	}
	anon.MustJSON("GET", "/api/v1/whoami", nil, 200, &who)
	if who.Name != "anonymous" || !who.Anonymous {
		t.Errorf("whoami: %+v", who)
	}
}

func TestTokenScopesOverHTTP(t *testing.T) {
	e := newEnv(t)
	admin := e.Admin()
	ci := admin.CreateToken(map[string]any{"preset": "ci"})
	pull := admin.CreateToken(map[string]any{"preset": "pull", "name": "prod-pull"})
	full := admin.CreateToken(map[string]any{"name": "full"})

	for i, c := range []apptest.Caller{e.Bearer(ci), e.As("admin", ci), e.As("token", ci)} {
		// ci: writes staging-tier repositories only, reads all.
		path := "/repository/raw-staging-a/ci-" + string(rune('0'+i)) + ".txt"
		expect(t, c, "PUT", path, "ci build", 201)
		expect(t, c, "PUT", path, "ci build", 200)
		expect(t, c, "PUT", path, "another build", 409, "staging tier: no overwrite")
		expect(t, c, "PUT", "/repository/raw-dev/ci.txt", "x", 403, `token "ci"`, "write", "raw-dev")
		expect(t, c, "PUT", "/repository/raw-release/ci.txt", "x", 403, "write", "raw-release")
		expect(t, c, "DELETE", path, "", 403, "delete", "raw-staging-a")
		for _, k := range []string{"raw-dev", "raw-staging-a", "raw-release", "raw-private"} {
			expect(t, c, "GET", "/repository/"+k+"/f.txt", "", 200)
		}
		// A scoped admin token is not an administrator.
		expect(t, c, "GET", "/api/v1/users", "", 403, "admin")
		expect(t, c, "PUT", "/api/v1/repositories/raw-new", `{"format":"raw","kind":"local"}`, 403)
	}

	// pull: reads release-tier repositories only.
	p := e.Bearer(pull)
	expect(t, p, "GET", "/repository/raw-release/f.txt", "", 200)
	expect(t, p, "GET", "/repository/raw-open/f.txt", "", 200)
	expect(t, p, "GET", "/repository/raw-staging-a/f.txt", "", 403, `token "prod-pull"`, "read", "raw-staging-a")
	expect(t, p, "GET", "/repository/raw-dev/f.txt", "", 403, "read", "raw-dev")
	expect(t, p, "PUT", "/repository/raw-release/p.txt", "x", 403, "write", "raw-release")

	// An unscoped token acts as its user.
	f := e.Bearer(full)
	expect(t, f, "PUT", "/repository/raw-dev/full.txt", "x", 201)
	expect(t, f, "GET", "/api/v1/users", "", 200)

	// A scoped token cannot create tokens, even with its user's rights.
	for _, s := range []string{ci, pull} {
		resp, body := e.Bearer(s).JSON("POST", "/api/v1/tokens", map[string]any{"name": "escalate"})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(errorMessage(t, body), "scoped token cannot create tokens") {
			t.Errorf("scoped token creating a token: %d %s", resp.StatusCode, body)
		}
	}
	var tokens []struct{ Name string }
	admin.MustJSON("GET", "/api/v1/tokens", nil, 200, &tokens)
	if len(tokens) != 3 {
		t.Errorf("tokens after refused creations: %+v", tokens)
	}

	// whoami shows the token and its scopes.
	var who struct {
		Name  string `json:"name"`
		Token struct {
			Name   string `json:"name"`
			Scopes []struct {
				Repos   string   `json:"repos"`
				Tiers   []string `json:"tiers"`
				Actions []string `json:"actions"`
			} `json:"scopes"`
		} `json:"token"`
	}
	e.Bearer(pull).MustJSON("GET", "/api/v1/whoami", nil, 200, &who)
	if who.Name != "admin" || who.Token.Name != "prod-pull" || len(who.Token.Scopes) != 1 || who.Token.Scopes[0].Tiers[0] != "release" {
		t.Errorf("whoami with a token: %+v", who)
	}

	// Revoked: 401.
	var list []struct{ ID, Name string }
	admin.MustJSON("GET", "/api/v1/tokens", nil, 200, &list)
	for _, tk := range list {
		if tk.Name == "prod-pull" {
			admin.MustJSON("DELETE", "/api/v1/tokens/"+tk.ID, nil, 204, nil)
		}
	}
	expect(t, e.Bearer(pull), "GET", "/repository/raw-release/f.txt", "", 401, "revoked")
}

func TestExpiredToken(t *testing.T) {
	e := newEnv(t)
	expired := e.Admin().CreateToken(map[string]any{"name": "short", "expires_in": "1ns"})
	expect(t, e.Bearer(expired), "GET", "/repository/raw-dev/f.txt", "", 401, "expired")
	expect(t, e.As("admin", expired), "GET", "/api/v1/whoami", "", 401, "expired")
	live := e.Admin().CreateToken(map[string]any{"name": "month", "expires_in": "30d"})
	expect(t, e.Bearer(live), "GET", "/repository/raw-dev/f.txt", "", 200)
	var tokens []struct {
		Name      string `json:"name"`
		ExpiresAt string `json:"expires_at"`
	}
	e.Admin().MustJSON("GET", "/api/v1/tokens", nil, 200, &tokens)
	for _, tk := range tokens {
		if tk.ExpiresAt == "" {
			t.Errorf("token %s has no expiry", tk.Name)
		}
	}
	for _, bad := range []string{"-1h", "0", "soon", "0d"} {
		resp, body := e.Admin().JSON("POST", "/api/v1/tokens", map[string]any{"expires_in": bad})
		if resp.StatusCode != 400 || !strings.Contains(body, "expires_in") {
			t.Errorf("expires_in %q: %d %s", bad, resp.StatusCode, body)
		}
	}
}

func TestDisabledUserOverHTTP(t *testing.T) {
	e := newEnv(t)
	e.CreateUser("gina", "gina-password")
	e.Grant("user", "gina", "raw-*", "read")
	gina := e.As("gina", "gina-password")
	secret := gina.CreateToken(map[string]any{"name": "gina-cli"})
	expect(t, gina, "GET", "/repository/raw-dev/f.txt", "", 200)
	expect(t, e.Bearer(secret), "GET", "/repository/raw-dev/f.txt", "", 200)

	e.Admin().MustJSON("PATCH", "/api/v1/users/gina", map[string]any{"disabled": true}, 200, nil)
	expect(t, gina, "GET", "/repository/raw-dev/f.txt", "", 401)
	expect(t, e.Bearer(secret), "GET", "/repository/raw-dev/f.txt", "", 401, "disabled")
	expect(t, gina, "GET", "/api/v1/whoami", "", 401)

	e.Admin().MustJSON("PATCH", "/api/v1/users/gina", map[string]any{"disabled": false}, 200, nil)
	expect(t, gina, "GET", "/repository/raw-dev/f.txt", "", 200)

	// A user cannot enable, disable or promote themself.
	resp, body := gina.JSON("PATCH", "/api/v1/users/gina", map[string]any{"admin": true})
	if resp.StatusCode != 403 {
		t.Errorf("self-promotion: %d %s", resp.StatusCode, body)
	}
	// But may change their own password, after which the old one fails.
	gina.MustJSON("PATCH", "/api/v1/users/gina", map[string]any{"password": "gina-new-password"}, 200, nil)
	expect(t, gina, "GET", "/repository/raw-dev/f.txt", "", 401)
	expect(t, e.As("gina", "gina-new-password"), "GET", "/repository/raw-dev/f.txt", "", 200)
}

func TestRepositoryKeyPatterns(t *testing.T) {
	e := newEnv(t)
	e.CreateUser("hal", "hal-password")
	e.Grant("user", "hal", "raw-staging-*,public-docs", "read", "write")
	hal := e.As("hal", "hal-password")
	for key, status := range map[string]int{
		"raw-staging-a": 201,
		"raw-staging-b": 201,
		"public-docs":   201,
		"raw-dev":       403,
		"raw-release":   403,
		"raw-private":   403,
	} {
		expect(t, hal, "PUT", "/repository/"+key+"/hal.txt", "hal", status)
	}
}
