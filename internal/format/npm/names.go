package npm

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/cofferhq/coffer/internal/errs"
)

// Limits on names, following npm's validate-npm-package-name.
const maxNameLen = 214

// checkName reports whether name is a valid npm package name. strict is the
// rule for new packages (publish): lower case, no ~'!()*; otherwise legacy
// names a registry may still serve are accepted.
func checkName(name string, strict bool) error {
	invalid := func(why string) error {
		return errs.New(errs.Invalid, "invalid package name %q: %s", name, why)
	}
	switch {
	case name == "":
		return invalid("name is empty")
	case len(name) > maxNameLen:
		return invalid("name is longer than 214 characters")
	case strings.TrimSpace(name) != name:
		return invalid("name has leading or trailing spaces")
	case name[0] == '.' || name[0] == '_':
		return invalid("name cannot start with a period or an underscore")
	case name == "node_modules" || name == "favicon.ico":
		return invalid("name is not allowed")
	}
	parts := []string{name}
	if name[0] == '@' {
		scope, rest, ok := strings.Cut(name[1:], "/")
		if !ok || scope == "" || rest == "" {
			return invalid("a scoped name is @scope/name")
		}
		if rest[0] == '.' || rest[0] == '_' {
			return invalid("name cannot start with a period or an underscore")
		}
		parts = []string{scope, rest}
	}
	for _, p := range parts {
		for _, c := range p {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
			case c >= 'A' && c <= 'Z':
				if strict {
					return invalid("new package names must not have uppercase letters")
				}
			case strings.ContainsRune("~'!()*", c):
				if strict {
					return invalid("new package names must not contain ~'!()*")
				}
			default:
				return invalid("name can only contain URL-friendly characters")
			}
		}
	}
	return nil
}

// escapeName is a name as it appears in a registry URL: "@scope%2fname".
func escapeName(name string) string {
	if name[0] == '@' {
		scope, rest, _ := strings.Cut(name[1:], "/")
		return "@" + url.PathEscape(scope) + "%2f" + url.PathEscape(rest)
	}
	return url.PathEscape(name)
}

// baseName is the unscoped part of a name ("ui" for "@acme/ui").
func baseName(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// tarballFile is the canonical tarball file name of a version.
func tarballFile(name, version string) string { return baseName(name) + "-" + version + ".tgz" }

// tarballPath is where a version's tarball lives in a repository.
func tarballPath(name, file string) string { return name + "/-/" + file }

// packumentPath is where a remote repository caches an upstream packument.
// No tarball is named package.json, so it cannot collide.
func packumentPath(name string) string { return name + "/-/package.json" }

// checkTag refuses dist-tag names that npm would read as versions or
// ranges, and anything that is not URL-safe.
func checkTag(tag string) error {
	if tag == "" || len(tag) > 128 {
		return errs.New(errs.Invalid, "invalid dist-tag %q: 1 to 128 characters", tag)
	}
	if c := tag[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		return errs.New(errs.Invalid, "invalid dist-tag %q: it must start with a letter (a tag that looks like a version or range is ambiguous)", tag)
	}
	for _, c := range tag {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return errs.New(errs.Invalid, "invalid dist-tag %q: only letters, digits, '-', '.' and '_' are allowed", tag)
		}
	}
	return nil
}

// semver is a parsed semantic version (semver.org 2.0.0).
type semver struct {
	major, minor, patch uint64
	pre                 []string
}

// parseSemver parses a strict semantic version ("1.2.3-beta.1+build").
func parseSemver(s string) (semver, bool) {
	var v semver
	if s == "" || len(s) > 256 {
		return v, false
	}
	if i := strings.IndexByte(s, '+'); i >= 0 {
		if !validIdents(s[i+1:], false) {
			return v, false
		}
		s = s[:i]
	}
	pre := ""
	if i := strings.IndexByte(s, '-'); i >= 0 {
		s, pre = s[:i], s[i+1:]
		if !validIdents(pre, true) {
			return v, false
		}
		v.pre = strings.Split(pre, ".")
	}
	nums := strings.Split(s, ".")
	if len(nums) != 3 {
		return v, false
	}
	var out [3]uint64
	for i, n := range nums {
		if n == "" || len(n) > 1 && n[0] == '0' {
			return v, false
		}
		x, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			return v, false
		}
		out[i] = x
	}
	v.major, v.minor, v.patch = out[0], out[1], out[2]
	return v, true
}

func validIdents(s string, pre bool) bool {
	if s == "" {
		return false
	}
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		numeric := true
		for _, c := range id {
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				numeric = false
			default:
				return false
			}
		}
		if pre && numeric && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

// compare orders versions by semver precedence.
func (a semver) compare(b semver) int {
	for _, d := range [][2]uint64{{a.major, b.major}, {a.minor, b.minor}, {a.patch, b.patch}} {
		if d[0] != d[1] {
			if d[0] < d[1] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0
	case len(a.pre) == 0:
		return 1
	case len(b.pre) == 0:
		return -1
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		x, y := a.pre[i], b.pre[i]
		if x == y {
			continue
		}
		xn, xerr := strconv.ParseUint(x, 10, 64)
		yn, yerr := strconv.ParseUint(y, 10, 64)
		switch {
		case xerr == nil && yerr == nil:
			if xn < yn {
				return -1
			}
			return 1
		case xerr == nil:
			return -1
		case yerr == nil:
			return 1
		case x < y:
			return -1
		default:
			return 1
		}
	}
	switch {
	case len(a.pre) < len(b.pre):
		return -1
	case len(a.pre) > len(b.pre):
		return 1
	}
	return 0
}

// compareVersions orders version strings: valid versions by precedence,
// before invalid ones (legacy upstream data), which sort as strings.
func compareVersions(a, b string) int {
	va, oka := parseSemver(a)
	vb, okb := parseSemver(b)
	switch {
	case oka && okb:
		if c := va.compare(vb); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	case oka:
		return -1
	case okb:
		return 1
	}
	return strings.Compare(a, b)
}
