package oci

import (
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/checksum"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

func uploadURL(rt route, id string) string { return "/v2/" + rt.full() + "/blobs/uploads/" + id }

func uploadUnknown(err error, id string) error {
	if errs.KindOf(err) == errs.NotFound {
		return newErr(codeBlobUploadUnknown, http.StatusNotFound, errs.NotFound, map[string]string{"upload": id},
			"upload %s is unknown (finished, cancelled or expired)", id)
	}
	return err
}

// rangeHeader is the spec's Range value for n bytes received.
func rangeHeader(n int64) string {
	if n <= 0 {
		return "0-0"
	}
	return fmt.Sprintf("0-%d", n-1)
}

func (h *handler) sessionHeaders(w http.ResponseWriter, rt route, u *meta.Upload) {
	hd := w.Header()
	hd.Set("Location", uploadURL(rt, u.ID))
	hd.Set("Range", rangeHeader(u.Size))
	hd.Set("Docker-Upload-UUID", u.ID)
	hd.Set("Content-Length", "0")
}

func (h *handler) blobCreated(w http.ResponseWriter, key string, rt route, d digest.Digest) {
	hd := w.Header()
	hd.Set("Location", "/v2/"+key+"/"+rt.name+"/blobs/"+d.String())
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// startUpload is POST /blobs/uploads/: a mount, a monolithic upload (with
// ?digest=), or the start of a session.
func (h *handler) startUpload(w http.ResponseWriter, r *http.Request, rp *repo.Repository, rt route) error {
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		if d, ok := parseDigest(mount); ok {
			done, err := h.mount(w, r, rp, rt, d, q.Get("from"))
			if done || err != nil {
				return err
			}
		}
		// Not mountable (unknown, unreadable): the spec says start a session.
	} else if ds := q.Get("digest"); ds != "" {
		d, ok := parseDigest(ds)
		if !ok {
			return newErr(codeDigestInvalid, http.StatusBadRequest, errs.Invalid, nil, "invalid digest %q", ds)
		}
		res, err := h.repos.Put(r.Context(), rp, blobPath(rt.name, d), r.Body, repo.PutOptions{
			ContentType: "application/octet-stream",
			Size:        r.ContentLength,
			Declared:    declaredFor(d),
			Hashes:      hashesFor(d),
		})
		if err != nil {
			return blobError(err, d)
		}
		h.blobCreated(w, res.Asset.Repo.Key, rt, d)
		return nil
	}
	u, _, err := h.repos.StartUpload(r.Context(), rp, rt.name)
	if err != nil {
		return err
	}
	// A body on a POST without digest starts the session with it.
	if r.ContentLength > 0 {
		if u, err = h.repos.AppendUpload(r.Context(), rp, rt.name, u.ID, 0, r.Body); err != nil {
			return err
		}
	}
	h.sessionHeaders(w, rt, u)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// mount links a blob another name (in this or another Coffer repository
// the caller may read) holds. It reports false when the blob cannot be
// mounted from there.
func (h *handler) mount(w http.ResponseWriter, r *http.Request, rp *repo.Repository, rt route, d digest.Digest, from string) (bool, error) {
	key, name, ok := strings.Cut(from, "/")
	if !ok || !validName(name) {
		return false, nil
	}
	src, err := h.repos.Repo(key)
	if err != nil || src.Format != "oci" || !h.d.Auth.Can(r.Context(), principalOf(r), auth.Read, src.Key) {
		return false, nil
	}
	a, err := h.repos.Resolve(r.Context(), src, blobPath(name, d), blobSpec(name, d))
	if err != nil {
		return false, nil
	}
	res, err := h.repos.Link(r.Context(), rp, blobPath(rt.name, d), a.Asset, repo.PutOptions{Hashes: []checksum.Alg{}})
	if err != nil {
		return false, err
	}
	h.blobCreated(w, res.Asset.Repo.Key, rt, d)
	return true, nil
}

// contentRange parses "start-end" (the spec's chunk range); -1 when absent.
func contentRange(r *http.Request) (int64, error) {
	cr := r.Header.Get("Content-Range")
	if cr == "" {
		return -1, nil
	}
	cr = strings.TrimPrefix(cr, "bytes ")
	a, b, ok := strings.Cut(cr, "-")
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, newErr(codeRangeInvalid, http.StatusRequestedRangeNotSatisfiable, errs.Invalid, nil, "invalid Content-Range %q", r.Header.Get("Content-Range"))
	}
	if r.ContentLength >= 0 && r.ContentLength != end-start+1 {
		return 0, newErr(codeRangeInvalid, http.StatusRequestedRangeNotSatisfiable, errs.Invalid, nil,
			"Content-Range %q does not match Content-Length %d", r.Header.Get("Content-Range"), r.ContentLength)
	}
	return start, nil
}

func (h *handler) rangeError(w http.ResponseWriter, err error) error {
	var re *repo.RangeError
	if errors.As(err, &re) {
		w.Header().Set("Range", rangeHeader(re.Size))
		return newErr(codeRangeInvalid, http.StatusRequestedRangeNotSatisfiable, errs.Invalid, nil, "%v", re)
	}
	return err
}

func (h *handler) patchUpload(w http.ResponseWriter, r *http.Request, rp *repo.Repository, rt route) error {
	start, err := contentRange(r)
	if err != nil {
		return err
	}
	u, err := h.repos.AppendUpload(r.Context(), rp, rt.name, rt.ref, start, r.Body)
	if err != nil {
		return uploadUnknown(h.rangeError(w, err), rt.ref)
	}
	h.sessionHeaders(w, rt, u)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (h *handler) finishUpload(w http.ResponseWriter, r *http.Request, rp *repo.Repository, rt route) error {
	ds := r.URL.Query().Get("digest")
	d, ok := parseDigest(ds)
	if !ok {
		return newErr(codeDigestInvalid, http.StatusBadRequest, errs.Invalid, nil, "a valid ?digest= is required to finish an upload (got %q)", ds)
	}
	start, err := contentRange(r)
	if err != nil {
		return err
	}
	verify := func(bw blob.Writer) error {
		got := bw.Digest()
		if d.Algorithm() == digest.SHA512 {
			// The session hashed sha256 as it went; sha512 is read back.
			p, ok := bw.(blob.Peeker)
			if !ok {
				return errs.New(errs.NotAllowed, "this server cannot verify sha512 digests of chunked uploads")
			}
			rd, err := p.Peek()
			if err != nil {
				return err
			}
			defer rd.Close()
			hs := sha512.New()
			if _, err := io.Copy(hs, io.NewSectionReader(rd, 0, bw.Size())); err != nil {
				return err
			}
			got = digest.NewDigest(digest.SHA512, hs)
		}
		if got != d {
			return newErr(codeDigestInvalid, http.StatusBadRequest, errs.DigestMismatch, map[string]string{"digest": d.String()},
				"uploaded content has digest %s, not %s; the upload is cancelled", got, d)
		}
		return nil
	}
	res, err := h.repos.FinishUpload(r.Context(), rp, rt.name, rt.ref, start, r.Body, verify, blobPath(rt.name, d), repo.PutOptions{
		ContentType: "application/octet-stream",
		Hashes:      []checksum.Alg{},
	})
	if err != nil {
		return uploadUnknown(h.rangeError(w, err), rt.ref)
	}
	h.blobCreated(w, res.Asset.Repo.Key, rt, d)
	return nil
}

func (h *handler) uploadStatus(w http.ResponseWriter, r *http.Request, rp *repo.Repository, rt route) error {
	u, _, err := h.repos.Upload(r.Context(), rp, rt.name, rt.ref)
	if err != nil {
		return uploadUnknown(err, rt.ref)
	}
	h.sessionHeaders(w, rt, u)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) cancelUpload(w http.ResponseWriter, r *http.Request, rp *repo.Repository, rt route) error {
	if err := h.repos.CancelUpload(r.Context(), rp, rt.name, rt.ref); err != nil {
		return uploadUnknown(err, rt.ref)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// blobError turns a digest mismatch of a monolithic upload into the spec's code.
func blobError(err error, d digest.Digest) error {
	if errs.KindOf(err) == errs.DigestMismatch {
		return newErr(codeDigestInvalid, http.StatusBadRequest, errs.DigestMismatch, map[string]string{"digest": d.String()}, "%v", err)
	}
	return err
}
