package npm

import (
	"bytes"
	"encoding/json"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

// pkg is what one source (a repository, or a merge of several) knows of a
// package: the material of a packument, with tarball locations relative to
// the repository so that the URL can be that of whichever repository the
// client addressed.
type pkg struct {
	name     string
	versions map[string]*pver
	tags     map[string]string
	// times are the packument's "time" entries (RFC 3339): "created",
	// "modified" and one per version.
	times map[string]string
	// top are the other top-level members: description, readme,
	// maintainers, homepage, ...
	top map[string]json.RawMessage
	// assets are a local repository's tarballs by path.
	assets map[string]*meta.Asset
	// size estimates the memory the package takes (bytes of its sources).
	size int64
}

// pver is one version.
type pver struct {
	// manifest is the version manifest; "dist" is kept apart.
	manifest map[string]json.RawMessage
	dist     map[string]json.RawMessage
	// path is the tarball's path in the repository.
	path string
	// upstream is where a remote repository's upstream serves the tarball.
	upstream string
}

// timeFormat is how npm writes times (JavaScript's toISOString).
const timeFormat = "2006-01-02T15:04:05.000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func mustJSON(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only called with marshalable values
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// Version manifest fields the registry owns or moves to the top level.
var (
	topFromLatest = []string{"description", "maintainers", "homepage", "keywords", "repository",
		"author", "bugs", "license", "readme", "readmeFilename"}
	// abbreviatedFields are the version fields of the abbreviated
	// ("corgi") packument, besides name, version and dist.
	abbreviatedFields = []string{"deprecated", "dependencies", "optionalDependencies", "devDependencies",
		"bundleDependencies", "peerDependencies", "peerDependenciesMeta", "acceptDependencies", "bin",
		"directories", "engines", "os", "cpu", "libc", "_hasShrinkwrap", "hasInstallScript", "funding", "license"}
)

// buildLocal makes a package from the components (versions) and tags of a
// local repository; nil when it has no version.
func buildLocal(name string, comps []*meta.Component, tags []*meta.Tag, assets map[string]*meta.Asset) *pkg {
	if len(comps) == 0 {
		return nil
	}
	p := &pkg{name: name, versions: map[string]*pver{}, tags: map[string]string{}, times: map[string]string{},
		top: map[string]json.RawMessage{}, assets: assets}
	var created, modified time.Time
	readmes := map[string][2]json.RawMessage{}
	for _, c := range comps {
		m := map[string]json.RawMessage{}
		if json.Unmarshal(c.Attributes, &m) != nil {
			m = map[string]json.RawMessage{}
		}
		v := &pver{manifest: m, path: tarballPath(name, tarballFile(name, c.Version))}
		if json.Unmarshal(m["dist"], &v.dist) != nil || v.dist == nil {
			v.dist = map[string]json.RawMessage{}
		}
		delete(m, "dist")
		m["name"], m["version"], m["_id"] = mustJSON(name), mustJSON(c.Version), mustJSON(name+"@"+c.Version)
		delete(m, "deprecated")
		if c.Deprecated && c.DeprecationMessage != "" {
			m["deprecated"] = mustJSON(c.DeprecationMessage)
		}
		readmes[c.Version] = [2]json.RawMessage{m["readme"], m["readmeFilename"]}
		p.size += int64(len(c.Attributes)) + 256
		delete(m, "readme")
		delete(m, "readmeFilename")
		p.versions[c.Version] = v
		p.times[c.Version] = fmtTime(c.CreatedAt)
		if created.IsZero() || c.CreatedAt.Before(created) {
			created = c.CreatedAt
		}
		if c.UpdatedAt.After(modified) {
			modified = c.UpdatedAt
		}
	}
	for _, t := range tags {
		if _, ok := p.versions[t.Target]; ok {
			p.tags[t.Tag] = t.Target
		}
		if t.UpdatedAt.After(modified) {
			modified = t.UpdatedAt
		}
	}
	if _, ok := p.tags["latest"]; !ok {
		p.tags["latest"] = p.highest()
	}
	p.times["created"], p.times["modified"] = fmtTime(created), fmtTime(modified)
	latest := p.versions[p.tags["latest"]]
	for _, f := range topFromLatest {
		if raw, ok := latest.manifest[f]; ok {
			p.top[f] = raw
		}
	}
	if r := readmes[p.tags["latest"]]; r[0] != nil {
		p.top["readme"] = r[0]
		if r[1] != nil {
			p.top["readmeFilename"] = r[1]
		}
	}
	if _, ok := p.top["maintainers"]; !ok {
		if u, ok := latest.manifest["_npmUser"]; ok {
			p.top["maintainers"] = mustJSON([]json.RawMessage{u})
		}
	}
	return p
}

// highest is the highest version without a prerelease tag, or the highest
// version if all are prereleases.
func (p *pkg) highest() string {
	best, bestPre := "", ""
	for v := range p.versions {
		sv, ok := parseSemver(v)
		if ok && len(sv.pre) == 0 {
			if best == "" || compareVersions(v, best) > 0 {
				best = v
			}
		} else if bestPre == "" || compareVersions(v, bestPre) > 0 {
			bestPre = v
		}
	}
	if best != "" {
		return best
	}
	return bestPre
}

// parseUpstream makes a package from an upstream's full packument.
func parseUpstream(name string, data []byte) (*pkg, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	p := &pkg{name: name, versions: map[string]*pver{}, tags: map[string]string{}, times: map[string]string{},
		top: map[string]json.RawMessage{}, size: int64(len(data))}
	var versions map[string]map[string]json.RawMessage
	json.Unmarshal(doc["versions"], &versions)
	for ver, m := range versions {
		if m == nil || strings.ContainsAny(ver, "/\\") {
			continue
		}
		v := &pver{manifest: m}
		if json.Unmarshal(m["dist"], &v.dist) != nil || v.dist == nil {
			v.dist = map[string]json.RawMessage{}
		}
		delete(m, "dist")
		delete(m, "readme")
		delete(m, "readmeFilename")
		v.upstream = jsonString(v.dist["tarball"])
		v.path = tarballPath(name, upstreamFile(name, ver, v.upstream))
		p.versions[ver] = v
	}
	var tags map[string]json.RawMessage
	json.Unmarshal(doc["dist-tags"], &tags)
	for t, raw := range tags {
		if v := jsonString(raw); p.versions[v] != nil {
			p.tags[t] = v
		}
	}
	var times map[string]json.RawMessage
	json.Unmarshal(doc["time"], &times)
	for k, raw := range times {
		if s := jsonString(raw); s != "" {
			p.times[k] = s
		}
	}
	for k, raw := range doc {
		switch k {
		case "_id", "_rev", "name", "dist-tags", "versions", "time", "_attachments", "_revisions", "users":
		default:
			p.top[k] = raw
		}
	}
	return p, nil
}

// upstreamFile is the tarball file name for a version an upstream serves
// at tarballURL: the URL's last segment when it is a plain .tgz name,
// else the canonical name.
func upstreamFile(name, version, tarballURL string) string {
	if u, err := url.Parse(tarballURL); err == nil {
		f := path.Base(u.Path)
		if strings.HasSuffix(f, ".tgz") && f != ".tgz" && f != "package.json" && !strings.ContainsAny(f, "\\") &&
			f[0] != '.' && checkFileChars(f) {
			return f
		}
	}
	return tarballFile(name, version)
}

func checkFileChars(f string) bool {
	for _, c := range f {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-._+~", c)) {
			return false
		}
	}
	return true
}

// keep adds versions a remote repository cached (their tarballs are held)
// that the upstream no longer lists: whoever pinned them keeps installing
// them. They are marked deprecated, so that ranges prefer other versions,
// unless the upstream had deprecated them already.
func (p *pkg) keep(comps []*meta.Component) {
	for _, c := range comps {
		if _, ok := p.versions[c.Version]; ok {
			continue
		}
		m := map[string]json.RawMessage{}
		if json.Unmarshal(c.Attributes, &m) != nil {
			continue
		}
		v := &pver{manifest: m}
		if json.Unmarshal(m["dist"], &v.dist) != nil || v.dist == nil {
			v.dist = map[string]json.RawMessage{}
		}
		delete(m, "dist")
		v.upstream = jsonString(v.dist["tarball"])
		v.path = tarballPath(p.name, upstreamFile(p.name, c.Version, v.upstream))
		if _, ok := m["deprecated"]; !ok {
			m["deprecated"] = mustJSON("unpublished from the upstream registry; kept by Coffer for installs that pin this version")
		}
		p.versions[c.Version] = v
		p.size += int64(len(c.Attributes)) + 256
		if _, ok := p.times[c.Version]; !ok {
			p.times[c.Version] = fmtTime(c.CreatedAt)
		}
	}
}

// merge combines the packages of a virtual repository's members in member
// order: the first member to have a version or a dist-tag wins it; times
// are united (earliest "created", latest "modified"); the other top-level
// members come from the first member.
func merge(srcs []*pkg) *pkg {
	if len(srcs) == 1 {
		return srcs[0]
	}
	p := &pkg{name: srcs[0].name, versions: map[string]*pver{}, tags: map[string]string{}, times: map[string]string{},
		top: srcs[0].top}
	for _, s := range srcs {
		p.size += s.size
		for v, pv := range s.versions {
			if _, ok := p.versions[v]; !ok {
				p.versions[v] = pv
			}
		}
		for t, v := range s.tags {
			if _, ok := p.tags[t]; !ok {
				p.tags[t] = v
			}
		}
		for k, tm := range s.times {
			cur, ok := p.times[k]
			switch {
			case !ok:
				p.times[k] = tm
			case k == "created" && tm < cur, k == "modified" && tm > cur:
				p.times[k] = tm
			}
		}
	}
	return p
}

// sortedVersions returns the versions in ascending order.
func (p *pkg) sortedVersions() []string {
	vs := make([]string, 0, len(p.versions))
	for v := range p.versions {
		vs = append(vs, v)
	}
	slices.SortFunc(vs, compareVersions)
	return vs
}

// manifestJSON is a version's manifest as served, with its tarball URL
// under base (the addressed repository's URL, ending in "/").
func (v *pver) manifestJSON(base string) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(v.manifest)+1)
	for k, raw := range v.manifest {
		m[k] = raw
	}
	dist := make(map[string]json.RawMessage, len(v.dist)+1)
	for k, raw := range v.dist {
		dist[k] = raw
	}
	dist["tarball"] = mustJSON(base + repo.EscapePath(v.path))
	m["dist"] = mustJSON(dist)
	return m
}

// abbreviated is a version's entry in the abbreviated packument.
func (v *pver) abbreviated(base string) map[string]json.RawMessage {
	full := v.manifestJSON(base)
	m := map[string]json.RawMessage{"name": full["name"], "version": full["version"], "dist": full["dist"]}
	for _, f := range abbreviatedFields {
		if raw, ok := full[f]; ok {
			m[f] = raw
		}
	}
	if _, ok := m["hasInstallScript"]; !ok {
		var scripts map[string]json.RawMessage
		json.Unmarshal(full["scripts"], &scripts)
		if scripts["preinstall"] != nil || scripts["install"] != nil || scripts["postinstall"] != nil {
			m["hasInstallScript"] = json.RawMessage("true")
		}
	}
	return m
}

// object writes a JSON object with members in the given order.
type object struct{ b bytes.Buffer }

func (o *object) add(key string, raw json.RawMessage) {
	if o.b.Len() == 0 {
		o.b.WriteByte('{')
	} else {
		o.b.WriteByte(',')
	}
	o.b.Write(mustJSON(key))
	o.b.WriteByte(':')
	o.b.Write(raw)
}

func (o *object) bytes() []byte {
	if o.b.Len() == 0 {
		return []byte("{}")
	}
	o.b.WriteByte('}')
	return o.b.Bytes()
}

// renderFull is the full packument.
func (p *pkg) renderFull(base, rev string) []byte {
	var o object
	o.add("_id", mustJSON(p.name))
	o.add("_rev", mustJSON(rev))
	o.add("name", mustJSON(p.name))
	if d, ok := p.top["description"]; ok {
		o.add("description", d)
	}
	o.add("dist-tags", mustJSON(p.tags))
	var vs object
	for _, v := range p.sortedVersions() {
		vs.add(v, mustJSON(p.versions[v].manifestJSON(base)))
	}
	o.add("versions", vs.bytes())
	o.add("time", p.timeJSON())
	keys := make([]string, 0, len(p.top))
	for k := range p.top {
		if k != "description" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		o.add(k, p.top[k])
	}
	return o.bytes()
}

func (p *pkg) timeJSON() json.RawMessage {
	var t object
	for _, k := range []string{"created", "modified"} {
		if s, ok := p.times[k]; ok {
			t.add(k, mustJSON(s))
		}
	}
	for _, v := range p.sortedVersions() {
		if s, ok := p.times[v]; ok {
			t.add(v, mustJSON(s))
		}
	}
	return t.bytes()
}

// renderAbbreviated is the abbreviated packument
// (application/vnd.npm.install-v1+json): what installers need.
func (p *pkg) renderAbbreviated(base string) []byte {
	var o object
	o.add("name", mustJSON(p.name))
	if m, ok := p.times["modified"]; ok {
		o.add("modified", mustJSON(m))
	}
	o.add("dist-tags", mustJSON(p.tags))
	var vs object
	for _, v := range p.sortedVersions() {
		vs.add(v, mustJSON(p.versions[v].abbreviated(base)))
	}
	o.add("versions", vs.bytes())
	return o.bytes()
}
