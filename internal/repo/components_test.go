package repo_test

import (
	"context"
	"errors"
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
	if err := m.DeleteRepo(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteRepo(ctx, "dev"); err != nil {
		t.Fatalf("deleting a repository left with a tag only: %v", err)
	}
}
