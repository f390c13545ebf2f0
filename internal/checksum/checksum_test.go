package checksum

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"testing"
)

func TestHasherMatchesStdlib(t *testing.T) {
	data := bytes.Repeat([]byte("coffer checksum "), 100_000) // 1.6 MB, several chunks
	h := NewHasher(SHA1, MD5)
	// Write in odd-sized pieces, reusing the caller's buffer.
	buf := make([]byte, 7777)
	r := bytes.NewReader(data)
	for {
		n, err := r.Read(buf)
		h.Write(buf[:n])
		for i := range buf {
			buf[i] = 0
		}
		if err == io.EOF {
			break
		}
	}
	s := h.Sums()
	s1 := sha1.Sum(data)
	m5 := md5.Sum(data)
	if s[SHA1] != hex.EncodeToString(s1[:]) || s[MD5] != hex.EncodeToString(m5[:]) {
		t.Fatalf("sums = %v", s)
	}
}

func TestVerify(t *testing.T) {
	computed := Sums{SHA1: "aa", MD5: "bb"}
	if msg := Verify(Sums{SHA1: "AA"}, computed); msg != "" {
		t.Fatalf("case-insensitive match failed: %s", msg)
	}
	if msg := Verify(Sums{MD5: "cc"}, computed); msg == "" {
		t.Fatal("mismatch not reported")
	}
}

func BenchmarkHasher(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	h := NewHasher(SHA1, MD5)
	for i := 0; i < b.N; i++ {
		h.Write(buf)
	}
	h.Sums()
}
