package oci

import (
	"strings"
	"testing"
)

func TestParseRoute(t *testing.T) {
	cases := []struct {
		in   string
		ok   bool
		want route
	}{
		{"docker-dev/team/api/manifests/v1", true, route{"docker-dev", "team/api", "manifests", "v1"}},
		{"docker-dev/api/blobs/sha256:abc", true, route{"docker-dev", "api", "blobs", "sha256:abc"}},
		{"docker-dev/a/b/c/blobs/uploads/", true, route{"docker-dev", "a/b/c", "uploads", ""}},
		{"docker-dev/a/blobs/uploads", true, route{"docker-dev", "a", "uploads", ""}},
		{"docker-dev/a/blobs/uploads/0123", true, route{"docker-dev", "a", "uploads", "0123"}},
		{"docker-dev/a/tags/list", true, route{"docker-dev", "a", "tags", ""}},
		{"docker-dev/a/referrers/sha256:x", true, route{"docker-dev", "a", "referrers", "sha256:x"}},
		// A name may contain segments that look like endpoints.
		{"docker-dev/manifests/blobs/manifests/v1", true, route{"docker-dev", "manifests/blobs", "manifests", "v1"}},
		{"docker-dev/manifests/v1", false, route{}}, // no image name below the key
		{"docker-dev/a/unknown/v1", false, route{}},
		{"", false, route{}},
	}
	for _, c := range cases {
		got, ok := parseRoute(c.in)
		if ok != c.ok || ok && got != c.want {
			t.Errorf("parseRoute(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestParseManifest(t *testing.T) {
	const d = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	img := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
		"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + d + `","size":2},
		"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + d + `","size":3}]}`
	m, err := parseManifest("application/vnd.oci.image.manifest.v1+json", []byte(img))
	if err != nil || len(m.Blobs) != 2 || m.ArtifactType != "application/vnd.oci.image.config.v1+json" {
		t.Fatalf("image manifest: %+v, %v", m, err)
	}
	bad := map[string]struct{ ct, body, want string }{
		"schema1":       {"application/vnd.docker.distribution.manifest.v1+prettyjws", `{"schemaVersion":1,"fsLayers":[]}`, "schema 1"},
		"not json":      {"application/vnd.oci.image.manifest.v1+json", `{`, "not valid JSON"},
		"type mismatch": {"application/vnd.oci.image.index.v1+json", img, "does not match"},
		"no config":     {"application/vnd.oci.image.manifest.v1+json", `{"schemaVersion":2,"layers":[]}`, "no config"},
		"bad digest": {"application/vnd.oci.image.manifest.v1+json", `{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:zz","size":1}}`,
			"not a valid"},
		"unknown type": {"application/x-custom", `{"schemaVersion":2}`, "unsupported manifest media type"},
	}
	for name, c := range bad {
		if _, err := parseManifest(c.ct, []byte(c.body)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}

// FuzzParseRoute: never panics; what it accepts has a key, a name and a
// known kind, and the name round-trips into the path.
func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"r/a/manifests/v1", "r/a/b/blobs/uploads/x", "r/a/tags/list", "r/a/referrers/sha256:1", "//manifests/x", "r/blobs/uploads"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rt, ok := parseRoute(s)
		if !ok {
			return
		}
		if rt.key == "" || rt.name == "" {
			t.Fatalf("accepted %q with an empty key or name: %+v", s, rt)
		}
		switch rt.kind {
		case "manifests", "blobs", "uploads", "tags", "referrers":
		default:
			t.Fatalf("unknown kind %q", rt.kind)
		}
		if !strings.HasPrefix(s, rt.key+"/"+rt.name+"/") {
			t.Fatalf("%q parsed as %+v", s, rt)
		}
	})
}

// FuzzParseManifest: never panics; an accepted manifest has a known media
// type and only valid descriptors.
func FuzzParseManifest(f *testing.F) {
	const d = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	f.Add("application/vnd.oci.image.manifest.v1+json", []byte(`{"schemaVersion":2,"config":{"mediaType":"a","digest":"`+d+`","size":1},"layers":[]}`))
	f.Add("application/vnd.oci.image.index.v1+json", []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"a","digest":"`+d+`","size":1}],"subject":{"mediaType":"b","digest":"`+d+`","size":2}}`))
	f.Add("", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`))
	f.Add("application/vnd.docker.distribution.manifest.v1+json", []byte(`{"schemaVersion":1}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		m, err := parseManifest(ct, body)
		if err != nil {
			return
		}
		switch m.MediaType {
		case mtOCIManifest, mtOCIIndex, mtDockerManifest, mtDockerList:
		default:
			t.Fatalf("accepted media type %q", m.MediaType)
		}
		for _, d := range append(m.Blobs, m.Children...) {
			if _, ok := parseDigest(string(d.Digest)); !ok || d.Size < 0 {
				t.Fatalf("accepted descriptor %+v", d)
			}
		}
	})
}
