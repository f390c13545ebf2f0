package e2e

import (
	crand "crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Quotas refuse uploads with the client's own error shape and a message
// naming the quota and the repository; reads keep working; the warning
// threshold is logged, audited and exposed as a metric.
func TestQuotaRefusalThroughClients(t *testing.T) {
	s := StartServer(t, `
storage: {quota_warning: 70}
repositories:
  - {key: raw-small, format: raw, kind: local, tier: dev, quota: 100KiB}
  - {key: docker-small, format: oci, kind: local, tier: dev, quota: 200KiB}
`)
	// raw with curl: 60 KiB fits, 30 KiB more crosses 70 %, 20 KiB more does not fit.
	dir := t.TempDir()
	write := func(name string, n int) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, randomBytes(n), 0o644)
		return p
	}
	auth := "admin:" + adminPassword
	for _, f := range []struct {
		name string
		size int
	}{{"a.bin", 60 << 10}, {"b.bin", 30 << 10}} {
		out, errOut, code := Curl(t, "-f", "-u", auth, "-T", write(f.name, f.size), s.URL+"/repository/raw-small/"+f.name)
		if code != 0 {
			t.Fatalf("upload %s within quota: %s %s", f.name, out, errOut)
		}
	}
	out, _, _ := Curl(t, "-u", auth, "-w", "\n%{http_code}", "-T", write("c.bin", 20<<10), s.URL+"/repository/raw-small/c.bin")
	if !strings.HasSuffix(out, "507") || !strings.Contains(out, "quota of raw-small is full") {
		t.Fatalf("over-quota raw upload: %s", out)
	}
	if out, _, code := Curl(t, "-f", "-u", auth, s.URL+"/repository/raw-small/a.bin", "-o", os.DevNull); code != 0 {
		t.Fatalf("reads must keep working: %s", out)
	}
	if !strings.Contains(s.Log(), "storage quota warning") {
		t.Fatal("crossing 70 % was not logged")
	}
	metrics := ReadBody(t, s.Do("GET", "/metrics", nil))
	if !strings.Contains(metrics, `coffer_quota_used_ratio{repository="raw-small"} 0.9`) {
		t.Fatalf("quota ratio metric missing:\n%s", grepLines(metrics, "quota"))
	}
	var evs []struct{ Action string }
	json.NewDecoder(s.Do("GET", "/api/v1/audit?repo=raw-small", nil).Body).Decode(&evs)
	found := false
	for _, e := range evs {
		found = found || e.Action == "quota_warning"
	}
	if !found {
		t.Fatal("no quota_warning audit event")
	}

	// OCI with crane: the second image does not fit.
	e := newOCIEnv(t, s)
	e.must("crane", "auth", "login", s.Addr, "-u", "admin", "-p", adminPassword)
	img1, _ := random.Image(120<<10, 1)
	if err := remote.Write(mustRef(t, s.Addr+"/docker-small/app:v1"), img1, ggcrAuth()); err != nil {
		t.Fatal(err)
	}
	img2, _ := random.Image(120<<10, 1)
	layout := filepath.Join(t.TempDir(), "img2.tar")
	writeTarball(t, img2, layout)
	refusal := e.mustFail("crane", "quota of docker-small is full", "push", layout, s.Addr+"/docker-small/app:v2")
	if !strings.Contains(refusal, "DENIED") {
		t.Fatalf("crane did not get the registry's DENIED code: %s", refusal)
	}
	e.must("crane", "digest", s.Addr+"/docker-small/app:v1")
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The quota seen through a package manager: npm publish of a version that
// does not fit fails with npm's own error output naming the quota and the
// repository, and what was published before still installs.
func TestQuotaRefusalThroughNpm(t *testing.T) {
	s := StartServer(t, `
repositories:
  - {key: npm-small, format: npm, kind: local, tier: dev, quota: 6KiB}
`)
	token := apiToken(t, s, "admin", adminPassword)
	p := newNpmProject(t, s.URL+"/repository/npm-small/", token, nil)
	publish := func(version string) (string, error) {
		dir := pkgDir(t, p, "fat-widget", version)
		junk := make([]byte, 3000) // incompressible: the tarball is ~3 KiB
		crand.Read(junk)
		must(t, os.WriteFile(filepath.Join(dir, "blob.bin"), junk, 0o644))
		return p.publishFrom(dir)
	}
	if out, err := publish("1.0.0"); err != nil {
		t.Fatalf("publish within the quota: %v\n%s", err, out)
	}
	out, err := publish("2.0.0")
	if err == nil {
		t.Fatalf("publish over the quota succeeded:\n%s", out)
	}
	if !strings.Contains(out, "quota of npm-small is full") {
		t.Fatalf("npm's output does not name the quota and the repository:\n%s", out)
	}
	inst := newNpmProject(t, s.URL+"/repository/npm-small/", token, map[string]string{"fat-widget": "1.0.0"})
	inst.must("npm", "install")
	if v := inst.installedVersion("fat-widget"); v != "1.0.0" {
		t.Fatalf("installed fat-widget %q after the refusal, want 1.0.0", v)
	}
}
