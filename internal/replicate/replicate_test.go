package replicate_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/replicate"
)

const repos = `
repositories:
  - {key: raw-release, format: raw, kind: local, tier: release}
  - {key: raw-dev, format: raw, kind: local, tier: dev}
`

func target(url string) config.ReplicationTarget {
	return config.ReplicationTarget{Name: "dr", URL: url, Repositories: []string{"raw-rel*"},
		Username: "admin", PasswordEnv: "TEST_DR_PASSWORD", Interval: config.Duration(time.Hour)}
}

func status(t *testing.T, r *replicate.Replicator) replicate.Status {
	t.Helper()
	st := r.Status()
	if len(st) != 1 {
		t.Fatalf("status: %+v", st)
	}
	return st[0]
}

// The replicator's bookkeeping as a user reads it: not in sync before its
// first pass; a change makes it pending with a growing lag until a pass
// carries it; a target that refuses is reported with its message; only the
// repositories the patterns name travel.
func TestReplicatorStatus(t *testing.T) {
	t.Setenv("TEST_DR_PASSWORD", apptest.AdminPassword)
	src := apptest.New(t, repos)
	dst := apptest.New(t, repos)
	r, err := replicate.New(src.App.Repos, []config.ReplicationTarget{target(dst.URL)}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	src.App.Repos.OnChange(r.Changed)
	if s := status(t, r); s.InSync || s.Passes != 0 {
		t.Fatalf("before the first pass: %+v", s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	eventually := func(what string, ok func(replicate.Status) bool) replicate.Status {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s := status(t, r)
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, s)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	s := eventually("first pass", func(s replicate.Status) bool { return s.InSync && s.Passes >= 1 })
	if len(s.Repositories) != 1 || s.Repositories[0] != "raw-release" || s.LastSuccess.IsZero() {
		t.Fatalf("after the first pass: %+v", s)
	}
	src.Put("raw-release", "a.txt", "alpha")
	src.Put("raw-dev", "b.txt", "not replicated")
	eventually("the change carried", func(s replicate.Status) bool { return s.InSync && s.BlobsSent == 1 && s.Changes >= 1 })
	if resp, body := dst.Do(http.MethodGet, "/repository/raw-release/a.txt", nil); resp.StatusCode != 200 || body != "alpha" {
		t.Fatalf("on the target: %d %q", resp.StatusCode, body)
	}
	if resp, _ := dst.Do(http.MethodGet, "/repository/raw-dev/b.txt", nil); resp.StatusCode != 404 {
		t.Fatalf("an unreplicated repository reached the target: %d", resp.StatusCode)
	}

	// The target goes away: the change stays pending, the lag grows, the
	// error is reported.
	dst.Srv.Close()
	src.Put("raw-release", "c.txt", "gamma")
	s = eventually("a refused pass", func(s replicate.Status) bool { return !s.InSync && s.LastError != "" })
	if s.LastErrorAt.IsZero() {
		t.Fatalf("refused pass: %+v", s)
	}
	time.Sleep(50 * time.Millisecond)
	if later := status(t, r); later.LagSeconds <= s.LagSeconds-0.001 || later.InSync {
		t.Fatalf("lag did not grow: %v then %v", s.LagSeconds, later.LagSeconds)
	}
}

// A missing secret is an error when the replicator is built, not a silent
// failure later.
func TestMissingCredentials(t *testing.T) {
	src := apptest.New(t, repos)
	t.Setenv("TEST_DR_PASSWORD", "")
	if _, err := replicate.New(src.App.Repos, []config.ReplicationTarget{target("http://127.0.0.1:1")}, slog.New(slog.DiscardHandler), nil); err == nil {
		t.Fatal("a replicator without its password was built")
	}
}

// A target whose repository does not match says why, and the status
// carries its message.
func TestTargetRefusalIsReported(t *testing.T) {
	t.Setenv("TEST_DR_PASSWORD", apptest.AdminPassword)
	src := apptest.New(t, repos)
	dst := apptest.New(t, "repositories:\n  - {key: raw-release, format: npm, kind: local, tier: release}\n")
	src.Put("raw-release", "a.txt", "alpha")
	r, err := replicate.New(src.App.Repos, []config.ReplicationTarget{target(dst.URL)}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := status(t, r)
		if s.LastError != "" {
			if s.InSync || !strings.Contains(s.LastError, "cannot be applied to raw-release, a npm repository") {
				t.Fatalf("status: %+v", s)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no error reported: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
