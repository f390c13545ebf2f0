package maven_test

import (
	"crypto/sha1"
	"net/http"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

// assetCount is how many files a repository holds (through the API).
func assetCount(t *testing.T, e *apptest.Env, repoKey string) int {
	t.Helper()
	resp, body := e.Do(http.MethodGet, "/api/v1/repositories/"+repoKey+"/artifacts?limit=1000", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("listing %s: %d %s", repoKey, resp.StatusCode, body)
	}
	return strings.Count(body, `"path"`)
}

func TestBadInput(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	deploy(t, e, "mvn-dev", "com.acme", "lib", "1.0")
	before := assetCount(t, e, "mvn-dev")
	cases := []struct {
		name, path, body string
		header           []string
		status           int
		msg              string
	}{
		{"too short", "com/acme/lib-1.0.jar", "x", nil, 400, "not a valid Maven 2 layout path"},
		{"file of another artifact", "com/acme/lib/1.0/other-1.0.jar", "x", nil, 400, "must start with lib-1.0"},
		{"file of another version", "com/acme/lib/1.0/lib-1.1.jar", "x", nil, 400, "must start with lib-1.0"},
		{"no extension", "com/acme/lib/1.0/lib-1.0", "x", nil, 400, "extension"},
		{"empty classifier", "com/acme/lib/1.0/lib-1.0-.jar", "x", nil, 400, "classifier"},
		{"space", "com/ac%20me/lib/1.0/lib-1.0.jar", "x", nil, 400, "character"},
		{"hidden segment", "com/.acme/lib/1.0/lib-1.0.jar", "x", nil, 400, "starts with a dot"},
		{"bad snapshot timestamp", "com/acme/lib/1.0-SNAPSHOT/lib-1.0-2026.1-1.jar", "x", nil, 400, "yyyyMMdd"},
		{"declared sha1 mismatch", "com/acme/lib/2.0/lib-2.0.jar", "bytes", []string{"X-Checksum-Sha1", sum(sha1.New(), "other")}, 400, "sha1 checksum mismatch"},
		{"sidecar mismatch", "com/acme/lib/1.0/lib-1.0.jar.sha1", sum(sha1.New(), "other"), nil, 400, "sha1 checksum mismatch"},
		{"sidecar not hex", "com/acme/lib/1.0/lib-1.0.jar.md5", "not-a-checksum", nil, 400, "not a md5 checksum"},
		{"sidecar empty", "com/acme/lib/1.0/lib-1.0.jar.sha256", "", nil, 400, "empty"},
		{"sidecar without file", "com/acme/lib/1.0/lib-1.0-javadoc.jar.sha1", sum(sha1.New(), "x"), nil, 404, "upload the file before"},
		{"metadata not XML", "com/acme/lib/maven-metadata.xml", "<metadata><versioning>", nil, 400, "not well-formed"},
		{"metadata wrong root", "com/acme/lib/maven-metadata.xml", "<project/>", nil, 400, "not well-formed"},
		{"metadata trailing junk", "com/acme/lib/maven-metadata.xml", "<metadata/><metadata/>", nil, 400, "after </metadata>"},
		{"metadata of another artifact", "com/acme/lib/maven-metadata.xml", "<metadata><groupId>org.evil</groupId><artifactId>lib</artifactId></metadata>", nil, 400, "org.evil:lib"},
		{"metadata of another version", "com/acme/lib/1.0-SNAPSHOT/maven-metadata.xml", "<metadata><version>2.0-SNAPSHOT</version></metadata>", nil, 400, "version 2.0-SNAPSHOT"},
		{"POM not XML", "com/acme/lib/3.0/lib-3.0.pom", "this is not a POM", nil, 400, "not a well-formed POM"},
		{"POM wrong root", "com/acme/lib/3.0/lib-3.0.pom", "<settings/>", nil, 400, "not a POM"},
		{"POM of another artifact", "com/acme/lib/3.0/lib-3.0.pom", pom("com.acme", "other", "3.0"), nil, 400, "artifactId other"},
		{"POM of another group", "com/acme/lib/3.0/lib-3.0.pom", pom("org.evil", "lib", "3.0"), nil, 400, "groupId org.evil"},
		{"POM of another version", "com/acme/lib/3.0/lib-3.0.pom", pom("com.acme", "lib", "3.1"), nil, 400, "version 3.1"},
		{"POM without artifactId", "com/acme/lib/3.0/lib-3.0.pom", "<project><groupId>com.acme</groupId></project>", nil, 400, "no artifactId"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.Raw(http.MethodPut, "/repository/mvn-dev/"+c.path, c.body, c.header...)
			if r.Status != c.status || !strings.Contains(r.Body, c.msg) {
				t.Fatalf("%d %q, want %d containing %q", r.Status, r.Body, c.status, c.msg)
			}
		})
	}
	if n := assetCount(t, e, "mvn-dev"); n != before {
		t.Fatalf("bad input stored something: %d files, %d before", n, before)
	}
	// The stored file's checksums are still the computed ones.
	if got := mustGet(t, e, "/repository/mvn-dev/com/acme/lib/1.0/lib-1.0.jar.sha1"); got != sum(sha1.New(), "jar of com.acme:lib:1.0") {
		t.Fatalf("sha1 after a refused sidecar: %q", got)
	}
	// Version policy on the release tier (default: release) for metadata too.
	r := e.Raw(http.MethodPut, "/repository/mvn-release/com/acme/lib/1.0-SNAPSHOT/maven-metadata.xml", "<metadata/>")
	if r.Status != 400 || !strings.Contains(r.Body, "release repository") {
		t.Fatalf("snapshot metadata on release: %d %s", r.Status, r.Body)
	}
	// Traversal in every spelling, and encoded slashes.
	for _, p := range []string{"com/acme/../lib/1.0/lib-1.0.jar", "com/acme/%2e%2e/lib/1.0/lib-1.0.jar", "com/acme/lib%2F1.0/lib-1.0.jar",
		"com//acme/lib/1.0/lib-1.0.jar", "com/acme/lib/1.0/..%5clib-1.0.jar"} {
		for _, m := range []string{http.MethodPut, http.MethodGet} {
			r := e.Raw(m, "/repository/mvn-dev/"+p, "x")
			if r.Status != 400 {
				t.Errorf("%s %s: %d %s", m, p, r.Status, r.Body)
			}
		}
	}
	if n := assetCount(t, e, "mvn-dev"); n != before {
		t.Fatalf("traversal stored something: %d files, %d before", n, before)
	}
	// GET of a path that is not a Maven file is a 404 that says why.
	resp, body := e.Do(http.MethodGet, "/repository/mvn-dev/com/acme/lib/1.0/readme.txt", nil)
	if resp.StatusCode != 404 || !strings.Contains(body, "must start with lib-1.0") {
		t.Fatalf("GET non-layout: %d %s", resp.StatusCode, body)
	}
	// A method Maven does not use.
	resp, _ = e.Do(http.MethodPost, "/repository/mvn-dev/com/acme/lib/1.0/lib-1.0.jar", strings.NewReader("x"))
	if resp.StatusCode != 405 || resp.Header.Get("Allow") == "" {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}
