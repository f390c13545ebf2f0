package repo

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/checksum"
	"github.com/cofferhq/coffer/internal/meta"
)

// Which digests are computed when.
//
// sha256 is the blob's identity and is always computed while the bytes
// arrive. sha1 and md5 are courtesies for clients that ask for them (md5
// alone costs more CPU than sha256): they are computed inline for bodies of
// known size up to inlineLimit and whenever the client declared one to
// verify; for large or unsized bodies the checksum filler computes them
// right after the commit, off the upload's critical path, so that a large
// upload runs at the speed of sha256 and the disk (a download that finds
// them missing asks again).

// generic is the set of digests every asset eventually carries.
var generic = []checksum.Alg{checksum.SHA1, checksum.MD5}

// inlineLimit is the body size up to which sha1 and md5 are computed inline.
const inlineLimit = 64 << 20

// inlineHashes is what to compute while streaming a body of the given size
// (-1: unknown): what the format asked for (nil: sha1 and md5 for bodies of
// known size up to inlineLimit) plus whatever the client declared.
func inlineHashes(requested []checksum.Alg, declared checksum.Sums, size int64) []checksum.Alg {
	out := requested
	if out == nil && size >= 0 && size <= inlineLimit {
		out = generic
	}
	out = slices.Clone(out)
	for alg, v := range declared {
		if v != "" && alg != checksum.SHA256 && !slices.Contains(out, alg) {
			out = append(out, alg)
		}
	}
	return out
}

// filler computes missing generic digests of blobs in the background.
type filler struct {
	store   meta.Store
	blobs   blob.Store
	log     *slog.Logger
	queue   chan digest.Digest
	mu      sync.Mutex
	pending map[digest.Digest]bool
	stop    chan struct{}
	done    chan struct{}
}

func newFiller(store meta.Store, blobs blob.Store, log *slog.Logger) *filler {
	f := &filler{store: store, blobs: blobs, log: log, queue: make(chan digest.Digest, 4096),
		pending: map[digest.Digest]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go f.loop()
	return f
}

// need queues d unless it is queued already; a full queue drops the
// request (the next download of the asset asks again).
func (f *filler) need(d digest.Digest) {
	f.mu.Lock()
	if f.pending[d] {
		f.mu.Unlock()
		return
	}
	f.pending[d] = true
	f.mu.Unlock()
	select {
	case f.queue <- d:
	default:
		f.mu.Lock()
		delete(f.pending, d)
		f.mu.Unlock()
	}
}

func (f *filler) loop() {
	defer close(f.done)
	for {
		select {
		case <-f.stop:
			return
		case d := <-f.queue:
			if err := f.fill(d); err != nil {
				f.log.Warn("computing checksums", "blob", d, "err", err)
			}
			f.mu.Lock()
			delete(f.pending, d)
			f.mu.Unlock()
		}
	}
}

func (f *filler) fill(d digest.Digest) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	r, err := f.blobs.Open(ctx, d)
	if err != nil {
		return err
	}
	defer r.Close()
	h := checksum.NewHasher(generic...)
	if _, err := io.Copy(h, r); err != nil {
		h.Close()
		return err
	}
	s := h.Sums()
	return f.store.FillChecksums(ctx, d.String(), s[checksum.SHA1], s[checksum.MD5], "")
}

func (f *filler) Close() {
	close(f.stop)
	<-f.done
}

// missingGeneric reports whether an asset lacks a generic digest.
func missingGeneric(a *meta.Asset) bool { return a.SHA1 == "" || a.MD5 == "" }

// received is a blob being received: streamed and hashed, then committed
// or discarded.
type received struct {
	blob.Writer
	sums checksum.Sums // hex digests, sha256 included
	read int64         // bytes read from the body
	done bool
}

// receive streams r into w (a new blob when nil), computing sha256 and
// hashes on the way. On error nothing is kept; otherwise the caller commits
// or discards.
func (m *Manager) receive(ctx context.Context, w blob.Writer, r io.Reader, hashes []checksum.Alg) (*received, error) {
	if w == nil {
		var err error
		if w, err = m.blobs.Create(ctx); err != nil {
			return nil, err
		}
	}
	h := checksum.NewHasher(hashes...)
	n, err := copyBuffered(io.MultiWriter(w, h), r)
	sums := h.Sums()
	if err != nil {
		w.Cancel(context.WithoutCancel(ctx))
		return nil, err
	}
	sums[checksum.SHA256] = w.Digest().Encoded()
	return &received{Writer: w, sums: sums, read: n}, nil
}

// commit makes the blob durable under its digest.
func (r *received) commit(ctx context.Context) (blob.Info, error) {
	r.done = true
	return r.Commit(ctx, r.Digest())
}

// discard drops the bytes unless they were committed.
func (r *received) discard(ctx context.Context) {
	if !r.done {
		r.done = true
		r.Cancel(context.WithoutCancel(ctx))
	}
}
