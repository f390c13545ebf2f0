package e2e

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// toolPath returns a pinned client built by scripts/install-oci-tools.sh.
// A missing tool fails the test: CI installs them, and a test that cannot
// run must not pass.
func toolPath(t *testing.T, name string) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, ".tools", "bin", name)
	if _, err := os.Stat(p); err != nil {
		if lp, err := exec.LookPath(name); err == nil && name == "skopeo" {
			return lp
		}
		t.Fatalf("%s is not installed: run scripts/install-oci-tools.sh (what .ci/run does)", name)
	}
	return p
}

const ociConfig = `
repositories:
  - {key: docker-dev-local, format: oci, kind: local, tier: dev}
  - {key: docker-staging-local, format: oci, kind: local, tier: staging}
  - {key: docker-release-local, format: oci, kind: local, tier: release}
`

// The OCI distribution-spec conformance suite, every API and data type on
// (but sparse manifests: Coffer requires what a manifest references to be
// pushed first), against a real Coffer with authentication on.
func TestOCIConformance(t *testing.T) {
	bin := toolPath(t, "conformance.test")
	s := StartServer(t, ociConfig)
	results := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+s.Addr,
		"OCI_TLS=disabled",
		"OCI_REPO1=docker-dev-local/conformance/repo1",
		"OCI_REPO2=docker-dev-local/conformance/repo2",
		"OCI_USERNAME=admin",
		"OCI_PASSWORD="+adminPassword,
		"OCI_RESULTS_DIR="+results,
		"OCI_VERSION=1.1",
		"OCI_API_PULL=true", "OCI_API_PUSH=true",
		"OCI_API_BLOBS_ATOMIC=true", "OCI_API_BLOBS_DELETE=true", "OCI_API_BLOBS_DIGEST_HEADER=true",
		"OCI_API_BLOBS_MOUNT_ANONYMOUS=true", "OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_API_MANIFESTS_ATOMIC=true", "OCI_API_MANIFESTS_DELETE=true", "OCI_API_MANIFESTS_DIGEST_HEADER=true",
		"OCI_API_MANIFESTS_TAG_PARAM=true",
		"OCI_API_TAGS_ATOMIC=true", "OCI_API_TAGS_DELETE=true", "OCI_API_TAGS_LIST=true",
		"OCI_API_REFERRER=true",
		"OCI_DATA_IMAGE=true", "OCI_DATA_INDEX=true", "OCI_DATA_INDEX_LIST=true", "OCI_DATA_SPARSE=false",
		"OCI_DATA_ARTIFACT=true", "OCI_DATA_SUBJECT=true", "OCI_DATA_SUBJECT_MISSING=true",
		"OCI_DATA_ARTIFACT_LIST=true", "OCI_DATA_SUBJECT_LIST=true", "OCI_DATA_DATA_FIELD=true",
		"OCI_DATA_NONDISTRIBUTABLE=true", "OCI_DATA_CUSTOM_FIELDS=true", "OCI_DATA_NO_LAYERS=true",
		"OCI_DATA_EMPTY_BLOB=true", "OCI_DATA_SHA512=true",
	)
	out, _ := cmd.CombinedOutput() // judged by its results, not its exit code
	data, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatalf("the conformance suite wrote no results (%v); output:\n%s", err, tail(out, 3000))
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Cases    []struct {
			Name   string `xml:"name,attr"`
			Status string `xml:"status,attr"`
			Out    string `xml:"system-out"`
		} `xml:"testsuite>testcase"`
	}
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatal(err)
	}
	t.Logf("conformance: %d tests, %d failures, %d skipped", suites.Tests, suites.Failures, suites.Skipped)
	if suites.Tests < 500 {
		t.Fatalf("only %d conformance tests ran; the suite's configuration did not load?\n%s", suites.Tests, tail(out, 3000))
	}
	for _, c := range suites.Cases {
		if c.Status != "passed" && c.Status != "skipped" {
			t.Errorf("%s: %s", c.Name, strings.TrimSpace(c.Out))
		}
	}
	if suites.Failures > 0 {
		t.Fatalf("%d conformance failures", suites.Failures)
	}
	// What may be skipped: mounting without a source repository (optional).
	for _, c := range suites.Cases {
		if c.Status == "skipped" && !strings.Contains(c.Name, "anonymous") && !strings.Contains(c.Name, "mount") {
			t.Errorf("unexpected skip: %s: %s", c.Name, strings.TrimSpace(c.Out))
		}
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
