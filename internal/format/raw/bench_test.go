package raw_test

import (
	"bytes"
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
