package pypi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

const promoteConfig = `
repositories:
  - {key: pypi-dev, format: pypi, kind: local, tier: dev}
  - {key: pypi-staging, format: pypi, kind: local, tier: staging}
`

// Promoting acme-lib==1.0.0 copies the release's files (wheel, sdist, the
// wheel's .metadata) into staging, where pip's simple page lists them.
func TestPromotePyPI(t *testing.T) {
	e := apptest.New(t, promoteConfig)
	wn, wb := wheel(t, "acme-lib", "1.0.0", metadataFor("acme-lib", "1.0.0"))
	mustUpload(t, e, "pypi-dev", "acme-lib", "1.0.0", wn, wb)
	sn, sb := sdist(t, "acme-lib", "1.0.0", metadataFor("acme-lib", "1.0.0"))
	mustUpload(t, e, "pypi-dev", "acme-lib", "1.0.0", sn, sb)
	wn2, wb2 := wheel(t, "acme-lib", "1.1.0", metadataFor("acme-lib", "1.1.0"))
	mustUpload(t, e, "pypi-dev", "acme-lib", "1.1.0", wn2, wb2)

	var rec map[string]any
	e.Admin().MustJSON("POST", "/api/v1/promotions", map[string]any{"source": "pypi-dev", "target": "pypi-staging", "artifact": "Acme_Lib==1.0.0"}, http.StatusCreated, &rec)
	if rec["state"] != "promoted" || rec["name"] != "acme-lib" {
		t.Fatalf("record: %v", rec)
	}
	resp, page := get(t, e, "/repository/pypi-staging/simple/acme-lib/", "")
	if resp.StatusCode != 200 || !strings.Contains(page, wn) || !strings.Contains(page, sn) || strings.Contains(page, wn2) {
		t.Fatalf("staging simple page: %d\n%s", resp.StatusCode, page)
	}
	// The page links ../../packages/<project>/<version>/<file>.
	if !strings.Contains(page, "../../packages/acme-lib/1.0.0/"+wn) {
		t.Fatalf("link to the wheel: %s", page)
	}
	resp, body := get(t, e, "/repository/pypi-staging/packages/acme-lib/1.0.0/"+wn, "")
	if resp.StatusCode != 200 || body != string(wb) {
		t.Fatalf("wheel from staging: %d (%d bytes)", resp.StatusCode, len(body))
	}
	resp, body = e.Admin().JSON("POST", "/api/v1/promotions", map[string]any{"source": "pypi-dev", "target": "pypi-staging", "artifact": "acme-lib>=1.0"})
	if resp.StatusCode != 400 || !strings.Contains(body, "write project==version") {
		t.Errorf("bad coordinates: %d %s", resp.StatusCode, body)
	}
}

// Retention on PyPI releases: keep_last 1, a pinned release stays.
func TestRetentionPyPI(t *testing.T) {
	e := apptest.New(t, `
repositories:
  - {key: pypi-dev, format: pypi, kind: local, tier: dev, retention: {keep_last: 1}}
`)
	var names []string
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		wn, wb := wheel(t, "acme-lib", v, metadataFor("acme-lib", v))
		mustUpload(t, e, "pypi-dev", "acme-lib", v, wn, wb)
		names = append(names, wn)
		if v == "1.0.0" {
			e.Admin().MustJSON("POST", "/api/v1/repositories/pypi-dev/pins", map[string]any{"artifact": "acme-lib==1.0.0", "reason": "prod"}, 201, nil)
		}
	}
	var rep struct {
		Expired int
	}
	e.Admin().MustJSON("POST", "/api/v1/retention", map[string]any{"repos": []string{"pypi-dev"}}, 200, &rep)
	if rep.Expired != 1 {
		t.Fatalf("expired %d, want 1 (1.1.0)", rep.Expired)
	}
	resp, page := get(t, e, "/repository/pypi-dev/simple/acme-lib/", "")
	if resp.StatusCode != 200 || !strings.Contains(page, names[0]) || strings.Contains(page, names[1]) || !strings.Contains(page, names[2]) {
		t.Fatalf("simple page after retention: %s", page)
	}
}
