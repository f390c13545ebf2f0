package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
)

// Principal is who is calling.
type Principal struct {
	User *meta.User // nil for an anonymous caller
	// TokenID/TokenName are set when an API token authenticated the call.
	TokenID   string
	TokenName string
	// Scopes narrow the user's permissions; nil means not narrowed.
	Scopes []Scope
}

// Anonymous is the principal of a call without credentials.
var Anonymous = &Principal{}

// IsAnonymous reports whether no one authenticated.
func (p *Principal) IsAnonymous() bool { return p == nil || p.User == nil }

// Name is the user name, or "anonymous".
func (p *Principal) Name() string {
	if p.IsAnonymous() {
		return "anonymous"
	}
	return p.User.Name
}

// IsAdmin reports whether the principal may administer everything.
func (p *Principal) IsAdmin() bool {
	return !p.IsAnonymous() && p.User.Admin && p.scopeAllows(Admin, "*", "")
}

func (p *Principal) scopeAllows(a Action, repo, tier string) bool {
	if p.Scopes == nil {
		return true
	}
	for _, s := range p.Scopes {
		if (slices.Contains(s.Actions, a) || slices.Contains(s.Actions, Admin)) &&
			(repo == "*" && s.Repos == "*" || MatchRepo(s.Repos, repo)) &&
			(len(s.Tiers) == 0 || slices.Contains(s.Tiers, tier)) {
			return true
		}
	}
	return false
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller, or Anonymous.
func PrincipalFrom(ctx context.Context) *Principal {
	if p, ok := ctx.Value(principalKey{}).(*Principal); ok && p != nil {
		return p
	}
	return Anonymous
}

// RepoAttrs is what authorization needs to know about a repository.
type RepoAttrs struct {
	Tier          string
	AnonymousRead bool
}

// BearerVerifier authenticates a bearer credential of its own kind (an OCI
// registry token, say). It returns ok=false when the credential is not its kind.
type BearerVerifier func(ctx context.Context, raw string) (p *Principal, ok bool, err error)

// Service authenticates callers and authorizes their actions.
type Service struct {
	store   meta.Store
	repo    func(key string) (RepoAttrs, bool)
	bearers []BearerVerifier
	now     func() time.Time

	mu        sync.Mutex
	perms     []*meta.Permission
	permsAt   time.Time
	verified  map[[32]byte]verifiedCred // password checks are slow: remember successes
	tokenSeen map[string]time.Time      // last_used_at is written at most once a minute
}

type verifiedCred struct {
	user    *meta.User
	expires time.Time
}

const (
	credCacheTTL = 2 * time.Minute
	permCacheTTL = 10 * time.Second
)

// New returns a Service over the metadata store. repo tells it a
// repository's tier and anonymous-read setting.
func New(store meta.Store, repo func(key string) (RepoAttrs, bool)) *Service {
	return &Service{store: store, repo: repo, now: time.Now,
		verified: map[[32]byte]verifiedCred{}, tokenSeen: map[string]time.Time{}}
}

// AddBearer registers a verifier for another kind of bearer token.
func (s *Service) AddBearer(v BearerVerifier) { s.bearers = append(s.bearers, v) }

// Invalidate drops cached users, credentials and permissions; call it after
// any change to them.
func (s *Service) Invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perms = nil
	clear(s.verified)
}

func unauthenticated(format string, args ...any) error {
	return errs.New(errs.Unauthenticated, format, args...)
}

// Authenticate identifies the caller of r from HTTP Basic (password or API
// token as the password) or Bearer (API token, or a registered bearer kind).
// No credentials is the Anonymous principal; bad credentials are an error.
func (s *Service) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Anonymous, nil
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "basic":
		user, pass, ok := r.BasicAuth()
		if !ok {
			return nil, unauthenticated("malformed Basic credentials")
		}
		return s.Login(ctx, user, pass)
	case "bearer":
		if strings.HasPrefix(cred, TokenPrefix) {
			return s.tokenPrincipal(ctx, cred)
		}
		for _, v := range s.bearers {
			if p, ok, err := v(ctx, cred); ok || err != nil {
				return p, err
			}
		}
		return nil, unauthenticated("invalid bearer token")
	}
	return nil, unauthenticated("unsupported authorization scheme %q", scheme)
}

// Login checks a user name and a password or API token.
func (s *Service) Login(ctx context.Context, name, secret string) (*Principal, error) {
	if strings.HasPrefix(secret, TokenPrefix) {
		p, err := s.tokenPrincipal(ctx, secret)
		if err != nil {
			return nil, err
		}
		// Clients send some user name with a token (twine and PyPI's
		// convention is __token__); if it names someone else, refuse rather
		// than guess.
		if name != "" && name != p.User.Name && name != "token" && name != "_token" && name != "__token__" {
			return nil, unauthenticated("the token does not belong to user %s", name)
		}
		return p, nil
	}
	key := sha256.Sum256([]byte(name + "\x00" + secret))
	s.mu.Lock()
	v, ok := s.verified[key]
	s.mu.Unlock()
	if ok && s.now().Before(v.expires) {
		return &Principal{User: v.user}, nil
	}
	u, err := s.store.GetUser(ctx, name)
	if errors.Is(err, errs.NotFound) {
		// Spend the same time as a real check: do not reveal which names exist.
		VerifyPassword(dummyHash, secret)
		return nil, unauthenticated("wrong user name or password")
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled || u.PasswordHash == "" || !VerifyPassword(u.PasswordHash, secret) {
		return nil, unauthenticated("wrong user name or password")
	}
	s.mu.Lock()
	if len(s.verified) > 10000 {
		clear(s.verified)
	}
	s.verified[key] = verifiedCred{user: u, expires: s.now().Add(credCacheTTL)}
	s.mu.Unlock()
	return &Principal{User: u}, nil
}

var dummyHash, _ = HashPassword("dummy password for timing")

func (s *Service) tokenPrincipal(ctx context.Context, secret string) (*Principal, error) {
	t, err := s.store.GetTokenByHash(ctx, HashToken(secret))
	if errors.Is(err, errs.NotFound) {
		return nil, unauthenticated("unknown or revoked API token")
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !t.ExpiresAt.IsZero() && now.After(t.ExpiresAt) {
		return nil, unauthenticated("API token %q expired at %s", t.Name, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	u, err := s.store.GetUserByID(ctx, t.UserID)
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, unauthenticated("user %s is disabled", u.Name)
	}
	var scopes []Scope
	if err := json.Unmarshal([]byte(t.Scopes), &scopes); err != nil {
		return nil, err
	}
	if len(scopes) == 0 {
		scopes = nil // an unscoped token acts as its user
	}
	s.mu.Lock()
	last := s.tokenSeen[t.ID]
	touch := now.Sub(last) > time.Minute
	if touch {
		s.tokenSeen[t.ID] = now
	}
	s.mu.Unlock()
	if touch {
		s.store.TouchToken(ctx, t.ID, now)
	}
	return &Principal{User: u, TokenID: t.ID, TokenName: t.Name, Scopes: scopes}, nil
}

func (s *Service) permissions(ctx context.Context) ([]*meta.Permission, error) {
	s.mu.Lock()
	if s.perms != nil && s.now().Sub(s.permsAt) < permCacheTTL {
		p := s.perms
		s.mu.Unlock()
		return p, nil
	}
	s.mu.Unlock()
	perms, err := s.store.ListPermissions(ctx)
	if err != nil {
		return nil, err
	}
	if perms == nil {
		perms = []*meta.Permission{}
	}
	s.mu.Lock()
	s.perms, s.permsAt = perms, s.now()
	s.mu.Unlock()
	return perms, nil
}

// Can reports whether p may do a on repository key, without an error message.
func (s *Service) Can(ctx context.Context, p *Principal, a Action, key string) bool {
	return s.Authorize(ctx, p, a, key) == nil
}

// Authorize decides whether p may do a on repository key ("" for
// instance-wide actions such as administration).
func (s *Service) Authorize(ctx context.Context, p *Principal, a Action, key string) error {
	attrs, _ := s.repo(key)
	target := "repository " + key
	if key == "" {
		target = "this server"
	}
	if p.IsAnonymous() {
		if a == Read && attrs.AnonymousRead {
			return nil
		}
		if ok, err := s.granted(ctx, p, a, key); err != nil {
			return err
		} else if ok {
			return nil
		}
		return unauthenticated("authentication required to %s %s", a, target)
	}
	if !p.scopeAllows(a, key, attrs.Tier) {
		return errs.New(errs.Denied, "token %q of user %s is not scoped to %s %s", p.TokenName, p.User.Name, a, target)
	}
	if p.User.Admin {
		return nil
	}
	if a == Read && attrs.AnonymousRead {
		return nil
	}
	ok, err := s.granted(ctx, p, a, key)
	if err != nil {
		return err
	}
	if !ok {
		return errs.New(errs.Denied, "user %s may not %s %s", p.User.Name, a, target)
	}
	return nil
}

func (s *Service) granted(ctx context.Context, p *Principal, a Action, key string) (bool, error) {
	if key == "" {
		return false, nil // instance-wide actions are for administrators
	}
	perms, err := s.permissions(ctx)
	if err != nil {
		return false, err
	}
	for _, g := range perms {
		applies := g.PrincipalType == "anonymous" ||
			!p.IsAnonymous() && (g.PrincipalType == "user" && g.Principal == p.User.Name ||
				g.PrincipalType == "group" && slices.Contains(p.User.Groups, g.Principal))
		if !applies || !MatchRepo(g.Repos, key) {
			continue
		}
		for _, x := range strings.Split(g.Actions, ",") {
			if Action(x) == a || Action(x) == Admin {
				return true, nil
			}
		}
	}
	return false, nil
}
