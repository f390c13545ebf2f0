package oci_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

// BenchmarkManifestGetByTag is the server's cost of the hottest registry
// request, `GET /v2/<repo>/<name>/manifests/<tag>` (anonymous read), through
// the whole handler stack without a network.
func BenchmarkManifestGetByTag(b *testing.B) {
	e := apptest.New(b, "repositories:\n  - {key: d, format: oci, kind: local, tier: dev, anonymous_read: true}\n")
	put := func(path, ctype string, body []byte) {
		method := http.MethodPut
		if bytes.Contains([]byte(path), []byte("/uploads/")) {
			method = http.MethodPost // a monolithic upload: POST with the body
		}
		resp, out := e.Admin().Do(method, path, bytes.NewReader(body), "Content-Type", ctype)
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("PUT %s: %d %s", path, resp.StatusCode, out)
		}
	}
	digest := func(p []byte) string { h := sha256.Sum256(p); return "sha256:" + hex.EncodeToString(h[:]) }
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	put("/v2/d/app/blobs/uploads/?digest="+digest(cfg), "application/octet-stream", cfg)
	man := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}`, digest(cfg), len(cfg)))
	put("/v2/d/app/manifests/v1", "application/vnd.oci.image.manifest.v1+json", man)
	h := e.App.Server
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/v2/d/app/manifests/v1", nil)
			req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("GET: %d %s", w.Code, w.Body.String())
			}
		}
	})
}
