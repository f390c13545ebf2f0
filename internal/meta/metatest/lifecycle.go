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
	// DeleteRepo takes the pins, links and components with it.
	must(t, s.DeleteRepo(ctx, "r"))
	must(t, s.DeleteBlob(ctx, digestOf(1)))
}

func testPromotions(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	must(t, s.SetProperty(ctx, &meta.Property{RepoID: r.ID, Name: "n", Version: "1", Key: "ci.tests", Value: "failed"}))
	must(t, s.SetProperty(ctx, &meta.Property{RepoID: r.ID, Name: "n", Version: "1", Key: "ci.tests", Value: "passed", UpdatedBy: "ci"}))
	must(t, s.SetProperty(ctx, &meta.Property{RepoID: r.ID, Name: "n", Version: "1", Key: "a", Value: "b"}))
	must(t, s.SetProperty(ctx, &meta.Property{RepoID: r.ID, Name: "n", Version: "2", Key: "a", Value: "c"}))
	ps, err := s.ListProperties(ctx, r.ID, "n", "1")
	must(t, err)
	if len(ps) != 2 || ps[0].Key != "a" || ps[1].Value != "passed" || ps[1].UpdatedBy != "ci" {
		t.Fatalf("properties = %+v", ps)
	}
	must(t, s.DeleteProperty(ctx, r.ID, "n", "1", "a"))
	wantKind(t, s.DeleteProperty(ctx, r.ID, "n", "1", "a"), errs.NotFound, "second delete")

	var ids []string
	for i, st := range []string{"promoted", "pending", "refused"} {
		p := &meta.Promotion{RequestedBy: "alice", Source: "dev", Target: []string{"staging", "release", "staging"}[i], Format: "oci",
			Artifact: "team/api:v1", Name: "team/api", Version: "sha256:1", Digest: "sha256:1", State: st, Gates: `[{"gate":"x"}]`}
		must(t, s.CreatePromotion(ctx, p))
		ids = append(ids, p.ID)
	}
	got, err := s.GetPromotion(ctx, ids[1])
	must(t, err)
	if got.State != "pending" || got.Target != "release" || got.Gates != `[{"gate":"x"}]` || got.CreatedAt.IsZero() {
		t.Fatalf("promotion = %+v", got)
	}
	got.State, got.DecidedBy, got.DecidedAt = "promoted", "bob", time.Now()
	must(t, s.UpdatePromotion(ctx, got))
	list, err := s.ListPromotions(ctx, meta.PromotionQuery{Repo: "staging"})
	must(t, err)
	if len(list) != 2 || list[0].ID != ids[2] || list[1].ID != ids[0] {
		t.Fatalf("by repo: %+v", list)
	}
	list, err = s.ListPromotions(ctx, meta.PromotionQuery{Digest: "sha256:1", State: "promoted"})
	must(t, err)
	if len(list) != 2 || list[0].DecidedBy != "bob" {
		t.Fatalf("by digest and state: %+v", list)
	}
	list, err = s.ListPromotions(ctx, meta.PromotionQuery{Name: "team/api", Version: "sha256:1", Before: ids[2], Limit: 1})
	must(t, err)
	if len(list) != 1 || list[0].ID != ids[1] {
		t.Fatalf("page: %+v", list)
	}
	_, err = s.GetPromotion(ctx, "nope")
	wantKind(t, err, errs.NotFound, "unknown promotion")
	must(t, s.DeleteRepo(ctx, "r"))
}
