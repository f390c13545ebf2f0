package repo

import (
	"context"
	"errors"
	"sync"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
)

// Package-level operations for formats that group assets into components
// (package versions) and name them with tags.

// generations counts changes per (repository, package name), so that a
// format can cache what it generates from the database (an npm packument, a
// PyPI project page, maven-metadata.xml) and know when it went stale. A
// change the manager cannot attribute to a name (an asset deleted or
// deprecated by path) counts for every name of its repository.
type generations struct {
	mu    sync.Mutex
	m     map[string]uint64
	repo  map[string]uint64
	hooks []func(key string)
	// all moves every generation at once (another node's changes may have
	// been missed: its notifications were lost).
	all uint64
	// notify, when set, tells the other nodes of a local change (name ""
	// with whole true: every name of the repository).
	notify func(repoID, name string, whole bool)
}

// SetChangeNotifier makes every change counted here also call fn, after
// the change is committed: scale-out nodes broadcast it (PostgreSQL
// NOTIFY) so that the others drop what they cached. whole means every name
// of the repository.
func (m *Manager) SetChangeNotifier(fn func(repoID, name string, whole bool)) {
	m.gens.mu.Lock()
	defer m.gens.mu.Unlock()
	m.gens.notify = fn
}

// Invalidate counts a change another node made (whole: to any name of the
// repository), without notifying anyone.
func (m *Manager) Invalidate(repoID, name string, whole bool) {
	if repoID == "" {
		// Repository definitions changed.
		m.Reload(context.Background())
		m.InvalidateAll()
		return
	}
	if whole {
		m.bumpRepoLocal(repoID)
	} else {
		m.bumpLocal(repoID, name)
	}
	// Change hooks (replication) hear of every node's changes: the node
	// running the scheduled jobs replicates them.
	m.changed(repoID)
}

// InvalidateAll moves every generation: after losing contact with the
// other nodes' notifications, nothing cached can be trusted.
func (m *Manager) InvalidateAll() {
	m.gens.mu.Lock()
	defer m.gens.mu.Unlock()
	m.gens.all++
}

// reloadAndNotify reloads the repository definitions after a change and
// tells the other nodes to reload theirs.
func (m *Manager) reloadAndNotify(ctx context.Context) error {
	err := m.Reload(ctx)
	if fn := m.notifier(); fn != nil {
		fn("", "", true)
	}
	return err
}

func (m *Manager) notifier() func(repoID, name string, whole bool) {
	m.gens.mu.Lock()
	defer m.gens.mu.Unlock()
	return m.gens.notify
}

func genKey(repoID, name string) string { return repoID + "\x00" + name }

// Generation returns the change counter of a package name in a repository.
// Any write through the manager that touches the name increases it.
func (m *Manager) Generation(repoID, name string) uint64 {
	m.gens.mu.Lock()
	defer m.gens.mu.Unlock()
	// The counters only grow, so their sum changes whenever one does.
	return m.gens.m[genKey(repoID, name)] + m.gens.repo[repoID] + m.gens.all
}

// Bump records a change to a package name (formats call it after metadata
// changes they make themselves, such as moving a dist-tag).
func (m *Manager) Bump(repoID, name string) {
	m.bumpLocal(repoID, name)
	m.changed(repoID)
	if fn := m.notifier(); fn != nil {
		fn(repoID, name, false)
	}
}

func (m *Manager) bumpLocal(repoID, name string) {
	m.gens.mu.Lock()
	if m.gens.m == nil {
		m.gens.m = map[string]uint64{}
	}
	m.gens.m[genKey(repoID, name)]++
	m.gens.mu.Unlock()
}

// OnChange registers fn to be told (with the repository's key) of every
// change to a repository's content, after it is committed: replication
// listens here. fn must not block.
func (m *Manager) OnChange(fn func(key string)) {
	m.gens.mu.Lock()
	m.gens.hooks = append(m.gens.hooks, fn)
	m.gens.mu.Unlock()
}

func (m *Manager) changed(repoID string) {
	m.gens.mu.Lock()
	hooks := m.gens.hooks
	m.gens.mu.Unlock()
	if len(hooks) == 0 {
		return
	}
	m.mu.RLock()
	key := m.keys[repoID]
	m.mu.RUnlock()
	for _, h := range hooks {
		h(key)
	}
}

// bumpRepo records a change that may touch any name of a repository.
func (m *Manager) bumpRepo(repoID string) {
	m.bumpRepoLocal(repoID)
	m.changed(repoID)
	if fn := m.notifier(); fn != nil {
		fn(repoID, "", true)
	}
}

func (m *Manager) bumpRepoLocal(repoID string) {
	m.gens.mu.Lock()
	if m.gens.repo == nil {
		m.gens.repo = map[string]uint64{}
	}
	m.gens.repo[repoID]++
	m.gens.mu.Unlock()
}

// Mutate runs fn in one transaction on behalf of the caller in ctx, for
// metadata changes that are not uploads: moving a tag, deprecating a
// version, unpublishing. It authorizes action on the repository actually
// written (a virtual repository's default_deploy), applies the policy the
// action implies (delete and overwrite may be refused by the tier), and
// bumps the generation of name afterwards. audit names the audit event.
func (m *Manager) Mutate(ctx context.Context, r *Repository, action auth.Action, name, audit string,
	fn func(ctx context.Context, tx meta.Tx, target *Repository) error) error {
	target, err := m.DeployTarget(r)
	if err != nil {
		return err
	}
	if err := m.authorize(ctx, action, target.Key); err != nil {
		return err
	}
	switch {
	case action == auth.Delete && !target.Policy.Delete:
		return errs.New(errs.Immutable, "%s cannot be deleted from %s (%s): deprecate it instead", name, target.Key, target.PolicyName())
	case action == auth.Overwrite && !target.Policy.Overwrite:
		return errs.New(errs.Immutable, "%s cannot be changed in %s (%s)", name, target.Key, target.PolicyName())
	}
	err = m.store.InTx(ctx, func(tx meta.Tx) error {
		if err := fn(ctx, tx, target); err != nil {
			return err
		}
		return m.audit(ctx, tx, audit, target.Key, name, nil)
	})
	if err == nil {
		m.Bump(target.ID, name)
	}
	return err
}

// RemoveComponent deletes a component's assets and the component itself,
// inside a transaction (blobs are left to garbage collection). It returns
// how many assets went.
func RemoveComponent(ctx context.Context, tx meta.Tx, c *meta.Component) (int, error) {
	as, err := tx.ListComponentAssets(ctx, c.ID)
	if err != nil {
		return 0, err
	}
	for _, a := range as {
		if err := tx.DeleteAsset(ctx, a.RepoID, a.Path); err != nil {
			return 0, err
		}
	}
	return len(as), tx.DeleteComponent(ctx, c.ID)
}

// NameInLocals reports whether any local member of a virtual repository
// holds a package of this name: such a name is never resolved from a
// remote member (dependency-confusion protection).
func (m *Manager) NameInLocals(ctx context.Context, v *Repository, name string) (bool, error) {
	locals, _ := m.Split(v)
	for _, l := range locals {
		cs, err := m.store.ListComponents(ctx, l.ID, name)
		if err != nil && !errors.Is(err, errs.NotFound) {
			return false, err
		}
		if len(cs) > 0 {
			return true, nil
		}
	}
	return false, nil
}
