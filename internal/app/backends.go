package app

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cofferhq/coffer/internal/blob"
	blobfs "github.com/cofferhq/coffer/internal/blob/fs"
	"github.com/cofferhq/coffer/internal/blob/s3"
	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/meta/postgres"
	"github.com/cofferhq/coffer/internal/meta/sqlite"
)

// openMeta opens the metadata store the configuration selects: PostgreSQL
// when storage.database.postgres is set, else SQLite in the data directory.
func openMeta(ctx context.Context, st config.Storage, getenv func(string) string) (meta.Store, error) {
	pg := st.Database.Postgres
	if pg == nil {
		return sqlite.Open(ctx, filepath.Join(st.DataDir, "coffer.db"))
	}
	dsn := pg.DSN
	if pg.DSNEnv != "" {
		dsn = getenv(pg.DSNEnv)
	}
	pw, err := secret(getenv, pg.PasswordEnv, pg.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("storage.database.postgres.password_file: %w", err)
	}
	return postgres.Open(ctx, dsn, postgres.Options{MaxConns: pg.MaxConns, Password: pw})
}

// openBlobs opens the blob store the configuration selects.
func openBlobs(ctx context.Context, st config.Storage, getenv func(string) string) (blob.Store, error) {
	c := st.Blobs.S3
	if c == nil {
		return blobfs.New(filepath.Join(st.DataDir, "blobs"))
	}
	access := c.AccessKey
	if access == "" {
		var err error
		if access, err = secret(getenv, c.AccessKeyEnv, c.AccessKeyFile); err != nil {
			return nil, fmt.Errorf("storage.blobs.s3.access_key_file: %w", err)
		}
	}
	key, err := secret(getenv, c.SecretKeyEnv, c.SecretKeyFile)
	if err != nil {
		return nil, fmt.Errorf("storage.blobs.s3.secret_key_file: %w", err)
	}
	var ttl time.Duration
	if c.Redirect {
		ttl = c.RedirectTTL.D()
		if ttl == 0 {
			ttl = 5 * time.Minute
		}
	}
	return s3.New(ctx, s3.Options{
		Endpoint: c.Endpoint, Bucket: c.Bucket, Region: c.Region, Prefix: c.Prefix,
		AccessKey: access, SecretKey: key, PathStyle: c.PathStyle, PartSize: int64(c.PartSize),
		RedirectTTL: ttl, CreateBucket: c.CreateBucket,
	})
}

func secret(getenv func(string) string, env, file string) (string, error) {
	if env != "" {
		return getenv(env), nil
	}
	if file != "" {
		return config.Secret("", file)
	}
	return "", nil
}

// staleRemover is implemented by blob stores that keep temporary upload
// data outside any session after a crash.
type staleRemover interface {
	RemoveStaleUploads(cutoff time.Time) (n int, bytes int64, err error)
}

func removeStaleUploads(ctx context.Context, b blob.Store, cutoff time.Time) (int, int64, error) {
	if r, ok := b.(staleRemover); ok {
		return r.RemoveStaleUploads(cutoff)
	}
	return 0, 0, nil
}
