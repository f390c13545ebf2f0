package maven

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/checksum"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

// handler serves one Coffer's Maven repositories.
type handler struct {
	d     format.Deps
	f     *Format
	cache *metaCache
}

func newHandler(d format.Deps, f *Format) *handler {
	return &handler{d: d, f: f, cache: newMetaCache(8192)}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := format.TargetFrom(r.Context())
	if err := h.route(w, r, t); err != nil {
		h.f.WriteError(w, r, err)
	}
}

func (h *handler) route(w http.ResponseWriter, r *http.Request, t *format.Target) error {
	for _, s := range t.Segments {
		if strings.Contains(s, "/") {
			return errs.New(errs.Invalid, "encoded slashes are not allowed in Maven paths")
		}
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	if get && (t.Path == "" || t.Trailing) {
		return h.list(w, r, t)
	}
	c, perr := ParsePath(t.Segments)
	permissive := layoutPolicy(t.Repo) == "permissive"
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if perr != nil {
			if permissive {
				return h.serveAsset(w, r, t.Repo, t.Path, nil)
			}
			return h.notLayout(w, r, t, perr)
		}
		return h.get(w, r, t, c)
	case http.MethodPut:
		if t.Trailing {
			return errs.New(errs.Invalid, "a file path is required (got a folder)")
		}
		if perr != nil {
			if permissive {
				return h.putPlain(w, r, t)
			}
			return perr
		}
		return h.put(w, r, t, c)
	case http.MethodDelete:
		if _, err := h.d.Repos.Delete(r.Context(), t.Repo, strings.TrimSuffix(t.Path, "/")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	w.Header().Set("Allow", "GET, HEAD, PUT, DELETE")
	return errs.New(errs.NotAllowed, "method %s is not supported on Maven repositories", r.Method)
}

// notLayout answers a GET for a path that is not a Maven file: a folder
// addressed without its trailing slash is redirected, anything else is 404.
func (h *handler) notLayout(w http.ResponseWriter, r *http.Request, t *format.Target, perr error) error {
	if es, err := h.d.Repos.ListFolder(r.Context(), t.Repo, t.Path, 1); err == nil && len(es) > 0 {
		http.Redirect(w, r, r.URL.EscapedPath()+"/", http.StatusMovedPermanently)
		return nil
	}
	return errs.Wrap(errs.NotFound, perr, "%s not found in %s (%s)", t.Path, t.Repo.Key, errs.Message(perr))
}

// versionPolicy is a repository's version policy, defaults applied.
func versionPolicy(r *repo.Repository) string {
	if m := r.Declared.Maven; m != nil && m.VersionPolicy != "" {
		return m.VersionPolicy
	}
	if r.Kind == repo.Local && r.Tier == repo.Release {
		return "release"
	}
	return "mixed"
}

func layoutPolicy(r *repo.Repository) string {
	if m := r.Declared.Maven; m != nil && m.LayoutPolicy != "" {
		return m.LayoutPolicy
	}
	return "strict"
}

func checkVersionPolicy(target *repo.Repository, c *Coord) error {
	if c.Version == "" {
		return nil
	}
	switch versionPolicy(target) {
	case "release":
		if c.Snapshot() {
			return errs.New(errs.Invalid, "%s is a release repository: SNAPSHOT version %s of %s is not allowed", target.Key, c.Version, c.Name())
		}
	case "snapshot":
		if !c.Snapshot() {
			return errs.New(errs.Invalid, "%s is a snapshot repository: release version %s of %s is not allowed", target.Key, c.Version, c.Name())
		}
	}
	return nil
}

// ---- uploads

var uploadHashes = []checksum.Alg{checksum.SHA1, checksum.MD5, checksum.SHA512}

var checksumHeaders = map[checksum.Alg]string{
	checksum.SHA256: "X-Checksum-Sha256",
	checksum.SHA1:   "X-Checksum-Sha1",
	checksum.MD5:    "X-Checksum-Md5",
	checksum.SHA512: "X-Checksum-Sha512",
}

func declaredSums(r *http.Request) checksum.Sums {
	d := checksum.Sums{}
	for alg, name := range checksumHeaders {
		if v := r.Header.Get(name); v != "" {
			d[alg] = v
		}
	}
	return d
}

func (h *handler) put(w http.ResponseWriter, r *http.Request, t *format.Target, c *Coord) error {
	ctx := r.Context()
	target, err := h.d.Repos.DeployTarget(t.Repo)
	if err != nil {
		return err
	}
	if err := checkVersionPolicy(target, c); err != nil {
		return err
	}
	switch {
	case c.Kind != File:
		return h.putMetadata(w, r, target, c)
	case c.Checksum != "":
		return h.putChecksum(w, r, target, c)
	}
	res, err := h.d.Repos.Put(ctx, target, c.Path, r.Body, repo.PutOptions{
		ContentType: contentType(c.Path),
		Size:        r.ContentLength,
		Declared:    declaredSums(r),
		Hashes:      uploadHashes,
		Component:   &repo.ComponentSpec{Name: c.Name(), Version: c.Version},
		Inspect:     inspectFor(c),
	})
	if err != nil {
		if errors.Is(err, errs.Immutable) {
			return errs.Wrap(errs.Immutable, err, "Redeploy of %s is not allowed in %s", c.GAV(), target.Key)
		}
		return err
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	w.Header().Set("Location", h.d.BaseURL+"/repository/"+target.Key+"/"+repo.EscapePath(c.Path))
	w.WriteHeader(status)
	return nil
}

// putMetadata accepts a client's maven-metadata.xml (and its checksums)
// without storing it: the served metadata is computed from what is stored.
// It must still be well-formed and about the path's artifact.
func (h *handler) putMetadata(w http.ResponseWriter, r *http.Request, target *repo.Repository, c *Coord) error {
	if err := h.d.Repos.Authorize(r.Context(), auth.Write, target.Key); err != nil {
		return err
	}
	if c.Checksum != "" {
		if _, err := readChecksum(r.Body, c.Checksum); err != nil {
			return err
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	}
	m, err := ParseMetadata(r.Body)
	if err != nil {
		return err
	}
	if c.Kind == ArtifactMetadata && m.Plugins != nil && m.ArtifactID == "" {
		// Group-level metadata (plugin prefixes): accepted, not served.
		w.WriteHeader(http.StatusCreated)
		return nil
	}
	if m.GroupID != "" && m.GroupID != c.Group || m.ArtifactID != "" && m.ArtifactID != c.Artifact {
		return errs.New(errs.Invalid, "maven-metadata.xml is about %s:%s but was uploaded to %s's folder", m.GroupID, m.ArtifactID, c.Name())
	}
	if c.Kind == VersionMetadata && m.Version != "" && m.Version != c.Version {
		return errs.New(errs.Invalid, "maven-metadata.xml is about version %s but was uploaded to %s's folder", m.Version, c.GAV())
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// putChecksum checks a client's checksum sidecar against the stored file:
// a mismatch is refused; a match is acknowledged. Sidecars are never
// stored: they are computed when asked for.
func (h *handler) putChecksum(w http.ResponseWriter, r *http.Request, target *repo.Repository, c *Coord) error {
	ctx := r.Context()
	if err := h.d.Repos.Authorize(ctx, auth.Write, target.Key); err != nil {
		return err
	}
	want, err := readChecksum(r.Body, c.Checksum)
	if err != nil {
		return err
	}
	a, err := h.d.Repos.Store().GetAsset(ctx, target.ID, c.Path)
	if err != nil {
		if errors.Is(err, errs.NotFound) {
			return errs.New(errs.NotFound, "%s is not in %s: upload the file before its %s checksum", c.Path, target.Key, c.Checksum)
		}
		return err
	}
	sums, err := h.assetSums(ctx, &repo.Asset{Asset: a, Repo: target})
	if err != nil {
		return err
	}
	if got := sums[c.Checksum]; got != want {
		return errs.New(errs.DigestMismatch, "%s checksum mismatch for %s: uploaded %s, the stored file has %s; the checksum was not stored", c.Checksum, c.Path, want, got)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// readChecksum reads a checksum file: hex digits, optionally followed by
// whitespace and a file name (the sha1sum format).
func readChecksum(body io.Reader, alg checksum.Alg) (string, error) {
	b, err := io.ReadAll(io.LimitReader(body, 1025))
	if err != nil {
		return "", errs.Wrap(errs.Invalid, err, "reading the checksum failed: %v", err)
	}
	if len(b) > 1024 {
		return "", errs.New(errs.Invalid, "a %s checksum file is at most 1024 bytes", alg)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "", errs.New(errs.Invalid, "the %s checksum file is empty", alg)
	}
	v := strings.ToLower(f[0])
	if !alg.ValidHex(v) {
		return "", errs.New(errs.Invalid, "%q is not a %s checksum (%d hex digits)", clip(f[0], 80), alg, alg.HexLen())
	}
	return v, nil
}

func (h *handler) putPlain(w http.ResponseWriter, r *http.Request, t *format.Target) error {
	res, err := h.d.Repos.Put(r.Context(), t.Repo, t.Path, r.Body, repo.PutOptions{
		ContentType: contentType(t.Path), Size: r.ContentLength, Declared: declaredSums(r), Hashes: uploadHashes})
	if err != nil {
		return err
	}
	if res.Created {
		w.WriteHeader(http.StatusCreated)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	return nil
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".pom", ".xml":
		return "application/xml"
	case ".jar", ".war", ".ear":
		return "application/java-archive"
	case ".asc":
		return "text/plain"
	}
	if ct := mime.TypeByExtension(path.Ext(p)); ct != "" {
		return ct
	}
	return "application/octet-stream"
}

// ---- reads

func (h *handler) get(w http.ResponseWriter, r *http.Request, t *format.Target, c *Coord) error {
	if c.Kind != File {
		e, err := h.metadata(r.Context(), t.Repo, c)
		if err != nil {
			return err
		}
		if e.stale {
			w.Header().Set("Warning", `110 - "Response is Stale"`)
		}
		if c.Checksum != "" {
			return serveChecksum(w, r, e.sum(c.Checksum), e.mod)
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("ETag", `"`+e.sum(checksum.SHA256)[:32]+`"`)
		http.ServeContent(w, r, "", e.mod, bytes.NewReader(e.body))
		return nil
	}
	if c.Checksum != "" {
		a, err := h.resolve(r.Context(), t.Repo, c)
		if err != nil {
			return err
		}
		sums, err := h.assetSums(r.Context(), a)
		if err != nil {
			return err
		}
		return serveChecksum(w, r, sums[c.Checksum], a.UpdatedAt)
	}
	return h.serveAsset(w, r, t.Repo, c.Path, c)
}

func serveChecksum(w http.ResponseWriter, r *http.Request, sum string, mod time.Time) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	http.ServeContent(w, r, "", mod, strings.NewReader(sum))
	return nil
}

func sumBytes(b []byte, alg checksum.Alg) string {
	hh := alg.New()
	hh.Write(b)
	return hex.EncodeToString(hh.Sum(nil))
}

func (h *handler) serveAsset(w http.ResponseWriter, r *http.Request, rp *repo.Repository, p string, c *Coord) error {
	ctx := r.Context()
	var (
		a   *repo.Asset
		err error
	)
	if c != nil {
		a, err = h.resolve(ctx, rp, c)
	} else {
		a, err = h.d.Repos.Get(ctx, rp, p)
	}
	if err != nil {
		return err
	}
	f, err := h.d.Repos.Open(ctx, a)
	if err != nil {
		return err
	}
	defer f.Close()
	hd := w.Header()
	sha256hex := strings.TrimPrefix(a.Blob, "sha256:")
	if sha256hex != "" {
		hd.Set("ETag", `"`+sha256hex+`"`)
		hd.Set("X-Checksum-Sha256", sha256hex)
	}
	if a.SHA1 != "" {
		hd.Set("X-Checksum-Sha1", a.SHA1)
	}
	if a.MD5 != "" {
		hd.Set("X-Checksum-Md5", a.MD5)
	}
	ct := a.ContentType
	if ct == "" {
		ct = contentType(p)
	}
	hd.Set("Content-Type", ct)
	hd.Set("X-Content-Type-Options", "nosniff")
	if rp.Kind != repo.Local && a.Repo != nil {
		hd.Set("X-Coffer-Repository", a.Repo.Key)
	}
	if a.Stale {
		hd.Set("Warning", `110 - "Response is Stale"`)
	}
	http.ServeContent(w, r, "", a.UpdatedAt, f)
	return nil
}

// resolve finds an artifact file in a repository of any kind. A remote
// repository verifies the upstream's .sha1 before caching; a virtual one
// never takes a groupId:artifactId that a local member holds from a remote
// member.
func (h *handler) resolve(ctx context.Context, rp *repo.Repository, c *Coord) (*repo.Asset, error) {
	switch rp.Kind {
	case repo.Local:
		return h.d.Repos.Get(ctx, rp, c.Path)
	case repo.Remote:
		return h.d.Repos.Fetch(ctx, rp, c.Path, h.fetchSpec(ctx, rp, c))
	}
	locals, _ := h.d.Repos.Split(rp)
	local, err := h.d.Repos.NameInLocals(ctx, rp, c.Name())
	if err != nil {
		return nil, err
	}
	if !local {
		return h.d.Repos.Resolve(ctx, rp, c.Path, func(remote *repo.Repository) repo.FetchSpec {
			return h.fetchSpec(ctx, remote, c)
		})
	}
	for _, l := range locals {
		a, err := h.d.Repos.Store().GetAsset(ctx, l.ID, c.Path)
		if err == nil {
			return &repo.Asset{Asset: a, Repo: l}, nil
		}
		if !errors.Is(err, errs.NotFound) {
			return nil, err
		}
	}
	return nil, errs.New(errs.NotFound, "%s not found in %s (%s is hosted by a local member, so remote members are not asked)", c.Path, rp.Key, c.Name())
}

// immutableFile says whether an artifact file never changes upstream: a
// release's files and a timestamped SNAPSHOT build's.
func immutableFile(c *Coord) bool { return !c.Snapshot() || c.BuildNumber > 0 }

// fetchSpec describes an artifact file for the proxy: immutable files are
// cached for good; the upstream's .sha1, when it has one, is what the
// content must match before it is cached.
func (h *handler) fetchSpec(ctx context.Context, remote *repo.Repository, c *Coord) repo.FetchSpec {
	spec := repo.FetchSpec{Immutable: immutableFile(c), Hashes: uploadHashes}
	if _, err := h.d.Repos.Store().GetAsset(ctx, remote.ID, c.Path); err == nil && spec.Immutable {
		return spec // cached: no need for the sidecar
	}
	sa, err := h.d.Repos.Fetch(ctx, remote, c.Path+".sha1", repo.FetchSpec{Immutable: spec.Immutable})
	if err != nil {
		return spec // no sidecar upstream (or unreachable): X-Checksum-* headers still count
	}
	f, err := h.d.Repos.Open(ctx, sa)
	if err != nil {
		return spec
	}
	defer f.Close()
	if v, err := readChecksum(f, checksum.SHA1); err == nil {
		spec.Declared = checksum.Sums{checksum.SHA1: v}
	}
	return spec
}

// assetSums returns every checksum of an asset, computing those the store
// does not have (content cached before they were computed).
func (h *handler) assetSums(ctx context.Context, a *repo.Asset) (checksum.Sums, error) {
	s := checksum.Sums{
		checksum.SHA256: strings.TrimPrefix(a.Blob, "sha256:"),
		checksum.SHA1:   a.SHA1, checksum.MD5: a.MD5, checksum.SHA512: a.SHA512,
	}
	if s[checksum.SHA1] != "" && s[checksum.MD5] != "" && s[checksum.SHA512] != "" && s[checksum.SHA256] != "" {
		return s, nil
	}
	f, err := h.d.Repos.OpenContent(ctx, a)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hs := checksum.NewHasher(checksum.SHA256, checksum.SHA1, checksum.MD5, checksum.SHA512)
	if _, err := io.Copy(hs, f); err != nil {
		hs.Close()
		return nil, err
	}
	return hs.Sums(), nil
}

// ---- generated metadata

// metadata returns the maven-metadata.xml a repository serves at c (the
// artifact or SNAPSHOT version level) and its modification time.
func (h *handler) metadata(ctx context.Context, rp *repo.Repository, c *Coord) (*metaEntry, error) {
	switch rp.Kind {
	case repo.Local:
		return h.localMetadata(ctx, rp, c)
	case repo.Remote:
		a, err := h.d.Repos.Fetch(ctx, rp, c.Path, repo.FetchSpec{Hashes: uploadHashes})
		if err != nil {
			return nil, err
		}
		b, err := h.readSmall(ctx, a)
		if err != nil {
			return nil, err
		}
		return &metaEntry{body: b, mod: a.UpdatedAt, stale: a.Stale}, nil
	}
	// Virtual: merged across members.
	locals, remotes := h.d.Repos.Split(rp)
	var ms []*Metadata
	var mod time.Time
	for _, l := range locals {
		e, err := h.localMetadata(ctx, l, c)
		if errs.KindOf(err) == errs.NotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		ms = append(ms, e.m)
		if e.mod.After(mod) {
			mod = e.mod
		}
	}
	if len(ms) == 0 {
		// Only when no local member holds the artifact: dependency confusion.
		local, err := h.d.Repos.NameInLocals(ctx, rp, c.Name())
		if err != nil {
			return nil, err
		}
		if !local {
			for _, rm := range remotes {
				a, err := h.d.Repos.Fetch(ctx, rm, c.Path, repo.FetchSpec{Hashes: uploadHashes})
				if err != nil {
					continue // unreachable or absent: the other members still answer
				}
				b, err := h.readSmall(ctx, a)
				if err != nil {
					continue
				}
				m, err := ParseMetadata(bytes.NewReader(b))
				if err != nil {
					continue // a broken upstream document is not merged
				}
				ms = append(ms, m)
				if a.UpdatedAt.After(mod) {
					mod = a.UpdatedAt
				}
			}
		}
	}
	var merged *Metadata
	if c.Kind == VersionMetadata {
		merged = mergeSnapshot(ms)
	} else {
		merged = mergeMetadata(c.Group, c.Artifact, ms)
	}
	if merged == nil {
		return nil, errs.New(errs.NotFound, "%s not found in %s", c.Path, rp.Key)
	}
	return &metaEntry{m: merged, body: merged.Encode(), mod: mod}, nil
}

func (h *handler) readSmall(ctx context.Context, a *repo.Asset) ([]byte, error) {
	f, err := h.d.Repos.Open(ctx, a)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetadata+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetadata {
		return nil, errs.New(errs.Upstream, "%s in %s is larger than %d bytes", a.Path, a.Repo.Key, maxMetadata)
	}
	return b, nil
}

// localMetadata computes (or takes from the cache, keyed by the name's
// generation) a local repository's metadata at c.
func (h *handler) localMetadata(ctx context.Context, rp *repo.Repository, c *Coord) (*metaEntry, error) {
	key := rp.ID + "\x00" + c.Path
	gen := h.d.Repos.Generation(rp.ID, c.Name())
	if e := h.cache.get(key, gen); e != nil {
		return e, nil
	}
	prefix := c.ArtifactDir() + "/"
	if c.Kind == VersionMetadata {
		prefix += c.Version + "/"
	}
	var files []artifactFile
	after := ""
	for {
		as, err := h.d.Repos.Store().ListAssets(ctx, rp.ID, meta.AssetQuery{Prefix: prefix, After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			if fc, err := ParsePath(strings.Split(a.Path, "/")); err == nil && fc.Kind == File && fc.Checksum == "" &&
				fc.Group == c.Group && fc.Artifact == c.Artifact {
				files = append(files, artifactFile{c: fc, updated: a.UpdatedAt})
			}
		}
		if len(as) < 1000 {
			break
		}
		after = as[len(as)-1].Path
	}
	var m *Metadata
	if c.Kind == VersionMetadata {
		m = snapshotMetadata(c.Group, c.Artifact, c.Version, files)
	} else {
		m = artifactMetadata(c.Group, c.Artifact, files)
	}
	if m == nil {
		return nil, errs.New(errs.NotFound, "%s not found in %s", c.Path, rp.Key)
	}
	var mod time.Time
	for _, f := range files {
		if f.updated.After(mod) {
			mod = f.updated
		}
	}
	e := &metaEntry{gen: gen, m: m, body: m.Encode(), mod: mod}
	for _, alg := range []checksum.Alg{checksum.SHA256, checksum.SHA1, checksum.MD5, checksum.SHA512} {
		e.sum(alg) // computed once, before the entry is shared
	}
	h.cache.put(key, e)
	return e, nil
}

type metaEntry struct {
	gen  uint64
	m    *Metadata
	body []byte
	mod  time.Time
	sums map[checksum.Alg]string
	// stale is set when a remote served its cached copy because the
	// upstream could not be asked.
	stale bool
}

// sum returns a checksum of the document. Cached entries have every sum
// computed before they are shared; others compute on demand.
func (e *metaEntry) sum(alg checksum.Alg) string {
	if v, ok := e.sums[alg]; ok {
		return v
	}
	if e.sums == nil {
		e.sums = map[checksum.Alg]string{}
	}
	v := sumBytes(e.body, alg)
	e.sums[alg] = v
	return v
}

// metaCache holds generated metadata by repository and path; an entry is
// valid while its name's generation has not moved. Bounded: when full, it
// starts over (regenerating is always correct).
type metaCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*metaEntry
}

func newMetaCache(max int) *metaCache { return &metaCache{max: max, m: map[string]*metaEntry{}} }

func (c *metaCache) get(key string, gen uint64) *metaEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[key]; e != nil && e.gen == gen {
		return e
	}
	return nil
}

func (c *metaCache) put(key string, e *metaEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[key] = e
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
