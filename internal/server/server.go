package server

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/gc"
	"github.com/cofferhq/coffer/internal/lifecycle"
	"github.com/cofferhq/coffer/internal/metrics"
	"github.com/cofferhq/coffer/internal/reqctx"
)

// Server is Coffer's HTTP handler.
type Server struct {
	deps       format.Deps
	log        *slog.Logger
	metrics    *metrics.Metrics
	formats    map[string]format.Format
	handlers   map[string]http.Handler
	mounts     []mount
	api        http.Handler
	quietPaths map[string]bool
	ready      atomic.Bool
	handler    http.Handler
	collector  *gc.Collector
	// replication reports the replication targets' status (nil: none).
	replication func() any
	retention   *lifecycle.Retention
	promoter    *lifecycle.Promoter
}

// SetPromoter connects the promotion service to the management API.
func (s *Server) SetPromoter(p *lifecycle.Promoter) { s.promoter = p }

// SetRetention connects the retention runner to the management API.
func (s *Server) SetRetention(r *lifecycle.Retention) { s.retention = r }

// Format returns a registered format by name (nil if none).
func (s *Server) Format(name string) format.Format { return s.formats[name] }

// SetCollector connects garbage collection to the management API.
func (s *Server) SetCollector(c *gc.Collector) { s.collector = c }

type mount struct {
	prefix  string
	format  format.Format
	handler http.Handler
}

// New builds the server over its dependencies and the registered formats.
func New(d format.Deps, formats []format.Format, m *metrics.Metrics) *Server {
	s := &Server{
		log:        d.Log,
		metrics:    m,
		formats:    map[string]format.Format{},
		handlers:   map[string]http.Handler{},
		quietPaths: map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true},
	}
	d.Authenticate = s.Authenticate
	s.deps = d
	for _, f := range formats {
		s.formats[f.Name()] = f
		s.handlers[f.Name()] = f.Handler(d)
		if mf, ok := f.(format.Mounter); ok {
			for prefix, h := range mf.Mounts(d) {
				s.mounts = append(s.mounts, mount{prefix, f, h})
			}
		}
	}
	sort.Slice(s.mounts, func(i, j int) bool { return len(s.mounts[i].prefix) > len(s.mounts[j].prefix) })
	s.api = newAPI(s)
	s.handler = s.wrap(http.HandlerFunc(s.route))
	return s
}

// FormatNames lists the registered formats.
func (s *Server) FormatNames() []string {
	var out []string
	for n := range s.formats {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// SetReady flips /readyz.
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(p, "/repository/"):
		s.serveRepo(w, r, strings.TrimPrefix(p, "/repository/"))
	case p == "/api/v1" || strings.HasPrefix(p, "/api/v1/"):
		s.api.ServeHTTP(w, r)
	case p == "/healthz":
		writeText(w, http.StatusOK, "ok\n")
	case p == "/readyz":
		if !s.ready.Load() {
			writeText(w, http.StatusServiceUnavailable, "not ready\n")
			return
		}
		if err := s.deps.Repos.Store().Ping(r.Context()); err != nil {
			writeText(w, http.StatusServiceUnavailable, "metadata store: "+err.Error()+"\n")
			return
		}
		writeText(w, http.StatusOK, "ready\n")
	case p == "/metrics" && s.metrics != nil:
		s.metrics.Handler().ServeHTTP(w, r)
	case p == "/":
		writeText(w, http.StatusOK, "Coffer artifact repository. Repositories: /repository/<key>/ — API: /api/v1/ — OpenAPI: /api/v1/openapi.json\n")
	default:
		for _, m := range s.mounts {
			if strings.HasPrefix(p, m.prefix) || p+"/" == m.prefix {
				reqctx.InfoFrom(r.Context()).Format = m.format.Name()
				m.handler.ServeHTTP(w, r)
				return
			}
		}
		writeAPIError(w, r, errs.New(errs.NotFound, "no such endpoint: %s", r.URL.Path))
	}
}

// Authenticate identifies the caller and stores it in the request context;
// formats with mounts outside /repository/ use it too.
func (s *Server) Authenticate(r *http.Request) (*http.Request, error) {
	p, err := s.deps.Auth.Authenticate(r.Context(), r)
	if err != nil {
		return r, err
	}
	reqctx.InfoFrom(r.Context()).User = p.Name()
	return r.WithContext(auth.WithPrincipal(r.Context(), p)), nil
}

func (s *Server) serveRepo(w http.ResponseWriter, r *http.Request, tail string) {
	key, rest, hasSlash := strings.Cut(tail, "/")
	rp, err := s.deps.Repos.Repo(key)
	if err != nil {
		writeAPIError(w, r, err)
		return
	}
	info := reqctx.InfoFrom(r.Context())
	info.Repo, info.Format = rp.Key, rp.Format
	f, ok := s.formats[rp.Format]
	if !ok {
		writeAPIError(w, r, errs.New(errs.Unavailable, "repository %s has format %q, which this server does not serve", rp.Key, rp.Format))
		return
	}
	if !hasSlash && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		http.Redirect(w, r, "/repository/"+key+"/", http.StatusMovedPermanently)
		return
	}
	r, err = s.Authenticate(r)
	if err != nil {
		f.WriteError(w, r, err)
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if err := s.deps.Auth.Authorize(r.Context(), auth.PrincipalFrom(r.Context()), auth.Read, rp.Key); err != nil {
			f.WriteError(w, r, err)
			return
		}
	}
	segs, trailing, err := format.SplitPath(rest)
	if err != nil {
		f.WriteError(w, r, err)
		return
	}
	t := &format.Target{Repo: rp, Segments: segs, Trailing: trailing, Path: strings.Join(segs, "/")}
	s.handlers[rp.Format].ServeHTTP(w, r.WithContext(format.WithTarget(r.Context(), t)))
}

func writeText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(s))
}

type apiError struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	Problems any    `json:"problems,omitempty"`
}

// writeAPIError renders the management API's error shape:
// {"error": {"code": "NOT_FOUND", "message": "..."}}.
func writeAPIError(w http.ResponseWriter, r *http.Request, err error) {
	status := errs.HTTPStatus(err)
	body := apiError{Code: errs.Code(err), Message: errs.Message(err)}
	var probs *config.Problems
	if errors.As(err, &probs) {
		body.Problems = probs.List
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Coffer"`)
	}
	reqctx.LogError(r.Context(), err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		json.NewEncoder(w).Encode(map[string]any{"error": body})
	}
}
