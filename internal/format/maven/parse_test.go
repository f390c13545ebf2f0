package maven

import (
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	cases := []struct {
		path string
		want string // Kind group artifact version fileVersion classifier ext checksum
	}{
		{"com/acme/lib/1.0.0/lib-1.0.0.jar", "1 com.acme lib 1.0.0 1.0.0  jar "},
		{"com/acme/lib/1.0.0/lib-1.0.0-sources.jar.sha1", "1 com.acme lib 1.0.0 1.0.0 sources jar sha1"},
		{"com/acme/lib/1.0.0/lib-1.0.0.tar.gz", "1 com.acme lib 1.0.0 1.0.0  tar.gz "},
		{"com/acme/lib/1.0.0/lib-1.0.0.jar.asc", "1 com.acme lib 1.0.0 1.0.0  jar.asc "},
		{"com/acme/lib/1.1-SNAPSHOT/lib-1.1-20261127.141324-3-tests.jar", "1 com.acme lib 1.1-SNAPSHOT 1.1-20261127.141324-3 tests jar "},
		{"com/acme/lib/1.1-SNAPSHOT/lib-1.1-SNAPSHOT.pom", "1 com.acme lib 1.1-SNAPSHOT 1.1-SNAPSHOT  pom "},
		{"com/acme/lib/maven-metadata.xml", "2 com.acme lib    xml "},
		{"com/acme/lib/maven-metadata.xml.sha256", "2 com.acme lib    xml sha256"},
		{"com/acme/lib/1.1-SNAPSHOT/maven-metadata.xml", "3 com.acme lib 1.1-SNAPSHOT 1.1-SNAPSHOT  xml "},
		{"org/x/maven-metadata.xml", "2 org x    xml "},
	}
	for _, c := range cases {
		got, err := ParsePath(strings.Split(c.path, "/"))
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		ext := got.Extension
		if got.Kind != File {
			ext = "xml"
		}
		s := strings.Join([]string{string(rune('0' + got.Kind)), got.Group, got.Artifact, got.Version, got.FileVersion, got.Classifier, ext, string(got.Checksum)}, " ")
		if s != c.want {
			t.Errorf("%s: %q, want %q", c.path, s, c.want)
		}
	}
	if c, _ := ParsePath(strings.Split("com/acme/lib/1.1-SNAPSHOT/lib-1.1-20261127.141324-3.jar", "/")); c.BuildNumber != 3 || c.Timestamp != "20261127.141324" {
		t.Errorf("snapshot build: %+v", c)
	}
}

func TestCompareVersions(t *testing.T) {
	ordered := []string{"1.0-alpha-1", "1.0-beta", "1.0-rc1", "1.0-SNAPSHOT", "1.0", "1.0-sp1", "1.0.1", "1.2", "1.10", "2.0"}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := CompareVersions(ordered[i], ordered[j]); got != want {
				t.Errorf("compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	if CompareVersions("1.0", "1.0.0") != 0 || CompareVersions("1", "1.0-final") != 0 {
		t.Error("trailing zeros and release qualifiers must not count")
	}
}
