package oci

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// nameComponent is one segment of a repository name (distribution spec).
var nameComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)

// tagPattern is what a tag may look like (distribution spec).
var tagPattern = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// route is a parsed /v2/ request: the Coffer repository key (the first
// segment), the image name below it, the kind of endpoint and its argument.
type route struct {
	key  string
	name string // image name without the key: "team/api"
	kind string // manifests | blobs | uploads | tags | referrers
	ref  string // tag, digest, upload id
}

// full is the name as clients write it, key included.
func (rt route) full() string { return rt.key + "/" + rt.name }

// parseRoute splits the part of an escaped path after /v2/.
func parseRoute(rest string) (route, bool) {
	segs := strings.Split(rest, "/")
	n := len(segs)
	var rt route
	var nameSegs []string
	switch {
	case n >= 4 && segs[n-2] == "tags" && segs[n-1] == "list":
		rt.kind, nameSegs = "tags", segs[:n-2]
	case n >= 4 && segs[n-2] == "blobs" && segs[n-1] == "uploads":
		rt.kind, nameSegs = "uploads", segs[:n-2]
	case n >= 5 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		rt.kind, rt.ref, nameSegs = "uploads", segs[n-1], segs[:n-3]
	case n >= 4 && (segs[n-2] == "manifests" || segs[n-2] == "blobs" || segs[n-2] == "referrers"):
		rt.kind, rt.ref, nameSegs = segs[n-2], segs[n-1], segs[:n-2]
	default:
		return rt, false
	}
	if len(nameSegs) < 2 {
		return rt, false
	}
	for _, seg := range nameSegs {
		if seg == "" {
			return route{}, false
		}
	}
	rt.key, rt.name = nameSegs[0], strings.Join(nameSegs[1:], "/")
	return rt, true
}

// validName reports whether the image name follows the distribution spec.
func validName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for _, c := range strings.Split(name, "/") {
		if !nameComponent.MatchString(c) {
			return false
		}
	}
	return true
}

// parseDigest accepts sha256 and sha512 digests.
func parseDigest(s string) (digest.Digest, bool) {
	d := digest.Digest(s)
	if d.Validate() != nil {
		return "", false
	}
	if a := d.Algorithm(); a != digest.SHA256 && a != digest.SHA512 {
		return "", false
	}
	return d, true
}

// isDigest reports whether a manifest reference is a digest (not a tag).
func isDigest(ref string) bool { return strings.Contains(ref, ":") }

// Asset paths inside a Coffer repository. Names cannot contain a segment
// starting with "_", so these never collide with a name.
func blobPath(name string, d digest.Digest) string      { return name + "/_blobs/" + d.String() }
func manifestPath(name string, ref string) string       { return name + "/_manifests/" + ref }
func tagListPath(name string) string                    { return name + "/_tags/list" }
func referrersPath(name string, d digest.Digest) string { return name + "/_referrers/" + d.String() }

func setDistributionHeader(w http.ResponseWriter) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
}
