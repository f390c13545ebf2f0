package raw

import (
	"strings"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
)

var _ format.Coordinator = (*Format)(nil)

// ParseCoordinates implements format.Coordinator: a raw artifact is its
// path in the repository ("builds/app-1.2.tar.gz").
func (*Format) ParseCoordinates(s string) (format.Artifact, error) {
	p := strings.TrimPrefix(s, "/")
	segs := strings.Split(p, "/")
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\\\x00") {
			return format.Artifact{}, errs.New(errs.Invalid, "raw coordinates %q: not a file path inside the repository", s)
		}
	}
	return format.Artifact{Name: p, Path: p}, nil
}
