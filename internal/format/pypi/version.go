package pypi

import (
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// PEP 440 versions: parsing, normalisation and ordering.

var versionRE = regexp.MustCompile(`^v?` +
	`(?:(?P<epoch>[0-9]+)!)?` +
	`(?P<release>[0-9]+(?:\.[0-9]+)*)` +
	`(?:[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?` +
	`(?:-(?P<post_n1>[0-9]+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?)?` +
	`(?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?` +
	`(?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?$`)

var (
	reEpoch   = versionRE.SubexpIndex("epoch")
	reRelease = versionRE.SubexpIndex("release")
	rePreL    = versionRE.SubexpIndex("pre_l")
	rePreN    = versionRE.SubexpIndex("pre_n")
	rePostN1  = versionRE.SubexpIndex("post_n1")
	rePostL   = versionRE.SubexpIndex("post_l")
	rePostN2  = versionRE.SubexpIndex("post_n2")
	reDevL    = versionRE.SubexpIndex("dev_l")
	reDevN    = versionRE.SubexpIndex("dev_n")
	reLocal   = versionRE.SubexpIndex("local")
)

// version is a parsed PEP 440 version. Numbers are kept as decimal strings
// without leading zeros, so that any length compares correctly.
type version struct {
	epoch   string
	release []string
	pre     string // "a", "b", "rc" or ""
	preN    string
	post    bool
	postN   string
	dev     bool
	devN    string
	local   []string
}

// maxVersionLen bounds what is parsed.
const maxVersionLen = 128

// parseVersion parses a PEP 440 version (case-insensitive, surrounding
// white space ignored).
func parseVersion(s string) (*version, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) > maxVersionLen {
		return nil, false
	}
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return nil, false
	}
	v := &version{epoch: num(m[reEpoch])}
	for _, p := range strings.Split(m[reRelease], ".") {
		v.release = append(v.release, num(p))
	}
	if l := m[rePreL]; l != "" {
		switch l {
		case "alpha", "a":
			v.pre = "a"
		case "beta", "b":
			v.pre = "b"
		default:
			v.pre = "rc"
		}
		v.preN = num(m[rePreN])
	}
	if m[rePostN1] != "" {
		v.post, v.postN = true, num(m[rePostN1])
	} else if m[rePostL] != "" {
		v.post, v.postN = true, num(m[rePostN2])
	}
	if m[reDevL] != "" {
		v.dev, v.devN = true, num(m[reDevN])
	}
	if l := m[reLocal]; l != "" {
		v.local = strings.FieldsFunc(l, func(r rune) bool { return r == '-' || r == '_' || r == '.' })
	}
	return v, true
}

// num strips leading zeros ("" is 0).
func num(s string) string {
	s = strings.TrimLeft(s, "0")
	if s == "" {
		return "0"
	}
	return s
}

// String is the normalized form.
func (v *version) String() string {
	var b strings.Builder
	if v.epoch != "0" {
		b.WriteString(v.epoch + "!")
	}
	b.WriteString(strings.Join(v.release, "."))
	if v.pre != "" {
		b.WriteString(v.pre + v.preN)
	}
	if v.post {
		b.WriteString(".post" + v.postN)
	}
	if v.dev {
		b.WriteString(".dev" + v.devN)
	}
	if len(v.local) > 0 {
		ls := make([]string, len(v.local))
		for i, l := range v.local {
			if isDigits(l) {
				l = num(l)
			}
			ls[i] = l
		}
		b.WriteString("+" + strings.Join(ls, "."))
	}
	return b.String()
}

// prerelease reports whether v is a pre- or development release.
func (v *version) prerelease() bool { return v.pre != "" || v.dev }

// normalizeVersion returns the normalized form of a PEP 440 version, or s
// unchanged when it is not one.
func normalizeVersion(s string) string {
	if v, ok := parseVersion(s); ok {
		return v.String()
	}
	return s
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// cmpNum compares decimal strings without leading zeros.
func cmpNum(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// compareVersions orders PEP 440 versions as packaging does; strings that
// are not versions sort before every version, among themselves by text.
func compareVersions(a, b string) int {
	va, oka := parseVersion(a)
	vb, okb := parseVersion(b)
	switch {
	case !oka && !okb:
		return strings.Compare(a, b)
	case !oka:
		return -1
	case !okb:
		return 1
	}
	return va.compare(vb)
}

func (v *version) compare(o *version) int {
	if c := cmpNum(v.epoch, o.epoch); c != 0 {
		return c
	}
	// Release: trailing zeros do not count (1.0 == 1.0.0).
	ra, rb := trimZeros(v.release), trimZeros(o.release)
	for i := 0; i < len(ra) || i < len(rb); i++ {
		x, y := "0", "0"
		if i < len(ra) {
			x = ra[i]
		}
		if i < len(rb) {
			y = rb[i]
		}
		if c := cmpNum(x, y); c != 0 {
			return c
		}
	}
	if c := cmpPhase(v.preKey(), o.preKey()); c != 0 {
		return c
	}
	if c := cmpPhase(v.postKey(), o.postKey()); c != 0 {
		return c
	}
	if c := cmpPhase(v.devKey(), o.devKey()); c != 0 {
		return c
	}
	return cmpLocal(v.local, o.local)
}

func trimZeros(r []string) []string {
	n := len(r)
	for n > 0 && r[n-1] == "0" {
		n--
	}
	return r[:n]
}

// phase is one of packaging's comparison keys: -inf, +inf, or a
// (label, number) pair.
type phase struct {
	inf   int // -1, +1, or 0 for a value
	label string
	n     string
}

func cmpPhase(a, b phase) int {
	if a.inf != b.inf {
		if a.inf < b.inf {
			return -1
		}
		return 1
	}
	if a.inf != 0 {
		return 0
	}
	if c := strings.Compare(a.label, b.label); c != 0 { // "a" < "b" < "rc"
		return c
	}
	return cmpNum(a.n, b.n)
}

func (v *version) preKey() phase {
	switch {
	case v.pre == "" && !v.post && v.dev:
		return phase{inf: -1} // 1.0.dev0 sorts before 1.0a0
	case v.pre == "":
		return phase{inf: 1}
	}
	return phase{label: v.pre, n: v.preN}
}

func (v *version) postKey() phase {
	if !v.post {
		return phase{inf: -1}
	}
	return phase{n: v.postN}
}

func (v *version) devKey() phase {
	if !v.dev {
		return phase{inf: 1}
	}
	return phase{n: v.devN}
}

// cmpLocal: no local sorts first; segments compare numerically when both
// are numbers, numbers above strings, strings by text; a longer local
// sorts after its prefix.
func cmpLocal(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		dx, dy := isDigits(x), isDigits(y)
		var c int
		switch {
		case dx && dy:
			c = cmpBig(x, y)
		case dx:
			c = 1
		case dy:
			c = -1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

func cmpBig(x, y string) int {
	a, _ := new(big.Int).SetString(x, 10)
	b, _ := new(big.Int).SetString(y, 10)
	return a.Cmp(b)
}

// atoi64 parses a non-negative size.
func atoi64(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}
