package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/lifecycle"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

// The lifecycle part of the management API: retention, pins, properties
// and promotions.

func (a *api) lifecycleRoutes() []route {
	return []route{
		{"POST /api/v1/retention", a.runRetention, "Run retention now (admin) over the given repositories (all local ones when none); {\"dry_run\": true} lists what would expire and the rule that decided each.", "RetentionRequest", "RetentionReport"},
		{"GET /api/v1/retention", a.lastRetention, "The last (real) retention run's report (admin).", "", "RetentionReport"},
		{"GET /api/v1/repositories/{key}/pins", a.listPins, "Pinned (in use) versions of a local repository; retention never expires them.", "", "PinList"},
		{"POST /api/v1/repositories/{key}/pins", a.addPin, "Pin an artifact named in its format's coordinates (write or promote permission), e.g. by a deployment system.", "PinCreate", "Pin"},
		{"DELETE /api/v1/repositories/{key}/pins", a.deletePin, "Unpin an artifact (?artifact=<coordinates>).", "", ""},
	}
}

var postAnswers200 = map[string]bool{"RetentionReport": true}

func lifecycleSchemas() map[string]any {
	item := obj(map[string]any{"name": str, "version": str, "tags": strs, "created": when, "rule": str, "with": strs})
	prot := obj(map[string]any{"name": str, "version": str, "rule": str, "reason": str})
	pin := obj(map[string]any{"repo": str, "artifact": str, "name": str, "version": str, "reason": str, "created_by": str, "created_at": when})
	return map[string]any{
		"RetentionRequest": obj(map[string]any{"repos": strs, "dry_run": boolT}),
		"RetentionReport": obj(map[string]any{"dry_run": boolT, "started": when, "finished": when, "expired": intT,
			"repositories": arr(obj(map[string]any{"repo": str, "skipped": str, "expired": arr(item), "protected": arr(prot)}))}),
		"Pin":       pin,
		"PinList":   arr(ref("Pin")),
		"PinCreate": obj(map[string]any{"artifact": map[string]any{"type": "string", "description": "Coordinates in the repository's format: team/api@sha256:…, team/api:v2, @acme/ui@1.4.0, acme-lib==1.0.0, a raw path."}, "reason": str}, "artifact"),
	}
}

func (a *api) runRetention(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	var body struct {
		Repos  []string `json:"repos"`
		DryRun bool     `json:"dry_run"`
	}
	if r.ContentLength != 0 {
		if err := decodeBody(r, &body); err != nil {
			return err
		}
	}
	if a.s.retention == nil {
		return errs.New(errs.Unavailable, "retention is not configured")
	}
	rep, err := a.s.retention.Run(r.Context(), body.Repos, body.DryRun)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (a *api) lastRetention(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	if a.s.retention == nil {
		return errs.New(errs.Unavailable, "retention is not configured")
	}
	rep := a.s.retention.Last()
	if rep == nil {
		return errs.New(errs.NotFound, "no retention run has completed since this server started")
	}
	return writeJSON(w, http.StatusOK, rep)
}

// localRepo returns the {key} repository, which must be local.
func (a *api) localRepo(r *http.Request) (*repo.Repository, error) {
	rp, err := a.repos.Repo(r.PathValue("key"))
	if err != nil {
		return nil, err
	}
	if rp.Kind != repo.Local {
		return nil, errs.New(errs.Invalid, "%s is a %s repository; this applies to local repositories", rp.Key, rp.Kind)
	}
	return rp, nil
}

// authorizeAny passes when the caller may do any of the actions on key.
func (a *api) authorizeAny(r *http.Request, key string, actions ...auth.Action) error {
	var first error
	for _, act := range actions {
		err := a.auth.Authorize(r.Context(), principal(r), act, key)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

type pinView struct {
	Repo      string `json:"repo"`
	Artifact  string `json:"artifact,omitempty"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	Reason    string `json:"reason"`
	CreatedBy string `json:"created_by"`
	CreatedAt string `json:"created_at"`
}

func (a *api) listPins(w http.ResponseWriter, r *http.Request) error {
	rp, err := a.readableRepo(r)
	if err != nil {
		return err
	}
	pins, err := a.store.ListPins(r.Context(), rp.ID)
	if err != nil {
		return err
	}
	out := []pinView{}
	for _, p := range pins {
		out = append(out, pinView{Repo: rp.Key, Name: p.Name, Version: p.Version, Reason: p.Reason, CreatedBy: p.CreatedBy, CreatedAt: iso(p.CreatedAt)})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) resolve(r *http.Request, rp *repo.Repository, coords string) (*lifecycle.Resolved, error) {
	if coords == "" {
		return nil, errs.New(errs.Invalid, "artifact is required: the coordinates of the artifact in %s's format (%s)", rp.Key, rp.Format)
	}
	f := a.s.Format(rp.Format)
	if f == nil {
		return nil, errs.New(errs.Invalid, "format %s is not served", rp.Format)
	}
	return lifecycle.Resolve(r.Context(), a.store, f, rp, coords)
}

func (a *api) addPin(w http.ResponseWriter, r *http.Request) error {
	rp, err := a.localRepo(r)
	if err != nil {
		return err
	}
	if err := a.authorizeAny(r, rp.Key, auth.Write, auth.Promote); err != nil {
		return err
	}
	var body struct {
		Artifact string `json:"artifact"`
		Reason   string `json:"reason"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	res, err := a.resolve(r, rp, body.Artifact)
	if err != nil {
		return err
	}
	p := &meta.Pin{RepoID: rp.ID, Name: res.Name, Version: res.Version, Reason: body.Reason, CreatedBy: principal(r).Name()}
	err = a.store.InTx(r.Context(), func(tx meta.Tx) error {
		if err := tx.PutPin(r.Context(), p); err != nil {
			return err
		}
		return tx.AddAudit(r.Context(), &meta.AuditEvent{Actor: p.CreatedBy, Action: "pin", Repo: rp.Key, Path: res.Name + "@" + res.Version,
			Detail: mustJSON(map[string]string{"artifact": body.Artifact, "reason": body.Reason})})
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, pinView{Repo: rp.Key, Artifact: body.Artifact, Name: p.Name, Version: p.Version, Reason: p.Reason, CreatedBy: p.CreatedBy, CreatedAt: iso(p.CreatedAt)})
}

func (a *api) deletePin(w http.ResponseWriter, r *http.Request) error {
	rp, err := a.localRepo(r)
	if err != nil {
		return err
	}
	if err := a.authorizeAny(r, rp.Key, auth.Write, auth.Promote); err != nil {
		return err
	}
	coords := r.URL.Query().Get("artifact")
	res, err := a.resolve(r, rp, coords)
	if err != nil {
		return err
	}
	err = a.store.InTx(r.Context(), func(tx meta.Tx) error {
		if err := tx.DeletePin(r.Context(), rp.ID, res.Name, res.Version); err != nil {
			if errors.Is(err, errs.NotFound) {
				return errs.New(errs.NotFound, "%s is not pinned in %s", coords, rp.Key)
			}
			return err
		}
		return tx.AddAudit(r.Context(), &meta.AuditEvent{Actor: principal(r).Name(), Action: "unpin", Repo: rp.Key, Path: res.Name + "@" + res.Version, Detail: "{}"})
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}
