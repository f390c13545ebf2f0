package npm

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/checksum"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

// source is what one repository contributes to a packument.
type source struct {
	repo  *repo.Repository
	pkg   *pkg   // nil: the repository does not have the package
	state string // changes whenever what it knows of the package may have
}

// maxUpstreamPackument bounds an upstream packument Coffer parses.
const maxUpstreamPackument = 256 << 20

// localPkg is the package as local repository r holds it (nil: absent).
func (h *handler) localPkg(ctx context.Context, r *repo.Repository, name string) (source, error) {
	// The generation is read before the data: a write that lands in
	// between bumps it again, so a stale build is never found again.
	state := "L" + r.ID + ":" + strconv.FormatUint(h.d.Repos.Generation(r.ID, name), 10)
	key := state + "\x00" + name
	if v, ok := h.docs.get(key); ok {
		return source{r, v.(*pkg), state}, nil
	}
	st := h.d.Repos.Store()
	comps, err := st.ListComponents(ctx, r.ID, name)
	if err != nil && !errors.Is(err, errs.NotFound) {
		return source{}, err
	}
	var p *pkg
	size := int64(len(key) + 64)
	if len(comps) > 0 {
		tags, err := st.ListTags(ctx, r.ID, name)
		if err != nil {
			return source{}, err
		}
		// The tarballs' asset rows too: a tarball GET then needs no query.
		assets := map[string]*meta.Asset{}
		for after := ""; ; {
			as, err := st.ListAssets(ctx, r.ID, meta.AssetQuery{Prefix: name + "/-/", After: after, Limit: 1000})
			if err != nil {
				return source{}, err
			}
			for _, a := range as {
				assets[a.Path] = a
			}
			if len(as) < 1000 {
				break
			}
			after = as[len(as)-1].Path
		}
		p = buildLocal(name, comps, tags, assets)
		size += p.size * 2
	}
	h.docs.put(key, p, size)
	return source{r, p, state}, nil
}

// upstreamPackumentURL is where remote repository r's upstream serves the
// packument of name.
func upstreamPackumentURL(r *repo.Repository, name string) string {
	return strings.TrimSuffix(repo.UpstreamURL(r, ""), "/") + "/" + escapeName(name)
}

// remotePkg is the package as remote repository r knows it: the upstream's
// packument (cached for metadata_ttl, revalidated, served stale when the
// upstream is down) plus the versions whose tarballs r holds.
func (h *handler) remotePkg(ctx context.Context, r *repo.Repository, name string) (source, error) {
	a, err := h.d.Repos.Fetch(ctx, r, packumentPath(name), repo.FetchSpec{
		URL:    upstreamPackumentURL(r, name),
		Header: http.Header{"Accept": {"application/json"}},
	})
	if errors.Is(err, errs.NotFound) {
		return source{r, nil, "R" + r.ID + ":none"}, nil
	}
	if err != nil {
		return source{}, err
	}
	state := "R" + r.ID + ":" + a.Blob + ":" + strconv.FormatUint(h.d.Repos.Generation(r.ID, name), 10)
	key := state + "\x00" + name
	if v, ok := h.docs.get(key); ok {
		return source{r, v.(*pkg), state}, nil
	}
	if a.Size > maxUpstreamPackument {
		return source{}, errs.New(errs.Upstream, "the upstream packument of %s in %s is %d bytes, more than Coffer parses (%d)",
			name, r.Key, a.Size, maxUpstreamPackument)
	}
	f, err := h.d.Repos.Blobs().Open(ctx, digest.Digest(a.Blob))
	if err != nil {
		return source{}, fmt.Errorf("packument of %s in %s: %w", name, r.Key, err)
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return source{}, err
	}
	p, err := parseUpstream(name, data)
	if err != nil {
		return source{}, errs.Wrap(errs.Upstream, err, "the upstream of %s answered a packument for %s that is not valid JSON", r.Key, name)
	}
	comps, err := h.d.Repos.Store().ListComponents(ctx, r.ID, name)
	if err != nil && !errors.Is(err, errs.NotFound) {
		return source{}, err
	}
	p.keep(comps)
	h.docs.put(key, p, p.size*2+int64(len(key)))
	return source{r, p, state}, nil
}

// sources resolves what each repository behind r knows of name. For a
// virtual repository: its local members; if none has the package, its
// remote members (a name held locally is never taken from a remote:
// dependency-confusion protection). write asks for the repository that
// writes go to.
func (h *handler) sources(ctx context.Context, r *repo.Repository, name string, write bool) ([]source, error) {
	switch r.Kind {
	case repo.Local:
		s, err := h.localPkg(ctx, r, name)
		return []source{s}, err
	case repo.Remote:
		s, err := h.remotePkg(ctx, r, name)
		return []source{s}, err
	}
	if write {
		target, err := h.d.Repos.DeployTarget(r)
		if err != nil {
			return nil, err
		}
		return h.sources(ctx, target, name, false)
	}
	locals, remotes := h.d.Repos.Split(r)
	var out []source
	found := false
	for _, l := range locals {
		s, err := h.localPkg(ctx, l, name)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		found = found || s.pkg != nil
	}
	if found {
		return out, nil
	}
	var upstreamErrs []string
	for _, rm := range remotes {
		s, err := h.remotePkg(ctx, rm, name)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			upstreamErrs = append(upstreamErrs, errs.Message(err))
			s = source{rm, nil, "R" + rm.ID + ":error"}
		}
		out = append(out, s)
		found = found || s.pkg != nil
	}
	if !found && len(upstreamErrs) > 0 {
		return nil, errs.New(errs.Upstream, "package %s is in no local member of %s, and %s", name, r.Key,
			strings.Join(upstreamErrs, "; "))
	}
	return out, nil
}

// packument resolves name in r and returns it rendered for r.
func (h *handler) packument(ctx context.Context, r *repo.Repository, name string, write bool) (*rendered, error) {
	srcs, err := h.sources(ctx, r, name, write)
	if err != nil {
		return nil, err
	}
	states := make([]string, 0, len(srcs)+2)
	states = append(states, r.Key, name)
	var pkgs []*pkg
	for _, s := range srcs {
		states = append(states, s.state)
		if s.pkg != nil {
			pkgs = append(pkgs, s.pkg)
		}
	}
	if len(pkgs) == 0 {
		return nil, errs.New(errs.NotFound, "package %s not found in %s", name, r.Key)
	}
	key := strings.Join(states, "\x00")
	if v, ok := h.renders.get(key); ok {
		return v.(*rendered), nil
	}
	sum := sha256.Sum256([]byte(key))
	p := merge(pkgs)
	rd := &rendered{pkg: p, base: h.repoURL(r), rev: fmt.Sprintf("%d-%s", len(p.versions), hex.EncodeToString(sum[:16]))}
	// Full and abbreviated bodies, and a gzip copy of each, once rendered.
	h.renders.put(key, rd, 4096+p.size*3)
	return rd, nil
}

// repoURL is the URL of repository r, ending in "/".
func (h *handler) repoURL(r *repo.Repository) string {
	return h.d.BaseURL + "/repository/" + r.Key + "/"
}

func (h *handler) getPackument(w http.ResponseWriter, r *http.Request, t *format.Target, name string) error {
	write := r.URL.Query().Get("write") == "true"
	rd, err := h.packument(r.Context(), t.Repo, name, write)
	if err != nil {
		return err
	}
	if !write && strings.Contains(r.Header.Get("Accept"), "application/vnd.npm.install-v1+json") {
		serveBody(w, r, rd.abbreviatedBody(), "application/vnd.npm.install-v1+json")
		return nil
	}
	serveBody(w, r, rd.fullBody(), "application/json")
	return nil
}

// serveBody answers with a generated body, conditionally and compressed
// when the client allows.
func serveBody(w http.ResponseWriter, r *http.Request, b *body, contentType string) {
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("ETag", b.etag)
	hd.Set("Vary", "Accept, Accept-Encoding")
	hd.Set("Cache-Control", "no-cache")
	if etagMatch(r.Header.Get("If-None-Match"), b.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	data := b.data
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		if gz := b.gzipped(); gz != nil {
			data = gz
			hd.Set("Content-Encoding", "gzip")
		}
	}
	hd.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(data)
	}
}

// etagMatch implements If-None-Match's weak comparison.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == want {
			return true
		}
	}
	return false
}

// getVersion serves GET /<name>/<version|tag>.
func (h *handler) getVersion(w http.ResponseWriter, r *http.Request, t *format.Target, name, spec string) error {
	rd, err := h.packument(r.Context(), t.Repo, name, false)
	if err != nil {
		return err
	}
	p := rd.pkg
	v, ok := p.versions[spec]
	if !ok {
		tagged, isTag := p.tags[spec]
		if !isTag {
			return errs.New(errs.NotFound, "version %s of %s not found in %s", spec, name, t.Repo.Key)
		}
		v = p.versions[tagged]
	}
	serveBody(w, r, newBody(mustJSON(v.manifestJSON(rd.base))), "application/json")
	return nil
}

func (h *handler) getDistTags(w http.ResponseWriter, r *http.Request, t *format.Target, name string) error {
	rd, err := h.packument(r.Context(), t.Repo, name, false)
	if err != nil {
		return err
	}
	serveBody(w, r, newBody(mustJSON(rd.pkg.tags)), "application/json")
	return nil
}

// getTarball serves GET /<name>/-/<file>.
func (h *handler) getTarball(w http.ResponseWriter, r *http.Request, t *format.Target, name, file string) error {
	a, err := h.findTarball(r.Context(), t.Repo, name, tarballPath(name, file))
	if err != nil {
		return err
	}
	f, err := h.d.Repos.Open(r.Context(), a)
	if err != nil {
		return err
	}
	defer f.Close()
	hd := w.Header()
	sha := strings.TrimPrefix(a.Blob, "sha256:")
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("ETag", `"`+sha+`"`)
	hd.Set("X-Checksum-Sha256", sha)
	if a.SHA1 != "" {
		hd.Set("X-Checksum-Sha1", a.SHA1)
	}
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	if a.Repo.Key != t.Repo.Key {
		hd.Set("X-Coffer-Repository", a.Repo.Key)
	}
	if a.Stale {
		hd.Set("Warning", `110 - "Response is Stale"`)
	}
	http.ServeContent(w, r, "", a.UpdatedAt, f)
	return nil
}

// findTarball finds a tarball in r, through members and upstreams.
func (h *handler) findTarball(ctx context.Context, r *repo.Repository, name, path string) (*repo.Asset, error) {
	switch r.Kind {
	case repo.Local:
		return h.localTarball(ctx, r, name, path)
	case repo.Remote:
		return h.remoteTarball(ctx, r, name, path)
	}
	locals, remotes := h.d.Repos.Split(r)
	held := false
	for _, l := range locals {
		s, err := h.localPkg(ctx, l, name)
		if err != nil {
			return nil, err
		}
		if s.pkg == nil {
			continue
		}
		held = true
		a, err := h.localTarball(ctx, l, name, path)
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, errs.NotFound) {
			return nil, err
		}
	}
	if held {
		return nil, errs.New(errs.NotFound, "%s not found in %s (package %s is published in a local member, so it is never taken from a remote one)",
			path, r.Key, name)
	}
	var upstreamErrs []string
	for _, rm := range remotes {
		a, err := h.remoteTarball(ctx, rm, name, path)
		if err == nil {
			return a, nil
		}
		if errors.Is(err, errs.NotFound) {
			continue
		}
		if ctx.Err() != nil {
			return nil, err
		}
		upstreamErrs = append(upstreamErrs, errs.Message(err))
	}
	if len(upstreamErrs) > 0 {
		return nil, errs.New(errs.Upstream, "%s: %s", path, strings.Join(upstreamErrs, "; "))
	}
	return nil, errs.New(errs.NotFound, "%s not found in %s", path, r.Key)
}

// localTarball returns a tarball of local repository r, from the cached
// package when it knows it (generations make it stale on any change).
func (h *handler) localTarball(ctx context.Context, r *repo.Repository, name, path string) (*repo.Asset, error) {
	s, err := h.localPkg(ctx, r, name)
	if err != nil {
		return nil, err
	}
	if s.pkg != nil {
		if a := s.pkg.assets[path]; a != nil {
			return &repo.Asset{Asset: a, Repo: r}, nil
		}
	}
	return h.d.Repos.Get(ctx, r, path)
}

// remoteTarball returns a tarball of remote repository r: cached by path
// (tarballs never change), else fetched from where the upstream packument
// says, verified against its integrity and shasum, and cached together
// with its version's manifest.
func (h *handler) remoteTarball(ctx context.Context, r *repo.Repository, name, path string) (*repo.Asset, error) {
	if _, err := h.d.Repos.Store().GetAsset(ctx, r.ID, path); err == nil {
		return h.d.Repos.Fetch(ctx, r, path, repo.FetchSpec{Immutable: true})
	}
	s, err := h.remotePkg(ctx, r, name)
	if err != nil {
		return nil, err
	}
	if s.pkg == nil {
		return nil, errs.New(errs.NotFound, "package %s not found in %s", name, r.Key)
	}
	var version string
	var v *pver
	for ver, pv := range s.pkg.versions {
		if pv.path == path {
			version, v = ver, pv
			break
		}
	}
	if v == nil {
		return nil, errs.New(errs.NotFound, "no version of %s in %s has the tarball %s", name, r.Key, path)
	}
	if !strings.HasPrefix(v.upstream, "http://") && !strings.HasPrefix(v.upstream, "https://") {
		return nil, errs.New(errs.Upstream, "the upstream of %s gives %s@%s no usable tarball URL (%q)", r.Key, name, version, v.upstream)
	}
	declared := checksum.Sums{}
	if s := strings.ToLower(jsonString(v.dist["shasum"])); checksum.SHA1.ValidHex(s) {
		declared[checksum.SHA1] = s
	}
	if hx := sha512Hex(jsonString(v.dist["integrity"])); hx != "" {
		declared[checksum.SHA512] = hx
	}
	m := make(map[string]json.RawMessage, len(v.manifest)+1)
	for k, raw := range v.manifest {
		m[k] = raw
	}
	m["dist"] = mustJSON(v.dist)
	return h.d.Repos.Fetch(ctx, r, path, repo.FetchSpec{
		Immutable: true,
		URL:       v.upstream,
		Declared:  declared,
		Hashes:    []checksum.Alg{checksum.SHA1, checksum.MD5, checksum.SHA512},
		Component: &repo.ComponentSpec{Name: name, Version: version, Attributes: mustJSON(m)},
	})
}

// sha512Hex returns the hex sha512 digest of a Subresource Integrity
// string ("sha512-<base64> ..."), or "".
func sha512Hex(integrity string) string {
	for _, f := range strings.Fields(integrity) {
		if b64, ok := strings.CutPrefix(f, "sha512-"); ok {
			if i := strings.IndexByte(b64, '?'); i >= 0 {
				b64 = b64[:i]
			}
			b, err := base64.StdEncoding.DecodeString(b64)
			if err == nil && len(b) == 64 {
				return hex.EncodeToString(b)
			}
		}
	}
	return ""
}
