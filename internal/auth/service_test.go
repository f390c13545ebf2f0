package auth

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/meta/sqlite"
)

// repos are the repositories the tests authorize against.
var repos = map[string]RepoAttrs{
	"docker-dev-local":     {Tier: "dev"},
	"docker-staging-local": {Tier: "staging"},
	"docker-staging-api":   {Tier: "staging"},
	"docker-release-local": {Tier: "release"},
	"raw-dev":              {Tier: "dev"},
	"public-docs":          {Tier: "release"},
	"anon-readable":        {Tier: "dev", AnonymousRead: true},
	"npm-remote":           {},
}

type fixture struct {
	svc   *Service
	store meta.Store
	dir   string
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), filepath.Join(dir, "coffer.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{store: store, dir: dir, now: time.Now()}
	f.svc = New(store, func(key string) (RepoAttrs, bool) {
		a, ok := repos[key]
		return a, ok
	})
	f.svc.now = func() time.Time { return f.now }
	return f
}

func (f *fixture) user(t *testing.T, name string, admin bool) *meta.User {
	t.Helper()
	u, err := f.svc.CreateUser(t.Context(), name, name+"-password", "", admin)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (f *fixture) grant(t *testing.T, typ, principal, repos string, actions string) {
	t.Helper()
	if err := f.svc.Grant(t.Context(), &meta.Permission{PrincipalType: typ, Principal: principal, Repos: repos, Actions: actions}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) login(t *testing.T, name, secret string) *Principal {
	t.Helper()
	p, err := f.svc.Login(t.Context(), name, secret)
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return p
}

func (f *fixture) token(t *testing.T, u *meta.User, scopes []Scope, ttl time.Duration) string {
	t.Helper()
	nt, err := f.svc.CreateToken(t.Context(), u, "t", "", scopes, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return nt.Secret
}

func TestTokensAreStoredHashed(t *testing.T) {
	f := newFixture(t)
	u := f.user(t, "alice", false)
	nt, err := f.svc.CreateToken(t.Context(), u, "ci", "for CI", Presets["ci"], 0)
	if err != nil {
		t.Fatal(err)
	}
	secret := nt.Secret
	ts, err := f.store.ListTokens(t.Context(), u.ID)
	if err != nil || len(ts) != 1 {
		t.Fatalf("ListTokens: %v %v", ts, err)
	}
	tok := ts[0]
	if tok.Hash != HashToken(secret) {
		t.Errorf("stored hash %q is not sha256 of the secret", tok.Hash)
	}
	for _, field := range []string{tok.ID, tok.Name, tok.Hash, tok.Scopes, tok.Description, tok.UserName} {
		if strings.Contains(field, secret[len(TokenPrefix):]) {
			t.Fatalf("the store holds the secret in %q", field)
		}
	}
	// Nowhere on disk either.
	files, _ := filepath.Glob(filepath.Join(f.dir, "coffer.db*"))
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret[len(TokenPrefix):]) {
			t.Fatalf("%s contains the token secret", filepath.Base(file))
		}
	}
	// And the secret authenticates, as Bearer or as a Basic password.
	for _, h := range []string{"Bearer " + secret, basic("alice", secret), basic("token", secret), basic("__token__", secret), basic("", secret)} {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", h)
		p, err := f.svc.Authenticate(t.Context(), req)
		if err != nil || p.Name() != "alice" || p.TokenName != "ci" || p.Scopes == nil {
			t.Errorf("Authenticate(%s...): %+v %v", h[:8], p, err)
		}
	}
	// A token sent with someone else's name is refused.
	if _, err := f.svc.Login(t.Context(), "bob", secret); !errors.Is(err, errs.Unauthenticated) {
		t.Errorf("token under another name: %v", err)
	}
	// Revoked tokens stop working.
	if err := f.store.DeleteToken(t.Context(), tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Login(t.Context(), "alice", secret); !errors.Is(err, errs.Unauthenticated) {
		t.Errorf("revoked token: %v", err)
	}
}

func basic(user, pw string) string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(user, pw)
	return req.Header.Get("Authorization")
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	u := f.user(t, "alice", false)
	f.user(t, "tokenonly", false)
	if _, err := f.svc.CreateUser(t.Context(), "nopw", "", "", false); err != nil {
		t.Fatal(err)
	}
	live := f.token(t, u, nil, time.Hour)
	expiring := f.token(t, u, nil, time.Minute)
	f.now = f.now.Add(2 * time.Minute)

	tests := []struct {
		name, header string
		want         string // user name, or "" for an error
		msg          string
	}{
		{"no credentials", "", "anonymous", ""},
		{"password", basic("alice", "alice-password"), "alice", ""},
		{"wrong password", basic("alice", "alice-passwordX"), "", "wrong user name or password"},
		{"unknown user", basic("mallory", "alice-password"), "", "wrong user name or password"},
		{"user without password", basic("nopw", ""), "", "wrong user name or password"},
		{"token", "Bearer " + live, "alice", ""},
		{"expired token", "Bearer " + expiring, "", "expired"},
		{"expired token as password", basic("alice", expiring), "", "expired"},
		{"unknown token", "Bearer " + TokenPrefix + strings.Repeat("x", 43), "", "unknown or revoked"},
		{"bearer not a token", "Bearer abc", "", "invalid bearer"},
		{"malformed basic", "Basic !!!", "", "malformed"},
		{"other scheme", "Digest username=alice", "", "unsupported authorization scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "/", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			p, err := f.svc.Authenticate(t.Context(), req)
			if tt.want == "" {
				if !errors.Is(err, errs.Unauthenticated) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("got %v, %v; want an Unauthenticated error saying %q", p, err, tt.msg)
				}
				return
			}
			if err != nil || p.Name() != tt.want {
				t.Fatalf("got %v, %v; want %s", p, err, tt.want)
			}
		})
	}
}

func TestDisabledUser(t *testing.T) {
	f := newFixture(t)
	u := f.user(t, "alice", false)
	secret := f.token(t, u, nil, 0)
	f.login(t, "alice", "alice-password") // now cached as verified

	u.Disabled = true
	if err := f.store.UpdateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	f.svc.Invalidate()
	for _, secret := range []string{"alice-password", secret} {
		if _, err := f.svc.Login(t.Context(), "alice", secret); !errors.Is(err, errs.Unauthenticated) {
			t.Errorf("disabled user logs in with %.8s...: %v", secret, err)
		}
	}
}

func TestAuthorize(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	admin := f.user(t, "admin", true)
	alice := f.user(t, "alice", false)
	f.user(t, "bob", false)
	f.user(t, "carol", false)
	if err := f.store.CreateGroup(ctx, &meta.Group{Name: "devs"}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.AddGroupMember(ctx, "devs", "bob"); err != nil {
		t.Fatal(err)
	}
	f.grant(t, "user", "alice", "docker-staging-*", "read,write")
	f.grant(t, "group", "devs", "raw-*,docker-dev-*", "read,write,delete")
	f.grant(t, "anonymous", "", "public-*", "read")
	f.grant(t, "user", "carol", "docker-release-local", "admin")

	principals := map[string]*Principal{
		"anonymous":     Anonymous,
		"admin":         f.login(t, "admin", "admin-password"),
		"alice":         f.login(t, "alice", "alice-password"),
		"bob":           f.login(t, "bob", "bob-password"),
		"carol":         f.login(t, "carol", "carol-password"),
		"admin-ci":      f.login(t, "admin", f.token(t, admin, Presets["ci"], 0)),
		"admin-pull":    f.login(t, "admin", f.token(t, admin, Presets["pull"], 0)),
		"admin-promote": f.login(t, "admin", f.token(t, admin, Presets["promote"], 0)),
		"admin-full":    f.login(t, "admin", f.token(t, admin, nil, 0)),
		"alice-narrow":  f.login(t, "alice", f.token(t, alice, []Scope{{Repos: "docker-staging-api", Actions: []Action{Read}}}, 0)),
		"alice-wide":    f.login(t, "alice", f.token(t, alice, []Scope{{Repos: "*", Actions: []Action{Admin}}}, 0)),
	}

	const (
		ok     = ""
		unauth = "unauthenticated"
	)
	tests := []struct {
		who    string
		action Action
		repo   string
		want   string // ok, unauth, or a substring of the Denied message
	}{
		// admin may do anything
		{"admin", Write, "docker-release-local", ok},
		{"admin", Delete, "raw-dev", ok},
		{"admin", Admin, "", ok},
		{"admin-full", Admin, "", ok},
		// user grants on a key pattern
		{"alice", Read, "docker-staging-local", ok},
		{"alice", Write, "docker-staging-api", ok},
		{"alice", Overwrite, "docker-staging-api", "user alice may not overwrite repository docker-staging-api"},
		{"alice", Delete, "docker-staging-local", "user alice may not delete repository docker-staging-local"},
		{"alice", Read, "docker-release-local", "user alice may not read repository docker-release-local"},
		{"alice", Write, "docker-dev-local", "user alice may not write repository docker-dev-local"},
		{"alice", Admin, "", "user alice may not admin this server"},
		// group grants
		{"bob", Write, "raw-dev", ok},
		{"bob", Delete, "docker-dev-local", ok},
		{"bob", Read, "docker-staging-local", "user bob may not read repository docker-staging-local"},
		// admin on one repository implies every action there, nowhere else
		{"carol", Delete, "docker-release-local", ok},
		{"carol", Promote, "docker-release-local", ok},
		{"carol", Read, "raw-dev", "user carol may not read repository raw-dev"},
		{"carol", Admin, "", "may not admin this server"},
		// anonymous grants and anonymous_read
		{"anonymous", Read, "public-docs", ok},
		{"anonymous", Write, "public-docs", unauth},
		{"anonymous", Read, "anon-readable", ok},
		{"anonymous", Write, "anon-readable", unauth},
		{"anonymous", Read, "raw-dev", unauth},
		{"anonymous", Admin, "", unauth},
		{"carol", Read, "anon-readable", ok},
		{"carol", Read, "public-docs", ok},
		// ci preset: reads all, writes staging only
		{"admin-ci", Read, "docker-dev-local", ok},
		{"admin-ci", Read, "docker-release-local", ok},
		{"admin-ci", Write, "docker-staging-local", ok},
		{"admin-ci", Write, "docker-dev-local", `token "t" of user admin is not scoped to write repository docker-dev-local`},
		{"admin-ci", Write, "docker-release-local", "not scoped to write repository docker-release-local"},
		{"admin-ci", Delete, "docker-staging-local", "not scoped to delete"},
		{"admin-ci", Overwrite, "docker-staging-local", "not scoped to overwrite"},
		{"admin-ci", Admin, "", "not scoped to admin this server"},
		// pull preset: reads release only
		{"admin-pull", Read, "docker-release-local", ok},
		{"admin-pull", Read, "public-docs", ok},
		{"admin-pull", Read, "docker-staging-local", "not scoped to read repository docker-staging-local"},
		{"admin-pull", Write, "docker-release-local", "not scoped to write"},
		// promote preset
		{"admin-promote", Promote, "docker-staging-local", ok},
		{"admin-promote", Promote, "docker-release-local", ok},
		{"admin-promote", Promote, "docker-dev-local", "not scoped to promote"},
		{"admin-promote", Write, "docker-release-local", ok},
		{"admin-promote", Write, "docker-staging-local", "not scoped to write"},
		// scopes only narrow: never more than the user may do
		{"alice-narrow", Read, "docker-staging-api", ok},
		{"alice-narrow", Write, "docker-staging-api", "not scoped to write repository docker-staging-api"},
		{"alice-narrow", Read, "docker-staging-local", "not scoped to read"},
		{"alice-wide", Write, "docker-staging-api", ok},
		{"alice-wide", Write, "raw-dev", "user alice may not write repository raw-dev"},
		{"alice-wide", Admin, "", "may not admin this server"},
	}
	for _, tt := range tests {
		name := tt.who + " " + string(tt.action) + " " + tt.repo
		t.Run(name, func(t *testing.T) {
			p := principals[tt.who]
			err := f.svc.Authorize(ctx, p, tt.action, tt.repo)
			switch tt.want {
			case ok:
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !f.svc.Can(ctx, p, tt.action, tt.repo) {
					t.Fatal("Can disagrees with Authorize")
				}
			case unauth:
				if !errors.Is(err, errs.Unauthenticated) || !strings.Contains(err.Error(), string(tt.action)) {
					t.Fatalf("got %v, want Unauthenticated naming the action", err)
				}
			default:
				if !errors.Is(err, errs.Denied) {
					t.Fatalf("got %v, want Denied", err)
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("message %q does not say %q", err, tt.want)
				}
			}
		})
	}

	// Revoking a grant takes effect at once.
	perms, _ := f.store.ListPermissions(ctx)
	for _, p := range perms {
		if p.Principal == "alice" {
			if err := f.store.DeletePermission(ctx, p.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.svc.Invalidate()
	if err := f.svc.Authorize(ctx, principals["alice"], Read, "docker-staging-local"); !errors.Is(err, errs.Denied) {
		t.Errorf("after revoking: %v", err)
	}
}

func TestGrantValidation(t *testing.T) {
	f := newFixture(t)
	f.user(t, "alice", false)
	tests := []struct {
		p   meta.Permission
		msg string
	}{
		{meta.Permission{PrincipalType: "user", Principal: "nobody", Repos: "*", Actions: "read"}, "not found"},
		{meta.Permission{PrincipalType: "group", Principal: "nogroup", Repos: "*", Actions: "read"}, "not found"},
		{meta.Permission{PrincipalType: "robot", Principal: "alice", Repos: "*", Actions: "read"}, "principal type"},
		{meta.Permission{PrincipalType: "user", Principal: "alice", Repos: "[", Actions: "read"}, "pattern"},
		{meta.Permission{PrincipalType: "user", Principal: "alice", Repos: "", Actions: "read"}, "pattern"},
		{meta.Permission{PrincipalType: "user", Principal: "alice", Repos: "*", Actions: "read,fly"}, "unknown action"},
		{meta.Permission{PrincipalType: "user", Principal: "alice", Repos: "*", Actions: ""}, "no actions"},
	}
	for _, tt := range tests {
		p := tt.p
		err := f.svc.Grant(t.Context(), &p)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Grant(%+v) = %v, want an error saying %q", tt.p, err, tt.msg)
		}
	}
	if ps, _ := f.store.ListPermissions(t.Context()); len(ps) != 0 {
		t.Errorf("refused grants were stored: %v", ps)
	}
	// A token scope is checked too.
	u, _ := f.store.GetUser(t.Context(), "alice")
	for _, sc := range [][]Scope{
		{{Repos: "[", Actions: []Action{Read}}},
		{{Repos: "*"}},
		{{Repos: "*", Actions: []Action{"fly"}}},
		{{Repos: "*", Tiers: []string{"prod"}, Actions: []Action{Read}}},
	} {
		if _, err := f.svc.CreateToken(t.Context(), u, "bad", "", sc, 0); !errors.Is(err, errs.Invalid) {
			t.Errorf("CreateToken with scopes %+v: %v", sc, err)
		}
	}
}

func TestEnsureAdmin(t *testing.T) {
	f := newFixture(t)
	gen, err := f.svc.EnsureAdmin(t.Context(), "")
	if err != nil || len(gen) != 24 {
		t.Fatalf("EnsureAdmin generated %q, %v", gen, err)
	}
	f.login(t, AdminName, gen)
	// A second start changes nothing, whatever the environment says.
	again, err := f.svc.EnsureAdmin(t.Context(), "another-password")
	if err != nil || again != "" {
		t.Fatalf("second EnsureAdmin: %q %v", again, err)
	}
	if _, err := f.svc.Login(context.Background(), AdminName, "another-password"); err == nil {
		t.Error("the admin password changed on restart")
	}
	p := f.login(t, AdminName, gen)
	if !p.IsAdmin() {
		t.Error("the first account is not an administrator")
	}
}

func TestUserNames(t *testing.T) {
	f := newFixture(t)
	for _, bad := range []string{"", "-x", "a b", "a/b", strings.Repeat("a", 65), "ünïcode"} {
		if _, err := f.svc.CreateUser(t.Context(), bad, "long enough pw", "", false); !errors.Is(err, errs.Invalid) {
			t.Errorf("CreateUser(%q): %v", bad, err)
		}
	}
	if _, err := f.svc.CreateUser(t.Context(), "short", "1234567", "", false); !errors.Is(err, errs.Invalid) {
		t.Errorf("short password: %v", err)
	}
	f.user(t, "dup", false)
	if _, err := f.svc.CreateUser(t.Context(), "dup", "long enough pw", "", false); !errors.Is(err, errs.Exists) {
		t.Errorf("duplicate user: %v", err)
	}
}
