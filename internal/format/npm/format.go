package npm

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/reqctx"
)

var _ format.Format = (*Format)(nil)

// Format is the npm format.
type Format struct {
	// CacheBytes bounds the in-memory packument caches (0: 128 MiB).
	CacheBytes int64
}

// New returns the npm format.
func New() *Format { return &Format{} }

// Name implements format.Format.
func (*Format) Name() string { return "npm" }

// Handler implements format.Format.
func (f *Format) Handler(d format.Deps) http.Handler {
	size := f.CacheBytes
	if size <= 0 {
		size = 128 << 20
	}
	return &handler{d: d, f: f, docs: newLRU(size / 2), renders: newLRU(size / 2)}
}

// status is the npm format's one table from error kind to HTTP status.
// npm shows the status line and the "error" member of the body. Policy
// refusals are 403 as on the public registry (which answers a republish
// with 403); 409 is avoided because npm's CouchDB-era flows (login) read
// it as "document exists, retry with its revision".
func status(err error) int {
	switch errs.KindOf(err) {
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Exists, errs.Immutable, errs.Denied:
		return http.StatusForbidden
	case errs.Invalid, errs.DigestMismatch:
		return http.StatusBadRequest
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.TooLarge:
		return http.StatusRequestEntityTooLarge
	case errs.Quota:
		return http.StatusInsufficientStorage
	case errs.Upstream:
		return http.StatusBadGateway
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	case errs.NotAllowed:
		return http.StatusMethodNotAllowed
	case errs.Canceled:
		return 499
	}
	return http.StatusInternalServerError
}

// WriteError renders errors as npm registries do: {"error": "..."}.
func (*Format) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	reqctx.LogError(r.Context(), err)
	st := status(err)
	h := w.Header()
	if st == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="Coffer"`)
	}
	if st == http.StatusMethodNotAllowed && h.Get("Allow") == "" {
		h.Set("Allow", "GET, HEAD, PUT, DELETE")
	}
	h.Del("Content-Encoding")
	h.Del("ETag")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(st)
	if r.Method == http.MethodHead {
		return
	}
	msg := errs.Message(err)
	// The public registry's wording for a missing package, which tools match.
	if st == http.StatusNotFound && !strings.HasPrefix(msg, "Not found") {
		msg = "Not found: " + msg
	}
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
