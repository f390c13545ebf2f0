package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/policy"
	"github.com/cofferhq/coffer/internal/repo"
)

// Retention evaluates and applies repositories' retention rules.
type Retention struct {
	repos   *repo.Manager
	formats Formats
	log     *slog.Logger
	// Now is the clock (tests move it).
	Now func() time.Time

	mu   sync.Mutex // one run at a time
	last *RetentionReport
}

// NewRetention builds the retention runner.
func NewRetention(repos *repo.Manager, formats Formats, log *slog.Logger) *Retention {
	if log == nil {
		log = slog.Default()
	}
	return &Retention{repos: repos, formats: formats, log: log, Now: time.Now}
}

// RetentionReport is what a run did (or, dry, would do).
type RetentionReport struct {
	DryRun   bool            `json:"dry_run"`
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished"`
	Expired  int             `json:"expired"`
	Repos    []RepoRetention `json:"repositories"`
}

// RepoRetention is one repository's part of a report.
type RepoRetention struct {
	Repo string `json:"repo"`
	// Skipped says why nothing was evaluated (no rules, release tier, ...).
	Skipped   string        `json:"skipped,omitempty"`
	Expired   []ExpiredItem `json:"expired"`
	Protected []Protected   `json:"protected,omitempty"`
}

// ExpiredItem is a version expired (or to be) and the rule that decided it.
type ExpiredItem struct {
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Tags    []string  `json:"tags,omitempty"`
	Created time.Time `json:"created"`
	Rule    string    `json:"rule"`
	// With lists attached or child versions that go with it.
	With []string `json:"with,omitempty"`
}

// Protected is a version a rule selected that a protection kept.
type Protected struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Rule    string `json:"rule"`
	Reason  string `json:"reason"`
}

// Last returns the last run's report (nil before any).
func (rt *Retention) Last() *RetentionReport {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.last
}

// Run evaluates the rules of the named repositories (every local
// repository when keys is empty) and, unless dryRun, expires what they
// select, recording each expiry in the audit log.
func (rt *Retention) Run(ctx context.Context, keys []string, dryRun bool) (*RetentionReport, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var targets []*repo.Repository
	if len(keys) == 0 {
		for _, r := range rt.repos.List() {
			if r.Kind == repo.Local {
				targets = append(targets, r)
			}
		}
	} else {
		for _, k := range keys {
			r, err := rt.repos.Repo(k)
			if err != nil {
				return nil, err
			}
			if r.Kind != repo.Local {
				return nil, errs.New(errs.Invalid, "%s is a %s repository: retention applies to local repositories", k, r.Kind)
			}
			targets = append(targets, r)
		}
	}
	rep := &RetentionReport{DryRun: dryRun, Started: rt.Now()}
	for _, r := range targets {
		rr, err := rt.runRepo(ctx, r, dryRun)
		if err != nil {
			return nil, fmt.Errorf("retention of %s: %w", r.Key, err)
		}
		rep.Expired += len(rr.Expired)
		rep.Repos = append(rep.Repos, *rr)
	}
	rep.Finished = rt.Now()
	if !dryRun {
		rt.last = rep
	}
	rt.log.Info("retention run", "dry_run", dryRun, "repositories", len(rep.Repos), "expired", rep.Expired)
	return rep, nil
}

func (rt *Retention) runRepo(ctx context.Context, r *repo.Repository, dryRun bool) (*RepoRetention, error) {
	rr := &RepoRetention{Repo: r.Key, Expired: []ExpiredItem{}}
	decl := r.Declared.Retention
	rules := decl.Rules()
	var ecr *policy.ECRPolicy
	if decl != nil && decl.ECRPolicy != "" {
		var err error
		if ecr, err = policy.ParseECRPolicy([]byte(decl.ECRPolicy)); err != nil {
			return nil, err
		}
	}
	switch {
	case r.Tier == repo.Release:
		rr.Skipped = "release repositories never expire anything"
		return rr, nil
	case rules.Empty() && ecr == nil:
		rr.Skipped = "no retention rules (retention is opt-in)"
		return rr, nil
	}
	f := rt.formats(r.Format)
	var gr format.Grapher
	if f != nil {
		gr, _ = f.(format.Grapher)
	}
	st := rt.repos.Store()
	now := rt.Now()
	pins, err := st.ListPins(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	pinned := map[[2]string]*meta.Pin{}
	for _, p := range pins {
		pinned[[2]string{p.Name, p.Version}] = p
	}
	downloads, err := st.LastDownloads(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	allTags, err := st.ListTags(ctx, r.ID, "")
	if err != nil {
		return nil, err
	}
	// Versions that are part of another: children of an index, referrers,
	// tag-scheme attachments. They go with what they belong to.
	dependent := map[[2]string]bool{}
	for _, kind := range []string{"manifest", "subject"} {
		ls, err := st.ListLinksOfKind(ctx, r.ID, kind)
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			if kind == "manifest" {
				dependent[[2]string{l.Name, l.Target}] = true
			} else {
				dependent[[2]string{l.Name, l.Source}] = true
			}
		}
	}
	tagsOf := map[[2]string][]string{}
	for _, t := range allTags {
		if gr != nil && gr.AttachedTo(t.Tag) != "" {
			dependent[[2]string{t.Name, t.Target}] = true
			continue
		}
		k := [2]string{t.Name, t.Target}
		tagsOf[k] = append(tagsOf[k], t.Tag)
	}
	window := rules.DownloadWindow()
	if decl.KeepDownloadedDays > 0 {
		window = time.Duration(decl.KeepDownloadedDays) * 24 * time.Hour
	}
	after := ""
	for {
		names, err := st.ListComponentNames(ctx, r.ID, meta.NameQuery{After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			break
		}
		after = names[len(names)-1]
		for _, name := range names {
			comps, err := st.ListComponents(ctx, r.ID, name)
			if err != nil {
				return nil, err
			}
			byID := map[string]*meta.Component{}
			var versions []policy.Version
			var images []policy.Image
			for _, c := range comps {
				k := [2]string{name, c.Version}
				if dependent[k] {
					continue
				}
				byID[c.ID] = c
				versions = append(versions, policy.Version{ID: c.ID, Created: c.CreatedAt, Tags: tagsOf[k]})
				images = append(images, policy.Image{ID: c.ID, Pushed: c.CreatedAt, Tags: tagsOf[k]})
			}
			var decisions []policy.Decision
			if ecr != nil {
				decisions = ecr.Evaluate(images, now)
			}
			decided := map[string]bool{}
			for _, d := range decisions {
				decided[d.ID] = true
			}
			for _, d := range rules.Evaluate(versions, now) {
				if !decided[d.ID] {
					decisions = append(decisions, d)
				}
			}
			sort.SliceStable(decisions, func(i, j int) bool {
				return byID[decisions[i].ID].CreatedAt.Before(byID[decisions[j].ID].CreatedAt)
			})
			for _, d := range decisions {
				c := byID[d.ID]
				k := [2]string{name, c.Version}
				if t := keptTag(decl.KeepTags, tagsOf[k]); t != "" {
					rr.Protected = append(rr.Protected, Protected{Name: name, Version: c.Version, Rule: d.Rule,
						Reason: fmt.Sprintf("tag %s is kept (keep_tags)", t)})
					continue
				}
				if p := pinned[k]; p != nil {
					reason := "pinned"
					if p.CreatedBy != "" {
						reason += " by " + p.CreatedBy
					}
					if p.Reason != "" {
						reason += ": " + p.Reason
					}
					rr.Protected = append(rr.Protected, Protected{Name: name, Version: c.Version, Rule: d.Rule, Reason: reason})
					continue
				}
				if dl, ok := downloads[c.ID]; ok && window > 0 && now.Sub(dl) < window {
					rr.Protected = append(rr.Protected, Protected{Name: name, Version: c.Version, Rule: d.Rule,
						Reason: fmt.Sprintf("downloaded %s, within the last %d days", dl.UTC().Format(time.RFC3339), int(window.Hours()/24))})
					continue
				}
				item := ExpiredItem{Name: name, Version: c.Version, Tags: tagsOf[k], Created: c.CreatedAt, Rule: d.Rule}
				if !dryRun {
					found := false
					err := st.InTx(ctx, func(tx meta.Tx) error {
						with, ok, err := expire(ctx, tx, f, r, name, c.Version)
						if err != nil || !ok {
							return err
						}
						found, item.With = true, with
						detail, _ := json.Marshal(map[string]any{"name": name, "version": c.Version, "tags": item.Tags, "rule": d.Rule, "with": with})
						return tx.AddAudit(ctx, &meta.AuditEvent{Actor: "retention", Action: "retention_expire", Repo: r.Key,
							Path: name + "@" + c.Version, Detail: string(detail)})
					})
					if err != nil {
						return nil, err
					}
					if !found {
						continue // gone meanwhile (a concurrent run, a delete)
					}
					rt.repos.Bump(r.ID, name)
				}
				rr.Expired = append(rr.Expired, item)
			}
		}
	}
	return rr, nil
}

// keptTag returns the first tag matching one of the keep_tags patterns.
func keptTag(patterns, tags []string) string {
	r := policy.Rules{KeepTags: patterns}
	for _, t := range tags {
		if t != "latest" && r.KeepsTag(t) {
			return t
		}
	}
	return ""
}
