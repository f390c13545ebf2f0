package maven

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParsePath: the layout parser never panics, and what it accepts is a
// consistent coordinate: the path it reports is the input (without a
// checksum suffix), every segment stays a plain name, and a file's name
// starts with artifactId-fileVersion.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"com/acme/lib/1.0.0/lib-1.0.0.jar",
		"com/acme/lib/1.0.0/lib-1.0.0-sources.jar.sha1",
		"com/acme/lib/1.0.0/lib-1.0.0-dist.tar.gz.sha512",
		"com/acme/lib/maven-metadata.xml",
		"com/acme/lib/maven-metadata.xml.md5",
		"com/acme/lib/1.1-SNAPSHOT/maven-metadata.xml",
		"com/acme/lib/1.1-SNAPSHOT/lib-1.1-20261127.141324-12.pom",
		"com/acme/lib/1.1-SNAPSHOT/lib-1.1-SNAPSHOT.jar",
		"com/acme/lib/1.0/other-1.0.jar",
		"a/b/c", "x/maven-metadata.xml/1/2", "com/acme/lib/1.0/lib-1.0", ".sha1/x/y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		segs := strings.Split(p, "/")
		c, err := ParsePath(segs)
		if err != nil {
			return
		}
		want := p
		if c.Checksum != "" {
			want = strings.TrimSuffix(p, "."+string(c.Checksum))
		}
		if c.Path != want {
			t.Fatalf("Path %q for %q", c.Path, p)
		}
		if c.Group == "" || c.Artifact == "" || strings.ContainsAny(c.Group+c.Artifact+c.Version, "/\\") {
			t.Fatalf("bad coordinate %+v for %q", c, p)
		}
		if c.Kind == File {
			name := c.Path[strings.LastIndex(c.Path, "/")+1:]
			if !strings.HasPrefix(name, c.Artifact+"-"+c.FileVersion) || c.Extension == "" {
				t.Fatalf("file %q parsed as %+v", name, c)
			}
			if c.ArtifactDir()+"/"+c.Version+"/"+name != c.Path {
				t.Fatalf("layout of %+v does not give back %q", c, c.Path)
			}
		}
	})
}

// FuzzParseMetadata: the metadata parser never panics, and what it
// accepts re-encodes into a document it accepts again with the same
// versions.
func FuzzParseMetadata(f *testing.F) {
	seeds := []string{
		`<?xml version="1.0" encoding="UTF-8"?><metadata><groupId>g</groupId><artifactId>a</artifactId><versioning><latest>1.1</latest><release>1.1</release><versions><version>1.0</version><version>1.1</version></versions><lastUpdated>20261127141324</lastUpdated></versioning></metadata>`,
		`<metadata modelVersion="1.1.0"><groupId>g</groupId><artifactId>a</artifactId><version>1.0-SNAPSHOT</version><versioning><snapshot><timestamp>20261127.141324</timestamp><buildNumber>2</buildNumber></snapshot><snapshotVersions><snapshotVersion><classifier>sources</classifier><extension>jar</extension><value>1.0-20261127.141324-2</value><updated>20261127141324</updated></snapshotVersion></snapshotVersions></versioning></metadata>`,
		`<metadata><plugins><plugin><name>x</name><prefix>x</prefix><artifactId>x-maven-plugin</artifactId></plugin></plugins></metadata>`,
		`<metadata/>`, `<metadata>`, `<project/>`, `<metadata/>junk`, `<!DOCTYPE metadata [<!ENTITY x "y">]><metadata>&x;</metadata>`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMetadata(bytes.NewReader(b))
		if err != nil {
			return
		}
		m2, err := ParseMetadata(bytes.NewReader(m.Encode()))
		if err != nil {
			t.Fatalf("re-encoded metadata does not parse: %v\n%s", err, m.Encode())
		}
		var v1, v2 []string
		if m.Versioning != nil {
			v1 = m.Versioning.Versions
		}
		if m2.Versioning != nil {
			v2 = m2.Versioning.Versions
		}
		if strings.Join(v1, "\x00") != strings.Join(v2, "\x00") {
			t.Fatalf("versions changed in a round trip: %q -> %q", v1, v2)
		}
	})
}

// FuzzParsePOM: the POM check never panics on any input.
func FuzzParsePOM(f *testing.F) {
	f.Add([]byte(`<project><groupId>com.acme</groupId><artifactId>lib</artifactId><version>1.0</version></project>`))
	f.Add([]byte(`<project><parent><groupId>com.acme</groupId><version>1.0</version></parent><artifactId>lib</artifactId></project>`))
	f.Add([]byte(`<settings/>`))
	c := &Coord{Kind: File, Group: "com.acme", Artifact: "lib", Version: "1.0", Path: "com/acme/lib/1.0/lib-1.0.pom"}
	f.Fuzz(func(t *testing.T, b []byte) {
		ParsePOM(bytes.NewReader(b), c)
	})
}

// FuzzCompareVersions: version order is antisymmetric and reflexive.
func FuzzCompareVersions(f *testing.F) {
	for _, p := range [][2]string{{"1.0", "1.0.0"}, {"1.0-SNAPSHOT", "1.0"}, {"1.10", "1.9"}, {"1.0-alpha-1", "1.0-beta"}, {"1.0-sp", "1.0-foo"}, {"2.0.0.RELEASE", "2"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(a) > 200 || len(b) > 200 {
			return
		}
		if CompareVersions(a, a) != 0 {
			t.Fatalf("%q != itself", a)
		}
		if x, y := CompareVersions(a, b), CompareVersions(b, a); x != -y {
			t.Fatalf("compare(%q,%q)=%d but compare(%q,%q)=%d", a, b, x, b, a, y)
		}
	})
}
