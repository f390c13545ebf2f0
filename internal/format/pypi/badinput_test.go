package pypi_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/format/pypi"
)

// Every refusal answers with a message a person can act on and leaves
// nothing behind.
func TestBadUploads(t *testing.T) {
	defer pypi.SetMaxSdistExpanded(16 << 20)()
	e := apptest.New(t, hostedConfig)
	meta := metadataFor("good", "1.0")
	whlName, whl := wheel(t, "good", "1.0", meta)
	sdName, _ := sdist(t, "good", "1.0", meta)

	post := func(repoKey string, body []byte, ct string) (*http.Response, string) {
		return e.Admin().Do(http.MethodPost, "/repository/"+repoKey+"/", bytes.NewReader(body), "Content-Type", ct)
	}
	formBytes := func(name, version, filename string, content []byte, fields ...string) ([]byte, string) {
		r, ct := form(t, name, version, filename, content, fields...)
		var b bytes.Buffer
		b.ReadFrom(r)
		return b.Bytes(), ct
	}
	random := make([]byte, 8<<10)
	rand.Read(random)
	big := string(random)
	bigMeta := metadataFor("good", "1.0") + strings.Repeat("y", 5<<20)

	tests := []struct {
		name   string
		repo   string
		send   func() (*http.Response, string)
		status int
		msg    string
	}{
		{"not multipart", "py-dev", func() (*http.Response, string) {
			return post("py-dev", []byte(`{"name":"x"}`), "application/json")
		}, 400, "expected a multipart/form-data upload"},
		{"malformed multipart", "py-dev", func() (*http.Response, string) {
			b, ct := formBytes("good", "1.0", whlName, whl)
			return post("py-dev", b[:len(b)-60], ct) // cut before the closing boundary
		}, 400, "malformed upload form"},
		{"garbage after the boundary header", "py-dev", func() (*http.Response, string) {
			return post("py-dev", []byte("--b\r\nno headers here"), "multipart/form-data; boundary=b")
		}, 400, "malformed upload form"},
		{"no file", "py-dev", func() (*http.Response, string) {
			var b bytes.Buffer
			b.WriteString("--b\r\nContent-Disposition: form-data; name=\":action\"\r\n\r\nfile_upload\r\n--b--\r\n")
			return post("py-dev", b.Bytes(), "multipart/form-data; boundary=b")
		}, 400, "no file"},
		{"field after the file", "py-dev", func() (*http.Response, string) {
			b, ct := formBytes("good", "1.0", whlName, whl)
			// Re-open the closing boundary with another field.
			bnd := ct[strings.Index(ct, "boundary=")+9:]
			b = bytes.TrimSuffix(b, []byte("--"+bnd+"--\r\n"))
			b = append(b, []byte("--"+bnd+"\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nevil\r\n--"+bnd+"--\r\n")...)
			return post("py-dev", b, ct)
		}, 400, "comes after the file"},
		{"unsupported action", "py-dev", func() (*http.Response, string) {
			return upload(t, e, "py-dev", "good", "1.0", whlName, whl, ":action", "doc_upload")
		}, 400, "not supported"},
		{"invalid project name", "py-dev", func() (*http.Response, string) {
			return upload(t, e, "py-dev", "../etc", "1.0", whlName, whl)
		}, 400, "not a valid project name"},
		{"invalid version", "py-dev", func() (*http.Response, string) {
			n, b := wheel(t, "good", "one", metadataFor("good", "one"))
			return upload(t, e, "py-dev", "good", "one", n, b)
		}, 400, "invalid version"},
		{"file of another project", "py-dev", func() (*http.Response, string) {
			return upload(t, e, "py-dev", "other", "1.0", whlName, whl)
		}, 400, "does not belong to project other"},
		{"version contradicting the file name", "py-dev", func() (*http.Response, string) {
			return upload(t, e, "py-dev", "good", "2.0", whlName, whl)
		}, 400, "says version 1.0, which contradicts the version field 2.0"},
		{"metadata name contradicting the file name", "py-dev", func() (*http.Response, string) {
			_, b := wheel(t, "good", "1.0", metadataFor("evil", "1.0"))
			return upload(t, e, "py-dev", "good", "1.0", whlName, b)
		}, 400, "says Name: evil, which contradicts the file name"},
		{"metadata version contradicting the file name", "py-dev", func() (*http.Response, string) {
			_, b := sdist(t, "good", "1.0", metadataFor("good", "1.1"))
			return upload(t, e, "py-dev", "good", "1.0", sdName, b)
		}, 400, "says Version: 1.1, which contradicts the file name"},
		{"sha256 mismatch", "py-dev", func() (*http.Response, string) {
			return upload(t, e, "py-dev", "good", "1.0", whlName, whl, "sha256_digest", strings.Repeat("ab", 32))
		}, 400, "sha256"},
		{"md5 mismatch", "py-dev", func() (*http.Response, string) {
			return upload(t, e, "py-dev", "good", "1.0", whlName, whl, "md5_digest", strings.Repeat("ab", 16))
		}, 400, "md5"},
		{"no digest", "py-dev", func() (*http.Response, string) {
			return upload(t, e, "py-dev", "good", "1.0", whlName, whl, "sha256_digest", "", "md5_digest", "")
		}, 400, "must include sha256_digest or md5_digest"},
		{"not a zip", "py-dev", func() (*http.Response, string) {
			return upload(t, e, "py-dev", "good", "1.0", whlName, []byte("this is not a zip archive at all........."))
		}, 400, "not a valid zip"},
		{"not a tarball", "py-dev", func() (*http.Response, string) {
			return upload(t, e, "py-dev", "good", "1.0", sdName, []byte("plain text"))
		}, 400, "not a valid .tar.gz"},
		{"wheel without METADATA", "py-dev", func() (*http.Response, string) {
			return upload(t, e, "py-dev", "good", "1.0", whlName, zipOf(t, member{name: "good/__init__.py", body: ""}))
		}, 400, "no {name}-{version}.dist-info/METADATA"},
		{"zip member with a traversal path", "py-dev", func() (*http.Response, string) {
			_, b := wheel(t, "good", "1.0", meta, member{name: "../../etc/evil.pth", body: "import os"})
			return upload(t, e, "py-dev", "good", "1.0", whlName, b)
		}, 400, "traversal path"},
		{"zip member with an absolute path", "py-dev", func() (*http.Response, string) {
			_, b := wheel(t, "good", "1.0", meta, member{name: "/etc/evil", body: "x"})
			return upload(t, e, "py-dev", "good", "1.0", whlName, b)
		}, 400, "absolute"},
		{"tar member with a traversal path", "py-dev", func() (*http.Response, string) {
			_, b := sdist(t, "good", "1.0", meta, member{name: "good-1.0/../../evil", body: "x"})
			return upload(t, e, "py-dev", "good", "1.0", sdName, b)
		}, 400, "traversal path"},
		{"tar symlink out of the archive", "py-dev", func() (*http.Response, string) {
			_, b := sdist(t, "good", "1.0", meta, member{name: "good-1.0/passwd", link: "../../../etc/passwd"})
			return upload(t, e, "py-dev", "good", "1.0", sdName, b)
		}, 400, "outside the archive"},
		{"tar device file", "py-dev", func() (*http.Response, string) {
			_, b := sdist(t, "good", "1.0", meta, member{name: "good-1.0/dev", typ: tar.TypeChar})
			return upload(t, e, "py-dev", "good", "1.0", sdName, b)
		}, 400, "character device"},
		{"sdist with two top-level directories", "py-dev", func() (*http.Response, string) {
			_, b := sdist(t, "good", "1.0", meta, member{name: "elsewhere/x.py", body: "x"})
			return upload(t, e, "py-dev", "good", "1.0", sdName, b)
		}, 400, "one top-level directory"},
		{"oversized metadata (zip bomb of a METADATA)", "py-dev", func() (*http.Response, string) {
			_, b := wheel(t, "good", "1.0", bigMeta)
			return upload(t, e, "py-dev", "good", "1.0", whlName, b)
		}, 400, "larger than"},
		{"gzip bomb", "py-dev", func() (*http.Response, string) {
			return upload(t, e, "py-dev", "good", "1.0", sdName, gzipBomb(t))
		}, 400, "expands to more than"},
		{"oversized upload", "py-small", func() (*http.Response, string) {
			_, b := wheel(t, "good", "1.0", meta, member{name: "good/big.bin", body: big})
			return upload(t, e, "py-small", "good", "1.0", whlName, b)
		}, 413, "limit of py-small"},
		{"quota full", "py-quota", func() (*http.Response, string) {
			_, b := wheel(t, "good", "1.0", meta, member{name: "good/big.bin", body: big})
			return upload(t, e, "py-quota", "good", "1.0", whlName, b)
		}, 400, "quota of py-quota is full"},
		{"oversized fields", "py-dev", func() (*http.Response, string) {
			return upload(t, e, "py-dev", "good", "1.0", whlName, whl, "description", strings.Repeat("d", 9<<20))
		}, 413, "fields exceed"},
		{"not a wheel or sdist", "py-dev", func() (*http.Response, string) {
			return upload(t, e, "py-dev", "good", "1.0", "good-1.0.egg", whl)
		}, 400, "only wheels (.whl) and sdists"},
		{"filetype contradicting the file name", "py-dev", func() (*http.Response, string) {
			return upload(t, e, "py-dev", "good", "1.0", "good-1.0-py3-none-any.whl", whl, "filetype", "sdist")
		}, 400, "filetype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := tt.send()
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.msg) {
				t.Fatalf("%s: %q\n%s", tt.name, resp.Status, body)
			}
			if !strings.Contains(resp.Status, strings.TrimSpace(strings.SplitN(body, "\n", 2)[0])[:20]) {
				t.Errorf("the reason phrase does not carry the message: %q", resp.Status)
			}
			if n := assets(t, e, tt.repo); n != 0 {
				t.Fatalf("%d assets stored after a refused upload", n)
			}
		})
	}
	// Nothing listed anywhere.
	if _, body := get(t, e, "/repository/py-dev/simple/", typeJSON); !strings.Contains(body, `"projects":[]`) {
		t.Fatalf("root after refusals: %s", body)
	}
	// Anonymous uploads are asked for credentials.
	body, ct := form(t, "good", "1.0", whlName, whl)
	resp, msg := e.Anonymous().Do(http.MethodPost, "/repository/py-dev/", body, "Content-Type", ct)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("anonymous upload: %s %s", resp.Status, msg)
	}
}

// gzipBomb is a small .tar.gz whose single member expands beyond the
// sdist limit.
func gzipBomb(t *testing.T) []byte {
	var b bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	const size = 32 << 20
	tw.WriteHeader(&tar.Header{Name: "good-1.0/zeros", Mode: 0o644, Size: size, Typeflag: tar.TypeReg})
	zeros := make([]byte, 1<<20)
	for i := 0; i < size/len(zeros); i++ {
		tw.Write(zeros)
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}
