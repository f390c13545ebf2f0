package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/server"
)

const apiConfig = `
repositories:
  - {key: raw-dev, format: raw, kind: local, tier: dev, description: Developer files}
  - {key: raw-release, format: raw, kind: local, tier: release}
  - key: raw-remote
    format: raw
    kind: remote
    upstream: {url: "http://127.0.0.1:9/files"}
  - {key: raw-all, format: raw, kind: virtual, members: [raw-release, raw-dev, raw-remote], default_deploy: raw-dev}
`

// apiErr is the management API's error body.
type apiErr struct {
	Error struct {
		Code     string `json:"code"`
		Message  string `json:"message"`
		Problems []struct {
			Line    int    `json:"line"`
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"problems"`
	} `json:"error"`
}

func decodeErr(t *testing.T, resp *http.Response, body string) apiErr {
	t.Helper()
	var e apiErr
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("%d: body %q is not {\"error\":{\"code\",\"message\"}}", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	return e
}

func newAPIEnv(t *testing.T) *apptest.Env {
	e := apptest.New(t, apiConfig)
	e.Put("raw-dev", "dir/a.txt", "aaa")
	e.Put("raw-dev", "dir/b.txt", "bbbb")
	e.Put("raw-dev", "dir/sub/c.bin", "ccccc")
	e.Put("raw-release", "app/1.0/app.tgz", "release bytes")
	return e
}

type obj = map[string]any

// field walks a decoded JSON value: field(v, "results", 0, "action").
func field(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func TestEveryRouteAnswers(t *testing.T) {
	e := newAPIEnv(t)
	e.CreateUser("alice", "alice-password")
	state := map[string]string{}
	type step struct {
		route  string // the route table pattern this exercises
		method string
		path   string // {token} and {perm} are replaced from state
		body   any
		status int
		check  func(t *testing.T, v any)
	}
	isList := func(min int) func(t *testing.T, v any) {
		return func(t *testing.T, v any) {
			if a, ok := v.([]any); !ok || len(a) < min {
				t.Errorf("want a list of at least %d, got %v", min, v)
			}
		}
	}
	eq := func(want any, path ...any) func(t *testing.T, v any) {
		return func(t *testing.T, v any) {
			if got := field(v, path...); got != want {
				t.Errorf("%v = %#v, want %#v", path, got, want)
			}
		}
	}
	all := func(cs ...func(t *testing.T, v any)) func(t *testing.T, v any) {
		return func(t *testing.T, v any) {
			for _, c := range cs {
				c(t, v)
			}
		}
	}
	decl := obj{"key": "raw-new", "format": "raw", "kind": "local", "tier": "dev"}
	for _, key := range []string{"raw-dev", "raw-release"} {
		rp, _ := e.App.Repos.Repo(key)
		if err := e.App.Store.SetTag(t.Context(), &meta.Tag{RepoID: rp.ID, Name: "team/api", Tag: "latest", Target: "sha256:0"}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []step{
		{"GET /api/v1/openapi.json", "GET", "/api/v1/openapi.json", nil, 200, eq("3.0.3", "openapi")},
		{"GET /api/v1/whoami", "GET", "/api/v1/whoami", nil, 200, all(eq("admin", "name"), eq(true, "admin"), eq(false, "anonymous"))},
		{"GET /api/v1/repositories", "GET", "/api/v1/repositories", nil, 200, all(isList(4), eq("raw-all", 0, "key"), eq("raw-dev", 1, "key"))},
		{"POST /api/v1/repositories", "POST", "/api/v1/repositories", decl, 201, all(eq("raw-new", "results", 0, "key"), eq("created", "results", 0, "action"))},
		{"POST /api/v1/repositories", "POST", "/api/v1/repositories", decl, 409, nil},
		{"PUT /api/v1/repositories", "PUT", "/api/v1/repositories", obj{"repositories": []any{decl}}, 200, eq("unchanged", "results", 0, "action")},
		{"GET /api/v1/repositories/{key}", "GET", "/api/v1/repositories/raw-dev", nil, 200, all(
			eq("raw-dev", "key"), eq("dev", "tier"), eq("Developer files", "description"), eq(true, "policy", "overwrite"),
			eq(e.URL+"/repository/raw-dev/", "url"))},
		{"GET /api/v1/repositories/{key}", "GET", "/api/v1/repositories/raw-all", nil, 200, all(
			eq("raw-release", "resolved_members", 0), eq("raw-dev", "default_deploy"))},
		{"GET /api/v1/repositories/{key}", "GET", "/api/v1/repositories/nope", nil, 404, nil},
		{"PUT /api/v1/repositories/{key}", "PUT", "/api/v1/repositories/raw-new", obj{"format": "raw", "kind": "local", "tier": "staging"}, 200, eq("updated", "results", 0, "action")},
		{"PUT /api/v1/repositories/{key}", "PUT", "/api/v1/repositories/raw-new", obj{"key": "other", "format": "raw", "kind": "local"}, 400, nil},
		{"GET /api/v1/repositories/{key}/artifacts", "GET", "/api/v1/repositories/raw-dev/artifacts?prefix=dir/&limit=2", nil, 200, all(
			eq("dir/a.txt", "items", 0, "path"), eq("dir/b.txt", "items", 1, "path"), eq("dir/b.txt", "next"))},
		{"GET /api/v1/repositories/{key}/artifacts", "GET", "/api/v1/repositories/raw-dev/artifacts?prefix=dir/&after=dir/b.txt", nil, 200, all(
			eq("dir/sub/c.bin", "items", 0, "path"), eq(nil, "next"))},
		{"GET /api/v1/repositories/{key}/artifacts", "GET", "/api/v1/repositories/raw-all/artifacts", nil, 400, nil},
		{"GET /api/v1/repositories/{key}/artifacts/{path...}", "GET", "/api/v1/repositories/raw-dev/artifacts/dir/a.txt", nil, 200, all(
			eq("raw-dev", "repo"), eq("dir/a.txt", "path"), eq(3.0, "size"), eq("admin", "created_by"),
			eq("9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0", "sha256"),
			eq(e.URL+"/repository/raw-dev/dir/a.txt", "download_uri"), eq(false, "deprecated"))},
		{"GET /api/v1/repositories/{key}/artifacts/{path...}", "GET", "/api/v1/repositories/raw-all/artifacts/dir/a.txt", nil, 200, eq("raw-dev", "repo")},
		{"GET /api/v1/repositories/{key}/artifacts/{path...}", "GET", "/api/v1/repositories/raw-dev/artifacts/dir/zzz", nil, 404, nil},
		{"GET /api/v1/repositories/{key}/artifacts/{path...}", "GET", "/api/v1/repositories/raw-remote/artifacts/x", nil, 404, nil},
		{"POST /api/v1/repositories/{key}/deprecations", "POST", "/api/v1/repositories/raw-release/deprecations", obj{"path": "app/1.0/app.tgz", "message": "old"}, 200, all(
			eq(true, "deprecated"), eq("old", "message"), eq("raw-release", "repo"))},
		{"POST /api/v1/repositories/{key}/deprecations", "POST", "/api/v1/repositories/raw-release/deprecations", obj{"message": "no path"}, 400, nil},
		{"DELETE /api/v1/repositories/{key}/deprecations/{path...}", "DELETE", "/api/v1/repositories/raw-release/deprecations/app/1.0/app.tgz", nil, 200, eq(false, "deprecated")},
		{"GET /api/v1/repositories/{key}/tags", "GET", "/api/v1/repositories/raw-dev/tags?name=team/api", nil, 200, all(
			eq("latest", 0, "tag"), eq("sha256:0", 0, "target"), eq("team/api", 0, "name"))},
		{"GET /api/v1/repositories/{key}/tags", "GET", "/api/v1/repositories/raw-dev/tags", nil, 400, nil},
		{"DELETE /api/v1/repositories/{key}/tags", "DELETE", "/api/v1/repositories/raw-dev/tags?name=team/api&tag=latest", nil, 204, nil},
		{"DELETE /api/v1/repositories/{key}/tags", "DELETE", "/api/v1/repositories/raw-dev/tags?name=team/api&tag=latest", nil, 404, nil},
		{"DELETE /api/v1/repositories/{key}/tags", "DELETE", "/api/v1/repositories/raw-release/tags?name=team/api&tag=latest", nil, 409, nil},
		{"GET /api/v1/search/artifacts", "GET", "/api/v1/search/artifacts?q=A.TXT", nil, 200, all(eq("dir/a.txt", "items", 0, "path"), eq(nil, "items", 1))},
		{"GET /api/v1/search/artifacts", "GET", "/api/v1/search/artifacts?q=app&repo=raw-dev", nil, 200, eq(nil, "items", 0)},
		{"GET /api/v1/search/maven", "GET", "/api/v1/search/maven?g=com.acme&a=lib", nil, 200, eq(nil, "items", 0)}, // no maven repository here: see format/maven
		{"GET /api/v1/search/maven", "GET", "/api/v1/search/maven", nil, 400, nil},
		{"GET /api/v1/storage", "GET", "/api/v1/storage", nil, 200, all(eq(4.0, "physical", "blobs"), eq(25.0, "logical_bytes"), eq(25.0, "physical", "bytes"))},
		{"GET /api/v1/users", "GET", "/api/v1/users", nil, 200, all(isList(2), eq("admin", 0, "name"), eq(true, 0, "admin"))},
		{"POST /api/v1/users", "POST", "/api/v1/users", obj{"name": "bob", "password": "bob-password", "email": "bob@example.com"}, 201, all(eq("bob", "name"), eq(false, "admin"))},
		{"POST /api/v1/users", "POST", "/api/v1/users", obj{"name": "bob", "password": "bob-password"}, 409, nil},
		{"GET /api/v1/users/{name}", "GET", "/api/v1/users/bob", nil, 200, eq("bob@example.com", "email")},
		{"GET /api/v1/users/{name}", "GET", "/api/v1/users/nobody", nil, 404, nil},
		{"PATCH /api/v1/users/{name}", "PATCH", "/api/v1/users/bob", obj{"email": "robert@example.com"}, 200, eq("robert@example.com", "email")},
		{"GET /api/v1/groups", "GET", "/api/v1/groups", nil, 200, isList(0)},
		{"POST /api/v1/groups", "POST", "/api/v1/groups", obj{"name": "ops", "description": "Operations", "members": []string{"bob"}}, 201, all(
			eq("ops", "name"), eq("bob", "members", 0))},
		{"GET /api/v1/groups/{name}", "GET", "/api/v1/groups/ops", nil, 200, eq("Operations", "description")},
		{"PUT /api/v1/groups/{name}/members/{user}", "PUT", "/api/v1/groups/ops/members/alice", nil, 204, nil},
		{"GET /api/v1/groups/{name}", "GET", "/api/v1/groups/ops", nil, 200, eq("bob", "members", 1)},
		{"DELETE /api/v1/groups/{name}/members/{user}", "DELETE", "/api/v1/groups/ops/members/alice", nil, 204, nil},
		{"POST /api/v1/tokens", "POST", "/api/v1/tokens", obj{"name": "deploy", "preset": "ci", "expires_in": "30d"}, 201, func(t *testing.T, v any) {
			tok, _ := field(v, "token").(string)
			if !strings.HasPrefix(tok, "cft_") || field(v, "name") != "deploy" || field(v, "expires_at") == nil || field(v, "scopes", 1, "tiers", 0) != "staging" {
				t.Errorf("token: %v", v)
			}
			state["token"], _ = field(v, "id").(string)
		}},
		{"POST /api/v1/tokens", "POST", "/api/v1/tokens", obj{"preset": "everything"}, 400, nil},
		{"GET /api/v1/tokens", "GET", "/api/v1/tokens", nil, 200, all(isList(1), eq(nil, 0, "token"), eq("deploy", 0, "name"))},
		{"DELETE /api/v1/tokens/{id}", "DELETE", "/api/v1/tokens/{token}", nil, 204, nil},
		{"DELETE /api/v1/tokens/{id}", "DELETE", "/api/v1/tokens/{token}", nil, 404, nil},
		{"POST /api/v1/permissions", "POST", "/api/v1/permissions", obj{"principal_type": "group", "principal": "ops", "repos": "raw-*", "actions": []string{"read", "write"}}, 201, func(t *testing.T, v any) {
			if field(v, "repos") != "raw-*" || field(v, "actions", 1) != "write" || field(v, "principal") != "ops" {
				t.Errorf("permission: %v", v)
			}
			state["perm"], _ = field(v, "id").(string)
		}},
		{"GET /api/v1/permissions", "GET", "/api/v1/permissions", nil, 200, all(isList(1), eq("group", 0, "principal_type"))},
		{"DELETE /api/v1/permissions/{id}", "DELETE", "/api/v1/permissions/{perm}", nil, 204, nil},
		{"GET /api/v1/audit", "GET", "/api/v1/audit?repo=raw-release&limit=5", nil, 200, all(
			eq("undeprecate", 0, "action"), eq("deprecate", 1, "action"), eq("deploy", 2, "action"), eq("admin", 2, "actor"))},
		{"DELETE /api/v1/repositories/{key}/artifacts/{path...}", "DELETE", "/api/v1/repositories/raw-dev/artifacts/dir/b.txt", nil, 200, eq(1.0, "deleted")},
		{"DELETE /api/v1/repositories/{key}/artifacts/{path...}", "DELETE", "/api/v1/repositories/raw-dev/artifacts/dir/sub", nil, 200, eq(1.0, "deleted")},
		{"DELETE /api/v1/repositories/{key}/artifacts/{path...}", "DELETE", "/api/v1/repositories/raw-release/artifacts/app/1.0/app.tgz", nil, 409, nil},
		{"DELETE /api/v1/repositories/{key}", "DELETE", "/api/v1/repositories/raw-new", nil, 204, nil},
		{"DELETE /api/v1/repositories/{key}", "DELETE", "/api/v1/repositories/raw-dev", nil, 400, nil},
		{"DELETE /api/v1/groups/{name}", "DELETE", "/api/v1/groups/ops", nil, 204, nil},
		{"DELETE /api/v1/users/{name}", "DELETE", "/api/v1/users/bob", nil, 204, nil},
		{"DELETE /api/v1/users/{name}", "DELETE", "/api/v1/users/admin", nil, 400, nil},
		{"GET /api/v1/gc", "GET", "/api/v1/gc", nil, 404, nil},
		{"POST /api/v1/gc", "POST", "/api/v1/gc", obj{"dry_run": true}, 200, all(eq(true, "dry_run"), eq(0.0, "blobs"))},
		{"GET /api/v1/gc", "GET", "/api/v1/gc", nil, 404, nil},                                           // a dry run is not "the last collection"
		{"POST /api/v1/gc", "POST", "/api/v1/gc", nil, 200, all(eq(false, "dry_run"), eq(0.0, "blobs"))}, // within the grace period
		{"GET /api/v1/gc", "GET", "/api/v1/gc", nil, 200, eq(false, "dry_run")},
		{"GET /api/v1/replication", "GET", "/api/v1/replication", nil, 200, func(t *testing.T, v any) { isList(0)(t, field(v, "targets")) }},
		{"GET /api/v1/replication/repositories/{key}", "GET", "/api/v1/replication/repositories/raw-release", nil, 200,
			all(eq("raw", "format"), eq("app/1.0/app.tgz", "assets", 0, "path"), eq(13.0, "assets", 0, "size"))},
		{"GET /api/v1/replication/repositories/{key}", "GET", "/api/v1/replication/repositories/nope", nil, 404, nil},
		{"POST /api/v1/replication/repositories/{key}", "POST", "/api/v1/replication/repositories/raw-dev?dry=true",
			obj{"repository": "raw-dev", "format": "raw", "assets": []obj{{"path": "x", "blob": "sha256:" + strings.Repeat("0", 64), "size": 1}}},
			200, eq("sha256:"+strings.Repeat("0", 64), "missing", 0)},
		{"POST /api/v1/replication/repositories/{key}", "POST", "/api/v1/replication/repositories/raw-dev",
			obj{"repository": "raw-dev", "format": "npm"}, 400, nil},
		{"PUT /api/v1/replication/blobs/{digest}", "PUT", "/api/v1/replication/blobs/sha256:" + strings.Repeat("0", 64), "not these bytes", 400, nil},
		{"POST /api/v1/repositories/{key}/pins", "POST", "/api/v1/repositories/raw-dev/pins", obj{"artifact": "dir/a.txt", "reason": "prod"}, 201, all(
			eq("dir/a.txt", "name"), eq("prod", "reason"), eq("admin", "created_by"))},
		{"POST /api/v1/repositories/{key}/pins", "POST", "/api/v1/repositories/raw-dev/pins", obj{"artifact": "dir/none.txt"}, 404, nil},
		{"POST /api/v1/repositories/{key}/pins", "POST", "/api/v1/repositories/raw-all/pins", obj{"artifact": "dir/a.txt"}, 400, nil},
		{"GET /api/v1/repositories/{key}/pins", "GET", "/api/v1/repositories/raw-dev/pins", nil, 200, all(isList(1), eq("dir/a.txt", 0, "name"))},
		{"DELETE /api/v1/repositories/{key}/pins", "DELETE", "/api/v1/repositories/raw-dev/pins?artifact=dir/a.txt", nil, 204, nil},
		{"DELETE /api/v1/repositories/{key}/pins", "DELETE", "/api/v1/repositories/raw-dev/pins?artifact=dir/a.txt", nil, 404, nil},
		{"GET /api/v1/retention", "GET", "/api/v1/retention", nil, 404, nil},
		{"POST /api/v1/retention", "POST", "/api/v1/retention", obj{"dry_run": true}, 200, all(eq(true, "dry_run"), eq(0.0, "expired"),
			eq("no retention rules (retention is opt-in)", "repositories", 0, "skipped"))},
		{"POST /api/v1/retention", "POST", "/api/v1/retention", obj{"repos": []string{"raw-remote"}}, 400, nil},
		{"POST /api/v1/retention", "POST", "/api/v1/retention", nil, 200, eq(false, "dry_run")},
		{"GET /api/v1/retention", "GET", "/api/v1/retention", nil, 200, eq(false, "dry_run")},
		{"PUT /api/v1/repositories/{key}/properties", "PUT", "/api/v1/repositories/raw-dev/properties", obj{"artifact": "dir/a.txt", "properties": obj{"ci.tests": "passed"}}, 200, all(
			eq("passed", "properties", "ci.tests"), eq("dir/a.txt", "name"))},
		{"PUT /api/v1/repositories/{key}/properties", "PUT", "/api/v1/repositories/raw-dev/properties", obj{"artifact": "dir/a.txt"}, 400, nil},
		{"GET /api/v1/repositories/{key}/properties", "GET", "/api/v1/repositories/raw-dev/properties?artifact=dir/a.txt", nil, 200, eq("passed", "properties", "ci.tests")},
		{"GET /api/v1/repositories/{key}/properties", "GET", "/api/v1/repositories/raw-dev/properties", nil, 400, nil},
		{"POST /api/v1/promotions", "POST", "/api/v1/promotions", obj{"source": "raw-dev", "target": "raw-release", "artifact": "dir/a.txt"}, 201, func(t *testing.T, v any) {
			if field(v, "state") != "promoted" || field(v, "requested_by") != "admin" || field(v, "target") != "raw-release" {
				t.Errorf("promotion: %v", v)
			}
			state["promo"], _ = field(v, "id").(string)
		}},
		{"POST /api/v1/promotions", "POST", "/api/v1/promotions", obj{"source": "raw-dev", "target": "raw-release"}, 400, nil},
		{"GET /api/v1/promotions", "GET", "/api/v1/promotions?repo=raw-release", nil, 200, all(isList(1), eq("dir/a.txt", 0, "artifact"))},
		{"GET /api/v1/promotions", "GET", "/api/v1/promotions?artifact=dir/a.txt", nil, 400, nil},
		{"GET /api/v1/promotions/{id}", "GET", "/api/v1/promotions/{promo}", nil, 200, eq("promoted", "state")},
		{"GET /api/v1/promotions/{id}", "GET", "/api/v1/promotions/nope", nil, 404, nil},
		{"POST /api/v1/promotions/{id}/approve", "POST", "/api/v1/promotions/{promo}/approve", nil, 400, nil},
	}
	covered := map[string]bool{}
	admin := e.Admin()
	for _, s := range steps {
		covered[s.route] = true
		path := s.path
		for k, v := range state {
			path = strings.ReplaceAll(path, "{"+k+"}", v)
		}
		name := s.method + " " + path
		t.Run(name, func(t *testing.T) {
			method, pattern, _ := strings.Cut(s.route, " ")
			if method != s.method || !strings.HasPrefix(path, strings.Split(pattern, "{")[0]) {
				t.Fatalf("step %s does not exercise %s", name, s.route)
			}
			resp, body := admin.JSON(s.method, path, s.body)
			if resp.StatusCode != s.status {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, s.status, body)
			}
			if s.status >= 400 {
				decodeErr(t, resp, body)
				return
			}
			if s.status == http.StatusNoContent {
				if body != "" {
					t.Errorf("204 with a body %q", body)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var v any
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatalf("not JSON: %q", body)
			}
			if s.check != nil {
				s.check(t, v)
			}
		})
	}
	for _, p := range server.RoutePatterns() {
		if !covered[p] {
			t.Errorf("route %s is not exercised by this test", p)
		}
	}
}

func TestAPIErrors(t *testing.T) {
	e := newAPIEnv(t)
	e.CreateUser("alice", "alice-password")
	admin, alice, anon := e.Admin(), e.As("alice", "alice-password"), e.Anonymous()
	big := strings.Repeat("x", 1<<20+10)
	tests := []struct {
		name   string
		c      apptest.Caller
		method string
		path   string
		body   string
		status int
		code   string
		msg    string
	}{
		{"unknown endpoint", admin, "GET", "/api/v1/nothing", "", 404, "NOT_FOUND", "no such API endpoint"},
		{"unknown top level", admin, "GET", "/nothing", "", 404, "NOT_FOUND", "no such endpoint"},
		{"wrong method", admin, "PATCH", "/api/v1/repositories", "", 405, "METHOD_NOT_ALLOWED", "GET, POST, PUT"},
		{"wrong method on item", admin, "POST", "/api/v1/users/alice", "", 405, "METHOD_NOT_ALLOWED", "PATCH"},
		{"not JSON", admin, "POST", "/api/v1/users", "{name: x", 400, "INVALID", "not valid JSON"},
		{"empty body", admin, "POST", "/api/v1/users", "", 400, "INVALID", "empty"},
		{"unknown field", admin, "POST", "/api/v1/users", `{"name":"x","passwd":"y"}`, 400, "INVALID", "passwd"},
		{"body too large", admin, "POST", "/api/v1/users", `{"name":"` + big + `"}`, 413, "TOO_LARGE", "exceeds"},
		{"bad limit", admin, "GET", "/api/v1/repositories/raw-dev/artifacts?limit=0", "", 400, "INVALID", "limit"},
		{"bad limit", admin, "GET", "/api/v1/audit?limit=5000", "", 400, "INVALID", "limit"},
		{"short password", admin, "POST", "/api/v1/users", `{"name":"shorty","password":"1234"}`, 400, "INVALID", "at least 8"},
		{"bad user name", admin, "POST", "/api/v1/users", `{"name":"no spaces allowed","password":"12345678"}`, 400, "INVALID", "user name"},
		{"unknown repository", admin, "GET", "/api/v1/repositories/nope/artifacts", "", 404, "NOT_FOUND", `"nope"`},
		{"virtual listing", admin, "GET", "/api/v1/repositories/raw-all/artifacts", "", 400, "INVALID", "virtual"},
		{"anonymous", anon, "GET", "/api/v1/users", "", 401, "UNAUTHORIZED", "authentication required"},
		{"anonymous tokens", anon, "GET", "/api/v1/tokens", "", 401, "UNAUTHORIZED", "log in"},
		{"wrong password", e.As("alice", "nope-nope"), "GET", "/api/v1/whoami", "", 401, "UNAUTHORIZED", "wrong user name or password"},
		{"not admin", alice, "GET", "/api/v1/users", "", 403, "DENIED", "admin"},
		{"not admin storage", alice, "GET", "/api/v1/storage", "", 403, "DENIED", "admin"},
		{"not admin apply", alice, "PUT", "/api/v1/repositories", `{"repositories":[]}`, 403, "DENIED", "admin"},
		{"other user", alice, "GET", "/api/v1/users/admin", "", 403, "DENIED", "admin"},
		{"bad grant", admin, "POST", "/api/v1/permissions", `{"principal_type":"user","principal":"alice","repos":"*","actions":["fly"]}`, 400, "INVALID", "unknown action"},
		{"grant to nobody", admin, "POST", "/api/v1/permissions", `{"principal_type":"user","principal":"nobody","repos":"*","actions":["read"]}`, 404, "NOT_FOUND", "nobody"},
		{"preset and scopes", admin, "POST", "/api/v1/tokens", `{"preset":"ci","scopes":[{"repos":"*","actions":["read"]}]}`, 400, "INVALID", "not both"},
		{"token for unknown user", admin, "POST", "/api/v1/tokens", `{"user":"nobody"}`, 404, "NOT_FOUND", "nobody"},
		{"token for someone else", alice, "POST", "/api/v1/tokens", `{"user":"admin"}`, 403, "DENIED", "admin"},
		{"deprecate a remote", admin, "POST", "/api/v1/repositories/raw-remote/deprecations", `{"path":"x"}`, 405, "METHOD_NOT_ALLOWED", "local"},
		{"delete a member", admin, "DELETE", "/api/v1/repositories/raw-release", "", 400, "INVALID", "member of virtual repository raw-all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp *http.Response
			var body string
			if tt.body != "" {
				resp, body = tt.c.Do(tt.method, tt.path, strings.NewReader(tt.body), "Content-Type", "application/json")
			} else {
				resp, body = tt.c.Do(tt.method, tt.path, nil)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			got := decodeErr(t, resp, body)
			if got.Error.Code != tt.code || !strings.Contains(got.Error.Message, tt.msg) {
				t.Errorf("error %+v, want code %s and a message saying %q", got.Error, tt.code, tt.msg)
			}
			if tt.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.status == 405 && resp.Header.Get("Allow") == "" && strings.HasPrefix(tt.name, "wrong method") {
				t.Error("405 without Allow")
			}
		})
	}
}

func repoKeys(t *testing.T, c apptest.Caller) []string {
	t.Helper()
	var repos []struct{ Key string }
	c.MustJSON("GET", "/api/v1/repositories", nil, 200, &repos)
	var keys []string
	for _, r := range repos {
		keys = append(keys, r.Key)
	}
	return keys
}

func TestApplyRepositories(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.Admin()
	before := repoKeys(t, admin)

	// A bad declaration: 400 listing every problem; nothing applied.
	bad := obj{"repositories": []obj{
		{"key": "Bad Key!", "format": "nope", "kind": "local"},
		{"key": "raw-ok", "format": "raw", "kind": "local"},
		{"key": "raw-v", "format": "raw", "kind": "virtual", "members": []string{"missing"}, "default_deploy": "raw-remote"},
		{"key": "raw-r", "format": "raw", "kind": "remote", "tier": "dev"},
		{"key": "raw-ok", "format": "raw", "kind": "weird"},
	}}
	resp, body := admin.JSON("PUT", "/api/v1/repositories", bad)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad declarations: %d %s", resp.StatusCode, body)
	}
	ae := decodeErr(t, resp, body)
	if ae.Error.Code != "INVALID" || len(ae.Error.Problems) < 6 {
		t.Fatalf("problems: %+v", ae.Error)
	}
	var fields []string
	for _, p := range ae.Error.Problems {
		if p.Field == "" || p.Message == "" {
			t.Errorf("problem without field or message: %+v", p)
		}
		fields = append(fields, p.Field)
	}
	for _, want := range []string{"key", "format", "members", "default_deploy", "upstream", "tier"} {
		if !slices.ContainsFunc(fields, func(f string) bool { return strings.HasSuffix(f, "."+want) }) {
			t.Errorf("no problem about %s in %v", want, fields)
		}
	}
	if got := repoKeys(t, admin); !slices.Equal(got, before) {
		t.Errorf("a refused apply changed repositories: %v -> %v", before, got)
	}
	// The same through POST and PUT of one repository.
	for _, m := range []string{"POST /api/v1/repositories", "PUT /api/v1/repositories/raw-x"} {
		method, path, _ := strings.Cut(m, " ")
		resp, body := admin.JSON(method, path, obj{"key": "raw-x", "format": "raw", "kind": "virtual"})
		if ae := decodeErr(t, resp, body); resp.StatusCode != 400 || len(ae.Error.Problems) == 0 {
			t.Errorf("%s: %d %s", m, resp.StatusCode, body)
		}
	}

	// Applying twice: the second time everything is unchanged.
	decls := obj{"repositories": []obj{
		{"key": "raw-dev", "format": "raw", "kind": "local", "tier": "dev", "description": "Developer files"},
		{"key": "raw-staging", "format": "raw", "kind": "local", "tier": "staging", "max_upload_size": "10MiB"},
		{"key": "raw-group", "format": "raw", "kind": "virtual", "members": []string{"raw-staging", "raw-dev"}, "default_deploy": "raw-staging"},
	}}
	var res struct {
		Results []struct{ Key, Action string } `json:"results"`
	}
	admin.MustJSON("PUT", "/api/v1/repositories", decls, 200, &res)
	if got := actions(res.Results); got != "raw-dev:unchanged raw-staging:created raw-group:created" {
		t.Errorf("first apply: %s", got)
	}
	admin.MustJSON("PUT", "/api/v1/repositories", decls, 200, &res)
	if got := actions(res.Results); got != "raw-dev:unchanged raw-staging:unchanged raw-group:unchanged" {
		t.Errorf("second apply: %s", got)
	}
	// A change is an update; a missing entry is never deleted.
	decls["repositories"] = []obj{{"key": "raw-staging", "format": "raw", "kind": "local", "tier": "staging", "description": "now described"}}
	admin.MustJSON("PUT", "/api/v1/repositories", decls, 200, &res)
	if got := actions(res.Results); got != "raw-staging:updated" {
		t.Errorf("third apply: %s", got)
	}
	if got := repoKeys(t, admin); !slices.Contains(got, "raw-group") || !slices.Contains(got, "raw-dev") {
		t.Errorf("repositories missing from the apply were removed: %v", got)
	}

	// A repository holding artifacts keeps its format and kind, and is not deleted.
	resp, body = admin.JSON("PUT", "/api/v1/repositories/raw-release", obj{"format": "raw", "kind": "remote", "upstream": obj{"url": "http://127.0.0.1:9/"}})
	if ae := decodeErr(t, resp, body); resp.StatusCode != 400 || !strings.Contains(ae.Error.Message, "holds 1 artifacts") {
		t.Errorf("changing the kind of a repository with artifacts: %d %s", resp.StatusCode, body)
	}
	admin.MustJSON("PUT", "/api/v1/repositories", obj{"repositories": []obj{{"key": "raw-group", "format": "raw", "kind": "virtual", "members": []string{"raw-staging"}}}}, 200, nil)
	admin.MustJSON("DELETE", "/api/v1/repositories/raw-all", nil, 204, nil)
	resp, body = admin.Do("DELETE", "/api/v1/repositories/raw-dev", nil)
	if ae := decodeErr(t, resp, body); resp.StatusCode != 400 || !strings.Contains(ae.Error.Message, "raw-dev holds 3 artifacts") {
		t.Errorf("deleting a repository with artifacts: %d %s", resp.StatusCode, body)
	}
	if r, body := admin.Do("GET", "/repository/raw-dev/dir/a.txt", nil); r.StatusCode != 200 || body != "aaa" {
		t.Errorf("artifact after refused delete: %d %q", r.StatusCode, body)
	}
	// Emptied, it can go.
	admin.MustJSON("DELETE", "/api/v1/repositories/raw-dev/artifacts/dir", nil, 200, nil)
	admin.MustJSON("DELETE", "/api/v1/repositories/raw-dev", nil, 204, nil)
	if r, _ := admin.Do("GET", "/repository/raw-dev/", nil); r.StatusCode != 404 {
		t.Errorf("deleted repository answers %d", r.StatusCode)
	}
}

func actions(rs []struct{ Key, Action string }) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Key+":"+r.Action)
	}
	return strings.Join(s, " ")
}

func TestListingAndSearchShowOnlyReadable(t *testing.T) {
	e := newAPIEnv(t)
	e.CreateUser("alice", "alice-password")
	e.Grant("user", "alice", "raw-dev", "read")
	alice := e.As("alice", "alice-password")

	if got := repoKeys(t, alice); !slices.Equal(got, []string{"raw-dev"}) {
		t.Errorf("alice sees repositories %v", got)
	}
	if got := repoKeys(t, e.Admin()); !slices.Equal(got, []string{"raw-all", "raw-dev", "raw-release", "raw-remote"}) {
		t.Errorf("admin sees repositories %v", got)
	}
	search := func(c apptest.Caller, query string) []string {
		var page struct {
			Items []struct{ Repo, Path string } `json:"items"`
		}
		c.MustJSON("GET", "/api/v1/search/artifacts?"+query, nil, 200, &page)
		var out []string
		for _, it := range page.Items {
			out = append(out, it.Repo+"/"+it.Path)
		}
		sort.Strings(out)
		return out
	}
	if got := search(alice, "q="); strings.Join(got, " ") != "raw-dev/dir/a.txt raw-dev/dir/b.txt raw-dev/dir/sub/c.bin" {
		t.Errorf("alice's search: %v", got)
	}
	if got := search(alice, "q=app"); len(got) != 0 {
		t.Errorf("alice finds release artifacts: %v", got)
	}
	if got := search(alice, "repo=raw-release"); len(got) != 0 {
		t.Errorf("alice finds release artifacts by naming the repository: %v", got)
	}
	if got := search(e.Admin(), "q=app"); strings.Join(got, " ") != "raw-release/app/1.0/app.tgz" {
		t.Errorf("admin's search: %v", got)
	}
	if got := search(e.Anonymous(), "q="); len(got) != 0 {
		t.Errorf("anonymous search: %v", got)
	}
	for _, p := range []string{"/api/v1/repositories/raw-release", "/api/v1/repositories/raw-release/artifacts", "/api/v1/repositories/raw-release/artifacts/app/1.0/app.tgz"} {
		resp, body := alice.Do("GET", p, nil)
		if ae := decodeErr(t, resp, body); resp.StatusCode != 403 || !strings.Contains(ae.Error.Message, "read repository raw-release") {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, body)
		}
	}
	// Pagination of search: a cursor, then the rest.
	var page struct {
		Items []struct{ Path string } `json:"items"`
		Next  string                  `json:"next"`
	}
	e.Admin().MustJSON("GET", "/api/v1/search/artifacts?q=dir&limit=2", nil, 200, &page)
	if len(page.Items) != 2 || page.Next == "" {
		t.Fatalf("first page: %+v", page)
	}
	seen := []string{page.Items[0].Path, page.Items[1].Path}
	e.Admin().MustJSON("GET", "/api/v1/search/artifacts?q=dir&limit=2&after="+page.Next, nil, 200, &page)
	if len(page.Items) != 1 || slices.Contains(seen, page.Items[0].Path) {
		t.Errorf("second page: %+v after %v", page, seen)
	}
}

func TestOperationsEndpoints(t *testing.T) {
	e := apptest.New(t, apiConfig)
	anon := e.Anonymous()
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
		resp, body := anon.Do("GET", path, nil)
		if resp.StatusCode != 200 || body != want {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, body)
		}
	}
	e.App.Server.SetReady(false)
	if resp, _ := anon.Do("GET", "/readyz", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("not ready: %d", resp.StatusCode)
	}
	e.App.Server.SetReady(true)
	resp, _ := anon.Do("GET", "/healthz", nil, "X-Request-Id", "my-request-42")
	if resp.Header.Get("X-Request-Id") != "my-request-42" {
		t.Errorf("request id not echoed: %q", resp.Header.Get("X-Request-Id"))
	}
	resp, _ = anon.Do("GET", "/healthz", nil)
	if len(resp.Header.Get("X-Request-Id")) != 16 {
		t.Errorf("generated request id %q", resp.Header.Get("X-Request-Id"))
	}
}
