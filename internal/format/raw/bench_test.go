package raw_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

// BenchmarkGetSmall measures the server's own cost of a small-file GET
// (routing, auth, metadata lookup, ServeContent), without a network.
func BenchmarkGetSmall(b *testing.B) {
	e := apptest.New(b, "repositories:\n  - {key: r, format: raw, kind: local, anonymous_read: true}\n")
	e.Put("r", "small.txt", string(bytes.Repeat([]byte("x"), 1024)))
	req := httptest.NewRequest(http.MethodGet, "/repository/r/small.txt", nil)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			e.App.Server.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}

// BenchmarkPutSmall measures a durable 1 KiB upload (blob fsync + metadata commit).
func BenchmarkPutSmall(b *testing.B) {
	e := apptest.New(b, "repositories:\n  - {key: r, format: raw, kind: local}\n")
	body := bytes.Repeat([]byte("y"), 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body[0] = byte(i)
		body[1] = byte(i >> 8)
		body[2] = byte(i >> 16)
		req := httptest.NewRequest(http.MethodPut, "/repository/r/f/"+strconv.Itoa(i), bytes.NewReader(body))
		req.SetBasicAuth("admin", apptest.AdminPassword)
		w := httptest.NewRecorder()
		e.App.Server.ServeHTTP(w, req)
		if w.Code != 201 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// genBody yields n bytes without holding them.
type genBody struct {
	left int64
	buf  []byte
}

func (g *genBody) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n := copy(p, g.buf)
	g.left -= int64(n)
	return n, nil
}

// BenchmarkUploadBig measures a 512 MiB upload over loopback HTTP (the
// client runs in the same process): sha256 + sha1 + md5 and the fsync.
func BenchmarkUploadBig(b *testing.B) {
	e := apptest.New(b, "repositories:\n  - {key: r, format: raw, kind: local}\n")
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + i>>8)
	}
	const n = 512 << 20
	b.SetBytes(n)
	for i := 0; i < b.N; i++ {
		buf[0] = byte(i)
		req := e.Request(http.MethodPut, "/repository/r/big.bin", &genBody{n, buf}, "", "")
		req.ContentLength = n
		resp, body := e.Send(req)
		if resp.StatusCode/100 != 2 {
			b.Fatalf("%s: %s", resp.Status, body)
		}
	}
}
