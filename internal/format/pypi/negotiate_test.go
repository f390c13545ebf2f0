package pypi

import "testing"

func TestNegotiate(t *testing.T) {
	tests := []struct{ accept, format, want string }{
		{"", "", typeHTML},
		{"*/*", "", typeHTML},
		{"text/html", "", typeHTML},
		// pip 23.x
		{"application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01", "", typeJSON},
		{"application/vnd.pypi.simple.v1+html, text/html;q=0.5", "", typeHTMLv1},
		{"application/vnd.pypi.simple.latest+json", "", typeJSON},
		{"application/vnd.pypi.simple.v1+json;q=0.5, */*;q=0.1", "", typeJSON},
		{"application/*", "", typeHTMLv1},
		{"application/json", "", ""},
		{"text/html;q=0", "", ""},
		{"*/*;q=0.1, text/html;q=0", "", typeHTMLv1},
		{"text/html", typeJSON, typeJSON},
	}
	for _, tt := range tests {
		if got := negotiate(tt.accept, tt.format); got != tt.want {
			t.Errorf("negotiate(%q, %q) = %q, want %q", tt.accept, tt.format, got, tt.want)
		}
	}
}
