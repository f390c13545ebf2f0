package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/checksum"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
	"github.com/cofferhq/coffer/internal/reqctx"
)

const readAction = auth.Read

func principalOf(r *http.Request) *auth.Principal { return auth.PrincipalFrom(r.Context()) }

func reqctxInfo(r *http.Request) *reqctx.Info { return reqctx.InfoFrom(r.Context()) }

// upstreamURL is where a remote OCI repository finds name's endpoint: the
// registry API root is the upstream's host, and the upstream URL's path (if
// any) prefixes the name (http://other-coffer/docker-release-local).
func upstreamURL(rem *repo.Repository, name, rest string) string {
	u := *rem.Upstream.URL
	prefix := strings.Trim(u.Path, "/")
	full := name
	if prefix != "" {
		full = prefix + "/" + name
	}
	u.Path, u.RawPath, u.RawQuery = "/v2/"+full+"/"+rest, "", ""
	return u.String()
}

// hashesFor is what to compute inline for content addressed by d: nothing
// beyond sha256, or sha512 when that is the address.
func hashesFor(d digest.Digest) []checksum.Alg {
	if d.Algorithm() == digest.SHA512 {
		return []checksum.Alg{checksum.SHA512}
	}
	return []checksum.Alg{}
}

func declaredFor(d digest.Digest) checksum.Sums {
	if d.Algorithm() == digest.SHA512 {
		return checksum.Sums{checksum.SHA512: d.Encoded()}
	}
	return checksum.Sums{checksum.SHA256: d.Encoded()}
}

// blobSpec fetches a blob from a remote: immutable, verified against its digest.
func blobSpec(name string, d digest.Digest) func(*repo.Repository) repo.FetchSpec {
	return func(rem *repo.Repository) repo.FetchSpec {
		return repo.FetchSpec{Immutable: true, URL: upstreamURL(rem, name, "blobs/"+d.String()),
			Declared: declaredFor(d), Hashes: hashesFor(d), Stream: true, ChallengeAuth: true}
	}
}

// manifestSpec fetches a manifest: by digest immutable and verified, by tag
// revalidated after the metadata TTL.
func manifestSpec(name, ref string) func(*repo.Repository) repo.FetchSpec {
	return func(rem *repo.Repository) repo.FetchSpec {
		s := repo.FetchSpec{URL: upstreamURL(rem, name, "manifests/"+ref), Header: http.Header{"Accept": {manifestAccept}},
			Hashes: []checksum.Alg{}, ChallengeAuth: true}
		if d, ok := parseDigest(ref); ok {
			s.Immutable, s.Declared, s.Hashes = true, declaredFor(d), hashesFor(d)
		}
		return s
	}
}

// ---- manifests

// findManifest resolves a manifest reference in a repository of any kind.
func (h *handler) findManifest(ctx context.Context, rp *repo.Repository, name, ref string) (*repo.Asset, digest.Digest, error) {
	unknown := newErr(codeManifestUnknown, http.StatusNotFound, errs.NotFound, map[string]string{"reference": ref},
		"manifest %s not found in %s/%s", ref, rp.Key, name)
	members := []*repo.Repository{rp}
	if rp.Kind == repo.Virtual {
		locals, remotes := h.repos.Split(rp)
		members = append(locals, remotes...)
	}
	var upstreamErr error
	for _, m := range members {
		if m.Kind == repo.Remote {
			a, err := h.repos.Fetch(ctx, m, manifestPath(name, ref), manifestSpec(name, ref)(m))
			if err != nil {
				if errs.KindOf(err) != errs.NotFound {
					upstreamErr = err
				}
				continue
			}
			d, ok := parseDigest(ref)
			if !ok {
				d = digest.Digest(a.Blob) // a tag: the content's sha256
				if a.Stream == nil {
					// Pulls by digest (the next step of every client) are then
					// served from the cache too, also with the upstream down.
					h.repos.CacheAlias(ctx, m, manifestPath(name, d.String()), a.Asset)
				}
			}
			return a, d, nil
		}
		// The generation is read before the lookups, so that an entry
		// never outlives a change it did not see.
		key, gen := refKey(m.ID, name, ref), h.repos.Generation(m.ID, name)
		if e, ok := h.cache.ref(key, gen); ok {
			a := e.asset
			return &repo.Asset{Asset: &a, Repo: m}, e.d, nil
		}
		d, ok := parseDigest(ref)
		if !ok {
			t, err := h.repos.Store().GetTag(ctx, m.ID, name, ref)
			if errors.Is(err, errs.NotFound) {
				continue
			}
			if err != nil {
				return nil, "", err
			}
			d = digest.Digest(t.Target)
		}
		a, err := h.repos.Store().GetAsset(ctx, m.ID, manifestPath(name, d.String()))
		if errors.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		h.cache.putRef(key, refEntry{gen: gen, asset: *a, d: d})
		return &repo.Asset{Asset: a, Repo: m}, d, nil
	}
	if upstreamErr != nil && rp.Kind == repo.Remote {
		return nil, "", upstreamErr
	}
	return nil, "", unknown
}

func (h *handler) getManifest(w http.ResponseWriter, r *http.Request, rp *repo.Repository, rt route) error {
	if isDigest(rt.ref) {
		if _, ok := parseDigest(rt.ref); !ok {
			return newErr(codeDigestInvalid, http.StatusBadRequest, errs.Invalid, nil, "invalid digest %q", rt.ref)
		}
	} else if !tagPattern.MatchString(rt.ref) {
		return newErr(codeManifestInvalid, http.StatusBadRequest, errs.Invalid, nil, "invalid tag %q", rt.ref)
	}
	a, d, err := h.findManifest(r.Context(), rp, rt.name, rt.ref)
	if err != nil {
		return err
	}
	return h.serveAsset(w, r, a, d, a.ContentType)
}

// serveAsset sends an asset's bytes with the registry's headers.
func (h *handler) serveAsset(w http.ResponseWriter, r *http.Request, a *repo.Asset, d digest.Digest, ct string) error {
	var f io.ReadSeeker
	small := a.Stream == nil && a.Size <= maxCachedContent
	if b, ok := h.cache.content(a.Blob); small && ok {
		h.repos.RecordDownload(a.ID)
		f = bytes.NewReader(b)
	} else {
		rc, err := h.repos.OpenContent(r.Context(), a)
		if err != nil {
			return err
		}
		defer rc.Close()
		f = rc
		if small {
			b, err := io.ReadAll(io.LimitReader(rc, maxCachedContent+1))
			if err != nil {
				return err
			}
			if int64(len(b)) == a.Size {
				h.cache.putContent(a.Blob, b)
			}
			f = bytes.NewReader(b)
		}
	}
	hd := w.Header()
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("ETag", `"`+d.String()+`"`)
	hd.Set("Content-Type", ct)
	hd.Set("X-Content-Type-Options", "nosniff")
	if a.Stale {
		hd.Set("Warning", `110 - "Response is Stale"`)
	}
	http.ServeContent(w, r, "", a.UpdatedAt, f)
	return nil
}

func (h *handler) putManifest(w http.ResponseWriter, r *http.Request, rp *repo.Repository, rt route) error {
	var want digest.Digest
	if isDigest(rt.ref) {
		d, ok := parseDigest(rt.ref)
		if !ok {
			return newErr(codeDigestInvalid, http.StatusBadRequest, errs.Invalid, nil, "invalid digest %q", rt.ref)
		}
		want = d
	} else if !tagPattern.MatchString(rt.ref) {
		return newErr(codeManifestInvalid, http.StatusBadRequest, errs.Invalid, map[string]string{"tag": rt.ref},
			"invalid tag %q: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", rt.ref)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifest+1))
	if err != nil {
		return errs.Wrap(errs.Canceled, err, "reading the manifest failed")
	}
	if len(body) > maxManifest {
		return newErr(codeSizeInvalid, http.StatusRequestEntityTooLarge, errs.TooLarge, nil, "manifest exceeds %d bytes", maxManifest)
	}
	m, err := parseManifest(r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	d := digestOf(body, want)
	if want != "" && d != want {
		return newErr(codeDigestInvalid, http.StatusBadRequest, errs.DigestMismatch, map[string]string{"digest": want.String()},
			"manifest content has digest %s, not %s", d, want)
	}
	target, err := h.repos.DeployTarget(rp)
	if err != nil {
		return err
	}
	// Everything the manifest references must be in the repository.
	store := h.repos.Store()
	for _, b := range m.Blobs {
		if external(b) {
			continue
		}
		if _, err := store.GetAsset(r.Context(), target.ID, blobPath(rt.name, b.Digest)); err != nil {
			if errors.Is(err, errs.NotFound) {
				return newErr(codeManifestBlobUnknown, http.StatusBadRequest, errs.Invalid, map[string]string{"digest": b.Digest.String()},
					"blob %s referenced by the manifest is not in %s/%s: push it first", b.Digest, target.Key, rt.name)
			}
			return err
		}
	}
	for _, c := range m.Children {
		if _, err := store.GetAsset(r.Context(), target.ID, manifestPath(rt.name, c.Digest.String())); err != nil {
			if errors.Is(err, errs.NotFound) {
				return newErr(codeManifestBlobUnknown, http.StatusBadRequest, errs.Invalid, map[string]string{"digest": c.Digest.String()},
					"manifest %s listed in the index is not in %s/%s: push it first", c.Digest, target.Key, rt.name)
			}
			return err
		}
	}
	// The tags to set: the reference when it is a tag; with a digest
	// reference, any ?tag= parameters (distribution spec 1.1).
	var tags []string
	if want == "" {
		tags = []string{rt.ref}
	} else {
		for _, t := range r.URL.Query()["tag"] {
			if !tagPattern.MatchString(t) {
				return newErr(codeManifestInvalid, http.StatusBadRequest, errs.Invalid, map[string]string{"tag": t}, "invalid tag %q", t)
			}
			tags = append(tags, t)
		}
	}
	links := []meta.Link{}
	for _, b := range m.Blobs {
		links = append(links, meta.Link{Name: rt.name, Source: d.String(), Target: b.Digest.String(), Kind: "blob"})
	}
	for _, c := range m.Children {
		links = append(links, meta.Link{Name: rt.name, Source: d.String(), Target: c.Digest.String(), Kind: "manifest"})
	}
	if m.Subject != nil {
		links = append(links, meta.Link{Name: rt.name, Source: d.String(), Target: m.Subject.Digest.String(), Kind: "subject"})
	}
	check := func(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
		for _, tag := range tags {
			t, err := tx.GetTag(ctx, target.ID, rt.name, tag)
			switch {
			case err == nil && t.Target != d.String():
				if !target.Policy.Overwrite {
					return newErr(codeDenied, http.StatusForbidden, errs.Immutable, map[string]string{"tag": tag},
						"tag %s is immutable in %s", tag, target.Key)
				}
				if err := h.d.Auth.Authorize(ctx, auth.PrincipalFrom(ctx), auth.Overwrite, target.Key); err != nil {
					return err
				}
			case err != nil && !errors.Is(err, errs.NotFound):
				return err
			}
			if err := tx.SetTag(ctx, &meta.Tag{RepoID: target.ID, Name: rt.name, Tag: tag, Target: d.String()}); err != nil {
				return err
			}
		}
		for i := range links {
			links[i].RepoID = target.ID
		}
		return tx.PutLinks(ctx, links)
	}
	res, err := h.repos.Put(r.Context(), rp, manifestPath(rt.name, d.String()), bytes.NewReader(body), repo.PutOptions{
		ContentType: m.MediaType,
		Size:        int64(len(body)),
		Declared:    declaredFor(d),
		Hashes:      hashesFor(d),
		Component:   &repo.ComponentSpec{Name: rt.name, Version: d.String(), Attributes: m.attributes(int64(len(body)))},
		Check:       check,
	})
	if err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("Location", "/v2/"+res.Asset.Repo.Key+"/"+rt.name+"/manifests/"+d.String())
	hd.Set("Docker-Content-Digest", d.String())
	if m.Subject != nil {
		hd.Set("OCI-Subject", m.Subject.Digest.String())
	}
	for _, t := range tags {
		hd.Add("OCI-Tag", t)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (h *handler) deleteManifest(w http.ResponseWriter, r *http.Request, rp *repo.Repository, rt route) error {
	ctx := r.Context()
	if !isDigest(rt.ref) {
		// Deleting a tag removes the tag only (the manifest may carry others).
		err := h.repos.Mutate(ctx, rp, auth.Delete, rt.name, "untag", func(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
			if err := tx.DeleteTag(ctx, target.ID, rt.name, rt.ref); err != nil {
				if errors.Is(err, errs.NotFound) {
					return newErr(codeManifestUnknown, http.StatusNotFound, errs.NotFound, nil, "tag %s not found in %s/%s", rt.ref, target.Key, rt.name)
				}
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	d, ok := parseDigest(rt.ref)
	if !ok {
		return newErr(codeDigestInvalid, http.StatusBadRequest, errs.Invalid, nil, "invalid digest %q", rt.ref)
	}
	err := h.repos.Mutate(ctx, rp, auth.Delete, rt.name, "delete manifest", func(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
		c, err := tx.GetComponent(ctx, target.ID, rt.name, d.String())
		if err != nil {
			if errors.Is(err, errs.NotFound) {
				return newErr(codeManifestUnknown, http.StatusNotFound, errs.NotFound, nil, "manifest %s not found in %s/%s", d, target.Key, rt.name)
			}
			return err
		}
		// Deleting a manifest removes every tag on it (the spec's semantics;
		// untag is DELETE of a tag).
		tags, err := tx.ListTags(ctx, target.ID, rt.name)
		if err != nil {
			return err
		}
		for _, t := range tags {
			if t.Target == d.String() {
				if err := tx.DeleteTag(ctx, target.ID, rt.name, t.Tag); err != nil {
					return err
				}
			}
		}
		if err := tx.DeleteLinksFrom(ctx, target.ID, rt.name, d.String()); err != nil {
			return err
		}
		_, err = repo.RemoveComponent(ctx, tx, c)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// ---- blobs

func (h *handler) getBlob(w http.ResponseWriter, r *http.Request, rp *repo.Repository, rt route) error {
	d, ok := parseDigest(rt.ref)
	if !ok {
		return newErr(codeDigestInvalid, http.StatusBadRequest, errs.Invalid, nil, "invalid digest %q", rt.ref)
	}
	a, err := h.repos.Resolve(r.Context(), rp, blobPath(rt.name, d), blobSpec(rt.name, d))
	if err != nil {
		if errs.KindOf(err) == errs.NotFound {
			return newErr(codeBlobUnknown, http.StatusNotFound, errs.NotFound, map[string]string{"digest": d.String()},
				"blob %s not found in %s/%s", d, rp.Key, rt.name)
		}
		return err
	}
	if r.Method == http.MethodGet {
		// A blob store that can hand out direct URLs (S3 with redirect)
		// spares this node the bytes, as distribution does.
		u, err := h.repos.RedirectURL(r.Context(), a)
		if err != nil {
			return err
		}
		if u != "" {
			w.Header().Set("Docker-Content-Digest", d.String())
			http.Redirect(w, r, u, http.StatusTemporaryRedirect)
			return nil
		}
	}
	return h.serveAsset(w, r, a, d, "application/octet-stream")
}

func (h *handler) deleteBlob(w http.ResponseWriter, r *http.Request, rp *repo.Repository, rt route) error {
	d, ok := parseDigest(rt.ref)
	if !ok {
		return newErr(codeDigestInvalid, http.StatusBadRequest, errs.Invalid, nil, "invalid digest %q", rt.ref)
	}
	err := h.repos.Mutate(r.Context(), rp, auth.Delete, rt.name, "delete blob", func(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
		if err := tx.DeleteAsset(ctx, target.ID, blobPath(rt.name, d)); err != nil {
			if errors.Is(err, errs.NotFound) {
				return newErr(codeBlobUnknown, http.StatusNotFound, errs.NotFound, nil, "blob %s not found in %s/%s", d, target.Key, rt.name)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// ---- tags, referrers, catalog

// page applies the spec's n/last pagination to a sorted list and sets the
// Link header for the next page.
func page(w http.ResponseWriter, r *http.Request, items []string, base string) ([]string, error) {
	q := r.URL.Query()
	if last := q.Get("last"); last != "" {
		i := 0
		for i < len(items) && items[i] <= last {
			i++
		}
		items = items[i:]
	}
	if ns := q.Get("n"); ns != "" {
		var n int
		if _, err := fmt.Sscanf(ns, "%d", &n); err != nil || n < 0 {
			return nil, newErr(codeUnsupported, http.StatusBadRequest, errs.Invalid, nil, "n must be a non-negative number")
		}
		if n < len(items) {
			items = items[:n]
			if n > 0 {
				next := url.Values{"n": {ns}, "last": {items[n-1]}}
				w.Header().Set("Link", "<"+base+"?"+next.Encode()+`>; rel="next"`)
			}
		}
	}
	return items, nil
}

func (h *handler) listTags(w http.ResponseWriter, r *http.Request, rp *repo.Repository, rt route) error {
	ctx := r.Context()
	seen := map[string]bool{}
	known := false
	members := []*repo.Repository{rp}
	if rp.Kind == repo.Virtual {
		members = h.repos.Members(rp)
	}
	for _, m := range members {
		if m.Kind == repo.Remote {
			a, err := h.repos.Fetch(ctx, m, tagListPath(rt.name), repo.FetchSpec{URL: upstreamURL(m, rt.name, "tags/list"), Hashes: []checksum.Alg{}, ChallengeAuth: true})
			if err != nil {
				if errs.KindOf(err) == errs.NotFound || rp.Kind == repo.Virtual {
					continue
				}
				return err
			}
			f, err := h.repos.Blobs().Open(ctx, digest.Digest(a.Blob))
			if err != nil {
				return err
			}
			var body struct {
				Tags []string `json:"tags"`
			}
			err = json.NewDecoder(io.LimitReader(f, 16<<20)).Decode(&body)
			f.Close()
			if err != nil {
				return errs.New(errs.Upstream, "the upstream of %s sent an unreadable tag list", m.Key)
			}
			known = true
			for _, t := range body.Tags {
				seen[t] = true
			}
			continue
		}
		tags, err := h.repos.Store().ListTags(ctx, m.ID, rt.name)
		if err != nil {
			return err
		}
		if len(tags) > 0 {
			known = true
		} else if cs, err := h.repos.Store().ListComponents(ctx, m.ID, rt.name); err == nil && len(cs) > 0 {
			known = true
		}
		for _, t := range tags {
			seen[t.Tag] = true
		}
	}
	if !known {
		return newErr(codeNameUnknown, http.StatusNotFound, errs.NotFound, map[string]string{"name": rt.full()},
			"repository name %s is not known", rt.full())
	}
	all := make([]string, 0, len(seen))
	for t := range seen {
		all = append(all, t)
	}
	sortStrings(all)
	out, err := page(w, r, all, "/v2/"+rt.full()+"/tags/list")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]any{"name": rt.full(), "tags": out})
}

func (h *handler) referrers(w http.ResponseWriter, r *http.Request, rp *repo.Repository, rt route) error {
	ctx := r.Context()
	d, ok := parseDigest(rt.ref)
	if !ok {
		return newErr(codeDigestInvalid, http.StatusBadRequest, errs.Invalid, nil, "invalid digest %q", rt.ref)
	}
	filter := r.URL.Query().Get("artifactType")
	descs := []v1.Descriptor{}
	seen := map[digest.Digest]bool{}
	members := []*repo.Repository{rp}
	if rp.Kind == repo.Virtual {
		members = h.repos.Members(rp)
	}
	for _, m := range members {
		if m.Kind == repo.Remote {
			a, err := h.repos.Fetch(ctx, m, referrersPath(rt.name, d), repo.FetchSpec{URL: upstreamURL(m, rt.name, "referrers/"+d.String()),
				Header: http.Header{"Accept": {mtOCIIndex}}, Hashes: []checksum.Alg{}, ChallengeAuth: true})
			if err != nil {
				continue // an upstream without the referrers API has none to offer
			}
			f, err := h.repos.Blobs().Open(ctx, digest.Digest(a.Blob))
			if err != nil {
				return err
			}
			var idx v1.Index
			err = json.NewDecoder(io.LimitReader(f, maxManifest)).Decode(&idx)
			f.Close()
			if err != nil {
				continue
			}
			for _, desc := range idx.Manifests {
				if !seen[desc.Digest] {
					seen[desc.Digest] = true
					descs = append(descs, desc)
				}
			}
			continue
		}
		links, err := h.repos.Store().ListLinksTo(ctx, m.ID, rt.name, d.String(), "subject")
		if err != nil {
			return err
		}
		for _, l := range links {
			c, err := h.repos.Store().GetComponent(ctx, m.ID, rt.name, l.Source)
			if err != nil {
				continue // deleted meanwhile
			}
			var at attrs
			json.Unmarshal(c.Attributes, &at)
			dd := digest.Digest(l.Source)
			if seen[dd] {
				continue
			}
			seen[dd] = true
			descs = append(descs, v1.Descriptor{MediaType: at.MediaType, Digest: dd, Size: at.Size,
				ArtifactType: at.ArtifactType, Annotations: at.Annotations})
		}
	}
	if filter != "" {
		kept := descs[:0]
		for _, desc := range descs {
			if desc.ArtifactType == filter {
				kept = append(kept, desc)
			}
		}
		descs = kept
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", mtOCIIndex)
	return json.NewEncoder(w).Encode(v1.Index{Versioned: specsVersioned(), MediaType: mtOCIIndex, Manifests: descs})
}

func (h *handler) catalog(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principalOf(r)
	if p.TokenName == registryToken && !p.IsAnonymous() {
		// A registry token is scoped to image names, never to the catalog:
		// the catalog lists what its user may read.
		p = &auth.Principal{User: p.User}
	}
	var all []string
	for _, rp := range h.repos.List() {
		if rp.Format != "oci" || rp.Kind == repo.Virtual || !h.d.Auth.Can(ctx, p, auth.Read, rp.Key) {
			continue
		}
		after := ""
		for {
			names, err := h.repos.Store().ListComponentNames(ctx, rp.ID, meta.NameQuery{After: after, Limit: 1000})
			if err != nil {
				return err
			}
			for _, n := range names {
				all = append(all, rp.Key+"/"+n)
			}
			if len(names) < 1000 {
				break
			}
			after = names[len(names)-1]
		}
	}
	sortStrings(all)
	out, err := page(w, r, all, "/v2/_catalog")
	if err != nil {
		return err
	}
	if out == nil {
		out = []string{}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]any{"repositories": out})
}
