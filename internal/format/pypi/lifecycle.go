package pypi

import (
	"strings"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
)

var _ format.Coordinator = (*Format)(nil)

// ParseCoordinates implements format.Coordinator: "acme-lib==1.0.0" (the
// project name in any spelling PEP 503 normalises to the same).
func (*Format) ParseCoordinates(s string) (format.Artifact, error) {
	name, version, ok := strings.Cut(s, "==")
	name, version = strings.TrimSpace(name), strings.TrimSpace(version)
	if !ok || name == "" || version == "" {
		return format.Artifact{}, errs.New(errs.Invalid, "pypi coordinates %q: write project==version (acme-lib==1.0.0)", s)
	}
	if len(name) > maxNameLen || !validName.MatchString(name) {
		return format.Artifact{}, errs.New(errs.Invalid, "pypi coordinates %q: %q is not a valid project name", s, name)
	}
	if len(version) > 128 || strings.ContainsAny(version, "/\\ \t\r\n=") {
		return format.Artifact{}, errs.New(errs.Invalid, "pypi coordinates %q: %q is not a version", s, version)
	}
	return format.Artifact{Name: normalize(name), Version: version}, nil
}
