package sqldb

import (
	"context"
	"fmt"
	"time"

	"github.com/cofferhq/coffer/internal/meta"
)

const uploadCols = `id, repo_id, name, state, size, created_at, updated_at`

func scanUpload(s interface{ Scan(...any) error }) (*meta.Upload, error) {
	var u meta.Upload
	var state string
	var c, up int64
	if err := s.Scan(&u.ID, &u.RepoID, &u.Name, &state, &u.Size, &c, &up); err != nil {
		return nil, err
	}
	u.State, u.CreatedAt, u.UpdatedAt = []byte(state), fromNanos(c), fromNanos(up)
	return &u, nil
}

func (q *queries) CreateUpload(ctx context.Context, u *meta.Upload) error {
	if u.ID == "" {
		u.ID = NewID()
	}
	now := time.Now()
	u.CreatedAt, u.UpdatedAt = now, now
	_, err := q.execLax(ctx, "upload", `INSERT INTO uploads (`+uploadCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		u.ID, u.RepoID, u.Name, string(u.State), u.Size, nanos(now), nanos(now))
	return err
}

func (q *queries) GetUpload(ctx context.Context, id string) (*meta.Upload, error) {
	u, err := scanUpload(q.r.QueryRowContext(ctx, `SELECT `+uploadCols+` FROM uploads WHERE id=$1`, id))
	return u, q.translate(err, "upload "+id)
}

func (q *queries) UpdateUpload(ctx context.Context, u *meta.Upload) error {
	u.UpdatedAt = time.Now()
	n, err := q.execLax(ctx, "upload "+u.ID, `UPDATE uploads SET state=$2, size=$3, updated_at=$4 WHERE id=$1`,
		u.ID, string(u.State), u.Size, nanos(u.UpdatedAt))
	return affected(n, err, "upload "+u.ID)
}

func (q *queries) DeleteUpload(ctx context.Context, id string) error {
	n, err := q.execLax(ctx, "upload "+id, `DELETE FROM uploads WHERE id=$1`, id)
	return affected(n, err, "upload "+id)
}

func (q *queries) ListUploadsBefore(ctx context.Context, t time.Time, limit int) ([]*meta.Upload, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := q.r.QueryContext(ctx, fmt.Sprintf(`SELECT `+uploadCols+` FROM uploads WHERE updated_at < $1 ORDER BY updated_at LIMIT %d`, limit), nanos(t))
	if err != nil {
		return nil, err
	}
	return collect(rows, scanUpload)
}

func (q *queries) PutLinks(ctx context.Context, links []meta.Link) error {
	for _, l := range links {
		if _, err := q.exec(ctx, "link", `INSERT INTO links (repo_id, name, source, target, kind) VALUES ($1,$2,$3,$4,$5)
			ON CONFLICT (repo_id, name, source, target, kind) DO NOTHING`, l.RepoID, l.Name, l.Source, l.Target, l.Kind); err != nil {
			return err
		}
	}
	return nil
}

func scanLink(s interface{ Scan(...any) error }) (meta.Link, error) {
	var l meta.Link
	err := s.Scan(&l.RepoID, &l.Name, &l.Source, &l.Target, &l.Kind)
	return l, err
}

func (q *queries) ListLinksFrom(ctx context.Context, repoID, name, source string) ([]meta.Link, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT repo_id, name, source, target, kind FROM links
		WHERE repo_id=$1 AND name=$2 AND source=$3 ORDER BY kind, target`, repoID, name, source)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanLink)
}

func (q *queries) ListLinksTo(ctx context.Context, repoID, name, target, kind string) ([]meta.Link, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT repo_id, name, source, target, kind FROM links
		WHERE repo_id=$1 AND name=$2 AND target=$3 AND kind=$4 ORDER BY source`, repoID, name, target, kind)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanLink)
}

func (q *queries) DeleteLinksFrom(ctx context.Context, repoID, name, source string) error {
	_, err := q.exec(ctx, "links", `DELETE FROM links WHERE repo_id=$1 AND name=$2 AND source=$3`, repoID, name, source)
	return err
}

func (q *queries) GetSetting(ctx context.Context, key string) (string, error) {
	var v string
	err := q.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE key=$1`, key).Scan(&v)
	return v, q.translate(err, "setting "+key)
}

func (q *queries) InitSetting(ctx context.Context, key, value string) (string, error) {
	if _, err := q.exec(ctx, "setting "+key, `INSERT INTO settings (key, value) VALUES ($1,$2) ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
		return "", err
	}
	var v string
	err := q.w.QueryRowContext(ctx, `SELECT value FROM settings WHERE key=$1`, key).Scan(&v)
	return v, q.translate(err, "setting "+key)
}

func (q *queries) SetSetting(ctx context.Context, key, value string) error {
	_, err := q.exec(ctx, "setting "+key, `INSERT INTO settings (key, value) VALUES ($1,$2)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

func (q *queries) DeleteSetting(ctx context.Context, key string) error {
	_, err := q.exec(ctx, "setting "+key, `DELETE FROM settings WHERE key=$1`, key)
	return err
}

func (q *queries) ListRepoLinks(ctx context.Context, repoID string) ([]meta.Link, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT repo_id, name, source, target, kind FROM links
		WHERE repo_id=$1 ORDER BY name, source, kind, target`, repoID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanLink)
}
