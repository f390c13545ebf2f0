package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
)

// Resumable upload sessions: a blob sent in several requests (an OCI
// chunked upload). The blob store keeps the bytes and a resume state; the
// session row keeps that state, so any request (and, with shared stores,
// any node) continues where the last one stopped. A session belongs to a
// repository and a package name.

// RangeError says an append did not start where the session stands.
type RangeError struct {
	Size int64 // bytes the session holds
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("the upload holds %d bytes; a chunk must start there", e.Size)
}

// Unwrap classifies the error as invalid input.
func (e *RangeError) Unwrap() error { return errs.Invalid }

type sessionLocks struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

// lock serialises requests on one session within this process.
func (l *sessionLocks) lock(id string) func() {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*sync.Mutex{}
	}
	mu, ok := l.m[id]
	if !ok {
		mu = &sync.Mutex{}
		l.m[id] = mu
	}
	l.mu.Unlock()
	mu.Lock()
	return func() {
		mu.Unlock()
		l.mu.Lock()
		delete(l.m, id)
		l.mu.Unlock()
	}
}

func (m *Manager) resumer() (blob.Resumer, error) {
	rs, ok := m.blobs.(blob.Resumer)
	if !ok {
		return nil, errs.New(errs.NotAllowed, "this server's blob store cannot resume uploads")
	}
	return rs, nil
}

// StartUpload opens a session for a blob of name in r (or its deploy target).
func (m *Manager) StartUpload(ctx context.Context, r *Repository, name string) (*meta.Upload, *Repository, error) {
	target, err := m.DeployTarget(r)
	if err != nil {
		return nil, nil, err
	}
	if err := m.authorize(ctx, auth.Write, target.Key); err != nil {
		return nil, nil, err
	}
	if _, err := m.resumer(); err != nil {
		return nil, nil, err
	}
	w, err := m.blobs.Create(ctx)
	if err != nil {
		return nil, nil, err
	}
	state, err := w.(blob.Suspender).Suspend(ctx)
	if err != nil {
		w.Cancel(ctx)
		return nil, nil, err
	}
	u := &meta.Upload{RepoID: target.ID, Name: name, State: state}
	if err := m.store.CreateUpload(ctx, u); err != nil {
		m.dropUpload(ctx, state)
		return nil, nil, err
	}
	return u, target, nil
}

// Upload returns a session of name in r's deploy target.
func (m *Manager) Upload(ctx context.Context, r *Repository, name, id string) (*meta.Upload, *Repository, error) {
	target, err := m.DeployTarget(r)
	if err != nil {
		return nil, nil, err
	}
	if err := m.authorize(ctx, auth.Write, target.Key); err != nil {
		return nil, nil, err
	}
	u, err := m.store.GetUpload(ctx, id)
	if err != nil || u.RepoID != target.ID || u.Name != name {
		return nil, nil, errs.New(errs.NotFound, "upload %s is unknown (finished, cancelled or expired)", id)
	}
	return u, target, nil
}

// AppendUpload adds body to a session. start is where the client says the
// chunk begins (-1 when it does not say); a mismatch is a *RangeError.
func (m *Manager) AppendUpload(ctx context.Context, r *Repository, name, id string, start int64, body io.Reader) (*meta.Upload, error) {
	unlock := m.uploadLocks.lock(id)
	defer unlock()
	u, target, err := m.Upload(ctx, r, name, id)
	if err != nil {
		return nil, err
	}
	if start >= 0 && start != u.Size {
		return nil, &RangeError{Size: u.Size}
	}
	rs, err := m.resumer()
	if err != nil {
		return nil, err
	}
	w, err := rs.Resume(ctx, u.State)
	if err != nil {
		return nil, err
	}
	src := body
	if limit := m.limitFor(target); limit > 0 {
		src = &limitReader{r: body, left: limit - u.Size, limit: limit, repo: target}
	}
	if _, err := copyBuffered(w, src); err != nil {
		// Keep what was acknowledged before: the saved state stays valid, and
		// the next Resume discards the partial chunk.
		w.(blob.Suspender).Suspend(context.WithoutCancel(ctx))
		return nil, bodyError(err)
	}
	state, err := w.(blob.Suspender).Suspend(ctx)
	if err != nil {
		return nil, err
	}
	u.State, u.Size = state, w.Size()
	if err := m.store.UpdateUpload(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// FinishUpload appends the last chunk (body, possibly empty), lets verify
// check the whole content (it may read it back through blob.Peeker), and
// stores it at path with o, as Put does. The session ends either way unless
// verify fails on a transient error.
func (m *Manager) FinishUpload(ctx context.Context, r *Repository, name, id string, start int64, body io.Reader,
	verify func(w blob.Writer) error, path string, o PutOptions) (*PutResult, error) {
	unlock := m.uploadLocks.lock(id)
	defer unlock()
	u, _, err := m.Upload(ctx, r, name, id)
	if err != nil {
		return nil, err
	}
	if start >= 0 && start != u.Size {
		return nil, &RangeError{Size: u.Size}
	}
	rs, err := m.resumer()
	if err != nil {
		return nil, err
	}
	w, err := rs.Resume(ctx, u.State)
	if err != nil {
		return nil, err
	}
	end := func() { m.store.DeleteUpload(context.WithoutCancel(ctx), id) }
	if _, err := copyBuffered(w, body); err != nil {
		w.(blob.Suspender).Suspend(context.WithoutCancel(ctx))
		return nil, bodyError(err)
	}
	if verify != nil {
		if err := verify(w); err != nil {
			w.Cancel(context.WithoutCancel(ctx))
			end()
			return nil, err
		}
	}
	o.Resume, o.Size = w, 0
	res, err := m.Put(ctx, r, path, eofReader{}, o)
	end()
	return res, err
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// CancelUpload ends a session and drops its bytes.
func (m *Manager) CancelUpload(ctx context.Context, r *Repository, name, id string) error {
	unlock := m.uploadLocks.lock(id)
	defer unlock()
	u, _, err := m.Upload(ctx, r, name, id)
	if err != nil {
		return err
	}
	m.dropUpload(ctx, u.State)
	return m.store.DeleteUpload(ctx, id)
}

func (m *Manager) dropUpload(ctx context.Context, state []byte) {
	rs, err := m.resumer()
	if err != nil {
		return
	}
	if w, err := rs.Resume(ctx, state); err == nil {
		w.Cancel(ctx)
	}
}

// ExpireUploads ends sessions untouched since before and drops their bytes.
func (m *Manager) ExpireUploads(ctx context.Context, before time.Time) (int, error) {
	n := 0
	for {
		us, err := m.store.ListUploadsBefore(ctx, before, 100)
		if err != nil {
			return n, err
		}
		if len(us) == 0 {
			return n, nil
		}
		for _, u := range us {
			unlock := m.uploadLocks.lock(u.ID)
			m.dropUpload(ctx, u.State)
			err := m.store.DeleteUpload(ctx, u.ID)
			unlock()
			if err != nil && !errors.Is(err, errs.NotFound) {
				return n, err
			}
			n++
		}
	}
}

func (m *Manager) limitFor(r *Repository) int64 {
	if r.MaxUploadSize > 0 {
		return r.MaxUploadSize
	}
	return m.maxBody
}
