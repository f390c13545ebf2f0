package lifecycle_test

import (
	"net/http"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

const promoteConfig = `
repositories:
  - {key: oci-dev, format: oci, kind: local, tier: dev}
  - {key: oci-staging, format: oci, kind: local, tier: staging}
  - key: oci-release
    format: oci
    kind: local
    tier: release
    promotion: {require_properties: {ci.tests: passed}, require_approval: true}
  - {key: raw-dev, format: raw, kind: local, tier: dev}
  - {key: raw-release, format: raw, kind: local, tier: release}
  - {key: raw-small, format: raw, kind: local, tier: staging, quota: 5}
  - {key: npm-dev, format: npm, kind: local, tier: dev}
  - {key: oci-remote, format: oci, kind: remote, upstream: {url: "http://127.0.0.1:9"}}
`

type promotion struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Source      string `json:"source"`
	Target      string `json:"target"`
	Digest      string `json:"digest"`
	RequestedBy string `json:"requested_by"`
	DecidedBy   string `json:"decided_by"`
	Reason      string `json:"reason"`
	Gates       []struct {
		Gate    string `json:"gate"`
		Passed  bool   `json:"passed"`
		Pending bool   `json:"pending"`
		Detail  string `json:"detail"`
	} `json:"gates"`
}

type refusal struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Promotion promotion `json:"promotion"`
}

func newPromoteEnv(t *testing.T) *ociEnv {
	e := apptest.New(t, promoteConfig)
	return &ociEnv{Env: e, t: t, clock: &clock{t: day0}, host: strings.TrimPrefix(e.URL, "http://")}
}

func promote(c apptest.Caller, src, dst, artifact string, want int, out any) {
	c.MustJSON("POST", "/api/v1/promotions", map[string]any{"source": src, "target": dst, "artifact": artifact}, want, out)
}

// An OCI promotion copies the whole graph by reference: an index, its child
// manifests, their layers, the tag it was named by and the referrers of the
// index; nothing is uploaded and no blob is added.
func TestPromoteOCIGraph(t *testing.T) {
	e := newPromoteEnv(t)
	a, _ := random.Image(1024, 3)
	b, _ := random.Image(1024, 2)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: a, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: b, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	if err := remote.WriteIndex(e.ref("oci-dev/team/api:v2.3.0"), idx, auth); err != nil {
		t.Fatal(err)
	}
	id, _ := idx.Digest()
	sbom, _ := random.Image(256, 1)
	desc, _ := remote.Head(e.ref("oci-dev/team/api@"+id.String()), auth)
	sig := mutate.Subject(sbom, *desc).(v1.Image)
	sd, _ := sig.Digest()
	if err := remote.Write(e.ref("oci-dev/team/api@"+sd.String()), sig, auth); err != nil {
		t.Fatal(err)
	}
	before := e.Storage()

	var rec promotion
	promote(e.Admin(), "oci-dev", "oci-staging", "team/api:v2.3.0", http.StatusCreated, &rec)
	if rec.State != "promoted" || rec.Digest != id.String() || rec.RequestedBy != "admin" {
		t.Fatalf("record: %+v", rec)
	}
	after := e.Storage()
	if after.Physical != before.Physical || after.LogicalBytes <= before.LogicalBytes {
		t.Errorf("promotion stored bytes: physical %d/%d blobs before, %d/%d after", before.Physical.Blobs, before.Physical.Bytes, after.Physical.Blobs, after.Physical.Bytes)
	}
	// A client pulls the whole index from staging, by tag.
	got, err := remote.Index(e.ref("oci-staging/team/api:v2.3.0"), auth)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := got.IndexManifest()
	for _, m := range im.Manifests {
		img, err := got.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		ls, _ := img.Layers()
		for _, l := range ls {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("layer of %s in staging: %v", m.Digest, err)
			}
			rc.Close()
		}
	}
	// The referrer came along.
	refs, err := remote.Referrers(e.ref("oci-staging/team/api@"+id.String()).Context().Digest(id.String()), auth)
	if err != nil {
		t.Fatal(err)
	}
	if rm, _ := refs.IndexManifest(); len(rm.Manifests) != 1 || rm.Manifests[0].Digest != sd {
		t.Errorf("referrers in staging: %+v", rm)
	}
	// Identical re-promotion is fine.
	promote(e.Admin(), "oci-dev", "oci-staging", "team/api@"+id.String(), http.StatusCreated, &rec)

	// Listed at /api/v1/promotions and on the artifact.
	var list []promotion
	e.Admin().MustJSON("GET", "/api/v1/promotions?repo=oci-staging&artifact=team/api:v2.3.0", nil, 200, &list)
	if len(list) != 2 || list[0].Target != "oci-staging" || list[0].Digest != id.String() {
		t.Errorf("promotions of the artifact: %+v", list)
	}

	// Staging is immutable: v2.3.0 re-pushed in dev with other content
	// cannot replace it there.
	c, _ := random.Image(1024, 1)
	if err := remote.Write(e.ref("oci-dev/team/api:v2.3.0"), c, auth); err != nil {
		t.Fatal(err)
	}
	var ref refusal
	promote(e.Admin(), "oci-dev", "oci-staging", "team/api:v2.3.0", http.StatusConflict, &ref)
	if ref.Promotion.State != "refused" || !strings.Contains(ref.Error.Message, "tag v2.3.0 of team/api already points at") ||
		!strings.Contains(ref.Error.Message, "staging tier") {
		t.Fatalf("tier refusal: %+v", ref)
	}
	if g := ref.Promotion.Gates; len(g) == 0 || g[len(g)-1].Gate != "tier" {
		t.Errorf("gates of the refusal: %+v", g)
	}
	cd, _ := c.Digest()
	if s := e.manifestStatus("oci-staging/team/api", cd); s != 404 {
		t.Errorf("the refused image reached staging: %d", s)
	}
	if got, _ := remote.Head(e.ref("oci-staging/team/api:v2.3.0"), auth); got == nil || got.Digest != id {
		t.Errorf("staging's v2.3.0 moved: %+v", got)
	}
}

// Gates of the release repository: properties, then approval by a second
// user with promote permission.
func TestPromoteGates(t *testing.T) {
	e := newPromoteEnv(t)
	for _, u := range []string{"alice", "bob", "carol"} {
		e.CreateUser(u, u+"-password")
	}
	e.Grant("user", "alice", "oci-*", "read", "write", "promote")
	e.Grant("user", "bob", "oci-*", "read", "promote")
	e.Grant("user", "carol", "oci-*", "read", "write")
	alice, bob, carol := e.As("alice", "alice-password"), e.As("bob", "bob-password"), e.As("carol", "carol-password")
	dg := e.push(0, "oci-dev/team/api", "v1")

	// Without promote permission: refused, nothing recorded.
	resp, body := carol.JSON("POST", "/api/v1/promotions", map[string]any{"source": "oci-dev", "target": "oci-release", "artifact": "team/api:v1"})
	if resp.StatusCode != 403 || !strings.Contains(body, "may not promote repository oci-release") {
		t.Fatalf("carol: %d %s", resp.StatusCode, body)
	}

	var ref refusal
	promote(alice, "oci-dev", "oci-release", "team/api:v1", http.StatusForbidden, &ref)
	if !strings.Contains(ref.Error.Message, "gate require_properties failed: ci.tests is not set (want passed)") {
		t.Fatalf("properties refusal: %+v", ref)
	}
	// CI records a failure, then a pass.
	var props map[string]any
	carol.MustJSON("PUT", "/api/v1/repositories/oci-dev/properties", map[string]any{"artifact": "team/api:v1", "properties": map[string]any{"ci.tests": "failed"}}, 200, &props)
	promote(alice, "oci-dev", "oci-release", "team/api:v1", http.StatusForbidden, &ref)
	if !strings.Contains(ref.Error.Message, "ci.tests is failed (want passed)") {
		t.Fatalf("properties refusal: %+v", ref)
	}
	carol.MustJSON("PUT", "/api/v1/repositories/oci-dev/properties", map[string]any{"artifact": "team/api@" + dg.String(), "properties": map[string]any{"ci.tests": "passed", "ci.build": "42"}}, 200, &props)
	if p := props["properties"].(map[string]any); p["ci.tests"] != "passed" || p["ci.build"] != "42" {
		t.Fatalf("properties: %v", props)
	}

	var rec promotion
	promote(alice, "oci-dev", "oci-release", "team/api:v1", http.StatusAccepted, &rec)
	if rec.State != "pending" {
		t.Fatalf("with approval required: %+v", rec)
	}
	if s := e.manifestStatus("oci-release/team/api", dg); s != 404 {
		t.Fatalf("a pending promotion copied: %d", s)
	}
	// The requester cannot approve; a user without promote cannot either.
	resp, body = alice.JSON("POST", "/api/v1/promotions/"+rec.ID+"/approve", nil)
	if resp.StatusCode != 403 || !strings.Contains(body, "cannot approve it") {
		t.Fatalf("self-approval: %d %s", resp.StatusCode, body)
	}
	resp, _ = carol.JSON("POST", "/api/v1/promotions/"+rec.ID+"/approve", nil)
	if resp.StatusCode != 403 {
		t.Fatalf("carol approving: %d", resp.StatusCode)
	}
	bob.MustJSON("POST", "/api/v1/promotions/"+rec.ID+"/approve", nil, 200, &rec)
	if rec.State != "promoted" || rec.DecidedBy != "bob" || rec.RequestedBy != "alice" {
		t.Fatalf("approved: %+v", rec)
	}
	gates := map[string]string{}
	for _, g := range rec.Gates {
		if !g.Passed {
			t.Errorf("gate %s did not pass: %s", g.Gate, g.Detail)
		}
		gates[g.Gate] = g.Detail
	}
	if gates["require_approval"] != "approved by bob" || !strings.Contains(gates["require_properties"], "ci.tests=passed") {
		t.Errorf("gates: %v", gates)
	}
	if s := e.manifestStatus("oci-release/team/api", dg); s != 200 {
		t.Fatalf("approved promotion did not copy: %d", s)
	}
	// Properties travelled with it.
	e.Admin().MustJSON("GET", "/api/v1/repositories/oci-release/properties?artifact=team/api:v1", nil, 200, &props)
	if p := props["properties"].(map[string]any); p["ci.build"] != "42" {
		t.Errorf("properties in release: %v", props)
	}
	resp, _ = bob.JSON("POST", "/api/v1/promotions/"+rec.ID+"/approve", nil)
	if resp.StatusCode != 400 {
		t.Errorf("approving twice: %d", resp.StatusCode)
	}
	var one promotion
	alice.MustJSON("GET", "/api/v1/promotions/"+rec.ID, nil, 200, &one)
	if one.State != "promoted" {
		t.Errorf("record: %+v", one)
	}
}

func TestPromoteRawAndRefusals(t *testing.T) {
	e := newPromoteEnv(t)
	e.Put("raw-dev", "builds/app-1.0.tgz", "release candidate")
	var rec promotion
	promote(e.Admin(), "raw-dev", "raw-release", "builds/app-1.0.tgz", http.StatusCreated, &rec)
	resp, body := e.Admin().Do("GET", "/repository/raw-release/builds/app-1.0.tgz", nil)
	if resp.StatusCode != 200 || body != "release candidate" {
		t.Fatalf("promoted raw file: %d %q", resp.StatusCode, body)
	}
	// A pin outlives its file, and can still be removed by its coordinates.
	e.Put("raw-dev", "builds/tmp.tgz", "x")
	e.Admin().MustJSON("POST", "/api/v1/repositories/raw-dev/pins", map[string]any{"artifact": "builds/tmp.tgz"}, http.StatusCreated, nil)
	e.Admin().MustJSON("DELETE", "/api/v1/repositories/raw-dev/artifacts/builds/tmp.tgz", nil, http.StatusOK, nil)
	e.Admin().MustJSON("DELETE", "/api/v1/repositories/raw-dev/pins?artifact=builds/tmp.tgz", nil, http.StatusNoContent, nil)
	var pins []any
	e.Admin().MustJSON("GET", "/api/v1/repositories/raw-dev/pins", nil, http.StatusOK, &pins)
	if len(pins) != 0 {
		t.Errorf("pins left: %v", pins)
	}

	e.Put("raw-dev", "builds/app-1.0.tgz", "rebuilt")
	var ref refusal
	promote(e.Admin(), "raw-dev", "raw-release", "builds/app-1.0.tgz", http.StatusConflict, &ref)
	if !strings.Contains(ref.Error.Message, "already exists in raw-release with different content") {
		t.Errorf("raw tier refusal: %+v", ref)
	}
	// Promotion adds to the target's logical usage: its quota holds.
	var q refusal
	promote(e.Admin(), "raw-dev", "raw-small", "builds/app-1.0.tgz", http.StatusInsufficientStorage, &q)
	if !strings.Contains(q.Error.Message, "the quota of raw-small is full") || q.Promotion.State != "refused" {
		t.Errorf("quota refusal: %+v", q)
	}
	if resp, _ := e.Admin().Do("GET", "/repository/raw-small/builds/app-1.0.tgz", nil); resp.StatusCode != 404 {
		t.Errorf("refused promotion left the file: %d", resp.StatusCode)
	}
	for _, c := range []struct {
		body   map[string]any
		status int
		want   string
	}{
		{map[string]any{"source": "raw-dev", "target": "npm-dev", "artifact": "x"}, 400, "stays within a format"},
		{map[string]any{"source": "oci-remote", "target": "oci-dev", "artifact": "a:b"}, 400, "promotion is between local repositories"},
		{map[string]any{"source": "oci-dev", "target": "oci-staging", "artifact": "team/api"}, 400, "no tag or digest"},
		{map[string]any{"source": "oci-dev", "target": "oci-staging", "artifact": "team/api:nope"}, 404, "tag nope of team/api not found in oci-dev"},
		{map[string]any{"source": "raw-dev", "target": "raw-release", "artifact": "../etc/passwd"}, 400, "not a file path"},
		{map[string]any{"source": "nope", "target": "raw-release", "artifact": "a"}, 404, "nope"},
	} {
		resp, body := e.Admin().JSON("POST", "/api/v1/promotions", c.body)
		if resp.StatusCode != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%v: %d %s, want %d mentioning %q", c.body, resp.StatusCode, body, c.status, c.want)
		}
	}
}
