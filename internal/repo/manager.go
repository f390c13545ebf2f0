package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
)

// Manager holds the repositories and performs every operation on their assets.
type Manager struct {
	store   meta.Store
	blobs   blob.Store
	auth    *auth.Service
	log     *slog.Logger
	formats []string
	maxBody int64

	mu    sync.RWMutex
	repos map[string]*Repository
	keys  map[string]string // repository ID → key

	client      *http.Client
	fills       fills
	negative    negativeCache
	downloads   *downloadRecorder
	checksums   *filler
	gens        generations
	tokens      tokenCache
	quotas      Quotas
	quotaState  quotaState
	uploadLocks sessionLocks
	observer    func(repo, outcome string)
	now         func() time.Time
}

// Options configure a Manager.
type Options struct {
	Formats       []string // registered format names, for validation
	MaxUploadSize int64    // server-wide body limit (0: none)
	Logger        *slog.Logger
	// Transport for upstream requests (tests may shorten timeouts); nil is a
	// default transport.
	Transport http.RoundTripper
	// ProxyObserver is told the outcome of every remote lookup (metrics).
	ProxyObserver func(repo, outcome string)
	// Quotas are the instance-wide limits.
	Quotas Quotas
}

// NewManager loads the stored repositories.
func NewManager(ctx context.Context, store meta.Store, blobs blob.Store, opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := &Manager{
		store:    store,
		blobs:    blobs,
		log:      opts.Logger,
		formats:  opts.Formats,
		maxBody:  opts.MaxUploadSize,
		repos:    map[string]*Repository{},
		now:      time.Now,
		observer: opts.ProxyObserver,
		quotas:   opts.Quotas,
	}
	m.client = newUpstreamClient(opts.Transport)
	m.negative.entries = map[string]time.Time{}
	m.downloads = newDownloadRecorder(store, m.log)
	m.checksums = newFiller(store, blobs, m.log)
	if err := m.Reload(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// SetAuth connects the authorization service (which itself asks the
// manager about repositories, hence not a constructor argument).
func (m *Manager) SetAuth(a *auth.Service) { m.auth = a }

// SetClock replaces the clock that stamps new package versions and judges
// proxy freshness (tests of retention move it).
func (m *Manager) SetClock(now func() time.Time) {
	m.now = now
	m.downloads.now.Store(now)
}

// FlushDownloads writes the download times recorded in memory now, rather
// than at the next periodic flush (tests; a clean shutdown flushes too).
func (m *Manager) FlushDownloads() { m.downloads.flush() }

// Blobs returns the blob store.
func (m *Manager) Blobs() blob.Store { return m.blobs }

// Store returns the metadata store.
func (m *Manager) Store() meta.Store { return m.store }

// Close flushes pending bookkeeping.
func (m *Manager) Close() {
	m.checksums.Close()
	m.downloads.Close()
}

// Reload reads every repository definition from the metadata store.
func (m *Manager) Reload(ctx context.Context) error {
	rows, err := m.store.ListRepos(ctx)
	if err != nil {
		return err
	}
	repos, keys := map[string]*Repository{}, map[string]string{}
	for _, row := range rows {
		r, err := decodeRow(row)
		if err != nil {
			return err
		}
		repos[r.Key], keys[r.ID] = r, r.Key
	}
	m.mu.Lock()
	m.repos, m.keys = repos, keys
	m.mu.Unlock()
	return nil
}

// Repo returns a repository by key, or errs.NotFound naming it.
func (m *Manager) Repo(key string) (*Repository, error) {
	m.mu.RLock()
	r, ok := m.repos[key]
	m.mu.RUnlock()
	if !ok {
		return nil, errs.New(errs.NotFound, "repository %q not found", key)
	}
	return r, nil
}

// List returns every repository, sorted by key.
func (m *Manager) List() []*Repository {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*Repository, 0, len(m.repos))
	for _, r := range m.repos {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Attrs is what authorization needs to know of a repository.
func (m *Manager) Attrs(key string) (auth.RepoAttrs, bool) {
	r, err := m.Repo(key)
	if err != nil {
		return auth.RepoAttrs{}, false
	}
	return auth.RepoAttrs{Tier: string(r.Tier), AnonymousRead: r.Policy.AnonymousRead}, true
}

// ApplyResult says what Apply did to each repository.
type ApplyResult struct {
	Key    string `json:"key"`
	Action string `json:"action"` // created | updated | unchanged
}

// Apply creates or updates the declared repositories, idempotently. It never
// deletes a repository that is not declared. A change of format or kind of a
// repository that holds artifacts is refused.
func (m *Manager) Apply(ctx context.Context, decls []config.Repository) ([]ApplyResult, error) {
	existing := map[string]config.Repository{}
	for _, r := range m.List() {
		existing[r.Key] = r.Declared
	}
	if probs := config.ValidateRepositories(decls, config.Options{Formats: m.formats}, existing); len(probs) > 0 {
		return nil, &config.Problems{Source: "repositories", List: probs}
	}
	var results []ApplyResult
	err := m.store.InTx(ctx, func(tx meta.Tx) error {
		results = results[:0]
		for _, d := range decls {
			if d.Kind == string(Local) && d.Tier == "" {
				d.Tier = string(Dev)
			}
			settings, err := json.Marshal(d)
			if err != nil {
				return err
			}
			row, err := tx.GetRepo(ctx, d.Key)
			switch {
			case errors.Is(err, errs.NotFound):
				if err := tx.CreateRepo(ctx, &meta.Repository{Key: d.Key, Format: d.Format, Kind: d.Kind, Tier: d.Tier, Settings: settings}); err != nil {
					return err
				}
				results = append(results, ApplyResult{d.Key, "created"})
			case err != nil:
				return err
			default:
				if row.Format == d.Format && row.Kind == d.Kind && row.Tier == d.Tier && string(row.Settings) == string(settings) {
					results = append(results, ApplyResult{d.Key, "unchanged"})
					continue
				}
				if row.Format != d.Format || row.Kind != d.Kind {
					n, err := tx.CountAssets(ctx, row.ID)
					if err != nil {
						return err
					}
					if n > 0 {
						return errs.New(errs.Invalid, "repository %s holds %d artifacts: its format (%s) and kind (%s) cannot change",
							d.Key, n, row.Format, row.Kind)
					}
				}
				row.Format, row.Kind, row.Tier, row.Settings = d.Format, d.Kind, d.Tier, settings
				if err := tx.UpdateRepo(ctx, row); err != nil {
					return err
				}
				results = append(results, ApplyResult{d.Key, "updated"})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, m.reloadAndNotify(ctx)
}

// DeleteRepo removes an empty repository. A repository holding artifacts is
// refused, and so is one that a virtual repository lists as a member.
func (m *Manager) DeleteRepo(ctx context.Context, key string) error {
	r, err := m.Repo(key)
	if err != nil {
		return err
	}
	for _, o := range m.List() {
		if slices.Contains(o.Members, key) {
			return errs.New(errs.Invalid, "repository %s is a member of virtual repository %s; remove it there first", key, o.Key)
		}
	}
	err = m.store.InTx(ctx, func(tx meta.Tx) error {
		n, err := tx.CountAssets(ctx, r.ID)
		if err != nil {
			return err
		}
		if n > 0 {
			return errs.New(errs.Invalid, "repository %s holds %d artifacts; delete them first", key, n)
		}
		return tx.DeleteRepo(ctx, key)
	})
	if err != nil {
		return err
	}
	return m.reloadAndNotify(ctx)
}

// authorize checks the caller in ctx may do a on repository key.
func (m *Manager) authorize(ctx context.Context, a auth.Action, key string) error {
	if m.auth == nil {
		return nil
	}
	return m.auth.Authorize(ctx, auth.PrincipalFrom(ctx), a, key)
}

// Authorize is authorize for formats that act outside Put/Delete.
func (m *Manager) Authorize(ctx context.Context, a auth.Action, key string) error {
	return m.authorize(ctx, a, key)
}

// DeployTarget is where writes addressed to r go: r itself if local, its
// default_deploy if virtual.
func (m *Manager) DeployTarget(r *Repository) (*Repository, error) {
	switch r.Kind {
	case Local:
		return r, nil
	case Virtual:
		if r.DefaultDeploy == "" {
			return nil, errs.New(errs.NotAllowed,
				"virtual repository %s has no default_deploy: deploy to one of its local members instead", r.Key)
		}
		return m.Repo(r.DefaultDeploy)
	}
	return nil, errs.New(errs.NotAllowed, "%s is a remote repository (a cache of %s): it cannot be deployed to",
		r.Key, r.Upstream.URL.Redacted())
}

func (m *Manager) audit(ctx context.Context, tx meta.Tx, action, repo, path string, detail any) error {
	d := "{}"
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		d = string(b)
	}
	return tx.AddAudit(ctx, &meta.AuditEvent{Actor: auth.PrincipalFrom(ctx).Name(), Action: action, Repo: repo, Path: path, Detail: d})
}

func (m *Manager) String() string { return fmt.Sprintf("repo.Manager(%d repositories)", len(m.List())) }
