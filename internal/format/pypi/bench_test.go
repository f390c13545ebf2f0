package pypi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

// benchProject uploads a project of n wheels.
func benchProject(b *testing.B, n int) *apptest.Env {
	e := apptest.New(b, "repositories:\n  - {key: r, format: pypi, kind: local, anonymous_read: true}\n")
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("1.%d", i)
		name, whl := wheel(b, "big", v, metadataFor("big", v, "Requires-Python: >=3.8"))
		mustUpload(b, e, "r", "big", v, name, whl)
	}
	return e
}

// BenchmarkSimplePage measures the server's own cost of a cached project
// page of 500 files (routing, auth, generation check, negotiation, copy).
func BenchmarkSimplePage(b *testing.B) {
	e := benchProject(b, 500)
	for _, tc := range []struct{ name, accept, enc string }{
		{"html", "text/html", ""}, {"json", "application/vnd.pypi.simple.v1+json", ""}, {"json-gzip", "application/vnd.pypi.simple.v1+json", "gzip"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/repository/r/simple/big/", nil)
			req.Header.Set("Accept", tc.accept)
			if tc.enc != "" {
				req.Header.Set("Accept-Encoding", tc.enc)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w := &discard{h: http.Header{}}
					e.App.Server.ServeHTTP(w, req)
					if w.code != 200 {
						b.Fatalf("status %d", w.code)
					}
				}
			})
		})
	}
}

// discard is a ResponseWriter that keeps nothing (a recorder's buffer
// would dominate the measurement).
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header { return d.h }
func (d *discard) Write(b []byte) (int, error) {
	if d.code == 0 {
		d.code = 200
	}
	return len(b), nil
}
func (d *discard) WriteHeader(code int) { d.code = code }
