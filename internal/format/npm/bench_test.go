package npm_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/format/npm/npmtest"
)

const benchConfig = `repositories:
  - {key: npm-local, format: npm, kind: local, tier: release, anonymous_read: true}
  - {key: npm, format: npm, kind: virtual, members: [npm-local], anonymous_read: true}
`

// benchGet measures the server's own cost of a GET (routing, auth,
// resolution, the cached packument or the tarball), without a network.
func benchGet(b *testing.B, path string, header ...string) {
	e := apptest.New(b, benchConfig)
	for _, p := range npmtest.Upstream() {
		publish(b, e, "npm-local", p, "latest")
	}
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			e.App.Server.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

func BenchmarkPackumentFull(b *testing.B) {
	benchGet(b, "/repository/npm-local/@up%2fcore", "Accept", "application/json")
}

func BenchmarkPackumentAbbreviated(b *testing.B) {
	benchGet(b, "/repository/npm-local/@up%2fcore", "Accept", "application/vnd.npm.install-v1+json")
}

func BenchmarkPackumentVirtual(b *testing.B) {
	benchGet(b, "/repository/npm/@up%2fcore", "Accept", "application/vnd.npm.install-v1+json")
}

func BenchmarkTarball(b *testing.B) {
	benchGet(b, "/repository/npm-local/@up/core/-/core-1.3.0.tgz")
}
