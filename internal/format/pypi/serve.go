package pypi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/repo"
)

// Where a remote repository caches its upstream's pages.
func upstreamPagePath(name string) string { return "simple/" + name + "/.upstream" }

const upstreamRootPath = "simple/.upstream"

// serveProject answers simple/<project>/.
func (h *handler) serveProject(w http.ResponseWriter, r *http.Request, rp *repo.Repository, name string) error {
	e, stale, err := h.page(r.Context(), rp, name)
	if err != nil {
		return err
	}
	if e == nil || e.proj == nil {
		return errs.New(errs.NotFound, "project %s not found in %s", name, rp.Key)
	}
	if stale {
		w.Header().Set("Warning", `110 - "Response is Stale"`)
	}
	return servePage(w, r, e)
}

// page returns the project page of any kind of repository (nil: none).
func (h *handler) page(ctx context.Context, rp *repo.Repository, name string) (*rendered, bool, error) {
	switch rp.Kind {
	case repo.Local:
		e, err := h.localPage(ctx, rp, name)
		return e, false, err
	case repo.Remote:
		return h.remotePage(ctx, rp, name)
	}
	return h.virtualPage(ctx, rp, name)
}

// remotePage is the upstream's page of a project, cached for the metadata
// TTL and revalidated, with file URLs pointing back at Coffer.
func (h *handler) remotePage(ctx context.Context, rp *repo.Repository, name string) (*rendered, bool, error) {
	pageURL := repo.UpstreamURL(rp, name) + "/"
	a, err := h.d.Repos.Fetch(ctx, rp, upstreamPagePath(name), repo.FetchSpec{
		URL:    pageURL,
		Header: http.Header{"Accept": {upstreamAccept}},
	})
	if errors.Is(err, errs.NotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	id := rp.ID + "\x00" + name
	if e := h.pages.get(id, a.Blob); e != nil {
		return e, a.Stale, nil
	}
	body, err := h.readAsset(ctx, a, maxUpstreamPage)
	if err != nil {
		return nil, false, err
	}
	ufs, versions, err := parseUpstreamProject(body, a.ContentType, pageURL)
	if err != nil {
		return nil, false, err
	}
	p := &project{Name: name}
	var vs []string
	for _, v := range versions {
		vs = append(vs, normalizeVersion(v))
	}
	for _, uf := range ufs {
		d, err := parseFilename(uf.Filename, name)
		if err != nil {
			continue // not a wheel or sdist of this project: pip would not use it
		}
		ver := normalizeVersion(d.Version)
		f := file{
			Filename:       d.Filename,
			Path:           filePath(name, ver, d.Filename),
			Version:        ver,
			SHA256:         uf.Hashes["sha256"],
			MD5:            uf.Hashes["md5"],
			Size:           uf.Size,
			UploadTime:     uf.UploadTime,
			RequiresPython: uf.RequiresPython,
			Yanked:         uf.Yanked,
			YankReason:     uf.YankReason,
			HasMetadata:    uf.HasMetadata,
			MetadataSHA256: uf.MetadataHashes["sha256"],
			UpstreamURL:    uf.URL,
		}
		if !validSHA256(f.SHA256) {
			f.SHA256 = ""
		}
		if len(f.MD5) != 32 || !isHex(f.MD5) {
			f.MD5 = ""
		}
		if !validSHA256(f.MetadataSHA256) {
			f.MetadataSHA256 = ""
		}
		p.Files = append(p.Files, f)
	}
	p.sortFiles()
	p.setVersions(vs...)
	e := &rendered{key: a.Blob, proj: p}
	h.pages.put(id, e)
	return e, a.Stale, nil
}

func validSHA256(s string) bool {
	return len(s) == 64 && digest.Digest("sha256:"+s).Validate() == nil
}

// readAsset reads a small stored file (a cached upstream page) whole.
func (h *handler) readAsset(ctx context.Context, a *repo.Asset, max int64) ([]byte, error) {
	if a.Size > max {
		return nil, errs.New(errs.Upstream, "%s in %s is larger than %d bytes", a.Path, a.Repo.Key, max)
	}
	f, err := h.d.Repos.Blobs().Open(ctx, digest.Digest(a.Blob))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

// virtualPage merges the members' pages in order. A project that a local
// member has is never taken from a remote member.
func (h *handler) virtualPage(ctx context.Context, v *repo.Repository, name string) (*rendered, bool, error) {
	locals, remotes := h.d.Repos.Split(v)
	var (
		parts   []*rendered
		keys    []string
		stale   bool
		upErrs  []string
		inLocal = false
	)
	for _, m := range locals {
		e, err := h.localPage(ctx, m, name)
		if err != nil {
			return nil, false, err
		}
		keys = append(keys, m.ID+":"+e.key)
		if e.proj != nil {
			parts = append(parts, e)
			inLocal = true
		}
	}
	if !inLocal {
		for _, m := range remotes {
			e, st, err := h.remotePage(ctx, m, name)
			if err != nil {
				if ctx.Err() != nil {
					return nil, false, err
				}
				upErrs = append(upErrs, errs.Message(err))
				continue
			}
			if e != nil {
				parts = append(parts, e)
				keys = append(keys, m.ID+":"+e.key)
				stale = stale || st
			}
		}
	}
	if len(parts) == 0 {
		if len(upErrs) > 0 {
			return nil, false, errs.New(errs.Upstream, "project %s is in no local member of %s, and %s", name, v.Key, strings.Join(upErrs, "; "))
		}
		return nil, false, nil
	}
	id := v.ID + "\x00" + name
	key := strings.Join(keys, ",")
	if e := h.pages.get(id, key); e != nil {
		return e, stale, nil
	}
	p := &project{Name: name}
	var versions []string
	for _, part := range parts {
		p.merge(part.proj)
		versions = append(versions, part.proj.Versions...)
	}
	p.setVersions(versions...)
	e := &rendered{key: key, proj: p}
	h.pages.put(id, e)
	return e, stale, nil
}

// serveRoot answers simple/: every project of the repository.
func (h *handler) serveRoot(w http.ResponseWriter, r *http.Request, rp *repo.Repository) error {
	ctx := r.Context()
	e, err := h.root(ctx, rp)
	if err != nil {
		return err
	}
	return servePage(w, r, e)
}

func (h *handler) root(ctx context.Context, rp *repo.Repository) (*rendered, error) {
	id := rp.ID + "\x00"
	switch rp.Kind {
	case repo.Local:
		key := h.localKey(rp, "")
		if e := h.pages.get(id, key); e != nil {
			return e, nil
		}
		names, err := localNames(ctx, h.d.Repos.Store(), rp)
		if err != nil {
			return nil, err
		}
		e := &rendered{key: key, names: names}
		h.pages.put(id, e)
		return e, nil
	case repo.Remote:
		a, err := h.d.Repos.Fetch(ctx, rp, upstreamRootPath, repo.FetchSpec{
			URL:    repo.UpstreamURL(rp, ""),
			Header: http.Header{"Accept": {upstreamAccept}},
		})
		if errors.Is(err, errs.NotFound) {
			return &rendered{key: "none"}, nil
		}
		if err != nil {
			return nil, err
		}
		if e := h.pages.get(id, a.Blob); e != nil {
			return e, nil
		}
		body, err := h.readAsset(ctx, a, maxUpstreamPage)
		if err != nil {
			return nil, err
		}
		names, err := parseUpstreamRoot(body, a.ContentType)
		if err != nil {
			return nil, err
		}
		e := &rendered{key: a.Blob, names: mergeNames(names)}
		h.pages.put(id, e)
		return e, nil
	}
	// Virtual: the union of the members' lists.
	var lists [][]string
	var keys []string
	for _, m := range h.d.Repos.Members(rp) {
		e, err := h.root(ctx, m)
		if err != nil {
			if m.Kind == repo.Remote && ctx.Err() == nil {
				continue // an unreachable upstream hides its names, not the others'
			}
			return nil, err
		}
		lists = append(lists, e.names)
		keys = append(keys, m.ID+":"+e.key)
	}
	key := strings.Join(keys, ",")
	if e := h.pages.get(id, key); e != nil {
		return e, nil
	}
	e := &rendered{key: key, names: mergeNames(lists...)}
	h.pages.put(id, e)
	return e, nil
}

func digestOf(a *repo.Asset) digest.Digest { return digest.Digest(a.Blob) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
