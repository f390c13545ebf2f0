package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// cosign signs and verifies offline (a key pair, no transparency log),
// storing signatures both ways: the tag scheme (sha256-<digest>.sig) and
// OCI 1.1 referrers.
func TestOCICosign(t *testing.T) {
	s := StartServer(t, ociConfig)
	e := newOCIEnv(t, s)
	host := s.Addr
	e.must("crane", "auth", "login", host, "-u", "admin", "-p", adminPassword)
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/docker-staging-local/team/api:v2.3.0"
	if err := remote.Write(mustRef(t, ref), img, ggcrAuth()); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	byDigest := host + "/docker-staging-local/team/api@" + d.String()

	os.Setenv("COSIGN_PASSWORD", "")
	defer os.Unsetenv("COSIGN_PASSWORD")
	e.must("cosign", "generate-key-pair")
	pub := filepath.Join(e.home, "cosign.pub")
	key := filepath.Join(e.home, "cosign.key")

	// Tag scheme.
	e.must("cosign", "sign", "--yes", "--key", key, "--tlog-upload=false", "--allow-insecure-registry", byDigest)
	if out := e.must("crane", "ls", host+"/docker-staging-local/team/api"); !strings.Contains(out, "sha256-"+d.Hex+".sig") {
		t.Fatalf("no signature tag: %q", out)
	}
	os.Setenv("SIGSTORE_REKOR_PUBLIC_KEY", pub)
	defer os.Unsetenv("SIGSTORE_REKOR_PUBLIC_KEY")
	out := e.must("cosign", "verify", "--key", pub, "--insecure-ignore-tlog", "--allow-insecure-registry", byDigest)
	if !strings.Contains(out, d.String()) {
		t.Fatalf("cosign verify output: %s", out)
	}
	// A different key does not verify.
	other := filepath.Join(e.home, "other")
	os.MkdirAll(other, 0o755)
	cmdOut, ok := e.run("cosign", "generate-key-pair", "--output-key-prefix", filepath.Join(other, "k"))
	if !ok {
		t.Fatalf("second key pair: %s", cmdOut)
	}
	e.mustFail("cosign", "no matching signatures", "verify", "--key", filepath.Join(other, "k.pub"), "--insecure-ignore-tlog", "--allow-insecure-registry", byDigest)

	// OCI 1.1 referrers mode, on another image.
	img2, _ := random.Image(1024, 1)
	ref2 := host + "/docker-staging-local/team/worker:1.0"
	if err := remote.Write(mustRef(t, ref2), img2, ggcrAuth()); err != nil {
		t.Fatal(err)
	}
	d2, _ := img2.Digest()
	byDigest2 := host + "/docker-staging-local/team/worker@" + d2.String()
	os.Setenv("COSIGN_EXPERIMENTAL", "1")
	defer os.Unsetenv("COSIGN_EXPERIMENTAL")
	e.must("cosign", "sign", "--yes", "--key", key, "--tlog-upload=false", "--allow-insecure-registry",
		"--registry-referrers-mode=oci-1-1", byDigest2)
	if out := e.must("crane", "ls", host+"/docker-staging-local/team/worker"); strings.Contains(out, ".sig") {
		t.Fatalf("referrers mode left a signature tag: %q", out)
	}
	resp := s.Do("GET", "/v2/docker-staging-local/team/worker/referrers/"+d2.String(), nil)
	body := ReadBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, "artifactType") {
		t.Fatalf("referrers of the signed image: %d %s", resp.StatusCode, body)
	}
	e.must("cosign", "verify", "--key", pub, "--insecure-ignore-tlog", "--allow-insecure-registry", "--experimental-oci11", byDigest2)
}
