package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
)

// AdminName is the account created on first start.
const AdminName = "admin"

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidName checks a user or group name.
func ValidName(kind, name string) error {
	if !namePattern.MatchString(name) {
		return errs.New(errs.Invalid, "%s name %q must be 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", kind, name)
	}
	return nil
}

// EnsureAdmin creates the admin account if no user exists. The password is
// the given one, or a generated one that is returned so it can be printed
// once. When the account exists nothing changes and "" is returned.
func (s *Service) EnsureAdmin(ctx context.Context, password string) (generated string, err error) {
	users, err := s.store.ListUsers(ctx)
	if err != nil {
		return "", err
	}
	if len(users) > 0 {
		return "", nil
	}
	if password == "" {
		password = RandomPassword()
		generated = password
	}
	_, err = s.CreateUser(ctx, AdminName, password, "", true)
	return generated, err
}

// CreateUser creates an account with a password (may be empty: token-only).
func (s *Service) CreateUser(ctx context.Context, name, password, email string, admin bool) (*meta.User, error) {
	if err := ValidName("user", name); err != nil {
		return nil, err
	}
	u := &meta.User{Name: name, Email: email, Admin: admin}
	if password != "" {
		if len(password) < 8 {
			return nil, errs.New(errs.Invalid, "password must be at least 8 characters")
		}
		h, err := HashPassword(password)
		if err != nil {
			return nil, err
		}
		u.PasswordHash = h
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, errs.Exists) {
			return nil, errs.New(errs.Exists, "user %s already exists", name)
		}
		return nil, err
	}
	s.Invalidate()
	return u, nil
}

// SetPassword changes a user's password.
func (s *Service) SetPassword(ctx context.Context, name, password string) error {
	if len(password) < 8 {
		return errs.New(errs.Invalid, "password must be at least 8 characters")
	}
	u, err := s.store.GetUser(ctx, name)
	if err != nil {
		return err
	}
	if u.PasswordHash, err = HashPassword(password); err != nil {
		return err
	}
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return err
	}
	s.Invalidate()
	return nil
}

// NewToken is a created token and its secret, which is never shown again.
type NewToken struct {
	Token  *meta.Token
	Secret string
}

// CreateToken creates an API token for user. ttl 0 means it never expires;
// empty scopes mean it acts with all of its user's permissions.
func (s *Service) CreateToken(ctx context.Context, user *meta.User, name, description string, scopes []Scope, ttl time.Duration) (*NewToken, error) {
	for _, sc := range scopes {
		if err := ValidPattern(sc.Repos); err != nil {
			return nil, errs.New(errs.Invalid, "%v", err)
		}
		if len(sc.Actions) == 0 {
			return nil, errs.New(errs.Invalid, "scope on %q has no actions", sc.Repos)
		}
		for _, a := range sc.Actions {
			if !slices.Contains(AllActions, a) {
				return nil, errs.New(errs.Invalid, "unknown action %q in scope on %q (one of read, write, overwrite, delete, promote, admin)", a, sc.Repos)
			}
		}
		for _, t := range sc.Tiers {
			if !slices.Contains(config.Tiers, t) {
				return nil, errs.New(errs.Invalid, "unknown tier %q in scope on %q (one of dev, staging, release)", t, sc.Repos)
			}
		}
	}
	if scopes == nil {
		scopes = []Scope{}
	}
	js, err := json.Marshal(scopes)
	if err != nil {
		return nil, err
	}
	secret, hash, err := NewTokenSecret()
	if err != nil {
		return nil, err
	}
	t := &meta.Token{UserID: user.ID, UserName: user.Name, Name: name, Description: description, Hash: hash, Scopes: string(js)}
	if ttl > 0 {
		t.ExpiresAt = s.now().Add(ttl)
	}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return nil, err
	}
	return &NewToken{Token: t, Secret: secret}, nil
}

// Grant creates a permission after checking it.
func (s *Service) Grant(ctx context.Context, p *meta.Permission) error {
	switch p.PrincipalType {
	case "user":
		if _, err := s.store.GetUser(ctx, p.Principal); err != nil {
			return err
		}
	case "group":
		if _, err := s.store.GetGroup(ctx, p.Principal); err != nil {
			return err
		}
	case "anonymous":
		p.Principal = ""
	default:
		return errs.New(errs.Invalid, "principal type %q is not one of user, group, anonymous", p.PrincipalType)
	}
	if err := ValidPattern(p.Repos); err != nil {
		return errs.New(errs.Invalid, "%v", err)
	}
	acts, err := ParseActions(p.Actions)
	if err != nil {
		return errs.New(errs.Invalid, "%v", err)
	}
	p.Actions = joinActions(acts)
	if err := s.store.CreatePermission(ctx, p); err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	s.Invalidate()
	return nil
}
