package policy

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// Rules are Coffer's per-package retention rules. Zero values switch a rule
// off; rules with nothing set expire nothing.
type Rules struct {
	// KeepLast keeps the N most recently created versions of each package.
	KeepLast int `yaml:"keep_last,omitempty" json:"keep_last,omitempty"`
	// MaxAgeDays expires versions created more than D days ago.
	MaxAgeDays int `yaml:"max_age_days,omitempty" json:"max_age_days,omitempty"`
	// KeepDownloadedDays keeps versions downloaded within the last D days
	// (default: MaxAgeDays when that is set).
	KeepDownloadedDays int `yaml:"keep_downloaded_days,omitempty" json:"keep_downloaded_days,omitempty"`
	// KeepTags keeps every version a matching tag points at (globs such as
	// "stable", "v*"; "latest" is always kept).
	KeepTags []string `yaml:"keep_tags,omitempty" json:"keep_tags,omitempty"`
}

// Validate reports what is wrong with the rules.
func (r Rules) Validate() []string {
	var probs []string
	if r.KeepLast < 0 {
		probs = append(probs, "keep_last must not be negative")
	}
	if r.MaxAgeDays < 0 {
		probs = append(probs, "max_age_days must not be negative")
	}
	if r.KeepDownloadedDays < 0 {
		probs = append(probs, "keep_downloaded_days must not be negative")
	}
	for _, t := range r.KeepTags {
		if _, err := path.Match(t, ""); err != nil || t == "" {
			probs = append(probs, fmt.Sprintf("keep_tags: bad pattern %q", t))
		}
	}
	return probs
}

// Empty reports whether no rule is set (nothing expires).
func (r Rules) Empty() bool { return r.KeepLast == 0 && r.MaxAgeDays == 0 }

// DownloadWindow is how recent a download must be to keep a version.
func (r Rules) DownloadWindow() time.Duration {
	d := r.KeepDownloadedDays
	if d == 0 {
		d = r.MaxAgeDays
	}
	return time.Duration(d) * 24 * time.Hour
}

// KeepsTag reports whether a tag protects what it points at.
func (r Rules) KeepsTag(tag string) bool {
	if tag == "latest" {
		return true
	}
	for _, p := range r.KeepTags {
		if ok, _ := path.Match(p, tag); ok {
			return true
		}
	}
	return false
}

// Version is what the rules see of one package version.
type Version struct {
	ID      string
	Created time.Time
	Tags    []string
}

// Evaluate applies the rules to the versions of one package at time now.
// A version expires when it is not among the KeepLast newest (if set) and,
// if MaxAgeDays is set, was created more than that many days ago; a
// version a kept tag points at never expires. Downloads and pins are the
// caller's to apply.
func (r Rules) Evaluate(versions []Version, now time.Time) []Decision {
	if r.Empty() {
		return nil
	}
	sorted := make([]*Version, len(versions))
	for i := range versions {
		sorted[i] = &versions[i]
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].Created.Equal(sorted[j].Created) {
			return sorted[i].Created.After(sorted[j].Created)
		}
		return sorted[i].ID > sorted[j].ID
	})
	cutoff := now.Add(-time.Duration(r.MaxAgeDays) * 24 * time.Hour)
	var out []Decision
	for i, v := range sorted {
		var why []string
		if r.KeepLast > 0 {
			if i < r.KeepLast {
				continue
			}
			why = append(why, fmt.Sprintf("keep_last %d (it is number %d, newest first)", r.KeepLast, i+1))
		}
		if r.MaxAgeDays > 0 {
			if !v.Created.Before(cutoff) {
				continue
			}
			why = append(why, fmt.Sprintf("max_age_days %d (created %s)", r.MaxAgeDays, v.Created.UTC().Format(time.DateOnly)))
		}
		if anyTag(v.Tags, r.KeepsTag) {
			continue
		}
		out = append(out, Decision{ID: v.ID, Rule: strings.Join(why, " and ")})
	}
	return out
}
