package npm

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
)

type handler struct {
	d format.Deps
	f *Format
	// docs caches what each source knows of a package, keyed by the
	// source's state (repository, generation, upstream document).
	docs *lru
	// renders caches packuments as each repository serves them, keyed by
	// the states of every source merged into them.
	renders *lru
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := format.TargetFrom(r.Context())
	if err := h.route(w, r, t); err != nil {
		h.f.WriteError(w, r, err)
	}
}

func notAllowed(w http.ResponseWriter, r *http.Request, allow string) error {
	w.Header().Set("Allow", allow)
	return errs.New(errs.NotAllowed, "method %s is not supported on %s", r.Method, r.URL.Path)
}

func isRead(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

// route dispatches on the path below /repository/<key>/.
func (h *handler) route(w http.ResponseWriter, r *http.Request, t *format.Target) error {
	segs := t.Segments
	if len(segs) == 0 {
		if !isRead(r) {
			return notAllowed(w, r, "GET, HEAD")
		}
		writeJSON(w, r, http.StatusOK, map[string]any{"db_name": t.Repo.Key, "registry": "coffer", "kind": t.Repo.Kind})
		return nil
	}
	if segs[0] == "-" {
		return h.special(w, r, t, segs[1:])
	}
	name, rest, err := splitName(segs)
	if err != nil {
		return err
	}
	switch {
	case len(rest) == 0:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return h.getPackument(w, r, t, name)
		case http.MethodPut:
			return h.putPackage(w, r, t, name)
		case http.MethodDelete:
			return h.unpublishPackage(w, r, t, name)
		}
		return notAllowed(w, r, "GET, HEAD, PUT, DELETE")
	case len(rest) == 1 && rest[0] != "-" && rest[0] != "-rev":
		if !isRead(r) {
			return notAllowed(w, r, "GET, HEAD")
		}
		return h.getVersion(w, r, t, name, rest[0])
	case len(rest) == 2 && rest[0] == "-rev":
		switch r.Method {
		case http.MethodPut:
			return h.putPackage(w, r, t, name)
		case http.MethodDelete:
			return h.unpublishPackage(w, r, t, name)
		}
		return notAllowed(w, r, "PUT, DELETE")
	case len(rest) == 2 && rest[0] == "-":
		if err := checkFile(rest[1]); err != nil {
			return err
		}
		if !isRead(r) {
			return notAllowed(w, r, "GET, HEAD")
		}
		return h.getTarball(w, r, t, name, rest[1])
	case len(rest) == 4 && rest[0] == "-" && rest[2] == "-rev":
		if err := checkFile(rest[1]); err != nil {
			return err
		}
		if r.Method != http.MethodDelete {
			return notAllowed(w, r, "DELETE")
		}
		return h.deleteTarball(w, r, t, name, rest[1])
	}
	return errs.New(errs.NotFound, "no npm endpoint at /%s", t.Path)
}

// splitName takes a package name off the front of the segments: "@scope"
// and "name" as two segments, "@scope%2fname" as one, or an unscoped name.
func splitName(segs []string) (string, []string, error) {
	name, rest := segs[0], segs[1:]
	if strings.HasPrefix(name, "@") && !strings.Contains(name, "/") {
		if len(segs) < 2 {
			return "", nil, errs.New(errs.Invalid, "invalid package name %q: a scoped name is @scope/name", name)
		}
		name, rest = name+"/"+segs[1], segs[2:]
	}
	if err := checkName(name, false); err != nil {
		return "", nil, err
	}
	return name, rest, nil
}

// checkFile refuses tarball file names that are not plain names.
func checkFile(f string) error {
	if !strings.HasSuffix(f, ".tgz") || f[0] == '.' || !checkFileChars(f) {
		return errs.New(errs.Invalid, "invalid tarball file name %q", f)
	}
	return nil
}

// special serves the registry endpoints under /-/.
func (h *handler) special(w http.ResponseWriter, r *http.Request, t *format.Target, segs []string) error {
	path := strings.Join(segs, "/")
	switch {
	case path == "ping":
		if !isRead(r) {
			return notAllowed(w, r, "GET, HEAD")
		}
		writeJSON(w, r, http.StatusOK, map[string]any{})
		return nil
	case path == "whoami":
		if !isRead(r) {
			return notAllowed(w, r, "GET, HEAD")
		}
		return h.whoami(w, r)
	case path == "v1/search":
		if !isRead(r) {
			return notAllowed(w, r, "GET, HEAD")
		}
		return h.search(w, r, t)
	case path == "v1/login":
		// npm tries web login first and falls back to the CouchDB flow on 4xx.
		return errs.New(errs.NotFound, "web login is not supported; npm falls back to user name and password")
	case len(segs) >= 2 && segs[0] == "user" && strings.HasPrefix(segs[1], "org.couchdb.user:") &&
		(len(segs) == 2 || len(segs) == 4 && segs[2] == "-rev"):
		if r.Method != http.MethodPut {
			return notAllowed(w, r, "PUT")
		}
		return h.login(w, r, t, strings.TrimPrefix(segs[1], "org.couchdb.user:"))
	case len(segs) == 3 && segs[0] == "user" && segs[1] == "token":
		if r.Method != http.MethodDelete {
			return notAllowed(w, r, "DELETE")
		}
		return h.logout(w, r, segs[2])
	case len(segs) >= 3 && segs[0] == "package":
		name, rest, err := splitName(segs[1:])
		if err != nil {
			return err
		}
		if len(rest) == 0 || rest[0] != "dist-tags" || len(rest) > 2 {
			break
		}
		if len(rest) == 1 {
			if !isRead(r) {
				return notAllowed(w, r, "GET, HEAD")
			}
			return h.getDistTags(w, r, t, name)
		}
		switch r.Method {
		case http.MethodPut, http.MethodPost:
			return h.putDistTag(w, r, t, name, rest[1])
		case http.MethodDelete:
			return h.deleteDistTag(w, r, t, name, rest[1])
		}
		return notAllowed(w, r, "PUT, DELETE")
	case path == "npm/v1/security/advisories/bulk":
		// Coffer has no advisory database (yet): nothing is known to be
		// vulnerable. Answered so that npm install and npm audit work.
		if r.Method != http.MethodPost {
			return notAllowed(w, r, "POST")
		}
		writeJSON(w, r, http.StatusOK, map[string]any{})
		return nil
	}
	return errs.New(errs.NotFound, "no npm endpoint at /-/%s", path)
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b := mustJSON(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(append(b, '\n'))
	}
}

// readJSON decodes a small request body.
func readJSON(r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	if err := dec.Decode(v); err != nil {
		if _, ok := err.(*http.MaxBytesError); ok {
			return errs.New(errs.TooLarge, "request body exceeds %d bytes", limit)
		}
		return errs.Wrap(errs.Invalid, err, "request body is not the expected JSON: %v", err)
	}
	return nil
}
