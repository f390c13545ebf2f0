package format

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/reqctx"
)

// ReplyWithReason answers r with code and msg as the status line's reason
// phrase, for clients that print only that (twine without --verbose,
// Maven's HTTP transport). Go's server always writes the standard phrase,
// so the answer goes on the hijacked connection, with w's headers. What the
// client is still sending is read first (bounded), so that it reads the
// answer instead of a reset. It reports false when the connection cannot
// be hijacked (HTTP/2): write the answer the usual way then.
func ReplyWithReason(w http.ResponseWriter, r *http.Request, code int, msg string) bool {
	if r.ProtoMajor != 1 {
		return false
	}
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
			fmt.Fprintf(&b, "%s: %s\r\n", k, HeaderSafe(v))
		}
	}
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	if r.Method != http.MethodHead {
		b.WriteString(body)
	}
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	buf.Writer.WriteString(b.String())
	buf.Writer.Flush()
	return true
}

// reasonPhrase makes a message fit a status line: one line of printable
// ASCII, bounded.
func reasonPhrase(msg string) string {
	msg = HeaderSafe(msg)
	if len(msg) > 400 {
		msg = msg[:400] + "..."
	}
	return msg
}

// HeaderSafe replaces what may not appear in a header value (control
// characters, non-ASCII) with spaces.
func HeaderSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f {
			return ' '
		}
		return r
	}, s)
}
