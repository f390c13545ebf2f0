package pypi

import (
	"encoding/json"
	"html"
	"net/url"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/errs"
)

// Upstream simple pages (PEP 503 HTML or PEP 691 JSON) are untrusted
// input: parsed with bounds, and only what a client needs is kept.

const (
	maxUpstreamPage  = 64 << 20
	maxUpstreamFiles = 200_000
)

// upstreamAccept is what a remote repository asks its upstream for.
const upstreamAccept = typeJSON + ", " + typeHTMLv1 + ";q=0.2, text/html;q=0.1"

// anchor is an <a> element of an HTML page.
type anchor struct {
	attrs map[string]string
	text  string
}

// parseAnchors finds the <a> elements (and the <base href>) of an HTML
// page. It is a tolerant scanner, not an HTML parser: simple pages are flat
// lists of links.
func parseAnchors(s string) (base string, out []anchor) {
	i := 0
	for i < len(s) && len(out) < maxUpstreamFiles {
		j := strings.IndexByte(s[i:], '<')
		if j < 0 {
			break
		}
		i += j + 1
		if strings.HasPrefix(s[i:], "!--") {
			end := strings.Index(s[i+3:], "-->")
			if end < 0 {
				break
			}
			i += 3 + end + 3
			continue
		}
		name, n := tagName(s[i:])
		i += n
		if name != "a" && name != "base" {
			continue
		}
		attrs, n := parseAttrs(s[i:])
		i += n
		if name == "base" {
			if base == "" {
				base = attrs["href"]
			}
			continue
		}
		end := indexFold(s[i:], "</a")
		text := ""
		if end >= 0 {
			text = s[i : i+end]
			i += end
		}
		out = append(out, anchor{attrs: attrs, text: strings.TrimSpace(html.UnescapeString(stripTags(text)))})
	}
	return base, out
}

func tagName(s string) (string, int) {
	n := 0
	for n < len(s) && (isAlnum(s[n])) {
		n++
	}
	return strings.ToLower(s[:n]), n
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// parseAttrs reads attributes up to the end of a tag.
func parseAttrs(s string) (map[string]string, int) {
	attrs := map[string]string{}
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '/') {
			i++
		}
		if i >= len(s) {
			break
		}
		if s[i] == '>' {
			return attrs, i + 1
		}
		start := i
		for i < len(s) && !strings.ContainsRune(" \t\n\r=>/", rune(s[i])) {
			i++
		}
		key := strings.ToLower(s[start:i])
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
		val := ""
		if i < len(s) && s[i] == '=' {
			i++
			for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
				i++
			}
			if i < len(s) && (s[i] == '"' || s[i] == '\'') {
				q := s[i]
				end := strings.IndexByte(s[i+1:], q)
				if end < 0 {
					val, i = s[i+1:], len(s)
				} else {
					val, i = s[i+1:i+1+end], i+1+end+1
				}
			} else {
				start := i
				for i < len(s) && !strings.ContainsRune(" \t\n\r>", rune(s[i])) {
					i++
				}
				val = s[start:i]
			}
		}
		if key != "" && len(attrs) < 64 {
			if _, dup := attrs[key]; !dup {
				attrs[key] = html.UnescapeString(val)
			}
		}
		if i == start {
			i++ // no progress: skip the character
		}
	}
	return attrs, i
}

func stripTags(s string) string {
	if !strings.Contains(s, "<") {
		return s
	}
	var b strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '<':
			in = true
		case s[i] == '>':
			in = false
		case !in:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func indexFold(s, sub string) int {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if strings.EqualFold(s[i:i+n], sub) {
			return i
		}
	}
	return -1
}

// upstreamFile is a file as an upstream page describes it.
type upstreamFile struct {
	Filename       string
	URL            string // absolute, without fragment
	Hashes         map[string]string
	RequiresPython string
	Yanked         bool
	YankReason     string
	HasMetadata    bool
	MetadataHashes map[string]string
	Size           int64
	UploadTime     time.Time
}

// parseUpstreamProject reads an upstream project page fetched from pageURL.
func parseUpstreamProject(body []byte, contentType, pageURL string) (files []upstreamFile, versions []string, err error) {
	if len(body) > maxUpstreamPage {
		return nil, nil, errs.New(errs.Upstream, "upstream page is larger than %d bytes", maxUpstreamPage)
	}
	base, err := url.Parse(pageURL)
	if err != nil {
		return nil, nil, err
	}
	if isJSON(contentType) {
		var doc struct {
			Versions []string `json:"versions"`
			Files    []struct {
				Filename       string            `json:"filename"`
				URL            string            `json:"url"`
				Hashes         map[string]string `json:"hashes"`
				RequiresPython *string           `json:"requires-python"`
				Yanked         json.RawMessage   `json:"yanked"`
				CoreMetadata   json.RawMessage   `json:"core-metadata"`
				DistInfo       json.RawMessage   `json:"dist-info-metadata"`
				DataDistInfo   json.RawMessage   `json:"data-dist-info-metadata"`
				Size           *int64            `json:"size"`
				UploadTime     *string           `json:"upload-time"`
			} `json:"files"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, nil, errs.Wrap(errs.Upstream, err, "upstream JSON page is malformed: %v", err)
		}
		if len(doc.Files) > maxUpstreamFiles {
			doc.Files = doc.Files[:maxUpstreamFiles]
		}
		for _, jf := range doc.Files {
			u, err := base.Parse(jf.URL)
			if err != nil || jf.URL == "" {
				continue
			}
			u.Fragment = ""
			f := upstreamFile{Filename: jf.Filename, URL: u.String(), Hashes: lowerHex(jf.Hashes), Size: -1}
			if jf.RequiresPython != nil {
				f.RequiresPython = *jf.RequiresPython
			}
			f.Yanked, f.YankReason = jsonYank(jf.Yanked)
			for _, md := range []json.RawMessage{jf.CoreMetadata, jf.DistInfo, jf.DataDistInfo} {
				if ok, hs := jsonMetadata(md); ok {
					f.HasMetadata, f.MetadataHashes = true, hs
					break
				}
			}
			if jf.Size != nil && *jf.Size >= 0 {
				f.Size = *jf.Size
			}
			if jf.UploadTime != nil {
				if t, err := time.Parse(time.RFC3339Nano, *jf.UploadTime); err == nil {
					f.UploadTime = t
				}
			}
			files = append(files, f)
		}
		return files, doc.Versions, nil
	}
	b, anchors := parseAnchors(string(body))
	if b != "" {
		if bu, err := base.Parse(b); err == nil {
			base = bu
		}
	}
	for _, a := range anchors {
		href := a.attrs["href"]
		if href == "" {
			continue
		}
		u, err := base.Parse(href)
		if err != nil {
			continue
		}
		frag := u.Fragment
		u.Fragment = ""
		f := upstreamFile{Filename: a.text, URL: u.String(), Hashes: map[string]string{}, Size: -1}
		if f.Filename == "" {
			f.Filename = pathBase(u.Path)
		}
		if k, v, ok := strings.Cut(frag, "="); ok {
			f.Hashes[strings.ToLower(k)] = strings.ToLower(v)
		}
		f.RequiresPython = a.attrs["data-requires-python"]
		if reason, ok := a.attrs["data-yanked"]; ok {
			f.Yanked, f.YankReason = true, reason
		}
		for _, k := range []string{"data-core-metadata", "data-dist-info-metadata"} {
			if v, ok := a.attrs[k]; ok {
				f.HasMetadata = true
				if hk, hv, ok := strings.Cut(v, "="); ok {
					f.MetadataHashes = map[string]string{strings.ToLower(hk): strings.ToLower(hv)}
				}
				break
			}
		}
		files = append(files, f)
	}
	return files, nil, nil
}

// parseUpstreamRoot reads an upstream root page: the project names.
func parseUpstreamRoot(body []byte, contentType string) ([]string, error) {
	if len(body) > maxUpstreamPage {
		return nil, errs.New(errs.Upstream, "upstream index is larger than %d bytes", maxUpstreamPage)
	}
	var names []string
	if isJSON(contentType) {
		var doc struct {
			Projects []struct {
				Name string `json:"name"`
			} `json:"projects"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, errs.Wrap(errs.Upstream, err, "upstream JSON index is malformed: %v", err)
		}
		for _, p := range doc.Projects {
			names = append(names, p.Name)
		}
	} else {
		_, anchors := parseAnchors(string(body))
		for _, a := range anchors {
			names = append(names, a.text)
		}
	}
	out := names[:0]
	for _, n := range names {
		if checkName(n) == nil {
			out = append(out, normalize(n))
		}
	}
	return out, nil
}

func isJSON(contentType string) bool {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	return strings.HasPrefix(ct, typeJSON) || strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, typeLatestJS)
}

func pathBase(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	if u, err := url.PathUnescape(p); err == nil {
		return u
	}
	return p
}

func lowerHex(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = strings.ToLower(v)
	}
	return out
}

// jsonYank reads PEP 691's "yanked": false, true, or a reason.
func jsonYank(raw json.RawMessage) (bool, string) {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return true, s
	}
	return false, ""
}

// jsonMetadata reads "core-metadata": false, true, or a hash dictionary.
func jsonMetadata(raw json.RawMessage) (bool, map[string]string) {
	if len(raw) == 0 {
		return false, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, nil
	}
	var hs map[string]string
	if json.Unmarshal(raw, &hs) == nil {
		return true, lowerHex(hs)
	}
	return false, nil
}
