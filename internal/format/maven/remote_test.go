package maven_test

import (
	"crypto/sha1"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

// The upstream is a second Coffer on loopback: a Maven repository, and a raw
// one where a wrong .sha1 can sit beside a file.
const upstreamConfig = `repositories:
  - {key: up, format: maven, kind: local, tier: dev, anonymous_read: true}
  - {key: up-raw, format: raw, kind: local, tier: dev, anonymous_read: true}
`

func remoteConfig(up string) string {
	return `repositories:
  - {key: mvn-local, format: maven, kind: local, tier: dev}
  - {key: mvn-remote, format: maven, kind: remote, upstream: {url: "` + up + `/repository/up/"}, metadata_ttl: 1s, negative_ttl: 1h}
  - {key: mvn-badsums, format: maven, kind: remote, upstream: {url: "` + up + `/repository/up-raw/"}}
  - {key: mvn, format: maven, kind: virtual, members: [mvn-local, mvn-remote], default_deploy: mvn-local}
`
}

func TestRemoteProxy(t *testing.T) {
	up := apptest.New(t, upstreamConfig)
	e := apptest.New(t, remoteConfig(up.URL))
	deploy(t, up, "up", "com.other", "thing", "1.0")
	jarPath := "com/other/thing/1.0/thing-1.0.jar"
	if got := mustGet(t, e, "/repository/mvn-remote/"+jarPath); got != "jar of com.other:thing:1.0" {
		t.Fatalf("proxied jar %q", got)
	}
	if got := mustGet(t, e, "/repository/mvn-remote/"+jarPath+".sha1"); got != sum(sha1.New(), "jar of com.other:thing:1.0") {
		t.Fatalf("proxied sha1 %q", got)
	}
	body := mustGet(t, e, "/repository/mvn-remote/com/other/thing/maven-metadata.xml")
	if m := parseMeta(t, body); strings.Join(m.Versioning.Versions, ",") != "1.0" {
		t.Fatalf("proxied metadata:\n%s", body)
	}

	// Negative cache: a miss is remembered for negative_ttl even once the
	// upstream has the file.
	missing := "/repository/mvn-remote/com/other/thing/2.0/thing-2.0.jar"
	if resp, _ := e.Do(http.MethodGet, missing, nil); resp.StatusCode != 404 {
		t.Fatalf("missing: %d", resp.StatusCode)
	}
	deploy(t, up, "up", "com.other", "thing", "2.0")
	if resp, _ := e.Do(http.MethodGet, missing, nil); resp.StatusCode != 404 {
		t.Fatalf("negative cache not used: %d", resp.StatusCode)
	}
	// Metadata is revalidated after its TTL.
	deadline := time.Now().Add(10 * time.Second)
	for {
		body = mustGet(t, e, "/repository/mvn-remote/com/other/thing/maven-metadata.xml")
		if strings.Contains(body, "<version>2.0</version>") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metadata never revalidated:\n%s", body)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// Upstream checksum that does not match: nothing is cached.
	up.Put("up-raw", "com/bad/x/1.0/x-1.0.jar", "real bytes")
	up.Put("up-raw", "com/bad/x/1.0/x-1.0.jar.sha1", sum(sha1.New(), "other bytes"))
	resp, b := e.Do(http.MethodGet, "/repository/mvn-badsums/com/bad/x/1.0/x-1.0.jar", nil)
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(b, "real bytes") {
		t.Fatalf("content with a wrong upstream sha1 served: %d %s", resp.StatusCode, b)
	}
	if !strings.Contains(b, "sha1 checksum mismatch") {
		t.Fatalf("refusal does not say why: %d %s", resp.StatusCode, b)
	}
	resp, b = e.Do(http.MethodGet, "/api/v1/repositories/mvn-badsums/artifacts/com/bad/x/1.0/x-1.0.jar", nil)
	if resp.StatusCode != 404 {
		t.Fatalf("content with a wrong upstream sha1 was cached: %d %s", resp.StatusCode, b)
	}

	// Upstream down: what is cached still resolves.
	up.Srv.Close()
	if got := mustGet(t, e, "/repository/mvn-remote/"+jarPath); got != "jar of com.other:thing:1.0" {
		t.Fatalf("cached jar with the upstream down: %q", got)
	}
	time.Sleep(1100 * time.Millisecond) // past the metadata TTL
	resp, body = e.Do(http.MethodGet, "/repository/mvn-remote/com/other/thing/maven-metadata.xml", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "<version>2.0</version>") || !strings.Contains(resp.Header.Get("Warning"), "Stale") {
		t.Fatalf("stale metadata with the upstream down: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
}

func TestVirtualMergeAndConfusion(t *testing.T) {
	up := apptest.New(t, upstreamConfig)
	e := apptest.New(t, remoteConfig(up.URL))
	// com.acme:lib is hosted locally; the upstream also has a (higher) version.
	deploy(t, e, "mvn-local", "com.acme", "lib", "1.0")
	deploy(t, up, "up", "com.acme", "lib", "9.9")
	// com.other:thing only upstream, in two versions; one more locally is impossible by rule.
	deploy(t, up, "up", "com.other", "thing", "1.0")
	deploy(t, up, "up", "com.other", "thing", "1.1")

	body := mustGet(t, e, "/repository/mvn/com/acme/lib/maven-metadata.xml")
	if m := parseMeta(t, body); strings.Join(m.Versioning.Versions, ",") != "1.0" || m.Versioning.Release != "1.0" {
		t.Fatalf("a local artifact's metadata took remote versions:\n%s", body)
	}
	if resp, _ := e.Do(http.MethodGet, "/repository/mvn/com/acme/lib/9.9/lib-9.9.jar", nil); resp.StatusCode != 404 {
		t.Fatalf("a locally hosted groupId:artifactId was taken from the remote: %d", resp.StatusCode)
	}
	body = mustGet(t, e, "/repository/mvn/com/other/thing/maven-metadata.xml")
	if m := parseMeta(t, body); strings.Join(m.Versioning.Versions, ",") != "1.0,1.1" || m.Versioning.Latest != "1.1" {
		t.Fatalf("remote-only metadata through the virtual repository:\n%s", body)
	}
	if got := mustGet(t, e, "/repository/mvn/com/other/thing/1.1/thing-1.1.jar"); got != "jar of com.other:thing:1.1" {
		t.Fatalf("virtual jar %q", got)
	}
	// Deploys through the virtual repository go to default_deploy.
	deploy(t, e, "mvn", "com.acme", "lib", "1.1")
	if got := mustGet(t, e, "/repository/mvn-local/com/acme/lib/1.1/lib-1.1.jar"); got != "jar of com.acme:lib:1.1" {
		t.Fatalf("deploy through the virtual repository: %q", got)
	}
	body = mustGet(t, e, "/repository/mvn/com/acme/lib/maven-metadata.xml")
	if m := parseMeta(t, body); strings.Join(m.Versioning.Versions, ",") != "1.0,1.1" {
		t.Fatalf("virtual metadata after a deploy through it:\n%s", body)
	}
}
