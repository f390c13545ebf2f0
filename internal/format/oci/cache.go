package oci

import (
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/meta"
)

// The hot path of a registry is a manifest GET by tag and small blob GETs
// (configs, tiny layers). Two per-node caches keep them off SQLite and the
// disk:
//   - tag and digest resolution in local repositories, keyed by the name's
//     generation (repo.Manager.Generation moves with every change of the
//     name, on this node or, with several nodes, by notification), so an
//     entry is used only while nothing about the name has changed;
//   - the bytes of small contents by their sha256, which never change.
const (
	maxCachedContent = 64 << 10 // bytes of one cached manifest or blob
	maxCacheBytes    = 32 << 20 // all cached bytes
	maxCachedRefs    = 50000    // resolutions
)

type refEntry struct {
	gen   uint64
	asset meta.Asset
	d     digest.Digest
}

type cache struct {
	mu    sync.Mutex
	refs  map[string]refEntry
	bytes map[string][]byte // by the content's sha256 ("sha256:<hex>")
	size  int
}

func newCache() *cache {
	return &cache{refs: map[string]refEntry{}, bytes: map[string][]byte{}}
}

func refKey(repoID, name, ref string) string { return repoID + "\x00" + name + "\x00" + ref }

func (c *cache) ref(key string, gen uint64) (refEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.refs[key]
	if !ok || e.gen != gen {
		return refEntry{}, false
	}
	return e, true
}

func (c *cache) putRef(key string, e refEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.refs) >= maxCachedRefs {
		clear(c.refs) // crude but bounded: the hot entries come back at once
	}
	c.refs[key] = e
}

func (c *cache) content(sha string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.bytes[sha]
	return b, ok
}

func (c *cache) putContent(sha string, b []byte) {
	if len(b) > maxCachedContent {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.bytes[sha]; ok {
		return
	}
	if c.size+len(b) > maxCacheBytes {
		clear(c.bytes)
		c.size = 0
	}
	c.bytes[sha] = b
	c.size += len(b)
}
