package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const ociUpstreamConfig = `
repositories:
  - {key: docker-up, format: oci, kind: local, tier: dev}
`

func ociDownstreamConfig(upstream string) string {
	return fmt.Sprintf(`
repositories:
  - {key: docker-dev-local, format: oci, kind: local, tier: dev}
  - key: docker-remote
    format: oci
    kind: remote
    upstream: {url: %q, username: admin, password_env: UPSTREAM_PW, timeout: 2s}
    metadata_ttl: 2s
  - key: docker
    format: oci
    kind: virtual
    members: [docker-remote, docker-dev-local]
    default_deploy: docker-dev-local
`, upstream)
}

func startOCIPair(t *testing.T, upstreamURL func(up *Server) string) (up, down *Server) {
	up = StartServer(t, ociUpstreamConfig)
	down = &Server{t: t, DataDir: t.TempDir(), Env: []string{"UPSTREAM_PW=" + adminPassword}}
	down.Config = writeConfig(t, ociDownstreamConfig(upstreamURL(up)))
	down.Start()
	t.Cleanup(down.Stop)
	return up, down
}

func TestOCIRemotePullThrough(t *testing.T) {
	up, down := startOCIPair(t, func(up *Server) string { return up.URL + "/docker-up" })
	e := newOCIEnv(t, down)
	e.must("crane", "auth", "login", down.Addr, "-u", "admin", "-p", adminPassword)
	idx := randomIndex(t)
	if err := remote.WriteIndex(mustRef(t, up.Addr+"/docker-up/team/api:v1"), idx, ggcrAuth()); err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	// Pulled through the remote (the upstream requires a token: the proxy
	// follows its Bearer challenge with the configured credentials).
	got, err := remote.Index(mustRef(t, down.Addr+"/docker-remote/team/api:v1"), ggcrAuth())
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != want {
		t.Fatalf("pulled %s through the remote, want %s", d, want)
	}
	layout := t.TempDir()
	e.must("skopeo", "copy", "--all", "--src-tls-verify=false", "docker://"+down.Addr+"/docker-remote/team/api:v1", "oci:"+layout+":v1")
	// And through the virtual repository.
	if out := strings.TrimSpace(e.must("crane", "digest", down.Addr+"/docker/team/api:v1")); out != want.String() {
		t.Fatalf("through the virtual: %s", out)
	}

	// A tag moved upstream is seen after the metadata TTL, not before.
	idx2 := randomIndex(t)
	if err := remote.WriteIndex(mustRef(t, up.Addr+"/docker-up/team/api:v1"), idx2, ggcrAuth()); err != nil {
		t.Fatal(err)
	}
	want2, _ := idx2.Digest()
	if out := strings.TrimSpace(e.must("crane", "digest", down.Addr+"/docker-remote/team/api:v1")); out != want.String() {
		t.Fatalf("moved tag seen before the TTL: %s", out)
	}
	time.Sleep(2100 * time.Millisecond)
	if out := strings.TrimSpace(e.must("crane", "digest", down.Addr+"/docker-remote/team/api:v1")); out != want2.String() {
		t.Fatalf("moved tag not seen after the TTL: %s, want %s", out, want2)
	}

	// Upstream down: everything cached still pulls, by digest and by tag.
	up.Stop()
	time.Sleep(2100 * time.Millisecond)
	e.must("skopeo", "copy", "--all", "--src-tls-verify=false", "docker://"+down.Addr+"/docker-remote/team/api@"+want.String(), "oci:"+layout+":old")
	if out := strings.TrimSpace(e.must("crane", "digest", down.Addr+"/docker-remote/team/api:v1")); out != want2.String() {
		t.Fatalf("stale tag with the upstream down: %s", out)
	}
	if _, ok := e.run("crane", "digest", down.Addr+"/docker-remote/team/never:v1"); ok {
		t.Fatal("an uncached image resolved with the upstream down")
	}
	// Pushing through the virtual lands in its default_deploy.
	img, _ := random.Image(256, 1)
	if err := remote.Write(mustRef(t, down.Addr+"/docker/team/local:v1"), img, ggcrAuth()); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(mustRef(t, down.Addr+"/docker-dev-local/team/local:v1"), ggcrAuth()); err != nil {
		t.Fatalf("push via virtual did not land in docker-dev-local: %v", err)
	}
}

// N concurrent pulls of one uncached blob make one upstream fetch and all
// receive the bytes, streamed while the fill is in progress.
func TestOCIRemoteConcurrentBlobPulls(t *testing.T) {
	up, down := startOCIPair(t, func(up *Server) string { return up.URL + "/docker-up" })
	layer := randomBytes(48 << 20)
	d := "sha256:" + sha(layer)
	resp := up.Do("POST", "/v2/docker-up/team/big/blobs/uploads/?digest="+d, bytes.NewReader(layer))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upstream push: %d %s", resp.StatusCode, ReadBody(t, resp))
	}
	resp.Body.Close()
	before := upstreamBlobGets(t, up)
	var wg sync.WaitGroup
	errc := make(chan string, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", down.URL+"/v2/docker-remote/team/big/blobs/"+d, nil)
			req.SetBasicAuth("admin", adminPassword)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errc <- err.Error()
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || "sha256:"+sha(b) != d {
				errc <- fmt.Sprintf("status %d, %d bytes, err %v", resp.StatusCode, len(b), err)
			}
		}()
	}
	wg.Wait()
	close(errc)
	for e := range errc {
		t.Error(e)
	}
	if got := upstreamBlobGets(t, up) - before; got != 1 {
		t.Fatalf("10 concurrent pulls made %d upstream blob GETs, want 1", got)
	}
	// Now cached: served with the upstream gone.
	up.Stop()
	req, _ := http.NewRequest("GET", down.URL+"/v2/docker-remote/team/big/blobs/"+d, nil)
	req.SetBasicAuth("admin", adminPassword)
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if "sha256:"+sha(b) != d {
		t.Fatal("cached blob differs")
	}
}

// upstreamBlobGets counts successful blob GETs the upstream answered.
func upstreamBlobGets(t *testing.T, s *Server) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(ReadBody(t, s.Do("GET", "/metrics", nil)), "\n") {
		if strings.HasPrefix(line, "coffer_http_requests_total{") && strings.Contains(line, `repository="docker-up"`) &&
			strings.Contains(line, `method="GET"`) && strings.Contains(line, `status="200"`) {
			var v float64
			fmt.Sscanf(line[strings.LastIndex(line, " ")+1:], "%g", &v)
			n += int(v)
		}
	}
	return n
}

// A blob whose bytes do not match its digest is never stored.
func TestOCIRemoteNeverCachesCorruptBlobs(t *testing.T) {
	mode := "flip"
	var up *Server
	_, down := startOCIPair(t, func(u *Server) string { up = u; return corruptingProxy(t, u.URL, &mode) + "/docker-up" })
	layer := randomBytes(1 << 20)
	d := "sha256:" + sha(layer)
	resp := up.Do("POST", "/v2/docker-up/team/x/blobs/uploads/?digest="+d, bytes.NewReader(layer))
	resp.Body.Close()
	// Twice: each pull fails (the connection is cut before the last byte:
	// the client never gets a body it would take as complete).
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest("GET", down.URL+"/v2/docker-remote/team/x/blobs/"+d, nil)
		req.SetBasicAuth("admin", adminPassword)
		r2, err := http.DefaultClient.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(r2.Body)
			r2.Body.Close()
			if rerr == nil && r2.StatusCode == 200 {
				t.Fatalf("pull %d of a corrupted blob succeeded (%d bytes)", i, len(b))
			}
		}
	}
	if r := down.Do("GET", "/api/v1/repositories/docker-remote/artifacts/team/x/_blobs/"+d, nil); r.StatusCode != 404 {
		t.Fatalf("the corrupted blob was cached: %d %s", r.StatusCode, ReadBody(t, r))
	}
	mode = "none"
	r3 := down.Do("GET", "/v2/docker-remote/team/x/blobs/"+d, nil)
	b, _ := io.ReadAll(r3.Body)
	r3.Body.Close()
	if r3.StatusCode != 200 || "sha256:"+sha(b) != d {
		t.Fatalf("intact blob after the upstream recovered: %d", r3.StatusCode)
	}
}
