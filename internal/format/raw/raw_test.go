package raw_test

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

const devConfig = `
repositories:
  - {key: raw-dev, format: raw, kind: local, tier: dev}
  - {key: raw-release, format: raw, kind: local, tier: release}
`

func sums(s string) (sha256hex, sha1hex, md5hex string) {
	a := sha256.Sum256([]byte(s))
	b := sha1.Sum([]byte(s))
	c := md5.Sum([]byte(s))
	return hex.EncodeToString(a[:]), hex.EncodeToString(b[:]), hex.EncodeToString(c[:])
}

// rawError decodes the raw format's error body and returns its message.
func rawError(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Errors []struct {
			Status  int    `json:"status"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Message == "" {
		t.Fatalf("error body %q is not {\"errors\":[{status, message}]}", body)
	}
	return e.Errors[0].Message
}

func TestPutGetHeadDelete(t *testing.T) {
	e := apptest.New(t, devConfig)
	admin := e.Admin()
	content := "hello, coffer\n"
	s256, s1, m5 := sums(content)

	resp, body := admin.Do(http.MethodPut, "/repository/raw-dev/dir/hello.txt", strings.NewReader(content))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	var put struct {
		Repo        string            `json:"repo"`
		Path        string            `json:"path"`
		Size        int64             `json:"size"`
		DownloadURI string            `json:"downloadUri"`
		Unchanged   bool              `json:"unchanged"`
		Checksums   map[string]string `json:"checksums"`
	}
	if err := json.Unmarshal([]byte(body), &put); err != nil {
		t.Fatalf("PUT body %q: %v", body, err)
	}
	wantURI := e.URL + "/repository/raw-dev/dir/hello.txt"
	if put.Repo != "raw-dev" || put.Path != "dir/hello.txt" || put.Size != int64(len(content)) || put.DownloadURI != wantURI || put.Unchanged {
		t.Errorf("PUT body = %+v", put)
	}
	if put.Checksums["sha256"] != s256 || put.Checksums["sha1"] != s1 || put.Checksums["md5"] != m5 {
		t.Errorf("PUT checksums = %v", put.Checksums)
	}
	if got := resp.Header.Get("Location"); got != wantURI {
		t.Errorf("Location = %q, want %q", got, wantURI)
	}

	resp, body = admin.Do(http.MethodGet, "/repository/raw-dev/dir/hello.txt", nil)
	if resp.StatusCode != http.StatusOK || body != content {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}

	resp, body = admin.Do(http.MethodHead, "/repository/raw-dev/dir/hello.txt", nil)
	if resp.StatusCode != http.StatusOK || body != "" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Length") != "14" || resp.Header.Get("X-Checksum-Sha256") != s256 {
		t.Errorf("HEAD headers: %v", resp.Header)
	}

	resp, body = admin.Do(http.MethodDelete, "/repository/raw-dev/dir/hello.txt", nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	resp, body = admin.Do(http.MethodGet, "/repository/raw-dev/dir/hello.txt", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET after DELETE: %d %s", resp.StatusCode, body)
	}
	if msg := rawError(t, body); !strings.Contains(msg, "dir/hello.txt") || !strings.Contains(msg, "raw-dev") {
		t.Errorf("404 message %q does not name the path and repository", msg)
	}
	resp, body = admin.Do(http.MethodHead, "/repository/raw-dev/dir/hello.txt", nil)
	if resp.StatusCode != http.StatusNotFound || body != "" {
		t.Fatalf("HEAD after DELETE: %d %q", resp.StatusCode, body)
	}
	resp, body = admin.Do(http.MethodDelete, "/repository/raw-dev/dir/hello.txt", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second DELETE: %d %s", resp.StatusCode, body)
	}
}

func TestEmptyFile(t *testing.T) {
	e := apptest.New(t, devConfig)
	e.Put("raw-dev", "empty", "")
	resp, body := e.Admin().Do(http.MethodGet, "/repository/raw-dev/empty", nil)
	if resp.StatusCode != http.StatusOK || body != "" || resp.Header.Get("Content-Length") != "0" {
		t.Fatalf("GET empty: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestDownloadHeaders(t *testing.T) {
	e := apptest.New(t, devConfig)
	admin := e.Admin()
	content := "some bytes for headers"
	s256, s1, m5 := sums(content)
	before := time.Now().Add(-time.Second)
	e.Put("raw-dev", "h/file.txt", content)
	resp, _ := admin.Do(http.MethodPut, "/repository/raw-dev/h/custom", strings.NewReader(content), "Content-Type", "application/x-custom")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT custom: %d", resp.StatusCode)
	}
	e.Put("raw-dev", "h/noext", content)

	tests := []struct {
		path, contentType string
	}{
		{"h/file.txt", "text/plain; charset=utf-8"},
		{"h/custom", "application/x-custom"},
		{"h/noext", "application/octet-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				resp, body := admin.Do(method, "/repository/raw-dev/"+tt.path, nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: %d %s", method, resp.StatusCode, body)
				}
				h := resp.Header
				want := map[string]string{
					"ETag":              `"` + s256 + `"`,
					"Content-Length":    "22",
					"X-Checksum-Sha256": s256,
					"X-Checksum-Sha1":   s1,
					"X-Checksum-Md5":    m5,
					"Content-Type":      tt.contentType,
					"Accept-Ranges":     "bytes",
				}
				for k, v := range want {
					if got := h.Get(k); got != v {
						t.Errorf("%s %s: %s = %q, want %q", method, tt.path, k, got, v)
					}
				}
				lm, err := http.ParseTime(h.Get("Last-Modified"))
				if err != nil || lm.Before(before.Truncate(time.Second)) || lm.After(time.Now()) {
					t.Errorf("%s: Last-Modified %q (%v) is not the upload time", method, h.Get("Last-Modified"), err)
				}
				if h.Get("X-Coffer-Deprecated") != "" {
					t.Errorf("%s: a fresh artifact is marked deprecated", method)
				}
			}
		})
	}
}

func TestRange(t *testing.T) {
	e := apptest.New(t, devConfig)
	content := "abcdefghijklmnopqrstuvwxyz"
	e.Put("raw-dev", "alpha.bin", content)
	admin := e.Admin()
	tests := []struct {
		rng, body, contentRange string
		status                  int
	}{
		{"bytes=2-5", "cdef", "bytes 2-5/26", http.StatusPartialContent},
		{"bytes=20-", "uvwxyz", "bytes 20-25/26", http.StatusPartialContent},
		{"bytes=-3", "xyz", "bytes 23-25/26", http.StatusPartialContent},
		{"bytes=0-0", "a", "bytes 0-0/26", http.StatusPartialContent},
		{"bytes=10-1000", "klmnopqrstuvwxyz", "bytes 10-25/26", http.StatusPartialContent},
		{"bytes=26-30", "", "bytes */26", http.StatusRequestedRangeNotSatisfiable},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			resp, body := admin.Do(http.MethodGet, "/repository/raw-dev/alpha.bin", nil, "Range", tt.rng)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get("Content-Range"); got != tt.contentRange {
				t.Errorf("Content-Range = %q, want %q", got, tt.contentRange)
			}
			if tt.status == http.StatusPartialContent {
				if body != tt.body {
					t.Errorf("body = %q, want %q", body, tt.body)
				}
				if resp.ContentLength != int64(len(tt.body)) {
					t.Errorf("Content-Length = %d, want %d", resp.ContentLength, len(tt.body))
				}
			}
		})
	}
	// A range that no longer matches the ETag gives the whole file.
	resp, body := admin.Do(http.MethodGet, "/repository/raw-dev/alpha.bin", nil, "Range", "bytes=0-1", "If-Range", `"0000"`)
	if resp.StatusCode != http.StatusOK || body != content {
		t.Errorf("If-Range mismatch: %d %q", resp.StatusCode, body)
	}
}

func TestConditionalRequests(t *testing.T) {
	e := apptest.New(t, devConfig)
	e.Put("raw-dev", "cond.txt", "conditional")
	admin := e.Admin()
	resp, _ := admin.Do(http.MethodGet, "/repository/raw-dev/cond.txt", nil)
	etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	lm, err := http.ParseTime(lastMod)
	if err != nil {
		t.Fatalf("Last-Modified %q: %v", lastMod, err)
	}
	tests := []struct {
		name   string
		header []string
		status int
	}{
		{"If-None-Match same", []string{"If-None-Match", etag}, http.StatusNotModified},
		{"If-None-Match list", []string{"If-None-Match", `"other", ` + etag}, http.StatusNotModified},
		{"If-None-Match star", []string{"If-None-Match", "*"}, http.StatusNotModified},
		{"If-None-Match other", []string{"If-None-Match", `"0123"`}, http.StatusOK},
		{"If-Modified-Since same", []string{"If-Modified-Since", lastMod}, http.StatusNotModified},
		{"If-Modified-Since later", []string{"If-Modified-Since", lm.Add(time.Hour).Format(http.TimeFormat)}, http.StatusNotModified},
		{"If-Modified-Since earlier", []string{"If-Modified-Since", lm.Add(-time.Hour).Format(http.TimeFormat)}, http.StatusOK},
		{"If-None-Match wins over If-Modified-Since", []string{"If-None-Match", `"0123"`, "If-Modified-Since", lastMod}, http.StatusOK},
		{"If-Match other", []string{"If-Match", `"0123"`}, http.StatusPreconditionFailed},
		{"If-Match same", []string{"If-Match", etag}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				resp, body := admin.Do(method, "/repository/raw-dev/cond.txt", nil, tt.header...)
				if resp.StatusCode != tt.status {
					t.Fatalf("%s: status %d, want %d", method, resp.StatusCode, tt.status)
				}
				switch {
				case tt.status == http.StatusNotModified && body != "":
					t.Errorf("%s: 304 with a body %q", method, body)
				case tt.status == http.StatusOK && method == http.MethodGet && body != "conditional":
					t.Errorf("%s: body %q", method, body)
				}
				if tt.status == http.StatusNotModified && resp.Header.Get("ETag") != etag {
					t.Errorf("%s: 304 without the ETag", method)
				}
			}
		})
	}
}

func TestUploadChecksums(t *testing.T) {
	e := apptest.New(t, devConfig)
	admin := e.Admin()
	content := "checked content"
	s256, s1, m5 := sums(content)
	o256, o1, o5 := sums("other content")
	tests := []struct {
		name    string
		header  []string
		status  int
		message string // in the error message
	}{
		{"sha256 mismatch", []string{"X-Checksum-Sha256", o256}, http.StatusBadRequest, "sha256 checksum mismatch"},
		{"sha1 mismatch", []string{"X-Checksum-Sha1", o1}, http.StatusBadRequest, "sha1 checksum mismatch"},
		{"md5 mismatch", []string{"X-Checksum-Md5", o5}, http.StatusBadRequest, "md5 checksum mismatch"},
		{"sha256 ok, md5 mismatch", []string{"X-Checksum-Sha256", s256, "X-Checksum-Md5", o5}, http.StatusBadRequest, "md5 checksum mismatch"},
		{"sha256 malformed", []string{"X-Checksum-Sha256", "abc"}, http.StatusBadRequest, "not a 64-digit hex"},
		{"sha1 malformed", []string{"X-Checksum-Sha1", s256}, http.StatusBadRequest, "not a 40-digit hex"},
		{"md5 not hex", []string{"X-Checksum-Md5", strings.Repeat("z", 32)}, http.StatusBadRequest, "md5"},
		{"all match", []string{"X-Checksum-Sha256", s256, "X-Checksum-Sha1", s1, "X-Checksum-Md5", m5}, http.StatusCreated, ""},
		{"upper case match", []string{"X-Checksum-Sha256", strings.ToUpper(s256)}, http.StatusCreated, ""},
		{"sha1 only match", []string{"X-Checksum-Sha1", s1}, http.StatusCreated, ""},
		{"md5 only match", []string{"X-Checksum-Md5", m5}, http.StatusCreated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/repository/raw-dev/sums/" + strings.ReplaceAll(tt.name, " ", "-") + ".txt"
			before := e.Storage()
			blobsBefore, _ := e.BlobFiles()
			resp, body := admin.Do(http.MethodPut, path, strings.NewReader(content), tt.header...)
			if resp.StatusCode != tt.status {
				t.Fatalf("PUT: %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			get, got := admin.Do(http.MethodGet, path, nil)
			if tt.status != http.StatusCreated {
				if msg := rawError(t, body); !strings.Contains(msg, tt.message) {
					t.Errorf("message %q does not say %q", msg, tt.message)
				}
				if get.StatusCode != http.StatusNotFound {
					t.Errorf("GET after a refused upload: %d %q", get.StatusCode, got)
				}
				after := e.Storage()
				blobsAfter, uploads := e.BlobFiles()
				if after.Physical != before.Physical || after.LogicalBytes != before.LogicalBytes {
					t.Errorf("storage changed: %+v -> %+v", before, after)
				}
				if blobsAfter != blobsBefore || uploads != 0 {
					t.Errorf("blob files: %d -> %d, %d uploads left", blobsBefore, blobsAfter, uploads)
				}
				return
			}
			if get.StatusCode != http.StatusOK || got != content {
				t.Errorf("GET after upload: %d %q", get.StatusCode, got)
			}
		})
	}
}

type listing struct {
	Repo     string `json:"repo"`
	Path     string `json:"path"`
	Children []struct {
		Name         string `json:"name"`
		Folder       bool   `json:"folder"`
		Size         int64  `json:"size"`
		SHA256       string `json:"sha256"`
		LastModified string `json:"lastModified"`
		Deprecated   bool   `json:"deprecated"`
		URI          string `json:"uri"`
	} `json:"children"`
}

func getListing(t *testing.T, e *apptest.Env, path string) listing {
	t.Helper()
	resp, body := e.Admin().Do(http.MethodGet, path, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	var l listing
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatalf("GET %s: %q: %v", path, body, err)
	}
	return l
}

func names(l listing) string {
	var n []string
	for _, c := range l.Children {
		n = append(n, c.Name)
	}
	return strings.Join(n, " ")
}

func TestFolderListing(t *testing.T) {
	e := apptest.New(t, devConfig)
	for _, p := range []string{"a/b/1.txt", "a/b/2.txt", "a/c.txt", "a/d/e/f.txt", "top.txt", "z y.txt"} {
		e.Put("raw-dev", strings.ReplaceAll(p, " ", "%20"), "content of "+p)
	}

	root := getListing(t, e, "/repository/raw-dev/")
	if root.Repo != "raw-dev" || root.Path != "/" || names(root) != "a/ top.txt z y.txt" {
		t.Fatalf("root listing: %+v", root)
	}
	if c := root.Children[0]; !c.Folder || c.URI != "/repository/raw-dev/a/" || c.Size != 0 || c.SHA256 != "" {
		t.Errorf("folder entry: %+v", c)
	}
	s256, _, _ := sums("content of top.txt")
	if c := root.Children[1]; c.Folder || c.Size != int64(len("content of top.txt")) || c.SHA256 != s256 ||
		c.URI != "/repository/raw-dev/top.txt" || c.LastModified == "" {
		t.Errorf("file entry: %+v", c)
	}
	if c := root.Children[2]; c.URI != "/repository/raw-dev/z%20y.txt" {
		t.Errorf("escaped entry: %+v", c)
	}

	a := getListing(t, e, "/repository/raw-dev/a/")
	if a.Path != "a/" || names(a) != "b/ c.txt d/" {
		t.Fatalf("a/ listing: %+v", a)
	}
	if b := getListing(t, e, "/repository/raw-dev/a/b/"); names(b) != "1.txt 2.txt" || b.Children[0].URI != "/repository/raw-dev/a/b/1.txt" {
		t.Fatalf("a/b/ listing: %+v", b)
	}

	// HTML for browsers.
	resp, body := e.Admin().Do(http.MethodGet, "/repository/raw-dev/a/", nil, "Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("HTML listing: %d %v", resp.StatusCode, resp.Header)
	}
	for _, want := range []string{`<a href="/repository/raw-dev/a/b/">b/</a>`, `<a href="/repository/raw-dev/a/c.txt">c.txt</a>`, `href="../"`} {
		if !strings.Contains(body, want) {
			t.Errorf("HTML listing lacks %s:\n%s", want, body)
		}
	}

	// A folder without its trailing slash redirects to it.
	noRedirect := e.Admin().NoRedirect()
	for path, want := range map[string]string{
		"/repository/raw-dev/a":   "/repository/raw-dev/a/",
		"/repository/raw-dev/a/b": "/repository/raw-dev/a/b/",
		"/repository/raw-dev":     "/repository/raw-dev/",
	} {
		resp, _ := noRedirect.Do(http.MethodGet, path, nil)
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
			t.Errorf("GET %s: %d Location %q, want 301 to %s", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}

	// A missing folder is 404; an empty repository lists nothing.
	resp, body = e.Admin().Do(http.MethodGet, "/repository/raw-dev/nope/", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(rawError(t, body), "nope") {
		t.Errorf("missing folder: %d %s", resp.StatusCode, body)
	}
	if l := getListing(t, e, "/repository/raw-release/"); len(l.Children) != 0 || l.Children == nil {
		t.Errorf("empty repository listing: %+v", l)
	}

	// A PUT to a folder is refused.
	resp, body = e.Admin().Do(http.MethodPut, "/repository/raw-dev/a/", strings.NewReader("x"))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PUT to a folder: %d %s", resp.StatusCode, body)
	}

	// Deleting a folder in dev removes everything under it.
	resp, body = e.Admin().Do(http.MethodDelete, "/repository/raw-dev/a/b", nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE folder: %d %s", resp.StatusCode, body)
	}
	if a := getListing(t, e, "/repository/raw-dev/a/"); names(a) != "c.txt d/" {
		t.Errorf("after deleting a/b: %+v", a)
	}
}

func TestDeprecation(t *testing.T) {
	e := apptest.New(t, devConfig)
	admin := e.Admin()
	e.Put("raw-release", "app/1.0/app.tgz", "version one")

	var res struct {
		Repo       string `json:"repo"`
		Path       string `json:"path"`
		Deprecated bool   `json:"deprecated"`
		Message    string `json:"message"`
	}
	admin.MustJSON(http.MethodPost, "/api/v1/repositories/raw-release/deprecations",
		map[string]string{"path": "app/1.0/app.tgz", "message": "CVE-2024-0001: use 1.1"}, http.StatusOK, &res)
	if res.Repo != "raw-release" || res.Path != "app/1.0/app.tgz" || !res.Deprecated || res.Message != "CVE-2024-0001: use 1.1" {
		t.Errorf("deprecation result: %+v", res)
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		resp, body := admin.Do(method, "/repository/raw-release/app/1.0/app.tgz", nil)
		if resp.StatusCode != http.StatusOK || (method == http.MethodGet && body != "version one") {
			t.Fatalf("%s deprecated: %d %q", method, resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Coffer-Deprecated"); got != "CVE-2024-0001: use 1.1" {
			t.Errorf("%s: X-Coffer-Deprecated = %q", method, got)
		}
	}
	if l := getListing(t, e, "/repository/raw-release/app/1.0/"); len(l.Children) != 1 || !l.Children[0].Deprecated {
		t.Errorf("listing does not show the deprecation: %+v", l)
	}
	var art struct {
		Deprecated         bool   `json:"deprecated"`
		DeprecationMessage string `json:"deprecation_message"`
	}
	admin.MustJSON(http.MethodGet, "/api/v1/repositories/raw-release/artifacts/app/1.0/app.tgz", nil, http.StatusOK, &art)
	if !art.Deprecated || art.DeprecationMessage != "CVE-2024-0001: use 1.1" {
		t.Errorf("artifact API: %+v", art)
	}

	// A message with a line break cannot split the header.
	admin.MustJSON(http.MethodPost, "/api/v1/repositories/raw-release/deprecations",
		map[string]string{"path": "app/1.0/app.tgz", "message": "line one\r\nX-Injected: yes"}, http.StatusOK, nil)
	resp, _ := admin.Do(http.MethodGet, "/repository/raw-release/app/1.0/app.tgz", nil)
	if resp.Header.Get("X-Injected") != "" || !strings.HasPrefix(resp.Header.Get("X-Coffer-Deprecated"), "line one") {
		t.Errorf("deprecation header: %v", resp.Header)
	}

	// Without a message the header still says so.
	e.Put("raw-release", "app/0.9/app.tgz", "version zero")
	admin.MustJSON(http.MethodPost, "/api/v1/repositories/raw-release/deprecations", map[string]string{"path": "/app/0.9/app.tgz"}, http.StatusOK, nil)
	resp, _ = admin.Do(http.MethodGet, "/repository/raw-release/app/0.9/app.tgz", nil)
	if resp.Header.Get("X-Coffer-Deprecated") == "" {
		t.Errorf("deprecated without message: no header")
	}

	// Undeprecate removes the header.
	admin.MustJSON(http.MethodDelete, "/api/v1/repositories/raw-release/deprecations/app/1.0/app.tgz", nil, http.StatusOK, nil)
	resp, _ = admin.Do(http.MethodGet, "/repository/raw-release/app/1.0/app.tgz", nil)
	if resp.Header.Get("X-Coffer-Deprecated") != "" {
		t.Errorf("after undeprecate: X-Coffer-Deprecated = %q", resp.Header.Get("X-Coffer-Deprecated"))
	}

	// Deprecating what does not exist is 404 naming it.
	resp, body := admin.JSON(http.MethodPost, "/api/v1/repositories/raw-release/deprecations", map[string]string{"path": "nope.tgz"})
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "nope.tgz") {
		t.Errorf("deprecate missing: %d %s", resp.StatusCode, body)
	}
}
