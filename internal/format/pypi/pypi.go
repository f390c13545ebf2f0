package pypi

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/reqctx"
)

var _ format.Format = (*Format)(nil)

// Format is the PyPI format.
type Format struct{}

// New returns the PyPI format.
func New() *Format { return &Format{} }

// Name implements format.Format.
func (*Format) Name() string { return "pypi" }

// Handler implements format.Format.
func (f *Format) Handler(d format.Deps) http.Handler { return newHandler(d, f) }

// status is the format's table from error kind to HTTP status. pip and
// twine read the status line (and twine prints the reason phrase). twine
// retries 5xx answers: a full quota is a 400, as PyPI's size limits are.
func status(err error, upload bool) int {
	switch k := errs.KindOf(err); {
	case upload && (k == errs.Exists || k == errs.Immutable || k == errs.Quota):
		return http.StatusBadRequest // PyPI: "400 File already exists"
	case k == errs.Exists:
		return http.StatusConflict
	}
	return errs.HTTPStatus(err)
}

// WriteError renders errors as plain text, the shape pip and twine print.
func (f *Format) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	f.writeError(w, r, err, false)
}

func (f *Format) writeError(w http.ResponseWriter, r *http.Request, err error, upload bool) {
	reqctx.LogError(r.Context(), err)
	code := status(err, upload)
	msg := errs.Message(err)
	h := w.Header()
	if code == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="Coffer"`)
	}
	if code == http.StatusMethodNotAllowed && h.Get("Allow") == "" {
		h.Set("Allow", "GET, HEAD")
	}
	if upload && format.ReplyWithReason(w, r, code, msg) {
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		io.WriteString(w, msg+"\n")
	}
}

// handler serves one Coffer's PyPI repositories.
type handler struct {
	d     format.Deps
	f     *Format
	pages *pageCache
}

func newHandler(d format.Deps, f *Format) *handler {
	return &handler{d: d, f: f, pages: newPageCache(4096)}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := format.TargetFrom(r.Context())
	upload := len(t.Segments) == 0 && r.Method == http.MethodPost
	err := h.route(w, r, t)
	if err != nil {
		h.f.writeError(w, r, err, upload)
	}
}

var errNoRoute = errors.New("no route")

func (h *handler) route(w http.ResponseWriter, r *http.Request, t *format.Target) error {
	for _, s := range t.Segments {
		if strings.Contains(s, "/") {
			return errs.New(errs.Invalid, "encoded slashes are not allowed in PyPI paths")
		}
	}
	segs := t.Segments
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	base := "/repository/" + t.Repo.Key + "/"
	switch {
	case len(segs) == 0:
		switch {
		case r.Method == http.MethodPost:
			return h.upload(w, r, t)
		case get:
			return errs.New(errs.NotFound, "this is the upload URL of %s; the index is at %ssimple/", t.Repo.Key, base)
		}
		return notAllowed(w, "GET, HEAD, POST")
	case segs[0] == "simple":
		if !get {
			return notAllowed(w, "GET, HEAD")
		}
		switch len(segs) {
		case 1:
			if !t.Trailing {
				http.Redirect(w, r, base+"simple/", http.StatusMovedPermanently)
				return nil
			}
			return h.serveRoot(w, r, t.Repo)
		case 2:
			name := segs[1]
			if err := checkName(name); err != nil {
				return err
			}
			if n := normalize(name); n != name || !t.Trailing {
				// PEP 503: one URL per project.
				http.Redirect(w, r, base+"simple/"+n+"/"+query(r), http.StatusMovedPermanently)
				return nil
			}
			return h.serveProject(w, r, t.Repo, name)
		}
	case segs[0] == "packages" && len(segs) == 4:
		switch {
		case get:
			return h.serveFile(w, r, t.Repo, segs[1], segs[2], segs[3])
		case r.Method == http.MethodDelete:
			return h.deleteFile(w, r, t.Repo, segs[1], segs[2], segs[3])
		}
		return notAllowed(w, "GET, HEAD, DELETE")
	case segs[0] == "pypi" && len(segs) >= 3:
		name := segs[1]
		if err := checkName(name); err != nil {
			return err
		}
		last := segs[len(segs)-1]
		switch {
		case len(segs) <= 4 && last == "json":
			if !get {
				return notAllowed(w, "GET, HEAD")
			}
			version := ""
			if len(segs) == 4 {
				version = segs[2]
			}
			if n := normalize(name); n != name {
				http.Redirect(w, r, base+"pypi/"+strings.Join(append([]string{n}, segs[2:]...), "/"), http.StatusMovedPermanently)
				return nil
			}
			return h.serveJSON(w, r, t.Repo, name, version)
		case len(segs) == 4 && last == "yank":
			switch r.Method {
			case http.MethodPost, http.MethodPut:
				return h.yank(w, r, t.Repo, normalize(name), segs[2], true)
			case http.MethodDelete:
				return h.yank(w, r, t.Repo, normalize(name), segs[2], false)
			}
			return notAllowed(w, "POST, DELETE")
		case len(segs) == 3:
			if r.Method == http.MethodDelete {
				return h.deleteRelease(w, r, t.Repo, normalize(name), segs[2])
			}
			return notAllowed(w, "DELETE")
		}
	}
	return errs.New(errs.NotFound, "%s not found in %s: PyPI repositories serve simple/, packages/ and pypi/<project>/json", clip(t.Path, 100), t.Repo.Key)
}

func notAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return errs.New(errs.NotAllowed, "method not allowed here (allowed: %s)", allow)
}

func query(r *http.Request) string {
	if r.URL.RawQuery != "" {
		return "?" + r.URL.RawQuery
	}
	return ""
}
