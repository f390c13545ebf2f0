package pypi

import (
	"sort"
	"testing"
)

func TestNormalizeVersion(t *testing.T) {
	for in, want := range map[string]string{
		"1.0":            "1.0",
		"v1.0":           "1.0",
		"1.0.0-beta1":    "1.0.0b1",
		"1.0ALPHA":       "1.0a0",
		"1.0-pre.2":      "1.0rc2",
		"1.0c1":          "1.0rc1",
		"1.0-1":          "1.0.post1",
		"1.0.rev3":       "1.0.post3",
		"1.0_DEV_7":      "1.0.dev7",
		"01.002":         "1.2",
		"1!2.0":          "1!2.0",
		"0!2.0":          "2.0",
		"1.0+Ubuntu-1.x": "1.0+ubuntu.1.x",
		"1.0+001":        "1.0+1",
		" 2.1 ":          "2.1",
	} {
		if got := normalizeVersion(in); got != want {
			t.Errorf("normalizeVersion(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "1.0.", "abc", "1.0-foo", "1..0", "1.0+", "1.0+a..b", "١.٠"} {
		if _, ok := parseVersion(bad); ok {
			t.Errorf("parseVersion(%q) accepted", bad)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	// PEP 440's own example order, plus epochs and locals.
	ordered := []string{
		"not-a-version",
		"1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12",
		"1.0b1.dev456", "1.0b2", "1.0b2.post345.dev456", "1.0b2.post345",
		"1.0rc1.dev456", "1.0rc1", "1.0", "1.0+abc.5", "1.0+abc.7", "1.0+5",
		"1.0.post456.dev34", "1.0.post456", "1.0.15", "1.1.dev1",
		"2.0", "10.0", "99999999999999999999999.0", "1!0.1",
	}
	shuffled := append([]string(nil), ordered...)
	sort.Slice(shuffled, func(i, j int) bool { return shuffled[i] > shuffled[j] })
	sort.SliceStable(shuffled, func(i, j int) bool { return compareVersions(shuffled[i], shuffled[j]) < 0 })
	for i := range ordered {
		if shuffled[i] != ordered[i] {
			t.Fatalf("order:\n got %v\nwant %v", shuffled, ordered)
		}
	}
	if compareVersions("1.0", "1.0.0") != 0 || compareVersions("1.0+1", "1.0+01") != 0 {
		t.Error("equal versions compare unequal")
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"Friendly-Bard": "friendly-bard", "FRIENDLY.BARD": "friendly-bard", "friendly__bard": "friendly-bard",
		"friendly_-.bard": "friendly-bard", "a": "a",
	} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q", in, got)
		}
	}
	for _, ok := range []string{"a", "A1", "my-pkg", "my_pkg.x", "0"} {
		if checkName(ok) != nil {
			t.Errorf("checkName(%q) refused", ok)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "a b", "ä", "../x", "a/b", ".a", "a\x00"} {
		if checkName(bad) == nil {
			t.Errorf("checkName(%q) accepted", bad)
		}
	}
}

func TestParseFilename(t *testing.T) {
	tests := []struct {
		file, project          string
		kind, name, ver, pyver string
	}{
		{"my_pkg-1.0.0-py3-none-any.whl", "", kindWheel, "my_pkg", "1.0.0", "py3"},
		{"my_pkg-1.0.0-1-cp311-cp311-linux_x86_64.whl", "my-pkg", kindWheel, "my_pkg", "1.0.0", "cp311"},
		{"my-pkg-1.0.0.tar.gz", "my-pkg", kindSdist, "my-pkg", "1.0.0", "source"},
		{"my_pkg-1.0.0.tar.gz", "my-pkg", kindSdist, "my_pkg", "1.0.0", "source"},
		{"my-pkg-1.0.0.tar.gz", "", kindSdist, "my-pkg", "1.0.0", "source"},
		{"pkg-2.0-1.zip", "pkg", kindSdist, "pkg", "2.0-1", "source"},
	}
	for _, tt := range tests {
		d, err := parseFilename(tt.file, tt.project)
		if err != nil || d.Kind != tt.kind || d.Name != tt.name || d.Version != tt.ver || d.PyVersion != tt.pyver {
			t.Errorf("parseFilename(%q, %q) = %+v, %v", tt.file, tt.project, d, err)
		}
	}
	for _, bad := range [][2]string{
		{"pkg-1.0.egg", ""}, {"pkg-1.0.exe", ""}, {"pkg-1.0-py3-any.whl", ""}, {"../pkg-1.0.tar.gz", ""},
		{"pkg 1.0.tar.gz", ""}, {"other-1.0.tar.gz", "pkg"}, {"other-1.0-py3-none-any.whl", "pkg"},
		{"pkg.tar.gz", ""}, {"pkg-.tar.gz", ""}, {".whl", ""}, {"pkg-1.0--py3-none-any.whl", ""},
	} {
		if d, err := parseFilename(bad[0], bad[1]); err == nil {
			t.Errorf("parseFilename(%q, %q) accepted: %+v", bad[0], bad[1], d)
		}
	}
}
