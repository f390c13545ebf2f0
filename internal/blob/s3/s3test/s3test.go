// Package s3test gives tests a real S3-compatible server: the one at
// $COFFER_TEST_S3_ENDPOINT when set (with $COFFER_TEST_S3_ACCESS_KEY and
// $COFFER_TEST_S3_SECRET_KEY), otherwise a versitygw process (a test-only
// tool built by scripts/install-backend-tools.sh into .tools/bin) started
// once per test binary on a loopback port over a temporary directory.
// Each test gets its own bucket, emptied and removed when it ends.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Env names the variable pointing at an external S3 server.
const Env = "COFFER_TEST_S3_ENDPOINT"

// Server is an S3 endpoint with root credentials.
type Server struct {
	Endpoint  string // host:port, plain HTTP
	AccessKey string
	SecretKey string
}

var (
	once    sync.Once
	shared  *Server
	tempDir string
	errOnce error
)

// Start returns the shared server, starting versitygw on first use. Without
// a server or the tool, the test is skipped under -short and fails
// otherwise.
func Start(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { shared, errOnce = start() })
	if errOnce != nil {
		if testing.Short() {
			t.Skipf("no S3 server (skipped under -short): %v", errOnce)
		}
		t.Fatalf("no S3 server for the S3 tests: %v", errOnce)
	}
	return shared
}

// StartServer is Start for programs (benchmarks): the shared server, or why
// there is none.
func StartServer() (*Server, error) {
	once.Do(func() { shared, errOnce = start() })
	return shared, errOnce
}

func start() (*Server, error) {
	if ep := os.Getenv(Env); ep != "" {
		return &Server{Endpoint: ep, AccessKey: os.Getenv("COFFER_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("COFFER_TEST_S3_SECRET_KEY")}, nil
	}
	bin, err := findTool()
	if err != nil {
		return nil, err
	}
	removeStale()
	dir, err := os.MkdirTemp("", "coffer-versitygw-")
	if err != nil {
		return nil, err
	}
	tempDir = dir
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{Endpoint: addr, AccessKey: "coffertest", SecretKey: "coffertest-secret-key"}
	cmd := exec.Command(bin, "--port", addr, "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = nil, nil
	// The server dies with the test binary, whatever way it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	// The directory goes when the server is gone (removeStale, next run):
	// a test binary has no hook at its end.
	os.WriteFile(dir+".pid", []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	c, err := s.Client()
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.ListBuckets(ctx)
		cancel()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return nil, fmt.Errorf("versitygw on %s did not answer: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeStale removes the directories of earlier servers that are gone.
func removeStale() {
	pids, _ := filepath.Glob(filepath.Join(os.TempDir(), "coffer-versitygw-*.pid"))
	for _, f := range pids {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(strings.TrimSuffix(f, ".pid"))
			os.Remove(f)
		}
	}
}

// findTool looks for versitygw in $COFFER_VERSITYGW, .tools/bin of the
// module (searched upwards from the working directory), then $PATH.
func findTool() (string, error) {
	if p := os.Getenv("COFFER_VERSITYGW"); p != "" {
		return p, nil
	}
	dir, _ := os.Getwd()
	for dir != "" {
		p := filepath.Join(dir, ".tools", "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("versitygw not found in .tools/bin or $PATH; run scripts/install-backend-tools.sh (or set %s)", Env)
}

// Client returns a client with the server's root credentials.
func (s *Server) Client() (*minio.Client, error) {
	return minio.New(s.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		BucketLookup: minio.BucketLookupPath,
	})
}

// Bucket creates an empty bucket for t and removes it, with whatever is
// left in it, when t ends.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	c, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "coffer-test-" + hex.EncodeToString(b)
	if err := c.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("creating bucket: %v", err)
	}
	t.Cleanup(func() { RemoveBucket(c, name) })
	return name
}

// RemoveBucket empties and deletes a bucket (incomplete uploads included).
func RemoveBucket(c *minio.Client, name string) error {
	ctx := context.Background()
	for u := range c.ListIncompleteUploads(ctx, name, "", true) {
		if u.Err == nil {
			c.RemoveIncompleteUpload(ctx, name, u.Key)
		}
	}
	for oi := range c.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true}) {
		if oi.Err == nil {
			c.RemoveObject(ctx, name, oi.Key, minio.RemoveObjectOptions{})
		}
	}
	return c.RemoveBucket(ctx, name)
}
