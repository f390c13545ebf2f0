package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The signature gate with the real cosign: an image signed offline with
// `cosign sign --key` (no transparency log) may enter the release
// repository, an unsigned one or one signed with another key may not; the
// signature travels with the promotion, so `cosign verify` passes on the
// release copy. The coffer command line drives promotion, properties,
// pins and retention's dry run.
func TestPromoteSignatureGateCosign(t *testing.T) {
	keys := t.TempDir()
	gen := func(prefix string) string {
		cmd := exec.Command(toolPath(t, "cosign"), "generate-key-pair", "--output-key-prefix", filepath.Join(keys, prefix))
		cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "HOME="+keys)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
		}
		return filepath.Join(keys, prefix)
	}
	ours, other := gen("ours"), gen("other")
	s := StartServer(t, `
repositories:
  - {key: docker-dev-local, format: oci, kind: local, tier: dev, retention: {keep_last: 1}}
  - key: docker-release-local
    format: oci
    kind: local
    tier: release
    promotion: {require_signature: {public_key_files: [`+ours+`.pub]}, require_properties: {ci.tests: passed}}
  - key: docker-other-local
    format: oci
    kind: local
    tier: release
    promotion: {require_signature: {public_key_files: [`+other+`.pub]}}
`)
	e := newOCIEnv(t, s)
	e.must("crane", "auth", "login", s.Addr, "-u", "admin", "-p", adminPassword)
	os.Setenv("COSIGN_PASSWORD", "")
	defer os.Unsetenv("COSIGN_PASSWORD")
	img, _ := random.Image(2048, 3)
	if err := remote.Write(mustRef(t, s.Addr+"/docker-dev-local/team/api:v2.3.0"), img, ggcrAuth()); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	env := append(os.Environ(), "COFFER_SERVER="+s.URL, "COFFER_USER=admin", "COFFER_PASSWORD="+adminPassword, "HOME="+e.home)
	coffer := func(wantOK bool, args ...string) string {
		t.Helper()
		cmd := exec.Command(cofferBin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("coffer %v: err %v\n%s", args, err, out)
		}
		return string(out)
	}
	coffer(true, "property", "set", "docker-dev-local", "team/api:v2.3.0", "ci.tests=passed")

	out := coffer(false, "promote", "team/api:v2.3.0", "--from", "docker-dev-local", "--to", "docker-release-local")
	if !strings.Contains(out, "gate require_signature failed: no cosign signature of "+d.String()) {
		t.Fatalf("unsigned image: %s", out)
	}
	e.must("cosign", "sign", "--yes", "--key", ours+".key", "--tlog-upload=false", "--allow-insecure-registry",
		s.Addr+"/docker-dev-local/team/api@"+d.String())

	out = coffer(false, "promote", "team/api:v2.3.0", "--from", "docker-dev-local", "--to", "docker-other-local")
	if !strings.Contains(out, "gate require_signature failed") || !strings.Contains(out, "none verifies against the 1 configured key") {
		t.Fatalf("signed with another key: %s", out)
	}
	out = coffer(true, "promote", "team/api:v2.3.0", "--from", "docker-dev-local", "--to", "docker-release-local", "--comment", "release 42")
	if !strings.Contains(out, "promoted") || !strings.Contains(out, "passed: cosign signature sha256:") || !strings.Contains(out, "ci.tests=passed") {
		t.Fatalf("signed image: %s", out)
	}
	// The signature came along: cosign verifies the release copy.
	os.Setenv("SIGSTORE_REKOR_PUBLIC_KEY", ours+".pub")
	defer os.Unsetenv("SIGSTORE_REKOR_PUBLIC_KEY")
	vout := e.must("cosign", "verify", "--key", ours+".pub", "--insecure-ignore-tlog", "--allow-insecure-registry",
		s.Addr+"/docker-release-local/team/api:v2.3.0")
	if !strings.Contains(vout, d.String()) {
		t.Fatalf("cosign verify in release: %s", vout)
	}
	out = coffer(true, "promotion", "ls", "--repo", "docker-dev-local", "--artifact", "team/api:v2.3.0", "-o", "json")
	var recs []struct{ State, Target, Digest string }
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("promotion ls -o json: %v\n%s", err, out)
	}
	if len(recs) != 3 || recs[0].State != "promoted" || recs[1].State != "refused" || recs[2].State != "refused" ||
		recs[0].Target != "docker-release-local" || recs[0].Digest != d.String() {
		t.Fatalf("promotion records: %+v", recs)
	}

	// Retention: keep_last 1 in dev; a newer build arrives, the pinned
	// v2.3.0 stays (the signature goes with what it signs, never alone).
	img2, _ := random.Image(512, 1)
	if err := remote.Write(mustRef(t, s.Addr+"/docker-dev-local/team/api:v2.4.0"), img2, ggcrAuth()); err != nil {
		t.Fatal(err)
	}
	out = coffer(true, "retention", "run", "--dry-run", "--repo", "docker-dev-local")
	if !strings.Contains(out, d.String()) || !strings.Contains(out, "would expire: keep_last 1") || !strings.Contains(out, "1 version(s) would expire") {
		t.Fatalf("retention dry run:\n%s", out)
	}
	coffer(true, "pin", "add", "docker-dev-local", "team/api:v2.3.0", "--reason", "running in prod")
	out = coffer(true, "retention", "run", "--repo", "docker-dev-local")
	if !strings.Contains(out, "kept: pinned by admin: running in prod") || !strings.Contains(out, "0 version(s) expired") {
		t.Fatalf("retention with a pin:\n%s", out)
	}
	if out := e.must("crane", "ls", s.Addr+"/docker-dev-local/team/api"); !strings.Contains(out, "v2.3.0") || !strings.Contains(out, ".sig") {
		t.Fatalf("tags after retention: %s", out)
	}
}

// npm end to end: the real npm publishes to dev, `coffer promote` moves the
// version to release (authenticated with an API token), and npm installs it
// from release.
func TestPromoteNpmClient(t *testing.T) {
	s := StartServer(t, `
repositories:
  - {key: npm-dev-local, format: npm, kind: local, tier: dev}
  - {key: npm-release-local, format: npm, kind: local, tier: release}
`)
	token := apiToken(t, s, "admin", adminPassword)
	dev := newNpmProject(t, s.URL+"/repository/npm-dev-local/", token, nil)
	if out, err := dev.publishFrom(pkgDir(t, dev, "@acme/ui", "1.4.0")); err != nil {
		t.Fatalf("npm publish: %v\n%s", err, out)
	}
	cmd := exec.Command(cofferBin, "promote", "@acme/ui@1.4.0", "--from", "npm-dev-local", "--to", "npm-release-local")
	cmd.Env = append(os.Environ(), "COFFER_SERVER="+s.URL, "COFFER_TOKEN="+token, "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "promoted") {
		t.Fatalf("coffer promote: %v\n%s", err, out)
	}
	rel := newNpmProject(t, s.URL+"/repository/npm-release-local/", token, map[string]string{"@acme/ui": "^1.4.0"})
	rel.install("npm")
	if v := rel.installedVersion("@acme/ui"); v != "1.4.0" {
		t.Fatalf("installed %q from release", v)
	}
}
