package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Helm charts travel as OCI artifacts: helm push, helm pull, and the
// immutability refusal as helm shows it.
func TestOCIHelm(t *testing.T) {
	s := StartServer(t, ociConfig)
	e := newOCIEnv(t, s)
	host := s.Addr
	chart := filepath.Join(e.home, "mychart")
	os.MkdirAll(filepath.Join(chart, "templates"), 0o755)
	os.WriteFile(filepath.Join(chart, "Chart.yaml"), []byte("apiVersion: v2\nname: mychart\nversion: 0.1.0\ndescription: a test chart\n"), 0o644)
	os.WriteFile(filepath.Join(chart, "templates", "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"), 0o644)
	e.must("helm", "package", chart, "--destination", e.home)
	tgz := filepath.Join(e.home, "mychart-0.1.0.tgz")
	e.must("helm", "registry", "login", host, "--plain-http", "-u", "admin", "-p", adminPassword)
	e.must("helm", "push", tgz, "oci://"+host+"/docker-staging-local/charts", "--plain-http")
	dl := filepath.Join(e.home, "dl")
	os.MkdirAll(dl, 0o755)
	e.must("helm", "pull", "oci://"+host+"/docker-staging-local/charts/mychart", "--version", "0.1.0", "--destination", dl, "--plain-http")
	if _, err := os.Stat(filepath.Join(dl, "mychart-0.1.0.tgz")); err != nil {
		t.Fatalf("helm pull wrote no chart: %v", err)
	}
	// The same version with other content is refused on staging.
	os.WriteFile(filepath.Join(chart, "templates", "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: changed\n"), 0o644)
	e.must("helm", "package", chart, "--destination", e.home)
	refusal, ok := e.run("helm", "push", tgz, "oci://"+host+"/docker-staging-local/charts", "--plain-http")
	if ok || !strings.Contains(refusal, "immutable") {
		t.Fatalf("helm push over an existing chart version on staging: ok=%v\n%s", ok, refusal)
	}
}
