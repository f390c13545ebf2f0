package raw_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

const badInputConfig = `
server:
  max_upload_size: 4KiB
repositories:
  - {key: raw-dev, format: raw, kind: local, tier: dev, max_upload_size: 1KiB}
  - {key: raw-other, format: raw, kind: local, tier: dev}
  - {key: raw-big, format: raw, kind: local, tier: dev, max_upload_size: 8KiB}
  - key: raw-remote
    format: raw
    kind: remote
    upstream: {url: "http://127.0.0.1:9/never-contacted"}
  - {key: raw-virtual, format: raw, kind: virtual, members: [raw-dev, raw-remote]}
  - {key: raw-deploy, format: raw, kind: virtual, members: [raw-dev, raw-other], default_deploy: raw-other}
`

// nothingStored checks that storage is as it was and that no upload was
// left behind.
func nothingStored(t *testing.T, e *apptest.Env, before apptest.Storage, blobsBefore int) {
	t.Helper()
	after := e.Storage()
	if after.Physical != before.Physical || after.LogicalBytes != before.LogicalBytes {
		t.Errorf("storage changed: %+v -> %+v", before, after)
	}
	blobs, uploads := e.BlobFiles()
	if blobs != blobsBefore || uploads != 0 {
		t.Errorf("blob files: %d -> %d, %d uploads left behind", blobsBefore, blobs, uploads)
	}
}

func notFound(t *testing.T, e *apptest.Env, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if resp, body := e.Admin().Do(http.MethodGet, p, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d %q, want 404", p, resp.StatusCode, body)
		}
	}
}

func TestPathTraversalSentRaw(t *testing.T) {
	e := apptest.New(t, badInputConfig)
	e.Put("raw-other", "keep.txt", "keep") // so that the store is not trivially empty
	tests := []struct {
		target string
		status int
		msg    string
	}{
		{"/repository/raw-dev/../raw-other/evil.txt", 400, "traversal"},
		{"/repository/raw-dev/a/../../raw-other/evil.txt", 400, "traversal"},
		{"/repository/raw-dev/./evil.txt", 400, "traversal"},
		{"/repository/raw-dev/%2e%2e/raw-other/evil.txt", 400, "traversal"},
		{"/repository/raw-dev/%2E%2e/raw-other/evil.txt", 400, "traversal"},
		{"/repository/raw-dev/%2E%2E/raw-other/evil.txt", 400, "traversal"},
		{"/repository/raw-dev/.%2e/raw-other/evil.txt", 400, "traversal"},
		{"/repository/raw-dev/%2e./raw-other/evil.txt", 400, "traversal"},
		{"/repository/raw-dev/a%2f..%2f..%2fraw-other%2fevil.txt", 400, "traversal"},
		{"/repository/raw-dev/a%2F..%2Fevil.txt", 400, "traversal"},
		{"/repository/raw-dev/..%5craw-other%5cevil.txt", 400, "backslash"},
		{"/repository/raw-dev/..%5Cevil.txt", 400, "backslash"},
		{`/repository/raw-dev/a\..\evil.txt`, 400, "backslash"},
		{`/repository/raw-dev/evil\file.txt`, 400, "backslash"},
		{"/repository/raw-dev/evil%00.txt", 400, "control"},
		{"/repository/raw-dev/evil.txt%00.jpg", 400, "control"},
		{"/repository/raw-dev/evil%0d%0aX-Injected:%20yes", 400, "control"},
		{"/repository/raw-dev//etc/passwd", 400, "empty segment"},
		{"/repository/raw-dev/a//b.txt", 400, "empty segment"},
		{"/repository/raw-dev/%2f", 400, "encoded slash"},
		{"/repository/raw-dev/%2fetc%2fpasswd", 400, "encoded slash"},
		{"/repository/raw-dev/a%2fb.txt", 400, "encoded slash"},
		{"/repository/raw-dev/evil%ff.txt", 400, "UTF-8"},
		{"/repository/raw-dev/evil%zz.txt", 400, "Bad Request"}, // refused by net/http itself
		{"/repository/%2e%2e/raw-other/evil.txt", 404, "not found"},
		{"/repository/raw-dev%2f..%2fraw-other/evil.txt", 404, "not found"},
	}
	before := e.Storage()
	blobsBefore, _ := e.BlobFiles()
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			e := e.WithT(t)
			for _, method := range []string{http.MethodPut, http.MethodGet, http.MethodDelete} {
				body := ""
				if method == http.MethodPut {
					body = "evil content"
				}
				resp := e.Raw(method, tt.target, body)
				if resp.Status != tt.status {
					t.Fatalf("%s %s: %d, want %d: %s", method, tt.target, resp.Status, tt.status, resp.Body)
				}
				if !strings.Contains(resp.Body, tt.msg) {
					t.Errorf("%s %s: message %q does not say %q", method, tt.target, resp.Body, tt.msg)
				}
				if resp.Header.Get("X-Injected") != "" {
					t.Errorf("%s %s: header injected", method, tt.target)
				}
			}
		})
	}
	nothingStored(t, e, before, blobsBefore)
	notFound(t, e, "/repository/raw-other/evil.txt", "/repository/raw-dev/evil.txt", "/repository/raw-dev/etc/passwd")
	resp, body := e.Admin().Do(http.MethodGet, "/repository/raw-other/keep.txt", nil)
	if resp.StatusCode != http.StatusOK || body != "keep" {
		t.Errorf("keep.txt: %d %q", resp.StatusCode, body)
	}
	var page struct {
		Items []struct{ Path string } `json:"items"`
	}
	e.Admin().MustJSON(http.MethodGet, "/api/v1/search/artifacts?q=evil", nil, http.StatusOK, &page)
	if len(page.Items) != 0 {
		t.Errorf("search finds stored evil paths: %+v", page.Items)
	}
}

func TestUnknownRepository(t *testing.T) {
	e := apptest.New(t, badInputConfig)
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodHead} {
		var body io.Reader
		if method == http.MethodPut {
			body = strings.NewReader("x")
		}
		resp, text := e.Admin().Do(method, "/repository/no-such-repo/file.txt", body)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: %d %s", method, resp.StatusCode, text)
		}
		if method == http.MethodHead {
			continue
		}
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(text), &e); err != nil || e.Error.Code != "NOT_FOUND" || !strings.Contains(e.Error.Message, `"no-such-repo"`) {
			t.Errorf("%s: body %q does not name the repository", method, text)
		}
	}
}

func TestWrongMethod(t *testing.T) {
	e := apptest.New(t, badInputConfig)
	e.Put("raw-dev", "m.txt", "content")
	before := e.Storage()
	blobsBefore, _ := e.BlobFiles()
	for _, method := range []string{http.MethodPost, http.MethodPatch, http.MethodOptions, "PROPFIND"} {
		resp, body := e.Admin().Do(method, "/repository/raw-dev/m2.txt", strings.NewReader("posted"))
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("%s: %d %s", method, resp.StatusCode, body)
		}
		if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "PUT") || !strings.Contains(allow, "GET") {
			t.Errorf("%s: Allow = %q", method, allow)
		}
		if msg := rawError(t, body); !strings.Contains(msg, method) {
			t.Errorf("%s: message %q does not name the method", method, msg)
		}
	}
	nothingStored(t, e, before, blobsBefore)
	notFound(t, e, "/repository/raw-dev/m2.txt")
}

// chunked hides the length of r so that the client sends it chunked.
type chunked struct{ io.Reader }

func TestOversizedBody(t *testing.T) {
	e := apptest.New(t, badInputConfig)
	tests := []struct {
		name    string
		repo    string
		size    int
		chunked bool
		status  int
		limit   string
	}{
		{"length over repository limit", "raw-dev", 1025, false, 413, "1024-byte limit of raw-dev"},
		{"chunked over repository limit", "raw-dev", 2048, true, 413, "raw-dev"},
		{"chunked one byte over", "raw-dev", 1025, true, 413, "raw-dev"},
		{"length at repository limit", "raw-dev", 1024, false, 201, ""},
		{"chunked at repository limit", "raw-dev", 1024, true, 201, ""},
		{"length over server limit", "raw-other", 5000, false, 413, "4096-byte limit of raw-other"},
		{"chunked over server limit", "raw-other", 5000, true, 413, "raw-other"},
		{"under server limit", "raw-other", 3000, true, 201, ""},
		{"repository raises the limit", "raw-big", 5000, false, 201, ""},
		{"over the raised limit", "raw-big", 9000, true, 413, "raw-big"},
		{"virtual deploy uses the target's limit", "raw-deploy", 5000, false, 413, "raw-other"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.WithT(t)
			admin := e.Admin()
			before := e.Storage()
			blobsBefore, _ := e.BlobFiles()
			path := "/repository/" + tt.repo + "/big/" + strconv.Itoa(i) + ".bin"
			content := strings.Repeat(string(rune('a'+i)), tt.size)
			var body io.Reader = strings.NewReader(content)
			if tt.chunked {
				body = chunked{body}
			}
			req := admin.Request(http.MethodPut, path, body)
			if tt.chunked {
				req.ContentLength = -1
			}
			resp, text := admin.Send(req)
			if resp.StatusCode != tt.status {
				t.Fatalf("PUT %d bytes: %d, want %d: %s", tt.size, resp.StatusCode, tt.status, text)
			}
			if tt.status != http.StatusRequestEntityTooLarge {
				if resp, got := admin.Do(http.MethodGet, path, nil); resp.StatusCode != 200 || got != content {
					t.Errorf("GET after PUT: %d, %d bytes", resp.StatusCode, len(got))
				}
				return
			}
			if msg := rawError(t, text); !strings.Contains(msg, tt.limit) || !strings.Contains(msg, "limit") {
				t.Errorf("message %q does not say %q", msg, tt.limit)
			}
			nothingStored(t, e, before, blobsBefore)
			notFound(t, e, path)
		})
	}

	// A declared length above the limit is refused before the body is sent.
	for _, expect := range []string{"", "Expect: 100-continue\r\n"} {
		t.Run("refused before reading "+strings.TrimSpace(expect), func(t *testing.T) {
			e := e.WithT(t)
			c := e.Dial()
			io.WriteString(c, "PUT /repository/raw-dev/huge.bin HTTP/1.1\r\nHost: x\r\nAuthorization: "+
				apptest.BasicAuth("admin", apptest.AdminPassword)+"\r\nContent-Length: 10737418240\r\n"+expect+"\r\n")
			// No byte of the body is sent: the answer comes from the headers
			// alone, and is not "100 Continue".
			resp := e.ReadResponse(c, http.MethodPut)
			if resp.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			if msg := rawError(t, resp.Body); !strings.Contains(msg, "10737418240 bytes exceeds the 1024-byte limit of raw-dev") {
				t.Errorf("message %q", msg)
			}
			notFound(t, e, "/repository/raw-dev/huge.bin")
		})
	}
}

// putCounts sums coffer_http_requests_total for PUTs to repo.
func putCounts(t *testing.T, e *apptest.Env, repo string) float64 {
	t.Helper()
	var n float64
	for _, line := range strings.Split(e.Metrics(), "\n") {
		if strings.HasPrefix(line, "coffer_http_requests_total{") && strings.Contains(line, `repository="`+repo+`"`) && strings.Contains(line, `method="PUT"`) {
			f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatal(err)
			}
			n += f
		}
	}
	return n
}

func TestTruncatedBody(t *testing.T) {
	e := apptest.New(t, badInputConfig)
	e.Put("raw-other", "keep.txt", "keep")
	before := e.Storage()
	blobsBefore, _ := e.BlobFiles()
	head := "PUT /repository/raw-other/partial.bin HTTP/1.1\r\nHost: x\r\nAuthorization: " +
		apptest.BasicAuth("admin", apptest.AdminPassword) + "\r\nContent-Length: 1000\r\n\r\n0123456789"

	t.Run("half close", func(t *testing.T) {
		e := e.WithT(t)
		c := e.Dial()
		io.WriteString(c, head)
		c.(*net.TCPConn).CloseWrite()
		// The server answers once it has given up on the body.
		resp := e.ReadResponse(c, http.MethodPut)
		if resp.Status < 400 {
			t.Fatalf("truncated upload answered %d", resp.Status)
		}
		if msg := rawError(t, resp.Body); !strings.Contains(msg, "nothing was stored") {
			t.Errorf("message %q", msg)
		}
		nothingStored(t, e, before, blobsBefore)
		notFound(t, e, "/repository/raw-other/partial.bin")
	})

	t.Run("close", func(t *testing.T) {
		e := e.WithT(t)
		n := putCounts(t, e, "raw-other")
		c := e.Dial()
		io.WriteString(c, head)
		c.Close()
		// Wait until the server has finished with the request.
		deadline := time.Now().Add(20 * time.Second)
		for putCounts(t, e, "raw-other") == n {
			if time.Now().After(deadline) {
				t.Fatal("the server never finished the truncated request")
			}
			time.Sleep(5 * time.Millisecond)
		}
		nothingStored(t, e, before, blobsBefore)
		notFound(t, e, "/repository/raw-other/partial.bin")
	})
}

func TestPutToRemoteAndVirtual(t *testing.T) {
	e := apptest.New(t, badInputConfig)
	admin := e.Admin()
	before := e.Storage()
	blobsBefore, _ := e.BlobFiles()
	tests := []struct {
		repo string
		msg  []string
	}{
		{"raw-remote", []string{"raw-remote", "remote repository", "cannot be deployed"}},
		{"raw-virtual", []string{"raw-virtual", "no default_deploy"}},
	}
	for _, tt := range tests {
		resp, body := admin.Do(http.MethodPut, "/repository/"+tt.repo+"/file.txt", strings.NewReader("content"))
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("PUT to %s: %d %s", tt.repo, resp.StatusCode, body)
		}
		msg := rawError(t, body)
		for _, want := range tt.msg {
			if !strings.Contains(msg, want) {
				t.Errorf("PUT to %s: message %q does not say %q", tt.repo, msg, want)
			}
		}
	}
	nothingStored(t, e, before, blobsBefore)
	notFound(t, e, "/repository/raw-dev/file.txt")

	// DELETE through a virtual repository is refused too.
	if resp, body := admin.Do(http.MethodDelete, "/repository/raw-virtual/file.txt", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE on a virtual repository: %d %s", resp.StatusCode, body)
	}

	// A virtual repository with default_deploy stores in that member.
	resp, body := admin.Do(http.MethodPut, "/repository/raw-deploy/dir/deployed.txt", strings.NewReader("deployed"))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT through raw-deploy: %d %s", resp.StatusCode, body)
	}
	if loc := resp.Header.Get("Location"); loc != e.URL+"/repository/raw-other/dir/deployed.txt" {
		t.Errorf("Location = %q", loc)
	}
	for _, p := range []string{"/repository/raw-other/dir/deployed.txt", "/repository/raw-deploy/dir/deployed.txt"} {
		resp, got := admin.Do(http.MethodGet, p, nil)
		if resp.StatusCode != http.StatusOK || got != "deployed" {
			t.Errorf("GET %s: %d %q", p, resp.StatusCode, got)
		}
	}
	if resp, got := admin.Do(http.MethodGet, "/repository/raw-deploy/dir/deployed.txt", nil); resp.Header.Get("X-Coffer-Repository") != "raw-other" {
		t.Errorf("virtual GET does not say which member served it: %v %q", resp.Header, got)
	}
	notFound(t, e, "/repository/raw-dev/dir/deployed.txt")
}
