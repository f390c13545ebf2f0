package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/config"
)

// runCLI runs the command line in-process and returns what a user sees.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	root := NewRoot(&o, &e)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	code = 0
	if err := root.Execute(); err != nil {
		fmt.Fprintln(&e, "coffer:", err)
		code = 1
	}
	return o.String(), e.String(), code
}

// isolate gives the test its own saved-login file and no COFFER_* settings.
func isolate(t *testing.T) string {
	t.Helper()
	for _, k := range []string{"COFFER_SERVER", "COFFER_TOKEN", "COFFER_USER", "COFFER_PASSWORD"} {
		t.Setenv(k, "")
	}
	p := filepath.Join(t.TempDir(), "cli.json")
	t.Setenv("COFFER_CLI_CONFIG", p)
	return p
}

func TestParseError(t *testing.T) {
	for _, tc := range []struct {
		name, ctype, body string
		status            int
		want              string
	}{
		{"api", "application/json", `{"error":{"code":"DENIED","message":"user bob may not write repository x"}}`, 403, "user bob may not write repository x"},
		{"api problems", "application/json", `{"error":{"code":"INVALID","message":"repositories: 1 problem(s):\n  - repositories[a].kind: bad","problems":[{"field":"repositories[a].kind","message":"bad"}]}}`, 400,
			"repositories: 1 problem(s):\n  - repositories[a].kind: bad"},
		{"raw", "application/json", `{"errors":[{"status":404,"message":"a/b not found in raw-dev"}]}`, 404, "a/b not found in raw-dev"},
		{"npm", "application/json", `{"error":"not found"}`, 404, "not found"},
		{"text", "text/plain", "quota of raw-dev is full\n", 507, "quota of raw-dev is full"},
		{"html", "text/html", "<html><body>Bad Gateway</body></html>", 502, "the server answered 502 Bad Gateway"},
		{"empty", "", "", 503, "the server answered 503 Service Unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("Content-Type", tc.ctype)
			if got := parseError(tc.status, h, []byte(tc.body)).Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLocateProblems(t *testing.T) {
	server := []config.Problem{
		{Field: "repositories[b].format", Msg: "bad format"},
		{Field: "repositories[1].key", Msg: "declared twice"},
		{Field: "repositories[a].members", Msg: "no such member"},
		{Field: "something.else", Msg: "kept without a line"},
	}
	for _, tc := range []struct {
		name, yaml string
		lines      []int // of the problems, sorted by line
	}{
		{"whole config", "server:\n  listen: 127.0.0.1:1\nrepositories:\n  - key: a\n    kind: virtual\n    members: [x]\n  - key: b\n    format: rpm\n", []int{0, 6, 7, 8}},
		{"list", "- key: a\n  members: [x]\n- key: b\n  format: rpm\n", []int{0, 2, 3, 4}},
		{"flow list", "- {key: a, members: [x]}\n- {key: b, format: rpm}\n", []int{0, 1, 2, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			decls, doc, err := parseRepoFile("f.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			got := locateProblems(doc, decls, server)
			var lines []int
			for _, p := range got {
				lines = append(lines, p.Line)
			}
			if fmt.Sprint(lines) != fmt.Sprint(tc.lines) {
				t.Errorf("lines %v, want %v (%v)", lines, tc.lines, got)
			}
		})
	}
}

func TestRepoFileProblems(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"syntax", "- key: a\n- key: [\n", "line 2:"},
		{"unknown field", "- key: a\n  format: raw\n  kind: local\n  colour: red\n", `line 4: unknown field "colour"`},
		{"wrong type", "repositories:\n  - key: a\n    overwrite: maybe\n", "line 3:"},
		{"not repositories", "server:\n  listen: x\n", "expected a coffer.yaml with repositories:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parseRepoFile("f.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestPullRefusesWrongBytes(t *testing.T) {
	isolate(t)
	content := []byte("the real content\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/repository/raw/corrupt.bin":
			w.Header().Set("X-Checksum-Sha256", sha([]byte("something else")))
			w.Write(content)
		case "/repository/raw/short.bin":
			w.Header().Set("X-Checksum-Sha256", sha(content))
			w.Header().Set("Content-Length", "1000")
			w.Write(content) // then the connection ends early
		case "/repository/raw/good.bin":
			w.Header().Set("X-Checksum-Sha256", sha(content))
			w.Write(content)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	target := filepath.Join(dir, "out.bin")
	os.WriteFile(target, []byte("previous version"), 0o644)

	for _, tc := range []struct{ path, want string }{
		{"raw/corrupt.bin", "checksum mismatch: the server declared sha256 " + sha([]byte("something else"))},
		{"raw/short.bin", "download failed"},
	} {
		_, stderr, code := runCLI(t, "", "pull", "--server", srv.URL, tc.path, "-O", target)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("pull %s: exit %d, stderr %q; want exit 1 and %q", tc.path, code, stderr, tc.want)
		}
		if b, _ := os.ReadFile(target); string(b) != "previous version" {
			t.Errorf("pull %s replaced the target with %q", tc.path, b)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	stdout, stderr, code := runCLI(t, "", "pull", "--server", srv.URL, "raw/good.bin", "-O", target)
	if code != 0 || !strings.Contains(stdout, "verified") {
		t.Fatalf("pull good.bin: exit %d\n%s%s", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(target); !bytes.Equal(b, content) {
		t.Errorf("target holds %q", b)
	}
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o644 {
		t.Errorf("pulled file mode %v", st.Mode().Perm())
	}
}

// TestPushDeclaresLengthAndChecksum checks that push sends what the server
// needs to verify the upload: a known length (no chunking) and the SHA-256 of
// the file, and that a refusal is shown as the server worded it.
func TestPushDeclaresLengthAndChecksum(t *testing.T) {
	isolate(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.ContentLength != int64(len(body)) || len(r.TransferEncoding) > 0 {
			w.WriteHeader(http.StatusLengthRequired)
			json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"status": 411, "message": "length not declared"}}})
			return
		}
		if r.Header.Get("X-Checksum-Sha256") != sha(body) {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"status": 400, "message": "sha256 does not match"}}})
			return
		}
		if strings.Contains(r.URL.Path, "release") {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"status": 403, "message": "release is closed"}}})
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"repo": "raw", "path": strings.TrimPrefix(r.URL.Path, "/repository/raw/"),
			"size": len(body), "checksums": map[string]string{"sha256": sha(body)}, "downloadUri": "http://x" + r.URL.Path})
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "data file.bin")
	data := bytes.Repeat([]byte("0123456789abcdef"), 100_000)
	os.WriteFile(file, data, 0o644)

	stdout, stderr, code := runCLI(t, "", "push", "--server", srv.URL, "raw/dir/", file)
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "raw/dir/data file.bin") || !strings.Contains(stdout, sha(data)) {
		t.Errorf("push output: %q", stdout)
	}
	_, stderr, code = runCLI(t, "", "push", "--server", srv.URL, "raw-release/x.bin", file)
	if code != 1 || !strings.Contains(stderr, "release is closed") {
		t.Errorf("push to release: exit %d, stderr %q", code, stderr)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o644)
	if _, stderr, code = runCLI(t, "", "push", "--server", srv.URL, "raw/empty", empty); code != 0 {
		t.Errorf("push of an empty file: exit %d, %s", code, stderr)
	}
}

// TestCredentials checks which credentials each command sends: flags over
// environment over the saved login, which goes only to its own server.
func TestCredentials(t *testing.T) {
	cfgPath := isolate(t)
	whoamiServer := func() *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name := "anonymous"
			if u, _, ok := r.BasicAuth(); ok {
				name = "basic:" + u
			} else if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				name = "token:" + tok
			}
			json.NewEncoder(w).Encode(map[string]any{"name": name, "anonymous": name == "anonymous"})
		}))
	}
	a, b := whoamiServer(), whoamiServer()
	defer a.Close()
	defer b.Close()
	if err := saveLogin(cfgPath, &savedLogin{Server: a.URL, Token: "saved-token", TokenID: "1"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(cfgPath); st.Mode().Perm() != 0o600 {
		t.Errorf("saved login mode %v", st.Mode().Perm())
	}
	who := func(env map[string]string, args ...string) string {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		defer func() {
			for k := range env {
				t.Setenv(k, "")
			}
		}()
		stdout, stderr, code := runCLI(t, "", append([]string{"whoami", "-o", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("whoami %v: %s", args, stderr)
		}
		var me struct{ Name string }
		json.Unmarshal([]byte(stdout), &me)
		return me.Name
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, nil, "token:saved-token"},
		{nil, []string{"--server", a.URL + "/"}, "token:saved-token"},
		{nil, []string{"--server", b.URL}, "anonymous"}, // the saved token never goes elsewhere
		{map[string]string{"COFFER_SERVER": b.URL}, nil, "anonymous"},
		{map[string]string{"COFFER_TOKEN": "env-token"}, nil, "token:env-token"},
		{map[string]string{"COFFER_TOKEN": "env-token"}, []string{"--token", "flag-token"}, "token:flag-token"},
		{map[string]string{"COFFER_USER": "env-user", "COFFER_PASSWORD": "pw"}, nil, "basic:env-user"},
		{map[string]string{"COFFER_USER": "env-user", "COFFER_PASSWORD": "pw"}, []string{"--user", "flag-user"}, "basic:flag-user"},
	} {
		if got := who(tc.env, tc.args...); got != tc.want {
			t.Errorf("env %v args %v: server saw %s, want %s", tc.env, tc.args, got, tc.want)
		}
	}
	_, stderr, code := runCLI(t, "", "whoami", "--user", "someone")
	if code != 1 || !strings.Contains(stderr, "give --password or set COFFER_PASSWORD") {
		t.Errorf("--user without a password and no terminal: exit %d, %q", code, stderr)
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 20: "5.0 MiB", 3 << 40: "3.0 TiB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
