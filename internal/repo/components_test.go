package repo_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

func adminCtx(t *testing.T, e *apptest.Env) context.Context {
	u, err := e.App.Store.GetUser(context.Background(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	return auth.WithPrincipal(context.Background(), &auth.Principal{User: u})
}

// Formats group uploads into components, add their own rules in the commit
// transaction, and learn of changes through generations.
func TestComponentsThroughTheManager(t *testing.T) {
	e := apptest.New(t, `repositories:
  - {key: dev, format: raw, kind: local, tier: dev}
  - {key: rel, format: raw, kind: local, tier: release}
  - {key: v, format: raw, kind: virtual, members: [rel, dev], default_deploy: dev}
`)
	m := e.App.Repos
	ctx := adminCtx(t, e)
	dev, _ := m.Repo("dev")
	rel, _ := m.Repo("rel")
	v, _ := m.Repo("v")

	refuseExisting := func(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
		if _, err := tx.GetComponent(ctx, target.ID, "pkg", "1.0.0"); err == nil {
			return errs.New(errs.Exists, "pkg@1.0.0 is already published")
		}
		return nil
	}
	g0 := m.Generation(dev.ID, "pkg")
	res, err := m.Put(ctx, v, "pkg/-/pkg-1.0.0.tgz", strings.NewReader("tarball"), repo.PutOptions{
		Size:       7,
		Component:  &repo.ComponentSpec{Name: "pkg", Version: "1.0.0", Attributes: []byte(`{"main":"index.js"}`)},
		Attributes: []byte(`{"kind":"tarball"}`),
		Check:      refuseExisting,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Asset.Repo.Key != "dev" || res.Asset.ComponentID == "" {
		t.Fatalf("put via virtual: %+v", res.Asset)
	}
	if m.Generation(dev.ID, "pkg") == g0 {
		t.Fatal("a put with a component did not bump the generation")
	}
	comp, err := e.App.Store.GetComponent(ctx, dev.ID, "pkg", "1.0.0")
	if err != nil || string(comp.Attributes) != `{"main":"index.js"}` || comp.CreatedBy != "admin" {
		t.Fatalf("component: %+v, %v", comp, err)
	}
	// The format's own rule refuses a second publish, nothing stored.
	_, err = m.Put(ctx, dev, "pkg/-/pkg-1.0.0-other.tgz", strings.NewReader("other"), repo.PutOptions{
		Size: 5, Component: &repo.ComponentSpec{Name: "pkg", Version: "1.0.0"}, Check: refuseExisting,
	})
	if !errors.Is(err, errs.Exists) {
		t.Fatalf("second publish: %v", err)
	}
	if _, err := e.App.Store.GetAsset(ctx, dev.ID, "pkg/-/pkg-1.0.0-other.tgz"); !errors.Is(err, errs.NotFound) {
		t.Fatalf("refused publish stored an asset: %v", err)
	}
	if ok, _ := m.NameInLocals(ctx, v, "pkg"); !ok {
		t.Fatal("NameInLocals does not see pkg in dev")
	}
	if ok, _ := m.NameInLocals(ctx, v, "other"); ok {
		t.Fatal("NameInLocals sees a name nobody has")
	}

	// Mutate: a tag move on dev, an unpublish refused on release.
	g1 := m.Generation(dev.ID, "pkg")
	err = m.Mutate(ctx, dev, auth.Write, "pkg", "dist-tag", func(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
		return tx.SetTag(ctx, &meta.Tag{RepoID: target.ID, Name: "pkg", Tag: "latest", Target: "1.0.0"})
	})
	if err != nil || m.Generation(dev.ID, "pkg") == g1 {
		t.Fatalf("Mutate: %v", err)
	}
	err = m.Mutate(ctx, rel, auth.Delete, "pkg", "unpublish", func(context.Context, meta.Tx, *repo.Repository) error {
		t.Fatal("fn ran although release refuses deletes")
		return nil
	})
	if !errors.Is(err, errs.Immutable) || !strings.Contains(err.Error(), "deprecate") {
		t.Fatalf("delete on release: %v", err)
	}
	// RemoveComponent drops assets and the component; the repository can
	// then be deleted even though a tag remains.
	err = m.Mutate(ctx, dev, auth.Delete, "pkg", "unpublish", func(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
		n, err := repo.RemoveComponent(ctx, tx, comp)
		if n != 1 {
			t.Errorf("RemoveComponent removed %d assets", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Deleting a file by path moves every generation of its repository:
	// the manager cannot tell which package it belonged to.
	if _, err := m.Put(ctx, dev, "other/-/other-1.0.0.tgz", strings.NewReader("x"), repo.PutOptions{Size: 1,
		Component: &repo.ComponentSpec{Name: "other", Version: "1.0.0"}}); err != nil {
		t.Fatal(err)
	}
	g2 := m.Generation(dev.ID, "other")
	if _, err := m.Delete(ctx, dev, "other/-/other-1.0.0.tgz"); err != nil {
		t.Fatal(err)
	}
	if m.Generation(dev.ID, "other") == g2 {
		t.Fatal("deleting a component's file did not change the generation")
	}
	if c, err := e.App.Store.GetComponent(ctx, dev.ID, "other", "1.0.0"); err == nil {
		if err := e.App.Store.DeleteComponent(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.DeleteRepo(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteRepo(ctx, "dev"); err != nil {
		t.Fatalf("deleting a repository left with a tag only: %v", err)
	}
}

// Inspect reads an upload once it is durable and before anything refers to
// it: it can refuse it (nothing visible is stored), describe it (component,
// attributes) and store small derived files beside it in one transaction.
func TestPutInspect(t *testing.T) {
	e := apptest.New(t, `repositories:
  - {key: dev, format: raw, kind: local, tier: dev}
`)
	m := e.App.Repos
	ctx := adminCtx(t, e)
	dev, _ := m.Repo("dev")

	inspect := func(ctx context.Context, c repo.Content) (*repo.Inspection, error) {
		// Random access: the last 4 bytes name the version.
		tail := make([]byte, 4)
		if _, err := c.ReadAt(tail, c.Size-4); err != nil {
			return nil, err
		}
		if string(tail) == "evil" {
			return nil, errs.New(errs.Invalid, "content refused by inspection")
		}
		if c.Sums["sha256"] != c.Digest.Encoded() {
			t.Errorf("Content sums %v, digest %s", c.Sums, c.Digest)
		}
		return &repo.Inspection{
			Component:  &repo.ComponentSpec{Name: "pkg", Version: string(tail), Attributes: []byte(`{"seen":true}`)},
			Attributes: []byte(`{"size":` + strconv.FormatInt(c.Size, 10) + `}`),
			Derived:    []repo.Derived{{Path: "pkg/" + string(tail) + ".meta", Content: []byte("meta of " + string(tail)), ContentType: "text/plain"}},
		}, nil
	}
	g0 := m.Generation(dev.ID, "pkg")
	res, err := m.Put(ctx, dev, "pkg/file-v1.0", strings.NewReader("body v1.0"), repo.PutOptions{Size: -1, Inspect: inspect})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Asset.Attributes) != `{"size":9}` || res.Asset.ComponentID == "" {
		t.Fatalf("asset: %+v", res.Asset.Asset)
	}
	if m.Generation(dev.ID, "pkg") == g0 {
		t.Fatal("generation of the inspected component not bumped")
	}
	comp, err := e.App.Store.GetComponent(ctx, dev.ID, "pkg", "v1.0")
	if err != nil || string(comp.Attributes) != `{"seen":true}` {
		t.Fatalf("component: %+v %v", comp, err)
	}
	as, err := e.App.Store.ListComponentAssets(ctx, comp.ID)
	if err != nil || len(as) != 2 || as[0].Path != "pkg/file-v1.0" || as[1].Path != "pkg/v1.0.meta" || as[1].ContentType != "text/plain" {
		t.Fatalf("component assets: %v %v", as, err)
	}
	if resp, body := e.Admin().Do(http.MethodGet, "/repository/dev/pkg/v1.0.meta", nil); resp.StatusCode != 200 || body != "meta of v1.0" {
		t.Fatalf("derived file: %d %q", resp.StatusCode, body)
	}

	// Refused by the inspection: nothing visible stored.
	_, err = m.Put(ctx, dev, "pkg/file-evil", strings.NewReader("body evil"), repo.PutOptions{Size: -1, Inspect: inspect})
	if !errors.Is(err, errs.Invalid) {
		t.Fatalf("refused inspection: %v", err)
	}
	if _, err := e.App.Store.GetAsset(ctx, dev.ID, "pkg/file-evil"); !errors.Is(err, errs.NotFound) {
		t.Fatalf("a refused upload left an asset: %v", err)
	}
	// Identical content at the same path: unchanged, not inspected again.
	res, err = m.Put(ctx, dev, "pkg/file-v1.0", strings.NewReader("body v1.0"), repo.PutOptions{Size: -1,
		Inspect: func(context.Context, repo.Content) (*repo.Inspection, error) {
			t.Error("identical content inspected again")
			return nil, nil
		}})
	if err != nil || !res.Unchanged {
		t.Fatalf("identical re-upload: %+v %v", res, err)
	}
}

// A delete or deprecation by path changes the generation of every name in
// the repository: the manager cannot tell which package the path belonged
// to, and cached pages must not outlive the change.
func TestGenerationsFollowDeletesAndDeprecations(t *testing.T) {
	e := apptest.New(t, `repositories:
  - {key: dev, format: raw, kind: local, tier: dev}
`)
	m := e.App.Repos
	ctx := adminCtx(t, e)
	dev, _ := m.Repo("dev")
	if _, err := m.Put(ctx, dev, "a/1", strings.NewReader("x"), repo.PutOptions{Size: 1,
		Component: &repo.ComponentSpec{Name: "a", Version: "1"}}); err != nil {
		t.Fatal(err)
	}
	g := m.Generation(dev.ID, "a")
	if err := m.Deprecate(ctx, dev, "a/1", true, "old"); err != nil {
		t.Fatal(err)
	}
	if g2 := m.Generation(dev.ID, "a"); g2 <= g {
		t.Fatalf("deprecation did not change the generation (%d → %d)", g, g2)
	}
	g = m.Generation(dev.ID, "a")
	if _, err := m.Delete(ctx, dev, "a/1"); err != nil {
		t.Fatal(err)
	}
	if g2 := m.Generation(dev.ID, "a"); g2 <= g {
		t.Fatalf("delete did not change the generation (%d → %d)", g, g2)
	}
}
