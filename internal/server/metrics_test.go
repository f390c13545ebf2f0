package server_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

// sample returns the value of the metric name whose labels include every
// given label="value" pair, and whether there is one.
func sample(text, name string, labels ...string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (len(rest) > 0 && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(rest, labels[i]+`="`+labels[i+1]+`"`) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64)
		if err == nil {
			return v, true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	e := apptest.New(t, apiConfig)
	admin := e.Admin()
	e.Put("raw-dev", "m/one.txt", "12345")
	e.Put("raw-dev", "m/two.txt", "1234567890")
	e.Put("raw-release", "r.txt", "abc")
	for range 3 {
		admin.Do(http.MethodGet, "/repository/raw-dev/m/one.txt", nil)
	}
	admin.Do(http.MethodGet, "/repository/raw-dev/m/missing.txt", nil)
	e.Anonymous().Do(http.MethodGet, "/repository/raw-dev/m/one.txt", nil)
	admin.Do(http.MethodGet, "/repository/no-such-repo-xyz/f", nil)
	admin.Do(http.MethodGet, "/api/v1/repositories", nil)

	text := e.Metrics()
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"coffer_http_requests_total", []string{"repository", "raw-dev", "format", "raw", "method", "PUT", "status", "201"}, 2},
		{"coffer_http_requests_total", []string{"repository", "raw-dev", "format", "raw", "method", "GET", "status", "200"}, 3},
		{"coffer_http_requests_total", []string{"repository", "raw-dev", "format", "raw", "method", "GET", "status", "404"}, 1},
		{"coffer_http_requests_total", []string{"repository", "raw-dev", "format", "raw", "method", "GET", "status", "401"}, 1},
		{"coffer_http_requests_total", []string{"repository", "raw-release", "format", "raw", "method", "PUT", "status", "201"}, 1},
		{"coffer_http_request_duration_seconds_count", []string{"repository", "raw-dev", "format", "raw", "method", "GET"}, 5},
		{"coffer_http_received_bytes_total", []string{"repository", "raw-dev", "format", "raw"}, 15},
		{"coffer_repository_bytes", []string{"repository", "raw-dev"}, 15},
		{"coffer_repository_bytes", []string{"repository", "raw-release"}, 3},
		{"coffer_repository_bytes", []string{"repository", "raw-all"}, 0},
		{"coffer_repository_assets", []string{"repository", "raw-dev"}, 2},
		{"coffer_blob_bytes", nil, 18},
		{"coffer_blobs", nil, 3},
	}
	for _, tt := range tests {
		got, ok := sample(text, tt.name, tt.labels...)
		if !ok || got != tt.want {
			t.Errorf("%s%v = %v (found %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	if v, ok := sample(text, "coffer_http_sent_bytes_total", "repository", "raw-dev"); !ok || v < 15 {
		t.Errorf("coffer_http_sent_bytes_total for raw-dev = %v, %v", v, ok)
	}
	if _, ok := sample(text, "coffer_http_request_duration_seconds_bucket", "repository", "raw-dev", "le", "+Inf"); !ok {
		t.Error("no latency histogram buckets")
	}
	// Unknown repositories do not become label values (no unbounded cardinality).
	if strings.Contains(text, "no-such-repo-xyz") {
		t.Error("an unknown repository key became a label value")
	}
	if v, ok := sample(text, "coffer_http_requests_total", "repository", "-", "method", "GET", "status", "404"); !ok || v < 1 {
		t.Errorf("request to an unknown repository not counted under repository=\"-\": %v %v", v, ok)
	}
	// A deleted artifact leaves the repository's logical usage.
	admin.Do(http.MethodDelete, "/repository/raw-dev/m/two.txt", nil)
	if v, _ := sample(e.Metrics(), "coffer_repository_bytes", "repository", "raw-dev"); v != 5 {
		t.Errorf("coffer_repository_bytes after delete = %v, want 5", v)
	}
}
