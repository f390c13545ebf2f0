// Command durability measures replication and backup on real coffer
// processes on loopback:
//
//   - replication lag for a burst of images pushed to a primary: the time
//     from the last acknowledged push until the secondary holds everything
//     (and from the first push);
//
//   - backup and restore of a store of N blobs of S bytes (default 10,000
//     of 1 MiB: 10 GiB), next to a plain copy of the same files (cp -r) as
//     the machine's floor, and an incremental backup of the unchanged store.
//
//     go run ./bench/durability [-images 100] [-blobs 10000] [-size 1MiB]
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/cofferhq/coffer/bench/internal/benchkit"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	gtypes "github.com/google/go-containerregistry/pkg/v1/types"
)

const pw = "bench-admin-password"

var (
	images = flag.Int("images", 100, "images in the replication burst")
	blobs  = flag.Int("blobs", 10000, "blobs in the backup store")
	size   = flag.Int("size", 1<<20, "bytes per blob")
)

func main() {
	flag.Parse()
	root, err := os.MkdirTemp("", "coffer-durability-bench")
	benchkit.Check(err)
	defer os.RemoveAll(root)
	bin := filepath.Join(root, "coffer")
	run("go", "build", "-o", bin, "./cmd/coffer")
	fmt.Printf("### Durability — %s\n\n| measurement | result |\n|---|---|\n", time.Now().UTC().Format("2006-01-02"))
	replication(bin, root)
	backupRestore(bin, root)
}

type proc struct {
	cmd  *exec.Cmd
	addr string
}

func start(bin, data, config string, env ...string) *proc {
	port := freePort()
	args := []string{"serve", "--data", data, "--listen", "127.0.0.1:" + port}
	if config != "" {
		args = append(args, "--config", config)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "COFFER_ADMIN_PASSWORD="+pw), env...)
	logf, err := os.Create(data + ".log")
	benchkit.Check(err)
	cmd.Stdout, cmd.Stderr = logf, logf
	benchkit.Check(cmd.Start())
	p := &proc{cmd: cmd, addr: "127.0.0.1:" + port}
	for i := 0; ; i++ {
		if resp, err := http.Get("http://" + p.addr + "/readyz"); err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			return p
		}
		if i > 300 {
			panic("coffer did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) stop() { p.cmd.Process.Signal(os.Interrupt); p.cmd.Wait() }

func replication(bin, root string) {
	repos := "repositories:\n  - {key: docker-release-local, format: oci, kind: local, tier: release}\n"
	sec := start(bin, filepath.Join(root, "secondary"), write(filepath.Join(root, "secondary.yaml"), repos))
	defer sec.stop()
	cfg := repos + fmt.Sprintf("replication:\n  - {name: dr, url: http://%s, repositories: [docker-release-local], username: admin, password_env: BENCH_PW, interval: 1m}\n", sec.addr)
	pri := start(bin, filepath.Join(root, "primary"), write(filepath.Join(root, "primary.yaml"), cfg), "BENCH_PW="+pw)
	defer pri.stop()
	// Images are built before the clock starts.
	imgs := make([]v1.Image, *images)
	for i := range imgs {
		l, err := random.Layer(256<<10, gtypes.OCILayer)
		benchkit.Check(err)
		img, _ := mutate.AppendLayers(empty.Image, l)
		imgs[i], _ = mutate.Config(img, v1.Config{Labels: map[string]string{"n": fmt.Sprint(i)}})
	}
	auth := remote.WithAuth(&authn.Basic{Username: "admin", Password: pw})
	first := time.Now()
	var wg sync.WaitGroup
	ch := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				ref, _ := name.ParseReference(fmt.Sprintf("%s/docker-release-local/burst:%d", pri.addr, i), name.Insecure)
				benchkit.Check(remote.Write(ref, imgs[i], auth))
			}
		}()
	}
	for i := range imgs {
		ch <- i
	}
	close(ch)
	wg.Wait()
	last := time.Now()
	for {
		if tags(sec.addr) >= *images {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	done := time.Now()
	fmt.Printf("| burst of %d images of 256 KiB pushed with 4 clients | %.2f s |\n", *images, last.Sub(first).Seconds())
	fmt.Printf("| replication lag: last push acknowledged → all %d tags served by the secondary | %.2f s |\n", *images, done.Sub(last).Seconds())
	fmt.Printf("| first push → all on the secondary | %.2f s |\n", done.Sub(first).Seconds())
}

func tags(addr string) int {
	req, _ := http.NewRequest("GET", "http://"+addr+"/v2/docker-release-local/burst/tags/list?n=100000", nil)
	req.SetBasicAuth("admin", pw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var tl struct{ Tags []string }
	json.NewDecoder(resp.Body).Decode(&tl)
	return len(tl.Tags)
}

func backupRestore(bin, root string) {
	data := filepath.Join(root, "store")
	p := start(bin, data, write(filepath.Join(root, "store.yaml"), "repositories:\n  - {key: files, format: raw, kind: local, tier: dev}\n"))
	buf := make([]byte, *size)
	var wg sync.WaitGroup
	ch := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, *size)
			for i := range ch {
				copy(b, buf)
				rand.Read(b[:64]) // unique content per blob
				req, _ := http.NewRequest("PUT", fmt.Sprintf("http://%s/repository/files/f/%05d.bin", p.addr, i), bytes.NewReader(b))
				req.SetBasicAuth("admin", pw)
				resp, err := http.DefaultClient.Do(req)
				benchkit.Check(err)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					panic(fmt.Sprintf("put: %d", resp.StatusCode))
				}
			}
		}()
	}
	for i := range *blobs {
		ch <- i
	}
	close(ch)
	wg.Wait()
	p.stop()
	total := float64(*blobs) * float64(*size) / (1 << 30)
	label := fmt.Sprintf("%d blobs of %s (%.1f GiB)", *blobs, human(*size), total)

	t0 := time.Now()
	run("cp", "-r", filepath.Join(data, "blobs"), filepath.Join(root, "cp-floor"))
	run("sync")
	floor := time.Since(t0)
	os.RemoveAll(filepath.Join(root, "cp-floor"))

	bdir := filepath.Join(root, "backup")
	t0 = time.Now()
	run(bin, "backup", "--data", data, "--to", bdir)
	run("sync")
	full := time.Since(t0)
	t0 = time.Now()
	run(bin, "backup", "--data", data, "--to", bdir)
	incr := time.Since(t0)
	os.RemoveAll(data) // restore onto the same disk without doubling its use
	t0 = time.Now()
	run(bin, "restore", "--from", bdir, "--data", filepath.Join(root, "restored"))
	run("sync")
	restore := time.Since(t0)
	t0 = time.Now()
	run(bin, "verify", "--data", filepath.Join(root, "restored"))
	verify := time.Since(t0)
	gib := func(d time.Duration) string {
		return fmt.Sprintf("%.1f s (%.0f MiB/s)", d.Seconds(), total*1024/d.Seconds())
	}
	fmt.Printf("| floor: `cp -r` of the blob files + sync, %s | %s |\n", label, gib(floor))
	fmt.Printf("| `coffer backup`, first (full), %s | %s |\n", label, gib(full))
	fmt.Printf("| `coffer backup` again, unchanged store (incremental: nothing copied) | %.1f s |\n", incr.Seconds())
	fmt.Printf("| `coffer restore` into an empty directory (every blob hashed) | %s |\n", gib(restore))
	fmt.Printf("| `coffer verify` of the restored store (every blob hashed) | %s |\n", gib(verify))
}

func write(path, s string) string {
	benchkit.Check(os.WriteFile(path, []byte(s), 0o644))
	return path
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	benchkit.Check(err)
	defer l.Close()
	return l.Addr().String()[strings.LastIndex(l.Addr().String(), ":")+1:]
}

func human(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	if out, err := cmd.Output(); err != nil {
		panic(fmt.Sprintf("%s %v: %v\n%s", name, args, err, out))
	}
}
