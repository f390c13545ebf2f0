package sqldb

import (
	"context"
	"strconv"
	"time"

	"github.com/cofferhq/coffer/internal/meta"
)

func (q *queries) SetProperty(ctx context.Context, p *meta.Property) error {
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = time.Now()
	}
	_, err := q.exec(ctx, "property "+p.Key, `INSERT INTO properties (repo_id, name, version, prop, value, updated_by, updated_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7)
		ON CONFLICT (repo_id, name, version, prop) DO UPDATE SET value=excluded.value, updated_by=excluded.updated_by, updated_at=excluded.updated_at`,
		p.RepoID, p.Name, p.Version, p.Key, p.Value, p.UpdatedBy, nanos(p.UpdatedAt))
	return err
}

func (q *queries) DeleteProperty(ctx context.Context, repoID, name, version, key string) error {
	return q.mustAffect(ctx, "property "+key, `DELETE FROM properties WHERE repo_id=$1 AND name=$2 AND version=$3 AND prop=$4`, repoID, name, version, key)
}

func (q *queries) ListProperties(ctx context.Context, repoID, name, version string) ([]*meta.Property, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT repo_id, name, version, prop, value, updated_by, updated_at FROM properties
		WHERE repo_id=$1 AND name=$2 AND version=$3 ORDER BY prop`, repoID, name, version)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (*meta.Property, error) {
		var p meta.Property
		var at int64
		if err := s.Scan(&p.RepoID, &p.Name, &p.Version, &p.Key, &p.Value, &p.UpdatedBy, &at); err != nil {
			return nil, err
		}
		p.UpdatedAt = fromNanos(at)
		return &p, nil
	})
}

const promotionCols = `id, created_at, requested_by, source, target, format, artifact, name, version, digest, state, gates, reason, comment, decided_by, decided_at`

func scanPromotion(s interface{ Scan(...any) error }) (*meta.Promotion, error) {
	var p meta.Promotion
	var cr, dec int64
	if err := s.Scan(&p.ID, &cr, &p.RequestedBy, &p.Source, &p.Target, &p.Format, &p.Artifact, &p.Name, &p.Version,
		&p.Digest, &p.State, &p.Gates, &p.Reason, &p.Comment, &p.DecidedBy, &dec); err != nil {
		return nil, err
	}
	p.CreatedAt, p.DecidedAt = fromNanos(cr), fromNanos(dec)
	return &p, nil
}

func (q *queries) CreatePromotion(ctx context.Context, p *meta.Promotion) error {
	if p.ID == "" {
		p.ID = NewID()
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now()
	}
	if p.Gates == "" {
		p.Gates = "[]"
	}
	_, err := q.exec(ctx, "promotion", `INSERT INTO promotions (`+promotionCols+`)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)`,
		p.ID, nanos(p.CreatedAt), p.RequestedBy, p.Source, p.Target, p.Format, p.Artifact, p.Name, p.Version,
		p.Digest, p.State, p.Gates, p.Reason, p.Comment, p.DecidedBy, nanos(p.DecidedAt))
	return err
}

func (q *queries) UpdatePromotion(ctx context.Context, p *meta.Promotion) error {
	return q.mustAffect(ctx, "promotion "+p.ID, `UPDATE promotions SET state=$2, gates=$3, reason=$4, decided_by=$5, decided_at=$6 WHERE id=$1`,
		p.ID, p.State, p.Gates, p.Reason, p.DecidedBy, nanos(p.DecidedAt))
}

func (q *queries) GetPromotion(ctx context.Context, id string) (*meta.Promotion, error) {
	p, err := scanPromotion(q.r.QueryRowContext(ctx, `SELECT `+promotionCols+` FROM promotions WHERE id=$1`, id))
	return p, q.translate(err, "promotion "+id)
}

func (q *queries) ListPromotions(ctx context.Context, pq meta.PromotionQuery) ([]*meta.Promotion, error) {
	limit := pq.Limit
	if limit <= 0 {
		limit = 100
	}
	where := `1=1`
	var args []any
	arg := func(cond string, v any) {
		args = append(args, v)
		where += " AND " + cond + "$" + strconv.Itoa(len(args))
	}
	if pq.Repo != "" {
		args = append(args, pq.Repo)
		n := strconv.Itoa(len(args))
		where += " AND (source=$" + n + " OR target=$" + n + ")"
	}
	if pq.Name != "" {
		arg("name=", pq.Name)
		arg("version=", pq.Version)
	}
	if pq.Digest != "" {
		arg("digest=", pq.Digest)
	}
	if pq.State != "" {
		arg("state=", pq.State)
	}
	if pq.Before != "" {
		arg("id<", pq.Before)
	}
	args = append(args, limit)
	rows, err := q.r.QueryContext(ctx, `SELECT `+promotionCols+` FROM promotions WHERE `+where+
		` ORDER BY id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanPromotion)
}
