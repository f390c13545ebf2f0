package npm_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/format/npm/npmtest"
)

// writeDoc is what npm deprecate and npm unpublish fetch before changing.
func writeDoc(t *testing.T, c apptest.Caller, key, name string) map[string]any {
	t.Helper()
	resp, body := c.Do(http.MethodGet, "/repository/"+key+"/"+npmtest.EscapeName(name)+"?write=true", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET ?write=true: %d %s", resp.StatusCode, body)
	}
	var d map[string]any
	json.Unmarshal([]byte(body), &d)
	return d
}

func deprecate(t *testing.T, c apptest.Caller, key, name, version, msg string) (*http.Response, string) {
	t.Helper()
	d := writeDoc(t, c, key, name)
	d["versions"].(map[string]any)[version].(map[string]any)["deprecated"] = msg
	return putDoc(c, key, name, d)
}

// unpublishVersion does what npm unpublish <name>@<version> does.
func unpublishVersion(t *testing.T, c apptest.Caller, key, name, version string) (*http.Response, string) {
	t.Helper()
	d := writeDoc(t, c, key, name)
	delete(d["versions"].(map[string]any), version)
	tags := d["dist-tags"].(map[string]any)
	for tag, v := range tags {
		if v == version {
			delete(tags, tag)
		}
	}
	resp, body := c.Do(http.MethodPut, "/repository/"+key+"/"+npmtest.EscapeName(name)+"/-rev/"+d["_rev"].(string),
		strings.NewReader(mustMarshal(d)), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusOK {
		return resp, body
	}
	file := strings.TrimPrefix(name[strings.LastIndex(name, "/")+1:], "@") + "-" + version + ".tgz"
	resp, body = c.Do(http.MethodDelete, "/repository/"+key+"/"+name+"/-/"+file+"/-rev/"+d["_rev"].(string), nil)
	if resp.StatusCode == http.StatusNotFound {
		// The tarball went with its version; npm reads 404 here as done.
		resp.StatusCode = http.StatusOK
	}
	return resp, body
}

func mustMarshal(v any) string { b, _ := json.Marshal(v); return string(b) }

func distTag(c apptest.Caller, method, key, name, tag, version string) (*http.Response, string) {
	var body *strings.Reader
	if version != "" {
		body = strings.NewReader(`"` + version + `"`)
	} else {
		body = strings.NewReader("")
	}
	return c.Do(method, "/repository/"+key+"/-/package/"+npmtest.EscapeName(name)+"/dist-tags/"+tag, body,
		"Content-Type", "application/json")
}

func TestTiers(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	admin := e.Admin()
	for _, key := range []string{"npm-dev", "npm-staging", "npm-release"} {
		for _, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
			publish(t, e, key, npmtest.Package{Name: "@acme/lib", Version: v}, "latest")
		}
	}
	for _, key := range []string{"npm-dev", "npm-staging", "npm-release"} {
		t.Run(key, func(t *testing.T) {
			// Republishing is refused everywhere, whatever the bytes.
			resp, body := putDoc(admin, key, "@acme/lib", func() any {
				p := npmtest.Package{Name: "@acme/lib", Version: "1.0.0", Description: "different"}
				return npmtest.PublishDocument(p, p.Tarball(), "latest", "")
			}())
			wantError(t, resp, body, http.StatusForbidden, "cannot publish over the previously published versions: 1.0.0")
			resp, body = putDoc(admin, key, "@acme/lib", func() any {
				p := npmtest.Package{Name: "@acme/lib", Version: "1.0.0"}
				return npmtest.PublishDocument(p, p.Tarball(), "latest", "")
			}())
			wantError(t, resp, body, http.StatusForbidden, "cannot publish over")

			// Deprecate and un-deprecate, on every tier.
			if resp, body := deprecate(t, admin, key, "@acme/lib", "1.0.0", "use 2.x"); resp.StatusCode != http.StatusOK {
				t.Fatalf("deprecate: %d %s", resp.StatusCode, body)
			}
			p, _, _ := getPackument(t, admin, key, "@acme/lib")
			if m := p.manifest(t, "1.0.0"); m.Deprecated != "use 2.x" {
				t.Errorf("deprecated = %q", m.Deprecated)
			}
			if resp, body := deprecate(t, admin, key, "@acme/lib", "1.0.0", ""); resp.StatusCode != http.StatusOK {
				t.Fatalf("un-deprecate: %d %s", resp.StatusCode, body)
			}
			p, _, _ = getPackument(t, admin, key, "@acme/lib")
			if m := p.manifest(t, "1.0.0"); m.Deprecated != "" {
				t.Errorf("after un-deprecate: deprecated = %q", m.Deprecated)
			}

			// dist-tag add/rm/ls: explicit moves work on every tier.
			if resp, body := distTag(admin, http.MethodPut, key, "@acme/lib", "stable", "1.1.0"); resp.StatusCode != http.StatusCreated {
				t.Fatalf("dist-tag add: %d %s", resp.StatusCode, body)
			}
			if resp, body := distTag(admin, http.MethodPut, key, "@acme/lib", "latest", "1.1.0"); resp.StatusCode != http.StatusCreated {
				t.Fatalf("dist-tag add latest: %d %s", resp.StatusCode, body)
			}
			resp, body = admin.Do(http.MethodGet, "/repository/"+key+"/-/package/@acme%2flib/dist-tags", nil)
			if resp.StatusCode != http.StatusOK || body != `{"latest":"1.1.0","stable":"1.1.0"}` {
				t.Errorf("dist-tag ls: %d %s", resp.StatusCode, body)
			}
			resp, body = distTag(admin, http.MethodPut, key, "@acme/lib", "next", "9.9.9")
			wantError(t, resp, body, http.StatusNotFound, "9.9.9")
			resp, body = distTag(admin, http.MethodPut, key, "@acme/lib", "1.2", "2.0.0")
			wantError(t, resp, body, http.StatusBadRequest, "dist-tag")
			resp, body = distTag(admin, http.MethodDelete, key, "@acme/lib", "latest", "")
			wantError(t, resp, body, http.StatusBadRequest, "latest")
			if resp, body := distTag(admin, http.MethodDelete, key, "@acme/lib", "stable", ""); resp.StatusCode != http.StatusOK {
				t.Fatalf("dist-tag rm: %d %s", resp.StatusCode, body)
			}
			resp, body = distTag(admin, http.MethodDelete, key, "@acme/lib", "stable", "")
			wantError(t, resp, body, http.StatusNotFound, "stable")

			// Unpublish of a version.
			resp, body = unpublishVersion(t, admin, key, "@acme/lib", "1.0.0")
			switch key {
			case "npm-release":
				wantError(t, resp, body, http.StatusForbidden, "npm deprecate", "npm-release")
			default:
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("unpublish 1.0.0: %d %s", resp.StatusCode, body)
				}
			}
			// Unpublish of the version latest points at: the tag moves on
			// dev (as npm does); on staging tags move only explicitly.
			resp, body = unpublishVersion(t, admin, key, "@acme/lib", "1.1.0")
			p, _, _ = getPackument(t, admin, key, "@acme/lib")
			switch key {
			case "npm-dev":
				if resp.StatusCode != http.StatusOK || p.DistTags["latest"] != "2.0.0" || len(p.Versions) != 1 {
					t.Errorf("dev unpublish of latest: %d %s; tags %v versions %v", resp.StatusCode, body, p.DistTags, keys(p.Versions))
				}
			case "npm-staging":
				wantError(t, resp, body, http.StatusForbidden, "dist-tag", "latest")
				if p.DistTags["latest"] != "1.1.0" || len(p.Versions) != 2 {
					t.Errorf("staging after refusal: tags %v versions %v", p.DistTags, keys(p.Versions))
				}
			case "npm-release":
				wantError(t, resp, body, http.StatusForbidden, "npm deprecate")
				if len(p.Versions) != 3 {
					t.Errorf("release lost versions: %v", keys(p.Versions))
				}
			}
			// Unpublish of the whole package.
			resp, body = admin.Do(http.MethodDelete, "/repository/"+key+"/@acme%2flib/-rev/"+p.Rev, nil)
			if key == "npm-release" {
				wantError(t, resp, body, http.StatusForbidden, "npm deprecate")
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("unpublish all: %d %s", resp.StatusCode, body)
			}
			_, resp, body = getPackument(t, admin, key, "@acme/lib")
			wantError(t, resp, body, http.StatusNotFound, "@acme/lib")
			// Unpublished on dev, a version can be published again.
			if key == "npm-dev" {
				publish(t, e, key, npmtest.Package{Name: "@acme/lib", Version: "1.0.0"}, "latest")
			}
		})
	}
}

// Writes need write (publish, deprecate, dist-tags) or delete (unpublish)
// on the repository written; new versions come only with a tarball.
func TestMutationPermissions(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	publish(t, e, "npm-dev", npmtest.Package{Name: "lib", Version: "1.0.0"}, "latest")
	e.CreateUser("reader", "reader-password")
	e.Grant("user", "reader", "npm*", "read")
	e.CreateUser("writer", "writer-password")
	e.Grant("user", "writer", "npm*", "read", "write")
	reader, writer := e.As("reader", "reader-password"), e.As("writer", "writer-password")

	p := npmtest.Package{Name: "lib", Version: "1.1.0"}
	resp, body := putDoc(reader, "npm", "lib", npmtest.PublishDocument(p, p.Tarball(), "latest", ""))
	wantError(t, resp, body, http.StatusForbidden, "reader", "write")
	resp, body = putDoc(e.Anonymous(), "npm", "lib", npmtest.PublishDocument(p, p.Tarball(), "latest", ""))
	wantError(t, resp, body, http.StatusUnauthorized)
	if resp, body := putDoc(writer, "npm", "lib", npmtest.PublishDocument(p, p.Tarball(), "latest", "")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("writer publish: %d %s", resp.StatusCode, body)
	}
	resp, body = distTag(reader, http.MethodPut, "npm", "lib", "next", "1.1.0")
	wantError(t, resp, body, http.StatusForbidden)
	if resp, body := distTag(writer, http.MethodPut, "npm", "lib", "next", "1.1.0"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("writer dist-tag: %d %s", resp.StatusCode, body)
	}
	if resp, body := deprecate(t, writer, "npm", "lib", "1.0.0", "old"); resp.StatusCode != http.StatusOK {
		t.Fatalf("writer deprecate: %d %s", resp.StatusCode, body)
	}
	resp, body = unpublishVersion(t, writer, "npm", "lib", "1.0.0")
	wantError(t, resp, body, http.StatusForbidden, "delete")

	// A metadata update cannot add a version without its tarball.
	d := writeDoc(t, writer, "npm", "lib")
	d["versions"].(map[string]any)["3.0.0"] = map[string]any{"name": "lib", "version": "3.0.0"}
	resp, body = putDoc(writer, "npm", "lib", d)
	wantError(t, resp, body, http.StatusBadRequest, "npm publish")
	// A document with neither an attachment nor versions is refused.
	resp, body = putDoc(e.Admin(), "npm-release", "lib", "{}")
	wantError(t, resp, body, http.StatusBadRequest)
}
