package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/checksum"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
)

// Asset is an asset together with the repository that actually holds it
// (a member, when resolved through a virtual repository).
type Asset struct {
	*meta.Asset
	Repo *Repository
	// Stale is set when a remote repository served its cached copy because
	// the upstream could not be asked.
	Stale bool
	// Stream, when set, is the content being fetched right now (a streamed
	// remote fill): read it instead of the blob, which is not committed yet.
	Stream io.ReadSeekCloser
}

// PutOptions describe an upload.
type PutOptions struct {
	ContentType string
	// Size is the declared length (Content-Length), or -1 when unknown.
	Size int64
	// Declared are checksums the client sent (hex); a mismatch stores nothing.
	Declared checksum.Sums
	// Hashes are the extra digests to compute while streaming besides
	// sha256 (nil: sha1 and md5 for bodies of known size up to 64 MiB).
	// Declared digests are always computed, to verify them; sha1 and md5
	// not computed inline are filled in right after the commit.
	Hashes []checksum.Alg
	// Component, when set, is the package version the asset belongs to; it
	// is created (or its attributes updated) in the same transaction.
	Component *ComponentSpec
	// Attributes are the asset's format-specific attributes (JSON object).
	Attributes []byte
	// Check runs inside the commit transaction, before the asset is
	// written, for format rules that depend on what is stored (npm refuses
	// to publish an existing version anywhere): an error aborts the upload.
	// It may also write related rows (a tag, links) that must commit with
	// the asset. It runs even when identical content was already stored.
	Check func(ctx context.Context, tx meta.Tx, target *Repository) error
	// Resume continues an upload session's writer instead of starting a new
	// blob: body is the rest of the content (possibly empty). Only sha256
	// and Hashes computed over body are known then; use it with Hashes
	// that need the whole content only if they were computed by the caller.
	Resume blob.Writer
	// Inspect, when set, reads the content of a new upload before any
	// metadata refers to it, for formats that must look inside an upload to
	// accept or describe it (a wheel's METADATA, a chart's Chart.yaml): before
	// the blob's commit when the store can read back its writers
	// (blob.Peeker, the fs driver), else right after it. An error refuses the
	// upload: nothing is stored (with a store that cannot read back, the
	// unreferenced blob is left to garbage collection). What it returns
	// completes the asset. It is not called when identical content is
	// already stored at the path.
	Inspect func(ctx context.Context, c Content) (*Inspection, error)
}

// Content is an upload's bytes for PutOptions.Inspect. Reads are random
// access (a zip's central directory is at its end); nothing is held in
// memory.
type Content struct {
	io.ReaderAt
	Size   int64
	Digest digest.Digest
	// Sums are the digests computed while the bytes streamed in (hex).
	Sums checksum.Sums
}

// Inspection is what PutOptions.Inspect learnt from an upload.
type Inspection struct {
	// Component replaces PutOptions.Component when not nil.
	Component *ComponentSpec
	// Attributes replace PutOptions.Attributes when not nil.
	Attributes []byte
	// Derived are small files derived from the content (a wheel's core
	// metadata served beside it), stored at their own paths in the same
	// transaction and component as the upload, and replaced with it.
	Derived []Derived
}

// Derived is a small file derived from an upload; see Inspection.
type Derived struct {
	Path        string
	Content     []byte
	ContentType string
	Attributes  []byte
}

// ComponentSpec links an upload to its package version.
type ComponentSpec struct {
	Name    string
	Version string
	// Attributes replace the component's (nil keeps them; {} on creation).
	Attributes []byte
}

// PutResult says what a Put did.
type PutResult struct {
	Asset     *Asset
	Created   bool // a new path
	Unchanged bool // identical content was already there
}

// Put stores body at path in r (or r's deployment target), enforcing the
// repository's policies and the caller's permissions.
func (m *Manager) Put(ctx context.Context, r *Repository, path string, body io.Reader, o PutOptions) (*PutResult, error) {
	target, err := m.DeployTarget(r)
	if err != nil {
		return nil, err
	}
	if err := m.authorize(ctx, auth.Write, target.Key); err != nil {
		return nil, err
	}
	limit := m.limitFor(target)
	if limit > 0 && o.Size > limit {
		return nil, tooLarge(target, o.Size, limit)
	}
	if err := m.precheckQuota(ctx, target, o.Size); err != nil {
		return nil, err
	}
	for alg, v := range o.Declared {
		if v != "" && !alg.ValidHex(strings.ToLower(strings.TrimSpace(v))) {
			return nil, errs.New(errs.Invalid, "declared %s checksum %q is not a %d-digit hex value", alg, v, alg.HexLen())
		}
	}

	existing, err := m.store.GetAsset(ctx, target.ID, path)
	if err != nil && !errors.Is(err, errs.NotFound) {
		return nil, err
	}
	// Identical content is not an overwrite (a CI re-run needs no overwrite
	// permission), so a refusal waits for the digest unless one was declared.
	var overwriteErr error
	if existing != nil {
		if target.Policy.Overwrite {
			overwriteErr = m.authorize(ctx, auth.Overwrite, target.Key)
		}
		if d := o.Declared[checksum.SHA256]; d != "" && "sha256:"+strings.ToLower(d) != existing.Blob {
			// Refuse before reading a byte of the body.
			if !target.Policy.Overwrite {
				return nil, immutable(target, path)
			}
			if overwriteErr != nil {
				return nil, overwriteErr
			}
		}
	}

	src := body
	if limit > 0 {
		left := limit
		if o.Resume != nil {
			left -= o.Resume.Size()
		}
		src = &limitReader{r: body, left: left, limit: limit, repo: target}
	}
	w, err := m.receive(ctx, o.Resume, src, inlineHashes(o.Hashes, o.Declared, o.Size))
	if err != nil {
		return nil, bodyError(err)
	}
	defer w.discard(ctx)
	if o.Size >= 0 && w.read != o.Size {
		return nil, errs.New(errs.Invalid, "upload truncated: received %d of %d bytes", w.read, o.Size)
	}
	sums := w.sums
	if msg := checksum.Verify(o.Declared, sums); msg != "" {
		return nil, errs.New(errs.DigestMismatch, "%s; nothing was stored", msg)
	}
	dg := w.Digest()
	if existing != nil && existing.Blob == dg.String() {
		// Same bytes: nothing to store, whatever the policy; the format's
		// transaction still runs (a manifest pushed again under a new tag).
		if o.Check != nil {
			err := m.store.InTx(ctx, func(tx meta.Tx) error { return o.Check(ctx, tx, target) })
			if err != nil {
				return nil, err
			}
			if o.Component != nil {
				m.Bump(target.ID, o.Component.Name)
			}
		}
		return &PutResult{Asset: &Asset{Asset: existing, Repo: target}, Unchanged: true}, nil
	}
	if existing != nil && !target.Policy.Overwrite {
		return nil, immutable(target, path)
	}
	if existing != nil && overwriteErr != nil {
		return nil, overwriteErr
	}
	if _, err := m.blobs.Stat(ctx, dg); err == nil {
		// The content is already stored: lease it before relying on it.
		if err := m.lease(ctx, dg, w.Size()); err != nil {
			return nil, err
		}
	}
	var (
		info    blob.Info
		derived []*meta.Asset
	)
	if o.Inspect != nil {
		info, o, derived, err = m.inspect(ctx, target, w, o)
	} else {
		info, err = w.commit(ctx)
	}
	if err != nil {
		return nil, err
	}

	a := &meta.Asset{
		RepoID:      target.ID,
		Path:        path,
		Blob:        info.Digest.String(),
		Size:        info.Size,
		ContentType: o.ContentType,
		SHA1:        sums[checksum.SHA1],
		MD5:         sums[checksum.MD5],
		SHA512:      sums[checksum.SHA512],
		CreatedBy:   auth.PrincipalFrom(ctx).Name(),
		Attributes:  o.Attributes,
	}
	res, err := m.commitAsset(ctx, target, existing, a, derived, o, "deploy", true)
	if err != nil {
		return nil, err
	}
	if o.Hashes == nil && missingGeneric(res.Asset.Asset) {
		m.checksums.need(info.Digest)
	}
	return res, nil
}

// commitAsset writes a (whose blob is durable) at its path in one
// transaction: the overwrite rules checked again (another writer may have
// won since the first look), the format's Check, the component, the blob
// row, the asset and the audit event.
//
// ownBytes says the caller made the blob durable itself (so it may wait out
// a collection of an older copy); a Link has no bytes of its own and fails
// instead when its blob is being collected. derived are assets written with
// a (Inspection.Derived), their blobs durable and leased.
func (m *Manager) commitAsset(ctx context.Context, target *Repository, existing, a *meta.Asset, derived []*meta.Asset, o PutOptions, action string, ownBytes bool) (*PutResult, error) {
	created, unchanged := true, false
	run := m.store.InTx
	if ownBytes {
		run = func(ctx context.Context, fn func(meta.Tx) error) error { return m.inTxOwnBytes(ctx, a.Blob, fn) }
	}
	err := run(ctx, func(tx meta.Tx) error {
		cur, err := tx.GetAsset(ctx, target.ID, a.Path)
		switch {
		case err == nil:
			created = false
			if cur.Blob == a.Blob {
				// A concurrent twin stored the same bytes: only the format's
				// own rows remain to write.
				unchanged, a = true, cur
				if o.Check != nil {
					return o.Check(ctx, tx, target)
				}
				return nil
			}
			if !target.Policy.Overwrite {
				return immutable(target, a.Path)
			}
			if existing == nil {
				if err := m.authorize(ctx, auth.Overwrite, target.Key); err != nil {
					return err
				}
			}
		case !errors.Is(err, errs.NotFound):
			return err
		}
		if o.Check != nil {
			if err := o.Check(ctx, tx, target); err != nil {
				return err
			}
		}
		if c := o.Component; c != nil {
			comp := &meta.Component{RepoID: target.ID, Name: c.Name, Version: c.Version, Attributes: c.Attributes,
				CreatedBy: a.CreatedBy, CreatedAt: m.now()}
			if err := tx.PutComponent(ctx, comp); err != nil {
				return err
			}
			a.ComponentID = comp.ID
		}
		var physBefore int64
		if m.quotas.Instance > 0 {
			p, err := tx.BlobUsage(ctx)
			if err != nil {
				return err
			}
			physBefore = p.Bytes
		}
		if err := tx.PutBlob(ctx, a.Blob, a.Size); err != nil {
			return err
		}
		if err := tx.PutAsset(ctx, a); err != nil {
			return err
		}
		for _, d := range derived {
			d.ComponentID, d.CreatedBy = a.ComponentID, a.CreatedBy
			if err := tx.PutBlob(ctx, d.Blob, d.Size); err != nil {
				return err
			}
			if err := tx.PutAsset(ctx, d); err != nil {
				return err
			}
		}
		added := a.Size
		if cur != nil {
			added -= cur.Size
		}
		newBlob := false
		if m.quotas.Instance > 0 {
			p, err := tx.BlobUsage(ctx)
			if err != nil {
				return err
			}
			newBlob = p.Bytes > physBefore
		}
		if err := m.checkQuota(ctx, tx, target, added, newBlob, a.Size); err != nil {
			return err
		}
		if !created {
			action = "overwrite"
		}
		return m.audit(ctx, tx, action, target.Key, a.Path, map[string]any{"digest": a.Blob, "size": a.Size})
	})
	if err != nil {
		return nil, err
	}
	if o.Component != nil {
		m.Bump(target.ID, o.Component.Name)
	} else {
		m.changed(target.ID)
	}
	if !unchanged {
		m.warnQuota(ctx, target)
	}
	return &PutResult{Asset: &Asset{Asset: a, Repo: target}, Created: created, Unchanged: unchanged}, nil
}

// Link stores at path in r (or its deploy target) an asset for content
// another asset already holds (an OCI cross-repository mount): no byte
// moves. The caller must have checked it may read src.
func (m *Manager) Link(ctx context.Context, r *Repository, path string, src *meta.Asset, o PutOptions) (*PutResult, error) {
	target, err := m.DeployTarget(r)
	if err != nil {
		return nil, err
	}
	if err := m.authorize(ctx, auth.Write, target.Key); err != nil {
		return nil, err
	}
	existing, err := m.store.GetAsset(ctx, target.ID, path)
	if err != nil && !errors.Is(err, errs.NotFound) {
		return nil, err
	}
	if existing != nil && existing.Blob != src.Blob {
		if !target.Policy.Overwrite {
			return nil, immutable(target, path)
		}
		if err := m.authorize(ctx, auth.Overwrite, target.Key); err != nil {
			return nil, err
		}
	}
	ct := o.ContentType
	if ct == "" {
		ct = src.ContentType
	}
	a := &meta.Asset{RepoID: target.ID, Path: path, Blob: src.Blob, Size: src.Size, ContentType: ct,
		SHA1: src.SHA1, MD5: src.MD5, SHA512: src.SHA512, CreatedBy: auth.PrincipalFrom(ctx).Name(), Attributes: o.Attributes}
	res, err := m.commitAsset(ctx, target, existing, a, nil, o, "mount", false)
	if errs.KindOf(err) == errs.Unavailable {
		return nil, errs.Wrap(errs.NotFound, err, "the content of %s is being garbage-collected", src.Path)
	}
	return res, err
}

// UploadLimit is the largest body Put accepts for r (0: no limit): its
// max_upload_size, else the server's. Formats whose bodies wrap the file (a
// multipart form) use it to refuse an oversized request before reading it.
func (m *Manager) UploadLimit(r *Repository) int64 { return m.limitFor(r) }

// inspect runs o.Inspect over the received content (read back before the
// commit when the writer allows it), commits the blob, and stores the
// derived files' bytes. It returns the blob, o completed with what the
// inspection learnt, and the derived assets to write in the transaction.
func (m *Manager) inspect(ctx context.Context, target *Repository, w *received, o PutOptions) (blob.Info, PutOptions, []*meta.Asset, error) {
	var (
		info      blob.Info
		ra        io.ReaderAt
		closeRead func() error
		err       error
	)
	if pk, ok := w.Writer.(blob.Peeker); ok {
		if rd, err := pk.Peek(); err == nil {
			ra, closeRead = rd, rd.Close
		}
	}
	if ra == nil {
		if info, err = w.commit(ctx); err != nil {
			return info, o, nil, err
		}
		f, err := m.blobs.Open(ctx, info.Digest)
		if err != nil {
			return info, o, nil, err
		}
		ra, closeRead = &seekReaderAt{rs: f}, f.Close
		if fra, ok := f.(io.ReaderAt); ok {
			ra = fra
		}
	}
	ins, err := o.Inspect(ctx, Content{ReaderAt: ra, Size: w.Size(), Digest: w.Digest(), Sums: w.sums})
	closeRead()
	if err != nil {
		return info, o, nil, err // not committed yet: Put's discard drops the bytes
	}
	if !w.done {
		if info, err = w.commit(ctx); err != nil {
			return info, o, nil, err
		}
	}
	if ins == nil {
		return info, o, nil, nil
	}
	if ins.Component != nil {
		o.Component = ins.Component
	}
	if ins.Attributes != nil {
		o.Attributes = ins.Attributes
	}
	var out []*meta.Asset
	for _, d := range ins.Derived {
		dw, err := m.receive(ctx, nil, bytes.NewReader(d.Content), generic)
		if err != nil {
			return info, o, nil, err
		}
		if _, err := m.blobs.Stat(ctx, dw.Digest()); err == nil {
			// Already stored (identical metadata of another file): lease it.
			if err := m.lease(ctx, dw.Digest(), dw.Size()); err != nil {
				dw.discard(ctx)
				return info, o, nil, err
			}
		}
		di, err := dw.commit(ctx)
		if err != nil {
			return info, o, nil, err
		}
		out = append(out, &meta.Asset{RepoID: target.ID, Path: d.Path, Blob: di.Digest.String(), Size: di.Size,
			ContentType: d.ContentType, SHA1: dw.sums[checksum.SHA1], MD5: dw.sums[checksum.MD5], Attributes: d.Attributes})
	}
	return info, o, out, nil
}

// seekReaderAt gives random access over a blob reader that is only a seeker.
type seekReaderAt struct {
	mu sync.Mutex
	rs io.ReadSeeker
}

func (s *seekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.rs.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(s.rs, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

// copyBuffer is the chunk size bodies stream in: large enough that a big
// upload costs few system calls and hasher hand-offs.
const copyBuffer = 1 << 20

// copyBufs recycles copy buffers: a fresh megabyte per request (also for
// the empty body that ends most uploads) was a sixth of a push's CPU.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBuffer); return &b }}

// copyBuffered is io.CopyBuffer with a pooled buffer.
func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(dst, src, *bp)
}

func immutable(r *Repository, path string) error {
	return errs.New(errs.Immutable, "%s already exists in %s and cannot be overwritten (%s)", path, r.Key, r.PolicyName())
}

func tooLarge(r *Repository, size, limit int64) error {
	return errs.New(errs.TooLarge, "upload of %d bytes exceeds the %d-byte limit of %s", size, limit, r.Key)
}

type limitReader struct {
	r     io.Reader
	left  int64
	limit int64
	repo  *Repository
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// Probe one byte: a body of exactly the limit is fine.
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			return 0, errs.New(errs.TooLarge, "upload exceeds the %d-byte limit of %s", l.limit, l.repo.Key)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// bodyError classifies a failure reading a request body.
func bodyError(err error) error {
	if errs.KindOf(err) != nil {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.Canceled) {
		return errs.Wrap(errs.Canceled, err, "upload interrupted before the end of the body; nothing was stored")
	}
	return errs.Wrap(errs.Invalid, err, "reading the upload failed; nothing was stored: %v", err)
}

// Get finds the asset at path, resolving through members for a virtual
// repository and through the upstream for a remote one. The caller must
// have read permission on r (the request middleware checks it).
func (m *Manager) Get(ctx context.Context, r *Repository, path string) (*Asset, error) {
	return m.Resolve(ctx, r, path, nil)
}

// Resolve is Get for formats whose remote paths need more than the
// defaults: spec tells, for a remote repository met on the way, how to
// fetch path from it (its upstream URL, immutability, expected digest).
func (m *Manager) Resolve(ctx context.Context, r *Repository, path string, spec func(remote *Repository) FetchSpec) (*Asset, error) {
	if spec == nil {
		spec = func(*Repository) FetchSpec { return FetchSpec{} }
	}
	switch r.Kind {
	case Local:
		a, err := m.store.GetAsset(ctx, r.ID, path)
		if err != nil {
			return nil, notFoundIn(err, r, path)
		}
		return &Asset{Asset: a, Repo: r}, nil
	case Remote:
		return m.Fetch(ctx, r, path, spec(r))
	case Virtual:
		return m.resolveVirtual(ctx, r, path, spec)
	}
	return nil, fmt.Errorf("repository %s has unknown kind %q", r.Key, r.Kind)
}

func notFoundIn(err error, r *Repository, path string) error {
	if errors.Is(err, errs.NotFound) {
		return errs.Wrap(errs.NotFound, err, "%s not found in %s", path, r.Key)
	}
	return err
}

// RecordDownload notes that an asset was downloaded (for formats that open
// blobs themselves).
func (m *Manager) RecordDownload(assetID string) { m.downloads.record(assetID) }

// OpenContent returns the content of an asset (a stream in progress, or
// the blob) and records the download, without the generic checksum
// bookkeeping of Open.
func (m *Manager) OpenContent(ctx context.Context, a *Asset) (io.ReadSeekCloser, error) {
	if a.Stream != nil {
		return a.Stream, nil
	}
	f, err := m.blobs.Open(ctx, digest.Digest(a.Blob))
	if err != nil {
		if errors.Is(err, errs.NotFound) {
			return nil, fmt.Errorf("asset %s in %s: blob %s missing (%v)", a.Path, a.Repo.Key, a.Blob, err)
		}
		return nil, err
	}
	m.downloads.record(a.ID)
	return f, nil
}

// RedirectURL returns a URL from which a client can download the asset's
// bytes directly (a presigned S3 URL, when the blob store is configured to
// redirect), recording the download; "" means serve it from here.
func (m *Manager) RedirectURL(ctx context.Context, a *Asset) (string, error) {
	rd, ok := m.blobs.(blob.Redirector)
	if !ok || a.Stream != nil {
		return "", nil
	}
	u, err := rd.RedirectURL(ctx, digest.Digest(a.Blob))
	if err != nil || u == "" {
		return "", err
	}
	m.downloads.record(a.ID)
	return u, nil
}

// Open returns the content of an asset and records the download.
func (m *Manager) Open(ctx context.Context, a *Asset) (io.ReadSeekCloser, error) {
	if a.Stream != nil {
		return a.Stream, nil
	}
	f, err := m.blobs.Open(ctx, digest.Digest(a.Blob))
	if err != nil {
		if errors.Is(err, errs.NotFound) {
			// An asset whose blob is gone is corruption, not a client error:
			// an internal error (500), logged with the detail.
			return nil, fmt.Errorf("asset %s in %s: blob %s missing (%v)", a.Path, a.Repo.Key, a.Blob, err)
		}
		return nil, err
	}
	m.downloads.record(a.ID)
	if missingGeneric(a.Asset) {
		m.checksums.need(digest.Digest(a.Blob))
	}
	return f, nil
}

// Delete removes the asset at path, or every asset under path/ when path
// is a folder. It returns how many assets were removed.
func (m *Manager) Delete(ctx context.Context, r *Repository, path string) (int, error) {
	switch r.Kind {
	case Virtual:
		return 0, errs.New(errs.NotAllowed, "%s is a virtual repository: delete from the member that holds %s", r.Key, path)
	}
	if err := m.authorize(ctx, auth.Delete, r.Key); err != nil {
		return 0, err
	}
	if !r.Policy.Delete {
		return 0, errs.New(errs.Immutable, "%s cannot be deleted from %s (%s): deprecate it instead", path, r.Key, r.PolicyName())
	}
	n := 0
	err := m.store.InTx(ctx, func(tx meta.Tx) error {
		n = 0
		err := tx.DeleteAsset(ctx, r.ID, path)
		if err == nil {
			n = 1
			return m.audit(ctx, tx, "delete", r.Key, path, nil)
		}
		if !errors.Is(err, errs.NotFound) {
			return err
		}
		// A folder: everything under it.
		prefix := strings.TrimSuffix(path, "/") + "/"
		if path == "" {
			prefix = ""
		}
		for {
			as, err := tx.ListAssets(ctx, r.ID, meta.AssetQuery{Prefix: prefix, Limit: 500})
			if err != nil {
				return err
			}
			if len(as) == 0 {
				break
			}
			for _, a := range as {
				if err := tx.DeleteAsset(ctx, r.ID, a.Path); err != nil {
					return err
				}
				n++
			}
		}
		if n == 0 {
			return errs.New(errs.NotFound, "%s not found in %s", path, r.Key)
		}
		return m.audit(ctx, tx, "delete", r.Key, prefix, map[string]any{"count": n})
	})
	if err == nil {
		m.bumpRepo(r.ID)
	}
	if err == nil && r.Kind == Remote {
		m.negative.forget(r, path)
	}
	return n, err
}

// Deprecate marks (or unmarks) the asset at path as deprecated. It is how
// release repositories retire artifacts they never delete.
func (m *Manager) Deprecate(ctx context.Context, r *Repository, path string, deprecated bool, message string) error {
	if r.Kind != Local {
		return errs.New(errs.NotAllowed, "only artifacts of local repositories can be deprecated; %s is %s", r.Key, r.Kind)
	}
	if err := m.authorize(ctx, auth.Write, r.Key); err != nil {
		return err
	}
	err := m.store.InTx(ctx, func(tx meta.Tx) error {
		if err := tx.SetDeprecation(ctx, r.ID, path, deprecated, message); err != nil {
			return notFoundIn(err, r, path)
		}
		action := "deprecate"
		if !deprecated {
			action = "undeprecate"
		}
		return m.audit(ctx, tx, action, r.Key, path, map[string]any{"message": message})
	})
	if err == nil {
		m.bumpRepo(r.ID)
	}
	return err
}

// Entry is one child of a folder listing.
type Entry struct {
	Name  string // last path segment; folders end with "/"
	Path  string
	Asset *meta.Asset // nil for folders
	Repo  string      // the repository that holds it
}

// ListFolder lists the immediate children of folder (no leading or trailing
// slash; "" is the root) in name order. Virtual repositories merge their
// members' listings, first member wins a name.
func (m *Manager) ListFolder(ctx context.Context, r *Repository, folder string, limit int) ([]Entry, error) {
	if limit <= 0 {
		limit = 10000
	}
	if r.Kind == Virtual {
		seen := map[string]bool{}
		var out []Entry
		for _, mem := range m.members(r) {
			es, err := m.ListFolder(ctx, mem, folder, limit)
			if err != nil {
				return nil, err
			}
			for _, e := range es {
				if !seen[e.Name] {
					seen[e.Name] = true
					out = append(out, e)
				}
			}
		}
		sortEntries(out)
		if len(out) > limit {
			out = out[:limit]
		}
		return out, nil
	}
	prefix := ""
	if folder != "" {
		prefix = folder + "/"
	}
	var out []Entry
	after := ""
	for len(out) < limit {
		as, err := m.store.ListAssets(ctx, r.ID, meta.AssetQuery{Prefix: prefix, After: after, Limit: 200})
		if err != nil {
			return nil, err
		}
		if len(as) == 0 {
			break
		}
		skipped := false
		for _, a := range as {
			rest := a.Path[len(prefix):]
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				name := rest[:i+1]
				out = append(out, Entry{Name: name, Path: prefix + name, Repo: r.Key})
				// Skip everything inside that sub-folder in one jump.
				after = prefix + rest[:i] + "/\xff"
				skipped = true
				break
			}
			out = append(out, Entry{Name: rest, Path: a.Path, Asset: a, Repo: r.Key})
			after = a.Path
			if len(out) >= limit {
				break
			}
		}
		if !skipped && len(as) < 200 {
			break
		}
	}
	return out, nil
}

func sortEntries(es []Entry) {
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
}

// BlobInfo returns the stored size of an asset's blob (a consistency check
// used by tools).
func (m *Manager) BlobInfo(ctx context.Context, a *meta.Asset) (blob.Info, error) {
	return m.blobs.Stat(ctx, digest.Digest(a.Blob))
}
