package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The scheduled job: with retention.interval set, the server applies a
// repository's rules by itself, and a repository without rules keeps
// everything.
func TestRetentionScheduled(t *testing.T) {
	s := StartServer(t, `
retention: {interval: 1s}
repositories:
  - {key: docker-dev-local, format: oci, kind: local, tier: dev, retention: {keep_last: 1}}
  - {key: docker-keep-local, format: oci, kind: local, tier: dev}
`)
	var old, kept string
	for i, tag := range []string{"v1", "v2"} {
		img, _ := random.Image(256, 1)
		for _, repo := range []string{"docker-dev-local", "docker-keep-local"} {
			if err := remote.Write(mustRef(t, s.Addr+"/"+repo+"/app:"+tag), img, ggcrAuth()); err != nil {
				t.Fatal(err)
			}
		}
		d, _ := img.Digest()
		if i == 0 {
			old = d.String()
		} else {
			kept = d.String()
		}
	}
	status := func(repo, d string) int {
		resp := s.Do("HEAD", "/v2/"+repo+"/app/manifests/"+d, nil,
			"Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(30 * time.Second)
	for status("docker-dev-local", old) != 404 {
		if time.Now().After(deadline) {
			t.Fatalf("the scheduled retention did not expire v1 within 30s; log:\n%s", s.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if status("docker-dev-local", kept) != 200 || status("docker-keep-local", old) != 200 {
		t.Fatal("retention expired what its rules keep")
	}
	if !strings.Contains(s.Log(), "retention run") {
		t.Errorf("no log line for the run")
	}
}
