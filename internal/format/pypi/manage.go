package pypi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

// Yanking (PEP 592) and deleting. PyPI has no API for either (its web UI
// does both); Coffer gives them URLs next to the JSON API:
//
//	POST   pypi/<project>/<version>/yank   reason=... (form, JSON or query)
//	DELETE pypi/<project>/<version>/yank   un-yank
//	DELETE pypi/<project>/<version>        remove the release's files
//	DELETE packages/<project>/<version>/<file>  remove one file
//
// A yank is the release's deprecation in the core model, so release
// repositories, which never delete, yank instead.

const maxYankBody = 64 << 10

func (h *handler) yank(w http.ResponseWriter, r *http.Request, rp *repo.Repository, name, version string, yanked bool) error {
	version = normalizeVersion(version)
	reason := ""
	if yanked {
		var err error
		if reason, err = yankReason(r); err != nil {
			return err
		}
	}
	action := "yank"
	if !yanked {
		action = "unyank"
	}
	var target *repo.Repository
	err := h.d.Repos.Mutate(r.Context(), rp, auth.Write, name, action, func(ctx context.Context, tx meta.Tx, t *repo.Repository) error {
		target = t
		c, err := tx.GetComponent(ctx, t.ID, name, version)
		if errors.Is(err, errs.NotFound) {
			return errs.New(errs.NotFound, "release %s %s not found in %s", name, version, t.Key)
		}
		if err != nil {
			return err
		}
		return tx.SetComponentDeprecation(ctx, c.ID, yanked, reason)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"repo": target.Key, "project": name, "version": version, "yanked": yanked, "reason": reason})
}

// yankReason reads the reason from a form, a JSON body or the query.
func yankReason(r *http.Request) (string, error) {
	reason := r.URL.Query().Get("reason")
	if r.Body == nil {
		return reason, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxYankBody+1))
	if err != nil {
		return "", errs.Wrap(errs.Invalid, err, "reading the request failed: %v", err)
	}
	if len(b) > maxYankBody {
		return "", errs.New(errs.TooLarge, "a yank reason is at most %d bytes", maxYankBody)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return reason, nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mt == "application/json" || strings.HasPrefix(strings.TrimSpace(string(b)), "{"):
		var body struct {
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			return "", errs.New(errs.Invalid, "the body is not valid JSON ({\"reason\": \"...\"}): %v", err)
		}
		return body.Reason, nil
	default:
		v, err := url.ParseQuery(string(b))
		if err != nil {
			return "", errs.New(errs.Invalid, "the body is not a form (reason=...): %v", err)
		}
		if v.Has("reason") {
			return v.Get("reason"), nil
		}
	}
	return reason, nil
}

// mayDelete authorizes a delete and explains a refusal the PyPI way.
func (h *handler) mayDelete(ctx context.Context, rp *repo.Repository, what string) error {
	target, err := h.d.Repos.DeployTarget(rp)
	if err != nil {
		return err
	}
	if err := h.d.Repos.Authorize(ctx, auth.Delete, target.Key); err != nil {
		return err
	}
	if !target.Policy.Delete {
		return errs.New(errs.Immutable, "%s cannot be deleted from %s (%s): yank it instead (POST .../yank with a reason)", what, target.Key, target.PolicyName())
	}
	return nil
}

func (h *handler) deleteRelease(w http.ResponseWriter, r *http.Request, rp *repo.Repository, name, version string) error {
	version = normalizeVersion(version)
	if err := h.mayDelete(r.Context(), rp, name+" "+version); err != nil {
		return err
	}
	n := 0
	var target *repo.Repository
	err := h.d.Repos.Mutate(r.Context(), rp, auth.Delete, name, "delete-release", func(ctx context.Context, tx meta.Tx, t *repo.Repository) error {
		target = t
		c, err := tx.GetComponent(ctx, t.ID, name, version)
		if errors.Is(err, errs.NotFound) {
			return errs.New(errs.NotFound, "release %s %s not found in %s", name, version, t.Key)
		}
		if err != nil {
			return err
		}
		n, err = countFiles(ctx, tx, c)
		if err != nil {
			return err
		}
		_, err = repo.RemoveComponent(ctx, tx, c)
		return err
	})
	if err != nil {
		return err
	}
	h.d.Repos.Bump(target.ID, "")
	return writeJSON(w, http.StatusOK, map[string]any{"repo": target.Key, "project": name, "version": version, "deleted_files": n})
}

// countFiles counts a release's distribution files (not metadata files).
func countFiles(ctx context.Context, tx meta.Tx, c *meta.Component) (int, error) {
	as, err := tx.ListComponentAssets(ctx, c.ID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range as {
		if !strings.HasSuffix(a.Path, metadataSuffix) {
			n++
		}
	}
	return n, nil
}

func (h *handler) deleteFile(w http.ResponseWriter, r *http.Request, rp *repo.Repository, name, version, filename string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if strings.HasSuffix(filename, metadataSuffix) {
		return errs.New(errs.Invalid, "a core metadata file goes with its distribution: delete %s instead", strings.TrimSuffix(filename, metadataSuffix))
	}
	name = normalize(name)
	path := filePath(name, normalizeVersion(version), filename)
	if err := h.mayDelete(r.Context(), rp, filename); err != nil {
		return err
	}
	var target *repo.Repository
	err := h.d.Repos.Mutate(r.Context(), rp, auth.Delete, name, "delete", func(ctx context.Context, tx meta.Tx, t *repo.Repository) error {
		target = t
		a, err := tx.GetAsset(ctx, t.ID, path)
		if errors.Is(err, errs.NotFound) {
			return errs.New(errs.NotFound, "%s not found in %s", path, t.Key)
		}
		if err != nil {
			return err
		}
		if err := tx.DeleteAsset(ctx, t.ID, path); err != nil {
			return err
		}
		if err := tx.DeleteAsset(ctx, t.ID, path+metadataSuffix); err != nil && !errors.Is(err, errs.NotFound) {
			return err
		}
		if a.ComponentID == "" {
			return nil
		}
		// The last file of a release takes the release with it.
		as, err := tx.ListComponentAssets(ctx, a.ComponentID)
		if err != nil {
			return err
		}
		for _, o := range as {
			if !strings.HasSuffix(o.Path, metadataSuffix) {
				return nil
			}
		}
		for _, o := range as {
			if err := tx.DeleteAsset(ctx, o.RepoID, o.Path); err != nil {
				return err
			}
		}
		return tx.DeleteComponent(ctx, a.ComponentID)
	})
	if err != nil {
		return err
	}
	h.d.Repos.Bump(target.ID, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
