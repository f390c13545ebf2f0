package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The crash test (issue 2, "Proof expected"): the server is killed with
// SIGKILL at random moments during concurrent uploads, many times; after
// each restart no asset points at a missing or partial blob and every
// acknowledged upload is intact.
//
// Each uploader goroutine owns its paths, so the uploads of one path are
// sequential and the test knows exactly which contents a path may hold after
// a crash: the last acknowledged one, or one sent after it whose outcome is
// unknown because the connection broke. After every restart the test
// downloads everything the server lists, checks it against the listing and
// against that model, and hashes every blob file in the data directory
// against its name.
//
// SIGKILL loses the process, not the page cache: this proves the ordering
// (blob in place before the metadata commit, no partial blob under its
// digest, atomic metadata), not that fsync reached the disk.
//
// COFFER_CRASH_SEED replays a seed (timing still varies); COFFER_CRASH_ROUNDS
// overrides the number of rounds.

const crashConfig = `repositories:
  - key: raw-dev
    format: raw
    kind: local
    tier: dev
  - key: raw-staging
    format: raw
    kind: local
    tier: staging
`

const (
	crashUploaders       = 6
	crashDevPaths        = 6  // per uploader, overwritten again and again
	crashMaxStagingPaths = 40 // per uploader, each written once (immutable)
	crashSharedContents  = 6  // contents several uploaders put at their own paths (dedup)
)

// crashContent is upload content, regenerated from its seed when needed.
type crashContent struct {
	seed uint64
	size int
	sha  string
}

func newCrashContent(seed uint64, size int) (*crashContent, []byte) {
	c := &crashContent{seed: seed, size: size}
	b := c.bytes()
	sum := sha256.Sum256(b)
	c.sha = hex.EncodeToString(sum[:])
	return c, b
}

func (c *crashContent) bytes() []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], c.seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(c.size))
	b := make([]byte, c.size)
	rand.NewChaCha8(key).Read(b)
	return b
}

// crashSize draws an upload size up to maxSize: mostly small, some of a
// few MiB, a few past the blob store's 8 MiB writeback chunk.
func crashSize(r *rand.Rand, maxSize int) int {
	var n int
	switch x := r.Float64(); {
	case x < 0.5:
		n = 1<<10 + r.IntN(63<<10) // 1-64 KiB
	case x < 0.85:
		n = 64<<10 + r.IntN(960<<10) // 64 KiB-1 MiB
	case x < 0.97 || maxSize < 8<<20:
		n = 1<<20 + r.IntN(3<<20) // 1-4 MiB
	default:
		n = 8<<20 + r.IntN(4<<20) // 8-12 MiB: the store's writeback path
	}
	return min(n, maxSize)
}

// crashPath is what the test knows about one path.
type crashPath struct {
	repo  string
	path  string
	fixed *crashContent // staging: the only content this path may ever hold
	// known is the content the path is known to hold (last acknowledged, or
	// observed after a restart); nil when it is known to hold nothing.
	known *crashContent
	// pending are contents sent after known whose upload broke off: each
	// may or may not have been committed.
	pending []*crashContent
}

func (p *crashPath) key() string { return p.repo + "/" + p.path }

type crashStats struct {
	acked, ackedBytes, interrupted, rejected atomic.Int64
	committedUnacked, lostUnacked            int64
	killedInFlight                           int // rounds with at least one upload broken by the kill
	maxTempFiles                             int
	blobsHashed                              int
}

type crashTest struct {
	t       *testing.T
	seed    uint64
	shared  []*crashContent
	up      []*crashUploader
	stats   crashStats
	hashed  map[string]string // blob file name -> size/mtime already verified
	blobDir string

	errMu  sync.Mutex
	nerrs  int
	failed atomic.Bool
}

// errorf reports a failure from any goroutine, keeping the log readable.
func (ct *crashTest) errorf(format string, args ...any) {
	ct.failed.Store(true)
	ct.errMu.Lock()
	defer ct.errMu.Unlock()
	ct.nerrs++
	if ct.nerrs <= 40 {
		ct.t.Errorf(format, args...)
	} else if ct.nerrs == 41 {
		ct.t.Errorf("(further failures not shown)")
	}
}

type crashUploader struct {
	ct      *crashTest
	id      int
	rng     *rand.Rand
	dev     []*crashPath
	staging []*crashPath
	// inFlightKilled counts uploads broken off by the kill in this round.
	inFlightKilled int
	acked          int
}

func TestCrashKillDuringUploads(t *testing.T) {
	rounds := 50
	if testing.Short() {
		rounds = 5
	}
	if v := os.Getenv("COFFER_CRASH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("COFFER_CRASH_ROUNDS=%q: want a positive number", v)
		}
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("COFFER_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("COFFER_CRASH_SEED=%q: %v", v, err)
		}
		seed = n
	}
	t.Logf("seed %d (replay with COFFER_CRASH_SEED=%d), %d rounds", seed, seed, rounds)
	start := time.Now()

	ct := &crashTest{t: t, seed: seed, hashed: map[string]string{}}
	master := rand.New(rand.NewPCG(seed, 0))
	for range crashSharedContents {
		c, _ := newCrashContent(master.Uint64(), crashSize(master, 4<<20))
		ct.shared = append(ct.shared, c)
	}
	for i := range crashUploaders {
		u := &crashUploader{ct: ct, id: i}
		for j := range crashDevPaths {
			u.dev = append(u.dev, &crashPath{repo: "raw-dev", path: fmt.Sprintf("u%d/d%d/f%02d.bin", i, j%2, j)})
		}
		ct.up = append(ct.up, u)
	}

	s := StartServer(t, crashConfig)
	ct.blobDir = filepath.Join(s.DataDir, "blobs")
	ct.verify(s, 0)
	for round := 1; round <= rounds; round++ {
		delay := time.Duration(20+master.IntN(281)) * time.Millisecond
		ct.runRound(s, round, delay)
		s.Start()
		ct.verify(s, round)
		if ct.failed.Load() {
			t.Logf("server warnings and errors since the last restart:\n%s", crashTail(crashProblems(s.Log()), 6000))
			t.Fatalf("round %d: invariants broken (seed %d)", round, seed)
		}
	}
	s.Stop()

	st := &ct.stats
	staging := 0
	for _, u := range ct.up {
		staging += len(u.staging)
	}
	t.Logf("%d SIGKILL/restart rounds in %v (seed %d): %d uploads acknowledged (%.1f MiB), "+
		"%d interrupted by the kill (%d of them found committed after restart, %d not), "+
		"%d staging overwrites refused as expected; the kill hit uploads in flight in %d of %d rounds; "+
		"%d dev + %d staging paths; %d blob files hashed; at most %d temporary upload files left behind",
		rounds, time.Since(start).Round(time.Millisecond), seed, st.acked.Load(), float64(st.ackedBytes.Load())/(1<<20),
		st.interrupted.Load(), st.committedUnacked, st.lostUnacked, st.rejected.Load(), st.killedInFlight, rounds,
		crashUploaders*crashDevPaths, staging, st.blobsHashed, st.maxTempFiles)
}

// runRound uploads concurrently to the running server and kills it with
// SIGKILL after delay, while uploads are in flight.
func (ct *crashTest) runRound(s *Server, round int, delay time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: crashUploaders, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, u := range ct.up {
		u.rng = rand.New(rand.NewPCG(ct.seed, uint64(round)<<8|uint64(u.id+1)))
		u.inFlightKilled, u.acked = 0, 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				u.step(client, s.URL, stop)
			}
		}()
	}
	time.Sleep(delay)
	close(stop)
	s.Kill()
	wg.Wait()
	acked, broken := 0, 0
	for _, u := range ct.up {
		acked += u.acked
		broken += u.inFlightKilled
	}
	if broken > 0 {
		ct.stats.killedInFlight++
	}
	ct.t.Logf("round %2d: SIGKILL after %3dms: %3d uploads acknowledged, %d broken off", round, delay.Milliseconds(), acked, broken)
}

// step makes one upload: to dev (new content, identical re-upload, or a
// content shared with other paths) or to staging (first write, identical
// re-upload, or an overwrite attempt that must be refused).
func (u *crashUploader) step(client *http.Client, base string, stop <-chan struct{}) {
	r := u.rng
	var (
		p        *crashPath
		c        *crashContent
		body     []byte
		conflict bool // a staging overwrite: must be refused with 409
	)
	if r.Float64() < 0.65 {
		p = u.dev[r.IntN(len(u.dev))]
		switch x := r.Float64(); {
		case x < 0.15 && p.known != nil:
			c = p.known
		case x < 0.30:
			c = u.ct.shared[r.IntN(len(u.ct.shared))]
		default:
			c, body = newCrashContent(r.Uint64(), crashSize(r, 12<<20))
		}
	} else {
		x := r.Float64()
		switch {
		case len(u.staging) == 0 || (x < 0.5 && len(u.staging) < crashMaxStagingPaths):
			fixed, b := newCrashContent(r.Uint64(), crashSize(r, 256<<10))
			p = &crashPath{repo: "raw-staging", path: fmt.Sprintf("u%d/s%03d.bin", u.id, len(u.staging)), fixed: fixed}
			u.staging = append(u.staging, p)
			c, body = fixed, b
		case x < 0.8:
			p = u.staging[r.IntN(len(u.staging))]
			c = p.fixed
		default:
			p = u.staging[r.IntN(len(u.staging))]
			if p.known == nil {
				c = p.fixed
			} else {
				c, body = newCrashContent(r.Uint64(), crashSize(r, 64<<10))
				conflict = true
			}
		}
	}
	if body == nil {
		body = c.bytes()
	}
	chunked := r.IntN(5) == 0

	status, resp, err := crashPut(client, base, p, c, body, chunked)
	stopped := false
	select {
	case <-stop:
		stopped = true
	default:
	}
	switch {
	case err != nil:
		// The connection broke: the outcome is unknown.
		u.ct.stats.interrupted.Add(1)
		if !stopped {
			u.ct.errorf("PUT %s while the server was running: %v", p.key(), err)
		} else {
			u.inFlightKilled++
		}
		if !conflict {
			p.pending = append(p.pending, c)
		}
	case status == http.StatusOK || status == http.StatusCreated:
		var out struct {
			Size      int64             `json:"size"`
			Checksums map[string]string `json:"checksums"`
		}
		if jerr := json.Unmarshal(resp, &out); jerr != nil {
			u.ct.errorf("PUT %s: %d with an unreadable body %q: %v", p.key(), status, resp, jerr)
		} else if out.Checksums["sha256"] != c.sha || out.Size != int64(c.size) {
			u.ct.errorf("PUT %s acknowledged sha256 %s size %d, sent %s size %d", p.key(), out.Checksums["sha256"], out.Size, c.sha, c.size)
		}
		if conflict {
			u.ct.errorf("PUT %s: overwrite of an immutable staging path was accepted (%d %s)", p.key(), status, resp)
			return
		}
		p.known, p.pending = c, nil
		u.acked++
		u.ct.stats.acked.Add(1)
		u.ct.stats.ackedBytes.Add(int64(c.size))
	case status == http.StatusConflict && conflict:
		u.ct.stats.rejected.Add(1)
	default:
		u.ct.errorf("PUT %s (conflict=%v): unexpected %d %s", p.key(), conflict, status, resp)
		if !conflict {
			p.pending = append(p.pending, c) // don't guess: keep it possible
		}
	}
}

// crashPut uploads body and reads the whole response. An error means the
// exchange broke off (no complete response).
func crashPut(client *http.Client, base string, p *crashPath, c *crashContent, body []byte, chunked bool) (int, []byte, error) {
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = struct{ io.Reader }{rd} // unknown length: sent chunked
	}
	req, err := http.NewRequest(http.MethodPut, base+"/repository/"+p.repo+"/"+p.path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth("admin", adminPassword)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Checksum-Sha256", c.sha)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("reading the %d response: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, b, nil
}

type crashArtifact struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// verify checks the restarted server against the model, then updates the
// model to what the server now durably holds.
func (ct *crashTest) verify(s *Server, round int) {
	client := &http.Client{Timeout: 2 * time.Minute}
	defer client.CloseIdleConnections()
	get := func(path string) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
		if err != nil {
			return nil, err
		}
		req.SetBasicAuth("admin", adminPassword)
		return client.Do(req)
	}

	// 1. Every listed artifact downloads completely and hashes to the
	// sha256 the listing reports; its blob file has the listed size.
	observed := map[string]string{} // repo/path -> sha256 served
	for _, repo := range []string{"raw-dev", "raw-staging"} {
		after := ""
		for page := 0; ; page++ {
			q := "limit=50"
			if after != "" {
				q += "&after=" + url.QueryEscape(after)
			}
			resp, err := get("/api/v1/repositories/" + repo + "/artifacts?" + q)
			if err != nil {
				ct.t.Fatalf("round %d: listing %s: %v", round, repo, err)
			}
			var out struct {
				Items []crashArtifact `json:"items"`
				Next  string          `json:"next"`
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				ct.t.Fatalf("round %d: listing %s: %d %s", round, repo, resp.StatusCode, b)
			}
			if err := json.Unmarshal(b, &out); err != nil {
				ct.t.Fatalf("round %d: listing %s: %v in %s", round, repo, err, b)
			}
			for _, a := range out.Items {
				key := repo + "/" + a.Path
				if _, dup := observed[key]; dup {
					ct.errorf("round %d: %s listed twice", round, key)
				}
				observed[key] = ct.checkDownload(get, round, repo, a)
			}
			if out.Next == "" {
				break
			}
			if out.Next <= after || page > 10000 {
				ct.t.Fatalf("round %d: listing %s: pagination does not advance (after %q, next %q)", round, repo, after, out.Next)
			}
			after = out.Next
		}
	}

	// The format's own folder listing must show the same artifacts.
	for _, repo := range []string{"raw-dev", "raw-staging"} {
		folders := map[string]crashArtifact{}
		ct.walkFolders(get, round, repo, "/repository/"+repo+"/", folders)
		for p, a := range folders {
			key := repo + "/" + p
			if _, ok := observed[key]; !ok {
				ct.errorf("round %d: %s is in the folder listing (sha256 %s) but not in the API listing", round, key, a.SHA256)
			}
		}
		for key, sha := range observed {
			p, ok := strings.CutPrefix(key, repo+"/")
			if !ok || sha == "" {
				continue
			}
			if a, ok := folders[p]; !ok {
				ct.errorf("round %d: %s is in the API listing but not in the folder listing", round, key)
			} else if a.SHA256 != sha {
				ct.errorf("round %d: %s: folder listing says sha256 %s, download has %s", round, key, a.SHA256, sha)
			}
		}
	}

	// 2. Every path holds what the model allows: the last acknowledged
	// content, or one sent after it whose upload broke off.
	for _, u := range ct.up {
		for _, p := range append(append([]*crashPath{}, u.dev...), u.staging...) {
			key := p.key()
			sha, listed := observed[key]
			delete(observed, key)
			if !listed {
				if p.known != nil {
					status := "?"
					if resp, err := get("/repository/" + key); err == nil {
						resp.Body.Close()
						status = resp.Status
					}
					ct.errorf("round %d: acknowledged upload lost: %s should hold sha256 %s (%d bytes) but is not listed (GET: %s)",
						round, key, p.known.sha, p.known.size, status)
					continue
				}
				if len(p.pending) > 0 {
					ct.stats.lostUnacked += int64(len(p.pending))
					// Not listed: GET must agree.
					if resp, err := get("/repository/" + key); err != nil {
						ct.errorf("round %d: GET %s: %v", round, key, err)
					} else {
						resp.Body.Close()
						if resp.StatusCode != http.StatusNotFound {
							ct.errorf("round %d: %s is not listed but GET answers %s", round, key, resp.Status)
						}
					}
				}
				p.pending = nil
				continue
			}
			if sha == "" {
				continue // download failed, reported already
			}
			switch {
			case p.known != nil && sha == p.known.sha:
				if len(p.pending) > 0 && !crashHas(p.pending, sha) {
					ct.stats.lostUnacked += int64(len(p.pending))
				}
			case crashHas(p.pending, sha):
				ct.stats.committedUnacked++
				for _, c := range p.pending {
					if c.sha == sha {
						p.known = c
						break
					}
				}
			default:
				want := "nothing"
				if p.known != nil {
					want = "sha256 " + p.known.sha
				}
				var alt []string
				for _, c := range p.pending {
					alt = append(alt, c.sha)
				}
				ct.errorf("round %d: %s holds sha256 %s; acknowledged: %s; in flight at the kill: %v", round, key, sha, want, alt)
			}
			p.pending = nil
		}
	}
	if len(observed) > 0 {
		var keys []string
		for k := range observed {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		ct.errorf("round %d: artifacts listed that no upload ever sent: %v", round, keys)
	}

	// 3. Every blob file hashes to its own name: no partial blob is ever
	// visible under its digest.
	ct.checkBlobDir(round)
}

// walkFolders collects the files of the raw JSON folder listing under uri.
func (ct *crashTest) walkFolders(get func(string) (*http.Response, error), round int, repo, uri string, into map[string]crashArtifact) {
	resp, err := get(uri)
	if err != nil {
		ct.t.Fatalf("round %d: GET %s: %v", round, uri, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		ct.errorf("round %d: folder listing %s: %d %s", round, uri, resp.StatusCode, b)
		return
	}
	var l struct {
		Children []struct {
			Name   string `json:"name"`
			Folder bool   `json:"folder"`
			Size   int64  `json:"size"`
			SHA256 string `json:"sha256"`
			URI    string `json:"uri"`
		} `json:"children"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		ct.errorf("round %d: folder listing %s: %v in %s", round, uri, err, b)
		return
	}
	prefix := "/repository/" + repo + "/"
	for _, c := range l.Children {
		if !strings.HasPrefix(c.URI, prefix) {
			ct.errorf("round %d: folder listing %s: child URI %q outside %s", round, uri, c.URI, prefix)
			continue
		}
		if c.Folder {
			ct.walkFolders(get, round, repo, c.URI, into)
			continue
		}
		p := strings.TrimPrefix(c.URI, prefix)
		into[p] = crashArtifact{Path: p, Size: c.Size, SHA256: c.SHA256}
	}
}

func crashHas(cs []*crashContent, sha string) bool {
	for _, c := range cs {
		if c.sha == sha {
			return true
		}
	}
	return false
}

// checkDownload GETs one listed artifact and returns the sha256 of what was
// served ("" after a failure, which it reports).
func (ct *crashTest) checkDownload(get func(string) (*http.Response, error), round int, repo string, a crashArtifact) string {
	key := repo + "/" + a.Path
	resp, err := get("/repository/" + key)
	if err != nil {
		ct.errorf("round %d: GET %s: %v", round, key, err)
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
		ct.errorf("round %d: listed artifact %s (sha256 %s): GET answers %s %s", round, key, a.SHA256, resp.Status, b)
		return ""
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		ct.errorf("round %d: GET %s: body broke off after %d of %d bytes: %v", round, key, n, a.Size, err)
		return ""
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != a.SHA256 || n != a.Size {
		ct.errorf("round %d: %s: listing says sha256 %s (%d bytes), download has sha256 %s (%d bytes)", round, key, a.SHA256, a.Size, got, n)
	}
	if hd := resp.Header.Get("X-Checksum-Sha256"); hd != a.SHA256 {
		ct.errorf("round %d: %s: X-Checksum-Sha256 %q, listing says %s", round, key, hd, a.SHA256)
	}
	if len(a.SHA256) == 64 {
		fi, err := os.Stat(filepath.Join(ct.blobDir, "sha256", a.SHA256[:2], a.SHA256))
		if err != nil {
			ct.errorf("round %d: %s: blob file: %v", round, key, err)
		} else if fi.Size() != a.Size {
			ct.errorf("round %d: %s: blob file has %d bytes, listing says %d", round, key, fi.Size(), a.Size)
		}
	}
	return got
}

// checkBlobDir hashes every blob file not verified before (blobs are
// immutable: a file seen with the same size and time was hashed already)
// and counts the temporary upload files a kill left behind.
func (ct *crashTest) checkBlobDir(round int) {
	top := filepath.Join(ct.blobDir, "sha256")
	dirs, err := os.ReadDir(top)
	if err != nil {
		ct.t.Fatalf("round %d: %v", round, err)
	}
	for _, d := range dirs {
		if !d.IsDir() || len(d.Name()) != 2 {
			ct.errorf("round %d: unexpected entry %s in %s", round, d.Name(), top)
			continue
		}
		files, err := os.ReadDir(filepath.Join(top, d.Name()))
		if err != nil {
			ct.t.Fatalf("round %d: %v", round, err)
		}
		for _, f := range files {
			name := f.Name()
			full := filepath.Join(top, d.Name(), name)
			if _, err := hex.DecodeString(name); err != nil || len(name) != 64 || !strings.HasPrefix(name, d.Name()) || f.IsDir() {
				ct.errorf("round %d: unexpected file %s among the blobs", round, full)
				continue
			}
			fi, err := f.Info()
			if err != nil {
				ct.errorf("round %d: %s: %v", round, full, err)
				continue
			}
			stamp := fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
			if ct.hashed[name] == stamp {
				continue
			}
			got, err := crashHashFile(full)
			if err != nil {
				ct.errorf("round %d: %s: %v", round, full, err)
				continue
			}
			if got != name {
				ct.errorf("round %d: partial or corrupt blob: %s (%d bytes) hashes to %s", round, full, fi.Size(), got)
				continue
			}
			ct.hashed[name] = stamp
			ct.stats.blobsHashed++
		}
	}
	tmp, err := os.ReadDir(filepath.Join(ct.blobDir, "_uploads"))
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		ct.t.Fatalf("round %d: %v", round, err)
	}
	ct.stats.maxTempFiles = max(ct.stats.maxTempFiles, len(tmp))
}

func crashHashFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func crashTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// crashProblems keeps the log lines worth reading after a failure.
func crashProblems(log string) string {
	var b strings.Builder
	for line := range strings.Lines(log) {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") || strings.Contains(line, "status=5") {
			b.WriteString(line)
		}
	}
	return b.String()
}
