package maven

import (
	"strings"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
)

var _ format.Coordinator = (*Format)(nil)

// ParseCoordinates implements format.Coordinator: "com.acme:lib:1.0.0"
// (groupId:artifactId:version), the component the deploys made.
func (*Format) ParseCoordinates(s string) (format.Artifact, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) != 3 {
		return format.Artifact{}, errs.New(errs.Invalid, "maven coordinates %q: write groupId:artifactId:version (com.acme:lib:1.0.0)", s)
	}
	for _, g := range strings.Split(parts[0], ".") {
		if err := checkSegment(g); err != nil {
			return format.Artifact{}, errs.New(errs.Invalid, "maven coordinates %q: groupId %q: %s", s, parts[0], errs.Message(err))
		}
	}
	for _, p := range parts[1:] {
		if err := checkSegment(p); err != nil {
			return format.Artifact{}, errs.New(errs.Invalid, "maven coordinates %q: %s", s, errs.Message(err))
		}
	}
	return format.Artifact{Name: parts[0] + ":" + parts[1], Version: parts[2]}, nil
}
