package maven

import (
	"context"
	"encoding/xml"
	"io"
	"strings"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/repo"
)

// maxPOM bounds the POM we parse; real ones are a few KiB.
const maxPOM = 8 << 20

// POM is what Coffer checks of an uploaded pom.xml.
type POM struct {
	XMLName    xml.Name `xml:"project"`
	GroupID    string   `xml:"groupId"`
	ArtifactID string   `xml:"artifactId"`
	Version    string   `xml:"version"`
	Packaging  string   `xml:"packaging"`
	Parent     *struct {
		GroupID    string `xml:"groupId"`
		ArtifactID string `xml:"artifactId"`
		Version    string `xml:"version"`
	} `xml:"parent"`
}

// ParsePOM parses a POM and checks that it describes c: a <project>
// document whose artifactId, groupId and version (inherited from <parent>
// where absent) are c's. Values that use properties (${revision}) are not
// compared.
func ParsePOM(r io.Reader, c *Coord) (*POM, error) {
	dec := xml.NewDecoder(io.LimitReader(r, maxPOM))
	dec.Strict = true
	var p POM
	if err := dec.Decode(&p); err != nil {
		if se, ok := err.(xml.UnmarshalError); ok && strings.Contains(string(se), "expected element type <project>") {
			return nil, errs.New(errs.Invalid, "%s is not a POM: its root element is not <project>", c.Path)
		}
		return nil, errs.Wrap(errs.Invalid, err, "%s is not a well-formed POM: %v", c.Path, err)
	}
	g, v := p.GroupID, p.Version
	if p.Parent != nil {
		if g == "" {
			g = p.Parent.GroupID
		}
		if v == "" {
			v = p.Parent.Version
		}
	}
	same := func(got, want string) bool { return got == want || strings.Contains(got, "${") }
	switch {
	case strings.TrimSpace(p.ArtifactID) == "":
		return nil, errs.New(errs.Invalid, "the POM %s has no artifactId", c.Path)
	case !same(strings.TrimSpace(p.ArtifactID), c.Artifact):
		return nil, errs.New(errs.Invalid, "the POM %s is for artifactId %s, not %s", c.Path, clip(p.ArtifactID, 100), c.Artifact)
	case g != "" && !same(strings.TrimSpace(g), c.Group):
		return nil, errs.New(errs.Invalid, "the POM %s is for groupId %s, not %s", c.Path, clip(g, 100), c.Group)
	case v != "" && !same(strings.TrimSpace(v), c.Version):
		return nil, errs.New(errs.Invalid, "the POM %s is for version %s, not %s", c.Path, clip(v, 100), c.Version)
	}
	return &p, nil
}

// inspectFor returns the upload inspection of an artifact file: POMs (the
// main one, without classifier) must describe the path they are stored at.
func inspectFor(c *Coord) func(ctx context.Context, content repo.Content) (*repo.Inspection, error) {
	if c.Extension != "pom" || c.Classifier != "" {
		return nil
	}
	return func(ctx context.Context, content repo.Content) (*repo.Inspection, error) {
		if _, err := ParsePOM(io.NewSectionReader(content, 0, content.Size), c); err != nil {
			return nil, err
		}
		return &repo.Inspection{}, nil
	}
}
