package repo_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/repo"
)

func TestTierPolicy(t *testing.T) {
	tests := []struct {
		tier              repo.Tier
		overwrite, delete bool
		name              string
	}{
		{repo.Dev, true, true, "dev tier: overwrite and delete allowed"},
		{repo.Staging, false, true, "staging tier: no overwrite"},
		{repo.Release, false, false, "release tier: no overwrite, no delete"},
	}
	for _, tt := range tests {
		p := repo.TierPolicy(tt.tier)
		if p.Overwrite != tt.overwrite || p.Delete != tt.delete {
			t.Errorf("TierPolicy(%s) = %+v", tt.tier, p)
		}
		r := &repo.Repository{Tier: tt.tier, Policy: p}
		if got := r.PolicyName(); got != tt.name {
			t.Errorf("PolicyName(%s) = %q, want %q", tt.tier, got, tt.name)
		}
	}
}

const tierConfig = `
repositories:
  - {key: t-dev, format: raw, kind: local, tier: dev}
  - {key: t-default, format: raw, kind: local}
  - {key: t-staging, format: raw, kind: local, tier: staging}
  - {key: t-release, format: raw, kind: local, tier: release}
  - {key: t-staging-ow, format: raw, kind: local, tier: staging, overwrite: true}
  - {key: t-dev-nodelete, format: raw, kind: local, tier: dev, delete: false}
  - {key: t-release-delete, format: raw, kind: local, tier: release, delete: true}
`

type putBody struct {
	Unchanged bool `json:"unchanged"`
}

func put(t *testing.T, e *apptest.Env, repoKey, path, content string, header ...string) (int, string) {
	t.Helper()
	resp, body := e.Admin().Do(http.MethodPut, "/repository/"+repoKey+"/"+path, strings.NewReader(content), header...)
	return resp.StatusCode, body
}

func get(t *testing.T, e *apptest.Env, repoKey, path string) (int, string) {
	t.Helper()
	resp, body := e.Admin().Do(http.MethodGet, "/repository/"+repoKey+"/"+path, nil)
	return resp.StatusCode, body
}

func del(t *testing.T, e *apptest.Env, repoKey, path string) (int, string) {
	t.Helper()
	resp, body := e.Admin().Do(http.MethodDelete, "/repository/"+repoKey+"/"+path, nil)
	return resp.StatusCode, body
}

func message(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Errors []struct{ Message string } `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || len(e.Errors) == 0 {
		t.Fatalf("not an error body: %q", body)
	}
	return e.Errors[0].Message
}

func wantContent(t *testing.T, e *apptest.Env, repoKey, path, want string) {
	t.Helper()
	if st, got := get(t, e, repoKey, path); st != http.StatusOK || got != want {
		t.Errorf("GET %s/%s: %d %q, want %q", repoKey, path, st, got, want)
	}
}

func wantMessage(t *testing.T, body string, parts ...string) {
	t.Helper()
	msg := message(t, body)
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("message %q does not say %q", msg, p)
		}
	}
}

func TestDevTier(t *testing.T) {
	e := apptest.New(t, tierConfig)
	for _, key := range []string{"t-dev", "t-default"} {
		t.Run(key, func(t *testing.T) {
			e := e.WithT(t)
			if st, body := put(t, e, key, "app/snapshot.jar", "build 1"); st != http.StatusCreated {
				t.Fatalf("first PUT: %d %s", st, body)
			}
			st, body := put(t, e, key, "app/snapshot.jar", "build 2")
			if st != http.StatusOK {
				t.Fatalf("overwrite: %d %s", st, body)
			}
			var pb putBody
			json.Unmarshal([]byte(body), &pb)
			if pb.Unchanged {
				t.Errorf("an overwrite with new content reports unchanged")
			}
			wantContent(t, e, key, "app/snapshot.jar", "build 2")
			if st, body := del(t, e, key, "app/snapshot.jar"); st != http.StatusNoContent {
				t.Fatalf("DELETE: %d %s", st, body)
			}
			if st, _ := get(t, e, key, "app/snapshot.jar"); st != http.StatusNotFound {
				t.Errorf("GET after DELETE: %d", st)
			}
		})
	}
	var r struct {
		Tier   string      `json:"tier"`
		Policy repo.Policy `json:"policy"`
	}
	e.Admin().MustJSON(http.MethodGet, "/api/v1/repositories/t-default", nil, http.StatusOK, &r)
	if r.Tier != "dev" || !r.Policy.Overwrite || !r.Policy.Delete {
		t.Errorf("a local repository without a tier: %+v", r)
	}
}

func TestStagingTier(t *testing.T) {
	e := apptest.New(t, tierConfig)
	if st, body := put(t, e, "t-staging", "app/1.0/app.jar", "release candidate"); st != http.StatusCreated {
		t.Fatalf("first PUT: %d %s", st, body)
	}
	blobs := e.Storage().Physical.Blobs

	st, body := put(t, e, "t-staging", "app/1.0/app.jar", "something else")
	if st != http.StatusConflict {
		t.Fatalf("overwrite: %d %s", st, body)
	}
	wantMessage(t, body, "app/1.0/app.jar", "t-staging", "staging tier: no overwrite")

	// Refused before reading the body when the declared digest differs.
	other := sha256.Sum256([]byte("yet another"))
	st, body = put(t, e, "t-staging", "app/1.0/app.jar", "yet another", "X-Checksum-Sha256", hex.EncodeToString(other[:]))
	if st != http.StatusConflict {
		t.Fatalf("overwrite with a declared digest: %d %s", st, body)
	}
	wantMessage(t, body, "t-staging", "staging tier: no overwrite")

	wantContent(t, e, "t-staging", "app/1.0/app.jar", "release candidate")
	if got := e.Storage().Physical.Blobs; got != blobs {
		t.Errorf("refused overwrites left blobs: %d -> %d", blobs, got)
	}

	// A CI re-run uploading identical bytes succeeds without change.
	same := sha256.Sum256([]byte("release candidate"))
	for _, header := range [][]string{nil, {"X-Checksum-Sha256", hex.EncodeToString(same[:])}} {
		st, body = put(t, e, "t-staging", "app/1.0/app.jar", "release candidate", header...)
		if st != http.StatusOK {
			t.Fatalf("identical re-upload %v: %d %s", header, st, body)
		}
		var pb putBody
		if err := json.Unmarshal([]byte(body), &pb); err != nil || !pb.Unchanged {
			t.Errorf("identical re-upload does not say unchanged: %s", body)
		}
	}
	wantContent(t, e, "t-staging", "app/1.0/app.jar", "release candidate")

	// The audit log records one deploy and no overwrite.
	var events []struct{ Action, Repo, Path string }
	e.Admin().MustJSON(http.MethodGet, "/api/v1/audit?repo=t-staging", nil, http.StatusOK, &events)
	if len(events) != 1 || events[0].Action != "deploy" || events[0].Path != "app/1.0/app.jar" {
		t.Errorf("audit: %+v", events)
	}
}

func TestReleaseTier(t *testing.T) {
	e := apptest.New(t, tierConfig)
	if st, body := put(t, e, "t-release", "app/2.0/app.jar", "final"); st != http.StatusCreated {
		t.Fatalf("first PUT: %d %s", st, body)
	}
	st, body := put(t, e, "t-release", "app/2.0/app.jar", "changed")
	if st != http.StatusConflict {
		t.Fatalf("overwrite: %d %s", st, body)
	}
	wantMessage(t, body, "t-release", "release tier: no overwrite, no delete")

	if st, body := put(t, e, "t-release", "app/2.0/app.jar", "final"); st != http.StatusOK {
		t.Errorf("identical re-upload: %d %s", st, body)
	}

	for _, path := range []string{"app/2.0/app.jar", "app/2.0", "app/2.0/", "app"} {
		st, body = del(t, e, "t-release", path)
		if st != http.StatusConflict {
			t.Fatalf("DELETE %s: %d %s", path, st, body)
		}
		wantMessage(t, body, "t-release", "deprecate")
	}
	resp, text := e.Admin().Do(http.MethodDelete, "/api/v1/repositories/t-release/artifacts/app/2.0/app.jar", nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(text, "deprecate") || !strings.Contains(text, `"IMMUTABLE"`) {
		t.Errorf("API DELETE: %d %s", resp.StatusCode, text)
	}
	wantContent(t, e, "t-release", "app/2.0/app.jar", "final")

	// Deprecation is the way out.
	e.Admin().MustJSON(http.MethodPost, "/api/v1/repositories/t-release/deprecations", map[string]string{"path": "app/2.0/app.jar", "message": "use 2.1"}, http.StatusOK, nil)
	resp, _ = e.Admin().Do(http.MethodGet, "/repository/t-release/app/2.0/app.jar", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Coffer-Deprecated") != "use 2.1" {
		t.Errorf("deprecated artifact: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestExplicitPolicies(t *testing.T) {
	e := apptest.New(t, tierConfig)

	// overwrite: true on a staging repository.
	put(t, e, "t-staging-ow", "x.bin", "one")
	if st, body := put(t, e, "t-staging-ow", "x.bin", "two"); st != http.StatusOK {
		t.Fatalf("overwrite allowed explicitly: %d %s", st, body)
	}
	wantContent(t, e, "t-staging-ow", "x.bin", "two")

	// delete: false on a dev repository: overwrite still allowed, delete not.
	put(t, e, "t-dev-nodelete", "x.bin", "one")
	if st, body := put(t, e, "t-dev-nodelete", "x.bin", "two"); st != http.StatusOK {
		t.Fatalf("dev overwrite: %d %s", st, body)
	}
	st, body := del(t, e, "t-dev-nodelete", "x.bin")
	if st != http.StatusConflict {
		t.Fatalf("delete refused explicitly: %d %s", st, body)
	}
	wantMessage(t, body, "t-dev-nodelete", "no delete")
	wantContent(t, e, "t-dev-nodelete", "x.bin", "two")

	// delete: true on a release repository.
	put(t, e, "t-release-delete", "x.bin", "one")
	if st, body := del(t, e, "t-release-delete", "x.bin"); st != http.StatusNoContent {
		t.Fatalf("delete allowed explicitly: %d %s", st, body)
	}

	// The effective policies are visible in the API.
	for key, want := range map[string]repo.Policy{
		"t-staging-ow":     {Overwrite: true, Delete: true},
		"t-dev-nodelete":   {Overwrite: true, Delete: false},
		"t-release-delete": {Overwrite: false, Delete: true},
		"t-release":        {Overwrite: false, Delete: false},
		"t-staging":        {Overwrite: false, Delete: true},
	} {
		var r struct {
			Policy repo.Policy `json:"policy"`
		}
		e.Admin().MustJSON(http.MethodGet, "/api/v1/repositories/"+key, nil, http.StatusOK, &r)
		if r.Policy != want {
			t.Errorf("%s policy = %+v, want %+v", key, r.Policy, want)
		}
	}
}

func TestConcurrentPutsToStaging(t *testing.T) {
	e := apptest.New(t, tierConfig)
	const n = 8
	type result struct {
		status  int
		body    string
		content string
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			content := fmt.Sprintf("content from writer %d: %s", i, strings.Repeat(string(rune('a'+i)), 64<<10))
			req := e.Admin().Request(http.MethodPut, "/repository/t-staging/race/app.bin", strings.NewReader(content))
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results[i] = result{status: -1, body: err.Error()}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			results[i] = result{resp.StatusCode, string(b), content}
		}()
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, r := range results {
		switch r.status {
		case http.StatusCreated:
			if winner >= 0 {
				t.Fatalf("writers %d and %d both succeeded", winner, i)
			}
			winner = i
		case http.StatusConflict:
			wantMessage(t, r.body, "t-staging", "staging tier: no overwrite")
		default:
			t.Errorf("writer %d: %d %s", i, r.status, r.body)
		}
	}
	if winner < 0 {
		t.Fatal("no writer succeeded")
	}
	wantContent(t, e, "t-staging", "race/app.bin", results[winner].content)
	s := e.Storage()
	for _, r := range s.Repositories {
		if r.Key == "t-staging" && (r.Assets != 1 || r.Bytes != int64(len(results[winner].content))) {
			t.Errorf("t-staging usage: %+v", r)
		}
	}
	if s.Physical.Blobs != 1 {
		t.Errorf("losing writers left blob rows: %+v", s.Physical)
	}
}

func TestConcurrentIdenticalPuts(t *testing.T) {
	e := apptest.New(t, tierConfig)
	const n = 6
	content := strings.Repeat("same bytes ", 10000)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := e.Admin().Request(http.MethodPut, "/repository/t-release/same.bin", strings.NewReader(content))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	created := 0
	for i, st := range statuses {
		switch st {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Errorf("writer %d: %d", i, st)
		}
	}
	if created != 1 {
		t.Errorf("%d writers created the path, want 1 (%v)", created, statuses)
	}
	wantContent(t, e, "t-release", "same.bin", content)
}
