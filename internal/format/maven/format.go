package maven

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

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
	if write && r.ProtoMajor == 1 && replyWithReason(w, r, code, msg) {
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		io.WriteString(w, msg+"\n")
	}
}

// replyWithReason writes the answer on the hijacked connection with msg as
// the reason phrase (Go's server always writes the standard phrase). What
// the client is still sending is read first (bounded), so that it reads
// the answer instead of a reset.
func replyWithReason(w http.ResponseWriter, r *http.Request, code int, msg string) bool {
	rc := http.NewResponseController(w)
	if r.Body != nil {
		rc.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
	}
	conn, buf, err := rc.Hijack()
	if err != nil {
		return false
	}
	defer conn.Close()
	reqctx.InfoFrom(r.Context()).Status = code
	body := msg + "\n"
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %03d %s\r\n", code, reasonPhrase(msg))
	for k, vs := range w.Header() {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, headerSafe(v))
		}
	}
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	if r.Method != http.MethodHead {
		b.WriteString(body)
	}
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	writeAll(buf.Writer, b.String())
	return true
}

func writeAll(bw *bufio.Writer, s string) {
	bw.WriteString(s)
	bw.Flush()
}

// reasonPhrase makes a message fit a status line: one line of printable
// ASCII, bounded.
func reasonPhrase(msg string) string {
	msg = headerSafe(msg)
	if len(msg) > 400 {
		msg = msg[:400] + "..."
	}
	return msg
}

func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f {
			return ' '
		}
		return r
	}, s)
}
