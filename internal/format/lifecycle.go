package format

import "github.com/cofferhq/coffer/internal/meta"

// Artifact is one artifact named in a format's own coordinates, parsed but
// not yet looked up: a package version (Name, Version), a tag of a package
// (Name, Tag; OCI team/api:v2.3.0), or a file (Path; raw).
type Artifact struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	Tag     string `json:"tag,omitempty"`
	Path    string `json:"path,omitempty"`
}

// Coordinator is implemented by formats whose artifacts can be promoted,
// pinned and given properties: it parses the format's coordinates
// ("@acme/ui@1.4.0", "acme-lib==1.0.0", "team/api@sha256:…",
// "com.acme:lib:1.0.0"). It checks syntax only; it is fed untrusted input
// (fuzz it). Adding a format to the lifecycle is this one method.
type Coordinator interface {
	ParseCoordinates(coords string) (Artifact, error)
}

// Grapher is implemented by formats whose versions reference content beyond
// their own component's assets (OCI: layers, child manifests, referrers).
// Promotion copies, and retention removes, the whole graph: components
// reached through links of kind "manifest" (children) and "subject"
// (referrers point at their subject) are found generically; a Grapher adds
// what only the format knows.
type Grapher interface {
	// LinkPath is the path of the asset holding a link's target within
	// package name ("" when the target has no asset of its own).
	LinkPath(name string, l meta.Link) string
	// AttachedTo returns the version a tag attaches its target to, for
	// tag-scheme attachments (cosign's "sha256-<hex>.sig" → "sha256:<hex>"),
	// or "".
	AttachedTo(tag string) string
}
