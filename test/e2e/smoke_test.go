package e2e

import (
	"strings"
	"testing"
)

func TestServeStartsAndStops(t *testing.T) {
	s := StartServer(t, "")
	out, _, code := Curl(t, s.URL+"/healthz")
	if code != 0 || out != "ok\n" {
		t.Fatalf("healthz: %q (curl exit %d)", out, code)
	}
	out, _, _ = Curl(t, s.URL+"/readyz")
	if out != "ready\n" {
		t.Fatalf("readyz: %q", out)
	}
	s.Stop()
	if !strings.Contains(s.Log(), "stopped") {
		t.Fatalf("no graceful stop in log:\n%s", s.Log())
	}
}
