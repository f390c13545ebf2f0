// Package oci is the OCI distribution format: container images, Helm charts
// as OCI artifacts, signatures and SBOMs, served under /v2/<repo>/<name>/...
// where the first name segment is the Coffer repository key
// (host/docker-release-local/team/api:v2.3.0). It implements the
// distribution spec 1.1: pulls and pushes (monolithic, chunked and
// resumable), cross-repository mounts, tag listing, the catalog, deletes as
// the tier allows, and the referrers API; plus the token endpoint
// docker-class clients expect.
//
// Storage: a blob of an image name is an asset at <name>/_blobs/<digest>,
// a manifest an asset at <name>/_manifests/<digest> grouped in a component
// (name, digest) whose attributes answer the referrers API; tags are the
// core's tags; links record what a manifest references (blobs, child
// manifests, its subject).
package oci

import (
	"net/http"
	"strings"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/repo"
)

var (
	_ format.Format  = (*Format)(nil)
	_ format.Mounter = (*Format)(nil)
)

// Format is the OCI format.
type Format struct{}

// New returns the OCI format.
func New() *Format { return &Format{} }

// Name implements format.Format.
func (*Format) Name() string { return "oci" }

// Handler implements format.Format: OCI repositories live under /v2/, not
// /repository/.
func (f *Format) Handler(d format.Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := format.TargetFrom(r.Context())
		f.WriteError(w, r, errs.New(errs.NotAllowed,
			"%s is an OCI repository: use %s/v2/%s/<image>/... (docker pull %s/%s/<image>:<tag>)",
			t.Repo.Key, d.BaseURL, t.Repo.Key, strings.TrimPrefix(strings.TrimPrefix(d.BaseURL, "http://"), "https://"), t.Repo.Key))
	})
}

// WriteError implements format.Format.
func (f *Format) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	(&handler{}).writeError(w, r, err, "")
}

// Mounts implements format.Mounter.
func (f *Format) Mounts(d format.Deps) map[string]http.Handler {
	h := newHandler(d)
	return map[string]http.Handler{"/v2/": h}
}

type handler struct {
	d       format.Deps
	repos   *repo.Manager
	tokens  *tokenService
	service string
	cache   *cache
}

func newHandler(d format.Deps) *handler {
	h := &handler{d: d, repos: d.Repos, cache: newCache()}
	h.service = strings.TrimPrefix(strings.TrimPrefix(d.BaseURL, "http://"), "https://")
	h.tokens = newTokenService(h)
	d.Auth.AddBearer(h.tokens.verify)
	return h
}

// challenge is the WWW-Authenticate value of a 401.
func (h *handler) challenge(scope string) string {
	c := `Bearer realm="` + h.d.BaseURL + `/v2/token",service="` + h.service + `"`
	if scope != "" {
		c += `,scope="` + scope + `"`
	}
	return c
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setDistributionHeader(w)
	p := r.URL.EscapedPath()
	rest := strings.TrimPrefix(p, "/v2/")
	if p == "/v2" {
		rest = ""
	}
	switch rest {
	case "":
		h.base(w, r)
		return
	case "token":
		h.tokens.serve(w, r)
		return
	case "_catalog":
		r2, err := h.d.Authenticate(r)
		if err != nil {
			h.writeError(w, r, err, "registry:catalog:*")
			return
		}
		if err := h.catalog(w, r2); err != nil {
			h.writeError(w, r2, err, "registry:catalog:*")
		}
		return
	}
	rt, ok := parseRoute(rest)
	if !ok {
		h.writeError(w, r, newErr(codeNameInvalid, http.StatusNotFound, errs.NotFound, nil,
			"%s is not a registry endpoint: expected /v2/<repository>/<name>/(manifests|blobs|tags|referrers)/...", r.URL.Path), "")
		return
	}
	scope := "repository:" + rt.full() + ":" + scopeActions(r.Method, rt.kind)
	if !validName(rt.name) {
		h.writeError(w, r, newErr(codeNameInvalid, http.StatusBadRequest, errs.Invalid, map[string]string{"name": rt.full()},
			"invalid repository name %q: lower-case letters, digits and separators (. _ __ -) in /-separated components", rt.full()), scope)
		return
	}
	r, err := h.d.Authenticate(r)
	if err != nil {
		h.writeError(w, r, err, scope)
		return
	}
	rp, err := h.repos.Repo(rt.key)
	if err == nil && rp.Format != "oci" {
		err = errs.New(errs.NotFound, "repository %s is a %s repository, not an OCI one", rp.Key, rp.Format)
	}
	if err != nil {
		h.writeError(w, r, newErr(codeNameUnknown, http.StatusNotFound, errs.NotFound, map[string]string{"name": rt.full()},
			"%v", err), scope)
		return
	}
	info := reqctxInfo(r)
	info.Repo, info.Format = rp.Key, "oci"
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && rt.kind != "uploads" {
		if err := h.d.Auth.Authorize(r.Context(), principalOf(r), readAction, rp.Key); err != nil {
			h.writeError(w, r, err, scope)
			return
		}
	}
	if err := h.dispatch(w, r, rp, rt); err != nil {
		h.writeError(w, r, h.rescope(r, rp, rt, err), scope)
	}
}

// scopeActions is what a client needs in its token for a request. Upload
// sessions are all push, whatever the method.
func scopeActions(method, kind string) string {
	if kind == "uploads" {
		return "pull,push"
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		return "pull"
	case http.MethodDelete:
		return "delete"
	}
	return "pull,push"
}

// rescope turns a refusal caused only by a registry token's scope into a
// 401 with a challenge, so the client fetches a token for the scope it
// needs (docker-class clients cache a token per scope); a refusal the user
// would get anyway stays a 403 naming what is missing.
func (h *handler) rescope(r *http.Request, rp *repo.Repository, rt route, err error) error {
	p := principalOf(r)
	if errs.KindOf(err) != errs.Denied || p.TokenName != registryToken {
		return err
	}
	action := auth.Write
	switch {
	case rt.kind == "uploads":
	case r.Method == http.MethodDelete:
		action = auth.Delete
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		action = auth.Read
	}
	if p.IsAnonymous() || !h.d.Auth.Can(r.Context(), &auth.Principal{User: p.User}, action, rp.Key) {
		return err
	}
	return errs.Wrap(errs.Unauthenticated, err, "the registry token does not grant %s on %s; request a token with that scope", action, rp.Key)
}

func (h *handler) dispatch(w http.ResponseWriter, r *http.Request, rp *repo.Repository, rt route) error {
	m := r.Method
	switch rt.kind {
	case "manifests":
		switch m {
		case http.MethodGet, http.MethodHead:
			return h.getManifest(w, r, rp, rt)
		case http.MethodPut:
			return h.putManifest(w, r, rp, rt)
		case http.MethodDelete:
			return h.deleteManifest(w, r, rp, rt)
		}
	case "blobs":
		switch m {
		case http.MethodGet, http.MethodHead:
			return h.getBlob(w, r, rp, rt)
		case http.MethodDelete:
			return h.deleteBlob(w, r, rp, rt)
		}
	case "uploads":
		switch {
		case m == http.MethodPost && rt.ref == "":
			return h.startUpload(w, r, rp, rt)
		case rt.ref == "":
		case m == http.MethodPatch:
			return h.patchUpload(w, r, rp, rt)
		case m == http.MethodPut:
			return h.finishUpload(w, r, rp, rt)
		case m == http.MethodGet:
			return h.uploadStatus(w, r, rp, rt)
		case m == http.MethodDelete:
			return h.cancelUpload(w, r, rp, rt)
		}
	case "tags":
		if m == http.MethodGet || m == http.MethodHead {
			return h.listTags(w, r, rp, rt)
		}
	case "referrers":
		if m == http.MethodGet || m == http.MethodHead {
			return h.referrers(w, r, rp, rt)
		}
	}
	return newErr(codeUnsupported, http.StatusMethodNotAllowed, errs.NotAllowed, nil, "%s is not supported on %s", m, r.URL.Path)
}

// base answers GET /v2/: 200 for an authenticated caller, 401 with the
// Bearer challenge otherwise (clients log in on that answer).
func (h *handler) base(w http.ResponseWriter, r *http.Request) {
	r2, err := h.d.Authenticate(r)
	if err == nil && principalOf(r2).IsAnonymous() {
		err = errs.New(errs.Unauthenticated, "authentication required")
	}
	if err != nil {
		h.writeError(w, r, err, "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte("{}\n"))
}
