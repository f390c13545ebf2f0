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
	"unicode/utf8"

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
	// Snapshot writes a consistent copy of the database to path (nil: the
	// database cannot snapshot itself).
	Snapshot func(ctx context.Context, db *sql.DB, path string) error
	// Lax runs one autocommit statement on the write pool without waiting
	// for the disk (nil: as any other write). Upload-session rows use it:
	// losing one to a power cut only makes its client start that upload
	// again, while the commits that acknowledge content stay durable (and
	// make the lax ones before them durable too).
	Lax func(ctx context.Context, db *sql.DB, query string, args ...any) (sql.Result, error)
	// Load replaces the database's rows with those of a snapshot file
	// (nil: restore by copying the snapshot file instead).
	Load func(ctx context.Context, db *sql.DB, path string) error
	// IsUnique reports whether err is a unique-constraint violation.
	IsUnique func(err error) bool
	// IsForeignKey reports whether err is a foreign-key violation.
	IsForeignKey func(err error) bool
	// NoStmtCache runs queries straight on the pool (a driver that
	// prepares and caches statements per connection itself, as pgx does).
	NoStmtCache bool
	// LockKey, when set, is a statement taking a transaction-scoped lock on
	// its one text argument: read-modify-write sequences on one key (an
	// asset's path) are serialized with it. Without it the engine is
	// assumed to run one writer at a time (SQLite).
	LockKey string
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// DB implements meta.Store over database/sql.
type DB struct {
	queries
	read, write *sql.DB
	caches      []*stmtCache
}

// queries holds the queries; outside a transaction reads go to the read pool and
// writes to the write pool, inside one both go to the transaction.
type queries struct {
	r, w execer
	d    *Dialect
	db   *DB // set outside a transaction
}

// atomic runs fn in the current transaction, or in a new one when q is not
// in a transaction: statements that must change together (an asset and its
// repository's usage) never drift apart.
func (q *queries) atomic(ctx context.Context, fn func(q *queries) error) error {
	if q.db == nil {
		return fn(q)
	}
	return q.db.InTx(ctx, func(tx meta.Tx) error { return fn(tx.(*queries)) })
}

// Open wraps the pools (which may be the same) and applies migrations.
func Open(ctx context.Context, read, write *sql.DB, d Dialect) (*DB, error) {
	if err := Migrate(ctx, write, d.Goose); err != nil {
		return nil, err
	}
	return OpenMigrated(read, write, d)
}

// OpenMigrated wraps pools whose database the caller already migrated
// (under its own lock, say).
func OpenMigrated(read, write *sql.DB, d Dialect) (*DB, error) {
	rc, wc := newStmtCache(read), newStmtCache(write)
	db := &DB{queries: queries{r: rc, w: wc, d: &d}, read: read, write: write, caches: []*stmtCache{rc, wc}}
	if d.NoStmtCache {
		db.queries.r, db.queries.w = read, write
	}
	db.queries.db = db
	return db, nil
}

func assetKey(repoID, path string) string { return "asset " + repoID + " " + path }

// lockKey serializes, on engines with concurrent writers, the transactions
// that read and then write the row(s) of one key. It must run inside a
// transaction (see atomic).
func (q *queries) lockKey(ctx context.Context, key string) error {
	if q.d.LockKey == "" {
		return nil
	}
	_, err := q.w.ExecContext(ctx, q.d.LockKey, key)
	return err
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

// Pool returns the pool writes go to (coordination helpers of a back-end
// use it for their own statements).
func (db *DB) Pool() *sql.DB { return db.write }

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
	var ex execer = txExec{tx: tx, cache: db.caches[1]}
	if db.d.NoStmtCache {
		ex = tx
	}
	err = fn(&queries{r: ex, w: ex, d: db.d})
	if err != nil {
		tx.Rollback()
	} else {
		err = db.queries.translate(tx.Commit(), "commit")
	}
	db.caches[1].prepareWanted(context.WithoutCancel(ctx))
	return err
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

func (q *queries) translate(err error, what string) error {
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

func (q *queries) exec(ctx context.Context, what, query string, args ...any) (int64, error) {
	res, err := q.w.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, q.translate(err, what)
	}
	return res.RowsAffected()
}

// execLax is exec for writes that need not be durable at once (see
// Dialect.Lax); inside a transaction it is exec.
func (q *queries) execLax(ctx context.Context, what, query string, args ...any) (int64, error) {
	if q.db == nil || q.d.Lax == nil {
		return q.exec(ctx, what, query, args...)
	}
	res, err := q.d.Lax(ctx, q.db.write, query, args...)
	if err != nil {
		return 0, q.translate(err, what)
	}
	return res.RowsAffected()
}

func (q *queries) mustAffect(ctx context.Context, what, query string, args ...any) error {
	n, err := q.exec(ctx, what, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.New(errs.NotFound, "%s not found", what)
	}
	return nil
}

// affected turns a statement's result into NotFound when it touched nothing.
func affected(n int64, err error, what string) error {
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

func (q *queries) CreateRepo(ctx context.Context, r *meta.Repository) error {
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

func (q *queries) UpdateRepo(ctx context.Context, r *meta.Repository) error {
	r.UpdatedAt = time.Now()
	return q.mustAffect(ctx, "repository "+r.Key,
		`UPDATE repositories SET format=$2, kind=$3, tier=$4, settings=$5, updated_at=$6 WHERE key=$1`,
		r.Key, r.Format, r.Kind, r.Tier, string(r.Settings), nanos(r.UpdatedAt))
}

func (q *queries) GetRepo(ctx context.Context, key string) (*meta.Repository, error) {
	r, err := scanRepo(q.r.QueryRowContext(ctx, `SELECT `+repoCols+` FROM repositories WHERE key=$1`, key))
	return r, q.translate(err, "repository "+key)
}

func (q *queries) ListRepos(ctx context.Context) ([]*meta.Repository, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT `+repoCols+` FROM repositories ORDER BY key`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanRepo)
}

// DeleteRepo removes a repository and what hangs off it besides assets
// (tags, components, links, upload sessions); remaining assets make it fail.
func (q *queries) DeleteRepo(ctx context.Context, key string) error {
	r, err := q.GetRepo(ctx, key)
	if err != nil {
		return err
	}
	for _, table := range []string{"links", "uploads", "tags", "pins", "properties", "components"} {
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

func (q *queries) GetAsset(ctx context.Context, repoID, path string) (*meta.Asset, error) {
	// Inside a transaction the read decides a write (overwrite policy,
	// "created or unchanged"): on engines with concurrent writers it takes
	// the path's lock first, so a concurrent writer of the same path waits
	// and this read sees its commit.
	if q.db == nil {
		if err := q.lockKey(ctx, assetKey(repoID, path)); err != nil {
			return nil, err
		}
	}
	a, err := scanAsset(q.r.QueryRowContext(ctx, `SELECT `+assetCols+` FROM assets WHERE repo_id=$1 AND path=$2`, repoID, path))
	return a, q.translate(err, "artifact "+path)
}

func (q *queries) PutAsset(ctx context.Context, a *meta.Asset) error {
	return q.atomic(ctx, func(q *queries) error {
		if err := q.lockKey(ctx, assetKey(a.RepoID, a.Path)); err != nil {
			return err
		}
		var oldSize int64
		var had bool
		err := q.w.QueryRowContext(ctx, `SELECT size FROM assets WHERE repo_id=$1 AND path=$2`, a.RepoID, a.Path).Scan(&oldSize)
		switch {
		case err == nil:
			had = true
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if err := q.upsertAsset(ctx, a); err != nil {
			return err
		}
		count := int64(1)
		if had {
			count = 0
		}
		return q.addUsage(ctx, a.RepoID, a.Size-oldSize, count)
	})
}

func (q *queries) addUsage(ctx context.Context, repoID string, bytes, count int64) error {
	if bytes == 0 && count == 0 {
		return nil
	}
	_, err := q.exec(ctx, "usage", `UPDATE repositories SET used_bytes = used_bytes + $2, used_count = used_count + $3 WHERE id=$1`,
		repoID, bytes, count)
	return err
}

func (q *queries) upsertAsset(ctx context.Context, a *meta.Asset) error {
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

func (q *queries) DeleteAsset(ctx context.Context, repoID, path string) error {
	return q.atomic(ctx, func(q *queries) error {
		var size int64
		err := q.w.QueryRowContext(ctx, `DELETE FROM assets WHERE repo_id=$1 AND path=$2 RETURNING size`, repoID, path).Scan(&size)
		if err != nil {
			return q.translate(err, "artifact "+path)
		}
		return q.addUsage(ctx, repoID, -size, -1)
	})
}

// afterBound turns "strictly after cursor" into a bound PostgreSQL
// accepts (text must be valid UTF-8 without NUL): a cursor ending in bytes
// no UTF-8 text holds ("dir/\xff", skip a whole folder) becomes "at or
// after the end of its valid prefix"; the result is the same on SQLite.
func afterBound(cursor string) (string, string) {
	if utf8.ValidString(cursor) {
		return cursor, ">"
	}
	i := 0
	for i < len(cursor) {
		r, n := utf8.DecodeRuneInString(cursor[i:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		i += n
	}
	if end := prefixEnd(cursor[:i]); end != "" && utf8.ValidString(end) {
		return end, ">="
	}
	return cursor[:i], ">"
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

func (q *queries) ListAssets(ctx context.Context, repoID string, aq meta.AssetQuery) ([]*meta.Asset, error) {
	limit := aq.Limit
	if limit <= 0 {
		limit = 1000
	}
	lower, op := aq.Prefix, ">="
	if aq.After >= lower {
		lower, op = afterBound(aq.After)
	}
	query := `SELECT ` + assetCols + ` FROM assets WHERE repo_id=$1 AND path ` + op + ` $2`
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

func (q *queries) SearchAssets(ctx context.Context, s meta.AssetSearch) ([]*meta.Asset, error) {
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

func (q *queries) TouchDownloaded(ctx context.Context, id string, at time.Time) error {
	_, err := q.exec(ctx, "artifact", `UPDATE assets SET last_downloaded_at=$2 WHERE id=$1`, id, nanos(at))
	return err
}

func (q *queries) MarkFetched(ctx context.Context, id string, at time.Time, etag, lastModified string) error {
	return q.mustAffect(ctx, "artifact",
		`UPDATE assets SET fetched_at=$2, upstream_etag=$3, upstream_last_modified=$4 WHERE id=$1`,
		id, nanos(at), etag, lastModified)
}

func (q *queries) SetDeprecation(ctx context.Context, repoID, path string, deprecated bool, message string) error {
	return q.mustAffect(ctx, "artifact "+path,
		`UPDATE assets SET deprecated=$3, deprecation_message=$4 WHERE repo_id=$1 AND path=$2`,
		repoID, path, deprecated, message)
}

func (q *queries) FillChecksums(ctx context.Context, blob, sha1, md5, sha512 string) error {
	_, err := q.exec(ctx, "checksums of "+blob, `UPDATE assets SET
		sha1 = CASE WHEN sha1 = '' THEN $2 ELSE sha1 END,
		md5 = CASE WHEN md5 = '' THEN $3 ELSE md5 END,
		sha512 = CASE WHEN sha512 = '' THEN $4 ELSE sha512 END
		WHERE blob_digest = $1`, blob, sha1, md5, sha512)
	return err
}

func (q *queries) RepoUsage(ctx context.Context) (map[string]meta.Usage, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT id, used_count, used_bytes FROM repositories`)
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

func (q *queries) CountAssets(ctx context.Context, repoID string) (int64, error) {
	var n int64
	err := q.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM assets WHERE repo_id=$1`, repoID).Scan(&n)
	return n, err
}

// ---- blobs

const blobCols = `digest, size, created_at, state, last_ref`

func scanBlob(s interface{ Scan(...any) error }) (*meta.Blob, error) {
	var b meta.Blob
	var c, l int64
	if err := s.Scan(&b.Digest, &b.Size, &c, &b.State, &l); err != nil {
		return nil, err
	}
	b.CreatedAt, b.LastRef = fromNanos(c), fromNanos(l)
	return &b, nil
}

func (q *queries) PutBlob(ctx context.Context, digest string, size int64) error {
	return q.atomic(ctx, func(q *queries) error {
		now := nanos(time.Now())
		var created int64
		err := q.w.QueryRowContext(ctx, `INSERT INTO blobs (digest, size, created_at, state, last_ref) VALUES ($1,$2,$3,'live',$3)
			ON CONFLICT (digest) DO UPDATE SET last_ref = excluded.last_ref WHERE blobs.state = 'live'
			RETURNING created_at`, digest, size, now).Scan(&created)
		if errors.Is(err, sql.ErrNoRows) {
			// The row exists but garbage collection is deleting its file.
			return errs.New(errs.Unavailable, "blob %s is being garbage-collected", digest)
		}
		if err != nil {
			return q.translate(err, "blob "+digest)
		}
		if created != now {
			return nil // leased an existing blob
		}
		return q.addPhysical(ctx, size, 1)
	})
}

func (q *queries) addPhysical(ctx context.Context, bytes, count int64) error {
	if _, err := q.exec(ctx, "usage", `UPDATE counters SET value = value + $1 WHERE name='physical_bytes'`, bytes); err != nil {
		return err
	}
	_, err := q.exec(ctx, "usage", `UPDATE counters SET value = value + $1 WHERE name='physical_count'`, count)
	return err
}

func (q *queries) GetBlob(ctx context.Context, digest string) (*meta.Blob, error) {
	b, err := scanBlob(q.r.QueryRowContext(ctx, `SELECT `+blobCols+` FROM blobs WHERE digest=$1`, digest))
	if err != nil {
		return nil, q.translate(err, "blob "+digest)
	}
	return b, nil
}

func (q *queries) DeleteBlob(ctx context.Context, digest string) error {
	return q.atomic(ctx, func(q *queries) error {
		var size int64
		err := q.w.QueryRowContext(ctx, `DELETE FROM blobs WHERE digest=$1 RETURNING size`, digest).Scan(&size)
		if err != nil {
			return q.translate(err, "blob "+digest)
		}
		return q.addPhysical(ctx, -size, -1)
	})
}

func (q *queries) ListBlobs(ctx context.Context, after string, limit int) ([]*meta.Blob, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := q.r.QueryContext(ctx, fmt.Sprintf(
		`SELECT `+blobCols+` FROM blobs WHERE digest > $1 ORDER BY digest LIMIT %d`, limit), after)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanBlob)
}

func (q *queries) MarkGarbage(ctx context.Context, cutoff time.Time, limit int) ([]*meta.Blob, error) {
	if limit <= 0 {
		limit = 500
	}
	// The conditions are checked twice: in the subquery that picks a batch
	// and again on each row as it is updated (a writer may have leased or
	// referenced it meanwhile).
	// Nothing is marked while a hold (a backup copying what its snapshot
	// references) is in force; the check is in the same statement, so a
	// hold committed before it is always seen.
	rows, err := q.w.QueryContext(ctx, fmt.Sprintf(`UPDATE blobs SET state = 'deleting'
		WHERE digest IN (SELECT b.digest FROM blobs b WHERE b.state = 'live' AND b.last_ref < $1
			AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.blob_digest = b.digest) ORDER BY b.digest LIMIT %d)
		AND state = 'live' AND last_ref < $1
		AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.blob_digest = blobs.digest)
		AND NOT EXISTS (SELECT 1 FROM settings s WHERE s.key LIKE $2 AND s.value > $3)
		RETURNING `+blobCols, limit), nanos(cutoff), meta.GCHoldPrefix+"%", meta.HoldValue(time.Now()))
	if err != nil {
		return nil, q.translate(err, "garbage")
	}
	return collect(rows, scanBlob)
}

func (q *queries) MarkGarbageAfter(ctx context.Context, cutoff time.Time, after string, scan int) ([]*meta.Blob, string, error) {
	if scan <= 0 {
		scan = 2000
	}
	// The chunk is a range of the primary key: each call reads the rows
	// after the cursor once, so a collection costs one pass over the table.
	var next sql.NullString
	var n int
	if err := q.w.QueryRowContext(ctx, fmt.Sprintf(`SELECT MAX(digest), COUNT(*) FROM
		(SELECT digest FROM blobs WHERE digest > $1 ORDER BY digest LIMIT %d) c`, scan), after).Scan(&next, &n); err != nil {
		return nil, "", err
	}
	if n == 0 {
		return nil, "", nil
	}
	rows, err := q.w.QueryContext(ctx, `UPDATE blobs SET state = 'deleting'
		WHERE digest > $1 AND digest <= $2 AND state = 'live' AND last_ref < $3
		AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.blob_digest = blobs.digest)
		AND NOT EXISTS (SELECT 1 FROM settings s WHERE s.key LIKE $4 AND s.value > $5)
		RETURNING `+blobCols, after, next.String, nanos(cutoff), meta.GCHoldPrefix+"%", meta.HoldValue(time.Now()))
	if err != nil {
		return nil, "", q.translate(err, "garbage")
	}
	bs, err := collect(rows, scanBlob)
	if err != nil {
		return nil, "", err
	}
	if n < scan {
		return bs, "", nil
	}
	return bs, next.String, nil
}

func (q *queries) ListGarbage(ctx context.Context, cutoff time.Time, after string, limit int) ([]*meta.Blob, error) {
	if limit <= 0 {
		limit = 500
	}
	rows, err := q.r.QueryContext(ctx, fmt.Sprintf(`SELECT `+blobCols+` FROM blobs b WHERE b.state = 'live' AND b.last_ref < $1
		AND b.digest > $2 AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.blob_digest = b.digest)
		ORDER BY b.digest LIMIT %d`, limit), nanos(cutoff), after)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanBlob)
}

func (q *queries) ListDeleting(ctx context.Context, limit int) ([]*meta.Blob, error) {
	if limit <= 0 {
		limit = 500
	}
	rows, err := q.r.QueryContext(ctx, fmt.Sprintf(`SELECT `+blobCols+` FROM blobs WHERE state = 'deleting' ORDER BY digest LIMIT %d`, limit))
	if err != nil {
		return nil, err
	}
	return collect(rows, scanBlob)
}

func (q *queries) BlobUsage(ctx context.Context) (meta.Usage, error) {
	var u meta.Usage
	err := q.r.QueryRowContext(ctx, `SELECT
		(SELECT value FROM counters WHERE name='physical_count'),
		(SELECT value FROM counters WHERE name='physical_bytes')`).Scan(&u.Count, &u.Bytes)
	return u, err
}

// Snapshot writes a consistent copy of the database to path while it keeps
// serving (meta.Snapshotter).
func (db *DB) Snapshot(ctx context.Context, path string) error {
	if db.queries.d.Snapshot == nil {
		return errs.New(errs.NotAllowed, "this database cannot snapshot itself")
	}
	return db.queries.d.Snapshot(ctx, db.read, path)
}

// Load replaces every row with those of a snapshot file (meta.Loader).
func (db *DB) Load(ctx context.Context, path string) error {
	if db.queries.d.Load == nil {
		return errs.New(errs.NotAllowed, "this database restores by copying the snapshot file")
	}
	return db.queries.d.Load(ctx, db.write, path)
}
