package pypi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/checksum"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

// fileAttrs are a distribution file's asset attributes.
type fileAttrs struct {
	Filename       string `json:"filename"`
	PackageType    string `json:"packagetype"`
	PythonVersion  string `json:"python_version"`
	RequiresPython string `json:"requires_python,omitempty"`
	// MetadataSHA256 is the sha256 of the core metadata file served at
	// <file>.metadata (wheels only: PEP 658).
	MetadataSHA256 string `json:"metadata_sha256,omitempty"`
	Comment        string `json:"comment,omitempty"`
}

// releaseAttrs are a release's component attributes.
type releaseAttrs struct {
	Name    string `json:"name"`    // the project name as the metadata spells it
	Version string `json:"version"` // the version as the metadata spells it
	Summary string `json:"summary,omitempty"`
}

// filePath is where a distribution file lives in a repository.
func filePath(project, version, filename string) string {
	return "packages/" + project + "/" + version + "/" + filename
}

const metadataSuffix = ".metadata"

// upload handles the legacy upload API: POST / with :action=file_upload.
func (h *handler) upload(w http.ResponseWriter, r *http.Request, t *format.Target) error {
	ctx := r.Context()
	bnd, err := boundary(r.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	target, err := h.d.Repos.DeployTarget(t.Repo)
	if err != nil {
		return err
	}
	// Before reading a byte of the form (Put authorizes again).
	if err := h.d.Repos.Authorize(ctx, auth.Write, target.Key); err != nil {
		return err
	}
	if limit := h.d.Repos.UploadLimit(target); limit > 0 && r.ContentLength > limit+maxFormFieldData {
		return errs.New(errs.TooLarge, "upload of %d bytes exceeds the %d-byte limit of %s", r.ContentLength, limit, target.Key)
	}
	form, err := readForm(r.Body, bnd)
	if err != nil {
		return err
	}
	switch action := form.Get(":action"); action {
	case "file_upload":
	case "submit":
		return errs.New(errs.Invalid, "project registration (:action=submit) is not needed: upload files directly")
	case "":
		return errs.New(errs.Invalid, "the upload form has no :action field (expected file_upload)")
	default:
		return errs.New(errs.Invalid, ":action %q is not supported (only file_upload)", clip(action, 40))
	}
	if v := form.Get("protocol_version"); v != "" && v != "1" {
		return errs.New(errs.Invalid, "protocol_version %q is not supported (only 1)", clip(v, 10))
	}
	name, ver := strings.TrimSpace(form.Get("name")), strings.TrimSpace(form.Get("version"))
	if name == "" || ver == "" {
		return errs.New(errs.Invalid, "the upload form needs the fields name and version")
	}
	if err := checkName(name); err != nil {
		return err
	}
	project := normalize(name)
	v, ok := parseVersion(ver)
	if !ok {
		return errs.New(errs.Invalid, "invalid version %q: versions must follow PEP 440", clip(ver, 60))
	}
	d, err := parseFilename(form.Filename, project)
	if err != nil {
		return err
	}
	if nv, ok := parseVersion(d.Version); !ok || nv.String() != v.String() {
		return errs.New(errs.Invalid, "file name %s says version %s, which contradicts the version field %s (from the file's core metadata)", d.Filename, d.Version, ver)
	}
	if ft := form.Get("filetype"); ft != "" && ft != d.Kind {
		return errs.New(errs.Invalid, "filetype %q does not match %s (a %s)", clip(ft, 20), d.Filename, d.Kind)
	}
	declared := checksum.Sums{}
	if s := strings.ToLower(strings.TrimSpace(form.Get("sha256_digest"))); s != "" {
		declared[checksum.SHA256] = s
	}
	if s := strings.ToLower(strings.TrimSpace(form.Get("md5_digest"))); s != "" {
		declared[checksum.MD5] = s
	}
	if len(declared) == 0 {
		return errs.New(errs.Invalid, "the upload form must include sha256_digest or md5_digest")
	}
	version := v.String()
	path := filePath(project, version, d.Filename)

	// PyPI's rule, whatever the tier: a file name never gets other bytes.
	if cur, err := h.d.Repos.Store().GetAsset(ctx, target.ID, path); err == nil {
		if s := declared[checksum.SHA256]; s != "" && "sha256:"+s != cur.Blob {
			return fileExists(d.Filename, cur.Blob)
		}
	} else if !errors.Is(err, errs.NotFound) {
		return err
	}

	// The digest Inspect saw: Check also runs when identical content was
	// already stored (no inspection then), which is not a conflict.
	var inspected string
	res, err := h.d.Repos.Put(ctx, t.Repo, path, form.File, repo.PutOptions{
		ContentType: contentType(d),
		Size:        -1,
		Declared:    declared,
		Component:   &repo.ComponentSpec{Name: project, Version: version},
		Inspect: func(ctx context.Context, c repo.Content) (*repo.Inspection, error) {
			// The rest of the form first: nothing is kept from a body that
			// does not end properly.
			if err := form.finish(); err != nil {
				return nil, err
			}
			inspected = c.Digest.String()
			return inspectUpload(c, d, project, version, form)
		},
		Check: func(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
			return checkRelease(ctx, tx, target, path, d, inspected)
		},
	})
	if err != nil {
		if errors.Is(err, errs.Immutable) {
			// A concurrent upload of the same name won the race.
			return fileExists(d.Filename, "")
		}
		return err
	}
	if !res.Unchanged {
		h.d.Repos.Bump(res.Asset.Repo.ID, "") // the project list may have changed
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if res.Unchanged {
		w.Write([]byte("OK: " + d.Filename + " was already stored with the same content\n"))
	} else {
		w.Write([]byte("OK: stored " + d.Filename + " in " + res.Asset.Repo.Key + "\n"))
	}
	return nil
}

func fileExists(filename, blob string) error {
	if blob != "" {
		return errs.New(errs.Exists, "File already exists ('%s', with sha256 hash '%s'). A file name can be used once; upload a new version instead.",
			filename, strings.TrimPrefix(blob, "sha256:"))
	}
	return errs.New(errs.Exists, "File already exists ('%s'). A file name can be used once; upload a new version instead.", filename)
}

func contentType(d *dist) string {
	switch d.Ext {
	case ".whl", ".zip":
		return "application/zip"
	}
	return "application/gzip"
}

// inspectUpload reads the archive's core metadata, refuses what contradicts
// the file name or the form, and describes the file and its release.
func inspectUpload(c repo.Content, d *dist, project, version string, form *uploadForm) (*repo.Inspection, error) {
	am, err := readArchiveMetadata(c, c.Size, d)
	if err != nil {
		return nil, err
	}
	m := am.Meta
	if mn := m.Get("name"); normalize(mn) != project {
		return nil, errs.New(errs.Invalid, "the core metadata of %s says Name: %s, which contradicts the file name (project %s); nothing was stored", d.Filename, clip(mn, 60), project)
	}
	if mv := m.Get("version"); normalizeVersion(mv) != version {
		return nil, errs.New(errs.Invalid, "the core metadata of %s says Version: %s, which contradicts the file name (version %s); nothing was stored", d.Filename, clip(mv, 60), version)
	}
	if fn := form.Get("name"); fn != "" && normalize(fn) != project {
		return nil, errs.New(errs.Invalid, "form field name %q contradicts the core metadata (%s)", clip(fn, 60), m.Get("name"))
	}
	fa := fileAttrs{
		Filename:       d.Filename,
		PackageType:    d.Kind,
		PythonVersion:  d.PyVersion,
		RequiresPython: m.Get("requires-python"),
		Comment:        form.Get("comment"),
	}
	sum := sha256.Sum256(am.Raw)
	if d.Kind == kindWheel {
		fa.MetadataSHA256 = hex.EncodeToString(sum[:])
	}
	attrs, _ := json.Marshal(fa)
	rel, _ := json.Marshal(releaseAttrs{Name: m.Get("name"), Version: m.Get("version"), Summary: m.Get("summary")})
	return &repo.Inspection{
		Component:  &repo.ComponentSpec{Name: project, Version: version, Attributes: rel},
		Attributes: attrs,
		Derived: []repo.Derived{{
			Path:        filePath(project, version, d.Filename) + metadataSuffix,
			Content:     am.Raw,
			ContentType: "text/plain; charset=utf-8",
			Attributes:  []byte(`{"metadata_of":` + jsonString(d.Filename) + `}`),
		}},
	}, nil
}

// checkRelease runs in the commit transaction: a file name never gets
// other bytes, and a release has at most one sdist. blob is the new
// content's digest ("" when Put found identical content stored).
func checkRelease(ctx context.Context, tx meta.Tx, target *repo.Repository, path string, d *dist, blob string) error {
	if cur, err := tx.GetAsset(ctx, target.ID, path); err == nil {
		if blob != "" && cur.Blob != blob {
			return fileExists(d.Filename, cur.Blob)
		}
	} else if !errors.Is(err, errs.NotFound) {
		return err
	}
	if d.Kind != kindSdist {
		return nil
	}
	project, version := pathParts(path)
	c, err := tx.GetComponent(ctx, target.ID, project, version)
	if errors.Is(err, errs.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	as, err := tx.ListComponentAssets(ctx, c.ID)
	if err != nil {
		return err
	}
	for _, a := range as {
		var fa fileAttrs
		if json.Unmarshal(a.Attributes, &fa) == nil && fa.PackageType == kindSdist && fa.Filename != d.Filename {
			return errs.New(errs.Exists, "Only one sdist may be uploaded per release: %s %s already has %s.", project, version, fa.Filename)
		}
	}
	return nil
}

// pathParts returns the project and version of packages/<p>/<v>/<file>.
func pathParts(path string) (project, version string) {
	parts := strings.SplitN(path, "/", 4)
	if len(parts) < 4 {
		return "", ""
	}
	return parts[1], parts[2]
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
