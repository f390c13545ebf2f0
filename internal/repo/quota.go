package repo

import (
	"context"
	"fmt"
	"sync"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
)

// Quotas: a repository's quota bounds its logical usage (the sum of its
// artifacts' sizes, shared blobs counted in every repository that holds
// them); the instance quota bounds physical usage (unique blobs). Both are
// checked exactly, in the transaction that adds the reference, from
// counters that transaction keeps. Reads are never refused.

// Quotas configure the instance-wide limits.
type Quotas struct {
	Instance int64 // physical bytes; 0: none
	// WarnPercent is the share of a quota at which a warning is raised.
	WarnPercent int
	// OnWarning is told when a quota crosses the warning threshold (key ""
	// is the instance).
	OnWarning func(key string, used, quota int64)
}

type quotaState struct {
	mu     sync.Mutex
	warned map[string]bool
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

func repoQuotaError(r *Repository, used, adding int64) error {
	return errs.New(errs.Quota, "the quota of %s is full: %s used of %s, and this upload adds %s; delete or expire artifacts, or raise the quota",
		r.Key, human(used), human(r.Quota), human(adding))
}

func instanceQuotaError(q, used, adding int64) error {
	return errs.New(errs.Quota, "the storage quota of this server is full: %s used of %s, and this upload adds %s; collect garbage, expire artifacts, or raise storage.quota",
		human(used), human(q), human(adding))
}

// precheckQuota refuses an upload of a declared size before reading it,
// when it cannot fit.
func (m *Manager) precheckQuota(ctx context.Context, r *Repository, size int64) error {
	if r.Quota > 0 {
		u, err := m.store.RepoUsage(ctx)
		if err != nil {
			return err
		}
		if used := u[r.ID].Bytes; used+max(size, 0) > r.Quota {
			return repoQuotaError(r, used, max(size, 0))
		}
	}
	if q := m.quotas.Instance; q > 0 {
		p, err := m.store.BlobUsage(ctx)
		if err != nil {
			return err
		}
		if p.Bytes >= q {
			return instanceQuotaError(q, p.Bytes, max(size, 0))
		}
	}
	return nil
}

// checkQuota runs inside the commit transaction, after the asset and blob
// rows are written: it sees exact usage including this upload.
func (m *Manager) checkQuota(ctx context.Context, tx meta.Tx, r *Repository, added int64, newBlob bool, size int64) error {
	if r.Quota > 0 && added > 0 {
		u, err := tx.RepoUsage(ctx)
		if err != nil {
			return err
		}
		if used := u[r.ID].Bytes; used > r.Quota {
			return repoQuotaError(r, used-added, added)
		}
	}
	if q := m.quotas.Instance; q > 0 && newBlob {
		p, err := tx.BlobUsage(ctx)
		if err != nil {
			return err
		}
		if p.Bytes > q {
			return instanceQuotaError(q, p.Bytes-size, size)
		}
	}
	return nil
}

// warnQuota raises a warning when usage crosses the threshold (once per
// crossing).
func (m *Manager) warnQuota(ctx context.Context, r *Repository) {
	if m.quotas.WarnPercent <= 0 || m.quotas.OnWarning == nil {
		return
	}
	check := func(key string, used, quota int64) {
		if quota <= 0 {
			return
		}
		over := used*100 >= quota*int64(m.quotas.WarnPercent)
		m.quotaState.mu.Lock()
		if m.quotaState.warned == nil {
			m.quotaState.warned = map[string]bool{}
		}
		was := m.quotaState.warned[key]
		m.quotaState.warned[key] = over
		m.quotaState.mu.Unlock()
		if over && !was {
			m.quotas.OnWarning(key, used, quota)
		}
	}
	if r.Quota > 0 {
		if u, err := m.store.RepoUsage(ctx); err == nil {
			check(r.Key, u[r.ID].Bytes, r.Quota)
		}
	}
	if m.quotas.Instance > 0 {
		if p, err := m.store.BlobUsage(ctx); err == nil {
			check("", p.Bytes, m.quotas.Instance)
		}
	}
}

// QuotaOf returns a repository's quota and the instance's (for reports).
func (m *Manager) InstanceQuota() int64 { return m.quotas.Instance }
