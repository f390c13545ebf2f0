package oci

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cofferhq/coffer/internal/errs"
)

// Manifest media types.
const (
	mtOCIManifest    = v1.MediaTypeImageManifest
	mtOCIIndex       = v1.MediaTypeImageIndex
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtDockerSchema1  = "application/vnd.docker.distribution.manifest.v1+json"
	mtDockerSigned1  = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	mtEmptyJSON      = v1.MediaTypeEmptyJSON
)

// manifestAccept is what a proxy asks an upstream for.
const manifestAccept = mtOCIIndex + ", " + mtOCIManifest + ", " + mtDockerList + ", " + mtDockerManifest

// maxManifest bounds a manifest body (Distribution and ECR use 4 MiB).
const maxManifest = 4 << 20

// manifest is what Coffer needs to know of a manifest or index.
type manifest struct {
	MediaType    string
	ArtifactType string // for the referrers API
	Subject      *v1.Descriptor
	Blobs        []v1.Descriptor // config and layers
	Children     []v1.Descriptor // an index's manifests
	Annotations  map[string]string
}

// rawManifest has the fields of every manifest kind Coffer accepts.
type rawManifest struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *v1.Descriptor    `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Manifests     []v1.Descriptor   `json:"manifests"`
	Subject       *v1.Descriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
	// schema 1 markers
	FSLayers   json.RawMessage `json:"fsLayers"`
	Signatures json.RawMessage `json:"signatures"`
}

func invalid(format string, args ...any) error {
	return newErr(codeManifestInvalid, http.StatusBadRequest, errs.Invalid, nil, format, args...)
}

// parseManifest decodes and checks a manifest sent with Content-Type ct.
func parseManifest(ct string, body []byte) (*manifest, error) {
	var raw rawManifest
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, invalid("manifest is not valid JSON: %v", err)
	}
	mt := strings.TrimSpace(ct)
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	if mt == "" || mt == "application/json" || mt == "application/octet-stream" {
		mt = raw.MediaType
	}
	switch {
	case mt == mtDockerSchema1 || mt == mtDockerSigned1 || raw.FSLayers != nil || raw.Signatures != nil ||
		raw.SchemaVersion != nil && *raw.SchemaVersion == 1:
		return nil, invalid("Docker image manifest schema 1 is not supported (deprecated since 2017): push with schema 2 or OCI")
	case raw.MediaType != "" && raw.MediaType != mt:
		return nil, invalid("manifest mediaType %q does not match the Content-Type %q", raw.MediaType, mt)
	case raw.SchemaVersion == nil || *raw.SchemaVersion != 2:
		return nil, invalid("manifest schemaVersion must be 2")
	}
	m := &manifest{MediaType: mt, ArtifactType: raw.ArtifactType, Subject: raw.Subject, Annotations: raw.Annotations}
	switch mt {
	case mtOCIManifest, mtDockerManifest:
		if raw.Config == nil {
			return nil, invalid("image manifest has no config descriptor")
		}
		if raw.Manifests != nil {
			return nil, invalid("image manifest must not list manifests")
		}
		m.Blobs = append([]v1.Descriptor{*raw.Config}, raw.Layers...)
		if m.ArtifactType == "" && mt == mtOCIManifest {
			// The referrers API reports the config media type when an image
			// manifest carries no artifactType.
			m.ArtifactType = raw.Config.MediaType
		}
		if raw.Config.MediaType == mtEmptyJSON && raw.ArtifactType == "" && mt == mtOCIManifest {
			return nil, invalid("an artifact manifest with an empty config must set artifactType")
		}
	case mtOCIIndex, mtDockerList:
		if raw.Config != nil || raw.Layers != nil {
			return nil, invalid("index must not have config or layers")
		}
		m.Children = raw.Manifests
	default:
		return nil, invalid("unsupported manifest media type %q", mt)
	}
	for _, d := range append(append([]v1.Descriptor{}, m.Blobs...), m.Children...) {
		if err := checkDescriptor(d); err != nil {
			return nil, err
		}
	}
	if m.Subject != nil {
		if err := checkDescriptor(*m.Subject); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func checkDescriptor(d v1.Descriptor) error {
	if _, ok := parseDigest(string(d.Digest)); !ok {
		return invalid("descriptor digest %q is not a valid sha256 or sha512 digest", d.Digest)
	}
	if d.Size < 0 {
		return invalid("descriptor %s has a negative size", d.Digest)
	}
	if d.MediaType == "" {
		return invalid("descriptor %s has no mediaType", d.Digest)
	}
	return nil
}

// external reports whether a layer lives outside the registry (Docker
// foreign layers, non-distributable OCI layers with URLs): such blobs are
// never pushed and not checked.
func external(d v1.Descriptor) bool {
	return len(d.URLs) > 0
}

// attrs is what a manifest's component keeps: enough to answer the
// referrers API and content negotiation without reading the manifest.
type attrs struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Size         int64             `json:"size"`
	Subject      string            `json:"subject,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

func (m *manifest) attributes(size int64) []byte {
	a := attrs{MediaType: m.MediaType, ArtifactType: m.ArtifactType, Size: size, Annotations: m.Annotations}
	if m.Subject != nil {
		a.Subject = m.Subject.Digest.String()
	}
	b, _ := json.Marshal(a)
	return b
}

// digestOf computes a manifest's digest with the algorithm of want (sha256
// when want is empty).
func digestOf(body []byte, want digest.Digest) digest.Digest {
	alg := digest.SHA256
	if want != "" {
		alg = want.Algorithm()
	}
	return alg.FromBytes(body)
}
