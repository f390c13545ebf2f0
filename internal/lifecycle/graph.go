package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

// Formats finds a format by name.
type Formats func(name string) format.Format

// maxCoordinates bounds the coordinates a client may send.
const maxCoordinates = 1024

// Resolved is an artifact found in a repository.
type Resolved struct {
	Coordinates string
	format.Artifact
	// Component is the package version (nil for a raw file).
	Component *meta.Component
	// Asset is the file, for formats without components (raw).
	Asset *meta.Asset
	// Digest identifies the content: the component's version when it is a
	// digest (OCI), else the sha256 of its first asset.
	Digest string
}

func coordinator(f format.Format) (format.Coordinator, error) {
	c, ok := f.(format.Coordinator)
	if !ok {
		return nil, errs.New(errs.Invalid, "%s artifacts cannot be named by coordinates (the format has no lifecycle support yet)", f.Name())
	}
	return c, nil
}

// Resolve parses coordinates in r's format and finds the artifact in r.
func Resolve(ctx context.Context, st meta.Tx, f format.Format, r *repo.Repository, coords string) (*Resolved, error) {
	c, err := coordinator(f)
	if err != nil {
		return nil, err
	}
	if len(coords) > maxCoordinates {
		return nil, errs.New(errs.Invalid, "coordinates are %d bytes long; at most %d", len(coords), maxCoordinates)
	}
	a, err := c.ParseCoordinates(coords)
	if err != nil {
		return nil, err
	}
	res := &Resolved{Coordinates: coords, Artifact: a}
	if a.Path != "" {
		as, err := st.GetAsset(ctx, r.ID, a.Path)
		if err != nil {
			return nil, notFound(err, "%s not found in %s", coords, r.Key)
		}
		res.Asset, res.Digest = as, as.Blob
		return res, nil
	}
	if a.Tag != "" {
		t, err := st.GetTag(ctx, r.ID, a.Name, a.Tag)
		if err != nil {
			return nil, notFound(err, "tag %s of %s not found in %s", a.Tag, a.Name, r.Key)
		}
		res.Version = t.Target
	}
	comp, err := st.GetComponent(ctx, r.ID, res.Name, res.Version)
	if err != nil {
		return nil, notFound(err, "%s not found in %s", coords, r.Key)
	}
	res.Component = comp
	res.Digest = comp.Version
	if !isDigest(comp.Version) {
		as, err := st.ListComponentAssets(ctx, comp.ID)
		if err != nil {
			return nil, err
		}
		if len(as) > 0 {
			res.Digest = as[0].Blob
		}
	}
	return res, nil
}

func isDigest(s string) bool {
	return len(s) > 7 && (s[:7] == "sha256:" || (len(s) > 7 && s[:7] == "sha512:"))
}

func notFound(err error, format string, args ...any) error {
	if errors.Is(err, errs.NotFound) {
		return errs.New(errs.NotFound, format, args...)
	}
	return err
}

// Graph is everything a promotion copies: rows, never bytes.
type Graph struct {
	Name       string
	Components []*meta.Component
	Assets     []*meta.Asset // ComponentID refers to Components' IDs (source rows)
	Tags       []meta.Tag
	Links      []meta.Link
}

// Collect gathers an artifact's graph in r: its component and assets, the
// components its links reach (child manifests) and those attached to it
// (referrers through subject links, tag-scheme attachments), recursively,
// the assets of blob links, and the tag it was named by.
func Collect(ctx context.Context, tx meta.Tx, f format.Format, r *repo.Repository, res *Resolved) (*Graph, error) {
	g := &Graph{Name: res.Name}
	if res.Asset != nil {
		g.Assets = append(g.Assets, res.Asset)
		return g, nil
	}
	gr, _ := f.(format.Grapher)
	var tags []*meta.Tag
	if gr != nil {
		var err error
		if tags, err = tx.ListTags(ctx, r.ID, res.Name); err != nil {
			return nil, err
		}
	}
	seenComp := map[string]bool{}
	seenAsset := map[string]bool{}
	addAsset := func(a *meta.Asset) {
		if !seenAsset[a.Path] {
			seenAsset[a.Path] = true
			g.Assets = append(g.Assets, a)
		}
	}
	var visit func(version string) error
	visit = func(version string) error {
		if seenComp[version] {
			return nil
		}
		seenComp[version] = true
		c, err := tx.GetComponent(ctx, r.ID, res.Name, version)
		if err != nil {
			return notFound(err, "%s@%s, part of %s, is missing from %s", res.Name, version, res.Coordinates, r.Key)
		}
		g.Components = append(g.Components, c)
		as, err := tx.ListComponentAssets(ctx, c.ID)
		if err != nil {
			return err
		}
		for _, a := range as {
			addAsset(a)
		}
		links, err := tx.ListLinksFrom(ctx, r.ID, res.Name, version)
		if err != nil {
			return err
		}
		for _, l := range links {
			g.Links = append(g.Links, l)
			switch {
			case l.Kind == "manifest":
				if err := visit(l.Target); err != nil {
					return err
				}
			case gr != nil:
				if p := gr.LinkPath(res.Name, l); p != "" {
					a, err := tx.GetAsset(ctx, r.ID, p)
					switch {
					case errors.Is(err, errs.NotFound):
						// Not stored here (an OCI foreign layer, which the
						// manifest only points at): nothing to copy.
					case err != nil:
						return err
					default:
						addAsset(a)
					}
				}
			}
		}
		refs, err := tx.ListLinksTo(ctx, r.ID, res.Name, version, "subject")
		if err != nil {
			return err
		}
		for _, l := range refs {
			if err := visit(l.Source); err != nil {
				return err
			}
		}
		for _, t := range tags {
			if gr.AttachedTo(t.Tag) == version {
				g.Tags = append(g.Tags, *t)
				if err := visit(t.Target); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := visit(res.Version); err != nil {
		return nil, err
	}
	if res.Tag != "" {
		g.Tags = append(g.Tags, meta.Tag{RepoID: r.ID, Name: res.Name, Tag: res.Tag, Target: res.Version})
	}
	return g, nil
}

// expire removes version of name from r with what only it used: the tags
// on it, its links, its attachments (referrers, tag-scheme signatures),
// children no other version links to, and blob assets no remaining link
// targets. It returns the versions removed besides the one asked for, and
// whether that one was still there (another run may have expired it).
func expire(ctx context.Context, tx meta.Tx, f format.Format, r *repo.Repository, name, version string) ([]string, bool, error) {
	gr, _ := f.(format.Grapher)
	var extra []string
	found := false
	var remove func(v string, top bool) error
	remove = func(v string, top bool) error {
		c, err := tx.GetComponent(ctx, r.ID, name, v)
		if errors.Is(err, errs.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if top {
			found = true
		} else {
			extra = append(extra, v)
		}
		tags, err := tx.ListTags(ctx, r.ID, name)
		if err != nil {
			return err
		}
		var attached []string
		for _, t := range tags {
			if t.Target == v {
				if err := tx.DeleteTag(ctx, r.ID, name, t.Tag); err != nil {
					return err
				}
			}
			if gr != nil && gr.AttachedTo(t.Tag) == v {
				attached = append(attached, t.Target)
				if err := tx.DeleteTag(ctx, r.ID, name, t.Tag); err != nil {
					return err
				}
			}
		}
		links, err := tx.ListLinksFrom(ctx, r.ID, name, v)
		if err != nil {
			return err
		}
		if err := tx.DeleteLinksFrom(ctx, r.ID, name, v); err != nil {
			return err
		}
		if _, err := repo.RemoveComponent(ctx, tx, c); err != nil {
			return err
		}
		refs, err := tx.ListLinksTo(ctx, r.ID, name, v, "subject")
		if err != nil {
			return err
		}
		for _, l := range refs {
			attached = append(attached, l.Source)
		}
		for _, a := range attached {
			if err := remove(a, false); err != nil {
				return err
			}
		}
		for _, l := range links {
			others, err := tx.ListLinksTo(ctx, r.ID, name, l.Target, l.Kind)
			if err != nil {
				return err
			}
			if len(others) > 0 {
				continue // still used by a version that stays
			}
			switch {
			case l.Kind == "manifest":
				if err := remove(l.Target, false); err != nil {
					return err
				}
			case gr != nil:
				if p := gr.LinkPath(name, l); p != "" {
					if err := tx.DeleteAsset(ctx, r.ID, p); err != nil && !errors.Is(err, errs.NotFound) {
						return fmt.Errorf("removing %s: %w", p, err)
					}
				}
			}
		}
		return nil
	}
	err := remove(version, true)
	return extra, found, err
}
