package config

import (
	"crypto/x509"
	"encoding/pem"
	"os"

	"github.com/cofferhq/coffer/internal/policy"
)

// RetentionJob schedules retention.
type RetentionJob struct {
	// Interval between scheduled runs over every repository with rules (0
	// disables the schedule; runs on demand still work).
	Interval Duration `yaml:"interval" json:"interval"`
}

// Retention declares a local repository's retention rules. Retention is
// opt-in: without rules nothing expires, and a release repository never
// expires anything whatever its rules say.
type Retention struct {
	// KeepLast keeps the N most recently created versions of each package.
	KeepLast int `yaml:"keep_last,omitempty" json:"keep_last,omitempty"`
	// MaxAgeDays expires versions created more than D days ago.
	MaxAgeDays int `yaml:"max_age_days,omitempty" json:"max_age_days,omitempty"`
	// KeepDownloadedDays never expires a version downloaded within the
	// last D days (default: max_age_days).
	KeepDownloadedDays int `yaml:"keep_downloaded_days,omitempty" json:"keep_downloaded_days,omitempty"`
	// KeepTags never expires what a matching tag (glob) points at; latest
	// is always kept.
	KeepTags []string `yaml:"keep_tags,omitempty" json:"keep_tags,omitempty"`
	// ECRPolicy is an AWS ECR lifecycle policy (its JSON text, as is), for
	// OCI repositories; it applies to each image name as ECR applies it to
	// a repository.
	ECRPolicy string `yaml:"ecr_policy,omitempty" json:"ecr_policy,omitempty"`
}

// Rules returns the per-package rules.
func (r *Retention) Rules() policy.Rules {
	if r == nil {
		return policy.Rules{}
	}
	return policy.Rules{KeepLast: r.KeepLast, MaxAgeDays: r.MaxAgeDays, KeepDownloadedDays: r.KeepDownloadedDays, KeepTags: r.KeepTags}
}

// Promotion declares the gates a promotion into a local repository passes.
type Promotion struct {
	// RequireSignature: a cosign signature of the artifact's digest must
	// verify against one of these public keys (offline, key-based).
	RequireSignature *SignatureGate `yaml:"require_signature,omitempty" json:"require_signature,omitempty"`
	// RequireProperties: the artifact must carry these properties with these
	// values (set through the API, e.g. ci.tests=passed).
	RequireProperties map[string]string `yaml:"require_properties,omitempty" json:"require_properties,omitempty"`
	// RequireApproval: a second user with promote permission on this
	// repository approves the pending promotion.
	RequireApproval bool `yaml:"require_approval,omitempty" json:"require_approval,omitempty"`
}

// SignatureGate lists the public keys signatures are verified against.
type SignatureGate struct {
	PublicKeys     []string `yaml:"public_keys,omitempty" json:"public_keys,omitempty"`           // PEM text
	PublicKeyFiles []string `yaml:"public_key_files,omitempty" json:"public_key_files,omitempty"` // PEM files
}

// Keys returns the PEM blocks of every configured key.
func (g *SignatureGate) Keys() ([][]byte, error) {
	var out [][]byte
	for _, k := range g.PublicKeys {
		out = append(out, []byte(k))
	}
	for _, f := range g.PublicKeyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func validPublicKey(b []byte) bool {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return false
	}
	_, err := x509.ParsePKIXPublicKey(blk.Bytes)
	return err == nil
}

func validateLifecycle(r Repository, add func(name, format string, args ...any)) {
	if rt := r.Retention; rt != nil {
		if r.Kind != "" && r.Kind != "local" {
			add("retention", "only local repositories have retention rules")
		}
		for _, p := range rt.Rules().Validate() {
			add("retention", "%s", p)
		}
		if rt.ECRPolicy != "" {
			if r.Format != "oci" {
				add("retention", "ecr_policy applies to oci repositories only")
			} else if _, err := policy.ParseECRPolicy([]byte(rt.ECRPolicy)); err != nil {
				add("retention", "ecr_policy: %v", err)
			}
		}
	}
	if p := r.Promotion; p != nil {
		if r.Kind != "" && r.Kind != "local" {
			add("promotion", "only local repositories are promotion targets")
		}
		if g := p.RequireSignature; g != nil {
			if len(g.PublicKeys)+len(g.PublicKeyFiles) == 0 {
				add("promotion", "require_signature needs public_keys or public_key_files")
			}
			for i, k := range g.PublicKeys {
				if !validPublicKey([]byte(k)) {
					add("promotion", "require_signature.public_keys[%d] is not a PEM public key", i)
				}
			}
			for _, f := range g.PublicKeyFiles {
				b, err := os.ReadFile(f)
				if err != nil {
					add("promotion", "require_signature.public_key_files: %v", err)
				} else if !validPublicKey(b) {
					add("promotion", "require_signature.public_key_files: %s is not a PEM public key", f)
				}
			}
		}
		for k := range p.RequireProperties {
			if k == "" {
				add("promotion", "require_properties has an empty key")
			}
		}
	}
}
