package maven

import (
	"io"
	"net/http"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/reqctx"
)

var _ format.Format = (*Format)(nil)

// Format is the Maven 2 format.
type Format struct{}

// New returns the Maven format.
func New() *Format { return &Format{} }

// Name implements format.Format.
func (*Format) Name() string { return "maven" }

// Handler implements format.Format.
func (f *Format) Handler(d format.Deps) http.Handler { return newHandler(d, f) }

// status is the format's table from error kind to HTTP status: what Nexus
// and Artifactory answer Maven clients.
func status(err error) int {
	switch errs.KindOf(err) {
	case errs.Exists, errs.Immutable:
		return http.StatusConflict
	}
	return errs.HTTPStatus(err)
}

// WriteError renders errors as plain text. For uploads and deletes over
// HTTP/1.1 the message is also the status line's reason phrase: Maven's
// HTTP transport prints "Return code is: 409, ReasonPhrase: <phrase>" and
// never the body.
func (f *Format) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	reqctx.LogError(r.Context(), err)
	code := status(err)
	msg := errs.Message(err)
	h := w.Header()
	if code == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="Coffer"`)
	}
	if code == http.StatusMethodNotAllowed && h.Get("Allow") == "" {
		h.Set("Allow", "GET, HEAD, PUT, DELETE")
	}
	write := r.Method == http.MethodPut || r.Method == http.MethodDelete || r.Method == http.MethodPost
	if write && format.ReplyWithReason(w, r, code, msg) {
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		io.WriteString(w, msg+"\n")
	}
}
