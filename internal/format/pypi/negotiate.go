package pypi

import (
	"strconv"
	"strings"
)

// Content types of the simple index (PEP 691).
const (
	typeJSON     = "application/vnd.pypi.simple.v1+json"
	typeHTMLv1   = "application/vnd.pypi.simple.v1+html"
	typeHTML     = "text/html"
	typeLatestJS = "application/vnd.pypi.simple.latest+json"
	typeLatestHT = "application/vnd.pypi.simple.latest+html"
)

// offers in the order that breaks ties: plain HTML first, so that "*/*"
// (curl, old clients) gets what PEP 503 promised.
var offers = []string{typeHTML, typeHTMLv1, typeJSON}

// negotiate picks the representation of a simple page from the Accept
// header, or from a ?format= query (PEP 691's optional override). It
// returns "" when nothing acceptable is offered (406).
func negotiate(accept, format string) string {
	if format != "" {
		accept = format
	}
	accept = strings.TrimSpace(accept)
	if accept == "" {
		return typeHTML
	}
	best, bestQ, bestSpec := "", 0.0, -1
	for _, offer := range offers {
		q, spec := quality(accept, offer)
		if q > bestQ || (q == bestQ && q > 0 && spec > bestSpec) {
			best, bestQ, bestSpec = offer, q, spec
		}
	}
	return best
}

// quality is the q an Accept header gives offer, and how specific the
// matching range was (2 exact, 1 type/*, 0 */*); q 0 means not acceptable.
func quality(accept, offer string) (float64, int) {
	otype, _, _ := strings.Cut(offer, "/")
	q, spec := 0.0, -1
	n := 0
	for _, part := range strings.Split(accept, ",") {
		if n++; n > 50 {
			break
		}
		mr, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		mr = strings.ToLower(strings.TrimSpace(mr))
		switch mr {
		case typeLatestJS:
			mr = typeJSON
		case typeLatestHT:
			mr = typeHTMLv1
		}
		s := -1
		switch {
		case mr == offer:
			s = 2
		case mr == otype+"/*":
			s = 1
		case mr == "*/*":
			s = 0
		}
		if s < spec || s < 0 {
			continue
		}
		pq := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f <= 1 {
					pq = f
				}
			}
		}
		if s > spec || pq > q {
			q, spec = pq, s
		}
	}
	return q, spec
}
