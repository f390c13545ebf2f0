// Package blobtest is the conformance suite every blob.Store driver passes.
//
// A driver's test is one call: blobtest.Run(t, func(t *testing.T) blob.Store {...}).
// Each case starts from an empty store and must leave it empty.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/errs"
)

// Run runs every case against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"WriteCommitRead", testWriteCommitRead},
		{"EmptyBlob", testEmpty},
		{"DigestMismatchStoresNothing", testMismatch},
		{"CancelStoresNothing", testCancel},
		{"CommitTwiceDedupes", testDedupe},
		{"MissingIsNotFound", testMissing},
		{"InvalidDigest", testInvalidDigest},
		{"Seek", testSeek},
		{"Walk", testWalk},
		{"ConcurrentWritersSameContent", testConcurrentSame},
		{"LargeBlob", testLarge},
		{"SuspendResume", testSuspendResume},
		{"PeekWhileWriting", testPeek},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			c.fn(t, s)
			assertEmpty(t, s)
		})
	}
}

func put(t *testing.T, s blob.Store, data []byte) blob.Info {
	t.Helper()
	ctx := context.Background()
	w, err := s.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		t.Fatalf("write: %v", err)
	}
	info, err := w.Commit(ctx, digest.FromBytes(data))
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return info
}

func read(t *testing.T, s blob.Store, d digest.Digest) []byte {
	t.Helper()
	r, err := s.Open(context.Background(), d)
	if err != nil {
		t.Fatalf("Open %s: %v", d, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", d, err)
	}
	return b
}

func del(t *testing.T, s blob.Store, d digest.Digest) {
	t.Helper()
	if err := s.Delete(context.Background(), d); err != nil {
		t.Fatalf("Delete %s: %v", d, err)
	}
}

func assertEmpty(t *testing.T, s blob.Store) {
	t.Helper()
	var left []string
	err := s.Walk(context.Background(), func(i blob.Info) error {
		left = append(left, string(i.Digest))
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if len(left) > 0 {
		t.Fatalf("store not empty after case: %v", left)
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func testWriteCommitRead(t *testing.T, s blob.Store) {
	data := randBytes(100_000)
	ctx := context.Background()
	w, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:10])
	w.Write(data[10:])
	if w.Size() != int64(len(data)) {
		t.Fatalf("Size = %d, want %d", w.Size(), len(data))
	}
	want := digest.FromBytes(data)
	if w.Digest() != want {
		t.Fatalf("Digest = %s, want %s", w.Digest(), want)
	}
	if _, err := s.Stat(ctx, want); !errors.Is(err, errs.NotFound) {
		t.Fatalf("blob visible before Commit: Stat err = %v", err)
	}
	info, err := w.Commit(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if info.Digest != want || info.Size != int64(len(data)) {
		t.Fatalf("Commit info = %+v", info)
	}
	st, err := s.Stat(ctx, want)
	if err != nil || st.Size != int64(len(data)) {
		t.Fatalf("Stat = %+v, %v", st, err)
	}
	if got := read(t, s, want); !bytes.Equal(got, data) {
		t.Fatal("read back different bytes")
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatalf("Cancel after Commit: %v", err)
	}
	if _, err := s.Stat(ctx, want); err != nil {
		t.Fatalf("Cancel after Commit removed the blob: %v", err)
	}
	del(t, s, want)
	if _, err := s.Stat(ctx, want); !errors.Is(err, errs.NotFound) {
		t.Fatalf("Stat after Delete: %v", err)
	}
}

func testEmpty(t *testing.T, s blob.Store) {
	info := put(t, s, nil)
	if info.Size != 0 || info.Digest != digest.FromBytes(nil) {
		t.Fatalf("empty blob info %+v", info)
	}
	if got := read(t, s, info.Digest); len(got) != 0 {
		t.Fatalf("empty blob read %d bytes", len(got))
	}
	del(t, s, info.Digest)
}

func testMismatch(t *testing.T, s blob.Store) {
	ctx := context.Background()
	data := randBytes(1000)
	w, _ := s.Create(ctx)
	w.Write(data)
	wrong := digest.FromBytes([]byte("other"))
	_, err := w.Commit(ctx, wrong)
	if !errors.Is(err, errs.DigestMismatch) {
		t.Fatalf("Commit with wrong digest: err = %v, want DigestMismatch", err)
	}
	for _, d := range []digest.Digest{wrong, digest.FromBytes(data)} {
		if _, err := s.Stat(ctx, d); !errors.Is(err, errs.NotFound) {
			t.Fatalf("after mismatch, %s is visible (err %v)", d, err)
		}
	}
}

func testCancel(t *testing.T, s blob.Store) {
	ctx := context.Background()
	data := randBytes(1000)
	w, _ := s.Create(ctx)
	w.Write(data)
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, digest.FromBytes(data)); !errors.Is(err, errs.NotFound) {
		t.Fatalf("canceled blob visible: %v", err)
	}
	if _, err := w.Commit(ctx, ""); err == nil {
		t.Fatal("Commit after Cancel succeeded")
	}
}

func testDedupe(t *testing.T, s blob.Store) {
	data := randBytes(5000)
	a := put(t, s, data)
	b := put(t, s, data)
	if a.Digest != b.Digest || b.Size != int64(len(data)) {
		t.Fatalf("dedupe: %+v vs %+v", a, b)
	}
	n := 0
	s.Walk(context.Background(), func(blob.Info) error { n++; return nil })
	if n != 1 {
		t.Fatalf("Walk after storing the same content twice: %d blobs, want 1", n)
	}
	del(t, s, a.Digest)
}

func testMissing(t *testing.T, s blob.Store) {
	ctx := context.Background()
	d := digest.FromBytes([]byte("never stored"))
	if _, err := s.Stat(ctx, d); !errors.Is(err, errs.NotFound) {
		t.Fatalf("Stat missing: %v", err)
	}
	if _, err := s.Open(ctx, d); !errors.Is(err, errs.NotFound) {
		t.Fatalf("Open missing: %v", err)
	}
	if err := s.Delete(ctx, d); !errors.Is(err, errs.NotFound) {
		t.Fatalf("Delete missing: %v", err)
	}
}

func testInvalidDigest(t *testing.T, s blob.Store) {
	ctx := context.Background()
	for _, d := range []digest.Digest{"", "sha256:../../etc/passwd", "sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e",
		digest.Digest("sha256:" + string(bytes.Repeat([]byte("G"), 64)))} {
		if _, err := s.Stat(ctx, d); !errors.Is(err, errs.Invalid) {
			t.Fatalf("Stat(%q) = %v, want an invalid-digest error", d, err)
		}
		if _, err := s.Open(ctx, d); err == nil {
			t.Fatalf("Open(%q) succeeded", d)
		}
	}
}

func testSeek(t *testing.T, s blob.Store) {
	data := randBytes(10_000)
	info := put(t, s, data)
	r, err := s.Open(context.Background(), info.Digest)
	if err != nil {
		t.Fatal(err)
	}
	end, err := r.Seek(0, io.SeekEnd)
	if err != nil || end != int64(len(data)) {
		t.Fatalf("Seek end = %d, %v", end, err)
	}
	if _, err := r.Seek(4000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 100)
	if _, err := io.ReadFull(r, part); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if !bytes.Equal(part, data[4000:4100]) {
		t.Fatal("ranged read returned the wrong bytes")
	}
	del(t, s, info.Digest)
}

func testWalk(t *testing.T, s blob.Store) {
	want := map[digest.Digest]int64{}
	for i := 0; i < 20; i++ {
		info := put(t, s, randBytes(i*10))
		want[info.Digest] = info.Size
	}
	got := map[digest.Digest]int64{}
	err := s.Walk(context.Background(), func(i blob.Info) error {
		got[i.Digest] = i.Size
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Walk = %v, want %v", got, want)
	}
	for d := range want {
		del(t, s, d)
	}
}

func testConcurrentSame(t *testing.T, s blob.Store) {
	data := randBytes(200_000)
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			w, err := s.Create(ctx)
			if err != nil {
				errc <- err
				return
			}
			for off := 0; off < len(data); off += 7000 {
				end := min(off+7000, len(data))
				w.Write(data[off:end])
			}
			_, err = w.Commit(ctx, digest.FromBytes(data))
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("concurrent commit: %v", err)
		}
	}
	d := digest.FromBytes(data)
	if got := read(t, s, d); !bytes.Equal(got, data) {
		t.Fatal("concurrent writers of the same content left different bytes")
	}
	del(t, s, d)
}

func testLarge(t *testing.T, s blob.Store) {
	ctx := context.Background()
	const size = 20 << 20
	w, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	chunk := randBytes(1 << 20)
	for i := 0; i < size/len(chunk); i++ {
		chunk[0] = byte(i)
		w.Write(chunk)
		h.Write(chunk)
	}
	d := digest.NewDigest(digest.SHA256, h)
	info, err := w.Commit(ctx, d)
	if err != nil || info.Size != size {
		t.Fatalf("Commit large: %+v, %v", info, err)
	}
	r, _ := s.Open(ctx, d)
	h2 := sha256.New()
	n, _ := io.Copy(h2, r)
	r.Close()
	if n != size || digest.NewDigest(digest.SHA256, h2) != d {
		t.Fatal("large blob read back differently")
	}
	del(t, s, d)
}

func testSuspendResume(t *testing.T, s blob.Store) {
	rs, ok := s.(blob.Resumer)
	if !ok {
		t.Skip("store does not resume writers (optional capability)")
	}
	ctx := context.Background()
	data := randBytes(20 << 20)
	w, _ := s.Create(ctx)
	w.Write(data[:5<<20])
	state, err := w.(blob.Suspender).Suspend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("write after Suspend succeeded")
	}
	// Resume twice: the second resume discards what the first wrote after the state.
	w2, err := rs.Resume(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	w2.Write([]byte("garbage that is never acknowledged"))
	w2.(blob.Suspender).Suspend(ctx)
	w3, err := rs.Resume(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	if w3.Size() != 5<<20 {
		t.Fatalf("resumed size %d", w3.Size())
	}
	w3.Write(data[5<<20:])
	info, err := w3.Commit(ctx, digest.FromBytes(data))
	if err != nil {
		t.Fatalf("commit after resume: %v", err)
	}
	if got := read(t, s, info.Digest); !bytes.Equal(got, data) {
		t.Fatal("resumed blob differs")
	}
	del(t, s, info.Digest)
	// A resumed writer can be cancelled; the state is then dead.
	w4, _ := s.Create(ctx)
	w4.Write(data[:100])
	st4, _ := w4.(blob.Suspender).Suspend(ctx)
	w5, err := rs.Resume(ctx, st4)
	if err != nil {
		t.Fatal(err)
	}
	w5.Cancel(ctx)
	if _, err := rs.Resume(ctx, st4); !errors.Is(err, errs.NotFound) {
		t.Fatalf("resume after cancel: %v", err)
	}
	for _, bad := range []string{"", "{}", `{"id":"../../../etc/passwd00000000000000000","size":1}`, "not json"} {
		if _, err := rs.Resume(ctx, []byte(bad)); err == nil {
			t.Fatalf("Resume(%q) accepted", bad)
		}
	}
}

func testPeek(t *testing.T, s blob.Store) {
	ctx := context.Background()
	w, _ := s.Create(ctx)
	p, ok := w.(blob.Peeker)
	if !ok {
		w.Cancel(ctx)
		t.Skip("writers cannot be read back before commit (optional capability)")
	}
	data := randBytes(3 << 20)
	w.Write(data[:1<<20])
	rd, err := p.Peek()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	buf := make([]byte, 1000)
	if n, err := rd.ReadAt(buf, 1000); n != 1000 || err != nil || !bytes.Equal(buf, data[1000:2000]) {
		t.Fatalf("ReadAt before commit: %d %v", n, err)
	}
	w.Write(data[1<<20:])
	if n, _ := rd.ReadAt(buf, 3<<20-1000); n != 1000 || !bytes.Equal(buf, data[3<<20-1000:]) {
		t.Fatal("ReadAt of bytes written after Peek")
	}
	info, err := w.Commit(ctx, digest.FromBytes(data))
	if err != nil {
		t.Fatal(err)
	}
	// The handle still reads after the commit.
	if n, _ := rd.ReadAt(buf, 5000); n != 1000 || !bytes.Equal(buf, data[5000:6000]) {
		t.Fatal("ReadAt after commit")
	}
	del(t, s, info.Digest)
}
