package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ociEnv is a per-test client environment: each client keeps its
// credentials under a private HOME / DOCKER_CONFIG.
type ociEnv struct {
	t    *testing.T
	s    *Server
	home string
}

func newOCIEnv(t *testing.T, s *Server) *ociEnv {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".docker"), 0o700)
	return &ociEnv{t: t, s: s, home: home}
}

func (e *ociEnv) env() []string {
	return append(os.Environ(), "HOME="+e.home, "DOCKER_CONFIG="+filepath.Join(e.home, ".docker"),
		"XDG_RUNTIME_DIR="+e.home, "REGISTRY_AUTH_FILE="+filepath.Join(e.home, "auth.json"))
}

// exec runs a client and returns its standard output, its standard error
// and whether it succeeded.
func (e *ociEnv) exec(tool string, args ...string) (string, string, bool) {
	e.t.Helper()
	cmd := exec.Command(toolPath(e.t, tool), args...)
	cmd.Env = e.env()
	cmd.Dir = e.home
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err == nil
}

// run returns the combined output and whether the client succeeded.
func (e *ociEnv) run(tool string, args ...string) (string, bool) {
	e.t.Helper()
	out, errOut, ok := e.exec(tool, args...)
	return out + errOut, ok
}

// must returns the standard output of a client that must succeed.
func (e *ociEnv) must(tool string, args ...string) string {
	e.t.Helper()
	out, errOut, ok := e.exec(tool, args...)
	if !ok {
		e.t.Fatalf("%s %s failed:\n%s%s", tool, strings.Join(args, " "), out, errOut)
	}
	return out
}

func (e *ociEnv) mustFail(tool, want string, args ...string) string {
	e.t.Helper()
	out, ok := e.run(tool, args...)
	if ok {
		e.t.Fatalf("%s %s succeeded, want a refusal containing %q:\n%s", tool, strings.Join(args, " "), want, out)
	}
	if !strings.Contains(out, want) {
		e.t.Fatalf("%s %s: refusal does not say %q:\n%s", tool, strings.Join(args, " "), want, out)
	}
	return out
}

func ggcrAuth() remote.Option {
	return remote.WithAuth(&authn.Basic{Username: "admin", Password: adminPassword})
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// randomIndex is a two-platform image index.
func randomIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	idx, err := random.Index(512, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func TestOCIMultiArchWithGGCR(t *testing.T) {
	s := StartServer(t, ociConfig)
	host := s.Addr
	idx := randomIndex(t)
	want, _ := idx.Digest()
	ref := mustRef(t, host+"/docker-dev-local/team/api:v1")
	if err := remote.WriteIndex(ref, idx, ggcrAuth()); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Index(ref, ggcrAuth())
	if err != nil {
		t.Fatal(err)
	}
	gd, _ := got.Digest()
	if gd != want {
		t.Fatalf("pulled index %s, pushed %s", gd, want)
	}
	im, _ := got.IndexManifest()
	for _, d := range im.Manifests {
		img, err := got.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := img.Layers()
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			buf.ReadFrom(rc)
			rc.Close()
			ld, _ := l.Digest()
			if fmt.Sprintf("sha256:%x", sha256Sum(buf.Bytes())) != ld.String() {
				t.Fatalf("layer %s pulled with other bytes", ld)
			}
		}
	}
	// Anonymous pulls are refused on a private repository.
	if _, err := remote.Index(ref); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("anonymous pull: %v", err)
	}
}

func TestOCIClients(t *testing.T) {
	s := StartServer(t, ociConfig)
	e := newOCIEnv(t, s)
	host := s.Addr
	dev := host + "/docker-dev-local"
	stg := host + "/docker-staging-local"
	rel := host + "/docker-release-local"

	// Log in with user and password (crane, regctl, skopeo, oras).
	e.must("crane", "auth", "login", host, "-u", "admin", "-p", adminPassword)
	e.must("regctl", "registry", "set", host, "--tls", "disabled")
	e.must("regctl", "registry", "login", host, "-u", "admin", "-p", adminPassword)
	e.must("skopeo", "login", "--tls-verify=false", "-u", "admin", "-p", adminPassword, host)
	e.must("oras", "login", "--plain-http", "-u", "admin", "-p", adminPassword, host)

	// A multi-arch index pushed with the library, then copied by each CLI.
	idx := randomIndex(t)
	if err := remote.WriteIndex(mustRef(t, dev+"/team/api:v1"), idx, ggcrAuth()); err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if got := strings.TrimSpace(e.must("crane", "digest", dev+"/team/api:v1")); got != want.String() {
		t.Fatalf("crane digest = %s, want %s", got, want)
	}
	// crane copy across repositories mounts the blobs instead of re-sending them.
	e.must("crane", "copy", dev+"/team/api:v1", stg+"/team/api:v1")
	if got := strings.TrimSpace(e.must("crane", "digest", stg+"/team/api:v1")); got != want.String() {
		t.Fatalf("copied digest = %s", got)
	}
	if n := auditCount(t, s, "docker-staging-local", "mount"); n == 0 {
		t.Fatal("copy between Coffer repositories did not mount blobs")
	}
	e.must("skopeo", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
		"docker://"+dev+"/team/api:v1", "docker://"+dev+"/team/api-skopeo:v1")
	e.must("regctl", "image", "copy", dev+"/team/api:v1", dev+"/team/api-regctl:v1")
	for _, n := range []string{"team/api-skopeo", "team/api-regctl"} {
		if got := strings.TrimSpace(e.must("crane", "digest", dev+"/"+n+":v1")); got != want.String() {
			t.Fatalf("%s digest = %s, want %s", n, got, want)
		}
	}
	// Pull the whole index to an OCI layout with skopeo.
	e.must("skopeo", "copy", "--all", "--src-tls-verify=false", "docker://"+dev+"/team/api:v1", "oci:"+filepath.Join(e.home, "layout")+":v1")

	// Tag listing through each client.
	e.must("crane", "tag", dev+"/team/api:v1", "v2")
	e.must("crane", "tag", dev+"/team/api:v1", "latest")
	if out := e.must("crane", "ls", dev+"/team/api"); out != "latest\nv1\nv2\n" {
		t.Fatalf("crane ls = %q", out)
	}
	if out := e.must("regctl", "tag", "ls", dev+"/team/api"); out != "latest\nv1\nv2\n" {
		t.Fatalf("regctl tag ls = %q", out)
	}
	if out := e.must("skopeo", "list-tags", "--tls-verify=false", "docker://"+dev+"/team/api"); !strings.Contains(out, `"v2"`) {
		t.Fatalf("skopeo list-tags = %s", out)
	}
	if out := e.must("crane", "catalog", host); !strings.Contains(out, "docker-dev-local/team/api\n") {
		t.Fatalf("crane catalog = %q", out)
	}

	// Delete a tag (crane, regctl) versus delete the manifest (skopeo).
	e.must("crane", "delete", dev+"/team/api:v2")
	e.must("regctl", "tag", "delete", dev+"/team/api:latest")
	if out := e.must("crane", "ls", dev+"/team/api"); out != "v1\n" {
		t.Fatalf("after deleting two tags: %q", out)
	}
	e.must("crane", "tag", dev+"/team/api:v1", "v3")
	e.must("skopeo", "delete", "--tls-verify=false", "docker://"+dev+"/team/api:v3")
	if out, ok := e.run("crane", "ls", dev+"/team/api"); ok && strings.TrimSpace(out) != "" {
		t.Fatalf("deleting the manifest left tags: %q", out)
	}
	if _, ok := e.run("crane", "digest", dev+"/team/api:v1"); ok {
		t.Fatal("v1 still resolves after its manifest was deleted")
	}

	// Immutability on staging, seen through each client.
	other := randomIndex(t)
	e.must("crane", "copy", stg+"/team/api:v1", stg+"/team/api:v1") // same digest again: fine
	if err := remote.WriteIndex(mustRef(t, stg+"/team/api:v1"), other, ggcrAuth()); err == nil ||
		!strings.Contains(err.Error(), "tag v1 is immutable in docker-staging-local") {
		t.Fatalf("library push over an immutable tag: %v", err)
	}
	if err := remote.WriteIndex(mustRef(t, dev+"/team/other:v9"), other, ggcrAuth()); err != nil {
		t.Fatal(err)
	}
	const refusal = "tag v1 is immutable in docker-staging-local"
	e.mustFail("crane", refusal, "copy", dev+"/team/other:v9", stg+"/team/api:v1")
	e.mustFail("skopeo", "immutable", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
		"docker://"+dev+"/team/other:v9", "docker://"+stg+"/team/api:v1")
	e.mustFail("regctl", "immutable", "image", "copy", dev+"/team/other:v9", stg+"/team/api:v1")
	layer := filepath.Join(e.home, "hello.txt")
	os.WriteFile(layer, []byte("hello"), 0o644)
	e.mustFail("oras", "immutable", "push", "--plain-http", stg+"/team/api:v1", "hello.txt")

	// Release refuses deletes: manifest and tag.
	e.must("crane", "copy", stg+"/team/api:v1", rel+"/team/api:v1")
	e.mustFail("crane", "deprecate", "delete", rel+"/team/api:v1")
	// regctl deletes a tag by pushing a dummy manifest over it first: the
	// immutable tag refuses that.
	e.mustFail("regctl", "immutable", "tag", "delete", rel+"/team/api:v1")

	// Login with an API token instead of the password.
	tok := createToken(t, s)
	e2 := newOCIEnv(t, s)
	e2.must("crane", "auth", "login", host, "-u", "admin", "-p", tok)
	e2.must("crane", "digest", stg+"/team/api:v1")
	e2.must("skopeo", "login", "--tls-verify=false", "-u", "token", "-p", tok, host)
	e2.must("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+stg+"/team/api:v1")
}

func TestOCIArtifactsWithORAS(t *testing.T) {
	s := StartServer(t, ociConfig)
	e := newOCIEnv(t, s)
	host := s.Addr
	e.must("oras", "login", "--plain-http", "-u", "admin", "-p", adminPassword, host)
	os.WriteFile(filepath.Join(e.home, "app.tgz"), []byte("pretend this is a release tarball"), 0o644)
	os.WriteFile(filepath.Join(e.home, "sbom.json"), []byte(`{"spdxVersion":"SPDX-2.3"}`), 0o644)
	os.WriteFile(filepath.Join(e.home, "sig.txt"), []byte("signature"), 0o644)
	ref := host + "/docker-dev-local/team/app:1.0"
	e.must("oras", "push", "--plain-http", "--artifact-type", "application/vnd.acme.app", ref, "app.tgz")
	e.must("oras", "attach", "--plain-http", "--artifact-type", "application/spdx+json", ref, "sbom.json")
	e.must("oras", "attach", "--plain-http", "--artifact-type", "application/vnd.acme.signature", ref, "sig.txt")
	out := e.must("oras", "discover", "--plain-http", "--format", "json", ref)
	var disc struct {
		Referrers []struct {
			ArtifactType string `json:"artifactType"`
		} `json:"referrers"`
		Manifests []struct {
			ArtifactType string `json:"artifactType"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(out), &disc); err != nil {
		t.Fatalf("oras discover: %v\n%s", err, out)
	}
	types := map[string]bool{}
	for _, r := range append(disc.Referrers, disc.Manifests...) {
		types[r.ArtifactType] = true
	}
	if !types["application/spdx+json"] || !types["application/vnd.acme.signature"] {
		t.Fatalf("oras discover does not list both referrers: %s", out)
	}
	// Filtered by artifact type.
	out = e.must("oras", "discover", "--plain-http", "--format", "json", "--artifact-type", "application/spdx+json", ref)
	if strings.Contains(out, "vnd.acme.signature") || !strings.Contains(out, "spdx") {
		t.Fatalf("filtered discover: %s", out)
	}
	// Pull the artifact back.
	dl := filepath.Join(e.home, "out")
	e.must("oras", "pull", "--plain-http", "-o", dl, ref)
	if b, _ := os.ReadFile(filepath.Join(dl, "app.tgz")); string(b) != "pretend this is a release tarball" {
		t.Fatalf("oras pull: %q", b)
	}
}

// ---- helpers

func sha256Sum(b []byte) [32]byte { return sha256Array(b) }

func auditCount(t *testing.T, s *Server, repo, action string) int {
	t.Helper()
	resp := s.Do("GET", "/api/v1/audit?limit=1000&repo="+repo, nil)
	var evs []struct {
		Action string `json:"action"`
	}
	json.NewDecoder(resp.Body).Decode(&evs)
	resp.Body.Close()
	n := 0
	for _, e := range evs {
		if e.Action == action {
			n++
		}
	}
	return n
}

func createToken(t *testing.T, s *Server) string {
	t.Helper()
	resp := s.Do("POST", "/api/v1/tokens", strings.NewReader(`{"name":"oci-e2e"}`), "Content-Type", "application/json")
	var tok struct {
		Token string `json:"token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || tok.Token == "" {
		t.Fatalf("creating a token: %d", resp.StatusCode)
	}
	return tok.Token
}

var _ = mutate.Append

// An upload session nobody finishes expires after upload_ttl and leaves
// nothing behind.
func TestOCIAbandonedUploadsExpire(t *testing.T) {
	s := StartServer(t, "server: {upload_ttl: 2s}\n"+ociConfig)
	resp := s.Do("POST", "/v2/docker-dev-local/team/api/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("start upload: %d", resp.StatusCode)
	}
	resp = s.Do("PATCH", loc, bytes.NewReader(bytes.Repeat([]byte("x"), 1<<20)), "Content-Type", "application/octet-stream")
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("patch: %d", resp.StatusCode)
	}
	uploads := filepath.Join(s.DataDir, "blobs", "_uploads")
	if n := countFiles(uploads); n != 1 {
		t.Fatalf("%d upload files during the session", n)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := s.Do("GET", loc, nil)
		r.Body.Close()
		if r.StatusCode == http.StatusNotFound && countFiles(uploads) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: status %d, %d upload files", r.StatusCode, countFiles(uploads))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func countFiles(dir string) int {
	es, _ := os.ReadDir(dir)
	return len(es)
}

func writeTarball(t *testing.T, img v1.Image, path string) {
	t.Helper()
	if err := tarball.WriteToFile(path, mustRef(t, "example.invalid/x:v1"), img); err != nil {
		t.Fatal(err)
	}
}

// Anonymous pulls work where the repository allows anonymous reads (the
// client follows the Bearer challenge and gets an anonymous token), and
// pushes without credentials are refused with the challenge.
func TestOCIAnonymousPull(t *testing.T) {
	s := StartServer(t, `
repositories:
  - {key: docker-public, format: oci, kind: local, tier: release, anonymous_read: true}
  - {key: docker-private, format: oci, kind: local, tier: dev}
`)
	img, _ := random.Image(1024, 1)
	if err := remote.Write(mustRef(t, s.Addr+"/docker-public/base:1"), img, ggcrAuth()); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, s.Addr+"/docker-private/base:1"), img, ggcrAuth()); err != nil {
		t.Fatal(err)
	}
	e := newOCIEnv(t, s) // no login
	want, _ := img.Digest()
	if got := strings.TrimSpace(e.must("crane", "digest", s.Addr+"/docker-public/base:1")); got != want.String() {
		t.Fatalf("anonymous pull: %s", got)
	}
	e.must("skopeo", "inspect", "--tls-verify=false", "docker://"+s.Addr+"/docker-public/base:1")
	e.mustFail("crane", "UNAUTHORIZED", "digest", s.Addr+"/docker-private/base:1")
	e.mustFail("crane", "UNAUTHORIZED", "copy", s.Addr+"/docker-public/base:1", s.Addr+"/docker-public/base:2")
	// The catalog lists only what an anonymous caller may read.
	resp, err := http.Get(s.URL + "/v2/token?service=x&scope=registry:catalog:*")
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ := http.NewRequest("GET", s.URL+"/v2/_catalog", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := ReadBody(t, resp)
	if !strings.Contains(body, "docker-public/base") || strings.Contains(body, "docker-private") {
		t.Fatalf("anonymous catalog: %s", body)
	}
}
