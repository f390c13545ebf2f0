package pypi_test

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

const hostedConfig = `repositories:
  - {key: py-dev, format: pypi, kind: local, tier: dev}
  - {key: py-staging, format: pypi, kind: local, tier: staging}
  - {key: py-release, format: pypi, kind: local, tier: release}
  - {key: py-small, format: pypi, kind: local, tier: dev, max_upload_size: 4KiB}
  - {key: py-quota, format: pypi, kind: local, tier: dev, quota: 6KiB}
  - {key: py, format: pypi, kind: virtual, members: [py-release, py-staging, py-dev], default_deploy: py-dev}
`

func TestUploadAndIndex(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	meta := metadataFor("My.Pkg", "1.0.0", "Requires-Python: >=3.8", "Requires-Dist: dep-one>=1.0")
	whlName, whl := wheel(t, "my_pkg", "1.0.0", meta)
	sdName, sd := sdist(t, "my-pkg", "1.0.0", meta)
	mustUpload(t, e, "py-dev", "My.Pkg", "1.0.0", whlName, whl)
	mustUpload(t, e, "py-dev", "my-pkg", "1.0.0", sdName, sd)

	// Root listing, both ways.
	resp, body := get(t, e, "/repository/py-dev/simple/", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `<a href="my-pkg/">my-pkg</a>`) || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("root HTML: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = get(t, e, "/repository/py-dev/simple/", typeJSON)
	if resp.Header.Get("Content-Type") != typeJSON || body != `{"meta":{"api-version":"1.1"},"projects":[{"name":"my-pkg"}]}` {
		t.Fatalf("root JSON: %s %s", resp.Header.Get("Content-Type"), body)
	}

	// Project page, HTML: hashes, requires-python, core metadata.
	resp, body = get(t, e, "/repository/py-dev/simple/my-pkg/", "text/html")
	wantHref := `<a href="../../packages/my-pkg/1.0.0/` + whlName + `#sha256=` + hexSHA256(whl) + `" data-requires-python="&gt;=3.8" data-core-metadata="sha256=` + hexSHA256([]byte(meta)) + `" data-dist-info-metadata="sha256=` + hexSHA256([]byte(meta)) + `">` + whlName + `</a>`
	if resp.StatusCode != 200 || !strings.Contains(body, wantHref) || resp.Header.Get("Vary") != "Accept, Accept-Encoding" {
		t.Fatalf("project HTML lacks\n%s\n%s", wantHref, body)
	}
	if !strings.Contains(body, `<a href="../../packages/my-pkg/1.0.0/`+sdName+`#sha256=`+hexSHA256(sd)+`" data-requires-python="&gt;=3.8">`) {
		t.Fatalf("project HTML: sdist line missing or with core metadata:\n%s", body)
	}
	if !strings.Contains(body, `<meta name="pypi:repository-version" content="1.1">`) {
		t.Fatalf("no repository version:\n%s", body)
	}

	// Project page, JSON (what pip 23 asks for).
	resp, body = get(t, e, "/repository/py-dev/simple/my-pkg/", "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01")
	var doc struct {
		Meta     map[string]string `json:"meta"`
		Name     string            `json:"name"`
		Versions []string          `json:"versions"`
		Files    []map[string]any  `json:"files"`
	}
	if resp.Header.Get("Content-Type") != typeJSON || json.Unmarshal([]byte(body), &doc) != nil {
		t.Fatalf("project JSON: %s %s", resp.Header.Get("Content-Type"), body)
	}
	if doc.Meta["api-version"] != "1.1" || doc.Name != "my-pkg" || len(doc.Versions) != 1 || doc.Versions[0] != "1.0.0" || len(doc.Files) != 2 {
		t.Fatalf("project JSON: %s", body)
	}
	for _, f := range doc.Files {
		if f["filename"] == whlName {
			if f["url"] != "../../packages/my-pkg/1.0.0/"+whlName || f["hashes"].(map[string]any)["sha256"] != hexSHA256(whl) ||
				f["requires-python"] != ">=3.8" || f["yanked"] != false || f["size"] != float64(len(whl)) ||
				f["core-metadata"].(map[string]any)["sha256"] != hexSHA256([]byte(meta)) || f["dist-info-metadata"] != nil ||
				!strings.HasSuffix(f["upload-time"].(string), "Z") {
				t.Fatalf("wheel entry: %v", f)
			}
		} else if f["core-metadata"] != nil {
			t.Fatalf("sdist advertises core metadata: %v", f)
		}
	}

	// The file and its metadata.
	resp, body = get(t, e, "/repository/py-dev/packages/my-pkg/1.0.0/"+whlName, "")
	if resp.StatusCode != 200 || body != string(whl) || resp.Header.Get("X-Checksum-Sha256") != hexSHA256(whl) {
		t.Fatalf("wheel GET: %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, body = get(t, e, "/repository/py-dev/packages/my-pkg/1.0.0/"+whlName+".metadata", "")
	if resp.StatusCode != 200 || body != meta {
		t.Fatalf("metadata GET: %d %q", resp.StatusCode, body)
	}

	// PEP 503 normalisation: one URL per project.
	for _, p := range []string{"/repository/py-dev/simple/My_Pkg/", "/repository/py-dev/simple/my-pkg", "/repository/py-dev/simple/MY.PKG"} {
		resp, _ := e.Admin().NoRedirect().Do(http.MethodGet, p, nil)
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/repository/py-dev/simple/my-pkg/" {
			t.Errorf("GET %s: %d Location %q", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, _ := get(t, e, "/repository/py-dev/simple/nothing-here/", ""); resp.StatusCode != 404 {
		t.Errorf("unknown project: %d", resp.StatusCode)
	}
	if resp, body := get(t, e, "/repository/py-dev/simple/my-pkg/", "application/json"); resp.StatusCode != http.StatusNotAcceptable {
		t.Errorf("Accept: application/json: %d %s", resp.StatusCode, body)
	}
	// Compressed for clients that ask (pip does).
	resp, gz := e.Admin().Do(http.MethodGet, "/repository/py-dev/simple/my-pkg/", nil, "Accept", "text/html", "Accept-Encoding", "gzip")
	zr, err := gzip.NewReader(strings.NewReader(gz))
	if err != nil || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip page: %v %q", err, resp.Header.Get("Content-Encoding"))
	}
	if plain, _ := io.ReadAll(zr); !strings.Contains(string(plain), wantHref) {
		t.Fatalf("gzip page content:\n%s", plain)
	}
	// Conditional GET.
	resp, _ = get(t, e, "/repository/py-dev/simple/my-pkg/", typeJSON)
	tag := resp.Header.Get("ETag")
	if r2, _ := e.Admin().Do(http.MethodGet, "/repository/py-dev/simple/my-pkg/", nil, "Accept", typeJSON, "If-None-Match", tag); tag == "" || r2.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %q: %d", tag, r2.StatusCode)
	}

	// JSON API.
	var api struct {
		Info struct {
			Name, Version, Summary, Description string
			RequiresDist                        []string `json:"requires_dist"`
			RequiresPython                      string   `json:"requires_python"`
		} `json:"info"`
		Releases map[string][]map[string]any `json:"releases"`
		URLs     []map[string]any            `json:"urls"`
	}
	resp, body = get(t, e, "/repository/py-dev/pypi/my-pkg/json", "")
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &api) != nil {
		t.Fatalf("JSON API: %d %s", resp.StatusCode, body)
	}
	if api.Info.Name != "My.Pkg" || api.Info.Version != "1.0.0" || api.Info.Summary != "The My.Pkg package" ||
		api.Info.RequiresPython != ">=3.8" || len(api.Info.RequiresDist) != 1 || !strings.Contains(api.Info.Description, "long description") ||
		len(api.URLs) != 2 || len(api.Releases["1.0.0"]) != 2 {
		t.Fatalf("JSON API: %s", body)
	}
	if u := api.URLs[0]["url"].(string); !strings.HasPrefix(u, e.URL+"/repository/py-dev/packages/my-pkg/1.0.0/") {
		t.Fatalf("JSON API file URL %q", u)
	}
	if resp, body := get(t, e, "/repository/py-dev/pypi/my-pkg/1.0/json", ""); resp.StatusCode != 200 || !strings.Contains(body, `"version": "1.0.0"`) || strings.Contains(body, `"releases"`) {
		t.Fatalf("version JSON API: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, e, "/repository/py-dev/pypi/my-pkg/2.0/json", ""); resp.StatusCode != 404 {
		t.Fatalf("JSON API of a missing version: %d", resp.StatusCode)
	}
	if resp, _ := e.Admin().NoRedirect().Do(http.MethodGet, "/repository/py-dev/pypi/My_Pkg/json", nil); resp.StatusCode != 301 || resp.Header.Get("Location") != "/repository/py-dev/pypi/my-pkg/json" {
		t.Fatalf("JSON API redirect: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	// The same through the virtual repository.
	resp, body = get(t, e, "/repository/py/simple/my-pkg/", "text/html")
	if resp.StatusCode != 200 || !strings.Contains(body, wantHref) {
		t.Fatalf("virtual page: %d\n%s", resp.StatusCode, body)
	}
	if resp, body := get(t, e, "/repository/py/packages/my-pkg/1.0.0/"+whlName, ""); resp.StatusCode != 200 || body != string(whl) {
		t.Fatalf("virtual file: %d", resp.StatusCode)
	}
}
