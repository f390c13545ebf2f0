// Package format defines what a package format plugs into: the Format
// interface, the dependencies it is given, and the request target (the
// repository and the path below it) the server resolves before calling it.
//
// A format owns its URL tree under /repository/<key>/ and its native error
// shape; it knows nothing of storage engines. Policy (permissions, tiers,
// quotas) is not its business: it calls repo.Manager, which enforces it.
// See README.md for how to add one.
package format

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/repo"
)

// Deps is what a format is given.
type Deps struct {
	Repos *repo.Manager
	Auth  *auth.Service
	Log   *slog.Logger
	// BaseURL is the server's external URL without a trailing slash, for
	// absolute URLs in generated metadata.
	BaseURL string
	// Authenticate identifies the caller of a request outside /repository/
	// (a Mounter's tree) and returns the request carrying the principal.
	Authenticate func(r *http.Request) (*http.Request, error)
}

// Format is one package format.
type Format interface {
	// Name is the format's name in configuration ("raw", "npm", ...).
	Name() string
	// Handler serves /repository/<key>/... for repositories of this format.
	// The request context carries the Target.
	Handler(d Deps) http.Handler
	// WriteError renders err in the format's native error shape.
	WriteError(w http.ResponseWriter, r *http.Request, err error)
}

// Mounter is implemented by formats that also serve URL trees outside
// /repository/ (OCI's /v2/). Keys are path prefixes ending in "/".
type Mounter interface {
	Mounts(d Deps) map[string]http.Handler
}

// Target is the repository a request addresses and the path below it.
type Target struct {
	Repo *repo.Repository
	// Path is the decoded path below /repository/<key>/, without leading
	// slash ("" for the root). Segments were checked by SplitPath.
	Path string
	// Segments are Path's decoded segments; a segment may contain an encoded
	// slash ("@scope%2fname" arrives as "@scope/name" in one segment).
	Segments []string
	// Trailing is set when the URL ended with a slash (a folder).
	Trailing bool
}

type targetKey struct{}

// WithTarget returns ctx carrying t.
func WithTarget(ctx context.Context, t *Target) context.Context {
	return context.WithValue(ctx, targetKey{}, t)
}

// TargetFrom returns the request's target.
func TargetFrom(ctx context.Context) *Target {
	t, _ := ctx.Value(targetKey{}).(*Target)
	return t
}

// SplitPath decodes an escaped URL path tail into segments, refusing
// traversal in every spelling: "." and ".." segments (also percent-encoded),
// empty segments ("//", which also catches absolute paths), backslashes,
// NUL and other control characters, invalid UTF-8, and malformed escapes.
func SplitPath(escaped string) (segs []string, trailing bool, err error) {
	if escaped == "" {
		return nil, false, nil
	}
	trailing = strings.HasSuffix(escaped, "/")
	escaped = strings.TrimSuffix(escaped, "/")
	if escaped == "" {
		return nil, true, nil
	}
	for _, raw := range strings.Split(escaped, "/") {
		s, err := url.PathUnescape(raw)
		if err != nil {
			return nil, false, errs.New(errs.Invalid, "path segment %q is not validly escaped", raw)
		}
		switch {
		case s == "":
			return nil, false, errs.New(errs.Invalid, "path has an empty segment (// or a leading /)")
		case s == "." || s == "..":
			return nil, false, errs.New(errs.Invalid, "path traversal (%q) is not allowed", raw)
		case strings.ContainsAny(s, "\\"):
			return nil, false, errs.New(errs.Invalid, "backslashes are not allowed in paths")
		case !utf8.ValidString(s):
			// Listings page by path order and rely on UTF-8 never holding 0xff.
			return nil, false, errs.New(errs.Invalid, "path segment %q is not valid UTF-8", raw)
		}
		for _, c := range s {
			if c < 0x20 || c == 0x7f {
				return nil, false, errs.New(errs.Invalid, "control characters are not allowed in paths")
			}
		}
		// An encoded slash must not smuggle a traversal either.
		for _, part := range strings.Split(s, "/") {
			if part == "." || part == ".." {
				return nil, false, errs.New(errs.Invalid, "path traversal (%q) is not allowed", raw)
			}
		}
		segs = append(segs, s)
	}
	return segs, trailing, nil
}
