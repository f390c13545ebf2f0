// Package metatest is the conformance suite every meta.Store back-end passes.
//
// A back-end's test is one call: metatest.Run(t, func(t *testing.T) meta.Store {...}).
// Each case gets a store and must leave it empty.
package metatest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
)

// Run runs every case against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) meta.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s meta.Store)
	}{
		{"Repos", testRepos},
		{"AssetPutGetReplace", testAssetPutReplace},
		{"AssetNeedsBlobRow", testAssetNeedsBlob},
		{"AssetListPrefixAndPages", testAssetList},
		{"AssetSearch", testAssetSearch},
		{"AssetDeprecationAndTimes", testAssetDeprecation},
		{"FillChecksums", testFillChecksums},
		{"Usage", testUsage},
		{"Components", testComponents},
		{"Tags", testTags},
		{"Uploads", testUploads},
		{"Links", testLinks},
		{"PinsDownloadsLinkKinds", testLifecycle},
		{"PropertiesPromotions", testPromotions},
		{"Settings", testSettings},
		{"DeleteRepoTakesItsRows", testDeleteRepoCascade},
		{"Blobs", testBlobs},
		{"GarbageMarking", testGarbageMarking},
		{"UsersAndGroups", testUsersGroups},
		{"Tokens", testTokens},
		{"Permissions", testPermissions},
		{"Audit", testAudit},
		{"TxRollback", testTxRollback},
		{"ConcurrentWriters", testConcurrentWriters},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			c.fn(t, s)
			assertEmpty(t, s)
		})
	}
}

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantKind(t *testing.T, err, kind error, what string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: err = %v, want kind %v", what, err, kind)
	}
}

func assertEmpty(t *testing.T, s meta.Store) {
	t.Helper()
	repos, err := s.ListRepos(ctx)
	must(t, err)
	users, err := s.ListUsers(ctx)
	must(t, err)
	groups, err := s.ListGroups(ctx)
	must(t, err)
	perms, err := s.ListPermissions(ctx)
	must(t, err)
	blobs, err := s.ListBlobs(ctx, "", 10)
	must(t, err)
	if len(repos)+len(users)+len(groups)+len(perms)+len(blobs) > 0 {
		t.Fatalf("store not empty after case: %d repos, %d users, %d groups, %d permissions, %d blobs",
			len(repos), len(users), len(groups), len(perms), len(blobs))
	}
	// Audit events are append-only by design and not checked here.
}

func digestOf(i int) string { return fmt.Sprintf("sha256:%064x", i) }

func mkRepo(t *testing.T, s meta.Store, key string) *meta.Repository {
	t.Helper()
	r := &meta.Repository{Key: key, Format: "raw", Kind: "local", Tier: "dev", Settings: []byte(`{"a":1}`)}
	must(t, s.CreateRepo(ctx, r))
	return r
}

func mkAsset(t *testing.T, s meta.Store, repo *meta.Repository, path string, blob int, size int64) *meta.Asset {
	t.Helper()
	must(t, s.PutBlob(ctx, digestOf(blob), size))
	a := &meta.Asset{RepoID: repo.ID, Path: path, Blob: digestOf(blob), Size: size, ContentType: "text/plain", SHA1: "s1", MD5: "m5"}
	must(t, s.PutAsset(ctx, a))
	return a
}

// cleanRepo deletes a repository's assets, the repository and the given blobs.
func cleanRepo(t *testing.T, s meta.Store, r *meta.Repository, blobs ...int) {
	t.Helper()
	for {
		as, err := s.ListAssets(ctx, r.ID, meta.AssetQuery{})
		must(t, err)
		if len(as) == 0 {
			break
		}
		for _, a := range as {
			must(t, s.DeleteAsset(ctx, r.ID, a.Path))
		}
	}
	must(t, s.DeleteRepo(ctx, r.Key))
	for _, b := range blobs {
		must(t, s.DeleteBlob(ctx, digestOf(b)))
	}
}

func testRepos(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "raw-dev")
	if r.ID == "" || r.CreatedAt.IsZero() {
		t.Fatalf("CreateRepo did not fill ID/CreatedAt: %+v", r)
	}
	wantKind(t, s.CreateRepo(ctx, &meta.Repository{Key: "raw-dev", Format: "raw", Kind: "local"}), errs.Exists, "duplicate repo")
	got, err := s.GetRepo(ctx, "raw-dev")
	must(t, err)
	if got.ID != r.ID || got.Format != "raw" || got.Tier != "dev" || string(got.Settings) != `{"a":1}` {
		t.Fatalf("GetRepo = %+v", got)
	}
	got.Tier, got.Settings = "staging", []byte(`{"b":2}`)
	must(t, s.UpdateRepo(ctx, got))
	got2, _ := s.GetRepo(ctx, "raw-dev")
	if got2.Tier != "staging" || string(got2.Settings) != `{"b":2}` {
		t.Fatalf("UpdateRepo not applied: %+v", got2)
	}
	wantKind(t, s.UpdateRepo(ctx, &meta.Repository{Key: "nope"}), errs.NotFound, "update missing repo")
	_, err = s.GetRepo(ctx, "nope")
	wantKind(t, err, errs.NotFound, "get missing repo")
	mkRepo(t, s, "a-first")
	list, err := s.ListRepos(ctx)
	must(t, err)
	if len(list) != 2 || list[0].Key != "a-first" || list[1].Key != "raw-dev" {
		t.Fatalf("ListRepos order: %v", list)
	}
	must(t, s.DeleteRepo(ctx, "a-first"))
	must(t, s.DeleteRepo(ctx, "raw-dev"))
	wantKind(t, s.DeleteRepo(ctx, "raw-dev"), errs.NotFound, "delete missing repo")
}

func testAssetPutReplace(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	a := mkAsset(t, s, r, "dir/file.txt", 1, 10)
	if a.ID == "" {
		t.Fatal("PutAsset did not fill ID")
	}
	got, err := s.GetAsset(ctx, r.ID, "dir/file.txt")
	must(t, err)
	if got.Blob != digestOf(1) || got.Size != 10 || got.ContentType != "text/plain" || got.SHA1 != "s1" || got.MD5 != "m5" {
		t.Fatalf("GetAsset = %+v", got)
	}
	time.Sleep(2 * time.Millisecond)
	b := mkAsset(t, s, r, "dir/file.txt", 2, 20)
	if b.ID != a.ID || !b.CreatedAt.Equal(got.CreatedAt) {
		t.Fatalf("replace changed identity: id %s→%s created %v→%v", a.ID, b.ID, got.CreatedAt, b.CreatedAt)
	}
	got, _ = s.GetAsset(ctx, r.ID, "dir/file.txt")
	if got.Blob != digestOf(2) || got.Size != 20 || !got.UpdatedAt.After(got.CreatedAt) {
		t.Fatalf("after replace: %+v", got)
	}
	_, err = s.GetAsset(ctx, r.ID, "other")
	wantKind(t, err, errs.NotFound, "get missing asset")
	wantKind(t, s.DeleteAsset(ctx, r.ID, "other"), errs.NotFound, "delete missing asset")
	// A referenced blob row cannot be deleted.
	if err := s.DeleteBlob(ctx, digestOf(2)); err == nil {
		t.Fatal("DeleteBlob of a referenced blob succeeded")
	}
	cleanRepo(t, s, r, 1, 2)
}

func testAssetNeedsBlob(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	err := s.PutAsset(ctx, &meta.Asset{RepoID: r.ID, Path: "x", Blob: digestOf(9), Size: 1})
	if err == nil {
		t.Fatal("PutAsset without a blob row succeeded")
	}
	cleanRepo(t, s, r)
}

func testAssetList(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	other := mkRepo(t, s, "other")
	paths := []string{"a/1", "a/2", "a/b/3", "a0", "b/1", "a/c/d/4", "a/\u00e9"}
	for i, p := range paths {
		mkAsset(t, s, r, p, i, int64(i))
	}
	mkAsset(t, s, other, "a/zz", 0, 1)
	list, err := s.ListAssets(ctx, r.ID, meta.AssetQuery{Prefix: "a/"})
	must(t, err)
	var got []string
	for _, a := range list {
		got = append(got, a.Path)
	}
	want := []string{"a/1", "a/2", "a/b/3", "a/c/d/4", "a/\u00e9"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("prefix list = %v, want %v", got, want)
	}
	// Pages of two.
	got = nil
	after := ""
	for {
		page, err := s.ListAssets(ctx, r.ID, meta.AssetQuery{After: after, Limit: 2})
		must(t, err)
		if len(page) == 0 {
			break
		}
		for _, a := range page {
			got = append(got, a.Path)
		}
		after = page[len(page)-1].Path
	}
	all := append([]string(nil), paths...)
	sort.Strings(all)
	if fmt.Sprint(got) != fmt.Sprint(all) {
		t.Fatalf("paged list = %v, want %v", got, all)
	}
	// A cursor past a whole folder ("a/b/" followed by a byte no UTF-8
	// text holds) skips everything under it, on every engine.
	skip, err := s.ListAssets(ctx, r.ID, meta.AssetQuery{Prefix: "a/", After: "a/b/\xff"})
	must(t, err)
	got = nil
	for _, a := range skip {
		got = append(got, a.Path)
	}
	if want := []string{"a/c/d/4", "a/\u00e9"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("list after folder a/b/ = %v, want %v", got, want)
	}
	n, err := s.CountAssets(ctx, r.ID)
	must(t, err)
	if n != int64(len(paths)) {
		t.Fatalf("CountAssets = %d", n)
	}
	cleanRepo(t, s, other)
	cleanRepo(t, s, r, 0, 1, 2, 3, 4, 5, 6)
}

func testAssetSearch(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	o := mkRepo(t, s, "o")
	mkAsset(t, s, r, "libs/Foo-1.0.jar", 1, 1)
	mkAsset(t, s, r, "libs/bar-1.0.jar", 2, 1)
	mkAsset(t, s, o, "x/foo_50%.txt", 3, 1)
	res, err := s.SearchAssets(ctx, meta.AssetSearch{Path: "foo"})
	must(t, err)
	if len(res) != 2 {
		t.Fatalf("search foo: %d results", len(res))
	}
	res, _ = s.SearchAssets(ctx, meta.AssetSearch{Path: "foo", RepoIDs: []string{o.ID}})
	if len(res) != 1 || res[0].Path != "x/foo_50%.txt" {
		t.Fatalf("search in repo: %v", res)
	}
	res, _ = s.SearchAssets(ctx, meta.AssetSearch{Path: "_50%"})
	if len(res) != 1 {
		t.Fatalf("LIKE wildcards not escaped: %d results", len(res))
	}
	res, _ = s.SearchAssets(ctx, meta.AssetSearch{Limit: 1})
	res2, _ := s.SearchAssets(ctx, meta.AssetSearch{Limit: 5, After: res[0].ID})
	if len(res) != 1 || len(res2) != 2 {
		t.Fatalf("search pages: %d then %d", len(res), len(res2))
	}
	cleanRepo(t, s, o)
	cleanRepo(t, s, r, 1, 2, 3)
}

func testAssetDeprecation(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	a := mkAsset(t, s, r, "f", 1, 1)
	must(t, s.SetDeprecation(ctx, r.ID, "f", true, "use g"))
	got, _ := s.GetAsset(ctx, r.ID, "f")
	if !got.Deprecated || got.DeprecationMessage != "use g" {
		t.Fatalf("deprecation not stored: %+v", got)
	}
	must(t, s.SetDeprecation(ctx, r.ID, "f", false, ""))
	wantKind(t, s.SetDeprecation(ctx, r.ID, "missing", true, ""), errs.NotFound, "deprecate missing")
	at := time.Unix(1700000000, 123)
	must(t, s.TouchDownloaded(ctx, a.ID, at))
	must(t, s.MarkFetched(ctx, a.ID, at, `"etag"`, "Tue, 14 Nov 2023 22:13:20 GMT"))
	got, _ = s.GetAsset(ctx, r.ID, "f")
	if got.Deprecated || !got.LastDownloadedAt.Equal(at) || !got.FetchedAt.Equal(at) || got.UpstreamETag != `"etag"` {
		t.Fatalf("times not stored: %+v", got)
	}
	cleanRepo(t, s, r, 1)
}

func testFillChecksums(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	must(t, s.PutBlob(ctx, digestOf(1), 1))
	must(t, s.PutAsset(ctx, &meta.Asset{RepoID: r.ID, Path: "a", Blob: digestOf(1), Size: 1, SHA1: "known"}))
	must(t, s.PutAsset(ctx, &meta.Asset{RepoID: r.ID, Path: "b", Blob: digestOf(1), Size: 1}))
	must(t, s.PutBlob(ctx, digestOf(2), 1))
	must(t, s.PutAsset(ctx, &meta.Asset{RepoID: r.ID, Path: "other", Blob: digestOf(2), Size: 1}))
	must(t, s.FillChecksums(ctx, digestOf(1), "filled-sha1", "filled-md5", ""))
	a, _ := s.GetAsset(ctx, r.ID, "a")
	b, _ := s.GetAsset(ctx, r.ID, "b")
	o, _ := s.GetAsset(ctx, r.ID, "other")
	if a.SHA1 != "known" || a.MD5 != "filled-md5" || a.SHA512 != "" {
		t.Fatalf("fill overwrote a known value or missed an empty one: %+v", a)
	}
	if b.SHA1 != "filled-sha1" || b.MD5 != "filled-md5" {
		t.Fatalf("fill missed an asset of the blob: %+v", b)
	}
	if o.SHA1 != "" || o.MD5 != "" {
		t.Fatalf("another blob's asset was changed: %+v", o)
	}
	cleanRepo(t, s, r, 1, 2)
}

func testComponents(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	c := &meta.Component{RepoID: r.ID, Name: "@acme/ui", Version: "1.0.0", Attributes: []byte(`{"a":1}`), CreatedBy: "alice"}
	must(t, s.PutComponent(ctx, c))
	if c.ID == "" || c.CreatedAt.IsZero() {
		t.Fatalf("PutComponent did not fill ID/CreatedAt: %+v", c)
	}
	id := c.ID
	// Upsert: same identity, attributes replaced when given, kept when nil.
	again := &meta.Component{RepoID: r.ID, Name: "@acme/ui", Version: "1.0.0", Attributes: []byte(`{"a":2}`)}
	must(t, s.PutComponent(ctx, again))
	if again.ID != id || string(again.Attributes) != `{"a":2}` || again.CreatedBy != "alice" {
		t.Fatalf("upsert: %+v", again)
	}
	keep := &meta.Component{RepoID: r.ID, Name: "@acme/ui", Version: "1.0.0"}
	must(t, s.PutComponent(ctx, keep))
	if string(keep.Attributes) != `{"a":2}` {
		t.Fatalf("nil attributes replaced the stored ones: %s", keep.Attributes)
	}
	time.Sleep(time.Millisecond)
	must(t, s.PutComponent(ctx, &meta.Component{RepoID: r.ID, Name: "@acme/ui", Version: "1.1.0"}))
	must(t, s.PutComponent(ctx, &meta.Component{RepoID: r.ID, Name: "left-pad", Version: "1.3.0"}))
	must(t, s.PutComponent(ctx, &meta.Component{RepoID: r.ID, Name: "@acme/util", Version: "0.1.0"}))
	vs, err := s.ListComponents(ctx, r.ID, "@acme/ui")
	must(t, err)
	if len(vs) != 2 || vs[0].Version != "1.0.0" || vs[1].Version != "1.1.0" {
		t.Fatalf("ListComponents oldest first: %+v", vs)
	}
	names, err := s.ListComponentNames(ctx, r.ID, meta.NameQuery{Prefix: "@acme/"})
	must(t, err)
	if fmt.Sprint(names) != "[@acme/ui @acme/util]" {
		t.Fatalf("ListComponentNames prefix: %v", names)
	}
	names, _ = s.ListComponentNames(ctx, r.ID, meta.NameQuery{After: "@acme/ui", Limit: 1})
	if fmt.Sprint(names) != "[@acme/util]" {
		t.Fatalf("ListComponentNames after: %v", names)
	}
	got, err := s.GetComponent(ctx, r.ID, "@acme/ui", "1.0.0")
	must(t, err)
	if got.ID != id {
		t.Fatalf("GetComponent: %+v", got)
	}
	_, err = s.GetComponent(ctx, r.ID, "@acme/ui", "9.9.9")
	wantKind(t, err, errs.NotFound, "missing component")
	must(t, s.SetComponentDeprecation(ctx, id, true, "use 1.1"))
	got, _ = s.GetComponent(ctx, r.ID, "@acme/ui", "1.0.0")
	if !got.Deprecated || got.DeprecationMessage != "use 1.1" {
		t.Fatalf("deprecation: %+v", got)
	}
	// Assets link to their component.
	must(t, s.PutBlob(ctx, digestOf(1), 3))
	must(t, s.PutAsset(ctx, &meta.Asset{RepoID: r.ID, Path: "@acme/ui/-/ui-1.0.0.tgz", Blob: digestOf(1), Size: 3,
		ComponentID: id, Attributes: []byte(`{"kind":"tarball"}`)}))
	must(t, s.PutAsset(ctx, &meta.Asset{RepoID: r.ID, Path: "loose", Blob: digestOf(1), Size: 3}))
	as, err := s.ListComponentAssets(ctx, id)
	must(t, err)
	if len(as) != 1 || as[0].ComponentID != id || string(as[0].Attributes) != `{"kind":"tarball"}` {
		t.Fatalf("ListComponentAssets: %+v", as)
	}
	loose, _ := s.GetAsset(ctx, r.ID, "loose")
	if loose.ComponentID != "" || string(loose.Attributes) != "{}" {
		t.Fatalf("asset without component: %+v", loose)
	}
	if err := s.DeleteComponent(ctx, id); err == nil {
		t.Fatal("a component with assets was deleted")
	}
	must(t, s.DeleteAsset(ctx, r.ID, "@acme/ui/-/ui-1.0.0.tgz"))
	must(t, s.DeleteAsset(ctx, r.ID, "loose"))
	for _, n := range []string{"@acme/ui", "left-pad", "@acme/util"} {
		vs, _ := s.ListComponents(ctx, r.ID, n)
		for _, v := range vs {
			must(t, s.DeleteComponent(ctx, v.ID))
		}
	}
	wantKind(t, s.DeleteComponent(ctx, id), errs.NotFound, "delete missing component")
	cleanRepo(t, s, r, 1)
}

func testTags(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	must(t, s.SetTag(ctx, &meta.Tag{RepoID: r.ID, Name: "team/api", Tag: "latest", Target: "sha256:1"}))
	must(t, s.SetTag(ctx, &meta.Tag{RepoID: r.ID, Name: "team/api", Tag: "v1", Target: "sha256:1"}))
	must(t, s.SetTag(ctx, &meta.Tag{RepoID: r.ID, Name: "other", Tag: "latest", Target: "sha256:9"}))
	must(t, s.SetTag(ctx, &meta.Tag{RepoID: r.ID, Name: "team/api", Tag: "latest", Target: "sha256:2"})) // moves
	got, err := s.GetTag(ctx, r.ID, "team/api", "latest")
	must(t, err)
	if got.Target != "sha256:2" || got.UpdatedAt.IsZero() {
		t.Fatalf("moved tag: %+v", got)
	}
	list, _ := s.ListTags(ctx, r.ID, "team/api")
	if len(list) != 2 || list[0].Tag != "latest" || list[1].Tag != "v1" {
		t.Fatalf("ListTags: %+v", list)
	}
	all, _ := s.ListTags(ctx, r.ID, "")
	if len(all) != 3 {
		t.Fatalf("ListTags(all) = %d", len(all))
	}
	_, err = s.GetTag(ctx, r.ID, "team/api", "nope")
	wantKind(t, err, errs.NotFound, "missing tag")
	for _, tg := range all {
		must(t, s.DeleteTag(ctx, r.ID, tg.Name, tg.Tag))
	}
	wantKind(t, s.DeleteTag(ctx, r.ID, "other", "latest"), errs.NotFound, "delete missing tag")
	cleanRepo(t, s, r)
}

func testUsage(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	o := mkRepo(t, s, "o")
	mkAsset(t, s, r, "a", 1, 100)
	mkAsset(t, s, r, "b", 1, 100) // same blob twice: logical 200, physical 100
	mkAsset(t, s, o, "c", 1, 100)
	mkAsset(t, s, o, "d", 2, 5)
	u, err := s.RepoUsage(ctx)
	must(t, err)
	if u[r.ID] != (meta.Usage{Count: 2, Bytes: 200}) || u[o.ID] != (meta.Usage{Count: 2, Bytes: 105}) {
		t.Fatalf("RepoUsage = %v", u)
	}
	p, err := s.BlobUsage(ctx)
	must(t, err)
	if p != (meta.Usage{Count: 2, Bytes: 105}) {
		t.Fatalf("BlobUsage = %v", p)
	}
	cleanRepo(t, s, o)
	cleanRepo(t, s, r, 1, 2)
}

func testBlobs(t *testing.T, s meta.Store) {
	must(t, s.PutBlob(ctx, digestOf(1), 7))
	must(t, s.PutBlob(ctx, digestOf(1), 7)) // idempotent
	must(t, s.PutBlob(ctx, digestOf(2), 8))
	b, err := s.GetBlob(ctx, digestOf(1))
	must(t, err)
	if b.Size != 7 || b.CreatedAt.IsZero() {
		t.Fatalf("GetBlob = %+v", b)
	}
	list, _ := s.ListBlobs(ctx, digestOf(1), 10)
	if len(list) != 1 || list[0].Digest != digestOf(2) {
		t.Fatalf("ListBlobs after cursor = %v", list)
	}
	_, err = s.GetBlob(ctx, digestOf(3))
	wantKind(t, err, errs.NotFound, "missing blob")
	must(t, s.DeleteBlob(ctx, digestOf(1)))
	must(t, s.DeleteBlob(ctx, digestOf(2)))
	wantKind(t, s.DeleteBlob(ctx, digestOf(2)), errs.NotFound, "delete missing blob")
}

func testGarbageMarking(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	mkAsset(t, s, r, "kept", 1, 10) // referenced: never garbage
	must(t, s.PutBlob(ctx, digestOf(2), 20))
	must(t, s.PutBlob(ctx, digestOf(3), 30))
	time.Sleep(5 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(5 * time.Millisecond)
	must(t, s.PutBlob(ctx, digestOf(3), 30)) // leased after the cutoff: not garbage yet
	dry, err := s.ListGarbage(ctx, cutoff, "", 10)
	must(t, err)
	if len(dry) != 1 || dry[0].Digest != digestOf(2) || dry[0].State != "live" {
		t.Fatalf("ListGarbage = %+v", dry)
	}
	marked, err := s.MarkGarbage(ctx, cutoff, 10)
	must(t, err)
	if len(marked) != 1 || marked[0].Digest != digestOf(2) || marked[0].State != "deleting" {
		t.Fatalf("MarkGarbage = %+v", marked)
	}
	// A marked blob cannot be leased: the writer waits for the row to go.
	wantKind(t, s.PutBlob(ctx, digestOf(2), 20), errs.Unavailable, "lease a blob being collected")
	dl, _ := s.ListDeleting(ctx, 10)
	if len(dl) != 1 || dl[0].Digest != digestOf(2) {
		t.Fatalf("ListDeleting = %+v", dl)
	}
	u, _ := s.BlobUsage(ctx)
	if u != (meta.Usage{Count: 3, Bytes: 60}) {
		t.Fatalf("BlobUsage before the delete = %+v", u)
	}
	must(t, s.DeleteBlob(ctx, digestOf(2)))
	must(t, s.PutBlob(ctx, digestOf(2), 20)) // written again: a fresh live row
	if b, _ := s.GetBlob(ctx, digestOf(2)); b.State != "live" {
		t.Fatalf("re-put blob: %+v", b)
	}
	if again, _ := s.MarkGarbage(ctx, cutoff, 10); len(again) != 0 {
		t.Fatalf("fresh or referenced blobs marked: %+v", again)
	}
	// With a later cutoff the unreferenced ones go, the referenced one
	// stays; walked a chunk of one row at a time, each row is seen once.
	var later []*meta.Blob
	after, calls := "", 0
	for {
		bs, next, err := s.MarkGarbageAfter(ctx, time.Now().Add(time.Second), after, 1)
		must(t, err)
		later = append(later, bs...)
		calls++
		if next == "" {
			break
		}
		if next <= after || calls > 10 {
			t.Fatalf("MarkGarbageAfter cursor %q after %q", next, after)
		}
		after = next
	}
	if len(later) != 2 || calls != 4 {
		t.Fatalf("later MarkGarbageAfter = %+v in %d calls, want 2 blobs in 4 calls (3 rows, then the end)", later, calls)
	}
	for _, b := range later {
		must(t, s.DeleteBlob(ctx, b.Digest))
	}
	if u, _ := s.BlobUsage(ctx); u != (meta.Usage{Count: 1, Bytes: 10}) {
		t.Fatalf("BlobUsage after collection = %+v", u)
	}
	cleanRepo(t, s, r, 1)
}

func testUsersGroups(t *testing.T, s meta.Store) {
	u := &meta.User{Name: "alice", Email: "a@example.test", PasswordHash: "h", Admin: true}
	must(t, s.CreateUser(ctx, u))
	wantKind(t, s.CreateUser(ctx, &meta.User{Name: "alice"}), errs.Exists, "duplicate user")
	must(t, s.CreateUser(ctx, &meta.User{Name: "bob"}))
	must(t, s.CreateGroup(ctx, &meta.Group{Name: "devs", Description: "d"}))
	wantKind(t, s.CreateGroup(ctx, &meta.Group{Name: "devs"}), errs.Exists, "duplicate group")
	must(t, s.AddGroupMember(ctx, "devs", "alice"))
	must(t, s.AddGroupMember(ctx, "devs", "alice")) // idempotent
	must(t, s.AddGroupMember(ctx, "devs", "bob"))
	wantKind(t, s.AddGroupMember(ctx, "devs", "carol"), errs.NotFound, "add missing user")
	wantKind(t, s.AddGroupMember(ctx, "nogroup", "bob"), errs.NotFound, "add to missing group")
	got, err := s.GetUser(ctx, "alice")
	must(t, err)
	if got.ID != u.ID || !got.Admin || got.Email != "a@example.test" || fmt.Sprint(got.Groups) != "[devs]" {
		t.Fatalf("GetUser = %+v", got)
	}
	byID, err := s.GetUserByID(ctx, u.ID)
	must(t, err)
	if byID.Name != "alice" {
		t.Fatalf("GetUserByID = %+v", byID)
	}
	got.Disabled, got.PasswordHash = true, "h2"
	must(t, s.UpdateUser(ctx, got))
	got, _ = s.GetUser(ctx, "alice")
	if !got.Disabled || got.PasswordHash != "h2" {
		t.Fatalf("UpdateUser not applied: %+v", got)
	}
	g, err := s.GetGroup(ctx, "devs")
	must(t, err)
	if fmt.Sprint(g.Members) != "[alice bob]" {
		t.Fatalf("group members = %v", g.Members)
	}
	must(t, s.RemoveGroupMember(ctx, "devs", "bob"))
	wantKind(t, s.RemoveGroupMember(ctx, "devs", "bob"), errs.NotFound, "remove non-member")
	users, _ := s.ListUsers(ctx)
	if len(users) != 2 || users[0].Name != "alice" {
		t.Fatalf("ListUsers = %v", users)
	}
	must(t, s.DeleteUser(ctx, "alice")) // also drops its memberships
	g, _ = s.GetGroup(ctx, "devs")
	if len(g.Members) != 0 {
		t.Fatalf("deleted user still a member: %v", g.Members)
	}
	must(t, s.DeleteUser(ctx, "bob"))
	wantKind(t, s.DeleteUser(ctx, "bob"), errs.NotFound, "delete missing user")
	must(t, s.DeleteGroup(ctx, "devs"))
	_, err = s.GetGroup(ctx, "devs")
	wantKind(t, err, errs.NotFound, "deleted group")
}

func testTokens(t *testing.T, s meta.Store) {
	u := &meta.User{Name: "ci"}
	must(t, s.CreateUser(ctx, u))
	exp := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	tok := &meta.Token{UserID: u.ID, Name: "build", Hash: "hash1", Scopes: `[{"repos":"*"}]`, ExpiresAt: exp}
	must(t, s.CreateToken(ctx, tok))
	wantKind(t, s.CreateToken(ctx, &meta.Token{UserID: u.ID, Hash: "hash1"}), errs.Exists, "duplicate token hash")
	got, err := s.GetTokenByHash(ctx, "hash1")
	must(t, err)
	if got.ID != tok.ID || got.UserName != "ci" || got.Scopes != tok.Scopes || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("GetTokenByHash = %+v", got)
	}
	must(t, s.TouchToken(ctx, tok.ID, exp))
	list, _ := s.ListTokens(ctx, u.ID)
	if len(list) != 1 || !list[0].LastUsedAt.Equal(exp) {
		t.Fatalf("ListTokens = %+v", list)
	}
	all, _ := s.ListTokens(ctx, "")
	if len(all) != 1 {
		t.Fatalf("ListTokens(all) = %d", len(all))
	}
	_, err = s.GetTokenByHash(ctx, "nope")
	wantKind(t, err, errs.NotFound, "missing token")
	must(t, s.CreateToken(ctx, &meta.Token{UserID: u.ID, Hash: "hash2"}))
	must(t, s.DeleteToken(ctx, tok.ID))
	wantKind(t, s.DeleteToken(ctx, tok.ID), errs.NotFound, "delete missing token")
	must(t, s.DeleteUser(ctx, "ci")) // takes its remaining token with it
	_, err = s.GetTokenByHash(ctx, "hash2")
	wantKind(t, err, errs.NotFound, "token of deleted user")
}

func testPermissions(t *testing.T, s meta.Store) {
	p := &meta.Permission{PrincipalType: "group", Principal: "devs", Repos: "docker-*", Actions: "read,write"}
	must(t, s.CreatePermission(ctx, p))
	must(t, s.CreatePermission(ctx, &meta.Permission{PrincipalType: "anonymous", Repos: "*", Actions: "read"}))
	list, err := s.ListPermissions(ctx)
	must(t, err)
	if len(list) != 2 || list[0].ID != p.ID || list[0].Actions != "read,write" || list[0].Repos != "docker-*" {
		t.Fatalf("ListPermissions = %+v", list)
	}
	for _, x := range list {
		must(t, s.DeletePermission(ctx, x.ID))
	}
	wantKind(t, s.DeletePermission(ctx, p.ID), errs.NotFound, "delete missing permission")
}

func testAudit(t *testing.T, s meta.Store) {
	tag := fmt.Sprintf("audit-%d", time.Now().UnixNano())
	for i := 0; i < 5; i++ {
		must(t, s.AddAudit(ctx, &meta.AuditEvent{Actor: "alice", Action: "put", Repo: tag, Path: fmt.Sprint(i)}))
	}
	list, err := s.ListAudit(ctx, tag, "", 3)
	must(t, err)
	if len(list) != 3 || list[0].Path != "4" || list[2].Path != "2" {
		t.Fatalf("ListAudit newest first: %+v", list)
	}
	more, _ := s.ListAudit(ctx, tag, list[2].ID, 10)
	if len(more) != 2 || more[0].Path != "1" {
		t.Fatalf("ListAudit before cursor: %+v", more)
	}
}

func testTxRollback(t *testing.T, s meta.Store) {
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx meta.Tx) error {
		if err := tx.CreateRepo(ctx, &meta.Repository{Key: "tx", Format: "raw", Kind: "local"}); err != nil {
			return err
		}
		if _, err := tx.GetRepo(ctx, "tx"); err != nil {
			return fmt.Errorf("read own write in tx: %w", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx err = %v", err)
	}
	_, err = s.GetRepo(ctx, "tx")
	wantKind(t, err, errs.NotFound, "repo after rollback")
	must(t, s.InTx(ctx, func(tx meta.Tx) error {
		return tx.CreateRepo(ctx, &meta.Repository{Key: "tx", Format: "raw", Kind: "local"})
	}))
	must(t, s.DeleteRepo(ctx, "tx"))
}

func testConcurrentWriters(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	must(t, s.PutBlob(ctx, digestOf(1), 1))
	var wg sync.WaitGroup
	errc := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- s.InTx(ctx, func(tx meta.Tx) error {
				// Half the writers fight over one path, half write their own.
				path := "shared"
				if i%2 == 0 {
					path = fmt.Sprintf("own-%d", i)
				}
				return tx.PutAsset(ctx, &meta.Asset{RepoID: r.ID, Path: path, Blob: digestOf(1), Size: 1})
			})
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		must(t, err)
	}
	n, _ := s.CountAssets(ctx, r.ID)
	if n != 21 {
		t.Fatalf("after concurrent writes: %d assets, want 21", n)
	}
	// The usage counters agree with the rows even where writers raced on
	// one path (engines with concurrent writers must serialize them).
	usage, err := s.RepoUsage(ctx)
	must(t, err)
	if u := usage[r.ID]; u.Count != 21 || u.Bytes != 21 {
		t.Fatalf("usage after concurrent writes: %+v, want 21 assets of 21 bytes", u)
	}
	cleanRepo(t, s, r, 1)
}

func testUploads(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	u := &meta.Upload{RepoID: r.ID, Name: "team/api", State: []byte(`{"id":"x"}`)}
	must(t, s.CreateUpload(ctx, u))
	got, err := s.GetUpload(ctx, u.ID)
	must(t, err)
	if got.Name != "team/api" || string(got.State) != `{"id":"x"}` || got.Size != 0 {
		t.Fatalf("GetUpload: %+v", got)
	}
	time.Sleep(time.Millisecond)
	got.State, got.Size = []byte(`{"id":"y"}`), 42
	must(t, s.UpdateUpload(ctx, got))
	again, _ := s.GetUpload(ctx, u.ID)
	if again.Size != 42 || string(again.State) != `{"id":"y"}` || !again.UpdatedAt.After(again.CreatedAt) {
		t.Fatalf("UpdateUpload: %+v", again)
	}
	old, _ := s.ListUploadsBefore(ctx, time.Now().Add(time.Hour), 10)
	none, _ := s.ListUploadsBefore(ctx, time.Now().Add(-time.Hour), 10)
	if len(old) != 1 || len(none) != 0 {
		t.Fatalf("ListUploadsBefore: %d, %d", len(old), len(none))
	}
	must(t, s.DeleteUpload(ctx, u.ID))
	_, err = s.GetUpload(ctx, u.ID)
	wantKind(t, err, errs.NotFound, "deleted upload")
	wantKind(t, s.UpdateUpload(ctx, got), errs.NotFound, "update deleted upload")
	cleanRepo(t, s, r)
}

func testLinks(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	links := []meta.Link{
		{RepoID: r.ID, Name: "img", Source: "sha256:m1", Target: "sha256:l1", Kind: "blob"},
		{RepoID: r.ID, Name: "img", Source: "sha256:m1", Target: "sha256:c1", Kind: "blob"},
		{RepoID: r.ID, Name: "img", Source: "sha256:sig", Target: "sha256:m1", Kind: "subject"},
		{RepoID: r.ID, Name: "img", Source: "sha256:sbom", Target: "sha256:m1", Kind: "subject"},
	}
	must(t, s.PutLinks(ctx, links))
	must(t, s.PutLinks(ctx, links[:1])) // idempotent
	from, _ := s.ListLinksFrom(ctx, r.ID, "img", "sha256:m1")
	if len(from) != 2 || from[0].Target != "sha256:c1" {
		t.Fatalf("ListLinksFrom: %+v", from)
	}
	to, _ := s.ListLinksTo(ctx, r.ID, "img", "sha256:m1", "subject")
	if len(to) != 2 || to[0].Source != "sha256:sbom" || to[1].Source != "sha256:sig" {
		t.Fatalf("ListLinksTo: %+v", to)
	}
	if other, _ := s.ListLinksTo(ctx, r.ID, "other", "sha256:m1", "subject"); len(other) != 0 {
		t.Fatalf("links leaked across names: %+v", other)
	}
	must(t, s.DeleteLinksFrom(ctx, r.ID, "img", "sha256:m1"))
	if from, _ := s.ListLinksFrom(ctx, r.ID, "img", "sha256:m1"); len(from) != 0 {
		t.Fatalf("after DeleteLinksFrom: %+v", from)
	}
	cleanRepo(t, s, r) // the subject links go with the repository
}

func testSettings(t *testing.T, s meta.Store) {
	key := fmt.Sprintf("test.%d", time.Now().UnixNano())
	_, err := s.GetSetting(ctx, key)
	wantKind(t, err, errs.NotFound, "missing setting")
	v, err := s.InitSetting(ctx, key, "first")
	must(t, err)
	v2, err := s.InitSetting(ctx, key, "second")
	must(t, err)
	got, _ := s.GetSetting(ctx, key)
	if v != "first" || v2 != "first" || got != "first" {
		t.Fatalf("InitSetting: %q %q %q", v, v2, got)
	}
}

func testDeleteRepoCascade(t *testing.T, s meta.Store) {
	r := mkRepo(t, s, "r")
	must(t, s.PutComponent(ctx, &meta.Component{RepoID: r.ID, Name: "n", Version: "1"}))
	must(t, s.SetTag(ctx, &meta.Tag{RepoID: r.ID, Name: "n", Tag: "latest", Target: "1"}))
	must(t, s.PutLinks(ctx, []meta.Link{{RepoID: r.ID, Name: "n", Source: "1", Target: "x", Kind: "blob"}}))
	must(t, s.CreateUpload(ctx, &meta.Upload{RepoID: r.ID, Name: "n"}))
	a := mkAsset(t, s, r, "f", 1, 1)
	if err := s.DeleteRepo(ctx, "r"); err == nil {
		t.Fatal("DeleteRepo succeeded with an asset left")
	}
	must(t, s.DeleteAsset(ctx, r.ID, a.Path))
	must(t, s.DeleteRepo(ctx, "r"))
	must(t, s.DeleteBlob(ctx, digestOf(1)))
}
