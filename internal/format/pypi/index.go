package pypi

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

// file is one distribution file of a project page.
type file struct {
	Filename       string
	Path           string // below the repository: packages/<project>/<version>/<file>
	Version        string // the release's (normalized) version
	SHA256         string // hex, "" when unknown (some upstreams)
	MD5            string // hex, "" when unknown
	Size           int64  // -1 when unknown
	UploadTime     time.Time
	RequiresPython string
	Yanked         bool
	YankReason     string
	// HasMetadata says a core metadata file is served at <file>.metadata
	// (PEP 658); MetadataSHA256 is its hash when known.
	HasMetadata    bool
	MetadataSHA256 string
	// UpstreamURL is where a remote repository gets the file.
	UpstreamURL string
}

// project is a project page's content.
type project struct {
	Name     string // normalized
	Files    []file
	Versions []string
}

// sortFiles orders files by version, then file name.
func (p *project) sortFiles() {
	sort.SliceStable(p.Files, func(i, j int) bool {
		a, b := p.Files[i], p.Files[j]
		if c := compareVersions(a.Version, b.Version); c != 0 {
			return c < 0
		}
		return a.Filename < b.Filename
	})
}

// setVersions fills Versions from the files (and extra, versions known
// without files), in PEP 440 order.
func (p *project) setVersions(extra ...string) {
	seen := map[string]bool{}
	var vs []string
	for _, v := range extra {
		if !seen[v] {
			seen[v] = true
			vs = append(vs, v)
		}
	}
	for _, f := range p.Files {
		if !seen[f.Version] {
			seen[f.Version] = true
			vs = append(vs, f.Version)
		}
	}
	sort.SliceStable(vs, func(i, j int) bool { return compareVersions(vs[i], vs[j]) < 0 })
	p.Versions = vs
}

// localProject builds a project page from a local repository's releases.
func localProject(ctx context.Context, store meta.Store, r *repo.Repository, name string) (*project, error) {
	cs, err := store.ListComponents(ctx, r.ID, name)
	if err != nil && !errors.Is(err, errs.NotFound) {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, nil
	}
	p := &project{Name: name}
	var versions []string
	for _, c := range cs {
		as, err := store.ListComponentAssets(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		hasFiles := false
		for _, a := range as {
			var fa fileAttrs
			if json.Unmarshal(a.Attributes, &fa) != nil || fa.Filename == "" {
				continue // a metadata file, or not a distribution
			}
			hasFiles = true
			f := file{
				Filename:       fa.Filename,
				Path:           a.Path,
				Version:        c.Version,
				SHA256:         strings.TrimPrefix(a.Blob, "sha256:"),
				MD5:            a.MD5,
				Size:           a.Size,
				UploadTime:     a.CreatedAt,
				RequiresPython: fa.RequiresPython,
				HasMetadata:    fa.MetadataSHA256 != "",
				MetadataSHA256: fa.MetadataSHA256,
			}
			switch {
			case c.Deprecated:
				f.Yanked, f.YankReason = true, c.DeprecationMessage
			case a.Deprecated:
				f.Yanked, f.YankReason = true, a.DeprecationMessage
			}
			p.Files = append(p.Files, f)
		}
		if hasFiles {
			versions = append(versions, c.Version)
		}
	}
	p.sortFiles()
	p.setVersions(versions...)
	return p, nil
}

// merge appends other's files whose names p does not have yet (the first
// member to list a file name wins).
func (p *project) merge(other *project) {
	seen := map[string]bool{}
	for _, f := range p.Files {
		seen[f.Filename] = true
	}
	for _, f := range other.Files {
		if !seen[f.Filename] {
			seen[f.Filename] = true
			p.Files = append(p.Files, f)
		}
	}
}

// rendered is a generated page in both representations, with the key it
// was generated for.
type rendered struct {
	key      string
	proj     *project
	once     sync.Once
	html, js []byte
	htmlTag  string
	jsonTag  string
	// gzipped variants, made on first demand
	gzOnce    sync.Once
	htmlGz    []byte
	jsGz      []byte
	names     []string // root pages
	renderErr error
}

// pageCache holds generated pages by (repository, project); an entry is
// valid while its key (generations, upstream digests) is unchanged. It is
// bounded by entries and by bytes.
type pageCache struct {
	mu       sync.Mutex
	max      int
	maxBytes int
	bytes    int
	m        map[string]*rendered
}

const pageCacheBytes = 256 << 20

func newPageCache(max int) *pageCache {
	return &pageCache{max: max, maxBytes: pageCacheBytes, m: map[string]*rendered{}}
}

func (c *pageCache) get(id, key string) *rendered {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[id]; e != nil && e.key == key {
		return e
	}
	return nil
}

// put renders e (outside the lock) and keeps it.
func (c *pageCache) put(id string, e *rendered) {
	e.render()
	size := len(e.html) + len(e.js)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[id]; old != nil {
		c.bytes -= len(old.html) + len(old.js)
		delete(c.m, id)
	}
	for k, o := range c.m { // map order is random: arbitrary victims
		if len(c.m) < c.max && c.bytes+size <= c.maxBytes {
			break
		}
		c.bytes -= len(o.html) + len(o.js)
		delete(c.m, k)
	}
	if size > c.maxBytes {
		return // served once, not kept
	}
	c.m[id] = e
	c.bytes += size
}

// render builds both representations once.
func (e *rendered) render() {
	e.once.Do(func() {
		if e.proj != nil {
			e.html = projectHTML(e.proj)
			e.js = projectJSON(e.proj)
		} else {
			e.html = rootHTML(e.names)
			e.js = rootJSON(e.names)
		}
		e.htmlTag = etag(e.html)
		e.jsonTag = etag(e.js)
	})
}

func etag(b []byte) string {
	s := sha256.Sum256(b)
	return `"` + hex.EncodeToString(s[:16]) + `"`
}

// fileURL is a file's URL relative to its project page
// (<repo>/simple/<project>/), so that it works under any repository URL
// that serves the page (a virtual one, a base_url behind a proxy).
func fileURL(f *file) string {
	return "../../" + escapePath(f.Path)
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

const apiVersion = "1.1"

func projectHTML(p *project) []byte {
	var b bytes.Buffer
	name := html.EscapeString(p.Name)
	b.WriteString("<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"" + apiVersion + "\">\n    <title>Links for ")
	b.WriteString(name)
	b.WriteString("</title>\n  </head>\n  <body>\n    <h1>Links for ")
	b.WriteString(name)
	b.WriteString("</h1>\n")
	for i := range p.Files {
		f := &p.Files[i]
		b.WriteString(`    <a href="`)
		href := fileURL(f)
		if f.SHA256 != "" {
			href += "#sha256=" + f.SHA256
		}
		b.WriteString(html.EscapeString(href))
		b.WriteString(`"`)
		if f.RequiresPython != "" {
			b.WriteString(` data-requires-python="` + html.EscapeString(f.RequiresPython) + `"`)
		}
		if f.HasMetadata {
			v := "true"
			if f.MetadataSHA256 != "" {
				v = "sha256=" + f.MetadataSHA256
			}
			// PEP 714's name, and PEP 658's for clients that predate it.
			b.WriteString(` data-core-metadata="` + v + `" data-dist-info-metadata="` + v + `"`)
		}
		if f.Yanked {
			b.WriteString(` data-yanked="` + html.EscapeString(f.YankReason) + `"`)
		}
		b.WriteString(">")
		b.WriteString(html.EscapeString(f.Filename))
		b.WriteString("</a><br />\n")
	}
	b.WriteString("  </body>\n</html>\n")
	return b.Bytes()
}

type jsonMeta struct {
	APIVersion string `json:"api-version"`
}

type jsonFile struct {
	Filename       string            `json:"filename"`
	URL            string            `json:"url"`
	Hashes         map[string]string `json:"hashes"`
	RequiresPython string            `json:"requires-python,omitempty"`
	// CoreMetadata is PEP 714's key; the older "dist-info-metadata" is not
	// sent in JSON (pip 22.3–23.0 fail on it, the reason for PEP 714).
	CoreMetadata any     `json:"core-metadata,omitempty"`
	Yanked       any     `json:"yanked"`
	Size         *int64  `json:"size,omitempty"`
	UploadTime   *string `json:"upload-time,omitempty"`
}

type jsonProject struct {
	Meta     jsonMeta   `json:"meta"`
	Name     string     `json:"name"`
	Versions []string   `json:"versions"`
	Files    []jsonFile `json:"files"`
}

func projectJSON(p *project) []byte {
	out := jsonProject{Meta: jsonMeta{APIVersion: apiVersion}, Name: p.Name, Versions: p.Versions, Files: make([]jsonFile, 0, len(p.Files))}
	if out.Versions == nil {
		out.Versions = []string{}
	}
	for i := range p.Files {
		f := &p.Files[i]
		jf := jsonFile{Filename: f.Filename, URL: fileURL(f), Hashes: map[string]string{}, RequiresPython: f.RequiresPython, Yanked: false}
		if f.SHA256 != "" {
			jf.Hashes["sha256"] = f.SHA256
		}
		if f.HasMetadata {
			if f.MetadataSHA256 != "" {
				jf.CoreMetadata = map[string]string{"sha256": f.MetadataSHA256}
			} else {
				jf.CoreMetadata = true
			}
		}
		if f.Yanked {
			jf.Yanked = true
			if f.YankReason != "" {
				jf.Yanked = f.YankReason
			}
		}
		if f.Size >= 0 {
			jf.Size = &f.Size
		}
		if !f.UploadTime.IsZero() {
			s := uploadTime(f.UploadTime)
			jf.UploadTime = &s
		}
		out.Files = append(out.Files, jf)
	}
	return marshal(out)
}

// marshal encodes JSON without escaping <, > and & (">=3.8" stays readable).
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// uploadTime is PEP 700's format: ISO 8601 in UTC with microseconds and Z.
func uploadTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

func rootHTML(names []string) []byte {
	var b bytes.Buffer
	b.WriteString("<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"" + apiVersion + "\">\n    <title>Simple index</title>\n  </head>\n  <body>\n")
	for _, n := range names {
		e := html.EscapeString(n)
		b.WriteString(`    <a href="` + html.EscapeString(url.PathEscape(n)) + `/">` + e + "</a><br />\n")
	}
	b.WriteString("  </body>\n</html>\n")
	return b.Bytes()
}

func rootJSON(names []string) []byte {
	type pr struct {
		Name string `json:"name"`
	}
	out := struct {
		Meta     jsonMeta `json:"meta"`
		Projects []pr     `json:"projects"`
	}{Meta: jsonMeta{APIVersion: apiVersion}, Projects: make([]pr, 0, len(names))}
	for _, n := range names {
		out.Projects = append(out.Projects, pr{n})
	}
	return marshal(out)
}

// gzipped returns the compressed variants (pages compress ~6:1; pip
// asks for gzip).
func (e *rendered) gzipped() (html, js []byte) {
	e.gzOnce.Do(func() {
		e.htmlGz, e.jsGz = gzipBytes(e.html), gzipBytes(e.js)
	})
	return e.htmlGz, e.jsGz
}

func gzipBytes(b []byte) []byte {
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// acceptsGzip reports whether Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			k, v, _ := strings.Cut(strings.TrimSpace(params), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				return err == nil && q > 0
			}
			return true
		}
	}
	return false
}

// servePage answers with the representation the client asked for.
func servePage(w http.ResponseWriter, r *http.Request, e *rendered) error {
	e.render()
	ct := negotiate(r.Header.Get("Accept"), r.URL.Query().Get("format"))
	h := w.Header()
	h.Set("Vary", "Accept, Accept-Encoding")
	var body []byte
	switch ct {
	case "":
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotAcceptable)
		w.Write([]byte("none of the Accept header's types is served; the simple index speaks " + typeJSON + ", " + typeHTMLv1 + " and " + typeHTML + "\n"))
		return nil
	case typeJSON:
		body = e.js
		h.Set("ETag", e.jsonTag)
		h.Set("Content-Type", typeJSON)
	case typeHTMLv1:
		body = e.html
		h.Set("ETag", e.htmlTag)
		h.Set("Content-Type", typeHTMLv1)
	default:
		body = e.html
		h.Set("ETag", e.htmlTag)
		h.Set("Content-Type", "text/html; charset=utf-8")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "max-age=0, must-revalidate")
	if len(body) > 512 && acceptsGzip(r) {
		gh, gj := e.gzipped()
		if ct == typeJSON {
			body = gj
		} else {
			body = gh
		}
		h.Set("Content-Encoding", "gzip")
		h.Set("ETag", strings.TrimSuffix(h.Get("ETag"), `"`)+`-gz"`)
	}
	writeBody(w, r, body)
	return nil
}

// writeBody answers with an in-memory body whose ETag is set, or 304 when
// the client has it (If-None-Match). Pages need no ranges.
func writeBody(w http.ResponseWriter, r *http.Request, body []byte) {
	h := w.Header()
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, h.Get("ETag")) {
		h.Del("Content-Type")
		h.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// etagMatch is If-None-Match's weak comparison against one ETag.
func etagMatch(header, tag string) bool {
	if tag == "" {
		return false
	}
	tag = strings.TrimPrefix(tag, "W/")
	for _, c := range strings.Split(header, ",") {
		c = strings.TrimSpace(c)
		if c == "*" || strings.TrimPrefix(c, "W/") == tag {
			return true
		}
	}
	return false
}

// pageKey identifies the state a local page was generated from.
func (h *handler) localKey(r *repo.Repository, name string) string {
	return strconv.FormatUint(h.d.Repos.Generation(r.ID, name), 10)
}

// localPage returns a local repository's project page (nil: no such
// project), from the cache while the project's generation is unchanged.
func (h *handler) localPage(ctx context.Context, r *repo.Repository, name string) (*rendered, error) {
	id := r.ID + "\x00" + name
	key := h.localKey(r, name) // read before the database: a later write changes it
	if e := h.pages.get(id, key); e != nil {
		return e, nil
	}
	p, err := localProject(ctx, h.d.Repos.Store(), r, name)
	if err != nil {
		return nil, err
	}
	e := &rendered{key: key, proj: p}
	h.pages.put(id, e)
	return e, nil
}

// localNames lists a local repository's projects.
func localNames(ctx context.Context, store meta.Store, r *repo.Repository) ([]string, error) {
	var out []string
	after := ""
	for {
		ns, err := store.ListComponentNames(ctx, r.ID, meta.NameQuery{After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		out = append(out, ns...)
		if len(ns) < 1000 {
			return out, nil
		}
		after = ns[len(ns)-1]
	}
}

// mergeNames merges sorted name lists.
func mergeNames(lists ...[]string) []string {
	var all []string
	for _, l := range lists {
		all = append(all, l...)
	}
	sort.Strings(all)
	return slices.Compact(all)
}
