package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/blob/s3/s3test"
	"github.com/cofferhq/coffer/internal/format/npm/npmtest"
	"github.com/cofferhq/coffer/internal/meta/postgres/pgtest"
)

// Scale-out (issue 8): several `coffer serve` processes sharing one
// PostgreSQL database and one S3 bucket behave as one repository.

const scaleoutRepos = `repositories:
  - {key: docker-dev, format: oci, kind: local, tier: dev}
  - {key: raw-dev, format: raw, kind: local, tier: dev}
  - {key: npm-dev, format: npm, kind: local, tier: dev}
`

// startCluster starts n nodes on a fresh database and bucket.
func startCluster(t *testing.T, n int) []*Server {
	t.Helper()
	dsn := pgtest.Database(t)
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	conf := fmt.Sprintf(`gc: {interval: 1s, grace: 1h}
storage:
  database: {postgres: {dsn: %q}}
  blobs: {s3: {endpoint: %q, bucket: %q, access_key: %q, secret_key_env: COFFER_E2E_S3_SECRET, path_style: true, part_size: 5MiB, redirect: true}}
`, dsn, srv.Endpoint, bucket, srv.AccessKey) + scaleoutRepos
	var nodes []*Server
	for i := 0; i < n; i++ {
		s := &Server{t: t, DataDir: t.TempDir(), Env: []string{"COFFER_E2E_S3_SECRET=" + srv.SecretKey}}
		s.Config = s.DataDir + "/coffer.yaml"
		if err := writeFile(s.Config, conf); err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(s.Stop)
		nodes = append(nodes, s)
	}
	return nodes
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestScaleOutTwoNodes(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]

	t.Run("PushThroughAPullThroughB", func(t *testing.T) {
		img, err := random.Image(300_000, 3)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(mustRef(t, a.Addr+"/docker-dev/team/app:v1"), img, ggcrAuth()); err != nil {
			t.Fatal(err)
		}
		got, err := remote.Image(mustRef(t, b.Addr+"/docker-dev/team/app:v1"), ggcrAuth())
		if err != nil {
			t.Fatal(err)
		}
		want, _ := img.Digest()
		if d, _ := got.Digest(); d != want {
			t.Fatalf("B serves %s, A stored %s", d, want)
		}
		layers, _ := got.Layers()
		for _, l := range layers {
			rc, err := l.Compressed() // verifies the digest as it reads
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatalf("layer through B: %v", err)
			}
			rc.Close()
		}
		// With redirect on, a blob GET answers 307 to a presigned URL of
		// the bucket (go-containerregistry followed it above).
		cfg, _ := img.ConfigName()
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest(http.MethodGet, b.URL+"/v2/docker-dev/team/app/blobs/"+cfg.String(), nil)
		req.SetBasicAuth("admin", adminPassword)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusTemporaryRedirect || !strings.Contains(loc, "X-Amz-Signature=") {
			t.Fatalf("blob GET with redirect on: %d, Location %q", resp.StatusCode, loc)
		}
		resp, err = http.Get(resp.Header.Get("Location")) // no credentials: the URL carries them
		if err != nil {
			t.Fatal(err)
		}
		got2, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if digest.FromBytes(got2).String() != cfg.String() {
			t.Fatalf("presigned URL served %d bytes of another digest", len(got2))
		}

		body := randomBytes(7 << 20) // a multipart blob
		put(t, a, "/repository/raw-dev/big.bin", body)
		if got := mustGet(t, b, "/repository/raw-dev/big.bin"); !bytes.Equal(got, body) {
			t.Fatal("raw file through B differs")
		}
	})

	t.Run("ChunkedUploadStartedOnAFinishedOnB", func(t *testing.T) {
		data := randomBytes(6<<20 + 1000)
		d := digest.FromBytes(data)
		loc := startUpload(t, a, "docker-dev/team/chunked")
		loc = patchChunk(t, a, loc, data[:3<<20], 0)
		loc = patchChunk(t, b, loc, data[3<<20:6<<20], 3<<20)
		resp := b.Do(http.MethodPut, loc+sep(loc)+"digest="+d.String(), bytes.NewReader(data[6<<20:]),
			"Content-Type", "application/octet-stream")
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("finish on B: %d %s", resp.StatusCode, ReadBody(t, resp))
		}
		resp.Body.Close()
		if got := mustGet(t, a, "/v2/docker-dev/team/chunked/blobs/"+d.String()); !bytes.Equal(got, data) {
			t.Fatal("blob read through A differs")
		}
	})

	t.Run("CachedPackumentInvalidatedAcrossNodes", func(t *testing.T) {
		reg := func(s *Server) string { return s.URL + "/repository/npm-dev/" }
		p1 := npmtest.Package{Name: "shared-pkg", Version: "1.0.0"}
		if err := npmtest.Publish(http.DefaultClient, reg(a), "admin", adminPassword, p1, "latest"); err != nil {
			t.Fatal(err)
		}
		versions := func(s *Server) string {
			var doc struct {
				DistTags map[string]string `json:"dist-tags"`
			}
			if err := json.Unmarshal(mustGet(t, s, "/repository/npm-dev/shared-pkg"), &doc); err != nil {
				t.Fatal(err)
			}
			return doc.DistTags["latest"]
		}
		if v := versions(b); v != "1.0.0" { // B generates and caches the packument
			t.Fatalf("B: latest %q", v)
		}
		p2 := npmtest.Package{Name: "shared-pkg", Version: "1.1.0"}
		if err := npmtest.Publish(http.DefaultClient, reg(a), "admin", adminPassword, p2, "latest"); err != nil {
			t.Fatal(err)
		}
		// B learns of A's publish by notification (milliseconds); the
		// deadline only bounds a failure.
		eventually(t, 10*time.Second, "B's packument shows A's publish", func() bool { return versions(b) == "1.1.0" })
	})

	t.Run("TagMovedOnAIsSeenOnB", func(t *testing.T) {
		ref := func(s *Server) string { return s.Addr + "/docker-dev/team/moving:latest" }
		digestOn := func(s *Server) v1.Hash {
			desc, err := remote.Head(mustRef(t, ref(s)), ggcrAuth())
			if err != nil {
				t.Fatal(err)
			}
			return desc.Digest
		}
		img1, _ := random.Image(1000, 1)
		img2, _ := random.Image(1000, 1)
		d1, _ := img1.Digest()
		d2, _ := img2.Digest()
		must(t, remote.Write(mustRef(t, ref(a)), img1, ggcrAuth()))
		for range 3 { // B resolves the tag and caches it
			if d := digestOn(b); d != d1 {
				t.Fatalf("B serves %s, A pushed %s", d, d1)
			}
		}
		must(t, remote.Write(mustRef(t, ref(a)), img2, ggcrAuth()))
		eventually(t, 10*time.Second, "B's tag follows A's push", func() bool { return digestOn(b) == d2 })
	})

	t.Run("ScheduledJobsOnOneNodeSurviveItsDeath", func(t *testing.T) {
		const leaderLine = "this node runs the scheduled jobs"
		var leader, other *Server
		eventually(t, 20*time.Second, "a node runs the scheduled jobs", func() bool {
			la, lb := strings.Contains(a.Log(), leaderLine), strings.Contains(b.Log(), leaderLine)
			if la && lb {
				t.Fatal("both nodes run the scheduled jobs")
			}
			switch {
			case la:
				leader, other = a, b
			case lb:
				leader, other = b, a
			}
			return la || lb
		})
		// Collections happen (interval 1s) on the leader only.
		eventually(t, 20*time.Second, "the leader collects garbage", func() bool {
			return strings.Count(leader.Log(), "msg=\"garbage collection\"") >= 2
		})
		if strings.Contains(other.Log(), "msg=\"garbage collection\"") {
			t.Fatal("the other node collected garbage too")
		}
		leader.Kill()
		eventually(t, 30*time.Second, "the other node takes the scheduled jobs over", func() bool {
			return strings.Contains(other.Log(), leaderLine) && strings.Contains(other.Log(), "msg=\"garbage collection\"")
		})
	})
}

// TestScaleOutKillNode pushes and pulls through two nodes while one is
// killed with SIGKILL: every push a node acknowledged is complete and
// pullable through the survivor, and chunked uploads the dead node started
// are finished through the survivor.
func TestScaleOutKillNode(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]

	// Chunked uploads begun on A before it dies.
	type pending struct {
		loc  string
		data []byte
	}
	var chunked []pending
	for i := 0; i < 3; i++ {
		data := randomBytes(5<<20 + i*1000)
		loc := startUpload(t, a, fmt.Sprintf("docker-dev/kill/c%d", i))
		loc = patchChunk(t, a, loc, data[:5<<20], 0)
		chunked = append(chunked, pending{loc, data})
	}

	var (
		mu    sync.Mutex
		acked = map[string][]byte{} // path → content a node acknowledged
		stop  atomic.Bool
		wg    sync.WaitGroup
		seq   atomic.Int64
	)
	client := &http.Client{Timeout: 30 * time.Second}
	push := func(s *Server) {
		defer wg.Done()
		for !stop.Load() {
			n := seq.Add(1)
			size := 1000 + int(n%7)*200_000
			if n%10 == 0 {
				size = 6 << 20 // multipart
			}
			body := randomBytes(size)
			path := fmt.Sprintf("/repository/raw-dev/kill/%d.bin", n)
			req, _ := http.NewRequest(http.MethodPut, s.URL+path, bytes.NewReader(body))
			req.SetBasicAuth("admin", adminPassword)
			resp, err := client.Do(req)
			if err != nil {
				continue // the node died under this request: outcome unknown
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusCreated {
				mu.Lock()
				acked[path] = body
				mu.Unlock()
			}
		}
	}
	var pulls, pullErrs atomic.Int64
	pull := func() { // reads through B what either node acknowledged
		defer wg.Done()
		for !stop.Load() {
			mu.Lock()
			var path string
			var want []byte
			for p, w := range acked {
				path, want = p, w
				break
			}
			mu.Unlock()
			if path == "" {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			req, _ := http.NewRequest(http.MethodGet, b.URL+path, nil)
			req.SetBasicAuth("admin", adminPassword)
			resp, err := client.Do(req)
			if err != nil {
				pullErrs.Add(1)
				continue
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			pulls.Add(1)
			if resp.StatusCode != 200 || !bytes.Equal(got, want) {
				pullErrs.Add(1)
				t.Errorf("pull %s through B during the kill: %d, %d bytes (want %d)", path, resp.StatusCode, len(got), len(want))
			}
		}
	}
	for i := 0; i < 3; i++ {
		wg.Add(2)
		go push(a)
		go push(b)
	}
	wg.Add(2)
	go pull()
	go pull()
	time.Sleep(1500 * time.Millisecond)
	a.Kill() // in the middle of pushes to A and B and pulls through B
	time.Sleep(1500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 10 {
		t.Fatalf("only %d pushes acknowledged: the test did not exercise anything", len(acked))
	}
	for path, want := range acked {
		if got := mustGet(t, b, path); !bytes.Equal(got, want) {
			t.Fatalf("acknowledged push %s: B serves %d bytes, want %d", path, len(got), len(want))
		}
	}
	t.Logf("%d acknowledged pushes all pullable through B; %d pulls during the run", len(acked), pulls.Load())

	for i, p := range chunked {
		d := digest.FromBytes(p.data)
		resp := b.Do(http.MethodPut, p.loc+sep(p.loc)+"digest="+d.String(), bytes.NewReader(p.data[5<<20:]),
			"Content-Type", "application/octet-stream")
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("finishing on B the upload %d begun on the dead node: %d %s", i, resp.StatusCode, ReadBody(t, resp))
		}
		resp.Body.Close()
		if got := mustGet(t, b, fmt.Sprintf("/v2/docker-dev/kill/c%d/blobs/%s", i, d)); !bytes.Equal(got, p.data) {
			t.Fatalf("chunked upload %d differs", i)
		}
	}
}

func mustGet(t *testing.T, s *Server, path string) []byte {
	t.Helper()
	resp := s.Do(http.MethodGet, path, nil)
	body := ReadBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s on %s: %d %s", path, s.Addr, resp.StatusCode, body)
	}
	return []byte(body)
}

func sep(loc string) string {
	if strings.Contains(loc, "?") {
		return "&"
	}
	return "?"
}

// startUpload opens an OCI upload session and returns its location path.
func startUpload(t *testing.T, s *Server, name string) string {
	t.Helper()
	resp := s.Do(http.MethodPost, "/v2/"+name+"/blobs/uploads/", nil)
	ReadBody(t, resp)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload on %s: %d", s.Addr, resp.StatusCode)
	}
	return locationPath(t, resp)
}

func patchChunk(t *testing.T, s *Server, loc string, chunk []byte, start int) string {
	t.Helper()
	resp := s.Do(http.MethodPatch, loc, bytes.NewReader(chunk), "Content-Type", "application/octet-stream",
		"Content-Range", fmt.Sprintf("%d-%d", start, start+len(chunk)-1))
	body := ReadBody(t, resp)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH on %s: %d %s", s.Addr, resp.StatusCode, body)
	}
	return locationPath(t, resp)
}

func locationPath(t *testing.T, resp *http.Response) string {
	t.Helper()
	loc := resp.Header.Get("Location")
	if loc == "" {
		t.Fatal("no Location")
	}
	if i := strings.Index(loc, "/v2/"); i > 0 {
		loc = loc[i:] // absolute URL of one node: keep the path
	}
	return loc
}
