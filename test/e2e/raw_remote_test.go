package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The remote-repository machinery, exercised through raw repositories with a
// second Coffer process on loopback as the upstream.

const upstreamConfig = `
repositories:
  - key: up
    format: raw
    kind: local
    tier: dev
`

func downstreamConfig(upstreamURL, extra string) string {
	return fmt.Sprintf(`
repositories:
  - key: raw-local
    format: raw
    kind: local
    tier: dev
  - key: raw-remote
    format: raw
    kind: remote
    upstream: {url: %q, username: admin, password_env: UPSTREAM_PW, timeout: 2s}
    metadata_ttl: 2s
    negative_ttl: 2s
  - key: raw
    format: raw
    kind: virtual
    members: [raw-remote, raw-local]
    default_deploy: raw-local
%s`, upstreamURL, extra)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func put(t *testing.T, s *Server, path string, body []byte) {
	t.Helper()
	resp := s.Do("PUT", path, bytes.NewReader(body))
	if msg := ReadBody(t, resp); resp.StatusCode/100 != 2 {
		t.Fatalf("PUT %s: %d %s", path, resp.StatusCode, msg)
	}
}

func get(t *testing.T, s *Server, path string) (*http.Response, []byte) {
	t.Helper()
	resp := s.Do("GET", path, nil)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return resp, b
}

// upstreamGets counts the GET requests the upstream answered for its
// repository "up", by status, from its own /metrics.
func upstreamGets(t *testing.T, s *Server) map[string]int {
	t.Helper()
	resp := s.Do("GET", "/metrics", nil)
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "coffer_http_requests_total{") || !strings.Contains(line, `repository="up"`) ||
			!strings.Contains(line, `method="GET"`) {
			continue
		}
		i := strings.Index(line, `status="`)
		status := line[i+8 : i+11]
		n, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		out[status] = int(n)
	}
	return out
}

func startPair(t *testing.T) (up, down *Server) {
	up = StartServer(t, upstreamConfig)
	down = &Server{t: t, DataDir: t.TempDir(), Env: []string{"UPSTREAM_PW=" + adminPassword}}
	down.Config = writeConfig(t, downstreamConfig(up.URL+"/repository/up/", ""))
	down.Start()
	t.Cleanup(down.Stop)
	return up, down
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := t.TempDir() + "/coffer.yaml"
	if err := writeFile(path, yaml); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRemoteCachesAndRevalidates(t *testing.T) {
	up, down := startPair(t)
	v1 := randomBytes(100_000)
	put(t, up, "/repository/up/dir/file.bin", v1)

	resp, body := get(t, down, "/repository/raw-remote/dir/file.bin")
	if resp.StatusCode != 200 || sha(body) != sha(v1) {
		t.Fatalf("first GET through remote: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp.Header.Get("X-Checksum-Sha256") != sha(v1) {
		t.Fatalf("checksum header %q", resp.Header.Get("X-Checksum-Sha256"))
	}
	before := upstreamGets(t, up)
	for i := 0; i < 5; i++ {
		if resp, body := get(t, down, "/repository/raw-remote/dir/file.bin"); resp.StatusCode != 200 || sha(body) != sha(v1) {
			t.Fatalf("cached GET %d: %d", i, resp.StatusCode)
		}
	}
	if after := upstreamGets(t, up); after["200"] != before["200"] || after["304"] != before["304"] {
		t.Fatalf("GETs within the metadata TTL reached the upstream: %v → %v", before, after)
	}

	// After the TTL: a conditional request, answered 304, same content.
	time.Sleep(2100 * time.Millisecond)
	if resp, body := get(t, down, "/repository/raw-remote/dir/file.bin"); resp.StatusCode != 200 || sha(body) != sha(v1) {
		t.Fatalf("revalidated GET: %d", resp.StatusCode)
	}
	if after := upstreamGets(t, up); after["304"] != before["304"]+1 || after["200"] != before["200"] {
		t.Fatalf("revalidation was not one conditional GET answered 304: %v → %v", before, after)
	}

	// The upstream content changes: seen after the TTL, not before.
	v2 := randomBytes(50_000)
	put(t, up, "/repository/up/dir/file.bin", v2)
	if _, body := get(t, down, "/repository/raw-remote/dir/file.bin"); sha(body) != sha(v1) {
		t.Fatal("new upstream content served before the TTL expired")
	}
	time.Sleep(2100 * time.Millisecond)
	if _, body := get(t, down, "/repository/raw-remote/dir/file.bin"); sha(body) != sha(v2) {
		t.Fatal("new upstream content not served after the TTL")
	}
}

func TestRemoteSingleFlight(t *testing.T) {
	up, down := startPair(t)
	content := randomBytes(8 << 20)
	put(t, up, "/repository/up/big.bin", content)
	before := upstreamGets(t, up)
	var wg sync.WaitGroup
	errc := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(strings.Replace(down.URL, "http://", "http://admin:"+adminPassword+"@", 1) + "/repository/raw-remote/big.bin")
			if err != nil {
				errc <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || sha(b) != sha(content) {
				errc <- fmt.Sprintf("status %d, %d bytes", resp.StatusCode, len(b))
			}
		}()
	}
	wg.Wait()
	close(errc)
	for e := range errc {
		t.Error(e)
	}
	after := upstreamGets(t, up)
	if got := after["200"] - before["200"]; got != 1 {
		t.Fatalf("20 concurrent misses made %d upstream requests, want 1", got)
	}
}

func TestRemoteNegativeCache(t *testing.T) {
	up, down := startPair(t)
	resp, body := get(t, down, "/repository/raw-remote/later.txt")
	if resp.StatusCode != 404 || !strings.Contains(string(body), "later.txt") {
		t.Fatalf("missing upstream path: %d %s", resp.StatusCode, body)
	}
	put(t, up, "/repository/up/later.txt", []byte("now here"))
	if resp, _ := get(t, down, "/repository/raw-remote/later.txt"); resp.StatusCode != 404 {
		t.Fatalf("404 not remembered for the negative TTL: %d", resp.StatusCode)
	}
	time.Sleep(2100 * time.Millisecond)
	if resp, body := get(t, down, "/repository/raw-remote/later.txt"); resp.StatusCode != 200 || string(body) != "now here" {
		t.Fatalf("after the negative TTL: %d %q", resp.StatusCode, body)
	}
}

func TestRemoteServesStaleWhenUpstreamDownOrSlow(t *testing.T) {
	up, down := startPair(t)
	content := randomBytes(10_000)
	put(t, up, "/repository/up/keep.bin", content)
	if resp, _ := get(t, down, "/repository/raw-remote/keep.bin"); resp.StatusCode != 200 {
		t.Fatal("priming the cache failed")
	}
	time.Sleep(2100 * time.Millisecond) // past the TTL: the next GET asks the upstream

	// Slow: the upstream process is frozen; the 2 s timeout gives up on it.
	up.cmd.Process.Signal(syscall.SIGSTOP)
	resp, body := get(t, down, "/repository/raw-remote/keep.bin")
	up.cmd.Process.Signal(syscall.SIGCONT)
	if resp.StatusCode != 200 || sha(body) != sha(content) {
		t.Fatalf("slow upstream: %d, %d bytes", resp.StatusCode, len(body))
	}
	if !strings.Contains(resp.Header.Get("Warning"), "Stale") {
		t.Fatalf("stale copy not marked: Warning %q", resp.Header.Get("Warning"))
	}

	// Down: stopped.
	up.Stop()
	time.Sleep(2100 * time.Millisecond)
	resp, body = get(t, down, "/repository/raw-remote/keep.bin")
	if resp.StatusCode != 200 || sha(body) != sha(content) {
		t.Fatalf("upstream down, cached path: %d", resp.StatusCode)
	}
	resp, body = get(t, down, "/repository/raw-remote/never-cached.bin")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "unreachable") {
		t.Fatalf("upstream down, uncached path: %d %s", resp.StatusCode, body)
	}
	// Through the virtual repository too.
	if resp, body := get(t, down, "/repository/raw/keep.bin"); resp.StatusCode != 200 || sha(body) != sha(content) {
		t.Fatalf("upstream down, via virtual: %d", resp.StatusCode)
	}

	// Up again: fresh fetches work.
	up.Start()
	put(t, up, "/repository/up/new.bin", []byte("new"))
	if resp, body := get(t, down, "/repository/raw-remote/new.bin"); resp.StatusCode != 200 || string(body) != "new" {
		t.Fatalf("after the upstream came back: %d %q", resp.StatusCode, body)
	}
}

func TestRemoteUpstreamKilledMidDownloadCachesNothing(t *testing.T) {
	up := StartServer(t, upstreamConfig)
	// A relay that passes the upstream's bytes on slowly and says when the
	// first megabyte went through, so the upstream dies mid-download.
	started := make(chan struct{}, 1)
	relay := throttlingRelay(t, up.URL, started)
	down := &Server{t: t, DataDir: t.TempDir(), Env: []string{"UPSTREAM_PW=" + adminPassword}}
	down.Config = writeConfig(t, downstreamConfig(relay+"/repository/up/", ""))
	down.Start()
	t.Cleanup(down.Stop)

	content := randomBytes(32 << 20)
	put(t, up, "/repository/up/huge.bin", content)
	go func() {
		<-started
		up.Kill()
	}()
	resp, body := get(t, down, "/repository/raw-remote/huge.bin")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("upstream killed mid-download: %d %.200s", resp.StatusCode, body)
	}
	if r := down.Do("GET", "/api/v1/repositories/raw-remote/artifacts/huge.bin", nil); r.StatusCode != 404 {
		t.Fatalf("a partial download was cached: %d %s", r.StatusCode, ReadBody(t, r))
	}
	up.Start()
	if resp, body := get(t, down, "/repository/raw-remote/huge.bin"); resp.StatusCode != 200 || sha(body) != sha(content) {
		t.Fatalf("after restart: %d, %d bytes", resp.StatusCode, len(body))
	}
}

// throttlingRelay forwards GETs to upstream, passing the body on at about
// 20 MiB/s and signalling started after the first MiB.
func throttlingRelay(t *testing.T, upstream string, started chan<- struct{}) string {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), nil)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		signalled := false
		for {
			n, err := io.CopyN(w, resp.Body, 1<<20)
			if n > 0 && !signalled {
				signalled = true
				started <- struct{}{}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				panic(http.ErrAbortHandler) // cut the connection: a truncated body
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// corruptingProxy sits between the downstream and the real upstream and
// damages responses: flips a byte (keeping the upstream's checksum headers),
// or cuts the body short.
func corruptingProxy(t *testing.T, upstream string, mode *string) string {
	t.Helper()
	target, _ := url.Parse(upstream)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.StatusCode != 200 {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		switch *mode {
		case "flip":
			b[len(b)/2] ^= 0xff
		case "truncate":
			resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b[:len(b)/2]), errReader{}))
			return nil
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestRemoteNeverCachesBadContent(t *testing.T) {
	up := StartServer(t, upstreamConfig)
	mode := "flip"
	proxy := corruptingProxy(t, up.URL, &mode)
	down := &Server{t: t, DataDir: t.TempDir(), Env: []string{"UPSTREAM_PW=" + adminPassword}}
	down.Config = writeConfig(t, downstreamConfig(proxy+"/repository/up/", ""))
	down.Start()
	t.Cleanup(down.Stop)

	content := randomBytes(100_000)
	put(t, up, "/repository/up/f.bin", content)
	for _, m := range []string{"flip", "truncate"} {
		mode = m
		resp, body := get(t, down, "/repository/raw-remote/f.bin")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("%s: corrupted upstream content answered %d", m, resp.StatusCode)
		}
		if m == "flip" && !strings.Contains(string(body), "failed verification") {
			t.Fatalf("%s: message %s", m, body)
		}
		if r := down.Do("GET", "/api/v1/repositories/raw-remote/artifacts/f.bin", nil); r.StatusCode != 404 {
			t.Fatalf("%s: corrupted content was cached: %d", m, r.StatusCode)
		}
	}
	mode = "none"
	if resp, body := get(t, down, "/repository/raw-remote/f.bin"); resp.StatusCode != 200 || sha(body) != sha(content) {
		t.Fatalf("intact content: %d", resp.StatusCode)
	}
}

func TestRemoteWrongCredentials(t *testing.T) {
	up := StartServer(t, upstreamConfig)
	put(t, up, "/repository/up/secret.txt", []byte("s"))
	down := &Server{t: t, DataDir: t.TempDir(), Env: []string{"UPSTREAM_PW=wrong-password"}}
	down.Config = writeConfig(t, downstreamConfig(up.URL+"/repository/up/", ""))
	down.Start()
	t.Cleanup(down.Stop)
	resp, body := get(t, down, "/repository/raw-remote/secret.txt")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "refused the configured credentials") {
		t.Fatalf("wrong upstream credentials: %d %s", resp.StatusCode, body)
	}
}

func TestVirtualPrefersLocalMembers(t *testing.T) {
	up, down := startPair(t)
	put(t, up, "/repository/up/shared.txt", []byte("from upstream"))
	put(t, up, "/repository/up/only-up.txt", []byte("upstream only"))
	put(t, down, "/repository/raw-local/shared.txt", []byte("from local"))

	// raw lists raw-remote first, yet a path a local member holds is never
	// taken from the remote (dependency-confusion protection).
	resp, body := get(t, down, "/repository/raw/shared.txt")
	if string(body) != "from local" || resp.Header.Get("X-Coffer-Repository") != "raw-local" {
		t.Fatalf("shared path via virtual: %q from %s", body, resp.Header.Get("X-Coffer-Repository"))
	}
	resp, body = get(t, down, "/repository/raw/only-up.txt")
	if string(body) != "upstream only" || resp.Header.Get("X-Coffer-Repository") != "raw-remote" {
		t.Fatalf("remote-only path via virtual: %q from %s", body, resp.Header.Get("X-Coffer-Repository"))
	}
	if resp, _ := get(t, down, "/repository/raw/nowhere.txt"); resp.StatusCode != 404 {
		t.Fatalf("missing everywhere: %d", resp.StatusCode)
	}
	// Writes to the virtual repository land in its default_deploy.
	put(t, down, "/repository/raw/deployed.txt", []byte("via virtual"))
	if resp, body := get(t, down, "/repository/raw-local/deployed.txt"); resp.StatusCode != 200 || string(body) != "via virtual" {
		t.Fatalf("deploy via virtual: %d %q", resp.StatusCode, body)
	}
	// The folder listing of the virtual repository merges its members.
	resp, body = get(t, down, "/repository/raw/")
	for _, name := range []string{"shared.txt", "only-up.txt", "deployed.txt"} {
		if !strings.Contains(string(body), `"`+name+`"`) {
			t.Errorf("virtual listing lacks %s: %s", name, body)
		}
	}
}
