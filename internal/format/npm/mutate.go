package npm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

// Metadata changes: deprecation, unpublish, dist-tags. Each goes through
// repo.Manager.Mutate, which authorizes it on the repository written, applies
// the tier and bumps the package's generation.

// noUnpublish is the refusal on repositories that never delete (release).
func noUnpublish(target *repo.Repository, name string) error {
	return errs.New(errs.Immutable,
		"npm unpublish is refused: %s keeps every published version (%s). Use npm deprecate %s@<version> \"<message>\" to retire a version instead",
		target.Key, target.PolicyName(), name)
}

// movesTagsOnlyExplicitly reports whether a repository's dist-tags move
// only by an explicit npm dist-tag add: immutable repositories (staging,
// release) never re-point a tag as a side effect of another change.
func movesTagsOnlyExplicitly(r *repo.Repository) bool { return !r.Policy.Overwrite }

// authorizeUnpublish checks the caller may delete in target, and that
// target deletes at all, with npm's advice when it does not.
func (h *handler) authorizeUnpublish(ctx context.Context, target *repo.Repository, name string) error {
	if err := h.d.Repos.Authorize(ctx, auth.Delete, target.Key); err != nil {
		return err
	}
	if !target.Policy.Delete {
		return noUnpublish(target, name)
	}
	return nil
}

// updatePackage applies a packument sent back by npm deprecate (versions'
// "deprecated" changed) or by npm unpublish <name>@<version> (a version
// removed, dist-tags re-pointed). Anything else in the document is the
// registry's and is ignored; new versions come only with npm publish.
func (h *handler) updatePackage(w http.ResponseWriter, r *http.Request, t *format.Target, target *repo.Repository,
	name string, doc *document) error {
	ctx := r.Context()
	if raw, ok := doc.Fields["name"]; ok && jsonString(raw) != name {
		return errs.New(errs.Invalid, "the document's name (%s) is not the package name in the URL (%s)", raw, name)
	}
	var versions map[string]map[string]json.RawMessage
	if err := json.Unmarshal(doc.Fields["versions"], &versions); err != nil || versions == nil {
		return malformed("versions must be an object of version manifests (a publish needs an attachment)")
	}
	var docTags map[string]string
	if raw, ok := doc.Fields["dist-tags"]; ok {
		if err := json.Unmarshal(raw, &docTags); err != nil {
			return malformed("dist-tags must map tag names to versions")
		}
	}
	current, err := h.d.Repos.Store().ListComponents(ctx, target.ID, name)
	if err != nil && !errors.Is(err, errs.NotFound) {
		return err
	}
	if len(current) == 0 {
		return errs.New(errs.NotFound, "package %s not found in %s", name, target.Key)
	}
	removing := false
	for _, c := range current {
		if _, ok := versions[c.Version]; !ok {
			removing = true
		}
	}
	action, audit := auth.Write, "npm deprecate"
	if removing {
		if err := h.authorizeUnpublish(ctx, target, name); err != nil {
			return err
		}
		action, audit = auth.Delete, "npm unpublish"
	}
	err = h.d.Repos.Mutate(ctx, target, action, name, audit, func(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
		comps, err := tx.ListComponents(ctx, target.ID, name)
		if err != nil && !errors.Is(err, errs.NotFound) {
			return err
		}
		have := map[string]*meta.Component{}
		var removed []*meta.Component
		for _, c := range comps {
			have[c.Version] = c
			if _, ok := versions[c.Version]; !ok {
				removed = append(removed, c)
			}
		}
		for v := range versions {
			if have[v] == nil {
				return errs.New(errs.Invalid, "version %s of %s is not published in %s: versions are added by npm publish, with their tarball",
					v, name, target.Key)
			}
		}
		if len(removed) > 0 && action != auth.Delete {
			return errs.New(errs.Invalid, "package %s changed while it was being updated; retry", name)
		}
		// Deprecation, per version.
		for v, m := range versions {
			c := have[v]
			msg := ""
			if raw, ok := m["deprecated"]; ok {
				if err := json.Unmarshal(raw, &msg); err != nil {
					var b bool // some tools send deprecated: false
					if json.Unmarshal(raw, &b) != nil || b {
						return malformed("deprecated of %s must be a message", v)
					}
				}
			}
			if cur := deprecation(c); cur != msg {
				if err := tx.SetComponentDeprecation(ctx, c.ID, msg != "", msg); err != nil {
					return err
				}
			}
		}
		if len(removed) == 0 {
			return nil
		}
		return h.removeVersions(ctx, tx, target, name, removed, len(removed) == len(comps), docTags)
	})
	if err != nil {
		return err
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"ok": true, "id": name})
	return nil
}

func deprecation(c *meta.Component) string {
	if !c.Deprecated {
		return ""
	}
	return c.DeprecationMessage
}

// removeVersions unpublishes versions inside a transaction. Tags that point
// at a removed version: on repositories whose tags move only explicitly,
// the unpublish is refused (move the tag first); elsewhere they follow the
// document (npm re-points latest to the highest remaining version) or go.
func (h *handler) removeVersions(ctx context.Context, tx meta.Tx, target *repo.Repository, name string,
	removed []*meta.Component, all bool, docTags map[string]string) error {
	gone := map[string]bool{}
	for _, c := range removed {
		gone[c.Version] = true
	}
	tags, err := tx.ListTags(ctx, target.ID, name)
	if err != nil {
		return err
	}
	if !all && movesTagsOnlyExplicitly(target) {
		for _, t := range tags {
			if gone[t.Target] {
				return errs.New(errs.Immutable,
					"%s@%s cannot be unpublished from %s while dist-tag %q points at it: dist-tags move only by npm dist-tag add here (%s)",
					name, t.Target, target.Key, t.Tag, target.PolicyName())
			}
		}
	}
	for _, c := range removed {
		if _, err := repo.RemoveComponent(ctx, tx, c); err != nil {
			return err
		}
	}
	var remaining []string
	if !all {
		comps, err := tx.ListComponents(ctx, target.ID, name)
		if err != nil && !errors.Is(err, errs.NotFound) {
			return err
		}
		for _, c := range comps {
			remaining = append(remaining, c.Version)
		}
	}
	for _, t := range tags {
		if !gone[t.Target] {
			continue
		}
		if v, ok := docTags[t.Tag]; ok && !gone[v] && slices.Contains(remaining, v) {
			if err := tx.SetTag(ctx, &meta.Tag{RepoID: target.ID, Name: name, Tag: t.Tag, Target: v}); err != nil {
				return err
			}
			continue
		}
		if t.Tag == "latest" && len(remaining) > 0 {
			p := &pkg{versions: map[string]*pver{}}
			for _, v := range remaining {
				p.versions[v] = nil
			}
			if err := tx.SetTag(ctx, &meta.Tag{RepoID: target.ID, Name: name, Tag: "latest", Target: p.highest()}); err != nil {
				return err
			}
			continue
		}
		if err := tx.DeleteTag(ctx, target.ID, name, t.Tag); err != nil {
			return err
		}
	}
	return nil
}

// unpublishPackage serves DELETE /<name>/-rev/<rev>: every version goes.
func (h *handler) unpublishPackage(w http.ResponseWriter, r *http.Request, t *format.Target, name string) error {
	ctx := r.Context()
	target, err := h.d.Repos.DeployTarget(t.Repo)
	if err != nil {
		return err
	}
	if err := h.authorizeUnpublish(ctx, target, name); err != nil {
		return err
	}
	err = h.d.Repos.Mutate(ctx, target, auth.Delete, name, "npm unpublish", func(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
		comps, err := tx.ListComponents(ctx, target.ID, name)
		if err != nil && !errors.Is(err, errs.NotFound) {
			return err
		}
		if len(comps) == 0 {
			return errs.New(errs.NotFound, "package %s not found in %s", name, target.Key)
		}
		return h.removeVersions(ctx, tx, target, name, comps, true, nil)
	})
	if err != nil {
		return err
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"ok": true, "id": name})
	return nil
}

// deleteTarball serves DELETE /<name>/-/<file>/-rev/<rev>, the last step of
// npm unpublish <name>@<version> (the version itself went with the PUT
// before). A client that deletes the tarball first unpublishes its version.
func (h *handler) deleteTarball(w http.ResponseWriter, r *http.Request, t *format.Target, name, file string) error {
	ctx := r.Context()
	target, err := h.d.Repos.DeployTarget(t.Repo)
	if err != nil {
		return err
	}
	if err := h.authorizeUnpublish(ctx, target, name); err != nil {
		return err
	}
	path := tarballPath(name, file)
	a, err := h.d.Repos.Store().GetAsset(ctx, target.ID, path)
	if err != nil {
		return notFound(err, "%s not found in %s", path, target.Key)
	}
	err = h.d.Repos.Mutate(ctx, target, auth.Delete, name, "npm unpublish", func(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
		if a.ComponentID == "" {
			return tx.DeleteAsset(ctx, target.ID, path)
		}
		comps, err := tx.ListComponents(ctx, target.ID, name)
		if err != nil {
			return err
		}
		for _, c := range comps {
			if c.ID == a.ComponentID {
				return h.removeVersions(ctx, tx, target, name, []*meta.Component{c}, len(comps) == 1, nil)
			}
		}
		return tx.DeleteAsset(ctx, target.ID, path)
	})
	if err != nil {
		return err
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"ok": true})
	return nil
}

func notFound(err error, format string, args ...any) error {
	if errors.Is(err, errs.NotFound) {
		return errs.Wrap(errs.NotFound, err, format, args...)
	}
	return err
}

// putDistTag serves PUT /-/package/<name>/dist-tags/<tag> with the version
// as a JSON string: an explicit move, allowed on every tier.
func (h *handler) putDistTag(w http.ResponseWriter, r *http.Request, t *format.Target, name, tag string) error {
	if err := checkTag(tag); err != nil {
		return err
	}
	var version string
	if err := readJSON(r, 4096, &version); err != nil {
		return err
	}
	version = strings.TrimSpace(version)
	tags := map[string]string{}
	err := h.d.Repos.Mutate(r.Context(), t.Repo, auth.Write, name, "npm dist-tag add", func(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
		if _, err := tx.GetComponent(ctx, target.ID, name, version); err != nil {
			return notFound(err, "version %s of %s is not published in %s", version, name, target.Key)
		}
		if err := tx.SetTag(ctx, &meta.Tag{RepoID: target.ID, Name: name, Tag: tag, Target: version}); err != nil {
			return err
		}
		return listTags(ctx, tx, target, name, tags)
	})
	if err != nil {
		return err
	}
	writeJSON(w, r, http.StatusCreated, tags)
	return nil
}

// deleteDistTag serves DELETE /-/package/<name>/dist-tags/<tag>. latest is
// kept: npm resolves a bare install through it.
func (h *handler) deleteDistTag(w http.ResponseWriter, r *http.Request, t *format.Target, name, tag string) error {
	if tag == "latest" {
		return errs.New(errs.Invalid, "the latest dist-tag cannot be removed; point it at another version with npm dist-tag add %s@<version> latest", name)
	}
	tags := map[string]string{}
	err := h.d.Repos.Mutate(r.Context(), t.Repo, auth.Write, name, "npm dist-tag rm", func(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
		if err := tx.DeleteTag(ctx, target.ID, name, tag); err != nil {
			return notFound(err, "%s is not a dist-tag of %s in %s", tag, name, target.Key)
		}
		return listTags(ctx, tx, target, name, tags)
	})
	if err != nil {
		return err
	}
	writeJSON(w, r, http.StatusOK, tags)
	return nil
}

func listTags(ctx context.Context, tx meta.Tx, target *repo.Repository, name string, into map[string]string) error {
	ts, err := tx.ListTags(ctx, target.ID, name)
	if err != nil {
		return err
	}
	for _, t := range ts {
		into[t.Tag] = t.Target
	}
	return nil
}
