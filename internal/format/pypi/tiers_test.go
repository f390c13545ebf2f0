package pypi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

// PyPI's rule everywhere: a file name never gets other bytes; identical
// re-uploads succeed (twine --skip-existing and CI re-runs).
func TestFileNamesAreImmutableInEveryTier(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	for _, key := range []string{"py-dev", "py-staging", "py-release"} {
		t.Run(key, func(t *testing.T) {
			meta := metadataFor("tiered", "1.0")
			name, whl := wheel(t, "tiered", "1.0", meta)
			mustUpload(t, e, key, "tiered", "1.0", name, whl)
			resp, body := upload(t, e, key, "tiered", "1.0", name, whl)
			if resp.StatusCode != 200 || !strings.Contains(body, "already stored with the same content") {
				t.Fatalf("identical re-upload: %s %s", resp.Status, body)
			}
			// Other bytes under the same name: refused with PyPI's message,
			// in the reason phrase (what twine prints) and the body.
			_, other := wheel(t, "tiered", "1.0", meta, member{name: "tiered/extra.py", body: "x = 1\n"})
			resp, body = upload(t, e, key, "tiered", "1.0", name, other)
			if resp.StatusCode != 400 || !strings.HasPrefix(resp.Status, "400 File already exists ('"+name+"', with sha256 hash '"+hexSHA256(whl)+"')") ||
				!strings.HasPrefix(body, "File already exists") {
				t.Fatalf("overwrite: %q %q", resp.Status, body)
			}
			// Without a declared sha256 the bytes are read first; same answer.
			resp, body = upload(t, e, key, "tiered", "1.0", name, other, "sha256_digest", "")
			if resp.StatusCode != 400 || !strings.Contains(body, "File already exists") {
				t.Fatalf("overwrite (md5 only): %q %q", resp.Status, body)
			}
			if resp, got := get(t, e, "/repository/"+key+"/packages/tiered/1.0/"+name, ""); resp.StatusCode != 200 || got != string(whl) {
				t.Fatal("the stored file changed")
			}
			// One sdist per release.
			sdName, sd := sdist(t, "tiered", "1.0", meta)
			mustUpload(t, e, key, "tiered", "1.0", sdName, sd)
			_, sd2 := sdist(t, "tiered", "1.0", meta)
			sd2Name := "Tiered-1.0.tar.gz"
			if resp, body := upload(t, e, key, "tiered", "1.0", sd2Name, sd2); resp.StatusCode != 400 || !strings.Contains(body, "Only one sdist may be uploaded per release") {
				t.Fatalf("second sdist: %s %s", resp.Status, body)
			}
		})
	}
}

func TestYankAndDeletePerTier(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	for _, key := range []string{"py-dev", "py-staging", "py-release"} {
		for _, v := range []string{"1.0", "2.0"} {
			n, b := wheel(t, "yanky", v, metadataFor("yanky", v))
			mustUpload(t, e, key, "yanky", v, n, b)
		}
	}
	page := func(key string) string {
		_, body := get(t, e, "/repository/"+key+"/simple/yanky/", "text/html")
		return body
	}
	// Yank with a reason, in every tier (release included).
	for _, key := range []string{"py-dev", "py-release"} {
		_ = page(key) // cached before the change
		resp, body := e.Admin().Do(http.MethodPost, "/repository/"+key+"/pypi/yanky/2.0/yank", strings.NewReader("reason=broken+on+3.12"),
			"Content-Type", "application/x-www-form-urlencoded")
		if resp.StatusCode != 200 || !strings.Contains(body, `"yanked": true`) {
			t.Fatalf("yank in %s: %d %s", key, resp.StatusCode, body)
		}
		if p := page(key); !strings.Contains(p, `data-yanked="broken on 3.12">yanky-2.0-py3-none-any.whl`) || strings.Contains(p, `data-yanked="broken on 3.12">yanky-1.0`) {
			t.Fatalf("page after yank:\n%s", p)
		}
		_, body = get(t, e, "/repository/"+key+"/simple/yanky/", typeJSON)
		if !strings.Contains(body, `"yanked":"broken on 3.12"`) {
			t.Fatalf("JSON after yank: %s", body)
		}
		// The JSON API's latest skips the yanked release.
		var api struct {
			Info struct{ Version string }
		}
		_, body = get(t, e, "/repository/"+key+"/pypi/yanky/json", "")
		if json.Unmarshal([]byte(body), &api); api.Info.Version != "1.0" {
			t.Fatalf("latest after yank: %s", body)
		}
	}
	// Un-yank.
	if resp, body := e.Admin().Do(http.MethodDelete, "/repository/py-dev/pypi/yanky/2.0/yank", nil); resp.StatusCode != 200 || strings.Contains(page("py-dev"), "data-yanked") {
		t.Fatalf("unyank: %d %s\n%s", resp.StatusCode, body, page("py-dev"))
	}
	// JSON body, through the virtual repository (default_deploy: py-dev).
	if resp, body := e.Admin().JSON(http.MethodPost, "/repository/py/pypi/yanky/1.0/yank", map[string]string{"reason": "old"}); resp.StatusCode != 200 || !strings.Contains(body, `"repo": "py-dev"`) {
		t.Fatalf("yank via virtual: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.Admin().Do(http.MethodPost, "/repository/py-dev/pypi/yanky/9.9/yank", nil); resp.StatusCode != 404 {
		t.Fatalf("yank of a missing release: %d", resp.StatusCode)
	}

	// Delete: refused on release (yank instead), allowed on staging and dev.
	resp, body := e.Admin().Do(http.MethodDelete, "/repository/py-release/pypi/yanky/1.0", nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "yank it instead") {
		t.Fatalf("delete on release: %d %s", resp.StatusCode, body)
	}
	resp, body = e.Admin().Do(http.MethodDelete, "/repository/py-release/packages/yanky/1.0/yanky-1.0-py3-none-any.whl", nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "yank it instead") {
		t.Fatalf("file delete on release: %d %s", resp.StatusCode, body)
	}
	for _, key := range []string{"py-staging", "py-dev"} {
		_ = page(key)
		resp, body := e.Admin().Do(http.MethodDelete, "/repository/"+key+"/pypi/yanky/1.0", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, `"deleted_files": 1`) {
			t.Fatalf("delete on %s: %d %s", key, resp.StatusCode, body)
		}
		if p := page(key); strings.Contains(p, "yanky-1.0") || !strings.Contains(p, "yanky-2.0") {
			t.Fatalf("page after delete on %s:\n%s", key, p)
		}
		if resp, _ := get(t, e, "/repository/"+key+"/packages/yanky/1.0/yanky-1.0-py3-none-any.whl.metadata", ""); resp.StatusCode != 404 {
			t.Fatalf("metadata of a deleted file: %d", resp.StatusCode)
		}
	}
	// Deleting the last file of a release removes the release and, with
	// the last release, the project.
	resp, _ = e.Admin().Do(http.MethodDelete, "/repository/py-dev/packages/yanky/2.0/yanky-2.0-py3-none-any.whl", nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("file delete: %d", resp.StatusCode)
	}
	if resp, _ := get(t, e, "/repository/py-dev/simple/yanky/", ""); resp.StatusCode != 404 {
		t.Fatalf("project page after its last file: %d", resp.StatusCode)
	}
	if _, body := get(t, e, "/repository/py-dev/simple/", ""); strings.Contains(body, "yanky") {
		t.Fatalf("root after the last file:\n%s", body)
	}
	if n := assets(t, e, "py-dev"); n != 0 {
		t.Fatalf("%d assets left in py-dev", n)
	}
}

// Pages are cached; every change through Coffer makes them stale, the
// management API's deletes and deprecations by path included.
func TestPagesFollowChanges(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	n1, b1 := wheel(t, "cached", "1.0", metadataFor("cached", "1.0"))
	mustUpload(t, e, "py-dev", "cached", "1.0", n1, b1)
	_, p1 := get(t, e, "/repository/py-dev/simple/cached/", typeJSON)
	_, r1 := get(t, e, "/repository/py-dev/simple/", "")
	n2, b2 := wheel(t, "cached", "1.1", metadataFor("cached", "1.1"))
	mustUpload(t, e, "py-dev", "cached", "1.1", n2, b2)
	_, p2 := get(t, e, "/repository/py-dev/simple/cached/", typeJSON)
	if p1 == p2 || !strings.Contains(p2, n2) {
		t.Fatalf("page not refreshed after an upload: %s", p2)
	}
	n3, b3 := wheel(t, "other", "1.0", metadataFor("other", "1.0"))
	mustUpload(t, e, "py-dev", "other", "1.0", n3, b3)
	if _, r2 := get(t, e, "/repository/py-dev/simple/", ""); r1 == r2 || !strings.Contains(r2, "other/") {
		t.Fatalf("root not refreshed after a new project:\n%s", r2)
	}
	// Management API: deprecate a file (shown as yanked), delete one.
	e.Admin().MustJSON(http.MethodPost, "/api/v1/repositories/py-dev/deprecations",
		map[string]string{"path": "packages/cached/1.1/" + n2, "message": "use 1.2"}, 200, nil)
	if _, p := get(t, e, "/repository/py-dev/simple/cached/", typeJSON); !strings.Contains(p, `"yanked":"use 1.2"`) {
		t.Fatalf("page after a deprecation by path: %s", p)
	}
	e.Admin().MustJSON(http.MethodDelete, "/api/v1/repositories/py-dev/artifacts/packages/cached/1.0/"+n1, nil, 200, nil)
	if _, p := get(t, e, "/repository/py-dev/simple/cached/", typeJSON); strings.Contains(p, n1) {
		t.Fatalf("page after a delete by path: %s", p)
	}
}
