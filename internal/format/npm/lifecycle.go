package npm

import (
	"strings"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
)

var _ format.Coordinator = (*Format)(nil)

// ParseCoordinates implements format.Coordinator: "@acme/ui@1.4.0",
// "left-pad@1.3.0".
func (*Format) ParseCoordinates(s string) (format.Artifact, error) {
	i := strings.LastIndex(s, "@")
	if i <= 0 {
		return format.Artifact{}, errs.New(errs.Invalid, "npm coordinates %q: write name@version (@acme/ui@1.4.0)", s)
	}
	name, version := s[:i], s[i+1:]
	if err := checkName(name, false); err != nil {
		return format.Artifact{}, errs.New(errs.Invalid, "npm coordinates %q: %v", s, err)
	}
	if version == "" || len(version) > 256 || strings.ContainsAny(version, "/\\ \t\r\n") {
		return format.Artifact{}, errs.New(errs.Invalid, "npm coordinates %q: %q is not a version", s, version)
	}
	return format.Artifact{Name: name, Version: version}, nil
}
