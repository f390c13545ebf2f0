package oci_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

// The per-node caches of tag resolution and small contents never serve
// what changed: a tag moved by a push, a manifest deleted through the
// registry, and a file deleted through the management API are seen by the
// next GET.
func TestCachesFollowChanges(t *testing.T) {
	e := apptest.New(t, "repositories:\n  - {key: d, format: oci, kind: local, tier: dev}\n")
	admin := e.Admin()
	sha := func(p []byte) string { h := sha256.Sum256(p); return "sha256:" + hex.EncodeToString(h[:]) }
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	if resp, body := admin.Do(http.MethodPost, "/v2/d/app/blobs/uploads/?digest="+sha(cfg), bytes.NewReader(cfg)); resp.StatusCode != 201 {
		t.Fatalf("blob: %d %s", resp.StatusCode, body)
	}
	manifest := func(n int) []byte {
		return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[],"annotations":{"n":"%d"}}`, sha(cfg), len(cfg), n))
	}
	push := func(ref string, m []byte) {
		t.Helper()
		resp, body := admin.Do(http.MethodPut, "/v2/d/app/manifests/"+ref, bytes.NewReader(m), "Content-Type", "application/vnd.oci.image.manifest.v1+json")
		if resp.StatusCode != 201 {
			t.Fatalf("push %s: %d %s", ref, resp.StatusCode, body)
		}
	}
	get := func(ref string) (int, string) {
		t.Helper()
		resp, body := admin.Do(http.MethodGet, "/v2/d/app/manifests/"+ref, nil, "Accept", "application/vnd.oci.image.manifest.v1+json")
		return resp.StatusCode, body
	}
	m1, m2 := manifest(1), manifest(2)
	push("v1", m1)
	for range 3 { // warm the caches
		if code, body := get("v1"); code != 200 || body != string(m1) {
			t.Fatalf("GET v1: %d %s", code, body)
		}
	}
	push("v1", m2) // the tag moves
	if code, body := get("v1"); code != 200 || body != string(m2) {
		t.Fatalf("GET v1 after the tag moved: %d %s", code, body)
	}
	if code, body := get(sha(m1)); code != 200 || body != string(m1) {
		t.Fatalf("GET the first manifest by digest: %d %s", code, body)
	}
	if resp, body := admin.Do(http.MethodDelete, "/v2/d/app/manifests/"+sha(m2), nil); resp.StatusCode != 202 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	if code, _ := get("v1"); code != 404 {
		t.Fatalf("GET v1 after its manifest was deleted: %d", code)
	}
	if code, _ := get(sha(m2)); code != 404 {
		t.Fatalf("GET the deleted manifest by digest: %d", code)
	}
	// Deleted through the management API (by path): every name's
	// generation moves.
	if resp, body := admin.Do(http.MethodDelete, "/api/v1/repositories/d/artifacts/app/_manifests/"+sha(m1), nil); resp.StatusCode != 200 {
		t.Fatalf("management delete: %d %s", resp.StatusCode, body)
	}
	if code, _ := get(sha(m1)); code != 404 {
		t.Fatalf("GET a manifest deleted through the API: %d", code)
	}
}
