package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

// api is the management API under /api/v1.
type api struct {
	s     *Server
	repos *repo.Manager
	auth  *auth.Service
	store meta.Store
	mux   *http.ServeMux
}

const maxAPIBody = 1 << 20

type apiFunc func(w http.ResponseWriter, r *http.Request) error

func newAPI(s *Server) http.Handler {
	a := &api{s: s, repos: s.deps.Repos, auth: s.deps.Auth, store: s.deps.Repos.Store(), mux: http.NewServeMux()}
	for _, rt := range a.routes() {
		a.mux.Handle(rt.pattern, a.handleLimit(rt.fn, bodyLimit(rt.pattern)))
	}
	return a
}

type route struct {
	pattern string
	fn      apiFunc
	summary string
	in, out string // schema names of the request and response bodies
}

// routes is the API's table; the OpenAPI document lists the same paths
// (a test keeps the two in step).
func (a *api) routes() []route {
	return append([]route{
		{"GET /api/v1/openapi.json", a.openapi, "This document.", "", ""},
		{"GET /api/v1/whoami", a.whoami, "Who the caller is (user, groups, token scopes).", "", "WhoAmI"},
		{"GET /api/v1/repositories", a.listRepos, "Repositories the caller may read.", "", "RepositoryList"},
		{"POST /api/v1/repositories", a.createRepo, "Create a repository (admin).", "RepositoryDecl", "ApplyResult"},
		{"PUT /api/v1/repositories", a.applyRepos, "Apply a list of repository declarations idempotently (admin); never deletes.", "RepositoryApply", "ApplyResult"},
		{"GET /api/v1/repositories/{key}", a.getRepo, "One repository, with its effective policy.", "", "Repository"},
		{"PUT /api/v1/repositories/{key}", a.putRepo, "Create or update one repository (admin).", "RepositoryDecl", "ApplyResult"},
		{"DELETE /api/v1/repositories/{key}", a.deleteRepo, "Delete an empty repository (admin).", "", ""},
		{"GET /api/v1/repositories/{key}/artifacts", a.listArtifacts, "List artifacts by path prefix, paginated (limit, after).", "", "ArtifactPage"},
		{"GET /api/v1/repositories/{key}/artifacts/{path...}", a.getArtifact, "One artifact's metadata.", "", "Artifact"},
		{"DELETE /api/v1/repositories/{key}/artifacts/{path...}", a.deleteArtifact, "Delete an artifact or a folder, as the repository's policy allows.", "", "DeleteResult"},
		{"POST /api/v1/repositories/{key}/deprecations", a.deprecate, "Deprecate an artifact (release repositories deprecate, never delete).", "Deprecation", "DeprecationResult"},
		{"DELETE /api/v1/repositories/{key}/deprecations/{path...}", a.undeprecate, "Remove a deprecation.", "", "DeprecationResult"},
		{"GET /api/v1/repositories/{key}/tags", a.listTags, "Tags of a package name (?name=; OCI image tags, npm dist-tags).", "", "TagList"},
		{"DELETE /api/v1/repositories/{key}/tags", a.untag, "Remove a tag (?name=&tag=) without touching what it points to, as the tier allows.", "", ""},
		{"GET /api/v1/search/artifacts", a.searchArtifacts, "Search artifacts by path substring (q) across readable repositories (repo=a,b).", "", "ArtifactPage"},
		{"GET /api/v1/search/maven", a.searchMaven, "Search Maven components by groupId (g; a trailing * for a prefix), artifactId (a), version (v) across readable maven repositories (repo=a,b).", "", "MavenSearch"},
		{"GET /api/v1/storage", a.storage, "Storage usage: logical per repository, physical for the instance, dedupe ratio (admin).", "", "Storage"},
		{"GET /api/v1/users", a.listUsers, "List users (admin).", "", "UserList"},
		{"POST /api/v1/users", a.createUser, "Create a user (admin).", "UserCreate", "User"},
		{"GET /api/v1/users/{name}", a.getUser, "One user (self or admin).", "", "User"},
		{"PATCH /api/v1/users/{name}", a.patchUser, "Change password or email (self), admin or disabled (admin).", "UserPatch", "User"},
		{"DELETE /api/v1/users/{name}", a.deleteUser, "Delete a user and their tokens (admin).", "", ""},
		{"GET /api/v1/groups", a.listGroups, "List groups (admin).", "", "GroupList"},
		{"POST /api/v1/groups", a.createGroup, "Create a group (admin).", "Group", "Group"},
		{"GET /api/v1/groups/{name}", a.getGroup, "One group (admin).", "", "Group"},
		{"DELETE /api/v1/groups/{name}", a.deleteGroup, "Delete a group (admin).", "", ""},
		{"PUT /api/v1/groups/{name}/members/{user}", a.addMember, "Add a member (admin).", "", ""},
		{"DELETE /api/v1/groups/{name}/members/{user}", a.removeMember, "Remove a member (admin).", "", ""},
		{"GET /api/v1/tokens", a.listTokens, "The caller's API tokens (admin: ?user= or ?all=true).", "", "TokenList"},
		{"POST /api/v1/tokens", a.createToken, "Create an API token; the secret is in the response, once.", "TokenCreate", "Token"},
		{"DELETE /api/v1/tokens/{id}", a.deleteToken, "Revoke a token.", "", ""},
		{"GET /api/v1/permissions", a.listPermissions, "List permission grants (admin).", "", "PermissionList"},
		{"POST /api/v1/permissions", a.createPermission, "Grant actions on a repository pattern to a user, group or anonymous (admin).", "PermissionCreate", "Permission"},
		{"DELETE /api/v1/permissions/{id}", a.deletePermission, "Revoke a grant (admin).", "", ""},
		{"POST /api/v1/gc", a.runGC, "Run garbage collection now (admin); {\"dry_run\": true} only reports what would be reclaimed.", "GCRequest", "GCReport"},
		{"GET /api/v1/gc", a.lastGC, "The last garbage collection's report (admin).", "", "GCReport"},
		{"GET /api/v1/replication", a.replicationStatus, "Replication targets of this instance: status, lag, what was sent (admin).", "", "ReplicationStatus"},
		{"GET /api/v1/replication/repositories/{key}", a.replicaState, "The whole replicable state of a local repository (admin).", "", "ReplicaState"},
		{"POST /api/v1/replication/repositories/{key}", a.applyReplica, "Make a local repository equal to a replica state; lists missing blobs first (?dry=true: only list) (admin).", "ReplicaState", "ReplicaResult"},
		{"PUT /api/v1/replication/blobs/{digest}", a.receiveBlob, "Receive a blob for replication, verified against its digest; Content-Length required (admin).", "", ""},
		{"GET /api/v1/audit", a.listAudit, "Audit events, newest first (repo, before, limit) (admin).", "", "AuditList"},
	}, a.lifecycleRoutes()...)
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := a.mux.Handler(r)
	if pattern == "" {
		// Distinguish an unknown path from a known path with another method.
		allowed := []string{}
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, p := a.mux.Handler(probe); p != "" {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeAPIError(w, r, errs.New(errs.NotAllowed, "%s is not supported on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
			return
		}
		writeAPIError(w, r, errs.New(errs.NotFound, "no such API endpoint: %s %s", r.Method, r.URL.Path))
		return
	}
	// ServeHTTP, not the handler Handler returned: only ServeHTTP sets the
	// request's path values ({key}, {path...}).
	a.mux.ServeHTTP(w, r)
}

func (a *api) handle(fn apiFunc) http.Handler { return a.handleLimit(fn, maxAPIBody) }

func (a *api) handleLimit(fn apiFunc, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, err := a.s.Authenticate(r)
		if err == nil {
			if r.Body != nil && limit > 0 {
				r.Body = http.MaxBytesReader(w, r.Body, limit)
			}
			err = fn(w, r)
		}
		if err != nil {
			writeAPIError(w, r, err)
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errs.New(errs.TooLarge, "request body exceeds %d bytes", mbe.Limit)
		}
		if errors.Is(err, io.EOF) {
			return errs.New(errs.Invalid, "request body is empty; expected JSON")
		}
		return errs.New(errs.Invalid, "request body is not valid JSON for this endpoint: %v", err)
	}
	return nil
}

func principal(r *http.Request) *auth.Principal { return auth.PrincipalFrom(r.Context()) }

func (a *api) requireAdmin(r *http.Request) error {
	return a.auth.Authorize(r.Context(), principal(r), auth.Admin, "")
}

func (a *api) requireUser(r *http.Request) (*auth.Principal, error) {
	p := principal(r)
	if p.IsAnonymous() {
		return nil, errs.New(errs.Unauthenticated, "log in to use this endpoint")
	}
	return p, nil
}

func iso(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ---- whoami, openapi

func (a *api) whoami(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	out := map[string]any{"name": p.Name(), "anonymous": p.IsAnonymous()}
	if !p.IsAnonymous() {
		out["admin"] = p.User.Admin
		out["groups"] = nonNil(p.User.Groups)
		if p.TokenID != "" {
			out["token"] = map[string]any{"id": p.TokenID, "name": p.TokenName, "scopes": p.Scopes}
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ---- repositories

type repoView struct {
	config.Repository
	Policy repo.Policy `json:"policy"`
	URL    string      `json:"url"`
	// Members as resolved (nested virtual repositories expanded).
	Resolved  []string `json:"resolved_members,omitempty"`
	CreatedAt string   `json:"created_at"`
}

func (a *api) view(rp *repo.Repository) repoView {
	v := repoView{Repository: rp.Declared, Policy: rp.Policy, URL: a.s.deps.BaseURL + "/repository/" + rp.Key + "/", CreatedAt: iso(rp.CreatedAt)}
	v.Tier = string(rp.Tier)
	if rp.Kind == repo.Virtual {
		for _, m := range a.repos.Members(rp) {
			v.Resolved = append(v.Resolved, m.Key)
		}
	}
	return v
}

func (a *api) listRepos(w http.ResponseWriter, r *http.Request) error {
	out := []repoView{}
	for _, rp := range a.repos.List() {
		if a.auth.Can(r.Context(), principal(r), auth.Read, rp.Key) {
			out = append(out, a.view(rp))
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) readableRepo(r *http.Request) (*repo.Repository, error) {
	rp, err := a.repos.Repo(r.PathValue("key"))
	if err != nil {
		return nil, err
	}
	if err := a.auth.Authorize(r.Context(), principal(r), auth.Read, rp.Key); err != nil {
		return nil, err
	}
	return rp, nil
}

func (a *api) getRepo(w http.ResponseWriter, r *http.Request) error {
	rp, err := a.readableRepo(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.view(rp))
}

func (a *api) apply(w http.ResponseWriter, r *http.Request, decls []config.Repository, status int) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	res, err := a.repos.Apply(r.Context(), decls)
	if err != nil {
		return err
	}
	return writeJSON(w, status, map[string]any{"results": res})
}

func (a *api) createRepo(w http.ResponseWriter, r *http.Request) error {
	var d config.Repository
	if err := decodeBody(r, &d); err != nil {
		return err
	}
	if _, err := a.repos.Repo(d.Key); err == nil {
		return errs.New(errs.Exists, "repository %s already exists (PUT /api/v1/repositories/%s updates it)", d.Key, d.Key)
	}
	return a.apply(w, r, []config.Repository{d}, http.StatusCreated)
}

func (a *api) putRepo(w http.ResponseWriter, r *http.Request) error {
	var d config.Repository
	if err := decodeBody(r, &d); err != nil {
		return err
	}
	if d.Key == "" {
		d.Key = r.PathValue("key")
	}
	if d.Key != r.PathValue("key") {
		return errs.New(errs.Invalid, "the body declares repository %q but the URL names %q", d.Key, r.PathValue("key"))
	}
	return a.apply(w, r, []config.Repository{d}, http.StatusOK)
}

func (a *api) applyRepos(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Repositories []config.Repository `json:"repositories"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	return a.apply(w, r, body.Repositories, http.StatusOK)
}

func (a *api) deleteRepo(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	if err := a.repos.DeleteRepo(r.Context(), r.PathValue("key")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- artifacts

type artifactView struct {
	Repo               string `json:"repo"`
	Path               string `json:"path"`
	Size               int64  `json:"size"`
	SHA256             string `json:"sha256"`
	SHA1               string `json:"sha1,omitempty"`
	MD5                string `json:"md5,omitempty"`
	ContentType        string `json:"content_type,omitempty"`
	CreatedAt          string `json:"created_at"`
	UpdatedAt          string `json:"updated_at"`
	LastDownloadedAt   string `json:"last_downloaded_at,omitempty"`
	CreatedBy          string `json:"created_by,omitempty"`
	Deprecated         bool   `json:"deprecated"`
	DeprecationMessage string `json:"deprecation_message,omitempty"`
	DownloadURI        string `json:"download_uri"`
}

func (a *api) artifact(repoKey string, m *meta.Asset) artifactView {
	return artifactView{
		Repo: repoKey, Path: m.Path, Size: m.Size, SHA256: strings.TrimPrefix(m.Blob, "sha256:"), SHA1: m.SHA1, MD5: m.MD5,
		ContentType: m.ContentType, CreatedAt: iso(m.CreatedAt), UpdatedAt: iso(m.UpdatedAt),
		LastDownloadedAt: iso(m.LastDownloadedAt), CreatedBy: m.CreatedBy, Deprecated: m.Deprecated,
		DeprecationMessage: m.DeprecationMessage,
		DownloadURI:        a.s.deps.BaseURL + "/repository/" + repoKey + "/" + repo.EscapePath(m.Path),
	}
}

func limitParam(r *http.Request, def, max int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, errs.New(errs.Invalid, "limit must be a number from 1 to %d", max)
	}
	return n, nil
}

func (a *api) listArtifacts(w http.ResponseWriter, r *http.Request) error {
	rp, err := a.readableRepo(r)
	if err != nil {
		return err
	}
	if rp.Kind == repo.Virtual {
		return errs.New(errs.Invalid, "%s is a virtual repository: list its members (%s)", rp.Key, strings.Join(rp.Members, ", "))
	}
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	list, err := a.store.ListAssets(r.Context(), rp.ID, meta.AssetQuery{Prefix: q.Get("prefix"), After: q.Get("after"), Limit: limit})
	if err != nil {
		return err
	}
	items := []artifactView{}
	for _, m := range list {
		items = append(items, a.artifact(rp.Key, m))
	}
	out := map[string]any{"items": items}
	if len(list) == limit {
		out["next"] = list[len(list)-1].Path
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) getArtifact(w http.ResponseWriter, r *http.Request) error {
	rp, err := a.readableRepo(r)
	if err != nil {
		return err
	}
	if rp.Kind == repo.Remote {
		// Information about what the cache holds; never a trip upstream.
		m, err := a.store.GetAsset(r.Context(), rp.ID, r.PathValue("path"))
		if err != nil {
			return errs.Wrap(errs.NotFound, err, "%s is not cached in %s", r.PathValue("path"), rp.Key)
		}
		return writeJSON(w, http.StatusOK, a.artifact(rp.Key, m))
	}
	as, err := a.repos.Get(r.Context(), rp, r.PathValue("path"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.artifact(as.Repo.Key, as.Asset))
}

func (a *api) deleteArtifact(w http.ResponseWriter, r *http.Request) error {
	rp, err := a.repos.Repo(r.PathValue("key"))
	if err != nil {
		return err
	}
	n, err := a.repos.Delete(r.Context(), rp, r.PathValue("path"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"deleted": n})
}

func (a *api) deprecate(w http.ResponseWriter, r *http.Request) error {
	rp, err := a.repos.Repo(r.PathValue("key"))
	if err != nil {
		return err
	}
	var body struct {
		Path    string `json:"path"`
		Message string `json:"message"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body.Path == "" {
		return errs.New(errs.Invalid, "path is required")
	}
	if err := a.repos.Deprecate(r.Context(), rp, strings.TrimPrefix(body.Path, "/"), true, body.Message); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"repo": rp.Key, "path": body.Path, "deprecated": true, "message": body.Message})
}

func (a *api) undeprecate(w http.ResponseWriter, r *http.Request) error {
	rp, err := a.repos.Repo(r.PathValue("key"))
	if err != nil {
		return err
	}
	if err := a.repos.Deprecate(r.Context(), rp, r.PathValue("path"), false, ""); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"repo": rp.Key, "path": r.PathValue("path"), "deprecated": false})
}

func (a *api) searchArtifacts(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		return err
	}
	keys := map[string]string{}
	var ids []string
	want := map[string]bool{}
	for _, k := range strings.Split(q.Get("repo"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			want[k] = true
		}
	}
	for _, rp := range a.repos.List() {
		if rp.Kind == repo.Virtual || len(want) > 0 && !want[rp.Key] {
			continue
		}
		if a.auth.Can(r.Context(), principal(r), auth.Read, rp.Key) {
			keys[rp.ID] = rp.Key
			ids = append(ids, rp.ID)
		}
	}
	items := []artifactView{}
	out := map[string]any{"items": items}
	if len(ids) == 0 {
		return writeJSON(w, http.StatusOK, out)
	}
	list, err := a.store.SearchAssets(r.Context(), meta.AssetSearch{RepoIDs: ids, Path: q.Get("q"), After: q.Get("after"), Limit: limit})
	if err != nil {
		return err
	}
	for _, m := range list {
		items = append(items, a.artifact(keys[m.RepoID], m))
	}
	out["items"] = items
	if len(list) == limit {
		out["next"] = list[len(list)-1].ID
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) storage(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	usage, err := a.store.RepoUsage(r.Context())
	if err != nil {
		return err
	}
	phys, err := a.store.BlobUsage(r.Context())
	if err != nil {
		return err
	}
	type repoUsage struct {
		Key    string `json:"key"`
		Assets int64  `json:"assets"`
		Bytes  int64  `json:"bytes"`
		Quota  int64  `json:"quota,omitempty"`
	}
	var logical int64
	list := []repoUsage{}
	for _, rp := range a.repos.List() {
		u := usage[rp.ID]
		logical += u.Bytes
		list = append(list, repoUsage{rp.Key, u.Count, u.Bytes, rp.Quota})
	}
	ratio := 1.0
	if phys.Bytes > 0 {
		ratio = float64(logical) / float64(phys.Bytes)
	}
	return writeJSON(w, http.StatusOK, map[string]any{
		"repositories":  list,
		"logical_bytes": logical,
		"physical":      map[string]int64{"blobs": phys.Count, "bytes": phys.Bytes, "quota": a.repos.InstanceQuota()},
		"dedupe_ratio":  ratio,
	})
}

// ---- tags

func (a *api) listTags(w http.ResponseWriter, r *http.Request) error {
	rp, err := a.readableRepo(r)
	if err != nil {
		return err
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		return errs.New(errs.Invalid, "the name query parameter is required (the image or package name)")
	}
	tags, err := a.store.ListTags(r.Context(), rp.ID, name)
	if err != nil {
		return err
	}
	type tagView struct {
		Name      string `json:"name"`
		Tag       string `json:"tag"`
		Target    string `json:"target"`
		UpdatedAt string `json:"updated_at"`
	}
	out := []tagView{}
	for _, t := range tags {
		out = append(out, tagView{t.Name, t.Tag, t.Target, iso(t.UpdatedAt)})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) untag(w http.ResponseWriter, r *http.Request) error {
	rp, err := a.repos.Repo(r.PathValue("key"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	name, tag := q.Get("name"), q.Get("tag")
	if name == "" || tag == "" {
		return errs.New(errs.Invalid, "the name and tag query parameters are required")
	}
	err = a.repos.Mutate(r.Context(), rp, auth.Delete, name, "untag", func(ctx context.Context, tx meta.Tx, target *repo.Repository) error {
		return tx.DeleteTag(ctx, target.ID, name, tag)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- users and groups

type userView struct {
	Name      string   `json:"name"`
	Email     string   `json:"email,omitempty"`
	Admin     bool     `json:"admin"`
	Disabled  bool     `json:"disabled"`
	Groups    []string `json:"groups"`
	CreatedAt string   `json:"created_at"`
}

func viewUser(u *meta.User) userView {
	return userView{u.Name, u.Email, u.Admin, u.Disabled, nonNil(u.Groups), iso(u.CreatedAt)}
}

func (a *api) listUsers(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	users, err := a.store.ListUsers(r.Context())
	if err != nil {
		return err
	}
	out := []userView{}
	for _, u := range users {
		out = append(out, viewUser(u))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) createUser(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	var body struct {
		Name     string   `json:"name"`
		Password string   `json:"password"`
		Email    string   `json:"email"`
		Admin    bool     `json:"admin"`
		Groups   []string `json:"groups"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	u, err := a.auth.CreateUser(r.Context(), body.Name, body.Password, body.Email, body.Admin)
	if err != nil {
		return err
	}
	for _, g := range body.Groups {
		if err := a.store.AddGroupMember(r.Context(), g, u.Name); err != nil {
			return err
		}
	}
	u, err = a.store.GetUser(r.Context(), u.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, viewUser(u))
}

func (a *api) selfOrAdmin(r *http.Request) error {
	p, err := a.requireUser(r)
	if err != nil {
		return err
	}
	if p.User.Name == r.PathValue("name") && p.Scopes == nil {
		return nil
	}
	return a.requireAdmin(r)
}

func (a *api) getUser(w http.ResponseWriter, r *http.Request) error {
	if err := a.selfOrAdmin(r); err != nil {
		return err
	}
	u, err := a.store.GetUser(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, viewUser(u))
}

func (a *api) patchUser(w http.ResponseWriter, r *http.Request) error {
	if err := a.selfOrAdmin(r); err != nil {
		return err
	}
	var body struct {
		Password *string `json:"password"`
		Email    *string `json:"email"`
		Admin    *bool   `json:"admin"`
		Disabled *bool   `json:"disabled"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	name := r.PathValue("name")
	if (body.Admin != nil || body.Disabled != nil) && a.requireAdmin(r) != nil {
		return errs.New(errs.Denied, "only administrators change admin or disabled")
	}
	if body.Password != nil {
		if err := a.auth.SetPassword(r.Context(), name, *body.Password); err != nil {
			return err
		}
	}
	u, err := a.store.GetUser(r.Context(), name)
	if err != nil {
		return err
	}
	if body.Email != nil {
		u.Email = *body.Email
	}
	if body.Admin != nil {
		u.Admin = *body.Admin
	}
	if body.Disabled != nil {
		u.Disabled = *body.Disabled
	}
	if err := a.store.UpdateUser(r.Context(), u); err != nil {
		return err
	}
	a.auth.Invalidate()
	return writeJSON(w, http.StatusOK, viewUser(u))
}

func (a *api) deleteUser(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	if principal(r).User.Name == r.PathValue("name") {
		return errs.New(errs.Invalid, "you cannot delete your own account")
	}
	if err := a.store.DeleteUser(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	a.auth.Invalidate()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type groupView struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Members     []string `json:"members"`
}

func viewGroup(g *meta.Group) groupView { return groupView{g.Name, g.Description, nonNil(g.Members)} }

func (a *api) listGroups(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	gs, err := a.store.ListGroups(r.Context())
	if err != nil {
		return err
	}
	out := []groupView{}
	for _, g := range gs {
		out = append(out, viewGroup(g))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) createGroup(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	var body struct {
		Name        string   `json:"name"`
		Description string   `json:"description"`
		Members     []string `json:"members"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if err := auth.ValidName("group", body.Name); err != nil {
		return err
	}
	err := a.store.InTx(r.Context(), func(tx meta.Tx) error {
		if err := tx.CreateGroup(r.Context(), &meta.Group{Name: body.Name, Description: body.Description}); err != nil {
			return err
		}
		for _, m := range body.Members {
			if err := tx.AddGroupMember(r.Context(), body.Name, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	a.auth.Invalidate()
	g, err := a.store.GetGroup(r.Context(), body.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, viewGroup(g))
}

func (a *api) getGroup(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	g, err := a.store.GetGroup(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, viewGroup(g))
}

func (a *api) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	if err := a.store.DeleteGroup(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	a.auth.Invalidate()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *api) addMember(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	if err := a.store.AddGroupMember(r.Context(), r.PathValue("name"), r.PathValue("user")); err != nil {
		return err
	}
	a.auth.Invalidate()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *api) removeMember(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	if err := a.store.RemoveGroupMember(r.Context(), r.PathValue("name"), r.PathValue("user")); err != nil {
		return err
	}
	a.auth.Invalidate()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- tokens

type tokenView struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	User        string       `json:"user"`
	Scopes      []auth.Scope `json:"scopes"`
	ExpiresAt   string       `json:"expires_at,omitempty"`
	CreatedAt   string       `json:"created_at"`
	LastUsedAt  string       `json:"last_used_at,omitempty"`
	Token       string       `json:"token,omitempty"` // only when created
}

func viewToken(t *meta.Token) tokenView {
	var scopes []auth.Scope
	json.Unmarshal([]byte(t.Scopes), &scopes)
	return tokenView{ID: t.ID, Name: t.Name, Description: t.Description, User: t.UserName, Scopes: nonNil(scopes),
		ExpiresAt: iso(t.ExpiresAt), CreatedAt: iso(t.CreatedAt), LastUsedAt: iso(t.LastUsedAt)}
}

func (a *api) listTokens(w http.ResponseWriter, r *http.Request) error {
	p, err := a.requireUser(r)
	if err != nil {
		return err
	}
	userID := p.User.ID
	if u := r.URL.Query().Get("user"); u != "" || r.URL.Query().Get("all") == "true" {
		if err := a.requireAdmin(r); err != nil {
			return err
		}
		userID = ""
		if u != "" {
			usr, err := a.store.GetUser(r.Context(), u)
			if err != nil {
				return err
			}
			userID = usr.ID
		}
	}
	ts, err := a.store.ListTokens(r.Context(), userID)
	if err != nil {
		return err
	}
	out := []tokenView{}
	for _, t := range ts {
		out = append(out, viewToken(t))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) createToken(w http.ResponseWriter, r *http.Request) error {
	p, err := a.requireUser(r)
	if err != nil {
		return err
	}
	var body struct {
		Name        string       `json:"name"`
		Description string       `json:"description"`
		User        string       `json:"user"`
		Preset      string       `json:"preset"`
		Scopes      []auth.Scope `json:"scopes"`
		ExpiresIn   string       `json:"expires_in"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if p.Scopes != nil {
		// A scoped token must not mint a token wider than itself.
		return errs.New(errs.Denied, "a scoped token cannot create tokens; log in with a password")
	}
	owner := p.User
	if body.User != "" && body.User != owner.Name {
		if err := a.requireAdmin(r); err != nil {
			return err
		}
		if owner, err = a.store.GetUser(r.Context(), body.User); err != nil {
			return err
		}
	}
	scopes := body.Scopes
	if body.Preset != "" {
		if len(scopes) > 0 {
			return errs.New(errs.Invalid, "give a preset or scopes, not both")
		}
		ps, ok := auth.Presets[body.Preset]
		if !ok {
			return errs.New(errs.Invalid, "unknown preset %q (one of %s)", body.Preset, strings.Join(auth.PresetNames(), ", "))
		}
		scopes = ps
	}
	var ttl time.Duration
	if body.ExpiresIn != "" {
		if ttl, err = parseTTL(body.ExpiresIn); err != nil {
			return err
		}
	}
	if body.Name == "" {
		body.Name = body.Preset
		if body.Name == "" {
			body.Name = "token"
		}
	}
	nt, err := a.auth.CreateToken(r.Context(), owner, body.Name, body.Description, scopes, ttl)
	if err != nil {
		return err
	}
	v := viewToken(nt.Token)
	v.Token = nt.Secret
	return writeJSON(w, http.StatusCreated, v)
}

// parseTTL accepts Go durations and days ("30d").
func parseTTL(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errs.New(errs.Invalid, "expires_in %q is not a positive duration (like 720h or 30d)", s)
	}
	return d, nil
}

func (a *api) deleteToken(w http.ResponseWriter, r *http.Request) error {
	p, err := a.requireUser(r)
	if err != nil {
		return err
	}
	ts, err := a.store.ListTokens(r.Context(), "")
	if err != nil {
		return err
	}
	for _, t := range ts {
		if t.ID != r.PathValue("id") {
			continue
		}
		if t.UserID != p.User.ID {
			if err := a.requireAdmin(r); err != nil {
				return err
			}
		}
		if err := a.store.DeleteToken(r.Context(), t.ID); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return errs.New(errs.NotFound, "token %s not found", r.PathValue("id"))
}

// ---- permissions

type permView struct {
	ID            string   `json:"id"`
	PrincipalType string   `json:"principal_type"`
	Principal     string   `json:"principal,omitempty"`
	Repos         string   `json:"repos"`
	Actions       []string `json:"actions"`
	CreatedAt     string   `json:"created_at"`
}

func viewPerm(p *meta.Permission) permView {
	return permView{p.ID, p.PrincipalType, p.Principal, p.Repos, strings.Split(p.Actions, ","), iso(p.CreatedAt)}
}

func (a *api) listPermissions(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	ps, err := a.store.ListPermissions(r.Context())
	if err != nil {
		return err
	}
	out := []permView{}
	for _, p := range ps {
		out = append(out, viewPerm(p))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) createPermission(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	var body struct {
		PrincipalType string   `json:"principal_type"`
		Principal     string   `json:"principal"`
		Repos         string   `json:"repos"`
		Actions       []string `json:"actions"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	p := &meta.Permission{PrincipalType: body.PrincipalType, Principal: body.Principal, Repos: body.Repos, Actions: strings.Join(body.Actions, ",")}
	if err := a.auth.Grant(r.Context(), p); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, viewPerm(p))
}

func (a *api) deletePermission(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	if err := a.store.DeletePermission(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	a.auth.Invalidate()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- garbage collection

func (a *api) runGC(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	var body struct {
		DryRun bool `json:"dry_run"`
	}
	if r.ContentLength != 0 {
		if err := decodeBody(r, &body); err != nil {
			return err
		}
	}
	if a.s.collector == nil {
		return errs.New(errs.Unavailable, "garbage collection is not configured")
	}
	rep, err := a.s.collector.Run(r.Context(), body.DryRun)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (a *api) lastGC(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	if a.s.collector == nil {
		return errs.New(errs.Unavailable, "garbage collection is not configured")
	}
	rep := a.s.collector.Last()
	if rep == nil {
		return errs.New(errs.NotFound, "no garbage collection has run since this server started")
	}
	return writeJSON(w, http.StatusOK, rep)
}

// ---- audit

func (a *api) listAudit(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	evs, err := a.store.ListAudit(r.Context(), q.Get("repo"), q.Get("before"), limit)
	if err != nil {
		return err
	}
	type ev struct {
		ID     string          `json:"id"`
		At     string          `json:"at"`
		Actor  string          `json:"actor"`
		Action string          `json:"action"`
		Repo   string          `json:"repo,omitempty"`
		Path   string          `json:"path,omitempty"`
		Detail json.RawMessage `json:"detail"`
	}
	out := []ev{}
	for _, e := range evs {
		out = append(out, ev{e.ID, iso(e.At), e.Actor, e.Action, e.Repo, e.Path, json.RawMessage(e.Detail)})
	}
	return writeJSON(w, http.StatusOK, out)
}
