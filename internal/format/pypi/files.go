package pypi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/repo"
)

// serveFile answers packages/<project>/<version>/<file>[.metadata].
func (h *handler) serveFile(w http.ResponseWriter, r *http.Request, rp *repo.Repository, name, version, filename string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if n := normalize(name); n != name {
		http.Redirect(w, r, "/repository/"+rp.Key+"/"+escapePath(filePath(n, version, filename)), http.StatusMovedPermanently)
		return nil
	}
	a, err := h.file(r.Context(), rp, name, filePath(name, version, filename))
	if err != nil {
		return err
	}
	f, err := h.d.Repos.Open(r.Context(), a)
	if err != nil {
		return err
	}
	defer f.Close()
	hd := w.Header()
	if a.Blob != "" { // not a stream still being fetched
		sum := strings.TrimPrefix(a.Blob, "sha256:")
		hd.Set("ETag", `"`+sum+`"`)
		hd.Set("X-Checksum-Sha256", sum)
	}
	if a.MD5 != "" {
		hd.Set("X-Checksum-Md5", a.MD5)
	}
	hd.Set("Content-Type", fileContentType(filename))
	hd.Set("X-Content-Type-Options", "nosniff")
	if rp.Kind != repo.Local {
		hd.Set("X-Coffer-Repository", a.Repo.Key)
	}
	if a.Stale {
		hd.Set("Warning", `110 - "Response is Stale"`)
	}
	http.ServeContent(w, r, "", a.UpdatedAt, f)
	return nil
}

// file resolves a file (or its .metadata) in any kind of repository.
func (h *handler) file(ctx context.Context, rp *repo.Repository, name, path string) (*repo.Asset, error) {
	switch rp.Kind {
	case repo.Local:
		return h.d.Repos.Get(ctx, rp, path)
	case repo.Remote:
		return h.remoteFile(ctx, rp, name, path)
	}
	locals, remotes := h.d.Repos.Split(rp)
	for _, m := range locals {
		a, err := h.d.Repos.Get(ctx, m, path)
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, errs.NotFound) {
			return nil, err
		}
	}
	inLocal, err := h.d.Repos.NameInLocals(ctx, rp, name)
	if err != nil {
		return nil, err
	}
	if inLocal {
		return nil, errs.New(errs.NotFound, "%s not found in %s (project %s is hosted in a local member, so remote members are not asked)", path, rp.Key, name)
	}
	var upErrs []string
	for _, m := range remotes {
		a, err := h.remoteFile(ctx, m, name, path)
		if err == nil {
			return a, nil
		}
		if errors.Is(err, errs.NotFound) {
			continue
		}
		if ctx.Err() != nil {
			return nil, err
		}
		upErrs = append(upErrs, errs.Message(err))
	}
	if len(upErrs) > 0 {
		return nil, errs.New(errs.Upstream, "%s not found in the local members of %s, and %s", path, rp.Key, strings.Join(upErrs, "; "))
	}
	return nil, errs.New(errs.NotFound, "%s not found in %s", path, rp.Key)
}

// remoteFile serves a cached file, or fetches it from where the upstream's
// project page says it is, verified against the page's sha256: content
// that does not match is never cached.
func (h *handler) remoteFile(ctx context.Context, rp *repo.Repository, name, path string) (*repo.Asset, error) {
	if a, err := h.d.Repos.Store().GetAsset(ctx, rp.ID, path); err == nil {
		// Files never change under a name: what is cached is served, even
		// when the upstream has dropped it since (pinned users keep working).
		return h.d.Repos.Fetch(ctx, rp, a.Path, repo.FetchSpec{Immutable: true})
	} else if !errors.Is(err, errs.NotFound) {
		return nil, err
	}
	e, _, err := h.remotePage(ctx, rp, name)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, errs.New(errs.NotFound, "project %s not found in %s", name, rp.Key)
	}
	meta := strings.HasSuffix(path, metadataSuffix)
	filePath := strings.TrimSuffix(path, metadataSuffix)
	for i := range e.proj.Files {
		f := &e.proj.Files[i]
		if f.Path != filePath {
			continue
		}
		spec := repo.FetchSpec{Immutable: true, URL: f.UpstreamURL}
		sum := f.SHA256
		if meta {
			if !f.HasMetadata {
				return nil, errs.New(errs.NotFound, "the upstream of %s serves no core metadata for %s", rp.Key, f.Filename)
			}
			spec.URL += metadataSuffix
			sum = f.MetadataSHA256
		}
		if sum != "" {
			spec.Expect = digest.Digest("sha256:" + sum)
			// A large file streams to the client while it arrives (the last
			// byte held until verified): pip gives up on a server silent for
			// 15 s, and a cold multi-gigabyte wheel takes longer than that.
			spec.Stream = !meta && f.Size > streamAbove
		}
		return h.d.Repos.Fetch(ctx, rp, path, spec)
	}
	return nil, errs.New(errs.NotFound, "%s is not on the upstream's page of %s (%s)", path[strings.LastIndexByte(path, '/')+1:], name, rp.Key)
}

// streamAbove is the size from which remote files stream during their
// fill (a variable for tests).
var streamAbove int64 = 16 << 20

// fileContentType is a file's type by its name (what an upstream said is
// not trusted).
func fileContentType(filename string) string {
	switch {
	case strings.HasSuffix(filename, metadataSuffix):
		return "text/plain; charset=utf-8"
	case strings.HasSuffix(filename, ".whl"), strings.HasSuffix(filename, ".zip"):
		return "application/zip"
	case strings.HasSuffix(filename, ".tar.gz"):
		return "application/gzip"
	}
	return "application/octet-stream"
}
