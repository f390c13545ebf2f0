package maven

import (
	"math/big"
	"sort"
	"strings"
)

// CompareVersions orders two Maven versions the way Maven's
// ComparableVersion does, for the cases that occur in practice: numeric
// parts compare as numbers (1.10 > 1.9), trailing zeros do not count
// (1.0 = 1), and known qualifiers order
// alpha < beta < milestone < rc < snapshot < release < sp, with unknown
// qualifiers after sp in lexical order and a number after any qualifier.
func CompareVersions(a, b string) int { return compareItems(versionItems(a), versionItems(b)) }

func compareItems(ia, ib []item) int {
	for i := 0; i < len(ia) || i < len(ib); i++ {
		var x, y item
		if i < len(ia) {
			x = ia[i]
		} else {
			x = padding(ib[i])
		}
		if i < len(ib) {
			y = ib[i]
		} else {
			y = padding(ia[i])
		}
		if c := x.cmp(y); c != 0 {
			return c
		}
	}
	return 0
}

// SortVersions sorts versions in Maven order, oldest first (stable for
// versions that compare equal).
func SortVersions(vs []string) {
	type keyed struct {
		v     string
		items []item
	}
	ks := make([]keyed, len(vs))
	for i, v := range vs {
		ks[i] = keyed{v, versionItems(v)}
	}
	sort.SliceStable(ks, func(i, j int) bool { return compareItems(ks[i].items, ks[j].items) < 0 })
	for i := range ks {
		vs[i] = ks[i].v
	}
}

type item struct {
	num   *big.Int // nil for a qualifier
	qual  string
	empty bool // padding: equals 0 and the release qualifier
}

func padding(other item) item { return item{empty: true} }

// qualifier ranks; unknown qualifiers rank after sp.
var qualRank = map[string]int{
	"alpha": 1, "a": 1, "beta": 2, "b": 2, "milestone": 3, "m": 3,
	"rc": 4, "cr": 4, "snapshot": 5, "": 6, "ga": 6, "final": 6, "release": 6, "sp": 7,
}

func rank(q string) (int, bool) {
	r, ok := qualRank[q]
	return r, ok
}

func (x item) cmp(y item) int {
	switch {
	case x.empty && y.empty:
		return 0
	case x.empty:
		return -y.cmp(x)
	case y.empty:
		if x.num != nil {
			return x.num.Sign()
		}
		return qualCmp(x.qual, "")
	case x.num != nil && y.num != nil:
		return x.num.Cmp(y.num)
	case x.num != nil:
		return 1 // a number is newer than any qualifier
	case y.num != nil:
		return -1
	}
	return qualCmp(x.qual, y.qual)
}

func qualCmp(a, b string) int {
	ra, oka := rank(a)
	rb, okb := rank(b)
	switch {
	case oka && okb:
		return cmpInt(ra, rb)
	case oka:
		return -1
	case okb:
		return 1
	}
	return strings.Compare(a, b)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// versionItems splits a version at '.', '-' and digit/letter transitions
// and drops trailing zero and release items.
func versionItems(v string) []item {
	v = strings.ToLower(v)
	var out []item
	start := 0
	flush := func(end int) {
		s := v[start:end]
		if s == "" {
			return
		}
		if s[0] >= '0' && s[0] <= '9' {
			n, _ := new(big.Int).SetString(s, 10)
			out = append(out, item{num: n})
		} else {
			out = append(out, item{qual: s})
		}
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '.' || c == '-' {
			flush(i)
			start = i + 1
			continue
		}
		if i > start {
			p := v[i-1]
			if (p >= '0' && p <= '9') != (c >= '0' && c <= '9') {
				flush(i)
				start = i
			}
		}
	}
	flush(len(v))
	// Trailing nulls (0, "", ga, final, release) do not count.
	for len(out) > 0 {
		l := out[len(out)-1]
		if l.num != nil && l.num.Sign() == 0 {
			out = out[:len(out)-1]
			continue
		}
		if l.num == nil {
			if r, ok := rank(l.qual); ok && r == 6 {
				out = out[:len(out)-1]
				continue
			}
		}
		break
	}
	return out
}
