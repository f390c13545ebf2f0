// Command maven measures the Maven format against a real coffer process on
// loopback, next to a static Maven 2 tree with the same files served by
// python3 -m http.server, measured in the same run (the floor of what any
// repository costs):
//
//   - artifact GET: req/s for a small jar, MB/s for a large one;
//   - maven-metadata.xml GET req/s for an artifact with 1000 versions;
//   - wall time of mvn building a project that depends on 20 libraries,
//     with a cold local repository (median of 5).
//
// It prints a Markdown table for docs/benchmarks.md.
//
//	go run ./bench/maven [-c 32] [-d 10s] [-runs 5]
package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"flag"
	"fmt"
	"github.com/cofferhq/coffer/bench/internal/benchkit"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

const pw = "bench-admin-password"

func main() {
	conc := flag.Int("c", 32, "concurrent connections for the GET measurements")
	dur := flag.Duration("d", 10*time.Second, "duration of each GET measurement")
	runs := flag.Int("runs", 5, "mvn builds per repository (the median is reported)")
	bigSize := flag.Int64("big", 256<<20, "bytes of the large jar for the download throughput")
	versions := flag.Int("versions", 1000, "versions of the artifact whose metadata is measured")
	flag.Parse()
	for _, tool := range []string{"wrk", "/usr/bin/python3", "mvn", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "bench/maven needs %s (apt-get install -y wrk python3 maven curl, and Debian's Maven plugins: see .ci/run)\n", tool)
			os.Exit(1)
		}
	}
	dir, err := os.MkdirTemp("", "coffer-bench-maven")
	benchkit.Check(err)
	defer os.RemoveAll(dir)
	load0 := benchkit.Loadavg()
	bin := filepath.Join(dir, "coffer")
	run("go", "build", "-o", bin, "./cmd/coffer")
	srv := start(bin, filepath.Join(dir, "data"))
	defer srv.stop()
	repoURL := srv.url + "/repository/maven-bench/"
	static := filepath.Join(dir, "static")

	// Content: one small jar, one big jar, an artifact with many versions,
	// and 20 libraries (jar + pom) for the build.
	put := func(path string, body []byte) {
		writeStatic(static, path, body)
		req, _ := http.NewRequest(http.MethodPut, repoURL+path, bytes.NewReader(body))
		req.SetBasicAuth("admin", pw)
		resp, err := http.DefaultClient.Do(req)
		benchkit.Check(err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 && resp.StatusCode != 200 {
			panic(fmt.Sprintf("PUT %s: %d", path, resp.StatusCode))
		}
	}
	smallJar := randomBytes(4<<10, 1)
	put("com/bench/small/1.0/small-1.0.jar", smallJar)
	bigPath := "com/bench/big/1.0/big-1.0.jar"
	putFile(repoURL+bigPath, filepath.Join(static, bigPath), *bigSize)

	t0 := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := 0; i < *versions; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			v := fmt.Sprintf("1.%d.%d", i/100, i%100)
			put("com/bench/many/"+v+"/many-"+v+".jar", randomBytes(512, uint64(i)))
		}(i)
	}
	wg.Wait()
	deploySecs := time.Since(t0).Seconds()
	// The static tree's metadata is the one Coffer computes, so both serve the same bytes.
	metaPath := "com/bench/many/maven-metadata.xml"
	metaBody := get(repoURL + metaPath)
	if n := strings.Count(string(metaBody), "<version>"); n != *versions {
		panic(fmt.Sprintf("metadata lists %d versions, want %d", n, *versions))
	}
	writeStatic(static, metaPath, metaBody)

	for i := 0; i < 20; i++ {
		a := fmt.Sprintf("dep%02d", i)
		dir := "com/bench/" + a + "/1.0/"
		put(dir+a+"-1.0.pom", []byte(fmt.Sprintf(`<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion><groupId>com.bench</groupId><artifactId>%s</artifactId><version>1.0</version></project>`, a)))
		put(dir+a+"-1.0.jar", emptyJar())
		for _, f := range []string{a + "-1.0.pom", a + "-1.0.jar"} {
			b, err := os.ReadFile(filepath.Join(static, dir, f))
			benchkit.Check(err)
			h := sha1.Sum(b)
			writeStatic(static, dir+f+".sha1", []byte(hex.EncodeToString(h[:])))
		}
	}
	py := startStatic(static)
	defer py.Process.Kill()
	staticURL := "http://" + staticAddr + "/"

	// GETs, taking turns.
	smallRPS := wrk(repoURL+"com/bench/small/1.0/small-1.0.jar", *conc, *dur)
	staticSmallRPS := wrk(staticURL+"com/bench/small/1.0/small-1.0.jar", *conc, *dur)
	metaRPS := wrk(repoURL+metaPath, *conc, *dur)
	staticMetaRPS := wrk(staticURL+metaPath, *conc, *dur)
	bigMB, staticBigMB := benchkit.Alternate(5, func() float64 { return download(repoURL + bigPath) }, func() float64 { return download(staticURL + bigPath) })

	// The resolving build, cold local repository each time.
	project := filepath.Join(dir, "app")
	writeApp(project)
	coldBuild := func(url string) func() float64 {
		return func() float64 { return mvnBuild(dir, project, url) }
	}
	buildSecs, staticBuildSecs := benchkit.Alternate(*runs, coldBuild(repoURL), coldBuild(staticURL))
	load1 := benchkit.Loadavg()

	fmt.Printf("\n%s, 1-minute load average %s at the start, %s at the end\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), load0, load1)
	fmt.Println("| measurement | Coffer | static tree (`python3 -m http.server`) | Coffer ÷ static |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| artifact GET, 4 KiB jar (%d connections, %s, wrk) | %.0f req/s | %.0f req/s | %.1f× |\n", *conc, *dur, smallRPS, staticSmallRPS, smallRPS/staticSmallRPS)
	fmt.Printf("| artifact GET, %s jar (curl, median of 5) | %.0f MB/s | %.0f MB/s | %.1f× |\n", human(*bigSize), bigMB, staticBigMB, bigMB/staticBigMB)
	fmt.Printf("| maven-metadata.xml GET, %d versions, %s (%d connections, %s, wrk) | %.0f req/s | %.0f req/s | %.1f× |\n", *versions, human(int64(len(metaBody))), *conc, *dur, metaRPS, staticMetaRPS, metaRPS/staticMetaRPS)
	fmt.Printf("| `mvn package` of a project with 20 dependencies, cold local repository (median of %d) | %.2f s | %.2f s | %.2f× the time |\n", *runs, buildSecs, staticBuildSecs, buildSecs/staticBuildSecs)
	fmt.Printf("| deploy of %d versions (one 512 B jar each, 4 at a time, durable) | %.1f s (%.0f files/s) | | |\n", *versions, deploySecs, float64(*versions)/deploySecs)
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// emptyJar is a valid empty zip (javac accepts it on the class path).
func emptyJar() []byte {
	return []byte{0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
}

func writeStatic(root, path string, body []byte) {
	p := filepath.Join(root, path)
	benchkit.Check(os.MkdirAll(filepath.Dir(p), 0o755))
	benchkit.Check(os.WriteFile(p, body, 0o644))
}

// putFile writes size random bytes to file and uploads them with curl.
func putFile(url, file string, size int64) {
	benchkit.Check(os.MkdirAll(filepath.Dir(file), 0o755))
	f, err := os.Create(file)
	benchkit.Check(err)
	r := rand.New(rand.NewPCG(7, 8))
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		for i := range buf {
			buf[i] = byte(r.Uint32())
		}
		n := int64(len(buf))
		if left < n {
			n = left
		}
		_, err := f.Write(buf[:n])
		benchkit.Check(err)
	}
	benchkit.Check(f.Close())
	out, err := exec.Command("curl", "-sS", "-f", "-u", "admin:"+pw, "-T", file, url).CombinedOutput()
	if err != nil {
		panic(fmt.Sprintf("upload: %v %s", err, out))
	}
}

func get(url string) []byte {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	benchkit.Check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	benchkit.Check(err)
	if resp.StatusCode != 200 {
		panic(fmt.Sprintf("GET %s: %d %s", url, resp.StatusCode, b))
	}
	return b
}

func writeApp(dir string) {
	var deps strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&deps, "<dependency><groupId>com.bench</groupId><artifactId>dep%02d</artifactId><version>1.0</version></dependency>\n", i)
	}
	benchkit.Check(os.MkdirAll(filepath.Join(dir, "src/main/java/app"), 0o755))
	benchkit.Check(os.WriteFile(filepath.Join(dir, "src/main/java/app/Main.java"), []byte("package app;\npublic class Main { public static void main(String[] a) {} }\n"), 0o644))
	benchkit.Check(os.WriteFile(filepath.Join(dir, "pom.xml"), []byte(`<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.bench</groupId><artifactId>app</artifactId><version>1.0</version>
  <properties><maven.compiler.source>17</maven.compiler.source><maven.compiler.target>17</maven.compiler.target>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>
  <repositories><repository><id>bench</id><url>${benchRepo}</url></repository></repositories>
  <dependencies>
`+deps.String()+`  </dependencies>
</project>
`), 0o644))
}

// mvnBuild runs mvn package with an empty local repository (plugins from
// Debian's file repository, the 20 dependencies from url) and returns the
// seconds it took.
func mvnBuild(work, project, url string) float64 {
	local, err := os.MkdirTemp(work, "m2")
	benchkit.Check(err)
	defer os.RemoveAll(local)
	settings := filepath.Join(local, "settings.xml")
	benchkit.Check(os.WriteFile(settings, []byte(`<settings><localRepository>`+filepath.Join(local, "repo")+`</localRepository>
<mirrors><mirror><id>debian</id><mirrorOf>central</mirrorOf><url>file:///usr/share/maven-repo</url></mirror></mirrors></settings>`), 0o644))
	os.RemoveAll(filepath.Join(project, "target"))
	cmd := exec.Command("mvn", "-B", "-q", "-s", settings, "-DbenchRepo="+url, "package")
	cmd.Dir = project
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	secs := time.Since(t0).Seconds()
	if err != nil {
		panic(fmt.Sprintf("mvn package from %s: %v\n%s", url, err, out))
	}
	if _, err := os.Stat(filepath.Join(local, "repo/com/bench/dep19/1.0/dep19-1.0.jar")); err != nil {
		panic("mvn did not resolve the dependencies from " + url)
	}
	fmt.Fprintf(os.Stderr, "mvn package from %s: %.2f s\n", url, secs)
	return secs
}

var staticAddr string

func startStatic(root string) *exec.Cmd {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	benchkit.Check(err)
	staticAddr = l.Addr().String()
	l.Close()
	port := staticAddr[strings.LastIndex(staticAddr, ":")+1:]
	cmd := exec.Command("/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", root, port)
	benchkit.Check(cmd.Start())
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + staticAddr + "/"); err == nil {
			resp.Body.Close()
			return cmd
		}
		time.Sleep(50 * time.Millisecond)
	}
	panic("python3 -m http.server did not start")
}

func wrk(url string, conc int, d time.Duration) float64 {
	args := []string{"-t2", fmt.Sprintf("-c%d", conc), fmt.Sprintf("-d%ds", int(d.Seconds())), url}
	out, err := exec.Command("wrk", args...).CombinedOutput()
	benchkit.Check(err)
	if strings.Contains(string(out), "Non-2xx") {
		panic("wrk saw errors for " + url + ":\n" + string(out))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "Requests/sec:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			fmt.Fprintf(os.Stderr, "%s: %.0f req/s\n", url, v)
			return v
		}
	}
	panic("wrk output: " + string(out))
}

func download(url string) float64 {
	t0 := time.Now()
	out, err := exec.Command("curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download}", url).Output()
	benchkit.Check(err)
	n, _ := strconv.ParseFloat(string(out), 64)
	return n / 1e6 / time.Since(t0).Seconds()
}

type server struct {
	cmd *exec.Cmd
	url string
}

func start(bin, data string) *server {
	addrFile := data + ".addr"
	cfg := data + ".yaml"
	benchkit.Check(os.WriteFile(cfg, []byte("log: {level: warn}\nrepositories:\n  - {key: maven-bench, format: maven, kind: local, tier: dev, anonymous_read: true}\n"), 0o644))
	cmd := exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--config", cfg)
	cmd.Env = append(os.Environ(), "COFFER_ADMIN_PASSWORD="+pw)
	cmd.Stderr = os.Stderr
	benchkit.Check(cmd.Start())
	for i := 0; i < 300; i++ {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return &server{cmd: cmd, url: "http://" + string(b)}
		}
		time.Sleep(50 * time.Millisecond)
	}
	panic("coffer did not start")
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	s.cmd.Wait()
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	benchkit.Check(cmd.Run())
}

func human(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// alternate runs a and b in turns n times each and returns their medians.
