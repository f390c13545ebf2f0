package sqldb

import (
	"context"
	"time"

	"github.com/cofferhq/coffer/internal/meta"
)

func scanPin(s interface{ Scan(...any) error }) (*meta.Pin, error) {
	var p meta.Pin
	var at int64
	if err := s.Scan(&p.RepoID, &p.Name, &p.Version, &p.Reason, &p.CreatedBy, &at); err != nil {
		return nil, err
	}
	p.CreatedAt = fromNanos(at)
	return &p, nil
}

func (q *queries) PutPin(ctx context.Context, p *meta.Pin) error {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now()
	}
	_, err := q.exec(ctx, "pin of "+p.Name+" "+p.Version, `INSERT INTO pins (repo_id, name, version, reason, created_by, created_at)
		VALUES ($1,$2,$3,$4,$5,$6)
		ON CONFLICT (repo_id, name, version) DO UPDATE SET reason=excluded.reason, created_by=excluded.created_by, created_at=excluded.created_at`,
		p.RepoID, p.Name, p.Version, p.Reason, p.CreatedBy, nanos(p.CreatedAt))
	return err
}

func (q *queries) DeletePin(ctx context.Context, repoID, name, version string) error {
	return q.mustAffect(ctx, "pin of "+name+" "+version, `DELETE FROM pins WHERE repo_id=$1 AND name=$2 AND version=$3`, repoID, name, version)
}

func (q *queries) ListPins(ctx context.Context, repoID string) ([]*meta.Pin, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT repo_id, name, version, reason, created_by, created_at FROM pins
		WHERE repo_id=$1 ORDER BY name, version`, repoID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanPin)
}

func (q *queries) LastDownloads(ctx context.Context, repoID string) (map[string]time.Time, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT component_id, MAX(last_downloaded_at) FROM assets
		WHERE repo_id=$1 AND component_id IS NOT NULL AND last_downloaded_at > 0 GROUP BY component_id`, repoID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		out[id] = fromNanos(at)
	}
	return out, rows.Err()
}

func (q *queries) ListLinksOfKind(ctx context.Context, repoID, kind string) ([]meta.Link, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT repo_id, name, source, target, kind FROM links
		WHERE repo_id=$1 AND kind=$2 ORDER BY name, source, target`, repoID, kind)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanLink)
}
