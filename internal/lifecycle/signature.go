package lifecycle

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/meta"
)

// BlobOpener opens content by digest.
type BlobOpener interface {
	Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, error)
}

// cosign's annotation carrying a signature on a signature manifest's layer.
const cosignSignatureAnnotation = "dev.cosignproject.cosign/signature"

// Bounds on what is read while looking for signatures.
const (
	maxSignatureManifest = 4 << 20
	maxSignaturePayload  = 1 << 20
	maxSignatures        = 64
)

type key struct {
	v           signature.Verifier
	fingerprint string
}

// signatureGate verifies, offline and key-based, that a cosign signature
// of the artifact's digest in its source repository verifies against one of
// the configured public keys. Signatures are found both ways cosign stores
// them: the tag scheme (sha256-<hex>.sig) and OCI 1.1 referrers (a
// signature manifest whose subject is the artifact).
func signatureGate(ctx context.Context, g *config.SignatureGate, in GateInput, f format.Format) GateResult {
	res := GateResult{Gate: "require_signature"}
	d := in.Artifact.Version
	if in.Artifact.Component == nil || !isDigest(d) {
		res.Detail = "signatures are verified for OCI artifacts (named by tag or digest); " + in.Source.Format + " artifacts cannot pass this gate"
		return res
	}
	keys, err := loadKeys(g)
	if err != nil {
		res.Detail = err.Error()
		return res
	}
	sigs, err := signatureManifests(ctx, in, f, in.Artifact.Name, d)
	if err != nil {
		res.Detail = "looking for signatures: " + err.Error()
		return res
	}
	if len(sigs) == 0 {
		res.Detail = fmt.Sprintf("no cosign signature of %s in %s (neither a %s tag nor a referrer)", d, in.Source.Key, strings.Replace(d, ":", "-", 1)+".sig")
		return res
	}
	var problems []string
	for _, sd := range sigs {
		ok, why := verifyManifest(ctx, in, in.Artifact.Name, sd, d, keys)
		if ok != "" {
			res.Passed = true
			res.Detail = fmt.Sprintf("cosign signature %s verified with key %s", sd, ok)
			return res
		}
		problems = append(problems, why)
	}
	res.Detail = fmt.Sprintf("%d signature manifest(s) of %s found, none verifies against the %d configured key(s): %s",
		len(sigs), d, len(keys), strings.Join(problems, "; "))
	return res
}

func loadKeys(g *config.SignatureGate) ([]key, error) {
	pems, err := g.Keys()
	if err != nil {
		return nil, fmt.Errorf("reading the configured public keys: %v", err)
	}
	var out []key
	for i, p := range pems {
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(p)
		if err != nil {
			return nil, fmt.Errorf("configured public key %d: %v", i+1, err)
		}
		v, err := signature.LoadVerifier(pub, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("configured public key %d: %v", i+1, err)
		}
		der, _ := cryptoutils.MarshalPublicKeyToDER(pub)
		sum := sha256.Sum256(der)
		out = append(out, key{v: v, fingerprint: "sha256:" + hex.EncodeToString(sum[:8])})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no public keys are configured")
	}
	return out, nil
}

// signatureManifests lists the versions of name that may be signatures of d.
func signatureManifests(ctx context.Context, in GateInput, f format.Format, name, d string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(v string) {
		if !seen[v] && len(out) < maxSignatures {
			seen[v] = true
			out = append(out, v)
		}
	}
	if gr, ok := f.(format.Grapher); ok {
		tags, err := in.Store.ListTags(ctx, in.Source.ID, name)
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			if strings.HasSuffix(t.Tag, ".sig") && gr.AttachedTo(t.Tag) == d {
				add(t.Target)
			}
		}
	}
	refs, err := in.Store.ListLinksTo(ctx, in.Source.ID, name, d, "subject")
	if err != nil {
		return nil, err
	}
	for _, l := range refs {
		add(l.Source)
	}
	return out, nil
}

// verifyManifest checks the cosign layers of one signature manifest; it
// returns the fingerprint of the key that verified, or why none did.
func verifyManifest(ctx context.Context, in GateInput, name, sigVersion, subject string, keys []key) (string, string) {
	c, err := in.Store.GetComponent(ctx, in.Source.ID, name, sigVersion)
	if err != nil {
		return "", sigVersion + ": " + err.Error()
	}
	as, err := in.Store.ListComponentAssets(ctx, c.ID)
	if err != nil || len(as) == 0 {
		return "", sigVersion + ": its manifest is missing"
	}
	body, err := readBlob(ctx, in.Blobs, as[0], maxSignatureManifest)
	if err != nil {
		return "", sigVersion + ": " + err.Error()
	}
	var m struct {
		Layers []struct {
			Digest      string            `json:"digest"`
			Size        int64             `json:"size"`
			Annotations map[string]string `json:"annotations"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return "", sigVersion + ": not a manifest"
	}
	var why []string
	for _, l := range m.Layers {
		b64, ok := l.Annotations[cosignSignatureAnnotation]
		if !ok {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			why = append(why, "a signature annotation is not base64")
			continue
		}
		dg := digest.Digest(l.Digest)
		if dg.Validate() != nil || l.Size > maxSignaturePayload {
			why = append(why, "a signed payload has a bad digest or is too large")
			continue
		}
		p, err := readDigest(ctx, in.Blobs, dg, maxSignaturePayload)
		if err != nil {
			why = append(why, "signed payload "+l.Digest+" is missing")
			continue
		}
		var verifiedBy string
		for _, k := range keys {
			if k.v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(p)) == nil {
				verifiedBy = k.fingerprint
				break
			}
		}
		if verifiedBy == "" {
			why = append(why, "signature does not verify with any configured key")
			continue
		}
		var sp payload.SimpleContainerImage
		if err := json.Unmarshal(p, &sp); err != nil {
			why = append(why, "the signed payload is not a cosign simple-signing payload")
			continue
		}
		if got := sp.Critical.Image.DockerManifestDigest; got != subject {
			why = append(why, fmt.Sprintf("the signature is for %s, not %s", got, subject))
			continue
		}
		return verifiedBy, ""
	}
	if len(why) == 0 {
		why = append(why, "no cosign signature layer")
	}
	return "", sigVersion + ": " + strings.Join(why, ", ")
}

func readBlob(ctx context.Context, b BlobOpener, a *meta.Asset, limit int64) ([]byte, error) {
	if a.Size > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", a.Path, limit)
	}
	return readDigest(ctx, b, digest.Digest(a.Blob), limit)
}

func readDigest(ctx context.Context, b BlobOpener, d digest.Digest, limit int64) ([]byte, error) {
	f, err := b.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", d, limit)
	}
	if digest.FromBytes(data) != d && d.Algorithm() == digest.SHA256 {
		return nil, fmt.Errorf("%s does not match its content", d)
	}
	return data, nil
}
