package pypi_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

// Test distributions, built in memory.

const (
	kindWheel = "bdist_wheel"
	kindSdist = "sdist"
	typeJSON  = "application/vnd.pypi.simple.v1+json"
)

func metadataFor(name, version string, extra ...string) string {
	s := "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\nSummary: The " + name + " package\n"
	for _, e := range extra {
		s += e + "\n"
	}
	return s + "\nA long description of " + name + ".\n"
}

type member struct {
	name, body string
	link       string // symlink target (tar)
	typ        byte   // tar type (0: regular file)
}

func zipOf(t testing.TB, members ...member) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, m := range members {
		w, err := zw.Create(m.name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, m.body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func tarGzOf(t testing.TB, members ...member) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, m := range members {
		h := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}
		switch {
		case m.typ != 0:
			h.Typeflag, h.Size, h.Linkname = m.typ, 0, m.link
		case m.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, m.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			io.WriteString(tw, m.body)
		}
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

// wheel builds name-version-py3-none-any.whl with the given METADATA.
func wheel(t testing.TB, name, version, metadata string, more ...member) (string, []byte) {
	dist := strings.ReplaceAll(name, "-", "_")
	di := dist + "-" + version + ".dist-info/"
	ms := append([]member{
		{name: dist + "/__init__.py", body: "VERSION = '" + version + "'\n"},
		{name: di + "METADATA", body: metadata},
		{name: di + "WHEEL", body: "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
		{name: di + "RECORD", body: ""},
	}, more...)
	return dist + "-" + version + "-py3-none-any.whl", zipOf(t, ms...)
}

// sdist builds name-version.tar.gz with the given PKG-INFO.
func sdist(t testing.TB, name, version, pkginfo string, more ...member) (string, []byte) {
	top := name + "-" + version + "/"
	ms := append([]member{
		{name: top + "PKG-INFO", body: pkginfo},
		{name: top + "setup.py", body: "from setuptools import setup\nsetup()\n"},
	}, more...)
	return name + "-" + version + ".tar.gz", tarGzOf(t, ms...)
}

func hexSHA256(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func hexMD5(b []byte) string    { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// form builds a legacy upload as twine sends it; fields override the
// defaults ("" deletes one).
func form(t testing.TB, name, version, filename string, content []byte, fields ...string) (io.Reader, string) {
	t.Helper()
	kind := kindSdist
	if strings.HasSuffix(filename, ".whl") {
		kind = kindWheel
	}
	vals := map[string]string{
		":action": "file_upload", "protocol_version": "1", "name": name, "version": version,
		"filetype": kind, "pyversion": "source", "metadata_version": "2.1",
		"sha256_digest": hexSHA256(content), "md5_digest": hexMD5(content),
	}
	order := []string{":action", "protocol_version", "name", "version", "filetype", "pyversion", "metadata_version", "sha256_digest", "md5_digest"}
	for i := 0; i+1 < len(fields); i += 2 {
		if _, ok := vals[fields[i]]; !ok {
			order = append(order, fields[i])
		}
		vals[fields[i]] = fields[i+1]
	}
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, k := range order {
		if v := vals[k]; v != "" {
			mw.WriteField(k, v)
		}
	}
	fw, err := mw.CreateFormFile("content", filename)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(content)
	mw.Close()
	return &b, mw.FormDataContentType()
}

// upload posts a distribution as admin (or as user "-": anonymous).
func upload(t testing.TB, e *apptest.Env, repoKey, name, version, filename string, content []byte, fields ...string) (*http.Response, string) {
	t.Helper()
	body, ct := form(t, name, version, filename, content, fields...)
	return e.Admin().Do(http.MethodPost, "/repository/"+repoKey+"/", body, "Content-Type", ct)
}

func mustUpload(t testing.TB, e *apptest.Env, repoKey, name, version, filename string, content []byte) {
	t.Helper()
	if resp, body := upload(t, e, repoKey, name, version, filename, content); resp.StatusCode != http.StatusOK {
		t.Fatalf("upload of %s to %s: %s %s", filename, repoKey, resp.Status, body)
	}
}

// get fetches a path as admin with an Accept header ("" for none).
func get(t testing.TB, e *apptest.Env, path, accept string) (*http.Response, string) {
	t.Helper()
	var h []string
	if accept != "" {
		h = []string{"Accept", accept}
	}
	return e.Admin().Do(http.MethodGet, path, nil, h...)
}

func assets(t testing.TB, e *apptest.Env, repoKey string) int64 {
	t.Helper()
	r, err := e.App.Repos.Repo(repoKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.App.Store.CountAssets(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
