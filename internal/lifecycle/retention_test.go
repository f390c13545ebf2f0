package lifecycle_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/lifecycle"
)

const retentionConfig = `
retention: {interval: 0s}
repositories:
  - {key: oci-keep, format: oci, kind: local, tier: dev, retention: {keep_last: 2, max_age_days: 30}}
  - key: oci-ecr
    format: oci
    kind: local
    tier: dev
    retention:
      ecr_policy: |
        {"rules": [
          {"rulePriority": 1, "description": "Rule 1", "selection": {"tagStatus": "tagged", "tagPrefixList": ["prod"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
          {"rulePriority": 2, "description": "Rule 2", "selection": {"tagStatus": "tagged", "tagPrefixList": ["beta"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}
        ]}
  - {key: oci-release, format: oci, kind: local, tier: release, retention: {keep_last: 1}}
  - {key: oci-none, format: oci, kind: local, tier: dev}
`

// clock is a fake clock shared by the repository manager (push times) and
// retention (evaluation time).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var day0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(days int) time.Time { return day0.Add(time.Duration(days) * 24 * time.Hour) }

type ociEnv struct {
	*apptest.Env
	t     *testing.T
	clock *clock
	host  string
}

func newRetentionEnv(t *testing.T) *ociEnv {
	e := apptest.New(t, retentionConfig)
	c := &clock{t: day0}
	e.App.Repos.SetClock(c.now)
	e.App.Retention.Now = c.now
	return &ociEnv{Env: e, t: t, clock: c, host: strings.TrimPrefix(e.URL, "http://")}
}

func (e *ociEnv) ref(s string) name.Reference {
	r, err := name.ParseReference(e.host+"/"+s, name.Insecure)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

var auth = remote.WithAuth(&authn.Basic{Username: "admin", Password: apptest.AdminPassword})

// push writes a random image at repo/image:tags[0] (more tags added) on day d.
func (e *ociEnv) push(d int, repoImage string, tags ...string) v1.Hash {
	e.t.Helper()
	e.clock.set(at(d))
	img, err := random.Image(512, 2)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := remote.Write(e.ref(repoImage+":"+tags[0]), img, auth); err != nil {
		e.t.Fatal(err)
	}
	for _, tag := range tags[1:] {
		if err := remote.Tag(e.ref(repoImage+":"+tag).(name.Tag), img, auth); err != nil {
			e.t.Fatal(err)
		}
	}
	dg, _ := img.Digest()
	return dg
}

func (e *ociEnv) manifestStatus(repoImage string, dg v1.Hash) int {
	resp, _ := e.Admin().Do("HEAD", "/v2/"+repoImage+"/manifests/"+dg.String(), nil,
		"Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	return resp.StatusCode
}

func (e *ociEnv) run(dry bool, repos ...string) lifecycle.RetentionReport {
	var rep lifecycle.RetentionReport
	e.Admin().MustJSON("POST", "/api/v1/retention", map[string]any{"repos": repos, "dry_run": dry}, http.StatusOK, &rep)
	return rep
}

func expiredVersions(r lifecycle.RepoRetention) []string {
	var out []string
	for _, x := range r.Expired {
		out = append(out, x.Version)
	}
	slices.Sort(out)
	return out
}

func sorted(hs ...v1.Hash) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.String())
	}
	slices.Sort(out)
	return out
}

func TestRetentionKeepLastAgePinsDownloads(t *testing.T) {
	e := newRetentionEnv(t)
	var v []v1.Hash
	for i := range 5 {
		tags := []string{"build-" + string(rune('1'+i))}
		if i == 4 {
			tags = append(tags, "latest")
		}
		v = append(v, e.push(i*10, "oci-keep/team/api", tags...))
	}
	// A referrer (an SBOM-like artifact) attached to v[2]: it goes with it.
	sbom, _ := random.Image(128, 1)
	desc, _ := remote.Head(e.ref("oci-keep/team/api@"+v[2].String()), auth)
	withSubject := mutate.Subject(sbom, *desc).(v1.Image)
	sd, _ := withSubject.Digest()
	if err := remote.Write(e.ref("oci-keep/team/api@"+sd.String()), withSubject, auth); err != nil {
		t.Fatal(err)
	}

	e.clock.set(at(75)) // every version is older than 30 days; v3, v4 are the newest two
	// Pin v0 through the API (as a deployment system would); v1 is pulled on
	// day 70.
	var pin map[string]any
	e.Admin().MustJSON("POST", "/api/v1/repositories/oci-keep/pins", map[string]any{"artifact": "team/api:build-1", "reason": "prod-eu"}, http.StatusCreated, &pin)
	if pin["version"] != v[0].String() || pin["created_by"] != "admin" {
		t.Fatalf("pin: %v", pin)
	}
	e.clock.set(at(70))
	if _, err := remote.Image(e.ref("oci-keep/team/api:build-2"), auth); err != nil { // a pull of v1's manifest
		t.Fatal(err)
	}
	e.App.Repos.FlushDownloads()
	e.clock.set(at(75))

	dry := e.run(true, "oci-keep")
	r := dry.Repos[0]
	if got, want := expiredVersions(r), sorted(v[2]); !slices.Equal(got, want) {
		t.Fatalf("dry run would expire %v, want %v (%+v)", got, want, r)
	}
	if x := r.Expired[0]; !strings.Contains(x.Rule, "keep_last 2") || !strings.Contains(x.Rule, "max_age_days 30") || x.Tags[0] != "build-3" {
		t.Errorf("dry-run item: %+v", x)
	}
	reasons := map[string]string{}
	for _, p := range r.Protected {
		reasons[p.Version] = p.Reason
	}
	if !strings.Contains(reasons[v[0].String()], "pinned by admin: prod-eu") || !strings.Contains(reasons[v[1].String()], "downloaded") {
		t.Errorf("protections: %v", reasons)
	}
	if s := e.manifestStatus("oci-keep/team/api", v[2]); s != 200 {
		t.Fatalf("a dry run removed v2: %d", s)
	}

	img2, _ := remote.Image(e.ref("oci-keep/team/api@"+v[2].String()), auth)
	layers2, _ := img2.Layers()
	real := e.run(false, "oci-keep")
	if got := expiredVersions(real.Repos[0]); !slices.Equal(got, sorted(v[2])) {
		t.Fatalf("run expired %v", got)
	}
	if w := real.Repos[0].Expired[0].With; !slices.Equal(w, []string{sd.String()}) {
		t.Errorf("went with it: %v, want the referrer %s", w, sd)
	}
	for i, want := range []int{200, 200, 404, 200, 200} {
		if s := e.manifestStatus("oci-keep/team/api", v[i]); s != want {
			t.Errorf("v%d: HEAD %d, want %d", i, s, want)
		}
	}
	if s := e.manifestStatus("oci-keep/team/api", sd); s != 404 {
		t.Errorf("the referrer of an expired image is still there: %d", s)
	}
	// v2's layers were its own: their assets are gone, so GC can reclaim them.
	for _, l := range layers2 {
		d, _ := l.Digest()
		if resp, _ := e.Admin().Do("HEAD", "/v2/oci-keep/team/api/blobs/"+d.String(), nil); resp.StatusCode != 404 {
			t.Errorf("layer %s of the expired image: HEAD %d, want 404", d, resp.StatusCode)
		}
	}
	img3, _ := remote.Image(e.ref("oci-keep/team/api@"+v[3].String()), auth)
	ls3, _ := img3.Layers()
	if rc, err := ls3[0].Compressed(); err != nil {
		t.Fatalf("a kept image's layer: %v", err)
	} else {
		rc.Close()
	}
	var audit []map[string]any
	e.Admin().MustJSON("GET", "/api/v1/audit?repo=oci-keep&limit=1", nil, 200, &audit)
	if audit[0]["action"] != "retention_expire" || audit[0]["actor"] != "retention" {
		t.Errorf("audit: %v", audit[0])
	}
	var last lifecycle.RetentionReport
	e.Admin().MustJSON("GET", "/api/v1/retention", nil, 200, &last)
	if last.DryRun || last.Expired != 1 {
		t.Errorf("last report: %+v", last)
	}

	// Unpinned and not downloaded again, v0 and v1 go on day 101.
	e.Admin().MustJSON("DELETE", "/api/v1/repositories/oci-keep/pins?artifact=team/api@"+v[0].String(), nil, 204, nil)
	e.clock.set(at(101))
	if got := expiredVersions(e.run(false, "oci-keep").Repos[0]); !slices.Equal(got, sorted(v[0], v[1])) {
		t.Fatalf("second run expired %v", got)
	}
}

func mustRepo(t *testing.T, e *ociEnv, key string) string {
	r, err := e.App.Repos.Repo(key)
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// ECR's documented "Example A": rule 1 expires A; rule 2 would expire A and
// B, but A is gone and B was selected by rule 1.
func TestRetentionECRExampleA(t *testing.T) {
	e := newRetentionEnv(t)
	a := e.push(0, "oci-ecr/app", "beta-1", "prod-1")
	b := e.push(1, "oci-ecr/app", "beta-2", "prod-2")
	c := e.push(2, "oci-ecr/app", "beta-3")
	e.clock.set(at(10))
	rep := e.run(false, "oci-ecr")
	if got := expiredVersions(rep.Repos[0]); !slices.Equal(got, sorted(a)) {
		t.Fatalf("expired %v, want A %s", got, a)
	}
	if r := rep.Repos[0].Expired[0].Rule; !strings.Contains(r, "rulePriority 1 (Rule 1)") {
		t.Errorf("rule: %q", r)
	}
	for _, h := range []v1.Hash{b, c} {
		if s := e.manifestStatus("oci-ecr/app", h); s != 200 {
			t.Errorf("%s: %d", h, s)
		}
	}
	tags, err := remote.List(e.ref("oci-ecr/app").Context(), auth)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(tags, "prod-1") || slices.Contains(tags, "beta-1") || !slices.Contains(tags, "beta-3") {
		t.Errorf("tags after expiry: %v", tags)
	}
}

// Release repositories never expire anything, and without rules nothing
// expires (retention is opt-in).
func TestRetentionReleaseAndOptIn(t *testing.T) {
	e := newRetentionEnv(t)
	var hs []v1.Hash
	for i := range 3 {
		hs = append(hs, e.push(i, "oci-release/app", "v"+string(rune('1'+i))))
		hs = append(hs, e.push(i, "oci-none/app", "v"+string(rune('1'+i))))
	}
	e.clock.set(at(5000))
	rep := e.run(false)
	skipped := map[string]string{}
	for _, r := range rep.Repos {
		skipped[r.Repo] = r.Skipped
	}
	if !strings.Contains(skipped["oci-release"], "release repositories never expire") || !strings.Contains(skipped["oci-none"], "opt-in") {
		t.Fatalf("skipped: %v", skipped)
	}
	if rep.Expired != 0 {
		t.Fatalf("expired %d", rep.Expired)
	}
	for i, h := range hs {
		key := []string{"oci-release/app", "oci-none/app"}[i%2]
		if s := e.manifestStatus(key, h); s != 200 {
			t.Errorf("%s %s: %d", key, h, s)
		}
	}
	// Retention of a remote or unknown repository is refused clearly.
	resp, body := e.Admin().JSON("POST", "/api/v1/retention", map[string]any{"repos": []string{"nope"}})
	if resp.StatusCode != 404 || !strings.Contains(body, "nope") {
		t.Errorf("unknown repo: %d %s", resp.StatusCode, body)
	}
}

func mustParse(tb testing.TB, s string) name.Reference {
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}
