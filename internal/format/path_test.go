package format

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cofferhq/coffer/internal/errs"
)

func TestSplitPath(t *testing.T) {
	tests := []struct {
		in       string
		segs     []string
		trailing bool
	}{
		{"", nil, false},
		{"/", nil, true},
		{"a", []string{"a"}, false},
		{"a/b/c.txt", []string{"a", "b", "c.txt"}, false},
		{"a/b/", []string{"a", "b"}, true},
		{"with%20space/x", []string{"with space", "x"}, false},
		{"@scope%2fname", []string{"@scope/name"}, false},
		{"...", []string{"..."}, false},
		{"..a/a..", []string{"..a", "a.."}, false},
		{".hidden", []string{".hidden"}, false},
		{"caf%C3%A9", []string{"café"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			segs, trailing, err := SplitPath(tt.in)
			if err != nil {
				t.Fatalf("SplitPath(%q): %v", tt.in, err)
			}
			if !slices.Equal(segs, tt.segs) || trailing != tt.trailing {
				t.Fatalf("SplitPath(%q) = %q, %v; want %q, %v", tt.in, segs, trailing, tt.segs, tt.trailing)
			}
		})
	}
}

func TestSplitPathRefusesTraversal(t *testing.T) {
	for _, in := range []string{
		"..", ".", "../etc/passwd", "a/../b", "a/./b", "a/..", "a/../",
		"%2e%2e", "%2E%2E", "%2E%2e/x", ".%2e/x", "%2e./x", "%2e", "a/%2e/b",
		"a%2f..%2fb", "a%2F..%2Fb", "%2f..", "..%2f", "x/%2e%2e%2fetc",
		"..%5c", "..%5Cwindows", "a\\b", "a%5cb", "\\",
		"a%00b", "%00", "a\x00b", "a%0ab", "a%0d%0aSet-Cookie:x", "a%7f", "a\tb",
		"/abs", "//abs", "a//b", "a/%2f/../x",
		"%", "%zz", "a%2", "%g0",
		"a/%ff", "a/%ff%ff", "%c3", "%c0%ae%c0%ae", "a\xffb", "%ed%a0%80",
	} {
		t.Run(in, func(t *testing.T) {
			segs, _, err := SplitPath(in)
			if err == nil {
				t.Fatalf("SplitPath(%q) accepted %q", in, segs)
			}
			if !errors.Is(err, errs.Invalid) {
				t.Fatalf("SplitPath(%q): error %v is not errs.Invalid", in, err)
			}
			if errs.Message(err) == "" || errs.Message(err) == "internal server error" {
				t.Fatalf("SplitPath(%q): error has no message for the client: %v", in, err)
			}
		})
	}
}

// checkAccepted asserts what every accepted path guarantees.
func checkAccepted(t *testing.T, in string, segs []string) {
	t.Helper()
	for _, s := range segs {
		if s == "" {
			t.Fatalf("SplitPath(%q) accepted an empty segment: %q", in, segs)
		}
		for _, part := range strings.Split(s, "/") {
			if part == "." || part == ".." {
				t.Fatalf("SplitPath(%q) accepted a traversal segment: %q", in, segs)
			}
		}
		if !utf8.ValidString(s) {
			t.Fatalf("SplitPath(%q) accepted invalid UTF-8: %q", in, segs)
		}
		if strings.ContainsRune(s, '\\') {
			t.Fatalf("SplitPath(%q) accepted a backslash: %q", in, segs)
		}
		for _, c := range s {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("SplitPath(%q) accepted a control character: %q", in, segs)
			}
		}
	}
}

func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{
		"", "/", "a/b/c", "a/b/", "../x", "%2e%2e/x", "%2E%2e", ".%2e", "a%2f..%2fb", "..%5c", "a\\b",
		"%00", "//abs", "%2f", "@scope%2fname/-/name-1.0.0.tgz", "%", "caf%C3%A9", "a%0a", "%2e%2e%2f%2e%2e", "%c0%ae%c0%ae", "a/%ff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		segs, trailing, err := SplitPath(in)
		if err != nil {
			if segs != nil {
				t.Fatalf("SplitPath(%q) returned segments with an error", in)
			}
			return
		}
		checkAccepted(t, in, segs)
		if len(segs) == 0 && in != "" && in != "/" {
			t.Fatalf("SplitPath(%q) accepted no segments", in)
		}
		// An accepted path round-trips through escaping.
		esc := make([]string, len(segs))
		for i, s := range segs {
			esc[i] = url.PathEscape(s)
		}
		again := strings.Join(esc, "/")
		if trailing && len(segs) > 0 {
			again += "/"
		}
		segs2, trailing2, err := SplitPath(again)
		if err != nil || !slices.Equal(segs, segs2) || (len(segs) > 0 && trailing != trailing2) {
			t.Fatalf("SplitPath(%q) = %q; re-escaped %q gives %q, %v, %v", in, segs, again, segs2, trailing2, err)
		}
	})
}
