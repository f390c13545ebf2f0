package maven_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

// BenchmarkMetadata measures the server's own cost of maven-metadata.xml
// for an artifact with 1000 versions: cached (routing, auth, generation
// check, copy) and regenerated after every write (listing and parsing 1000
// files, sorting versions, encoding).
func BenchmarkMetadata(b *testing.B) {
	e := apptest.New(b, "repositories:\n  - {key: r, format: maven, kind: local, anonymous_read: true}\n")
	for i := 0; i < 1000; i++ {
		v := fmt.Sprintf("1.%d.%d", i/100, i%100)
		resp, body := e.Do(http.MethodPut, "/repository/r/com/bench/many/"+v+"/many-"+v+".jar", nil)
		if resp.StatusCode != 201 {
			b.Fatalf("PUT: %d %s", resp.StatusCode, body)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/repository/r/com/bench/many/maven-metadata.xml", nil)
	serve := func(b *testing.B) {
		w := &discard{h: http.Header{}}
		e.App.Server.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
	}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				serve(b)
			}
		})
	})
	b.Run("regenerated", func(b *testing.B) {
		rp, _ := e.App.Repos.Repo("r")
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			e.App.Repos.Bump(rp.ID, "com.bench:many")
			serve(b)
		}
	})
}

// discard is a ResponseWriter that keeps nothing.
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
