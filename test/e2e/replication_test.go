package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	gtypes "github.com/google/go-containerregistry/pkg/v1/types"
)

const replicaRepos = `
repositories:
  - {key: docker-release-local, format: oci, kind: local, tier: release}
  - {key: docker-dev-local, format: oci, kind: local, tier: dev}
  - {key: raw-release, format: raw, kind: local, tier: release}
`

// replicaState fetches a repository's replicable state from a server,
// without the times (a replica's rows are written later than the source's).
func replicaState(t *testing.T, s *Server, key string) string {
	t.Helper()
	resp := s.Do("GET", "/api/v1/replication/repositories/"+key, nil, "Authorization", basicAdmin())
	body := ReadBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("state of %s: %d %s", key, resp.StatusCode, body)
	}
	var v map[string]any
	json.Unmarshal([]byte(body), &v)
	for _, list := range []string{"components", "assets"} {
		items, _ := v[list].([]any)
		for _, it := range items {
			delete(it.(map[string]any), "created_at")
		}
	}
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

func basicAdmin() string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth("admin", adminPassword)
	return req.Header.Get("Authorization")
}

type replStatus struct {
	Targets []struct {
		Name       string  `json:"name"`
		InSync     bool    `json:"in_sync"`
		LagSeconds float64 `json:"lag_seconds"`
		LastError  string  `json:"last_error"`
		BlobsSent  int64   `json:"blobs_sent"`
		Passes     int64   `json:"passes"`
	} `json:"targets"`
}

func replicationStatus(t *testing.T, s *Server) replStatus {
	t.Helper()
	resp := s.Do("GET", "/api/v1/replication", nil, "Authorization", basicAdmin())
	var st replStatus
	if err := json.Unmarshal([]byte(ReadBody(t, resp)), &st); err != nil || len(st.Targets) != 1 {
		t.Fatalf("replication status: %v %+v", err, st)
	}
	return st
}

// waitReplicated waits until the secondary's state of every replicated
// repository equals the primary's.
func waitReplicated(t *testing.T, primary, secondary *Server, keys ...string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		same := true
		var diff string
		for _, k := range keys {
			a, b := replicaState(t, primary, k), replicaState(t, secondary, k)
			if a != b {
				same, diff = false, k
				break
			}
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not replicated within 60s; status %+v\nprimary log tail:\n%s", diff, replicationStatus(t, primary), crashTail(primary.Log(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Push replication between two real instances: images with a signature-
// like referrer, raw files, tags and deprecations reach the secondary with
// identical digests; with the secondary down the primary keeps accepting
// pushes, and once it is back it catches up without loss or duplicates;
// status and lag are reported in the API and /metrics. Only the
// repositories named in the configuration travel.
func TestReplication(t *testing.T) {
	secondary := StartServer(t, replicaRepos)
	cfg := fmt.Sprintf(`%s
replication:
  - name: dr
    url: %s
    repositories: [docker-release-*, raw-release]
    username: admin
    password_env: COFFER_DR_PASSWORD
    interval: 2s
`, replicaRepos, secondary.URL)
	primary := &Server{t: t, DataDir: t.TempDir(), Env: []string{"COFFER_DR_PASSWORD=" + adminPassword}}
	primary.Config = filepath.Join(t.TempDir(), "coffer.yaml")
	if err := os.WriteFile(primary.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	primary.Start()
	t.Cleanup(primary.Stop)

	pushImage := func(s *Server, repoName, tag string, n int) v1.Hash {
		t.Helper()
		l, _ := random.Layer(32<<10+int64(n), gtypes.OCILayer)
		img, _ := mutate.AppendLayers(empty.Image, l)
		img, _ = mutate.Config(img, v1.Config{Labels: map[string]string{"n": fmt.Sprint(n)}})
		ref := fmt.Sprintf("%s/%s/app:%s", s.Addr, repoName, tag)
		if err := remote.Write(mustRef(t, ref), img, ggcrAuth()); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		d, _ := img.Digest()
		// A referrer of the image (as cosign's OCI 1.1 mode pushes one).
		desc, _ := remote.Head(mustRef(t, ref), ggcrAuth())
		sigBase, _ := mutate.AppendLayers(empty.Image, static.NewLayer([]byte("sig "+tag), "application/vnd.dev.cosign.simplesigning.v1+json"))
		sigImg := mutate.ConfigMediaType(mutate.MediaType(sigBase, gtypes.OCIManifestSchema1), "application/vnd.dev.cosign.artifact.sig.v1+json")
		sig := mutate.Subject(sigImg, *desc).(v1.Image)
		sd, _ := sig.Digest()
		if err := remote.Write(mustRef(t, fmt.Sprintf("%s/%s/app@%s", s.Addr, repoName, sd)), sig, ggcrAuth()); err != nil {
			t.Fatalf("push referrer: %v", err)
		}
		return d
	}
	putRaw := func(s *Server, path, content string) {
		t.Helper()
		resp := s.Do("PUT", "/repository/raw-release/"+path, strings.NewReader(content), "Authorization", basicAdmin())
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("put %s: %d %s", path, resp.StatusCode, ReadBody(t, resp))
		}
	}

	// 1. Changes travel on their own.
	digests := map[string]v1.Hash{}
	for i := range 3 {
		tag := fmt.Sprintf("1.%d", i)
		digests[tag] = pushImage(primary, "docker-release-local", tag, i)
		putRaw(primary, fmt.Sprintf("app/1.%d/app.tgz", i), "release "+tag)
	}
	pushImage(primary, "docker-dev-local", "scratch", 99) // not replicated
	waitReplicated(t, primary, secondary, "docker-release-local", "raw-release")
	for tag, d := range digests {
		img, err := remote.Image(mustRef(t, fmt.Sprintf("%s/docker-release-local/app:%s", secondary.Addr, tag)), ggcrAuth())
		if err != nil {
			t.Fatalf("pull %s from the secondary: %v", tag, err)
		}
		if got, _ := img.Digest(); got != d {
			t.Fatalf("%s: secondary digest %s, primary %s", tag, got, d)
		}
		if err := pullAll(t, fmt.Sprintf("%s/docker-release-local/app:%s", secondary.Addr, tag)); err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Referrers(mustRef(t, fmt.Sprintf("%s/docker-release-local/app@%s", secondary.Addr, d)).Context().Digest(d.String()), ggcrAuth())
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := idx.IndexManifest(); len(m.Manifests) != 1 {
			t.Fatalf("referrers of %s on the secondary: %d, want 1", tag, len(m.Manifests))
		}
	}
	if resp := secondary.Do("GET", "/v2/docker-dev-local/app/tags/list", nil, "Authorization", basicAdmin()); resp.StatusCode != 404 {
		t.Fatalf("an unreplicated repository reached the secondary: %d %s", resp.StatusCode, ReadBody(t, resp))
	}
	// A promotion from the unreplicated dev repository into the release
	// repository is a change like any other: the image and its referrer
	// reach the secondary.
	promoted := pushImage(primary, "docker-dev-local", "2.0", 200)
	resp := primary.Do("POST", "/api/v1/promotions", strings.NewReader(`{"source":"docker-dev-local","target":"docker-release-local","artifact":"app:2.0"}`),
		"Authorization", basicAdmin(), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("promote: %d %s", resp.StatusCode, ReadBody(t, resp))
	}
	digests["2.0"] = promoted
	waitReplicated(t, primary, secondary, "docker-release-local")
	if desc, err := remote.Head(mustRef(t, secondary.Addr+"/docker-release-local/app:2.0"), ggcrAuth()); err != nil || desc.Digest != promoted {
		t.Fatalf("the promoted image on the secondary: %v %v, want %s", desc, err, promoted)
	}
	st := replicationStatus(t, primary)
	if !st.Targets[0].InSync || st.Targets[0].BlobsSent == 0 || st.Targets[0].LastError != "" {
		t.Fatalf("status after replication: %+v", st)
	}

	// 2. The secondary goes down; the primary keeps accepting work.
	secondary.Stop()
	for i := 3; i < 8; i++ {
		tag := fmt.Sprintf("1.%d", i)
		digests[tag] = pushImage(primary, "docker-release-local", tag, i)
		putRaw(primary, fmt.Sprintf("app/1.%d/app.tgz", i), "release "+tag)
	}
	resp = primary.Do("POST", "/api/v1/repositories/raw-release/deprecations", strings.NewReader(`{"path":"app/1.0/app.tgz","message":"use 1.7"}`),
		"Authorization", basicAdmin(), "Content-Type", "application/json")
	if resp.StatusCode/100 != 2 {
		t.Fatalf("deprecate: %d %s", resp.StatusCode, ReadBody(t, resp))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st = replicationStatus(t, primary)
		if !st.Targets[0].InSync && st.Targets[0].LagSeconds > 0 && st.Targets[0].LastError != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status with the secondary down: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	metrics := ReadBody(t, primary.Do("GET", "/metrics", nil))
	if !strings.Contains(metrics, `coffer_replication_in_sync{target="dr"} 0`) || !strings.Contains(metrics, `coffer_replication_lag_seconds{target="dr"}`) {
		t.Fatalf("metrics with the secondary down lack the replication gauges:\n%s", metrics)
	}

	// 3. It comes back and catches up: same state, nothing lost or doubled.
	secondary.Start()
	waitReplicated(t, primary, secondary, "docker-release-local", "raw-release")
	for tag, d := range digests {
		img, err := remote.Image(mustRef(t, fmt.Sprintf("%s/docker-release-local/app:%s", secondary.Addr, tag)), ggcrAuth())
		if err != nil {
			t.Fatalf("pull %s from the secondary after catch-up: %v", tag, err)
		}
		if got, _ := img.Digest(); got != d {
			t.Fatalf("%s: secondary digest %s, primary %s", tag, got, d)
		}
	}
	art := ReadBody(t, secondary.Do("GET", "/api/v1/repositories/raw-release/artifacts/app/1.0/app.tgz", nil, "Authorization", basicAdmin()))
	if !strings.Contains(art, `"deprecated": true`) && !strings.Contains(art, `"deprecated":true`) {
		t.Fatalf("the deprecation did not travel: %s", art)
	}
	tags := ReadBody(t, secondary.Do("GET", "/v2/docker-release-local/app/tags/list", nil, "Authorization", basicAdmin()))
	var tl struct{ Tags []string }
	json.Unmarshal([]byte(tags), &tl)
	if len(tl.Tags) != len(digests) {
		t.Fatalf("secondary tags %v, want %d (no loss, no duplicates)", tl.Tags, len(digests))
	}
	deadline = time.Now().Add(20 * time.Second)
	for !replicationStatus(t, primary).Targets[0].InSync {
		if time.Now().After(deadline) {
			t.Fatalf("the primary never reported being in sync again: %+v", replicationStatus(t, primary))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
