package repo

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/errs"
)

// One fill per (repository, path) at a time. Every request for a path
// being filled waits on the same fill; when the format asked for streaming
// (FetchSpec.Stream) and the upstream declared the length, waiters do not
// wait for the end: they read the bytes as they arrive, from the blob
// being written, so that N concurrent pulls of an uncached layer make one
// upstream request and all progress together.

type fill struct {
	done   chan struct{} // closed when the fill is over
	asset  *Asset
	err    error
	ready  chan struct{} // closed when stream is set (or the fill is over)
	stream *progress
}

type fills struct {
	mu sync.Mutex
	m  map[string]*fill
}

// join returns the fill in progress for key, or starts one with start.
func (f *fills) join(key string, start func(*fill)) *fill {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*fill{}
	}
	if fl, ok := f.m[key]; ok {
		return fl
	}
	fl := &fill{done: make(chan struct{}), ready: make(chan struct{})}
	f.m[key] = fl
	go func() {
		start(fl)
		f.mu.Lock()
		delete(f.m, key)
		f.mu.Unlock()
		select {
		case <-fl.ready:
		default:
			close(fl.ready)
		}
		close(fl.done)
	}()
	return fl
}

// progress is a blob being written that readers follow.
type progress struct {
	size int64 // total, as the upstream declared it
	rd   blob.ReaderAtCloser

	mu      sync.Mutex
	cond    *sync.Cond
	written int64
	err     error // set when the fill failed
	over    bool
	refs    int
}

func newProgress(size int64, rd blob.ReaderAtCloser) *progress {
	p := &progress{size: size, rd: rd, refs: 1} // the fill holds one reference
	p.cond = sync.NewCond(&p.mu)
	return p
}

// Write counts bytes the fill wrote (it sits in the fill's MultiWriter).
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.written += int64(len(b))
	p.mu.Unlock()
	p.cond.Broadcast()
	return len(b), nil
}

// finish ends the fill's part: err nil means all bytes are there.
func (p *progress) finish(err error) {
	p.mu.Lock()
	if err != nil && p.err == nil {
		p.err = err
	}
	p.over = true
	p.mu.Unlock()
	p.cond.Broadcast()
	p.release()
}

func (p *progress) release() {
	p.mu.Lock()
	p.refs--
	last := p.refs == 0
	p.mu.Unlock()
	if last {
		p.rd.Close()
	}
}

// reader returns a new reader over the content; it blocks for bytes not
// yet written and fails if the fill fails.
func (p *progress) reader(ctx context.Context) io.ReadSeekCloser {
	p.mu.Lock()
	p.refs++
	p.mu.Unlock()
	r := &progressReader2{p: p, ctx: ctx}
	// Wake the reader if its request goes away.
	r.stop = context.AfterFunc(ctx, func() { p.cond.Broadcast() })
	return r
}

type progressReader2 struct {
	p      *progress
	ctx    context.Context
	off    int64
	closed bool
	stop   func() bool
}

// Read blocks until bytes past the offset are written. The last byte is
// held back until the fill is over and verified: a client never receives a
// complete body for content that failed verification (its connection is
// cut instead), since it would trust the length it was promised.
func (r *progressReader2) Read(b []byte) (int, error) {
	p := r.p
	if r.off >= p.size {
		return 0, io.EOF
	}
	p.mu.Lock()
	for r.ctx.Err() == nil && p.err == nil && !p.over && p.written-1 <= r.off {
		p.cond.Wait()
	}
	avail, err, over := p.written, p.err, p.over
	p.mu.Unlock()
	if r.ctx.Err() != nil {
		return 0, r.ctx.Err()
	}
	if err != nil {
		return 0, err
	}
	if !over {
		avail-- // hold back the last byte until verified
	}
	if avail <= r.off {
		return 0, errs.New(errs.Upstream, "the upstream sent fewer bytes than it announced")
	}
	if n := avail - r.off; int64(len(b)) > n {
		b = b[:n]
	}
	n, rerr := p.rd.ReadAt(b, r.off)
	r.off += int64(n)
	if rerr == io.EOF && n > 0 {
		rerr = nil
	}
	return n, rerr
}

func (r *progressReader2) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.p.size
	}
	if offset < 0 {
		return 0, errors.New("seek before start")
	}
	r.off = offset
	return offset, nil
}

func (r *progressReader2) Close() error {
	if !r.closed {
		r.closed = true
		r.stop()
		r.p.release()
	}
	return nil
}
