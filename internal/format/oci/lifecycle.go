package oci

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/meta"
)

var (
	_ format.Coordinator = (*Format)(nil)
	_ format.Grapher     = (*Format)(nil)
)

// ParseCoordinates implements format.Coordinator: "team/api@sha256:<hex>"
// or "team/api:v2.3.0" (the image name below the repository key).
func (*Format) ParseCoordinates(s string) (format.Artifact, error) {
	bad := func(why string, args ...any) (format.Artifact, error) {
		return format.Artifact{}, errs.New(errs.Invalid, "oci coordinates %q: %s (write team/api:v2.3.0 or team/api@sha256:<hex>)", s, fmt.Sprintf(why, args...))
	}
	if name, ref, ok := strings.Cut(s, "@"); ok {
		if !validName(name) {
			return bad("%q is not a valid image name", name)
		}
		d, ok := parseDigest(ref)
		if !ok {
			return bad("%q is not a sha256 or sha512 digest", ref)
		}
		return format.Artifact{Name: name, Version: d.String()}, nil
	}
	i := strings.LastIndex(s, ":")
	if i < 0 || strings.Contains(s[i:], "/") {
		return bad("no tag or digest")
	}
	name, tag := s[:i], s[i+1:]
	if !validName(name) {
		return bad("%q is not a valid image name", name)
	}
	if !tagPattern.MatchString(tag) {
		return bad("%q is not a valid tag", tag)
	}
	return format.Artifact{Name: name, Tag: tag}, nil
}

// LinkPath implements format.Grapher: a layer or config blob is an asset
// of its own under the image name.
func (*Format) LinkPath(name string, l meta.Link) string {
	if l.Kind != "blob" {
		return ""
	}
	d, ok := parseDigest(l.Target)
	if !ok {
		return ""
	}
	return blobPath(name, d)
}

// cosignTag is cosign's tag scheme for signatures, attestations and SBOMs
// attached to a digest.
var cosignTag = regexp.MustCompile(`^(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})\.(sig|att|sbom)$`)

// AttachedTo implements format.Grapher.
func (*Format) AttachedTo(tag string) string {
	m := cosignTag.FindStringSubmatch(tag)
	if m == nil {
		return ""
	}
	d := digest.Digest(m[1] + ":" + m[2])
	if d.Validate() != nil {
		return ""
	}
	return d.String()
}
