// Package npmtest makes npm packages for tests and benchmarks: tarballs,
// publish documents as npm sends them, and a fixed set of packages that
// depend on each other (scoped, unscoped, transitive) for install tests.
package npmtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Package is one version to publish.
type Package struct {
	Name         string
	Version      string
	Dependencies map[string]string
	Description  string
	// Extra files in the tarball (path below package/ → content).
	Files map[string]string
}

// Manifest is the package.json of p.
func (p Package) Manifest() map[string]any {
	m := map[string]any{
		"name":        p.Name,
		"version":     p.Version,
		"description": p.Description,
		"main":        "index.js",
		"license":     "MIT",
	}
	if m["description"] == "" {
		m["description"] = "test package " + p.Name
	}
	if len(p.Dependencies) > 0 {
		m["dependencies"] = p.Dependencies
	}
	return m
}

// Tarball is the package's .tgz, as npm pack makes it (entries under
// package/). It is deterministic.
func (p Package) Tarball() []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	pj, _ := json.MarshalIndent(p.Manifest(), "", "  ")
	files := map[string]string{
		"package.json": string(pj) + "\n",
		"index.js":     fmt.Sprintf("module.exports = %q;\n", p.Name+"@"+p.Version),
	}
	for k, v := range p.Files {
		files[k] = v
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	mtime := time.Date(1985, 10, 26, 8, 15, 0, 0, time.UTC)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: "package/" + n, Mode: 0o644, Size: int64(len(files[n])), ModTime: mtime, Typeflag: tar.TypeReg})
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// Integrity is the sha512 Subresource Integrity string of b.
func Integrity(b []byte) string {
	h := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(h[:])
}

// Shasum is the hex sha1 of b.
func Shasum(b []byte) string {
	h := sha1.Sum(b)
	return hex.EncodeToString(h[:])
}

// EscapeName is a name as it appears in registry URLs ("@scope%2fname").
func EscapeName(name string) string {
	if strings.HasPrefix(name, "@") {
		return strings.Replace(url.PathEscape(name), "/", "%2f", 1)
	}
	return url.PathEscape(name)
}

// PublishDocument is the body npm sends to PUT /<name> to publish p's
// tarball tgz with a dist-tag, the way libnpmpublish builds it.
func PublishDocument(p Package, tgz []byte, tag, registry string) map[string]any {
	m := p.Manifest()
	file := p.Name + "-" + p.Version + ".tgz"
	m["_id"] = p.Name + "@" + p.Version
	m["dist"] = map[string]any{
		"integrity": Integrity(tgz),
		"shasum":    Shasum(tgz),
		"tarball":   strings.TrimSuffix(registry, "/") + "/" + p.Name + "/-/" + file,
	}
	return map[string]any{
		"_id":         p.Name,
		"name":        p.Name,
		"description": m["description"],
		"dist-tags":   map[string]string{tag: p.Version},
		"versions":    map[string]any{p.Version: m},
		"access":      nil,
		"_attachments": map[string]any{file: map[string]any{
			"content_type": "application/octet-stream",
			"data":         base64.StdEncoding.EncodeToString(tgz),
			"length":       len(tgz),
		}},
	}
}

// Publish publishes p to the registry at registryURL (ending in "/") with
// HTTP Basic credentials, or with password as a bearer token when user is "".
func Publish(client *http.Client, registryURL, user, password string, p Package, tag string) error {
	tgz := p.Tarball()
	body, _ := json.Marshal(PublishDocument(p, tgz, tag, registryURL))
	req, err := http.NewRequest(http.MethodPut, registryURL+EscapeName(p.Name), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, password)
	} else if password != "" {
		req.Header.Set("Authorization", "Bearer "+password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("publishing %s@%s: %s: %s", p.Name, p.Version, resp.Status, b.String())
	}
	return nil
}

// Upstream is the fixture graph's public side: packages a project gets
// from the upstream registry, scoped and unscoped, with transitive
// dependencies and several versions of some.
func Upstream() []Package {
	return []Package{
		{Name: "util-leaf", Version: "1.0.0"},
		{Name: "util-leaf", Version: "1.2.0"},
		{Name: "util-leaf", Version: "2.0.0"},
		{Name: "util-str", Version: "1.0.0", Dependencies: map[string]string{"util-leaf": "^1.0.0"}},
		{Name: "util-str", Version: "1.1.0", Dependencies: map[string]string{"util-leaf": "^1.0.0"}},
		{Name: "util-num", Version: "3.1.4", Dependencies: map[string]string{"util-leaf": "^2.0.0"}},
		{Name: "util-color", Version: "0.5.0"},
		{Name: "util-date", Version: "2.2.0", Dependencies: map[string]string{"util-num": "^3.0.0"}},
		{Name: "util-path", Version: "1.0.1"},
		{Name: "util-args", Version: "4.0.0", Dependencies: map[string]string{"util-str": "~1.1.0", "util-path": "1.0.1"}},
		{Name: "@up/core", Version: "1.0.0", Dependencies: map[string]string{"util-str": "^1.0.0"}},
		{Name: "@up/core", Version: "1.3.0", Dependencies: map[string]string{"util-str": "^1.0.0"}},
		{Name: "@up/fmt", Version: "2.0.0", Dependencies: map[string]string{"util-color": "^0.5.0"}},
		{Name: "@up/log", Version: "1.4.0", Dependencies: map[string]string{"@up/fmt": "^2.0.0", "util-date": "^2.0.0"}},
		{Name: "@up/http", Version: "1.1.0", Dependencies: map[string]string{"@up/core": "^1.0.0", "util-args": "^4.0.0"}},
		{Name: "@up/cli", Version: "1.0.0", Dependencies: map[string]string{"@up/http": "^1.0.0", "@up/log": "^1.0.0"}},
		{Name: "@up/test-kit", Version: "0.9.0", Dependencies: map[string]string{"@up/core": "1.3.0"}},
		{Name: "pinned-dep", Version: "1.0.0"},
		{Name: "pinned-dep", Version: "1.0.1"},
	}
}

// Local is the fixture graph's private side: packages an organisation
// publishes to its own repositories; they depend on upstream packages.
func Local() []Package {
	return []Package{
		{Name: "@acme/config", Version: "1.0.0"},
		{Name: "@acme/theme", Version: "2.1.0", Dependencies: map[string]string{"@up/fmt": "^2.0.0"}},
		{Name: "@acme/app-core", Version: "1.0.0", Dependencies: map[string]string{"@acme/config": "^1.0.0", "@up/cli": "^1.0.0"}},
		{Name: "acme-internal-tool", Version: "1.0.0"},
	}
}

// ProjectDependencies is a project's dependencies over the fixture graph:
// installed, it holds InstalledCount packages.
func ProjectDependencies() map[string]string {
	return map[string]string{
		"@acme/app-core":     "^1.0.0",
		"@acme/theme":        "^2.0.0",
		"acme-internal-tool": "^1.0.0",
		"@up/test-kit":       "^0.9.0",
		"util-leaf":          "^2.0.0",
		"pinned-dep":         "1.0.0",
	}
}

// Installed is what installing ProjectDependencies gives: package → the
// version at its top-level node_modules/ place. util-leaf@1.2.0 is nested
// under util-str (which needs ^1.0.0).
var Installed = map[string]string{
	"@acme/app-core": "1.0.0", "@acme/config": "1.0.0", "@acme/theme": "2.1.0", "acme-internal-tool": "1.0.0",
	"@up/cli": "1.0.0", "@up/http": "1.1.0", "@up/log": "1.4.0", "@up/fmt": "2.0.0", "@up/core": "1.3.0",
	"@up/test-kit": "0.9.0", "util-args": "4.0.0", "util-str": "1.1.0", "util-path": "1.0.1", "util-date": "2.2.0",
	"util-num": "3.1.4", "util-color": "0.5.0", "util-leaf": "2.0.0", "pinned-dep": "1.0.0",
}

// InstalledCount is how many packages the project installs (one nested
// util-leaf@1.2.0 besides Installed).
const InstalledCount = 19
