package lifecycle_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/meta"
)

// BenchmarkPromoteOCI50Layers promotes one image of 50 layers through the
// API (POST /api/v1/promotions, as a user does) into a fresh staging
// repository per iteration, so every iteration copies the whole graph. Two
// layer sizes show that the cost does not depend on the bytes.
func BenchmarkPromoteOCI50Layers(b *testing.B) {
	for _, size := range []int64{1 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("layer=%dKiB", size>>10), func(b *testing.B) {
			e := apptest.New(b, "repositories:\n  - {key: oci-dev, format: oci, kind: local, tier: dev}\n")
			host := strings.TrimPrefix(e.URL, "http://")
			img, err := random.Image(size, 50)
			if err != nil {
				b.Fatal(err)
			}
			ref := mustParse(b, host+"/oci-dev/team/api:v1")
			if err := remote.Write(ref, img, auth); err != nil {
				b.Fatal(err)
			}
			admin := e.Admin()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				key := fmt.Sprintf("oci-staging-%d", i)
				admin.MustJSON("PUT", "/api/v1/repositories/"+key, map[string]any{"format": "oci", "kind": "local", "tier": "staging"}, 200, nil)
				b.StartTimer()
				admin.MustJSON("POST", "/api/v1/promotions", map[string]any{"source": "oci-dev", "target": key, "artifact": "team/api:v1"}, http.StatusCreated, nil)
			}
		})
	}
}

// BenchmarkRetentionDryRun10000Tags: one image name with 10,000 tagged
// manifests (and their layer links) and an ECR policy plus keep_last, dry
// run through the API. The rows are seeded directly in the metadata store
// (the same rows 10,000 pushes make: a component, a manifest asset, a tag
// and a layer link each); the dry run reads only metadata.
func BenchmarkRetentionDryRun10000Tags(b *testing.B) {
	e := apptest.New(b, `
repositories:
  - key: oci-dev
    format: oci
    kind: local
    tier: dev
    retention:
      keep_last: 500
      ecr_policy: |
        {"rules": [
          {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["release-"], "countType": "imageCountMoreThan", "countNumber": 100}, "action": {"type": "expire"}},
          {"rulePriority": 2, "selection": {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}, "action": {"type": "expire"}}
        ]}
`)
	seedTags(b, e, 10000)
	admin := e.Admin()
	b.ResetTimer()
	for b.Loop() {
		var rep struct {
			Expired int `json:"expired"`
		}
		admin.MustJSON("POST", "/api/v1/retention", map[string]any{"repos": []string{"oci-dev"}, "dry_run": true}, 200, &rep)
		if rep.Expired == 0 {
			b.Fatal("nothing would expire")
		}
		b.ReportMetric(float64(rep.Expired), "expired/op")
	}
}

func seedTags(b *testing.B, e *apptest.Env, n int) {
	r, err := e.App.Repos.Repo("oci-dev")
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	old := time.Now().Add(-90 * 24 * time.Hour)
	err = e.App.Store.InTx(ctx, func(tx meta.Tx) error {
		layer := digest.FromString("shared layer").String()
		if err := tx.PutBlob(ctx, layer, 12); err != nil {
			return err
		}
		if err := tx.PutAsset(ctx, &meta.Asset{RepoID: r.ID, Path: "team/api/_blobs/" + layer, Blob: layer, Size: 12}); err != nil {
			return err
		}
		for i := range n {
			d := digest.FromString(fmt.Sprintf("manifest %d", i)).String()
			c := &meta.Component{RepoID: r.ID, Name: "team/api", Version: d, CreatedAt: old.Add(time.Duration(i) * time.Minute)}
			if err := tx.PutComponent(ctx, c); err != nil {
				return err
			}
			if err := tx.PutBlob(ctx, d, 400); err != nil {
				return err
			}
			if err := tx.PutAsset(ctx, &meta.Asset{RepoID: r.ID, Path: "team/api/_manifests/" + d, Blob: d, Size: 400, ComponentID: c.ID}); err != nil {
				return err
			}
			tag := fmt.Sprintf("build-%d", i)
			if i%10 == 0 {
				tag = fmt.Sprintf("release-%d", i)
			}
			if err := tx.SetTag(ctx, &meta.Tag{RepoID: r.ID, Name: "team/api", Tag: tag, Target: d}); err != nil {
				return err
			}
			if err := tx.PutLinks(ctx, []meta.Link{{RepoID: r.ID, Name: "team/api", Source: d, Target: layer, Kind: "blob"}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
