package fs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/errs"
)

var (
	_ blob.Store     = (*Store)(nil)
	_ blob.Path      = (*Store)(nil)
	_ blob.Resumer   = (*Store)(nil)
	_ blob.Suspender = (*writer)(nil)
	_ blob.Peeker    = (*writer)(nil)
)

const uploadsDir = "_uploads"

// Store keeps blobs as files under a root directory.
type Store struct {
	root string
}

// New opens (creating if needed) a filesystem blob store rooted at dir.
func New(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{abs, filepath.Join(abs, "sha256"), filepath.Join(abs, uploadsDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("blob store %s: %w", dir, err)
		}
	}
	return &Store{root: abs}, nil
}

// Root returns the store's root directory.
func (s *Store) Root() string { return s.root }

// BlobPath returns the file that holds (or would hold) the blob d.
func (s *Store) BlobPath(d digest.Digest) string {
	hexd := d.Encoded()
	return filepath.Join(s.root, "sha256", hexd[:2], hexd)
}

func (s *Store) check(d digest.Digest) error {
	if !blob.ValidDigest(d) {
		return errs.New(errs.Invalid, "invalid blob digest %q", d)
	}
	return nil
}

func notFound(d digest.Digest, err error) error {
	if errors.Is(err, iofs.ErrNotExist) {
		return errs.Wrap(errs.NotFound, err, "blob %s not found", d)
	}
	return err
}

// Stat implements blob.Store.
func (s *Store) Stat(_ context.Context, d digest.Digest) (blob.Info, error) {
	if err := s.check(d); err != nil {
		return blob.Info{}, err
	}
	fi, err := os.Stat(s.BlobPath(d))
	if err != nil {
		return blob.Info{}, notFound(d, err)
	}
	return blob.Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Open implements blob.Store. The reader is an *os.File, which lets
// http.ServeContent use sendfile.
func (s *Store) Open(_ context.Context, d digest.Digest) (io.ReadSeekCloser, error) {
	if err := s.check(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.BlobPath(d))
	if err != nil {
		return nil, notFound(d, err)
	}
	return f, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(_ context.Context, d digest.Digest) error {
	if err := s.check(d); err != nil {
		return err
	}
	if err := os.Remove(s.BlobPath(d)); err != nil {
		return notFound(d, err)
	}
	return nil
}

// Walk implements blob.Store.
func (s *Store) Walk(ctx context.Context, fn func(blob.Info) error) error {
	top := filepath.Join(s.root, "sha256")
	dirs, err := os.ReadDir(top)
	if err != nil {
		return err
	}
	for _, dir := range dirs {
		if !dir.IsDir() {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(top, dir.Name()))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
			if d.Validate() != nil {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				if errors.Is(err, iofs.ErrNotExist) {
					continue // deleted while walking
				}
				return err
			}
			if err := fn(blob.Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// RemoveStaleUploads deletes temporary upload files last written before
// cutoff: what a crash or a dropped client left behind. It returns how many
// files and bytes it removed.
func (s *Store) RemoveStaleUploads(cutoff time.Time) (n int, bytes int64, err error) {
	dir := filepath.Join(s.root, uploadsDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
		if os.Remove(filepath.Join(dir, e.Name())) == nil {
			n++
			bytes += fi.Size()
		}
	}
	return n, bytes, nil
}

// Create implements blob.Store.
func (s *Store) Create(_ context.Context) (blob.Writer, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	name := filepath.Join(s.root, uploadsDir, hex.EncodeToString(id[:]))
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &writer{s: s, f: f, name: name, id: hex.EncodeToString(id[:]), h: sha256.New()}, nil
}

type writer struct {
	s       *Store
	f       *os.File
	name    string
	id      string
	h       hash.Hash
	size    int64
	flushed int64 // bytes handed to startWriteback
	synced  int64 // bytes known to be on disk (fsynced by a Suspend)
	done    bool
}

// Peek implements blob.Peeker: an independent handle on the temporary
// file, which stays valid when Commit renames it.
func (w *writer) Peek() (blob.ReaderAtCloser, error) {
	if w.done {
		return nil, errors.New("blob writer: peek after commit or cancel")
	}
	return os.Open(w.name)
}

// suspendState is what Suspend saves: enough to reopen the temporary file
// and continue hashing where it stopped.
type suspendState struct {
	ID   string `json:"id"`
	Size int64  `json:"size"`
	Hash []byte `json:"sha256_state"`
}

// Suspend implements blob.Suspender.
func (w *writer) Suspend(context.Context) ([]byte, error) {
	if w.done {
		return nil, errors.New("blob writer: suspend after commit or cancel")
	}
	hs, err := w.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, err
	}
	// The bytes must survive a crash as the state does: sync before saying
	// where to resume (unless nothing was written since they were synced:
	// an upload just opened, a chunk of nothing).
	if w.size != w.synced {
		if err := w.f.Sync(); err != nil {
			return nil, err
		}
	}
	w.done = true
	if err := w.f.Close(); err != nil {
		return nil, err
	}
	return json.Marshal(suspendState{ID: w.id, Size: w.size, Hash: hs})
}

// Resume implements blob.Resumer.
func (s *Store) Resume(_ context.Context, state []byte) (blob.Writer, error) {
	var st suspendState
	if err := json.Unmarshal(state, &st); err != nil || len(st.ID) != 32 || st.Size < 0 {
		return nil, errs.New(errs.Invalid, "invalid upload state")
	}
	if _, err := hex.DecodeString(st.ID); err != nil {
		return nil, errs.New(errs.Invalid, "invalid upload state")
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.Hash); err != nil {
		return nil, errs.New(errs.Invalid, "invalid upload state: %v", err)
	}
	name := filepath.Join(s.root, uploadsDir, st.ID)
	f, err := os.OpenFile(name, os.O_WRONLY, 0o644)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, errs.New(errs.NotFound, "upload data is gone (expired or cancelled)")
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() < st.Size {
		f.Close()
		return nil, errs.New(errs.NotFound, "upload data is shorter than its saved state")
	}
	// Bytes written after the state was saved were never acknowledged.
	if err := f.Truncate(st.Size); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(st.Size, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	synced := st.Size
	if fi.Size() > st.Size {
		synced = -1 // the truncation itself must reach the disk
	}
	return &writer{s: s, f: f, name: name, id: st.ID, h: h, size: st.Size, synced: synced, flushed: st.Size - st.Size%writebackChunk}, nil
}

// writebackChunk is how much a writer accumulates before asking the kernel
// to start writing it out.
const writebackChunk = 8 << 20

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("blob writer: write after commit or cancel")
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.size += int64(n)
	for w.size-w.flushed >= writebackChunk {
		startWriteback(w.f, w.flushed, writebackChunk)
		w.flushed += writebackChunk
	}
	return n, err
}

// readBufs recycles ReadFrom's buffers.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// ReadFrom lets io.Copy move data with a large buffer, cutting syscalls.
func (w *writer) ReadFrom(r io.Reader) (int64, error) {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (w *writer) Size() int64 { return w.size }

func (w *writer) Digest() digest.Digest {
	return digest.NewDigest(digest.SHA256, w.h)
}

func (w *writer) Commit(_ context.Context, expected digest.Digest) (blob.Info, error) {
	if w.done {
		return blob.Info{}, errors.New("blob writer: already committed or canceled")
	}
	got := w.Digest()
	if expected != "" && expected != got {
		w.abort()
		return blob.Info{}, errs.New(errs.DigestMismatch,
			"content digest %s does not match the expected %s", got, expected)
	}
	w.done = true
	// A resumed upload whose last chunk was empty (PATCH, then PUT without a
	// body: what most clients do) was synced by its Suspend already.
	if w.size != w.synced {
		if err := w.f.Sync(); err != nil {
			w.abortClosed()
			return blob.Info{}, fmt.Errorf("blob commit fsync: %w", err)
		}
	}
	if err := w.f.Close(); err != nil {
		os.Remove(w.name)
		return blob.Info{}, fmt.Errorf("blob commit close: %w", err)
	}
	final := w.s.BlobPath(got)
	if fi, err := os.Stat(final); err == nil {
		// Already stored: the file is durable (only synced files are renamed
		// in), but the writer that renamed it may not have synced the
		// directory yet; do it here too before anyone commits a reference.
		os.Remove(w.name)
		if err := syncDir(filepath.Dir(final)); err != nil {
			return blob.Info{}, err
		}
		return blob.Info{Digest: got, Size: fi.Size(), ModTime: fi.ModTime()}, nil
	}
	dir := filepath.Dir(final)
	created := false
	if _, err := os.Stat(dir); errors.Is(err, iofs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			os.Remove(w.name)
			return blob.Info{}, err
		}
		created = true
	}
	if err := os.Rename(w.name, final); err != nil {
		os.Remove(w.name)
		return blob.Info{}, fmt.Errorf("blob commit rename: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return blob.Info{}, err
	}
	if created {
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return blob.Info{}, err
		}
	}
	return blob.Info{Digest: got, Size: w.size, ModTime: time.Now()}, nil
}

func (w *writer) abort() {
	w.done = true
	w.f.Close()
	os.Remove(w.name)
}

func (w *writer) abortClosed() {
	w.f.Close()
	os.Remove(w.name)
}

func (w *writer) Cancel(context.Context) error {
	if w.done {
		return nil
	}
	w.abort()
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
