package metatest

import (
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
)

func testLifecycle(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	must(t, s.PutPin(ctx, &meta.Pin{RepoID: r.ID, Name: "b", Version: "1", Reason: "prod", CreatedBy: "deployer"}))
	must(t, s.PutPin(ctx, &meta.Pin{RepoID: r.ID, Name: "a", Version: "2"}))
	must(t, s.PutPin(ctx, &meta.Pin{RepoID: r.ID, Name: "b", Version: "1", Reason: "prod-eu"}))
	pins, err := s.ListPins(ctx, r.ID)
	must(t, err)
	if len(pins) != 2 || pins[0].Name != "a" || pins[1].Reason != "prod-eu" || pins[1].CreatedAt.IsZero() {
		t.Fatalf("pins = %+v", pins)
	}
	must(t, s.DeletePin(ctx, r.ID, "a", "2"))
	wantKind(t, s.DeletePin(ctx, r.ID, "a", "2"), errs.NotFound, "second delete")

	c1 := &meta.Component{RepoID: r.ID, Name: "n", Version: "1"}
	c2 := &meta.Component{RepoID: r.ID, Name: "n", Version: "2"}
	must(t, s.PutComponent(ctx, c1))
	must(t, s.PutComponent(ctx, c2))
	must(t, s.PutBlob(ctx, digestOf(1), 1))
	at := time.Unix(1700000000, 0)
	var ids []string
	for i, p := range []string{"x", "y"} {
		a := &meta.Asset{RepoID: r.ID, Path: p, Blob: digestOf(1), Size: 1, ComponentID: c1.ID}
		must(t, s.PutAsset(ctx, a))
		must(t, s.TouchDownloaded(ctx, a.ID, at.Add(time.Duration(i)*time.Hour)))
		ids = append(ids, a.ID)
	}
	a := &meta.Asset{RepoID: r.ID, Path: "z", Blob: digestOf(1), Size: 1, ComponentID: c2.ID}
	must(t, s.PutAsset(ctx, a))
	dl, err := s.LastDownloads(ctx, r.ID)
	must(t, err)
	if len(dl) != 1 || !dl[c1.ID].Equal(at.Add(time.Hour)) {
		t.Fatalf("last downloads = %v", dl)
	}

	must(t, s.PutLinks(ctx, []meta.Link{
		{RepoID: r.ID, Name: "n", Source: "1", Target: "x", Kind: "subject"},
		{RepoID: r.ID, Name: "n", Source: "2", Target: "y", Kind: "blob"},
		{RepoID: r.ID, Name: "m", Source: "1", Target: "y", Kind: "subject"},
	}))
	ls, err := s.ListLinksOfKind(ctx, r.ID, "subject")
	must(t, err)
	if len(ls) != 2 || ls[0].Name != "m" || ls[1].Target != "x" {
		t.Fatalf("subject links = %+v", ls)
	}
	for _, p := range []string{"x", "y", "z"} {
		must(t, s.DeleteAsset(ctx, r.ID, p))
	}
	_ = ids
	// DeleteRepo takes the pins, links and components with it.
	must(t, s.DeleteRepo(ctx, "r"))
	must(t, s.DeleteBlob(ctx, digestOf(1)))
}
