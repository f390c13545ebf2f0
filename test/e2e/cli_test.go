package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cliRunner runs the coffer client as a user would: in its own working
// directory, with its saved login in a private file.
type cliRunner struct {
	t      *testing.T
	dir    string // working directory
	config string // COFFER_CLI_CONFIG
	env    []string
}

func newCLIRunner(t *testing.T) *cliRunner {
	dir := t.TempDir()
	c := &cliRunner{t: t, dir: filepath.Join(dir, "work"), config: filepath.Join(dir, "config", "cli.json")}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "COFFER_") {
			c.env = append(c.env, kv)
		}
	}
	c.env = append(c.env, "COFFER_CLI_CONFIG="+c.config, "XDG_CONFIG_HOME="+filepath.Join(dir, "xdg"))
	return c
}

type cliResult struct {
	stdout, stderr string
	code           int
}

// run runs coffer with args, stdin and extra environment ("K=V" items
// before a "--" argument are environment).
func (c *cliRunner) run(stdin string, args ...string) cliResult {
	c.t.Helper()
	env := append([]string{}, c.env...)
	for i, a := range args {
		if a == "--" {
			env = append(env, args[:i]...)
			args = args[i+1:]
			break
		}
	}
	cmd := exec.Command(cofferBin, args...)
	cmd.Dir, cmd.Env = c.dir, env
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := cliResult{stdout: o.String(), stderr: e.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// ok runs coffer and fails the test unless it exits 0.
func (c *cliRunner) ok(stdin string, args ...string) cliResult {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != 0 {
		c.t.Fatalf("coffer %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// fails runs coffer, expects exit 1 and stderr containing every fragment, and
// returns stderr.
func (c *cliRunner) fails(stdin string, args []string, fragments ...string) cliResult {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != 1 {
		c.t.Fatalf("coffer %s: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	for _, f := range fragments {
		if !strings.Contains(r.stderr, f) {
			c.t.Errorf("coffer %s: stderr lacks %q:\n%s", strings.Join(args, " "), f, r.stderr)
		}
	}
	return r
}

func (c *cliRunner) writeFile(name, content string) string {
	c.t.Helper()
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func mustContain(t *testing.T, what, text string, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(text, f) {
			t.Errorf("%s lacks %q:\n%s", what, f, text)
		}
	}
}

func parseJSON(t *testing.T, what, text string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(text), v); err != nil {
		t.Fatalf("%s is not JSON: %v\n%s", what, err, text)
	}
}

const cliReposYAML = `# repositories for the CLI test
repositories:
  - key: cli-dev
    format: raw
    kind: local
    tier: dev
  - key: cli-staging
    format: raw
    kind: local
    tier: staging
  - key: cli-release
    format: raw
    kind: local
    tier: release
    description: Released files
`

// The problems the server finds name fields; the CLI gives them the lines of
// the file. ok-one is valid but must not be created: bad input changes
// nothing.
const cliBadYAML = `- key: ok-one
  format: raw
  kind: local
- key: Bad_Key
  format: rpmx
  kind: local
  tier: gold
- key: virt
  format: raw
  kind: virtual
  members: [ghost]
`

func TestCLI(t *testing.T) {
	s := StartServer(t, "")
	c := newCLIRunner(t)

	t.Run("login", func(t *testing.T) {
		r := c.ok(adminPassword+"\n", "login", "--server", s.URL, "--user", "admin", "--password-stdin")
		mustContain(t, "login output", r.stdout, "Logged in to "+s.URL+" as admin")
		st, err := os.Stat(c.config)
		if err != nil {
			t.Fatalf("no saved login: %v", err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("saved login has mode %v, want 0600", st.Mode().Perm())
		}
		b, _ := os.ReadFile(c.config)
		if strings.Contains(string(b), adminPassword) {
			t.Errorf("the saved login holds the password:\n%s", b)
		}
		mustContain(t, "saved login", string(b), s.URL, `"token": "cft_`)
	})

	t.Run("login with a wrong password", func(t *testing.T) {
		other := newCLIRunner(t)
		other.fails("nope-nope-nope\n", []string{"login", "--server", s.URL, "--user", "admin", "--password-stdin"}, "wrong user name or password")
		if _, err := os.Stat(other.config); err == nil {
			t.Errorf("a failed login saved credentials")
		}
	})

	t.Run("whoami", func(t *testing.T) {
		r := c.ok("", "whoami")
		mustContain(t, "whoami", r.stdout, "admin", "administrator", s.URL)
		r = c.ok("", "whoami", "-o", "json")
		var me struct {
			Name  string `json:"name"`
			Admin bool   `json:"admin"`
			Token struct {
				Name string `json:"name"`
			} `json:"token"`
		}
		parseJSON(t, "whoami -o json", r.stdout, &me)
		if me.Name != "admin" || !me.Admin || !strings.HasPrefix(me.Token.Name, "cli@") {
			t.Errorf("whoami -o json = %+v", me)
		}
	})

	t.Run("repo apply", func(t *testing.T) {
		f := c.writeFile("repos.yaml", cliReposYAML)
		r := c.ok("", "repo", "apply", "-f", f)
		for _, k := range []string{"cli-dev", "cli-staging", "cli-release"} {
			mustContain(t, "first apply", r.stdout, k)
		}
		mustContain(t, "first apply", r.stdout, "3 created, 0 updated, 0 unchanged")
		r = c.ok("", "repo", "apply", "-f", f)
		mustContain(t, "second apply", r.stdout, "0 created, 0 updated, 3 unchanged")

		// A plain list on standard input, changing one description.
		r = c.ok("- {key: cli-dev, format: raw, kind: local, tier: dev, description: scratch}\n", "repo", "apply", "-f", "-")
		mustContain(t, "apply from stdin", r.stdout, "cli-dev", "updated", "0 created, 1 updated, 0 unchanged")

		r = c.ok("", "repo", "list", "-o", "json")
		var list []struct {
			Key  string `json:"key"`
			Tier string `json:"tier"`
		}
		parseJSON(t, "repo list -o json", r.stdout, &list)
		tiers := map[string]string{}
		for _, x := range list {
			tiers[x.Key] = x.Tier
		}
		if tiers["cli-staging"] != "staging" || tiers["cli-release"] != "release" {
			t.Errorf("repo list -o json: %s", r.stdout)
		}
		r = c.ok("", "repo", "get", "cli-release")
		mustContain(t, "repo get", r.stdout, "release", "Released files", "Overwrite:", "no")
	})

	t.Run("repo apply lists every problem with its line", func(t *testing.T) {
		f := c.writeFile("bad.yaml", cliBadYAML)
		r := c.fails("", []string{"repo", "apply", "-f", f},
			"4 problem(s)",
			`line 4: repositories[Bad_Key].key: "Bad_Key" must be`,
			`line 5: repositories[Bad_Key].format: "rpmx" is not a supported format`,
			`line 7: repositories[Bad_Key].tier: "gold" is not one of dev, staging, release`,
			`line 11: repositories[virt].members: member "ghost" is not a declared repository`)
		if r.stdout != "" {
			t.Errorf("stdout after a refused apply: %q", r.stdout)
		}
		c.fails("", []string{"repo", "get", "ok-one"}, `repository "ok-one" not found`)

		// Problems found before sending: unknown fields and wrong types.
		f = c.writeFile("typo.yaml", "repositories:\n  - key: typo\n    format: raw\n    kind: local\n    colour: red\n    overwrite: maybe\n")
		c.fails("", []string{"repo", "apply", "-f", f}, "2 problem(s)", `line 5: unknown field "colour"`, "line 6:")
	})

	var ciToken string
	t.Run("ci token writes staging, not release", func(t *testing.T) {
		c.ok("bob-password-1\n", "user", "create", "bob", "--email", "bob@example.com", "--password-stdin")
		r := c.ok("", "user", "list")
		mustContain(t, "user list", r.stdout, "bob", "bob@example.com")
		r = c.ok("", "permission", "grant", "--user", "bob", "--repos", "cli-*", "--actions", "read,write")
		mustContain(t, "grant", r.stdout, "Granted read,write on cli-* to user bob")
		r = c.ok("", "permission", "list")
		mustContain(t, "permission list", r.stdout, "user bob", "cli-*", "read,write")

		// bob creates his own CI token with his password, from the environment.
		r = c.ok("", "COFFER_USER=bob", "COFFER_PASSWORD=bob-password-1", "--", "token", "create", "--preset", "ci", "--name", "bob-ci")
		ciToken = strings.TrimSpace(r.stdout)
		if !strings.HasPrefix(ciToken, "cft_") || strings.Contains(ciToken, "\n") {
			t.Fatalf("token create printed %q on stdout, want the secret alone", r.stdout)
		}
		mustContain(t, "token create stderr", r.stderr, "bob-ci", "shown once", "write on * (staging)")

		art := c.writeFile("build.txt", "build output\n")
		r = c.ok("", "push", "--token", ciToken, "cli-staging/builds/1/build.txt", art)
		mustContain(t, "push to staging", r.stdout, "Pushed", "cli-staging/builds/1/build.txt")
		r = c.fails("", []string{"push", "--token", ciToken, "cli-release/builds/1/build.txt", art},
			`token "bob-ci" of user bob is not scoped to write repository cli-release`)
		if r.stdout != "" {
			t.Errorf("stdout after a refused push: %q", r.stdout)
		}
		// Staging is immutable: other bytes at the same path are refused.
		other := c.writeFile("other.txt", "different\n")
		c.fails("", []string{"push", "--token", ciToken, "cli-staging/builds/1/build.txt", other}, "cli-staging")

		r = c.ok("", "token", "list", "--all")
		mustContain(t, "token list --all", r.stdout, "bob-ci", "bob")
		r = c.ok("", "token", "create", "--for-user", "bob", "--name", "json-one", "--repos", "cli-dev", "--actions", "read", "-o", "json")
		var tok struct {
			ID     string `json:"id"`
			Token  string `json:"token"`
			User   string `json:"user"`
			Scopes []struct {
				Repos string `json:"repos"`
			} `json:"scopes"`
		}
		parseJSON(t, "token create -o json", r.stdout, &tok)
		if !strings.HasPrefix(tok.Token, "cft_") || tok.User != "bob" || len(tok.Scopes) != 1 || tok.Scopes[0].Repos != "cli-dev" {
			t.Errorf("token create -o json: %s", r.stdout)
		}
		c.ok("", "token", "revoke", tok.ID)
		c.fails("", []string{"whoami", "--token", tok.Token}, "unknown or revoked API token")
	})

	t.Run("groups", func(t *testing.T) {
		c.ok("", "group", "create", "devs", "--members", "bob")
		r := c.ok("", "group", "list")
		mustContain(t, "group list", r.stdout, "devs", "bob")
		r = c.ok("", "permission", "grant", "--group", "devs", "--repos", "cli-dev", "--actions", "delete", "-o", "json")
		var p struct {
			ID string `json:"id"`
		}
		parseJSON(t, "grant -o json", r.stdout, &p)
		c.ok("", "permission", "revoke", p.ID)
		c.ok("", "group", "remove-member", "devs", "bob")
		c.ok("", "group", "add-member", "devs", "bob")
		c.ok("", "group", "delete", "devs")
		r = c.ok("", "group", "list")
		if strings.Contains(r.stdout, "devs") {
			t.Errorf("group list after delete:\n%s", r.stdout)
		}
		c.fails("", []string{"group", "add-member", "nobody-group", "bob"}, "nobody-group")
	})

	t.Run("push and pull 5 MiB", func(t *testing.T) {
		data := make([]byte, 5<<20)
		rand.Read(data)
		sum := sha256.Sum256(data)
		hexSum := hex.EncodeToString(sum[:])
		src := filepath.Join(t.TempDir(), "big.bin")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r := c.ok("", "push", "cli-dev/big/v1/", src, "-o", "json")
		var pushed struct {
			Path      string            `json:"path"`
			Size      int64             `json:"size"`
			Checksums map[string]string `json:"checksums"`
		}
		parseJSON(t, "push -o json", r.stdout, &pushed)
		if pushed.Path != "big/v1/big.bin" || pushed.Size != 5<<20 || pushed.Checksums["sha256"] != hexSum {
			t.Errorf("push -o json: %s", r.stdout)
		}
		if r.stderr != "" {
			t.Errorf("push -o json wrote on stderr (no progress bar with json): %q", r.stderr)
		}

		// Default target: the path's last segment in the working directory.
		r = c.ok("", "pull", "--progress", "cli-dev/big/v1/big.bin")
		mustContain(t, "pull", r.stdout, "big.bin", hexSum, "verified")
		mustContain(t, "pull progress bar", r.stderr, "100%")
		got, err := os.ReadFile(filepath.Join(c.dir, "big.bin"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("pulled file differs from the pushed one (err %v, %d bytes)", err, len(got))
		}
		out := filepath.Join(t.TempDir(), "copy.bin")
		c.ok("", "pull", "cli-dev/big/v1/big.bin", "-O", out)
		if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
			t.Fatalf("pull -O: file differs")
		}
		r = c.ok("", "pull", "cli-dev/big/v1/big.bin", "-O", "-")
		if r.stdout != string(data) {
			t.Fatalf("pull -O -: %d bytes on stdout", len(r.stdout))
		}

		r = c.ok("", "ls", "cli-dev/big/v1")
		mustContain(t, "ls", r.stdout, "NAME", "big.bin", "5.0 MiB")
		r = c.ok("", "ls", "cli-dev")
		mustContain(t, "ls of the root", r.stdout, "big/")
		r = c.ok("", "ls", "cli-dev/big/v1", "-o", "json")
		var l struct {
			Children []struct {
				Name string `json:"name"`
				Size int64  `json:"size"`
			} `json:"children"`
		}
		parseJSON(t, "ls -o json", r.stdout, &l)
		if len(l.Children) != 1 || l.Children[0].Size != 5<<20 {
			t.Errorf("ls -o json: %s", r.stdout)
		}
		r = c.ok("", "search", "big.bin")
		mustContain(t, "search", r.stdout, "cli-dev", "big/v1/big.bin")
		r = c.ok("", "storage", "-o", "json")
		var st struct {
			LogicalBytes int64 `json:"logical_bytes"`
		}
		parseJSON(t, "storage -o json", r.stdout, &st)
		if st.LogicalBytes < 5<<20 {
			t.Errorf("storage: %s", r.stdout)
		}
	})

	t.Run("pull of a missing path", func(t *testing.T) {
		r := c.fails("", []string{"pull", "cli-dev/no/such/file.bin"}, "no/such/file.bin", "not found")
		if r.stdout != "" {
			t.Errorf("stdout: %q", r.stdout)
		}
		if _, err := os.Stat(filepath.Join(c.dir, "file.bin")); err == nil {
			t.Errorf("a failed pull left file.bin behind")
		}
		entries, _ := os.ReadDir(c.dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".coffer-") {
				t.Errorf("a failed pull left %s behind", e.Name())
			}
		}
		c.fails("", []string{"pull", "no-such-repo/file.bin"}, `repository "no-such-repo" not found`)
	})

	t.Run("deprecate", func(t *testing.T) {
		c.ok("", "deprecate", "cli-staging/builds/1/build.txt", "--message", "use build 2")
		r := c.ok("", "pull", "cli-staging/builds/1/build.txt", "-O", filepath.Join(t.TempDir(), "b.txt"))
		mustContain(t, "pull of a deprecated file", r.stderr, "deprecated: use build 2")
		c.ok("", "deprecate", "--undo", "cli-staging/builds/1/build.txt")
		r = c.ok("", "pull", "cli-staging/builds/1/build.txt", "-O", filepath.Join(t.TempDir(), "b.txt"))
		if strings.Contains(r.stderr, "deprecated") {
			t.Errorf("still deprecated after --undo: %s", r.stderr)
		}
	})

	t.Run("errors with json output", func(t *testing.T) {
		r := c.fails("", []string{"repo", "get", "nope", "-o", "json"}, `repository "nope" not found`)
		if r.stdout != "" {
			t.Errorf("stdout on error: %q", r.stdout)
		}
		c.fails("", []string{"whoami", "-o", "yaml"}, `--output "yaml" is not one of text, json`)
		// bob may not manage users.
		c.fails("", []string{"user", "list", "--user", "bob", "--password", "bob-password-1"}, "user bob may not admin")
	})

	t.Run("logout revokes the token", func(t *testing.T) {
		b, _ := os.ReadFile(c.config)
		var saved struct {
			Token string `json:"token"`
		}
		parseJSON(t, "saved login", string(b), &saved)
		r := c.ok("", "logout")
		mustContain(t, "logout", r.stdout, "Logged out of "+s.URL)
		if _, err := os.Stat(c.config); err == nil {
			t.Errorf("logout left the saved login")
		}
		c.fails("", []string{"whoami", "--server", s.URL, "--token", saved.Token}, "unknown or revoked API token")
		r = c.ok("", "whoami", "--server", s.URL)
		mustContain(t, "whoami after logout", r.stdout, "anonymous")
	})
}
