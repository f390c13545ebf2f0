// Package raw is the generic format: any file at any path, with
// PUT/GET/HEAD/DELETE under /repository/<key>/<path>, checksum headers on the
// way in and out, ranges and conditional requests, and folder listings as
// JSON (or HTML for browsers).
package raw

import (
	"encoding/json"
	"html/template"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/checksum"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/repo"
	"github.com/cofferhq/coffer/internal/reqctx"
)

var _ format.Format = (*Format)(nil)

// Format is the raw format.
type Format struct{}

// New returns the raw format.
func New() *Format { return &Format{} }

// Name implements format.Format.
func (*Format) Name() string { return "raw" }

// Handler implements format.Format.
func (f *Format) Handler(d format.Deps) http.Handler { return &handler{d: d, f: f} }

// WriteError renders errors as Artifactory does for generic repositories:
// {"errors":[{"status":409,"message":"..."}]}, which curl users read as is.
func (*Format) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	reqctx.LogError(r.Context(), err)
	status := errs.HTTPStatus(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Coffer"`)
	}
	if status == http.StatusMethodNotAllowed && w.Header().Get("Allow") == "" {
		w.Header().Set("Allow", "GET, HEAD, PUT, DELETE")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"status": status, "message": errs.Message(err)}}})
}

type handler struct {
	d format.Deps
	f *Format
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := format.TargetFrom(r.Context())
	for _, s := range t.Segments {
		if strings.Contains(s, "/") {
			h.f.WriteError(w, r, errs.New(errs.Invalid, "encoded slashes are not allowed in raw paths"))
			return
		}
	}
	var err error
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		err = h.get(w, r, t)
	case http.MethodPut:
		err = h.put(w, r, t)
	case http.MethodDelete:
		err = h.delete(w, r, t)
	default:
		err = errs.New(errs.NotAllowed, "method %s is not supported on raw repositories", r.Method)
	}
	if err != nil {
		h.f.WriteError(w, r, err)
	}
}

var checksumHeaders = map[checksum.Alg]string{
	checksum.SHA256: "X-Checksum-Sha256",
	checksum.SHA1:   "X-Checksum-Sha1",
	checksum.MD5:    "X-Checksum-Md5",
}

func (h *handler) put(w http.ResponseWriter, r *http.Request, t *format.Target) error {
	if t.Path == "" || t.Trailing {
		return errs.New(errs.Invalid, "a file path is required (got a folder)")
	}
	declared := checksum.Sums{}
	for alg, name := range checksumHeaders {
		if v := r.Header.Get(name); v != "" {
			declared[alg] = v
		}
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" || ct == "application/x-www-form-urlencoded" { // curl -T/--data default
		ct = mime.TypeByExtension(path.Ext(t.Path))
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	res, err := h.d.Repos.Put(r.Context(), t.Repo, t.Path, r.Body, repo.PutOptions{
		ContentType: ct,
		Size:        r.ContentLength,
		Declared:    declared,
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	uri := h.d.BaseURL + "/repository/" + res.Asset.Repo.Key + "/" + repo.EscapePath(t.Path)
	w.Header().Set("Location", uri)
	writeJSON(w, status, map[string]any{
		"repo":        res.Asset.Repo.Key,
		"path":        res.Asset.Path,
		"size":        res.Asset.Size,
		"created":     res.Asset.CreatedAt.UTC().Format(time.RFC3339),
		"downloadUri": uri,
		"mimeType":    res.Asset.ContentType,
		"unchanged":   res.Unchanged,
		"checksums":   map[string]string{"sha256": strings.TrimPrefix(res.Asset.Blob, "sha256:"), "sha1": res.Asset.SHA1, "md5": res.Asset.MD5},
	})
	return nil
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, t *format.Target) error {
	if _, err := h.d.Repos.Delete(r.Context(), t.Repo, t.Path); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, t *format.Target) error {
	ctx := r.Context()
	if t.Path == "" || t.Trailing {
		return h.list(w, r, t)
	}
	a, err := h.d.Repos.Get(ctx, t.Repo, t.Path)
	if errs.KindOf(err) == errs.NotFound && t.Repo.Kind != repo.Remote {
		// A folder addressed without its trailing slash.
		if es, lerr := h.d.Repos.ListFolder(ctx, t.Repo, t.Path, 1); lerr == nil && len(es) > 0 {
			http.Redirect(w, r, r.URL.EscapedPath()+"/", http.StatusMovedPermanently)
			return nil
		}
	}
	if err != nil {
		return err
	}
	f, err := h.d.Repos.Open(ctx, a)
	if err != nil {
		return err
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("ETag", `"`+strings.TrimPrefix(a.Blob, "sha256:")+`"`)
	hd.Set("X-Checksum-Sha256", strings.TrimPrefix(a.Blob, "sha256:"))
	if a.SHA1 != "" {
		hd.Set("X-Checksum-Sha1", a.SHA1)
	}
	if a.MD5 != "" {
		hd.Set("X-Checksum-Md5", a.MD5)
	}
	ct := a.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	hd.Set("Content-Type", ct)
	hd.Set("X-Content-Type-Options", "nosniff")
	if a.Deprecated {
		msg := a.DeprecationMessage
		if msg == "" {
			msg = "deprecated"
		}
		hd.Set("X-Coffer-Deprecated", strings.Map(headerSafe, msg))
	}
	if t.Repo.Kind != repo.Local {
		hd.Set("X-Coffer-Repository", a.Repo.Key)
	}
	if a.Stale {
		hd.Set("Warning", `110 - "Response is Stale"`)
	}
	http.ServeContent(w, r, "", a.UpdatedAt, f)
	return nil
}

func headerSafe(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return ' '
	}
	return r
}

type listing struct {
	Repo     string  `json:"repo"`
	Path     string  `json:"path"`
	Children []child `json:"children"`
}

type child struct {
	Name         string `json:"name"`
	Folder       bool   `json:"folder"`
	Size         int64  `json:"size,omitempty"`
	SHA256       string `json:"sha256,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
	Deprecated   bool   `json:"deprecated,omitempty"`
	URI          string `json:"uri"`
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, t *format.Target) error {
	es, err := h.d.Repos.ListFolder(r.Context(), t.Repo, t.Path, 10000)
	if err != nil {
		return err
	}
	if len(es) == 0 && t.Path != "" {
		return errs.New(errs.NotFound, "folder %s/ not found in %s", t.Path, t.Repo.Key)
	}
	base := "/repository/" + t.Repo.Key + "/"
	l := listing{Repo: t.Repo.Key, Path: t.Path + "/", Children: []child{}}
	if t.Path == "" {
		l.Path = "/"
	}
	for _, e := range es {
		c := child{Name: e.Name, Folder: e.Asset == nil, URI: base + repo.EscapePath(e.Path)}
		if e.Asset != nil {
			c.Size = e.Asset.Size
			c.SHA256 = strings.TrimPrefix(e.Asset.Blob, "sha256:")
			c.LastModified = e.Asset.UpdatedAt.UTC().Format(time.RFC3339)
			c.Deprecated = e.Asset.Deprecated
		}
		l.Children = append(l.Children, c)
	}
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		return listTmpl.Execute(w, l)
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

var listTmpl = template.Must(template.New("list").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Repo}}{{.Path}}</title></head>
<body><h1>{{.Repo}}{{.Path}}</h1>
<table><tr><th>Name</th><th>Size</th><th>Last modified</th><th>SHA-256</th></tr>
{{if ne .Path "/"}}<tr><td><a href="../">../</a></td></tr>{{end}}
{{range .Children}}<tr><td><a href="{{.URI}}">{{.Name}}</a>{{if .Deprecated}} (deprecated){{end}}</td><td>{{if not .Folder}}{{.Size}}{{end}}</td><td>{{.LastModified}}</td><td><code>{{.SHA256}}</code></td></tr>
{{end}}</table></body></html>
`))

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
