package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
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
		{"GET /api/v1/repositories/{key}/properties", a.getProperties, "An artifact's properties (?artifact=<coordinates>).", "", "Properties"},
		{"PUT /api/v1/repositories/{key}/properties", a.setProperties, "Set properties on an artifact (write permission); a null value removes a key.", "PropertiesSet", "Properties"},
		{"POST /api/v1/promotions", a.promote, "Promote an artifact from a local repository to another by reference (promote permission on the target), through the target's gates: 201 promoted, 202 pending approval, 403 refused by a gate, 409 refused by the target's tier; the body is the promotion record.", "PromotionRequest", "Promotion"},
		{"GET /api/v1/promotions", a.listPromotions, "Promotion records, newest first (repo, artifact (with repo), digest, state, before, limit).", "", "PromotionList"},
		{"GET /api/v1/promotions/{id}", a.getPromotion, "One promotion record.", "", "Promotion"},
		{"POST /api/v1/promotions/{id}/approve", a.approvePromotion, "Approve a pending promotion (a second user with promote permission on the target; not the requester).", "", "Promotion"},
	}
}

// postAnswers200 lists POST routes (by response schema or pattern) that
// answer 200 rather than 201 (they create nothing).
var postAnswers200 = map[string]bool{"RetentionReport": true, "POST /api/v1/promotions/{id}/approve": true}

func lifecycleSchemas() map[string]any {
	item := obj(map[string]any{"name": str, "version": str, "tags": strs, "created": when, "rule": str, "with": strs})
	prot := obj(map[string]any{"name": str, "version": str, "rule": str, "reason": str})
	pin := obj(map[string]any{"repo": str, "artifact": str, "name": str, "version": str, "reason": str, "created_by": str, "created_at": when})
	return map[string]any{
		"RetentionRequest": obj(map[string]any{"repos": strs, "dry_run": boolT}),
		"RetentionReport": obj(map[string]any{"dry_run": boolT, "started": when, "finished": when, "expired": intT,
			"repositories": arr(obj(map[string]any{"repo": str, "skipped": str, "expired": arr(item), "protected": arr(prot)}))}),
		"Pin":     pin,
		"PinList": arr(ref("Pin")),
		"Properties": obj(map[string]any{"repo": str, "artifact": str, "name": str, "version": str,
			"properties": map[string]any{"type": "object", "additionalProperties": str}}),
		"PropertiesSet": obj(map[string]any{"artifact": str, "properties": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string", "nullable": true}}}, "artifact", "properties"),
		"PromotionRequest": obj(map[string]any{"source": str, "target": str, "artifact": map[string]any{"type": "string",
			"description": "Coordinates in the format: team/api@sha256:…, team/api:v2.3.0, @acme/ui@1.4.0, acme-lib==1.0.0, a raw path."}, "comment": str}, "source", "target", "artifact"),
		"Promotion": obj(map[string]any{"id": str, "created_at": when, "requested_by": str, "source": str, "target": str, "format": str,
			"artifact": str, "name": str, "version": str, "digest": str, "state": enum("pending", "promoted", "refused"),
			"gates":  arr(obj(map[string]any{"gate": str, "passed": boolT, "pending": boolT, "detail": str})),
			"reason": str, "comment": str, "decided_by": str, "decided_at": when}),
		"PromotionList": arr(ref("Promotion")),
		"PinCreate":     obj(map[string]any{"artifact": map[string]any{"type": "string", "description": "Coordinates in the repository's format: team/api@sha256:…, team/api:v2, @acme/ui@1.4.0, acme-lib==1.0.0, a raw path."}, "reason": str}, "artifact"),
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
	if errors.Is(err, errs.NotFound) {
		// The version is gone: its pin can still be removed by name@version.
		if parsed, perr := a.parseOnly(rp, coords); perr == nil && parsed.Tag == "" {
			res, err = &lifecycle.Resolved{Coordinates: coords, Artifact: parsed}, nil
		}
	}
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

// ---- properties

type propertiesView struct {
	Repo       string            `json:"repo"`
	Artifact   string            `json:"artifact"`
	Name       string            `json:"name"`
	Version    string            `json:"version"`
	Properties map[string]string `json:"properties"`
}

func (a *api) propertiesOf(r *http.Request, rp *repo.Repository, res *lifecycle.Resolved) (*propertiesView, error) {
	ps, err := a.store.ListProperties(r.Context(), rp.ID, res.Name, res.Version)
	if err != nil {
		return nil, err
	}
	v := &propertiesView{Repo: rp.Key, Artifact: res.Coordinates, Name: res.Name, Version: res.Version, Properties: map[string]string{}}
	for _, p := range ps {
		v.Properties[p.Key] = p.Value
	}
	return v, nil
}

func (a *api) getProperties(w http.ResponseWriter, r *http.Request) error {
	rp, err := a.readableRepo(r)
	if err != nil {
		return err
	}
	if rp.Kind != repo.Local {
		return errs.New(errs.Invalid, "%s is a %s repository; properties live on artifacts of local repositories", rp.Key, rp.Kind)
	}
	res, err := a.resolve(r, rp, r.URL.Query().Get("artifact"))
	if err != nil {
		return err
	}
	v, err := a.propertiesOf(r, rp, res)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

const maxPropertyLen = 4096

func (a *api) setProperties(w http.ResponseWriter, r *http.Request) error {
	rp, err := a.localRepo(r)
	if err != nil {
		return err
	}
	if err := a.auth.Authorize(r.Context(), principal(r), auth.Write, rp.Key); err != nil {
		return err
	}
	var body struct {
		Artifact   string             `json:"artifact"`
		Properties map[string]*string `json:"properties"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if len(body.Properties) == 0 {
		return errs.New(errs.Invalid, "properties is required: an object of key: value (null removes a key)")
	}
	for k, v := range body.Properties {
		if k == "" || len(k) > 255 || (v != nil && len(*v) > maxPropertyLen) {
			return errs.New(errs.Invalid, "property %q: keys are 1-255 bytes, values at most %d", k, maxPropertyLen)
		}
	}
	res, err := a.resolve(r, rp, body.Artifact)
	if err != nil {
		return err
	}
	who := principal(r).Name()
	err = a.store.InTx(r.Context(), func(tx meta.Tx) error {
		for k, v := range body.Properties {
			if v == nil {
				if err := tx.DeleteProperty(r.Context(), rp.ID, res.Name, res.Version, k); err != nil && !errors.Is(err, errs.NotFound) {
					return err
				}
				continue
			}
			if err := tx.SetProperty(r.Context(), &meta.Property{RepoID: rp.ID, Name: res.Name, Version: res.Version, Key: k, Value: *v, UpdatedBy: who}); err != nil {
				return err
			}
		}
		return tx.AddAudit(r.Context(), &meta.AuditEvent{Actor: who, Action: "set properties", Repo: rp.Key, Path: res.Name + "@" + res.Version,
			Detail: mustJSON(body.Properties)})
	})
	if err != nil {
		return err
	}
	v, err := a.propertiesOf(r, rp, res)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// ---- promotions

type promotionView struct {
	ID          string                 `json:"id"`
	CreatedAt   string                 `json:"created_at"`
	RequestedBy string                 `json:"requested_by"`
	Source      string                 `json:"source"`
	Target      string                 `json:"target"`
	Format      string                 `json:"format"`
	Artifact    string                 `json:"artifact"`
	Name        string                 `json:"name"`
	Version     string                 `json:"version"`
	Digest      string                 `json:"digest"`
	State       string                 `json:"state"`
	Gates       []lifecycle.GateResult `json:"gates"`
	Reason      string                 `json:"reason,omitempty"`
	Comment     string                 `json:"comment,omitempty"`
	DecidedBy   string                 `json:"decided_by,omitempty"`
	DecidedAt   string                 `json:"decided_at,omitempty"`
}

func viewPromotion(p *meta.Promotion) promotionView {
	v := promotionView{ID: p.ID, CreatedAt: iso(p.CreatedAt), RequestedBy: p.RequestedBy, Source: p.Source, Target: p.Target,
		Format: p.Format, Artifact: p.Artifact, Name: p.Name, Version: p.Version, Digest: p.Digest, State: p.State,
		Reason: p.Reason, Comment: p.Comment, DecidedBy: p.DecidedBy, DecidedAt: iso(p.DecidedAt), Gates: []lifecycle.GateResult{}}
	json.Unmarshal([]byte(p.Gates), &v.Gates)
	return v
}

// promotionAnswer writes a promotion's outcome: the record, with the error
// message beside it when it was refused.
func (a *api) promotionAnswer(w http.ResponseWriter, r *http.Request, rec *meta.Promotion, err error) error {
	var refused *lifecycle.RefusedError
	if errors.As(err, &refused) {
		status := errs.HTTPStatus(err) // 403 for a gate, 409 for the tier, the quota's status for a quota
		return writeJSON(w, status, map[string]any{
			"error":     apiError{Code: errs.Code(err), Message: refused.Msg},
			"promotion": viewPromotion(refused.Record),
		})
	}
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if rec.State == lifecycle.Pending {
		status = http.StatusAccepted
	}
	if r.PathValue("id") != "" {
		status = http.StatusOK
	}
	return writeJSON(w, status, viewPromotion(rec))
}

func (a *api) promote(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.requireUser(r); err != nil {
		return err
	}
	var req lifecycle.Request
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if a.s.promoter == nil {
		return errs.New(errs.Unavailable, "promotion is not configured")
	}
	rec, err := a.s.promoter.Promote(r.Context(), req)
	return a.promotionAnswer(w, r, rec, err)
}

func (a *api) approvePromotion(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.requireUser(r); err != nil {
		return err
	}
	if a.s.promoter == nil {
		return errs.New(errs.Unavailable, "promotion is not configured")
	}
	rec, err := a.s.promoter.Approve(r.Context(), r.PathValue("id"))
	return a.promotionAnswer(w, r, rec, err)
}

// mayReadPromotion: a record is visible to whoever may read its source or
// its target.
func (a *api) mayReadPromotion(r *http.Request, p *meta.Promotion) bool {
	for _, k := range []string{p.Source, p.Target} {
		if a.auth.Authorize(r.Context(), principal(r), auth.Read, k) == nil {
			return true
		}
	}
	return false
}

func (a *api) getPromotion(w http.ResponseWriter, r *http.Request) error {
	p, err := a.store.GetPromotion(r.Context(), r.PathValue("id"))
	if err != nil || !a.mayReadPromotion(r, p) {
		if err == nil || errors.Is(err, errs.NotFound) {
			return errs.New(errs.NotFound, "promotion %s not found", r.PathValue("id"))
		}
		return err
	}
	return writeJSON(w, http.StatusOK, viewPromotion(p))
}

func (a *api) listPromotions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	pq := meta.PromotionQuery{Repo: q.Get("repo"), Digest: q.Get("digest"), State: q.Get("state"), Before: q.Get("before")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return errs.New(errs.Invalid, "limit must be 1-1000")
		}
		pq.Limit = n
	}
	if coords := q.Get("artifact"); coords != "" {
		if pq.Repo == "" {
			return errs.New(errs.Invalid, "artifact needs repo: coordinates are resolved in a repository")
		}
		rp, err := a.repos.Repo(pq.Repo)
		if err != nil {
			return err
		}
		if err := a.auth.Authorize(r.Context(), principal(r), auth.Read, rp.Key); err != nil {
			return err
		}
		res, err := a.resolve(r, rp, coords)
		if err != nil {
			return err
		}
		pq.Repo, pq.Name, pq.Version = "", res.Name, res.Version
	}
	ps, err := a.store.ListPromotions(r.Context(), pq)
	if err != nil {
		return err
	}
	out := []promotionView{}
	for _, p := range ps {
		if a.mayReadPromotion(r, p) {
			out = append(out, viewPromotion(p))
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// parseOnly parses coordinates in rp's format without looking them up.
func (a *api) parseOnly(rp *repo.Repository, coords string) (format.Artifact, error) {
	c, ok := a.s.Format(rp.Format).(format.Coordinator)
	if !ok {
		return format.Artifact{}, errs.New(errs.Invalid, "%s artifacts cannot be named by coordinates", rp.Format)
	}
	return c.ParseCoordinates(coords)
}
