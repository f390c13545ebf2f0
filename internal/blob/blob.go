package blob

import (
	"context"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	_ "crypto/sha256" // go-digest needs the hash registered
	_ "crypto/sha512"
)

// Info describes a committed blob.
type Info struct {
	Digest  digest.Digest
	Size    int64
	ModTime time.Time
}

// Store is a content-addressed blob store keyed by sha256 digests.
type Store interface {
	// Stat returns the blob's info, or an error of kind errs.NotFound.
	Stat(ctx context.Context, d digest.Digest) (Info, error)
	// Open returns a reader over the blob. It is an io.Seeker so that
	// http.ServeContent can serve ranges (and sendfile where the driver
	// hands out files).
	Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, error)
	// Create starts a new blob; nothing is visible until Commit.
	Create(ctx context.Context) (Writer, error)
	// Delete removes a blob. Deleting a missing blob returns errs.NotFound.
	Delete(ctx context.Context, d digest.Digest) error
	// Walk calls fn for every committed blob, in no particular order.
	Walk(ctx context.Context, fn func(Info) error) error
}

// Writer receives a blob's bytes and hashes them on the way.
type Writer interface {
	io.Writer
	// Size is the number of bytes written so far.
	Size() int64
	// Digest is the sha256 digest of the bytes written so far.
	Digest() digest.Digest
	// Commit makes the bytes durable and visible under their digest. When
	// expected is not empty and differs from the content's digest, nothing is
	// stored and the error is of kind errs.DigestMismatch.
	Commit(ctx context.Context, expected digest.Digest) (Info, error)
	// Cancel discards the bytes written. It is safe after Commit (a no-op).
	Cancel(ctx context.Context) error
}

// Suspender is implemented by the writers of stores that can resume an
// unfinished blob later, in another request or another process (an OCI
// chunked upload): Suspend stops writing, keeps the bytes, and returns the
// state to pass to the store's Resume.
type Suspender interface {
	Suspend(ctx context.Context) (state []byte, err error)
}

// Resumer is implemented by stores whose writers are Suspenders.
type Resumer interface {
	// Resume reopens an unfinished blob from a Suspend state. Bytes written
	// after that state was taken are discarded.
	Resume(ctx context.Context, state []byte) (Writer, error)
}

// Peeker is implemented by writers whose bytes can be read back before the
// commit, so that a remote fill can stream what has arrived so far to
// every waiting client.
type Peeker interface {
	// Peek returns a reader of the bytes written (so far, and later ones as
	// they arrive), valid until closed, also after Commit.
	Peek() (ReaderAtCloser, error)
}

// ReaderAtCloser reads at offsets and is closed when done.
type ReaderAtCloser interface {
	io.ReaderAt
	io.Closer
}

// Redirector is implemented by stores from which a client can download a
// blob directly (a presigned S3 URL), sparing the server the bytes.
type Redirector interface {
	// RedirectURL returns a URL serving the blob's bytes for a while, or ""
	// when the store is not configured to redirect.
	RedirectURL(ctx context.Context, d digest.Digest) (string, error)
}

// Path is an optional capability of drivers that keep blobs as local files:
// the file's path, for tools (backup, verify) that want to read it directly.
type Path interface {
	BlobPath(d digest.Digest) string
}

// ValidDigest reports whether d is a well-formed sha256 digest, the only
// algorithm blob stores are keyed by.
func ValidDigest(d digest.Digest) bool {
	return d.Validate() == nil && d.Algorithm() == digest.SHA256
}
