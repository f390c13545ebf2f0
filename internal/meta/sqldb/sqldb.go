// Package sqldb is the one SQL implementation of meta.Store, shared by the
// SQLite and PostgreSQL back-ends. Its SQL is portable: positional $N
// parameters, TEXT/BIGINT/BOOLEAN columns, IDs generated here. A back-end
// supplies the connections and a Dialect that translates engine errors.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/meta/migrations"
)

var _ meta.Store = (*DB)(nil)

// Dialect is what differs between engines.
type Dialect struct {
	Goose goose.Dialect
	// IsUnique reports whether err is a unique-constraint violation.
	IsUnique func(err error) bool
	// IsForeignKey reports whether err is a foreign-key violation.
	IsForeignKey func(err error) bool
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// DB implements meta.Store over database/sql.
type DB struct {
	q
	read, write *sql.DB
	caches      []*stmtCache
}

// q holds the queries; outside a transaction reads go to the read pool and
// writes to the write pool, inside one both go to the transaction.
type q struct {
	r, w execer
	d    *Dialect
}

// Open wraps the pools (which may be the same) and applies migrations.
func Open(ctx context.Context, read, write *sql.DB, d Dialect) (*DB, error) {
	if err := Migrate(ctx, write, d.Goose); err != nil {
		return nil, err
	}
	rc, wc := newStmtCache(read), newStmtCache(write)
	return &DB{q: q{r: rc, w: wc, d: &d}, read: read, write: write, caches: []*stmtCache{rc, wc}}, nil
}

// Migrate applies the embedded migrations.
func Migrate(ctx context.Context, db *sql.DB, dialect goose.Dialect) error {
	sub, err := fs.Sub(migrations.FS, ".")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(dialect, db, sub)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

// Ping implements meta.Store.
func (db *DB) Ping(ctx context.Context) error { return db.read.PingContext(ctx) }

// Close implements meta.Store.
func (db *DB) Close() error {
	for _, c := range db.caches {
		c.close()
	}
	err := db.read.Close()
	if db.write != db.read {
		err = errors.Join(err, db.write.Close())
	}
	return err
}

// InTx implements meta.Store.
func (db *DB) InTx(ctx context.Context, fn func(tx meta.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(&q{r: tx, w: tx, d: db.d}); err != nil {
		tx.Rollback()
		return err
	}
	return db.q.translate(tx.Commit(), "commit")
}

// NewID returns a new time-ordered identifier.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (q *q) translate(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return errs.Wrap(errs.NotFound, err, "%s not found", what)
	case q.d.IsUnique != nil && q.d.IsUnique(err):
		return errs.Wrap(errs.Exists, err, "%s already exists", what)
	case q.d.IsForeignKey != nil && q.d.IsForeignKey(err):
		return errs.Wrap(errs.Invalid, err, "%s refers to something that does not exist", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (q *q) exec(ctx context.Context, what, query string, args ...any) (int64, error) {
	res, err := q.w.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, q.translate(err, what)
	}
	return res.RowsAffected()
}

func (q *q) mustAffect(ctx context.Context, what, query string, args ...any) error {
	n, err := q.exec(ctx, what, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.New(errs.NotFound, "%s not found", what)
	}
	return nil
}

// ---- repositories

const repoCols = `id, key, format, kind, tier, settings, created_at, updated_at`

func scanRepo(s interface{ Scan(...any) error }) (*meta.Repository, error) {
	var r meta.Repository
	var settings string
	var c, u int64
	if err := s.Scan(&r.ID, &r.Key, &r.Format, &r.Kind, &r.Tier, &settings, &c, &u); err != nil {
		return nil, err
	}
	r.Settings, r.CreatedAt, r.UpdatedAt = []byte(settings), fromNanos(c), fromNanos(u)
	return &r, nil
}

func (q *q) CreateRepo(ctx context.Context, r *meta.Repository) error {
	if r.ID == "" {
		r.ID = NewID()
	}
	now := time.Now()
	r.CreatedAt, r.UpdatedAt = now, now
	if len(r.Settings) == 0 {
		r.Settings = []byte("{}")
	}
	_, err := q.exec(ctx, "repository "+r.Key,
		`INSERT INTO repositories (`+repoCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
		r.ID, r.Key, r.Format, r.Kind, r.Tier, string(r.Settings), nanos(now), nanos(now))
	return err
}

func (q *q) UpdateRepo(ctx context.Context, r *meta.Repository) error {
	r.UpdatedAt = time.Now()
	return q.mustAffect(ctx, "repository "+r.Key,
		`UPDATE repositories SET format=$2, kind=$3, tier=$4, settings=$5, updated_at=$6 WHERE key=$1`,
		r.Key, r.Format, r.Kind, r.Tier, string(r.Settings), nanos(r.UpdatedAt))
}

func (q *q) GetRepo(ctx context.Context, key string) (*meta.Repository, error) {
	r, err := scanRepo(q.r.QueryRowContext(ctx, `SELECT `+repoCols+` FROM repositories WHERE key=$1`, key))
	return r, q.translate(err, "repository "+key)
}

func (q *q) ListRepos(ctx context.Context) ([]*meta.Repository, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT `+repoCols+` FROM repositories ORDER BY key`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanRepo)
}

// DeleteRepo removes a repository and what hangs off it besides assets
// (tags, components, links, upload sessions); remaining assets make it fail.
func (q *q) DeleteRepo(ctx context.Context, key string) error {
	r, err := q.GetRepo(ctx, key)
	if err != nil {
		return err
	}
	for _, table := range []string{"links", "uploads", "tags", "components"} {
		if _, err := q.exec(ctx, "repository "+key, `DELETE FROM `+table+` WHERE repo_id=$1`, r.ID); err != nil {
			return err
		}
	}
	return q.mustAffect(ctx, "repository "+key, `DELETE FROM repositories WHERE id=$1`, r.ID)
}

func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ---- assets

const assetCols = `id, repo_id, path, blob_digest, size, content_type, sha1, md5, sha512,
	created_at, updated_at, last_downloaded_at, created_by, deprecated, deprecation_message,
	fetched_at, upstream_etag, upstream_last_modified, component_id, attributes`

func scanAsset(s interface{ Scan(...any) error }) (*meta.Asset, error) {
	var a meta.Asset
	var c, u, d, f int64
	var comp sql.NullString
	var attrs string
	err := s.Scan(&a.ID, &a.RepoID, &a.Path, &a.Blob, &a.Size, &a.ContentType, &a.SHA1, &a.MD5, &a.SHA512,
		&c, &u, &d, &a.CreatedBy, &a.Deprecated, &a.DeprecationMessage, &f, &a.UpstreamETag, &a.UpstreamLastModified,
		&comp, &attrs)
	if err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt, a.LastDownloadedAt, a.FetchedAt = fromNanos(c), fromNanos(u), fromNanos(d), fromNanos(f)
	a.ComponentID, a.Attributes = comp.String, []byte(attrs)
	return &a, nil
}

func (q *q) GetAsset(ctx context.Context, repoID, path string) (*meta.Asset, error) {
	a, err := scanAsset(q.r.QueryRowContext(ctx, `SELECT `+assetCols+` FROM assets WHERE repo_id=$1 AND path=$2`, repoID, path))
	return a, q.translate(err, "artifact "+path)
}

func (q *q) PutAsset(ctx context.Context, a *meta.Asset) error {
	now := time.Now()
	if a.ID == "" {
		a.ID = NewID()
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now
	}
	a.UpdatedAt = now
	// On replace the row keeps its id and created_at; everything about the
	// content is new (a new blob means a new download history and deprecation).
	attrs := string(a.Attributes)
	if attrs == "" {
		attrs = "{}"
	}
	row := q.w.QueryRowContext(ctx, `INSERT INTO assets (`+assetCols+`)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)
		ON CONFLICT (repo_id, path) DO UPDATE SET
			blob_digest=excluded.blob_digest, size=excluded.size, content_type=excluded.content_type,
			sha1=excluded.sha1, md5=excluded.md5, sha512=excluded.sha512, updated_at=excluded.updated_at,
			created_by=excluded.created_by, deprecated=excluded.deprecated,
			deprecation_message=excluded.deprecation_message, fetched_at=excluded.fetched_at,
			upstream_etag=excluded.upstream_etag, upstream_last_modified=excluded.upstream_last_modified,
			component_id=excluded.component_id, attributes=excluded.attributes
		RETURNING id, created_at`,
		a.ID, a.RepoID, a.Path, a.Blob, a.Size, a.ContentType, a.SHA1, a.MD5, a.SHA512,
		nanos(a.CreatedAt), nanos(a.UpdatedAt), nanos(a.LastDownloadedAt), a.CreatedBy, a.Deprecated,
		a.DeprecationMessage, nanos(a.FetchedAt), a.UpstreamETag, a.UpstreamLastModified,
		nullString(a.ComponentID), attrs)
	var created int64
	if err := row.Scan(&a.ID, &created); err != nil {
		return q.translate(err, "artifact "+a.Path)
	}
	a.CreatedAt = fromNanos(created)
	return nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func (q *q) DeleteAsset(ctx context.Context, repoID, path string) error {
	return q.mustAffect(ctx, "artifact "+path, `DELETE FROM assets WHERE repo_id=$1 AND path=$2`, repoID, path)
}

// prefixEnd returns the smallest string greater than every string that
// starts with prefix, for a half-open range scan over the path index.
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "" // no upper bound
}

func (q *q) ListAssets(ctx context.Context, repoID string, aq meta.AssetQuery) ([]*meta.Asset, error) {
	limit := aq.Limit
	if limit <= 0 {
		limit = 1000
	}
	lower := aq.Prefix
	if aq.After >= lower {
		lower = aq.After + "\x00"
	}
	query := `SELECT ` + assetCols + ` FROM assets WHERE repo_id=$1 AND path >= $2`
	args := []any{repoID, lower}
	if end := prefixEnd(aq.Prefix); aq.Prefix != "" && end != "" {
		query += ` AND path < $3`
		args = append(args, end)
	}
	query += fmt.Sprintf(` ORDER BY path LIMIT %d`, limit)
	rows, err := q.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAsset)
}

func (q *q) SearchAssets(ctx context.Context, s meta.AssetSearch) ([]*meta.Asset, error) {
	limit := s.Limit
	if limit <= 0 {
		limit = 100
	}
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if len(s.RepoIDs) > 0 {
		var ps []string
		for _, id := range s.RepoIDs {
			ps = append(ps, arg(id))
		}
		where = append(where, "repo_id IN ("+strings.Join(ps, ",")+")")
	}
	if s.Path != "" {
		where = append(where, "LOWER(path) LIKE "+arg("%"+escapeLike(strings.ToLower(s.Path))+"%")+" ESCAPE '\\'")
	}
	if s.After != "" {
		where = append(where, "id > "+arg(s.After))
	}
	query := `SELECT ` + assetCols + ` FROM assets`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY id LIMIT %d", limit)
	rows, err := q.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAsset)
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func (q *q) TouchDownloaded(ctx context.Context, id string, at time.Time) error {
	_, err := q.exec(ctx, "artifact", `UPDATE assets SET last_downloaded_at=$2 WHERE id=$1`, id, nanos(at))
	return err
}

func (q *q) MarkFetched(ctx context.Context, id string, at time.Time, etag, lastModified string) error {
	return q.mustAffect(ctx, "artifact",
		`UPDATE assets SET fetched_at=$2, upstream_etag=$3, upstream_last_modified=$4 WHERE id=$1`,
		id, nanos(at), etag, lastModified)
}

func (q *q) SetDeprecation(ctx context.Context, repoID, path string, deprecated bool, message string) error {
	return q.mustAffect(ctx, "artifact "+path,
		`UPDATE assets SET deprecated=$3, deprecation_message=$4 WHERE repo_id=$1 AND path=$2`,
		repoID, path, deprecated, message)
}

func (q *q) FillChecksums(ctx context.Context, blob, sha1, md5, sha512 string) error {
	_, err := q.exec(ctx, "checksums of "+blob, `UPDATE assets SET
		sha1 = CASE WHEN sha1 = '' THEN $2 ELSE sha1 END,
		md5 = CASE WHEN md5 = '' THEN $3 ELSE md5 END,
		sha512 = CASE WHEN sha512 = '' THEN $4 ELSE sha512 END
		WHERE blob_digest = $1`, blob, sha1, md5, sha512)
	return err
}

func (q *q) RepoUsage(ctx context.Context) (map[string]meta.Usage, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT repo_id, COUNT(*), COALESCE(SUM(size),0) FROM assets GROUP BY repo_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]meta.Usage{}
	for rows.Next() {
		var id string
		var u meta.Usage
		if err := rows.Scan(&id, &u.Count, &u.Bytes); err != nil {
			return nil, err
		}
		out[id] = u
	}
	return out, rows.Err()
}

func (q *q) CountAssets(ctx context.Context, repoID string) (int64, error) {
	var n int64
	err := q.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM assets WHERE repo_id=$1`, repoID).Scan(&n)
	return n, err
}

// ---- blobs

func (q *q) PutBlob(ctx context.Context, digest string, size int64) error {
	_, err := q.exec(ctx, "blob "+digest,
		`INSERT INTO blobs (digest, size, created_at) VALUES ($1,$2,$3) ON CONFLICT (digest) DO NOTHING`,
		digest, size, nanos(time.Now()))
	return err
}

func (q *q) GetBlob(ctx context.Context, digest string) (*meta.Blob, error) {
	var b meta.Blob
	var c int64
	err := q.r.QueryRowContext(ctx, `SELECT digest, size, created_at FROM blobs WHERE digest=$1`, digest).
		Scan(&b.Digest, &b.Size, &c)
	if err != nil {
		return nil, q.translate(err, "blob "+digest)
	}
	b.CreatedAt = fromNanos(c)
	return &b, nil
}

func (q *q) DeleteBlob(ctx context.Context, digest string) error {
	return q.mustAffect(ctx, "blob "+digest, `DELETE FROM blobs WHERE digest=$1`, digest)
}

func (q *q) ListBlobs(ctx context.Context, after string, limit int) ([]*meta.Blob, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := q.r.QueryContext(ctx, fmt.Sprintf(
		`SELECT digest, size, created_at FROM blobs WHERE digest > $1 ORDER BY digest LIMIT %d`, limit), after)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (*meta.Blob, error) {
		var b meta.Blob
		var c int64
		err := s.Scan(&b.Digest, &b.Size, &c)
		b.CreatedAt = fromNanos(c)
		return &b, err
	})
}

func (q *q) BlobUsage(ctx context.Context) (meta.Usage, error) {
	var u meta.Usage
	err := q.r.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size),0) FROM blobs`).Scan(&u.Count, &u.Bytes)
	return u, err
}
