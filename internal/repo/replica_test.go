package repo_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/repo"
)

const replicaConfig = `
repositories:
  - {key: src, format: raw, kind: local, tier: release}
  - {key: dst, format: raw, kind: local, tier: release}
  - {key: other, format: npm, kind: local, tier: dev}
`

func digestOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}

// A state applied to another repository makes it equal, whatever its tier
// (a replica follows the source's deprecations and deletes), and applying
// it again changes nothing.
func TestApplyReplicaMakesEqual(t *testing.T) {
	e := apptest.New(t, replicaConfig)
	ctx := context.Background()
	m := e.App.Repos
	e.Put("src", "a/1.txt", "one")
	e.Put("src", "a/2.txt", "two")
	e.Put("dst", "stale.txt", "only on the replica")
	st, err := m.ReplicaState(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	st.Repository = "dst"
	res, err := m.ApplyReplica(ctx, "dst", st, false)
	if err != nil || len(res.Missing) != 0 || res.Changed != 3 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	got, _ := m.ReplicaState(ctx, "dst")
	if len(got.Assets) != 2 || got.Assets[0].Path != "a/1.txt" || got.Assets[1].Blob != digestOf("two") {
		t.Fatalf("replica after apply: %+v", got.Assets)
	}
	if res, err := m.ApplyReplica(ctx, "dst", st, false); err != nil || res.Changed != 0 {
		t.Fatalf("second apply of the same state: %+v %v", res, err)
	}
	// A blob the target lacks is asked for, and nothing changes meanwhile.
	st.Assets = append(st.Assets, repo.ReplicaAsset{Path: "b.txt", Blob: digestOf("absent"), Size: 6})
	res, err = m.ApplyReplica(ctx, "dst", st, false)
	if err != nil || len(res.Missing) != 1 || res.Missing[0] != digestOf("absent") || res.Changed != 0 {
		t.Fatalf("apply with a missing blob: %+v %v", res, err)
	}
	// A state of another format is refused.
	st.Assets = st.Assets[:2]
	if _, err := m.ApplyReplica(ctx, "other", st, false); !errors.Is(err, errs.Invalid) {
		t.Fatalf("raw state onto an npm repository: %v", err)
	}
}

// FuzzApplyReplica: any state document a target receives is either refused
// with an error or applied so that every file it names is there.
func FuzzApplyReplica(f *testing.F) {
	known := digestOf("known")
	seed, _ := json.Marshal(repo.ReplicaState{Repository: "dst", Format: "raw",
		Assets:     []repo.ReplicaAsset{{Path: "x/y.txt", Blob: known, Size: 5, Component: &repo.ComponentKey{Name: "n", Version: "1"}}},
		Components: []repo.ReplicaComponent{{Name: "n", Version: "1", Attributes: json.RawMessage(`{"a":1}`)}},
		Tags:       []repo.ReplicaTag{{Name: "n", Tag: "latest", Target: "1"}},
		Links:      []repo.ReplicaLink{{Name: "n", Source: "s", Target: "t", Kind: "blob"}}})
	f.Add(seed)
	f.Add([]byte(`{"repository":"dst","format":"raw","assets":[{"path":"","blob":"sha256:zz","size":-1}]}`))
	f.Add([]byte(`{"repository":"dst","format":"raw","assets":[{"path":"a","blob":"` + known + `","size":5,"component":{"name":"missing","version":"0"}}]}`))
	e := apptest.New(f, replicaConfig)
	e.Put("src", "known.txt", "known")
	f.Fuzz(func(t *testing.T, doc []byte) {
		var st repo.ReplicaState
		if json.Unmarshal(doc, &st) != nil {
			return
		}
		st.Format = "raw"
		res, err := e.App.Repos.ApplyReplica(context.Background(), "dst", &st, false)
		got, serr := e.App.Repos.ReplicaState(context.Background(), "dst")
		if serr != nil {
			t.Fatalf("state unreadable after apply: %v", serr)
		}
		if err != nil || len(res.Missing) > 0 {
			return
		}
		have := map[string]string{}
		for _, a := range got.Assets {
			have[a.Path] = a.Blob
		}
		for _, a := range st.Assets {
			if _, ok := have[a.Path]; !ok {
				t.Fatalf("applied state lacks %q", a.Path)
			}
		}
	})
}
