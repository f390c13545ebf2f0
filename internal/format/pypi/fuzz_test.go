package pypi

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"mime/multipart"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/errs"
)

// Fuzz targets for every parser of client or upstream input. Run one with
// go test -fuzz=FuzzUploadForm ./internal/format/pypi/ (make fuzz runs them all).

func seedForm() ([]byte, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.SetBoundary("XyZ")
	mw.WriteField(":action", "file_upload")
	mw.WriteField("name", "pkg")
	mw.WriteField("version", "1.0")
	fw, _ := mw.CreateFormFile("content", "pkg-1.0.tar.gz")
	fw.Write([]byte("content bytes"))
	mw.WriteField("gpg_signature", "sig")
	mw.Close()
	return b.Bytes(), mw.Boundary()
}

func FuzzUploadForm(f *testing.F) {
	b, bnd := seedForm()
	f.Add(b, bnd)
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"content\"; filename=\"x\"\r\n\r\nabc\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\n\r\n--b--"), "b")
	f.Fuzz(func(t *testing.T, body []byte, bnd string) {
		if bnd == "" || len(bnd) > 70 {
			return
		}
		form, err := readForm(bytes.NewReader(body), bnd)
		if err != nil {
			if errs.KindOf(err) == nil {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if form.Filename == "" {
			t.Fatal("a form without a file name was accepted")
		}
		n, _ := io.Copy(io.Discard, form.File)
		if n > int64(len(body)) {
			t.Fatalf("read %d bytes of a %d-byte body", n, len(body))
		}
		if err := form.finish(); err != nil && errs.KindOf(err) == nil {
			t.Fatalf("unclassified error after the file: %v", err)
		}
		total := 0
		for _, vs := range form.fields {
			for _, v := range vs {
				total += len(v)
			}
		}
		if total > maxFormFieldData {
			t.Fatalf("fields hold %d bytes", total)
		}
	})
}

func seedArchives(t testing.TB) [][]byte {
	meta := "Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n\nbody\n"
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	w, _ := zw.Create("pkg-1.0.dist-info/METADATA")
	io.WriteString(w, meta)
	w, _ = zw.Create("pkg/__init__.py")
	io.WriteString(w, "")
	zw.Close()
	var tg bytes.Buffer
	gz := gzip.NewWriter(&tg)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "pkg-1.0/PKG-INFO", Mode: 0o644, Size: int64(len(meta)), Typeflag: tar.TypeReg})
	io.WriteString(tw, meta)
	tw.WriteHeader(&tar.Header{Name: "pkg-1.0/link", Typeflag: tar.TypeSymlink, Linkname: "PKG-INFO"})
	tw.Close()
	gz.Close()
	return [][]byte{z.Bytes(), tg.Bytes()}
}

func FuzzArchiveMetadata(f *testing.F) {
	for _, s := range seedArchives(f) {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, b []byte, wheel bool) {
		for _, d := range []*dist{
			{Filename: "pkg-1.0-py3-none-any.whl", Kind: kindWheel, Ext: ".whl"},
			{Filename: "pkg-1.0.tar.gz", Kind: kindSdist, Ext: ".tar.gz"},
			{Filename: "pkg-1.0.zip", Kind: kindSdist, Ext: ".zip"},
		} {
			if (d.Kind == kindWheel) != wheel {
				continue
			}
			am, err := readArchiveMetadata(bytes.NewReader(b), int64(len(b)), d)
			if err != nil {
				if errs.KindOf(err) == nil {
					t.Fatalf("%s: unclassified error: %v", d.Ext, err)
				}
				continue
			}
			if len(am.Raw) > maxMetadataSize || am.Meta.Get("name") == "" || checkMember(am.Path) != nil {
				t.Fatalf("%s: accepted %+v", d.Ext, am)
			}
		}
	})
}

func FuzzCoreMetadata(f *testing.F) {
	f.Add([]byte("Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\nClassifier: a\n  continued\n\nbody"))
	f.Add([]byte("Metadata-Version: 1.0\r\nName: x\r\nVersion: 0\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseCoreMetadata(b)
		if err != nil {
			return
		}
		if m.Get("name") == "" || m.Get("version") == "" {
			t.Fatal("required fields missing from accepted metadata")
		}
	})
}

func FuzzUpstreamPage(f *testing.F) {
	f.Add([]byte(`<html><base href="/x/"><a href="pkg-1.0.tar.gz#sha256=00" data-yanked="r">pkg-1.0.tar.gz</a></html>`), "text/html")
	f.Add([]byte(`{"meta":{"api-version":"1.1"},"name":"pkg","files":[{"filename":"pkg-1.0.tar.gz","url":"a","hashes":{"sha256":"00"},"yanked":"r","core-metadata":{"sha256":"00"}}]}`), typeJSON)
	f.Add([]byte(`<a href='x' data-core-metadata=true>`), "text/html")
	f.Fuzz(func(t *testing.T, b []byte, ct string) {
		files, _, err := parseUpstreamProject(b, ct, "http://up.invalid/simple/pkg/")
		if err != nil {
			return
		}
		if len(files) > maxUpstreamFiles {
			t.Fatalf("%d files", len(files))
		}
		for _, f := range files {
			if strings.Contains(f.URL, "#") {
				t.Fatalf("URL keeps its fragment: %s", f.URL)
			}
		}
		parseUpstreamRoot(b, ct)
	})
}

func FuzzVersion(f *testing.F) {
	for _, s := range []string{"1.0", "1!2.0rc1.post2.dev3+local.7", "v1.0-1", "1.0a"} {
		f.Add(s, "1.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if v, ok := parseVersion(a); ok {
			n := v.String()
			w, ok := parseVersion(n)
			if !ok || w.String() != n {
				t.Fatalf("normal form %q of %q does not round-trip", n, a)
			}
			if compareVersions(a, n) != 0 {
				t.Fatalf("%q and its normal form %q compare unequal", a, n)
			}
		}
		if compareVersions(a, b) != -compareVersions(b, a) {
			t.Fatalf("compare(%q, %q) is not antisymmetric", a, b)
		}
	})
}
