package maven_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/format/maven"
)

const lifecycleConfig = `
repositories:
  - {key: mvn-dev, format: maven, kind: local, tier: dev, retention: {keep_last: 1}}
  - {key: mvn-staging, format: maven, kind: local, tier: staging}
`

// Promoting com.acme:lib:1.0.0 copies the version's files into staging,
// where the computed maven-metadata.xml lists it; retention keep_last 1
// keeps a pinned version; bad coordinates are refused.
func TestPromoteAndRetainMaven(t *testing.T) {
	e := apptest.New(t, lifecycleConfig)
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		deploy(t, e, "mvn-dev", "com.acme", "lib", v)
	}
	var rec map[string]any
	e.Admin().MustJSON("POST", "/api/v1/promotions", map[string]any{"source": "mvn-dev", "target": "mvn-staging", "artifact": "com.acme:lib:1.0.0"}, http.StatusCreated, &rec)
	if rec["state"] != "promoted" || rec["name"] != "com.acme:lib" {
		t.Fatalf("record: %v", rec)
	}
	if got := mustGet(t, e, "/repository/mvn-staging/com/acme/lib/1.0.0/lib-1.0.0.jar"); got != "jar of com.acme:lib:1.0.0" {
		t.Fatalf("promoted jar = %q", got)
	}
	m := parseMeta(t, mustGet(t, e, "/repository/mvn-staging/com/acme/lib/maven-metadata.xml"))
	if strings.Join(m.Versioning.Versions, ",") != "1.0.0" {
		t.Fatalf("staging metadata versions %v", m.Versioning.Versions)
	}
	resp, body := e.Admin().JSON("POST", "/api/v1/promotions", map[string]any{"source": "mvn-dev", "target": "mvn-staging", "artifact": "com.acme/lib/1.0.0"})
	if resp.StatusCode != 400 || !strings.Contains(body, "groupId:artifactId:version") {
		t.Fatalf("bad coordinates: %d %s", resp.StatusCode, body)
	}

	e.Admin().MustJSON("POST", "/api/v1/repositories/mvn-dev/pins", map[string]any{"artifact": "com.acme:lib:1.0.0", "reason": "prod"}, 201, nil)
	var rep struct{ Expired int }
	e.Admin().MustJSON("POST", "/api/v1/retention", map[string]any{"repos": []string{"mvn-dev"}}, 200, &rep)
	if rep.Expired != 1 {
		t.Fatalf("expired %d, want 1 (1.1.0)", rep.Expired)
	}
	m = parseMeta(t, mustGet(t, e, "/repository/mvn-dev/com/acme/lib/maven-metadata.xml"))
	if strings.Join(m.Versioning.Versions, ",") != "1.0.0,1.2.0" {
		t.Fatalf("dev metadata after retention: %v", m.Versioning.Versions)
	}
}

// FuzzParseCoordinates feeds promotion and pin coordinates (client input)
// to the parser: it must never panic, and what it accepts names something.
func FuzzParseCoordinates(f *testing.F) {
	for _, s := range []string{"com.acme:lib:1.0.0", "a:b:c", "::", "com..acme:lib:1", "x:y:1.0-SNAPSHOT"} {
		f.Add(s)
	}
	p := maven.New()
	f.Fuzz(func(t *testing.T, s string) {
		a, err := p.ParseCoordinates(s)
		if err != nil {
			return
		}
		if strings.Count(a.Name, ":") != 1 || a.Version == "" || strings.ContainsAny(a.Name+a.Version, "/\\") {
			t.Fatalf("%q parsed to %+v", s, a)
		}
	})
}
