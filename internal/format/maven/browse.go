package maven

import (
	"html/template"
	"net/http"
	"time"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/repo"
)

type listing struct {
	Repo, Path string
	Root       bool
	Children   []child
}

type child struct {
	Name, URI, Modified string
	Size                int64
	Folder              bool
}

// list serves a folder as an HTML page (directory browsing, as Maven
// repository managers do). Virtual repositories list their members' merged
// folders; remote ones what is cached.
func (h *handler) list(w http.ResponseWriter, r *http.Request, t *format.Target) error {
	if t.Path != "" && !t.Trailing {
		http.Redirect(w, r, r.URL.EscapedPath()+"/", http.StatusMovedPermanently)
		return nil
	}
	es, err := h.d.Repos.ListFolder(r.Context(), t.Repo, t.Path, 10000)
	if err != nil {
		return err
	}
	if len(es) == 0 && t.Path != "" {
		return errs.New(errs.NotFound, "folder %s/ not found in %s", t.Path, t.Repo.Key)
	}
	l := listing{Repo: t.Repo.Key, Path: "/" + t.Path, Root: t.Path == ""}
	if !l.Root {
		l.Path += "/"
	}
	base := "/repository/" + t.Repo.Key + "/"
	for _, e := range es {
		c := child{Name: e.Name, URI: base + repo.EscapePath(e.Path), Folder: e.Asset == nil}
		if e.Asset != nil {
			c.Size = e.Asset.Size
			c.Modified = e.Asset.UpdatedAt.UTC().Format(time.RFC3339)
		}
		l.Children = append(l.Children, c)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return nil
	}
	return listTmpl.Execute(w, l)
}

var listTmpl = template.Must(template.New("list").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Repo}}{{.Path}}</title></head>
<body><h1>Index of {{.Repo}}{{.Path}}</h1>
<table><tr><th>Name</th><th>Last modified</th><th>Size</th></tr>
{{if not .Root}}<tr><td><a href="../">../</a></td><td></td><td></td></tr>{{end}}
{{range .Children}}<tr><td><a href="{{.URI}}">{{.Name}}</a></td><td>{{.Modified}}</td><td>{{if not .Folder}}{{.Size}}{{end}}</td></tr>
{{end}}</table></body></html>
`))
