package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cofferBin is the binary under test, built once by TestMain.
var cofferBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "coffer-e2e-bin")
	if err != nil {
		panic(err)
	}
	cofferBin = filepath.Join(dir, "coffer")
	build := exec.Command("go", "build", "-o", cofferBin, "github.com/cofferhq/coffer/cmd/coffer")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building coffer:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const adminPassword = "e2e-admin-password"

// Server is a coffer process on loopback.
type Server struct {
	t       testing.TB
	DataDir string
	Config  string // path of the config file, "" for none
	Addr    string // host:port once started
	URL     string // http://host:port
	Env     []string
	cmd     *exec.Cmd
	log     *syncBuffer
	done    chan struct{}
	port    string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartServer starts coffer with a fresh data directory and the given YAML
// configuration (may be ""). The admin password is adminPassword.
func StartServer(t testing.TB, configYAML string) *Server {
	t.Helper()
	return StartServerIn(t, t.TempDir(), configYAML)
}

// StartServerIn is StartServer on the data directory dir.
func StartServerIn(t testing.TB, dir, configYAML string) *Server {
	t.Helper()
	s := &Server{t: t, DataDir: dir}
	if configYAML != "" {
		s.Config = filepath.Join(t.TempDir(), "coffer.yaml")
		if err := os.WriteFile(s.Config, []byte(configYAML), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts the process, on the same port when it ran before, and
// waits until it serves.
func (s *Server) Start() {
	s.t.Helper()
	listen := "127.0.0.1:0"
	if s.port != "" {
		listen = "127.0.0.1:" + s.port
	}
	addrFile := filepath.Join(s.DataDir, fmt.Sprintf("addr-%d", time.Now().UnixNano()))
	args := []string{"serve", "--data", s.DataDir, "--listen", listen, "--addr-file", addrFile}
	if s.Config != "" {
		args = append(args, "--config", s.Config)
	}
	s.cmd = exec.Command(cofferBin, args...)
	s.cmd.Env = append(append(os.Environ(), "COFFER_ADMIN_PASSWORD="+adminPassword, "COFFER_LOG_LEVEL=debug"), s.Env...)
	s.log = &syncBuffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			s.Addr = string(b)
			break
		}
		select {
		case <-s.done:
			s.t.Fatalf("coffer exited during start:\n%s", s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("coffer did not start in time:\n%s", s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.URL = "http://" + s.Addr
	s.port = s.Addr[strings.LastIndex(s.Addr, ":")+1:]
}

// Running reports whether the process is alive.
func (s *Server) Running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Stop ends the process gracefully (SIGTERM) and waits.
func (s *Server) Stop() {
	if !s.Running() {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		s.t.Errorf("coffer did not stop within 30s of SIGTERM")
	}
}

// Kill ends the process with SIGKILL and waits.
func (s *Server) Kill() {
	if !s.Running() {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
}

// Log returns what the process printed.
func (s *Server) Log() string { return s.log.String() }

// Do sends a request with admin credentials unless the header already has
// an Authorization (use "-" as user for none).
func (s *Server) Do(method, path string, body io.Reader, header ...string) *http.Response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if req.Header.Get("Authorization") == "" {
		req.SetBasicAuth("admin", adminPassword)
	} else if req.Header.Get("Authorization") == "-" {
		req.Header.Del("Authorization")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// ReadBody reads and closes a response body.
func ReadBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Curl runs curl and returns stdout, stderr and the exit code.
func Curl(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command("curl", append([]string{"-sS"}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

func sha256Array(b []byte) [32]byte { return sha256.Sum256(b) }

func drain(r io.Reader) (int64, error) { return io.Copy(io.Discard, r) }
