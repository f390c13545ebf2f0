package server

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/cofferhq/coffer/internal/reqctx"
)

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recorder wraps a ResponseWriter to see the status and count bytes,
// keeping io.ReaderFrom (sendfile) and Flush available.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(r.ResponseWriter, src)
	}
	r.bytes += n
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// wrap is the outer middleware: request id, recover, logging, metrics.
func (s *Server) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqctx.Info{ID: r.Header.Get("X-Request-Id")}
		if info.ID == "" || len(info.ID) > 64 {
			info.ID = newID()
		}
		w.Header().Set("X-Request-Id", info.ID)
		log := s.log.With("request_id", info.ID)
		ctx := reqctx.With(r.Context(), info, log)
		// A copy: the server's own request must keep its body's type, or it
		// reads (and sends 100 Continue for) a body the handler refused.
		r = r.WithContext(ctx)
		body := &countingBody{ReadCloser: r.Body}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = body
		}
		rec := &recorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic serving request", "panic", p, "stack", string(debug.Stack()))
				if rec.status == 0 {
					http.Error(rec, "internal server error", http.StatusInternalServerError)
				}
			}
			status := rec.status
			if status == 0 {
				status = info.Status // answered on a hijacked connection
			}
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			repoLabel, formatLabel := info.Repo, info.Format
			if repoLabel == "" {
				repoLabel = "-"
			}
			if formatLabel == "" {
				formatLabel = "-"
			}
			if s.metrics != nil {
				s.metrics.Requests.WithLabelValues(repoLabel, formatLabel, r.Method, strconv.Itoa(status)).Inc()
				s.metrics.Duration.WithLabelValues(repoLabel, formatLabel, r.Method).Observe(d.Seconds())
				if body.n > 0 {
					s.metrics.BytesReceived.WithLabelValues(repoLabel, formatLabel).Add(float64(body.n))
				}
				if rec.bytes > 0 {
					s.metrics.BytesSent.WithLabelValues(repoLabel, formatLabel).Add(float64(rec.bytes))
				}
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			if s.quietPaths[r.URL.Path] && status < 400 {
				level = slog.LevelDebug
			}
			log.LogAttrs(ctx, level, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.RequestURI()),
				slog.Int("status", status),
				slog.Int64("bytes_in", body.n),
				slog.Int64("bytes_out", rec.bytes),
				slog.Duration("duration", d),
				slog.String("repo", info.Repo),
				slog.String("user", info.User),
				slog.String("remote", r.RemoteAddr),
			)
		}()
		next.ServeHTTP(rec, r)
	})
}
