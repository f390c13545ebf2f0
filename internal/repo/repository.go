package repo

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/meta"
)

// Kind is how a repository gets its content.
type Kind string

// The kinds.
const (
	Local   Kind = "local"
	Remote  Kind = "remote"
	Virtual Kind = "virtual"
)

// Tier sets the policy defaults of a local repository.
type Tier string

// The tiers.
const (
	Dev     Tier = "dev"
	Staging Tier = "staging"
	Release Tier = "release"
)

// Defaults for remote repositories.
const (
	DefaultMetadataTTL     = 10 * time.Minute
	DefaultNegativeTTL     = time.Minute
	DefaultUpstreamTimeout = 15 * time.Second
)

// Policy is what a repository allows, after tier defaults and explicit settings.
type Policy struct {
	Overwrite     bool `json:"overwrite"`
	Delete        bool `json:"delete"`
	AnonymousRead bool `json:"anonymous_read"`
}

// Upstream is a remote repository's resolved upstream.
type Upstream struct {
	URL      *url.URL
	Username string
	Password string
	Timeout  time.Duration
}

// Repository is a repository as the server uses it.
type Repository struct {
	ID          string
	Key         string
	Format      string
	Kind        Kind
	Tier        Tier
	Description string
	Policy      Policy

	MaxUploadSize int64 // 0: the server's limit
	Quota         int64 // logical bytes; 0: none

	Upstream    *Upstream
	MetadataTTL time.Duration
	NegativeTTL time.Duration

	Members       []string
	DefaultDeploy string

	// Declared is the definition it was built from.
	Declared  config.Repository
	CreatedAt time.Time
}

// TierPolicy returns the default policy of a tier.
func TierPolicy(t Tier) Policy {
	switch t {
	case Staging:
		return Policy{Overwrite: false, Delete: true}
	case Release:
		return Policy{Overwrite: false, Delete: false}
	}
	return Policy{Overwrite: true, Delete: true}
}

// PolicyName describes the policy for messages: "staging: no overwrite".
func (r *Repository) PolicyName() string {
	var parts []string
	if !r.Policy.Overwrite {
		parts = append(parts, "no overwrite")
	}
	if !r.Policy.Delete {
		parts = append(parts, "no delete")
	}
	p := strings.Join(parts, ", ")
	if p == "" {
		p = "overwrite and delete allowed"
	}
	if r.Tier != "" {
		return fmt.Sprintf("%s tier: %s", r.Tier, p)
	}
	return p
}

// build turns a declaration into a Repository, resolving secrets.
func build(d config.Repository, row *meta.Repository) (*Repository, error) {
	r := &Repository{
		Key:           d.Key,
		Format:        d.Format,
		Kind:          Kind(d.Kind),
		Tier:          Tier(d.Tier),
		Description:   d.Description,
		MaxUploadSize: int64(d.MaxUploadSize),
		Quota:         int64(d.Quota),
		Members:       d.Members,
		DefaultDeploy: d.DefaultDeploy,
		Declared:      d,
	}
	if row != nil {
		r.ID, r.CreatedAt = row.ID, row.CreatedAt
	}
	if r.Kind == Local && r.Tier == "" {
		r.Tier = Dev
	}
	switch r.Kind {
	case Local:
		r.Policy = TierPolicy(r.Tier)
	case Remote:
		// Cached content may be evicted by whoever may delete; never overwritten by clients.
		r.Policy = Policy{Overwrite: false, Delete: true}
	case Virtual:
		r.Policy = Policy{}
	}
	if d.Overwrite != nil {
		r.Policy.Overwrite = *d.Overwrite
	}
	if d.Delete != nil {
		r.Policy.Delete = *d.Delete
	}
	r.Policy.AnonymousRead = d.AnonymousRead
	if r.Kind == Remote && d.Upstream != nil {
		u, err := url.Parse(d.Upstream.URL)
		if err != nil {
			return nil, fmt.Errorf("repository %s: upstream url: %w", d.Key, err)
		}
		up := &Upstream{URL: u, Username: d.Upstream.Username, Timeout: d.Upstream.Timeout.D()}
		if up.Timeout == 0 {
			up.Timeout = DefaultUpstreamTimeout
		}
		switch {
		case d.Upstream.PasswordEnv != "":
			up.Password = os.Getenv(d.Upstream.PasswordEnv)
		case d.Upstream.PasswordFile != "":
			b, err := os.ReadFile(d.Upstream.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("repository %s: upstream password_file: %w", d.Key, err)
			}
			up.Password = strings.TrimRight(string(b), "\r\n")
		}
		r.Upstream = up
		r.MetadataTTL = d.MetadataTTL.D()
		if d.MetadataTTL == 0 {
			r.MetadataTTL = DefaultMetadataTTL
		}
		r.NegativeTTL = d.NegativeTTL.D()
		if d.NegativeTTL == 0 {
			r.NegativeTTL = DefaultNegativeTTL
		}
	}
	return r, nil
}

func decodeRow(row *meta.Repository) (*Repository, error) {
	var d config.Repository
	if err := json.Unmarshal(row.Settings, &d); err != nil {
		return nil, fmt.Errorf("repository %s: stored settings: %w", row.Key, err)
	}
	d.Key, d.Format, d.Kind, d.Tier = row.Key, row.Format, row.Kind, row.Tier
	return build(d, row)
}
