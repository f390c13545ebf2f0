package sqldb

import (
	"context"
	"fmt"
	"time"

	"github.com/cofferhq/coffer/internal/meta"
)

const componentCols = `id, repo_id, name, version, attributes, deprecated, deprecation_message, created_at, updated_at, created_by`

func scanComponent(s interface{ Scan(...any) error }) (*meta.Component, error) {
	var c meta.Component
	var attrs string
	var cr, up int64
	if err := s.Scan(&c.ID, &c.RepoID, &c.Name, &c.Version, &attrs, &c.Deprecated, &c.DeprecationMessage, &cr, &up, &c.CreatedBy); err != nil {
		return nil, err
	}
	c.Attributes, c.CreatedAt, c.UpdatedAt = []byte(attrs), fromNanos(cr), fromNanos(up)
	return &c, nil
}

func (q *queries) PutComponent(ctx context.Context, c *meta.Component) error {
	now := time.Now()
	if c.ID == "" {
		c.ID = NewID()
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	c.UpdatedAt = now
	insertAttrs := string(c.Attributes)
	if insertAttrs == "" {
		insertAttrs = "{}"
	}
	// Attributes given replace the stored ones; nil keeps them.
	update := `updated_at=excluded.updated_at`
	if c.Attributes != nil {
		update += `, attributes=excluded.attributes`
	}
	row := q.w.QueryRowContext(ctx, `INSERT INTO components (`+componentCols+`)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
		ON CONFLICT (repo_id, name, version) DO UPDATE SET `+update+`
		RETURNING `+componentCols,
		c.ID, c.RepoID, c.Name, c.Version, insertAttrs, c.Deprecated, c.DeprecationMessage,
		nanos(c.CreatedAt), nanos(c.UpdatedAt), c.CreatedBy)
	got, err := scanComponent(row)
	if err != nil {
		return q.translate(err, "component "+c.Name+"@"+c.Version)
	}
	*c = *got
	return nil
}

func (q *queries) GetComponent(ctx context.Context, repoID, name, version string) (*meta.Component, error) {
	c, err := scanComponent(q.r.QueryRowContext(ctx, `SELECT `+componentCols+` FROM components
		WHERE repo_id=$1 AND name=$2 AND version=$3`, repoID, name, version))
	return c, q.translate(err, "version "+version+" of "+name)
}

func (q *queries) ListComponents(ctx context.Context, repoID, name string) ([]*meta.Component, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT `+componentCols+` FROM components
		WHERE repo_id=$1 AND name=$2 ORDER BY created_at, id`, repoID, name)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanComponent)
}

func (q *queries) ListComponentNames(ctx context.Context, repoID string, nq meta.NameQuery) ([]string, error) {
	limit := nq.Limit
	if limit <= 0 {
		limit = 1000
	}
	// After the cursor (strictly) or from the prefix on; no NUL byte
	// tricks: PostgreSQL text cannot hold one.
	lower, op := nq.Prefix, ">="
	if nq.After >= lower {
		lower, op = afterBound(nq.After)
	}
	query := `SELECT DISTINCT name FROM components WHERE repo_id=$1 AND name ` + op + ` $2`
	args := []any{repoID, lower}
	if end := prefixEnd(nq.Prefix); nq.Prefix != "" && end != "" {
		query += ` AND name < $3`
		args = append(args, end)
	}
	rows, err := q.r.QueryContext(ctx, query+fmt.Sprintf(` ORDER BY name LIMIT %d`, limit), args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (string, error) {
		var n string
		return n, s.Scan(&n)
	})
}

func (q *queries) ListComponentAssets(ctx context.Context, componentID string) ([]*meta.Asset, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT `+assetCols+` FROM assets WHERE component_id=$1 ORDER BY path`, componentID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAsset)
}

func (q *queries) SetComponentDeprecation(ctx context.Context, id string, deprecated bool, message string) error {
	return q.mustAffect(ctx, "component", `UPDATE components SET deprecated=$2, deprecation_message=$3, updated_at=$4 WHERE id=$1`,
		id, deprecated, message, nanos(time.Now()))
}

func (q *queries) DeleteComponent(ctx context.Context, id string) error {
	return q.mustAffect(ctx, "component", `DELETE FROM components WHERE id=$1`, id)
}

func (q *queries) SetTag(ctx context.Context, t *meta.Tag) error {
	t.UpdatedAt = time.Now()
	_, err := q.exec(ctx, "tag "+t.Tag, `INSERT INTO tags (repo_id, name, tag, target, updated_at) VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (repo_id, name, tag) DO UPDATE SET target=excluded.target, updated_at=excluded.updated_at`,
		t.RepoID, t.Name, t.Tag, t.Target, nanos(t.UpdatedAt))
	return err
}

func scanTag(s interface{ Scan(...any) error }) (*meta.Tag, error) {
	var t meta.Tag
	var u int64
	err := s.Scan(&t.RepoID, &t.Name, &t.Tag, &t.Target, &u)
	t.UpdatedAt = fromNanos(u)
	return &t, err
}

func (q *queries) GetTag(ctx context.Context, repoID, name, tag string) (*meta.Tag, error) {
	t, err := scanTag(q.r.QueryRowContext(ctx, `SELECT repo_id, name, tag, target, updated_at FROM tags
		WHERE repo_id=$1 AND name=$2 AND tag=$3`, repoID, name, tag))
	if err != nil {
		return nil, q.translate(err, "tag "+tag+" of "+name)
	}
	return t, nil
}

func (q *queries) ListTags(ctx context.Context, repoID, name string) ([]*meta.Tag, error) {
	query := `SELECT repo_id, name, tag, target, updated_at FROM tags WHERE repo_id=$1`
	args := []any{repoID}
	if name != "" {
		query += ` AND name=$2`
		args = append(args, name)
	}
	rows, err := q.r.QueryContext(ctx, query+` ORDER BY name, tag`, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanTag)
}

func (q *queries) DeleteTag(ctx context.Context, repoID, name, tag string) error {
	return q.mustAffect(ctx, "tag "+tag+" of "+name, `DELETE FROM tags WHERE repo_id=$1 AND name=$2 AND tag=$3`, repoID, name, tag)
}
