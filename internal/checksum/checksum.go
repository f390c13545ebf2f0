// Package checksum computes the extra digests formats need (sha1, md5,
// sha512) while a blob streams by, each on its own goroutine so that they
// run beside the sha256 the blob store computes instead of after it.
package checksum

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
	"sync"
	"sync/atomic"
)

// Alg names a digest algorithm.
type Alg string

// The algorithms.
const (
	SHA1   Alg = "sha1"
	MD5    Alg = "md5"
	SHA256 Alg = "sha256"
	SHA512 Alg = "sha512"
)

// New returns a fresh hash for the algorithm.
func (a Alg) New() hash.Hash {
	switch a {
	case SHA1:
		return sha1.New()
	case MD5:
		return md5.New()
	case SHA256:
		return sha256.New()
	case SHA512:
		return sha512.New()
	}
	panic(fmt.Sprintf("checksum: unknown algorithm %q", a))
}

// HexLen is the length of the algorithm's hex digest.
func (a Alg) HexLen() int { return a.New().Size() * 2 }

// ValidHex reports whether s looks like a hex digest of the algorithm.
func (a Alg) ValidHex(s string) bool {
	if len(s) != a.HexLen() {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Sums holds hex digests by algorithm.
type Sums map[Alg]string

const chunk = 256 << 10

// Hasher is an io.Writer that feeds every written byte to several hashes,
// one goroutine each. Write copies the bytes (the caller may reuse its
// buffer) and returns once the copy is queued; Sums waits for the hashes.
// Memory is bounded: a few chunks per algorithm are in flight.
type Hasher struct {
	algs  []Alg
	lanes []chan *piece
	wg    sync.WaitGroup
	sums  Sums
	mu    sync.Mutex
	pool  sync.Pool
	done  bool
}

// piece is one chunk shared by every lane; the last lane to finish with it
// returns its buffer to the pool.
type piece struct {
	buf  *[]byte
	n    int
	left atomic.Int32
}

// NewHasher starts hashing with the given algorithms.
func NewHasher(algs ...Alg) *Hasher {
	h := &Hasher{algs: algs, sums: Sums{}}
	h.pool.New = func() any { b := make([]byte, chunk); return &b }
	for _, a := range algs {
		lane := make(chan *piece, 8)
		h.lanes = append(h.lanes, lane)
		h.wg.Add(1)
		go func(a Alg, lane chan *piece) {
			defer h.wg.Done()
			hh := a.New()
			for p := range lane {
				hh.Write((*p.buf)[:p.n])
				if p.left.Add(-1) == 0 {
					h.pool.Put(p.buf)
				}
			}
			h.mu.Lock()
			h.sums[a] = hex.EncodeToString(hh.Sum(nil))
			h.mu.Unlock()
		}(a, lane)
	}
	return h
}

// Write implements io.Writer.
func (h *Hasher) Write(p []byte) (int, error) {
	if len(h.algs) == 0 {
		return len(p), nil
	}
	n := len(p)
	for len(p) > 0 {
		buf := h.pool.Get().(*[]byte)
		k := copy(*buf, p)
		pc := &piece{buf: buf, n: k}
		pc.left.Store(int32(len(h.lanes)))
		for _, lane := range h.lanes {
			lane <- pc
		}
		p = p[k:]
	}
	return n, nil
}

// Sums finishes hashing and returns the digests. Call it once, after the
// last Write.
func (h *Hasher) Sums() Sums {
	if !h.done {
		h.done = true
		for _, lane := range h.lanes {
			close(lane)
		}
		h.wg.Wait()
	}
	return h.sums
}

// Close stops the goroutines without needing the result.
func (h *Hasher) Close() { h.Sums() }

// Verify compares declared digests (hex, any case) with computed ones and
// returns a description of the first mismatch, or "".
func Verify(declared, computed Sums) string {
	for _, a := range []Alg{SHA256, SHA512, SHA1, MD5} {
		want := strings.ToLower(strings.TrimSpace(declared[a]))
		if want == "" {
			continue
		}
		if got := computed[a]; got != want {
			return fmt.Sprintf("%s checksum mismatch: declared %s, content has %s", a, want, got)
		}
	}
	return ""
}
