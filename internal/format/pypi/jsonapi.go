package pypi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/repo"
)

// The JSON API: /pypi/<project>/json and /pypi/<project>/<version>/json,
// in PyPI's shape. It is generated from the same data as the simple page;
// "info" comes from the core metadata of the release's files.

type apiFile struct {
	CommentText       string            `json:"comment_text"`
	Digests           map[string]string `json:"digests"`
	Downloads         int               `json:"downloads"`
	Filename          string            `json:"filename"`
	HasSig            bool              `json:"has_sig"`
	MD5Digest         string            `json:"md5_digest"`
	PackageType       string            `json:"packagetype"`
	PythonVersion     string            `json:"python_version"`
	RequiresPython    *string           `json:"requires_python"`
	Size              int64             `json:"size"`
	UploadTime        string            `json:"upload_time"`
	UploadTimeISO8601 string            `json:"upload_time_iso_8601"`
	URL               string            `json:"url"`
	Yanked            bool              `json:"yanked"`
	YankedReason      *string           `json:"yanked_reason"`
}

type apiInfo struct {
	Author                 string            `json:"author"`
	AuthorEmail            string            `json:"author_email"`
	Classifiers            []string          `json:"classifiers"`
	Description            string            `json:"description"`
	DescriptionContentType *string           `json:"description_content_type"`
	HomePage               string            `json:"home_page"`
	Keywords               string            `json:"keywords"`
	License                string            `json:"license"`
	Maintainer             string            `json:"maintainer"`
	MaintainerEmail        string            `json:"maintainer_email"`
	Name                   string            `json:"name"`
	PackageURL             string            `json:"package_url"`
	Platform               *string           `json:"platform"`
	ProjectURL             string            `json:"project_url"`
	ProjectURLs            map[string]string `json:"project_urls"`
	ReleaseURL             string            `json:"release_url"`
	RequiresDist           []string          `json:"requires_dist"`
	RequiresPython         *string           `json:"requires_python"`
	Summary                string            `json:"summary"`
	Version                string            `json:"version"`
	Yanked                 bool              `json:"yanked"`
	YankedReason           *string           `json:"yanked_reason"`
}

type apiDoc struct {
	Info            apiInfo              `json:"info"`
	LastSerial      int                  `json:"last_serial"`
	Releases        map[string][]apiFile `json:"releases,omitempty"`
	URLs            []apiFile            `json:"urls"`
	Vulnerabilities []struct{}           `json:"vulnerabilities"`
}

func (h *handler) serveJSON(w http.ResponseWriter, r *http.Request, rp *repo.Repository, name, version string) error {
	ctx := r.Context()
	e, stale, err := h.page(ctx, rp, name)
	if err != nil {
		return err
	}
	if e == nil || e.proj == nil {
		return errs.New(errs.NotFound, "project %s not found in %s", name, rp.Key)
	}
	if version != "" {
		version = normalizeVersion(version)
	}
	id := rp.ID + "\x00json\x00" + name + "\x00" + version
	c := h.pages.get(id, e.key)
	if c == nil {
		body, err := h.apiDocument(ctx, rp, e.proj, version)
		if err != nil {
			return err
		}
		c = &rendered{key: e.key, html: body, js: body}
		c.once.Do(func() { c.jsonTag = etag(body); c.htmlTag = c.jsonTag })
		h.pages.put(id, c)
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("ETag", c.jsonTag)
	if stale {
		hd.Set("Warning", `110 - "Response is Stale"`)
	}
	writeBody(w, r, c.js)
	return nil
}

func (h *handler) apiDocument(ctx context.Context, rp *repo.Repository, p *project, version string) ([]byte, error) {
	base := h.d.BaseURL + "/repository/" + rp.Key + "/"
	byVersion := map[string][]*file{}
	for i := range p.Files {
		f := &p.Files[i]
		byVersion[f.Version] = append(byVersion[f.Version], f)
	}
	whole := version == ""
	if whole {
		version = latest(p, byVersion)
	} else if len(byVersion[version]) == 0 {
		// 1.0 asks for 1.0.0 too (PEP 440 equality).
		for v := range byVersion {
			if compareVersions(v, version) == 0 {
				version = v
			}
		}
		if len(byVersion[version]) == 0 {
			return nil, errs.New(errs.NotFound, "release %s %s not found in %s", p.Name, version, rp.Key)
		}
	}
	doc := apiDoc{URLs: []apiFile{}, Vulnerabilities: []struct{}{}}
	for _, f := range byVersion[version] {
		doc.URLs = append(doc.URLs, apiFileOf(f, base))
	}
	if r := byVersion[version]; len(r) > 0 {
		doc.Info = h.apiInfo(ctx, rp, p.Name, r)
	}
	doc.Info.Version = version
	if doc.Info.Name == "" {
		doc.Info.Name = p.Name
	}
	doc.Info.PackageURL = base + "simple/" + p.Name + "/"
	doc.Info.ProjectURL = doc.Info.PackageURL
	doc.Info.ReleaseURL = base + "pypi/" + p.Name + "/" + version + "/json"
	if whole {
		doc.Releases = map[string][]apiFile{}
		for _, v := range p.Versions {
			fs := []apiFile{}
			for _, f := range byVersion[v] {
				fs = append(fs, apiFileOf(f, base))
			}
			doc.Releases[v] = fs
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

// latest is the version pip would pick without constraints: the highest
// final release with a file that is not yanked, else the highest with such
// a file, else the highest.
func latest(p *project, byVersion map[string][]*file) string {
	best := ""
	for pass := 0; pass < 3 && best == ""; pass++ {
		for _, v := range p.Versions {
			pv, ok := parseVersion(v)
			if pass == 0 && (!ok || pv.prerelease()) {
				continue
			}
			live := false
			for _, f := range byVersion[v] {
				live = live || !f.Yanked
			}
			if pass < 2 && !live {
				continue
			}
			if best == "" || compareVersions(v, best) > 0 {
				best = v
			}
		}
	}
	return best
}

func apiFileOf(f *file, base string) apiFile {
	d, _ := parseFilename(f.Filename, "")
	af := apiFile{
		Digests:   map[string]string{},
		Downloads: -1,
		Filename:  f.Filename,
		MD5Digest: f.MD5,
		Size:      f.Size,
		URL:       base + escapePath(f.Path),
		Yanked:    f.Yanked,
	}
	if d != nil {
		af.PackageType, af.PythonVersion = d.Kind, d.PyVersion
	}
	if f.SHA256 != "" {
		af.Digests["sha256"] = f.SHA256
	}
	if f.MD5 != "" {
		af.Digests["md5"] = f.MD5
	}
	if f.RequiresPython != "" {
		rp := f.RequiresPython
		af.RequiresPython = &rp
	}
	if !f.UploadTime.IsZero() {
		af.UploadTime = f.UploadTime.UTC().Format("2006-01-02T15:04:05")
		af.UploadTimeISO8601 = uploadTime(f.UploadTime)
	}
	if f.Yanked {
		reason := f.YankReason
		af.YankedReason = &reason
	}
	return af
}

// apiInfo reads the release's core metadata (a wheel's first, the
// smallest file's otherwise).
func (h *handler) apiInfo(ctx context.Context, rp *repo.Repository, name string, files []*file) apiInfo {
	info := apiInfo{Classifiers: []string{}, ProjectURLs: map[string]string{}}
	yanked := true
	for _, f := range files {
		yanked = yanked && f.Yanked
	}
	if yanked {
		info.Yanked = true
		reason := files[0].YankReason
		info.YankedReason = &reason
	}
	var m *coreMetadata
	for _, want := range []bool{true, false} {
		for _, f := range files {
			if strings.HasSuffix(f.Filename, ".whl") != want {
				continue
			}
			if rp.Kind != repo.Local && !f.HasMetadata {
				continue // a remote would have to download the whole file
			}
			if m = h.readMetadata(ctx, rp, name, f.Path+metadataSuffix); m != nil {
				break
			}
		}
		if m != nil {
			break
		}
	}
	if m == nil {
		return info
	}
	info.Name = m.Get("name")
	info.Summary = m.Get("summary")
	info.Description = m.Description()
	if s := m.Get("description-content-type"); s != "" {
		info.DescriptionContentType = &s
	}
	info.Author, info.AuthorEmail = m.Get("author"), m.Get("author-email")
	info.Maintainer, info.MaintainerEmail = m.Get("maintainer"), m.Get("maintainer-email")
	info.License, info.Keywords, info.HomePage = m.Get("license"), m.Get("keywords"), m.Get("home-page")
	if s := m.Get("platform"); s != "" {
		info.Platform = &s
	}
	if cs := m.All("classifier"); cs != nil {
		info.Classifiers = cs
	}
	info.RequiresDist = m.All("requires-dist")
	if s := m.Get("requires-python"); s != "" {
		info.RequiresPython = &s
	}
	for _, pu := range m.All("project-url") {
		if k, v, ok := strings.Cut(pu, ","); ok {
			info.ProjectURLs[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return info
}

func (h *handler) readMetadata(ctx context.Context, rp *repo.Repository, name, path string) *coreMetadata {
	a, err := h.file(ctx, rp, name, path)
	if err != nil {
		return nil
	}
	f, err := h.d.Repos.Blobs().Open(ctx, digestOf(a))
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetadataSize+1))
	if err != nil {
		return nil
	}
	m, err := parseCoreMetadata(b)
	if err != nil {
		return nil
	}
	return m
}
