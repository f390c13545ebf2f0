package apptest

import (
	"net/http"
	"testing"
)

func TestEnvServes(t *testing.T) {
	e := New(t, "repositories:\n  - {key: raw-dev, format: raw, kind: local}\n")
	e.Put("raw-dev", "a.txt", "hello")
	resp, body := e.Do(http.MethodGet, "/repository/raw-dev/a.txt", nil)
	if resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
}
