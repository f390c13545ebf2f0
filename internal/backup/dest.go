package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/cofferhq/coffer/internal/blob"
	blobfs "github.com/cofferhq/coffer/internal/blob/fs"
	s3store "github.com/cofferhq/coffer/internal/blob/s3"
	"github.com/cofferhq/coffer/internal/errs"
)

// Dest is where backups live: a directory, or a prefix of a bucket. Both
// hold the same layout (see the package documentation).
type Dest interface {
	// Blobs is the content-addressed store the snapshots share.
	Blobs() blob.Store
	// Put stores a small file (a snapshot's metadata, its manifest, LATEST)
	// durably; name is slash-separated, relative to the destination.
	Put(ctx context.Context, name string, src string) error
	// Get fetches a file into a local path.
	Get(ctx context.Context, name string, dst string) error
	// Read returns a small file's contents (errs.NotFound when absent).
	Read(ctx context.Context, name string) ([]byte, error)
	// List returns the names directly under prefix (slash-terminated).
	List(ctx context.Context, prefix string) ([]string, error)
	String() string
}

// DirDest is a backup directory.
type DirDest struct {
	dir   string
	blobs *blobfs.Store
}

// NewDir opens (creating) a backup directory.
func NewDir(dir string) (*DirDest, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	b, err := blobfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		return nil, fmt.Errorf("backup directory %s: %w", dir, err)
	}
	return &DirDest{dir: dir, blobs: b}, nil
}

func (d *DirDest) Blobs() blob.Store { return d.blobs }
func (d *DirDest) String() string    { return d.dir }

func (d *DirDest) path(name string) string { return filepath.Join(d.dir, filepath.FromSlash(name)) }

func (d *DirDest) Put(_ context.Context, name, src string) error {
	p := d.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeFileSync(p, b)
}

func (d *DirDest) Get(_ context.Context, name, dst string) error {
	if _, err := os.Stat(d.path(name)); err != nil {
		return errs.New(errs.NotFound, "%s: no %s", d.dir, name)
	}
	return copyFile(d.path(name), dst)
}

func (d *DirDest) Read(_ context.Context, name string) ([]byte, error) {
	b, err := os.ReadFile(d.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errs.New(errs.NotFound, "%s: no %s", d.dir, name)
	}
	return b, err
}

func (d *DirDest) List(_ context.Context, prefix string) ([]string, error) {
	ents, err := os.ReadDir(d.path(prefix))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, err
}

// BucketDest is a prefix of an S3 bucket.
type BucketDest struct {
	s      *s3store.Store
	prefix string
	url    string
}

// NewBucket opens a bucket destination; o.Prefix is where the backup lives.
func NewBucket(ctx context.Context, o s3store.Options) (*BucketDest, error) {
	if o.Prefix != "" && !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	s, err := s3store.New(ctx, o)
	if err != nil {
		return nil, err
	}
	return &BucketDest{s: s, prefix: o.Prefix, url: "s3://" + o.Bucket + "/" + o.Prefix}, nil
}

func (b *BucketDest) Blobs() blob.Store { return b.s }
func (b *BucketDest) String() string    { return b.url }

func (b *BucketDest) Put(ctx context.Context, name, src string) error {
	_, err := b.s.Client().FPutObject(ctx, b.s.Bucket(), b.prefix+name, src, minio.PutObjectOptions{})
	return err
}

func (b *BucketDest) Get(ctx context.Context, name, dst string) error {
	err := b.s.Client().FGetObject(ctx, b.s.Bucket(), b.prefix+name, dst, minio.GetObjectOptions{})
	if minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return errs.New(errs.NotFound, "%s: no %s", b.url, name)
	}
	return err
}

func (b *BucketDest) Read(ctx context.Context, name string) ([]byte, error) {
	o, err := b.s.Client().GetObject(ctx, b.s.Bucket(), b.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer o.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(o, 1<<20)); err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, errs.New(errs.NotFound, "%s: no %s", b.url, name)
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

func (b *BucketDest) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	for o := range b.s.Client().ListObjects(ctx, b.s.Bucket(), minio.ListObjectsOptions{Prefix: b.prefix + prefix}) {
		if o.Err != nil {
			return nil, o.Err
		}
		name := strings.TrimSuffix(strings.TrimPrefix(o.Key, b.prefix+prefix), "/")
		if name != "" {
			out = append(out, name)
		}
	}
	return out, nil
}
