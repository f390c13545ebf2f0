package repo

import (
	"context"

	"github.com/cofferhq/coffer/internal/meta"
)

// CheckRepoQuota runs inside a transaction after rows were written into r
// without an upload (a promotion copying references): it refuses when r's
// logical usage now exceeds its quota. added is the bytes the caller added.
func (m *Manager) CheckRepoQuota(ctx context.Context, tx meta.Tx, r *Repository, added int64) error {
	return m.checkQuota(ctx, tx, r, added, false, 0)
}
