package pypi_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/format/pypi"
)

func remoteEnvs(t *testing.T) (up, down *apptest.Env) {
	up = apptest.New(t, `repositories:
  - {key: py-up, format: pypi, kind: local, tier: release}
`)
	t.Setenv("PYPI_UP_PASSWORD", apptest.AdminPassword)
	down = apptest.New(t, fmt.Sprintf(`repositories:
  - {key: py-local, format: pypi, kind: local, tier: dev}
  - key: py-remote
    format: pypi
    kind: remote
    upstream: {url: %q, username: admin, password_env: PYPI_UP_PASSWORD, timeout: 2s}
    metadata_ttl: 1s
  - {key: py, format: pypi, kind: virtual, members: [py-local, py-remote], default_deploy: py-local}
`, up.URL+"/repository/py-up/simple/"))
	return up, down
}

func TestRemote(t *testing.T) {
	up, down := remoteEnvs(t)
	meta := metadataFor("Remote-Pkg", "1.0", "Requires-Python: >=3.7")
	whlName, whl := wheel(t, "remote_pkg", "1.0", meta)
	sdName, sd := sdist(t, "remote-pkg", "1.0", meta)
	mustUpload(t, up, "py-up", "remote-pkg", "1.0", whlName, whl)
	mustUpload(t, up, "py-up", "remote-pkg", "1.0", sdName, sd)

	// The page, file URLs rewritten to Coffer, hashes and metadata kept.
	resp, body := get(t, down, "/repository/py-remote/simple/remote-pkg/", "text/html")
	want := `<a href="../../packages/remote-pkg/1.0/` + whlName + `#sha256=` + hexSHA256(whl) + `" data-requires-python="&gt;=3.7" data-core-metadata="sha256=` + hexSHA256([]byte(meta)) + `"`
	if resp.StatusCode != 200 || !strings.Contains(body, want) || strings.Contains(body, up.URL) {
		t.Fatalf("remote page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = get(t, down, "/repository/py-remote/simple/remote-pkg/", typeJSON)
	if !strings.Contains(body, `"size":`+fmt.Sprint(len(whl))) || !strings.Contains(body, `"versions":["1.0"]`) {
		t.Fatalf("remote JSON page: %s", body)
	}
	for _, p := range []string{whlName, sdName, whlName + ".metadata"} {
		want := map[string]string{whlName: string(whl), sdName: string(sd), whlName + ".metadata": meta}[p]
		resp, body := get(t, down, "/repository/py-remote/packages/remote-pkg/1.0/"+p, "")
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("remote file %s: %d %d bytes", p, resp.StatusCode, len(body))
		}
	}
	if resp, _ := get(t, down, "/repository/py-remote/packages/remote-pkg/1.0/"+sdName+".metadata", ""); resp.StatusCode != 404 {
		t.Fatalf("metadata the upstream does not advertise: %d", resp.StatusCode)
	}
	// JSON API of a remote project, from the page and the core metadata.
	if resp, body := get(t, down, "/repository/py-remote/pypi/remote-pkg/json", ""); resp.StatusCode != 200 || !strings.Contains(body, `"summary": "The Remote-Pkg package"`) ||
		!strings.Contains(body, down.URL+"/repository/py-remote/packages/remote-pkg/1.0/"+whlName) {
		t.Fatalf("remote JSON API: %d %s", resp.StatusCode, body)
	}
	// Root listing through the remote.
	if _, body := get(t, down, "/repository/py-remote/simple/", ""); !strings.Contains(body, `href="remote-pkg/"`) {
		t.Fatalf("remote root: %s", body)
	}

	// An upstream yank is mirrored once the page's TTL has passed.
	if resp, body := up.Admin().Do(http.MethodPost, "/repository/py-up/pypi/remote-pkg/1.0/yank?reason=bad+build", nil); resp.StatusCode != 200 {
		t.Fatalf("upstream yank: %d %s", resp.StatusCode, body)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, body := get(t, down, "/repository/py-remote/simple/remote-pkg/", "text/html"); !strings.Contains(body, `data-yanked="bad build"`) {
		t.Fatalf("upstream yank not mirrored:\n%s", body)
	}

	// Upstream gone: cached page and files still served.
	up.Srv.Close()
	time.Sleep(1100 * time.Millisecond)
	resp, body = get(t, down, "/repository/py-remote/simple/remote-pkg/", typeJSON)
	if resp.StatusCode != 200 || !strings.Contains(body, whlName) || resp.Header.Get("Warning") == "" {
		t.Fatalf("page with the upstream down: %d %q %s", resp.StatusCode, resp.Header.Get("Warning"), body)
	}
	if resp, body := get(t, down, "/repository/py/packages/remote-pkg/1.0/"+whlName, ""); resp.StatusCode != 200 || body != string(whl) {
		t.Fatalf("file with the upstream down: %d", resp.StatusCode)
	}
	// What was never cached fails with a clear upstream error.
	if resp, body := get(t, down, "/repository/py-remote/simple/never-seen/", ""); resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "unreachable") {
		t.Fatalf("uncached page with the upstream down: %d %s", resp.StatusCode, body)
	}
}

// A name hosted in a local member is never resolved from a remote member
// (dependency confusion), and uploads through the virtual repository land
// in its default_deploy.
func TestVirtualPrefersLocalNames(t *testing.T) {
	up, down := remoteEnvs(t)
	upName, upWhl := wheel(t, "internal_tool", "9.0", metadataFor("internal-tool", "9.0"))
	mustUpload(t, up, "py-up", "internal-tool", "9.0", upName, upWhl)
	onlyUpName, onlyUp := wheel(t, "public_lib", "1.0", metadataFor("public-lib", "1.0"))
	mustUpload(t, up, "py-up", "public-lib", "1.0", onlyUpName, onlyUp)
	localName, localWhl := wheel(t, "internal_tool", "1.0", metadataFor("internal-tool", "1.0"))
	mustUpload(t, down, "py", "internal-tool", "1.0", localName, localWhl) // via the virtual repository

	if resp, _ := get(t, down, "/repository/py-local/simple/internal-tool/", ""); resp.StatusCode != 200 {
		t.Fatalf("upload via the virtual repository did not land in default_deploy: %d", resp.StatusCode)
	}
	_, body := get(t, down, "/repository/py/simple/internal-tool/", typeJSON)
	if !strings.Contains(body, localName) || strings.Contains(body, upName) {
		t.Fatalf("virtual page of a local name shows the remote's files: %s", body)
	}
	if resp, _ := get(t, down, "/repository/py/packages/internal-tool/9.0/"+upName, ""); resp.StatusCode != 404 {
		t.Fatalf("remote file of a local name served: %d", resp.StatusCode)
	}
	// A name no local member has comes from the remote.
	_, body = get(t, down, "/repository/py/simple/public-lib/", typeJSON)
	if !strings.Contains(body, onlyUpName) {
		t.Fatalf("virtual page of a remote name: %s", body)
	}
	if resp, body := get(t, down, "/repository/py/packages/public-lib/1.0/"+onlyUpName, ""); resp.StatusCode != 200 || body != string(onlyUp) {
		t.Fatalf("remote file via virtual: %d", resp.StatusCode)
	}
	// The root merges both.
	_, body = get(t, down, "/repository/py/simple/", typeJSON)
	if !strings.Contains(body, `{"name":"internal-tool"}`) || !strings.Contains(body, `{"name":"public-lib"}`) {
		t.Fatalf("virtual root: %s", body)
	}
	// Remote repositories take no uploads.
	if resp, body := upload(t, down, "py-remote", "public-lib", "1.0", onlyUpName, onlyUp); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("upload to a remote: %s %s", resp.Status, body)
	}
}

// An upstream whose file does not match the hash its page declares: the
// file is refused and never cached. HTML pages with relative and absolute
// links, <base>, and odd markup are understood.
func TestRemoteVerifiesUpstreamHashes(t *testing.T) {
	_, good := wheel(t, "hashed", "1.0", metadataFor("hashed", "1.0"))
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)/2] ^= 0xff
	var serveCorrupt atomic.Bool
	serveCorrupt.Store(true)
	var fileGets atomic.Int32
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/simple/hashed/":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!DOCTYPE html><html><head><BASE HREF="/files/"></head><body>
<!-- <a href="commented-1.0.tar.gz">no</a> -->
<A HREF='hashed-1.0-py3-none-any.whl#sha256=%s' data-requires-python = "&gt;=3.8">hashed-1.0-py3-none-any.whl</A><br/>
<a href="http://elsewhere.invalid/hashed-0.9.tar.gz#md5=00" data-yanked>hashed-0.9.tar.gz</a>
<a href="hashed-1.0.exe">hashed-1.0.exe</a>
</body></html>`, hexSHA256(good))
		case "/files/hashed-1.0-py3-none-any.whl":
			fileGets.Add(1)
			if serveCorrupt.Load() {
				w.Write(corrupt)
			} else {
				w.Write(good)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer fake.Close()
	e := apptest.New(t, fmt.Sprintf(`repositories:
  - key: py-remote
    format: pypi
    kind: remote
    upstream: {url: %q}
`, fake.URL+"/simple/"))
	_, body := get(t, e, "/repository/py-remote/simple/hashed/", typeJSON)
	if !strings.Contains(body, `"filename":"hashed-1.0-py3-none-any.whl","url":"../../packages/hashed/1.0/hashed-1.0-py3-none-any.whl"`) ||
		!strings.Contains(body, `"requires-python":">=3.8"`) || !strings.Contains(body, `"filename":"hashed-0.9.tar.gz"`) ||
		!strings.Contains(body, `"yanked":true`) || strings.Contains(body, "commented") || strings.Contains(body, ".exe") {
		t.Fatalf("parsed upstream page: %s", body)
	}
	path := "/repository/py-remote/packages/hashed/1.0/hashed-1.0-py3-none-any.whl"
	resp, body := get(t, e, path, "")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "failed verification") {
		t.Fatalf("corrupt upstream file: %d %s", resp.StatusCode, body)
	}
	if n := assets(t, e, "py-remote"); n != 1 { // the page only
		t.Fatalf("%d assets cached after a corrupt download", n)
	}
	serveCorrupt.Store(false)
	if resp, body := get(t, e, path, ""); resp.StatusCode != 200 || body != string(good) {
		t.Fatalf("good upstream file: %d", resp.StatusCode)
	}
	before := fileGets.Load()
	if resp, _ := get(t, e, path, ""); resp.StatusCode != 200 || fileGets.Load() != before {
		t.Fatalf("cached file fetched again (%d → %d)", before, fileGets.Load())
	}
}

// Large remote files stream to the client while they arrive; one whose
// hash does not match is cut short and never cached.
func TestRemoteStreamsLargeFiles(t *testing.T) {
	defer pypi.SetStreamAbove(32 << 10)()
	payload := make([]byte, 256<<10)
	rand.Read(payload)
	name, good := wheel(t, "streamed", "1.0", metadataFor("streamed", "1.0"), member{name: "streamed/data.bin", body: string(payload)})
	bad := append([]byte(nil), good...)
	bad[len(bad)/3] ^= 0xff
	var serveBad atomic.Bool
	serveBad.Store(true)
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/simple/streamed/":
			w.Header().Set("Content-Type", typeJSON)
			fmt.Fprintf(w, `{"meta":{"api-version":"1.1"},"name":"streamed","versions":["1.0"],"files":[{"filename":%q,"url":"/f/%s","hashes":{"sha256":%q},"size":%d}]}`,
				name, name, hexSHA256(good), len(good))
		case "/f/" + name:
			body := good
			if serveBad.Load() {
				body = bad
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Write(body)
		default:
			http.NotFound(w, r)
		}
	}))
	defer fake.Close()
	e := apptest.New(t, fmt.Sprintf(`repositories:
  - {key: py-remote, format: pypi, kind: remote, upstream: {url: %q}, anonymous_read: true}
`, fake.URL+"/simple/"))
	u := e.URL + "/repository/py-remote/packages/streamed/1.0/" + name
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Streamed: the answer started (200) and was cut before the last byte.
	// A blob store that cannot read a blob back before its commit (S3)
	// does not stream: the download is refused whole.
	if !apptest.StoreStreams(e) {
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("corrupt file (store without streaming): %d, %d bytes", resp.StatusCode, len(b))
		}
	} else if resp.StatusCode != 200 || rerr == nil || len(b) >= len(bad) {
		t.Fatalf("corrupt streamed file: %d, %d of %d bytes, %v", resp.StatusCode, len(b), len(bad), rerr)
	}
	if n := assets(t, e, "py-remote"); n != 1 { // the page only
		t.Fatalf("%d assets cached after a corrupt streamed download", n)
	}
	serveBad.Store(false)
	resp, err = http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(b, good) {
		t.Fatalf("streamed file: %d, %d bytes, %v", resp.StatusCode, len(b), err)
	}
	// Cached once the stream completed: served with its checksum headers.
	time.Sleep(100 * time.Millisecond)
	resp, body := get(t, e, "/repository/py-remote/packages/streamed/1.0/"+name, "")
	if resp.StatusCode != 200 || body != string(good) || resp.Header.Get("X-Checksum-Sha256") != hexSHA256(good) {
		t.Fatalf("cached streamed file: %d %q", resp.StatusCode, resp.Header.Get("X-Checksum-Sha256"))
	}
}
