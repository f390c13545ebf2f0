package oci

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/errs"
)

// The token endpoint docker-class clients use: GET /v2/token with Basic
// credentials (password or API token) or none, and scope parameters
// ("repository:<repo>/<name>:pull,push"); it answers a short-lived JWT
// granting the requested actions the caller's permissions allow. The JWT is
// signed with a key shared by every node (in the settings table).

const tokenTTL = 5 * time.Minute

// registryToken names the principals that registry tokens authenticate.
const registryToken = "registry token"

type tokenService struct {
	h    *handler
	once sync.Once
	key  []byte
	err  error
}

type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

type claims struct {
	Access []access `json:"access"`
	jwt.RegisteredClaims
}

func newTokenService(h *handler) *tokenService { return &tokenService{h: h} }

func (t *tokenService) signingKey(ctx context.Context) ([]byte, error) {
	t.once.Do(func() {
		b := make([]byte, 32)
		rand.Read(b)
		v, err := t.h.repos.Store().InitSetting(ctx, "oci.token_key", hex.EncodeToString(b))
		if err != nil {
			t.err = err
			return
		}
		t.key, t.err = hex.DecodeString(v)
	})
	return t.key, t.err
}

var actionFor = map[string]auth.Action{"pull": auth.Read, "push": auth.Write, "delete": auth.Delete}

func (t *tokenService) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		r.ParseForm()
		// OAuth2 password grant (containerd, some libraries).
		if r.PostForm.Get("grant_type") == "password" && r.Header.Get("Authorization") == "" {
			r.SetBasicAuth(r.PostForm.Get("username"), r.PostForm.Get("password"))
		}
	}
	r2, err := t.h.d.Authenticate(r)
	if err != nil {
		t.h.writeError(w, r, err, "")
		return
	}
	ctx := r2.Context()
	p := principalOf(r2)
	scopes := r.URL.Query()["scope"]
	if r.Method == http.MethodPost {
		scopes = append(scopes, strings.Fields(r.PostForm.Get("scope"))...)
	}
	var granted []access
	for _, s := range scopes {
		typ, rest, ok := strings.Cut(s, ":")
		if !ok || typ != "repository" {
			continue
		}
		i := strings.LastIndex(rest, ":")
		if i < 0 {
			continue
		}
		name, acts := rest[:i], strings.Split(rest[i+1:], ",")
		key, _, _ := strings.Cut(name, "/")
		a := access{Type: "repository", Name: name, Actions: []string{}}
		for _, act := range acts {
			want := []string{act}
			if act == "*" {
				want = []string{"pull", "push", "delete"}
			}
			for _, x := range want {
				if ca, ok := actionFor[x]; ok && t.h.d.Auth.Can(ctx, p, ca, key) && !slices.Contains(a.Actions, x) {
					a.Actions = append(a.Actions, x)
				}
			}
		}
		granted = append(granted, a)
	}
	if granted == nil {
		granted = []access{}
	}
	key, err := t.signingKey(ctx)
	if err != nil {
		t.h.writeError(w, r, err, "")
		return
	}
	now := time.Now()
	idb := make([]byte, 16)
	rand.Read(idb)
	c := claims{Access: granted, RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    "coffer",
		Subject:   strings.TrimPrefix(p.Name(), "anonymous"),
		Audience:  jwt.ClaimStrings{t.h.service},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		ExpiresAt: jwt.NewNumericDate(now.Add(tokenTTL)),
		ID:        hex.EncodeToString(idb),
	}}
	if p.IsAnonymous() {
		c.Subject = ""
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
	if err != nil {
		t.h.writeError(w, r, err, "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{
		"token":        signed,
		"access_token": signed,
		"expires_in":   int(tokenTTL.Seconds()),
		"issued_at":    now.UTC().Format(time.RFC3339),
	})
}

// verify is the auth.BearerVerifier for registry tokens.
func (t *tokenService) verify(ctx context.Context, raw string) (*auth.Principal, bool, error) {
	if strings.Count(raw, ".") != 2 {
		return nil, false, nil
	}
	key, err := t.signingKey(ctx)
	if err != nil {
		return nil, true, err
	}
	var c claims
	_, err = jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("coffer"))
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, true, errs.New(errs.Unauthenticated, "registry token expired; ask %s/v2/token for a new one", t.h.d.BaseURL)
		}
		return nil, true, errs.New(errs.Unauthenticated, "invalid registry token")
	}
	p := &auth.Principal{TokenName: registryToken, Scopes: []auth.Scope{}}
	if c.Subject != "" {
		u, err := t.h.repos.Store().GetUser(ctx, c.Subject)
		if err != nil || u.Disabled {
			return nil, true, errs.New(errs.Unauthenticated, "the user of this registry token no longer exists or is disabled")
		}
		p.User = u
	}
	for _, a := range c.Access {
		key, _, _ := strings.Cut(a.Name, "/")
		s := auth.Scope{Repos: key}
		for _, act := range a.Actions {
			if ca, ok := actionFor[act]; ok {
				s.Actions = append(s.Actions, ca)
			}
			if act == "push" {
				// Moving a tag is a push in registry terms; whether the
				// user may overwrite is still their permissions' business.
				s.Actions = append(s.Actions, auth.Overwrite)
			}
		}
		if len(s.Actions) > 0 {
			p.Scopes = append(p.Scopes, s)
			// Pushing to a virtual repository writes its default_deploy: the
			// scope covers it too (the user's own permissions still decide).
			if rp, err := t.h.repos.Repo(key); err == nil && rp.DefaultDeploy != "" {
				p.Scopes = append(p.Scopes, auth.Scope{Repos: rp.DefaultDeploy, Actions: s.Actions})
			}
		}
	}
	return p, true, nil
}
