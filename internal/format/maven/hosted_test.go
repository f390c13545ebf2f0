package maven_test

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/format/maven"
)

const hostedConfig = `repositories:
  - {key: mvn-dev, format: maven, kind: local, tier: dev}
  - {key: mvn-staging, format: maven, kind: local, tier: staging}
  - {key: mvn-release, format: maven, kind: local, tier: release}
  - {key: mvn-snapshots, format: maven, kind: local, tier: dev, maven: {version_policy: snapshot}}
  - {key: mvn-loose, format: maven, kind: local, tier: dev, maven: {layout_policy: permissive}}
  - {key: mvn, format: maven, kind: virtual, members: [mvn-release, mvn-dev], default_deploy: mvn-dev}
`

func pom(g, a, v string) string {
	return fmt.Sprintf(`<?xml version="1.0"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></project>
`, g, a, v)
}

func sum(h hash.Hash, s string) string { h.Write([]byte(s)); return hex.EncodeToString(h.Sum(nil)) }

func mustPut(t *testing.T, e *apptest.Env, repoKey, path, content string) {
	t.Helper()
	resp, body := e.Do(http.MethodPut, "/repository/"+repoKey+"/"+path, strings.NewReader(content))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s/%s: %d %s", repoKey, path, resp.StatusCode, body)
	}
}

func mustGet(t *testing.T, e *apptest.Env, path string) string {
	t.Helper()
	resp, body := e.Do(http.MethodGet, path, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

func parseMeta(t *testing.T, body string) *maven.Metadata {
	t.Helper()
	m, err := maven.ParseMetadata(strings.NewReader(body))
	if err != nil {
		t.Fatalf("served metadata does not parse: %v\n%s", err, body)
	}
	return m
}

// deploy uploads what mvn deploy uploads for one release version.
func deploy(t *testing.T, e *apptest.Env, repoKey, g, a, v string) {
	t.Helper()
	dir := strings.ReplaceAll(g, ".", "/") + "/" + a + "/" + v + "/"
	jar := "jar of " + g + ":" + a + ":" + v
	p := pom(g, a, v)
	for name, content := range map[string]string{a + "-" + v + ".jar": jar, a + "-" + v + ".pom": p} {
		mustPut(t, e, repoKey, dir+name, content)
		mustPut(t, e, repoKey, dir+name+".sha1", sum(sha1.New(), content))
		mustPut(t, e, repoKey, dir+name+".md5", sum(md5.New(), content))
	}
}

func TestDeployAndResolve(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	deploy(t, e, "mvn-dev", "com.acme", "lib", "1.0.0")
	dir := "/repository/mvn-dev/com/acme/lib/1.0.0/"
	jar := "jar of com.acme:lib:1.0.0"
	if got := mustGet(t, e, dir+"lib-1.0.0.jar"); got != jar {
		t.Fatalf("jar = %q", got)
	}
	for ext, h := range map[string]hash.Hash{"sha1": sha1.New(), "md5": md5.New(), "sha256": sha256.New(), "sha512": sha512.New()} {
		if got := mustGet(t, e, dir+"lib-1.0.0.jar."+ext); got != sum(h, jar) {
			t.Errorf(".%s = %q", ext, got)
		}
	}
	resp, _ := e.Do(http.MethodHead, dir+"lib-1.0.0.jar", nil)
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(jar)) || resp.Header.Get("X-Checksum-Sha1") != sum(sha1.New(), jar) {
		t.Fatalf("HEAD: %d %d %v", resp.StatusCode, resp.ContentLength, resp.Header)
	}
	// A classifier and a compound extension.
	mustPut(t, e, "mvn-dev", "com/acme/lib/1.0.0/lib-1.0.0-sources.jar", "sources")
	mustPut(t, e, "mvn-dev", "com/acme/lib/1.0.0/lib-1.0.0-dist.tar.gz", "tgz")
	if got := mustGet(t, e, dir+"lib-1.0.0-dist.tar.gz"); got != "tgz" {
		t.Fatalf("tar.gz = %q", got)
	}

	// Client metadata is accepted, and the served one is computed.
	mustPut(t, e, "mvn-dev", "com/acme/lib/maven-metadata.xml", `<metadata><groupId>com.acme</groupId><artifactId>lib</artifactId><versioning><versions><version>9.9</version></versions></versioning></metadata>`)
	deploy(t, e, "mvn-dev", "com.acme", "lib", "1.10.0")
	deploy(t, e, "mvn-dev", "com.acme", "lib", "1.2.0")
	deploy(t, e, "mvn-dev", "com.acme", "lib", "2.0.0-SNAPSHOT")
	body := mustGet(t, e, "/repository/mvn-dev/com/acme/lib/maven-metadata.xml")
	m := parseMeta(t, body)
	if got := strings.Join(m.Versioning.Versions, ","); got != "1.0.0,1.2.0,1.10.0,2.0.0-SNAPSHOT" {
		t.Fatalf("versions %s\n%s", got, body)
	}
	if m.GroupID != "com.acme" || m.ArtifactID != "lib" || m.Versioning.Latest != "2.0.0-SNAPSHOT" || m.Versioning.Release != "1.10.0" || len(m.Versioning.LastUpdated) != 14 {
		t.Fatalf("metadata:\n%s", body)
	}
	if got := mustGet(t, e, "/repository/mvn-dev/com/acme/lib/maven-metadata.xml.sha1"); got != sum(sha1.New(), body) {
		t.Fatalf("metadata sha1 %s does not match the served document", got)
	}
	// Browsing.
	resp, page := e.Do(http.MethodGet, "/repository/mvn-dev/com/acme/lib/", nil)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(page, `href="/repository/mvn-dev/com/acme/lib/1.10.0/"`) {
		t.Fatalf("browse: %d\n%s", resp.StatusCode, page)
	}
	// Through the virtual repository.
	if got := mustGet(t, e, "/repository/mvn/com/acme/lib/1.0.0/lib-1.0.0.jar"); got != jar {
		t.Fatalf("virtual jar = %q", got)
	}
}

func TestSnapshotMetadata(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	dir := "com/acme/lib/1.1.0-SNAPSHOT/"
	for i, ts := range []string{"20261127.141324", "20261127.151000"} {
		v := fmt.Sprintf("1.1.0-%s-%d", ts, i+1)
		mustPut(t, e, "mvn-snapshots", dir+"lib-"+v+".jar", "jar "+v)
		mustPut(t, e, "mvn-snapshots", dir+"lib-"+v+".pom", pom("com.acme", "lib", "1.1.0-SNAPSHOT"))
		if i == 0 {
			mustPut(t, e, "mvn-snapshots", dir+"lib-"+v+"-sources.jar", "src "+v)
		}
		mustPut(t, e, "mvn-snapshots", dir+"maven-metadata.xml", `<metadata modelVersion="1.1.0"><groupId>com.acme</groupId><artifactId>lib</artifactId><version>1.1.0-SNAPSHOT</version></metadata>`)
	}
	body := mustGet(t, e, "/repository/mvn-snapshots/"+dir+"maven-metadata.xml")
	m := parseMeta(t, body)
	s := m.Versioning.Snapshot
	if m.Version != "1.1.0-SNAPSHOT" || s == nil || s.Timestamp != "20261127.151000" || s.BuildNumber != 2 {
		t.Fatalf("snapshot metadata:\n%s", body)
	}
	want := map[string]string{"jar": "1.1.0-20261127.151000-2", "pom": "1.1.0-20261127.151000-2", "sources:jar": "1.1.0-20261127.141324-1"}
	got := map[string]string{}
	for _, sv := range m.Versioning.SnapshotVersions {
		k := sv.Extension
		if sv.Classifier != "" {
			k = sv.Classifier + ":" + k
		}
		got[k] = sv.Value
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("snapshotVersions %v, want %v\n%s", got, want, body)
	}
	// Version policy: the snapshot repository refuses releases, the release one snapshots.
	resp, body := e.Do(http.MethodPut, "/repository/mvn-snapshots/com/acme/lib/1.0/lib-1.0.jar", strings.NewReader("x"))
	if resp.StatusCode != 400 || !strings.Contains(body, "snapshot repository") {
		t.Fatalf("release into snapshot repo: %d %s", resp.StatusCode, body)
	}
	resp, body = e.Do(http.MethodPut, "/repository/mvn-release/"+dir+"lib-1.1.0-20261127.141324-1.jar", strings.NewReader("x"))
	if resp.StatusCode != 400 || !strings.Contains(body, "release repository") {
		t.Fatalf("snapshot into release repo: %d %s", resp.StatusCode, body)
	}
}

func TestRedeployAndDeletePolicies(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	for _, key := range []string{"mvn-staging", "mvn-release"} {
		deploy(t, e, key, "com.acme", "lib", "1.0.0")
		// Identical bytes again (a CI re-run) are fine.
		deploy(t, e, key, "com.acme", "lib", "1.0.0")
		r := e.Raw(http.MethodPut, "/repository/"+key+"/com/acme/lib/1.0.0/lib-1.0.0.jar", "other bytes")
		want := "Redeploy of com.acme:lib:1.0.0 is not allowed in " + key
		if r.Status != 409 || !strings.Contains(r.Body, want) {
			t.Fatalf("%s redeploy: %d %s", key, r.Status, r.Body)
		}
		if got := mustGet(t, e, "/repository/"+key+"/com/acme/lib/1.0.0/lib-1.0.0.jar"); got != "jar of com.acme:lib:1.0.0" {
			t.Fatalf("%s: content changed to %q", key, got)
		}
	}
	// The reason phrase carries the message (mvn prints it).
	c := e.Dial()
	fmt.Fprintf(c, "PUT /repository/mvn-release/com/acme/lib/1.0.0/lib-1.0.0.jar HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Length: 3\r\n\r\nabc", apptest.BasicAuth("admin", apptest.AdminPassword))
	buf := make([]byte, 200)
	n, _ := c.Read(buf)
	if line := strings.SplitN(string(buf[:n]), "\r\n", 2)[0]; line != "HTTP/1.1 409 Redeploy of com.acme:lib:1.0.0 is not allowed in mvn-release" {
		t.Fatalf("status line %q", line)
	}
	// SNAPSHOT redeploy on dev.
	mustPut(t, e, "mvn-dev", "com/acme/lib/1.0-SNAPSHOT/lib-1.0-SNAPSHOT.jar", "one")
	mustPut(t, e, "mvn-dev", "com/acme/lib/1.0-SNAPSHOT/lib-1.0-SNAPSHOT.jar", "two")
	// Delete: refused on release, allowed on staging.
	r := e.Raw(http.MethodDelete, "/repository/mvn-release/com/acme/lib/1.0.0/lib-1.0.0.jar", "")
	if r.Status != 409 || !strings.Contains(r.Body, "deprecate") {
		t.Fatalf("delete on release: %d %s", r.Status, r.Body)
	}
	resp, _ := e.Do(http.MethodDelete, "/repository/mvn-staging/com/acme/lib/1.0.0/", nil)
	if resp.StatusCode != 204 {
		t.Fatalf("delete on staging: %d", resp.StatusCode)
	}
	resp, _ = e.Do(http.MethodGet, "/repository/mvn-staging/com/acme/lib/maven-metadata.xml", nil)
	if resp.StatusCode != 404 {
		t.Fatalf("metadata after deleting the only version: %d", resp.StatusCode)
	}
}

func TestConcurrentDeploysBothListed(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			deploy(t, e, "mvn-dev", "com.acme", "lib", fmt.Sprintf("1.%d.0", i))
			mustGet(t, e, "/repository/mvn-dev/com/acme/lib/maven-metadata.xml")
		}(i)
	}
	wg.Wait()
	m := parseMeta(t, mustGet(t, e, "/repository/mvn-dev/com/acme/lib/maven-metadata.xml"))
	if len(m.Versioning.Versions) != 8 || m.Versioning.Release != "1.7.0" {
		t.Fatalf("versions after concurrent deploys: %v", m.Versioning.Versions)
	}
}

func TestPermissiveLayout(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	mustPut(t, e, "mvn-loose", "some/where/file.txt", "hello")
	if got := mustGet(t, e, "/repository/mvn-loose/some/where/file.txt"); got != "hello" {
		t.Fatalf("got %q", got)
	}
	resp, body := e.Do(http.MethodPut, "/repository/mvn-dev/some/where/file.txt", strings.NewReader("hello"))
	if resp.StatusCode != 400 || !strings.Contains(body, "not a valid Maven 2 layout path") {
		t.Fatalf("strict: %d %s", resp.StatusCode, body)
	}
}
