package npm

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/checksum"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

// putPackage serves PUT /<name> (and /<name>/-rev/<rev>): a publish when
// the document carries an attachment, else a metadata update (deprecate,
// or the first step of unpublishing one version).
func (h *handler) putPackage(w http.ResponseWriter, r *http.Request, t *format.Target, name string) error {
	ctx := r.Context()
	target, err := h.d.Repos.DeployTarget(t.Repo)
	if err != nil {
		return err
	}
	// Refuse before reading a large body. (Publish and deprecate need
	// write, unpublish delete: each is authorized again where it happens.)
	if err := h.d.Repos.Authorize(ctx, auth.Write, target.Key); err != nil {
		if h.d.Repos.Authorize(ctx, auth.Delete, target.Key) != nil {
			return err
		}
	}
	pub := &publisher{h: h, ctx: ctx, target: target, name: name}
	defer pub.abort(errAborted) // whatever happens, the Put and the spool end
	doc, err := parseDocument(r.Body, pub.sink)
	if err != nil {
		return pub.abort(err)
	}
	if len(doc.Attachments) == 0 {
		return h.updatePackage(w, r, t, target, name, doc)
	}
	res, err := pub.finish(doc)
	if err != nil {
		return err
	}
	writeJSON(w, r, http.StatusCreated, map[string]any{"ok": true, "success": true, "id": name,
		"version": pub.version, "repository": res.Asset.Repo.Key})
	return nil
}

// publisher stores the tarball of a publish document while it is parsed.
type publisher struct {
	h      *handler
	ctx    context.Context
	target *repo.Repository
	name   string

	// What the document says, once its "versions" member was read.
	version  string
	file     string
	manifest map[string]json.RawMessage
	tags     map[string]string
	declared checksum.Sums
	readme   json.RawMessage // a top-level readme (older clients)

	// Streaming: the parser writes the decoded tarball into pw, which the
	// repository's Put reads in another goroutine; Put sees the end of
	// the body only once the whole document parsed and checked.
	pw   *io.PipeWriter
	done chan putDone
	// Held aside when the attachment comes before "versions".
	spool *os.File
	// ended is set once the Put (if any) has returned and the spool closed.
	ended bool
}

type putDone struct {
	res *repo.PutResult
	err error
}

// errAborted ends a Put whose document turned out bad.
var errAborted = errors.New("publish document refused")

// sink is called when the attachment's data starts.
func (p *publisher) sink(doc *document, file string) (io.Writer, error) {
	if p.pw != nil || p.spool != nil {
		return nil, malformed("a publish carries exactly one attachment (the tarball)")
	}
	if _, ok := doc.Fields["versions"]; !ok {
		// Metadata after the tarball (yarn 2+ sends it so): hold the
		// tarball aside, bounded by the repository's upload limit.
		f, err := os.CreateTemp("", "coffer-npm-publish-*.tgz")
		if err != nil {
			return nil, err
		}
		os.Remove(f.Name()) // gone when closed
		p.spool = f
		limit := p.h.d.Repos.UploadLimit(p.target)
		if limit <= 0 {
			limit = 1 << 62
		}
		return &limitWriter{w: f, left: limit, repo: p.target.Key, limit: limit}, nil
	}
	if err := p.prepare(doc, file); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	p.pw, p.done = pw, make(chan putDone, 1)
	go func() {
		res, err := p.put(pr, -1)
		if err == nil {
			err = errAborted // any later write is refused; the Put is over
		}
		pr.CloseWithError(err)
		if errors.Is(err, errAborted) {
			err = nil
		}
		p.done <- putDone{res, err}
	}()
	return pw, nil
}

// prepare reads what the document says about the version being published
// and refuses a bad one before the tarball is read.
func (p *publisher) prepare(doc *document, file string) error {
	if err := checkName(p.name, true); err != nil {
		return err
	}
	for _, f := range []string{"name", "_id"} {
		if raw, ok := doc.Fields[f]; ok && jsonString(raw) != p.name {
			return errs.New(errs.Invalid, "the document's %s (%s) is not the package name in the URL (%s)", f, raw, p.name)
		}
	}
	var versions map[string]map[string]json.RawMessage
	if err := json.Unmarshal(doc.Fields["versions"], &versions); err != nil {
		return malformed("versions must be an object of version manifests")
	}
	if len(versions) != 1 {
		return malformed("a publish carries exactly one version (it has %d)", len(versions))
	}
	for v, m := range versions {
		p.version, p.manifest = v, m
	}
	if _, ok := parseSemver(p.version); !ok {
		return errs.New(errs.Invalid, "version %q of %s is not a valid semantic version", p.version, p.name)
	}
	if p.manifest == nil {
		return malformed("the manifest of %s must be an object", p.version)
	}
	if n := jsonString(p.manifest["name"]); n != p.name {
		return errs.New(errs.Invalid, "the manifest's name (%s) is not %s", p.manifest["name"], p.name)
	}
	if v := jsonString(p.manifest["version"]); v != p.version {
		return errs.New(errs.Invalid, "the manifest's version (%s) is not %s", p.manifest["version"], p.version)
	}
	canonical := tarballFile(p.name, p.version)
	if file != canonical && file != p.name+"-"+p.version+".tgz" {
		return errs.New(errs.Invalid, "the attachment is named %q; the tarball of %s@%s must be %q",
			file, p.name, p.version, canonical)
	}
	p.file = canonical
	if raw, ok := doc.Fields["readme"]; ok && len(raw) > 0 && raw[0] == '"' {
		p.readme = raw
	}
	p.tags = map[string]string{}
	if raw, ok := doc.Fields["dist-tags"]; ok {
		if err := json.Unmarshal(raw, &p.tags); err != nil {
			return malformed("dist-tags must map tag names to versions")
		}
	}
	for tag, v := range p.tags {
		if v != p.version {
			delete(p.tags, tag) // only the version being published is tagged here
			continue
		}
		if err := checkTag(tag); err != nil {
			return err
		}
	}
	var dist map[string]json.RawMessage
	if raw, ok := p.manifest["dist"]; ok && json.Unmarshal(raw, &dist) != nil {
		return malformed("dist of %s must be an object", p.version)
	}
	p.declared = checksum.Sums{}
	if raw, ok := dist["shasum"]; ok {
		s := strings.ToLower(jsonString(raw))
		if !checksum.SHA1.ValidHex(s) {
			return errs.New(errs.Invalid, "dist.shasum %s is not a sha1 hex digest", raw)
		}
		p.declared[checksum.SHA1] = s
	}
	if raw, ok := dist["integrity"]; ok {
		integrity := jsonString(raw)
		hx := sha512Hex(integrity)
		if hx == "" && strings.Contains(integrity, "sha512-") {
			return errs.New(errs.Invalid, "dist.integrity %s has a malformed sha512 digest", raw)
		}
		if hx != "" {
			p.declared[checksum.SHA512] = hx
		}
	}
	// A version is published once, on every tier (as on the public
	// registry); checked again inside the commit.
	if _, err := p.h.d.Repos.Store().GetComponent(p.ctx, p.target.ID, p.name, p.version); err == nil {
		return republished(p.name, p.version, p.target)
	} else if !errors.Is(err, errs.NotFound) {
		return err
	}
	return nil
}

func republished(name, version string, target *repo.Repository) error {
	return errs.New(errs.Exists, "You cannot publish over the previously published versions: %s. (%s@%s is already in %s; publish a new version)",
		version, name, version, target.Key)
}

// attributes is the version manifest as stored: the client's, with the
// registry's own fields set.
func (p *publisher) attributes(readme json.RawMessage, sums checksum.Sums) []byte {
	m := make(map[string]json.RawMessage, len(p.manifest)+2)
	for k, v := range p.manifest {
		m[k] = v
	}
	var dist map[string]json.RawMessage
	json.Unmarshal(m["dist"], &dist)
	if dist == nil {
		dist = map[string]json.RawMessage{}
	}
	delete(dist, "tarball") // the serving repository's URL is set when served
	if s := sums[checksum.SHA1]; s != "" {
		dist["shasum"] = mustJSON(s)
	}
	if s := sums[checksum.SHA512]; s != "" {
		b, _ := hex.DecodeString(s)
		dist["integrity"] = mustJSON("sha512-" + base64.StdEncoding.EncodeToString(b))
	}
	m["dist"] = mustJSON(dist)
	delete(m, "deprecated") // deprecation is the component's, set by npm deprecate
	if readme != nil {
		if _, ok := m["readme"]; !ok {
			m["readme"] = readme
		}
	}
	if u := auth.PrincipalFrom(p.ctx); !u.IsAnonymous() {
		// npm view prints "<email>" after the name: "" prints nothing.
		m["_npmUser"] = mustJSON(map[string]string{"name": u.User.Name, "email": u.User.Email})
	}
	return mustJSON(m)
}

// put stores the tarball read from body.
func (p *publisher) put(body io.Reader, size int64) (*repo.PutResult, error) {
	res, err := p.h.d.Repos.Put(p.ctx, p.target, tarballPath(p.name, p.file), &gzipCheck{r: body}, repo.PutOptions{
		ContentType: "application/octet-stream",
		Size:        size,
		Declared:    p.declared,
		Hashes:      []checksum.Alg{checksum.SHA1, checksum.MD5, checksum.SHA512},
		Component: &repo.ComponentSpec{Name: p.name, Version: p.version,
			// The declared digests are the content's, or nothing is stored.
			Attributes: p.attributes(p.readme, p.declared)},
		Check: p.check,
	})
	if err != nil {
		if errs.KindOf(err) == errs.DigestMismatch {
			return nil, errs.Wrap(errs.DigestMismatch, err,
				"integrity check failed for %s@%s: the tarball does not match the dist.integrity/dist.shasum of the publish document (%v)",
				p.name, p.version, err)
		}
		return nil, err
	}
	if res.Unchanged {
		return nil, republished(p.name, p.version, p.target)
	}
	return res, nil
}

// check runs inside the commit: the version must still be new; the
// document's dist-tags are recorded in the same transaction.
func (p *publisher) check(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
	if _, err := tx.GetComponent(ctx, target.ID, p.name, p.version); err == nil {
		return republished(p.name, p.version, target)
	} else if !errors.Is(err, errs.NotFound) {
		return err
	}
	for tag, v := range p.tags {
		if err := tx.SetTag(ctx, &meta.Tag{RepoID: target.ID, Name: p.name, Tag: tag, Target: v}); err != nil {
			return err
		}
	}
	if _, ok := p.tags["latest"]; !ok {
		if _, err := tx.GetTag(ctx, target.ID, p.name, "latest"); errors.Is(err, errs.NotFound) {
			return tx.SetTag(ctx, &meta.Tag{RepoID: target.ID, Name: p.name, Tag: "latest", Target: p.version})
		} else if err != nil {
			return err
		}
	}
	return nil
}

// abort ends a publish whose document failed to parse; the Put, if
// started, stores nothing. Its error, if it failed first, is the cause.
func (p *publisher) abort(err error) error {
	if p.ended {
		return err
	}
	p.ended = true
	if p.spool != nil {
		p.spool.Close()
	}
	if p.pw == nil {
		return err
	}
	p.pw.CloseWithError(err)
	d := <-p.done
	if d.err != nil && !errors.Is(d.err, err) {
		return d.err
	}
	return err
}

// finish checks the whole document and lets the Put commit.
func (p *publisher) finish(doc *document) (*repo.PutResult, error) {
	a := doc.Attachments[0]
	if a.Size < 0 {
		return nil, p.abort(malformed("attachment %q has no data", a.Name))
	}
	if a.Length >= 0 && a.Length != a.Size {
		return nil, p.abort(malformed("attachment %q declares length %d but its data is %d bytes", a.Name, a.Length, a.Size))
	}
	if p.spool != nil {
		if err := p.prepare(doc, a.Name); err != nil {
			return nil, err
		}
		if _, err := p.spool.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return p.put(p.spool, a.Size)
	}
	// Streaming: "versions" was read before the tarball; members after it
	// (dist-tags, readme) are taken into account before the commit.
	var versions map[string]json.RawMessage
	json.Unmarshal(doc.Fields["versions"], &versions)
	if _, ok := versions[p.version]; !ok || len(versions) != 1 {
		return nil, p.abort(malformed("versions changed while parsing"))
	}
	if raw, ok := doc.Fields["dist-tags"]; ok {
		tags := map[string]string{}
		if err := json.Unmarshal(raw, &tags); err != nil {
			return nil, p.abort(malformed("dist-tags must map tag names to versions"))
		}
		for tag, v := range tags {
			if v != p.version {
				continue
			}
			if err := checkTag(tag); err != nil {
				return nil, p.abort(err)
			}
			p.tags[tag] = v
		}
	}
	p.ended = true
	p.pw.Close()
	d := <-p.done
	return d.res, d.err
}

// limitWriter refuses more than its limit.
type limitWriter struct {
	w     io.Writer
	left  int64
	limit int64
	repo  string
}

func (l *limitWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > l.left {
		return 0, errs.New(errs.TooLarge, "the tarball exceeds the %d-byte limit of %s", l.limit, l.repo)
	}
	l.left -= int64(len(b))
	return l.w.Write(b)
}

// gzipCheck refuses a tarball that is not gzip-compressed.
type gzipCheck struct {
	r    io.Reader
	seen int
	head [2]byte
}

func (g *gzipCheck) Read(b []byte) (int, error) {
	n, err := g.r.Read(b)
	for i := 0; i < n && g.seen < 2; i++ {
		g.head[g.seen] = b[i]
		g.seen++
		if g.seen == 2 && (g.head[0] != 0x1f || g.head[1] != 0x8b) {
			return 0, errs.New(errs.Invalid, "the attachment is not a gzip-compressed tarball")
		}
	}
	if err == io.EOF && g.seen < 2 {
		return n, errs.New(errs.Invalid, "the attachment is not a gzip-compressed tarball (too short)")
	}
	return n, err
}
