package npm

import (
	"bytes"
	"compress/gzip"
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

// lru is a size-bounded least-recently-used cache.
type lru struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List
	items map[string]*list.Element
}

type lruItem struct {
	key  string
	val  any
	size int64
}

func newLRU(max int64) *lru {
	return &lru{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (c *lru) get(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruItem).val, true
}

func (c *lru) put(key string, val any, size int64) {
	if size > c.max/2 {
		return // too big to be worth evicting everything else for
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		it := e.Value.(*lruItem)
		c.size += size - it.size
		it.val, it.size = val, size
		c.order.MoveToFront(e)
	} else {
		c.items[key] = c.order.PushFront(&lruItem{key, val, size})
		c.size += size
	}
	for c.size > c.max {
		e := c.order.Back()
		it := e.Value.(*lruItem)
		c.order.Remove(e)
		delete(c.items, it.key)
		c.size -= it.size
	}
}

// body is a generated response body with its ETag and, made on first
// demand, its gzip encoding.
type body struct {
	data   []byte
	etag   string
	gzOnce sync.Once
	gz     []byte
}

func newBody(data []byte) *body {
	h := sha256.Sum256(data)
	return &body{data: data, etag: `W/"` + hex.EncodeToString(h[:16]) + `"`}
}

// gzipped returns the gzip encoding, or nil when not worth it.
func (b *body) gzipped() []byte {
	if len(b.data) < 1024 {
		return nil
	}
	b.gzOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		zw.Write(b.data)
		zw.Close()
		b.gz = buf.Bytes()
	})
	return b.gz
}

// rendered is a package's packument as one repository serves it.
type rendered struct {
	pkg  *pkg
	base string
	rev  string
	mu   sync.Mutex
	full *body
	abbr *body
}

func (r *rendered) fullBody() *body {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full == nil {
		r.full = newBody(r.pkg.renderFull(r.base, r.rev))
	}
	return r.full
}

func (r *rendered) abbreviatedBody() *body {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.abbr == nil {
		r.abbr = newBody(r.pkg.renderAbbreviated(r.base))
	}
	return r.abbr
}
