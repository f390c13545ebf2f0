package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

// Promotion states.
const (
	Pending  = "pending"
	Promoted = "promoted"
	Refused  = "refused"
)

// GateResult is one gate's decision on a promotion.
type GateResult struct {
	Gate   string `json:"gate"`
	Passed bool   `json:"passed"`
	// Pending is set for a gate that waits (approval).
	Pending bool   `json:"pending,omitempty"`
	Detail  string `json:"detail"`
}

// GateInput is what a gate judges: the artifact in its source repository
// and the repository it would enter.
type GateInput struct {
	Source, Target *repo.Repository
	Artifact       *Resolved
	Store          meta.Store
	Blobs          BlobOpener
}

// Gate is an extra promotion gate. The vulnerability gate (scanning) plugs
// in here: Applies says whether the target asks for it, Check decides.
type Gate interface {
	Name() string
	Applies(target *repo.Repository) bool
	Check(ctx context.Context, in GateInput) GateResult
}

// Promoter promotes artifacts between local repositories.
type Promoter struct {
	repos   *repo.Manager
	auth    *auth.Service
	formats Formats
	log     *slog.Logger
	// Gates are extra gates (beyond signature, properties and approval).
	Gates []Gate
	Now   func() time.Time
}

// NewPromoter builds the promotion service.
func NewPromoter(repos *repo.Manager, a *auth.Service, formats Formats, log *slog.Logger) *Promoter {
	if log == nil {
		log = slog.Default()
	}
	return &Promoter{repos: repos, auth: a, formats: formats, log: log, Now: time.Now}
}

// Request asks for a promotion.
type Request struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	Artifact string `json:"artifact"`
	Comment  string `json:"comment,omitempty"`
}

// RefusedError is a promotion a gate (or the target's tier) refused; the
// record says which and why.
type RefusedError struct {
	Record *meta.Promotion
	Kind   error
	Msg    string
}

func (e *RefusedError) Error() string   { return e.Msg }
func (e *RefusedError) Unwrap() []error { return []error{e.Kind} }

// Promote runs a promotion for the caller in ctx: it checks permissions
// (read on the source, promote on the target), evaluates the target's
// gates and, when they pass, copies the artifact's graph by reference. With
// require_approval it records a pending promotion instead. Every outcome
// past the permission checks is recorded.
func (p *Promoter) Promote(ctx context.Context, req Request) (*meta.Promotion, error) {
	src, dst, f, err := p.endpoints(ctx, req.Source, req.Target)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Artifact) == "" {
		return nil, errs.New(errs.Invalid, "artifact is required: its coordinates in %s's format (%s)", src.Key, src.Format)
	}
	res, err := Resolve(ctx, p.repos.Store(), f, src, req.Artifact)
	if err != nil {
		return nil, err
	}
	principal := auth.PrincipalFrom(ctx)
	rec := &meta.Promotion{CreatedAt: p.Now(), RequestedBy: principal.Name(), Source: src.Key, Target: dst.Key, Format: src.Format,
		Artifact: req.Artifact, Name: res.Name, Version: res.Version, Digest: res.Digest, Comment: req.Comment}
	gates, failed := p.evaluate(ctx, src, dst, res)
	approval := dst.Declared.Promotion != nil && dst.Declared.Promotion.RequireApproval
	if approval && failed == nil {
		gates = append(gates, GateResult{Gate: "require_approval", Pending: true,
			Detail: "waiting for a second user with promote permission on " + dst.Key + " to approve (not " + rec.RequestedBy + ")"})
		rec.State = Pending
		rec.Gates = mustJSON(gates)
		if err := p.repos.Store().CreatePromotion(ctx, rec); err != nil {
			return nil, err
		}
		p.log.Info("promotion pending approval", "id", rec.ID, "artifact", req.Artifact, "source", src.Key, "target", dst.Key)
		return rec, nil
	}
	if approval {
		gates = append(gates, GateResult{Gate: "require_approval", Detail: "not requested: another gate failed"})
	}
	return p.finish(ctx, rec, gates, failed, src, dst, f, res)
}

// Approve approves a pending promotion as the caller in ctx, who must have
// promote permission on the target and must not be the requester. The
// other gates are evaluated again (properties may have changed since).
func (p *Promoter) Approve(ctx context.Context, id string) (*meta.Promotion, error) {
	st := p.repos.Store()
	rec, err := st.GetPromotion(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.State != Pending {
		return nil, errs.New(errs.Invalid, "promotion %s is %s, not pending", id, rec.State)
	}
	principal := auth.PrincipalFrom(ctx)
	if err := p.authorize(ctx, auth.Promote, rec.Target); err != nil {
		return nil, err
	}
	if principal.Name() == rec.RequestedBy {
		return nil, errs.New(errs.Denied, "%s requested promotion %s and cannot approve it: a second user with promote permission on %s must", rec.RequestedBy, id, rec.Target)
	}
	src, dst, f, err := p.endpoints(ctx, rec.Source, rec.Target)
	if err != nil {
		return nil, err
	}
	res, err := Resolve(ctx, st, f, src, rec.Artifact)
	if err != nil {
		return nil, err
	}
	if res.Version != rec.Version || res.Name != rec.Name {
		return nil, errs.New(errs.Invalid, "%s in %s now names %s@%s, not %s@%s as when promotion %s was requested; request it again",
			rec.Artifact, src.Key, res.Name, res.Version, rec.Name, rec.Version, id)
	}
	gates, failed := p.evaluate(ctx, src, dst, res)
	gates = append(gates, GateResult{Gate: "require_approval", Passed: true, Detail: "approved by " + principal.Name()})
	rec.DecidedBy = principal.Name()
	return p.finish(ctx, rec, gates, failed, src, dst, f, res)
}

// finish copies (when no gate failed) and records the outcome.
func (p *Promoter) finish(ctx context.Context, rec *meta.Promotion, gates []GateResult, failed *GateResult,
	src, dst *repo.Repository, f format.Format, res *Resolved) (*meta.Promotion, error) {
	st := p.repos.Store()
	save := func(tx meta.Tx) error {
		rec.Gates = mustJSON(gates)
		rec.DecidedAt = p.Now()
		if rec.ID == "" {
			return tx.CreatePromotion(ctx, rec)
		}
		return tx.UpdatePromotion(ctx, rec)
	}
	refuse := func(kind error, msg string) (*meta.Promotion, error) {
		rec.State, rec.Reason = Refused, msg
		if err := st.InTx(ctx, save); err != nil {
			return nil, err
		}
		p.log.Info("promotion refused", "id", rec.ID, "artifact", rec.Artifact, "target", rec.Target, "reason", msg)
		return rec, &RefusedError{Record: rec, Kind: kind, Msg: msg}
	}
	if failed != nil {
		return refuse(errs.Denied, fmt.Sprintf("promotion of %s from %s to %s refused: gate %s failed: %s",
			rec.Artifact, src.Key, dst.Key, failed.Gate, failed.Detail))
	}
	rec.State = Promoted
	stored := rec.ID != "" // a pending record being approved
	var copied int
	err := st.InTx(ctx, func(tx meta.Tx) error {
		g, err := Collect(ctx, tx, f, src, res)
		if err != nil {
			return err
		}
		var added int64
		if copied, added, err = p.copyGraph(ctx, tx, src, dst, g); err != nil {
			return err
		}
		if err := p.repos.CheckRepoQuota(ctx, tx, dst, added); err != nil {
			return err
		}
		if res.Component != nil || res.Asset != nil {
			if err := copyProperties(ctx, tx, src, dst, res.Name, res.Version); err != nil {
				return err
			}
		}
		if err := save(tx); err != nil {
			return err
		}
		return tx.AddAudit(ctx, &meta.AuditEvent{Actor: rec.RequestedBy, Action: "promote", Repo: dst.Key, Path: rec.Name + "@" + rec.Version,
			Detail: mustJSON(map[string]any{"promotion": rec.ID, "source": src.Key, "digest": rec.Digest, "approved_by": rec.DecidedBy})})
	})
	if err != nil {
		if !stored {
			rec.ID = "" // the transaction that created it rolled back
		}
		for _, c := range []struct {
			kind error
			gate string
		}{{errs.Immutable, "tier"}, {errs.Quota, "quota"}} {
			if errors.Is(err, c.kind) {
				gates = append(gates, GateResult{Gate: c.gate, Detail: errs.Message(err)})
				return refuse(c.kind, fmt.Sprintf("promotion of %s to %s refused: %s", rec.Artifact, rec.Target, errs.Message(err)))
			}
		}
		return nil, err
	}
	p.repos.Bump(dst.ID, res.Name)
	p.log.Info("promoted", "id", rec.ID, "artifact", rec.Artifact, "source", src.Key, "target", dst.Key, "rows", copied)
	return rec, nil
}

func (p *Promoter) authorize(ctx context.Context, a auth.Action, key string) error {
	if p.auth == nil {
		return nil
	}
	return p.auth.Authorize(ctx, auth.PrincipalFrom(ctx), a, key)
}

// endpoints checks the source and target and the caller's permissions.
func (p *Promoter) endpoints(ctx context.Context, source, target string) (src, dst *repo.Repository, f format.Format, err error) {
	if source == "" || target == "" {
		return nil, nil, nil, errs.New(errs.Invalid, "source and target repositories are required")
	}
	if src, err = p.repos.Repo(source); err != nil {
		return nil, nil, nil, err
	}
	if dst, err = p.repos.Repo(target); err != nil {
		return nil, nil, nil, err
	}
	for _, r := range []*repo.Repository{src, dst} {
		if r.Kind != repo.Local {
			return nil, nil, nil, errs.New(errs.Invalid, "%s is a %s repository: promotion is between local repositories", r.Key, r.Kind)
		}
	}
	if src.Key == dst.Key {
		return nil, nil, nil, errs.New(errs.Invalid, "source and target are both %s", src.Key)
	}
	if src.Format != dst.Format {
		return nil, nil, nil, errs.New(errs.Invalid, "%s holds %s artifacts and %s holds %s: promotion stays within a format", src.Key, src.Format, dst.Key, dst.Format)
	}
	if err := p.authorize(ctx, auth.Read, src.Key); err != nil {
		return nil, nil, nil, err
	}
	if err := p.authorize(ctx, auth.Promote, dst.Key); err != nil {
		return nil, nil, nil, err
	}
	if f = p.formats(src.Format); f == nil {
		return nil, nil, nil, errs.New(errs.Invalid, "format %s is not served", src.Format)
	}
	return src, dst, f, nil
}

// evaluate runs every gate but approval and returns the results and the
// first failure.
func (p *Promoter) evaluate(ctx context.Context, src, dst *repo.Repository, res *Resolved) ([]GateResult, *GateResult) {
	var out []GateResult
	decl := dst.Declared.Promotion
	in := GateInput{Source: src, Target: dst, Artifact: res, Store: p.repos.Store(), Blobs: p.repos.Blobs()}
	if decl != nil && decl.RequireSignature != nil {
		out = append(out, signatureGate(ctx, decl.RequireSignature, in, p.formats(src.Format)))
	}
	if decl != nil && len(decl.RequireProperties) > 0 {
		out = append(out, propertiesGate(ctx, decl.RequireProperties, in))
	}
	for _, g := range p.Gates {
		if g.Applies(dst) {
			r := g.Check(ctx, in)
			r.Gate = g.Name()
			out = append(out, r)
		}
	}
	for i := range out {
		if !out[i].Passed {
			return out, &out[i]
		}
	}
	return out, nil
}

func propertiesGate(ctx context.Context, want map[string]string, in GateInput) GateResult {
	props, err := in.Store.ListProperties(ctx, in.Source.ID, in.Artifact.Name, in.Artifact.Version)
	if err != nil {
		return GateResult{Gate: "require_properties", Detail: "reading properties: " + err.Error()}
	}
	have := map[string]string{}
	for _, p := range props {
		have[p.Key] = p.Value
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var bad []string
	for _, k := range keys {
		v, ok := have[k]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s is not set (want %s)", k, want[k]))
		case v != want[k]:
			bad = append(bad, fmt.Sprintf("%s is %s (want %s)", k, v, want[k]))
		}
	}
	if len(bad) > 0 {
		return GateResult{Gate: "require_properties", Detail: strings.Join(bad, "; ")}
	}
	var ok []string
	for _, k := range keys {
		ok = append(ok, k+"="+want[k])
	}
	return GateResult{Gate: "require_properties", Passed: true, Detail: strings.Join(ok, ", ")}
}

func copyProperties(ctx context.Context, tx meta.Tx, src, dst *repo.Repository, name, version string) error {
	props, err := tx.ListProperties(ctx, src.ID, name, version)
	if err != nil {
		return err
	}
	for _, pr := range props {
		c := *pr
		c.RepoID = dst.ID
		if err := tx.SetProperty(ctx, &c); err != nil {
			return err
		}
	}
	return nil
}

// copyGraph writes the graph's rows into dst: components, assets pointing
// at the same blobs, links and tags. The target's tier holds: an existing
// path, version or tag with different content is overwritten only where
// the tier allows; identical content is left as it is.
func (p *Promoter) copyGraph(ctx context.Context, tx meta.Tx, src, dst *repo.Repository, g *Graph) (int, int64, error) {
	rows := 0
	var added int64
	compIDs := map[string]string{}
	for _, c := range g.Components {
		nc := &meta.Component{RepoID: dst.ID, Name: c.Name, Version: c.Version, Attributes: c.Attributes,
			Deprecated: c.Deprecated, DeprecationMessage: c.DeprecationMessage, CreatedBy: c.CreatedBy, CreatedAt: p.Now()}
		if err := tx.PutComponent(ctx, nc); err != nil {
			return 0, 0, err
		}
		compIDs[c.ID] = nc.ID
		rows++
	}
	leased := map[string]bool{}
	for _, a := range g.Assets {
		existing, err := tx.GetAsset(ctx, dst.ID, a.Path)
		switch {
		case err == nil && existing.Blob == a.Blob:
			if existing.ComponentID == "" && a.ComponentID != "" {
				// identical content; fall through to attach it to its version
			} else {
				continue
			}
		case err == nil && !dst.Policy.Overwrite:
			return 0, 0, errs.New(errs.Immutable, "%s already exists in %s with different content (%s)", a.Path, dst.Key, dst.PolicyName())
		case err != nil && !errors.Is(err, errs.NotFound):
			return 0, 0, err
		}
		if !leased[a.Blob] {
			// Lease the blob: garbage collection keeps it for the grace period
			// even if the source lets go of it meanwhile.
			if err := tx.PutBlob(ctx, a.Blob, a.Size); err != nil {
				return 0, 0, err
			}
			leased[a.Blob] = true
		}
		na := *a
		na.ID, na.RepoID, na.ComponentID = "", dst.ID, compIDs[a.ComponentID]
		na.CreatedAt, na.UpdatedAt, na.LastDownloadedAt = time.Time{}, time.Time{}, time.Time{}
		if existing != nil {
			na.ID, na.CreatedAt = existing.ID, existing.CreatedAt
		}
		if err := tx.PutAsset(ctx, &na); err != nil {
			return 0, 0, err
		}
		added += na.Size
		if existing != nil {
			added -= existing.Size
		}
		rows++
	}
	if len(g.Links) > 0 {
		ls := make([]meta.Link, len(g.Links))
		for i, l := range g.Links {
			l.RepoID = dst.ID
			ls[i] = l
		}
		if err := tx.PutLinks(ctx, ls); err != nil {
			return 0, 0, err
		}
		rows += len(ls)
	}
	for _, t := range g.Tags {
		existing, err := tx.GetTag(ctx, dst.ID, t.Name, t.Tag)
		switch {
		case err == nil && existing.Target == t.Target:
			continue
		case err == nil && !dst.Policy.Overwrite:
			return 0, 0, errs.New(errs.Immutable, "tag %s of %s already points at %s in %s (%s)", t.Tag, t.Name, existing.Target, dst.Key, dst.PolicyName())
		case err != nil && !errors.Is(err, errs.NotFound):
			return 0, 0, err
		}
		if err := tx.SetTag(ctx, &meta.Tag{RepoID: dst.ID, Name: t.Name, Tag: t.Tag, Target: t.Target}); err != nil {
			return 0, 0, err
		}
		rows++
	}
	return rows, added, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}
