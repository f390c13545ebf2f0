package server

import (
	"net/http"
	"regexp"
	"strings"
)

// The OpenAPI document is generated from the route table, so that a route
// cannot exist without being documented.

var pathParam = regexp.MustCompile(`\{(\w+)(\.\.\.)?\}`)

func (a *api) openapi(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, a.openapiDoc())
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func (a *api) openapiDoc() map[string]any {
	paths := map[string]map[string]any{}
	for _, rt := range a.routes() {
		method, pattern, _ := strings.Cut(rt.pattern, " ")
		p := pathParam.ReplaceAllString(pattern, "{$1}")
		op := map[string]any{
			"summary":     rt.summary,
			"operationId": strings.ToLower(method) + opName(p),
			"responses": map[string]any{
				"default": map[string]any{"description": "An error.", "content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}},
			},
		}
		var params []map[string]any
		for _, m := range pathParam.FindAllStringSubmatch(pattern, -1) {
			desc := ""
			if m[2] != "" {
				desc = "A path that may contain slashes."
			}
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "description": desc, "schema": map[string]any{"type": "string"}})
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		ok := map[string]any{"description": "Success."}
		if rt.out != "" {
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": ref(rt.out)}}
		}
		status := "200"
		switch {
		case method == "POST" && rt.out != "ApplyResult" && rt.out != "DeprecationResult" && !postAnswers200[rt.out] && !postAnswers200[rt.pattern]:
			status = "201"
		case rt.out == "" && method != "GET":
			status = "204"
		}
		op["responses"].(map[string]any)[status] = ok
		if rt.in != "" {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": ref(rt.in)}}}
		}
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "Coffer management API",
			"version":     "1",
			"description": "Repositories, artifacts, users, groups, tokens and permissions. Authenticate with HTTP Basic (user and password, or any user name and an API token) or `Authorization: Bearer <API token>`.",
		},
		"servers":    []map[string]any{{"url": a.s.deps.BaseURL}},
		"security":   []map[string]any{{"basic": []string{}}, {"bearer": []string{}}},
		"paths":      paths,
		"components": map[string]any{"securitySchemes": map[string]any{"basic": map[string]any{"type": "http", "scheme": "basic"}, "bearer": map[string]any{"type": "http", "scheme": "bearer"}}, "schemas": schemas()},
	}
}

func opName(p string) string {
	var b strings.Builder
	for _, part := range strings.Split(strings.TrimPrefix(p, "/api/v1/"), "/") {
		part = strings.Trim(part, "{}")
		part = strings.ReplaceAll(part, ".", "")
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

func obj(props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func arr(items any) map[string]any { return map[string]any{"type": "array", "items": items} }

var (
	str   = map[string]any{"type": "string"}
	boolT = map[string]any{"type": "boolean"}
	intT  = map[string]any{"type": "integer", "format": "int64"}
	strs  = arr(map[string]any{"type": "string"})
	when  = map[string]any{"type": "string", "format": "date-time"}
)

func enum(vals ...string) map[string]any { return map[string]any{"type": "string", "enum": vals} }

func schemas() map[string]any {
	decl := map[string]any{
		"key": str, "format": str, "kind": enum("local", "remote", "virtual"), "tier": enum("dev", "staging", "release"),
		"description": str, "overwrite": boolT, "delete": boolT, "anonymous_read": boolT, "quota": map[string]any{"description": "bytes, or a string like 10GiB"},
		"max_upload_size": map[string]any{"description": "bytes, or a string like 512MiB"},
		"upstream":        obj(map[string]any{"url": str, "username": str, "password_env": str, "password_file": str, "timeout": str}, "url"),
		"metadata_ttl":    str, "negative_ttl": str, "members": strs, "default_deploy": str,
		"maven": obj(map[string]any{"version_policy": enum("release", "snapshot", "mixed"), "layout_policy": enum("strict", "permissive")}),
	}
	repoProps := map[string]any{}
	for k, v := range decl {
		repoProps[k] = v
	}
	repoProps["policy"] = obj(map[string]any{"overwrite": boolT, "delete": boolT, "anonymous_read": boolT})
	repoProps["url"] = str
	repoProps["resolved_members"] = strs
	repoProps["created_at"] = when
	artifact := obj(map[string]any{"repo": str, "path": str, "size": intT, "sha256": str, "sha1": str, "md5": str,
		"content_type": str, "created_at": when, "updated_at": when, "last_downloaded_at": when, "created_by": str,
		"deprecated": boolT, "deprecation_message": str, "download_uri": str})
	scope := obj(map[string]any{"repos": str, "tiers": strs, "actions": arr(enum("read", "write", "overwrite", "delete", "promote", "admin"))}, "repos", "actions")
	user := obj(map[string]any{"name": str, "email": str, "admin": boolT, "disabled": boolT, "groups": strs, "created_at": when})
	token := obj(map[string]any{"id": str, "name": str, "description": str, "user": str, "scopes": arr(ref("Scope")),
		"expires_at": when, "created_at": when, "last_used_at": when, "token": map[string]any{"type": "string", "description": "The secret; only in the creation response."}})
	perm := obj(map[string]any{"id": str, "principal_type": enum("user", "group", "anonymous"), "principal": str, "repos": str, "actions": strs, "created_at": when})
	group := obj(map[string]any{"name": str, "description": str, "members": strs}, "name")
	out := map[string]any{
		"Error": obj(map[string]any{"error": obj(map[string]any{"code": str, "message": str,
			"problems": arr(obj(map[string]any{"line": intT, "field": str, "message": str}))})}),
		"WhoAmI":          obj(map[string]any{"name": str, "anonymous": boolT, "admin": boolT, "groups": strs, "token": obj(map[string]any{"id": str, "name": str, "scopes": arr(ref("Scope"))})}),
		"RepositoryDecl":  obj(decl, "key", "format", "kind"),
		"RepositoryApply": obj(map[string]any{"repositories": arr(ref("RepositoryDecl"))}, "repositories"),
		"Repository":      obj(repoProps),
		"RepositoryList":  arr(ref("Repository")),
		"ApplyResult":     obj(map[string]any{"results": arr(obj(map[string]any{"key": str, "action": enum("created", "updated", "unchanged")}))}),
		"Artifact":        artifact,
		"ArtifactPage":    obj(map[string]any{"items": arr(ref("Artifact")), "next": map[string]any{"type": "string", "description": "Cursor for the next page (after=)."}}),
		"DeleteResult":    obj(map[string]any{"deleted": intT}),
		"MavenSearch": obj(map[string]any{"items": arr(obj(map[string]any{"repo": str, "group_id": str, "artifact_id": str, "version": str,
			"deprecated": boolT, "files": arr(obj(map[string]any{"path": str, "size": intT, "sha256": str, "download_uri": str}))}))}),
		"GCRequest": obj(map[string]any{"dry_run": boolT}),
		"ReplicationStatus": obj(map[string]any{"targets": arr(obj(map[string]any{"name": str, "url": str, "repositories": strs,
			"in_sync": boolT, "lag_seconds": map[string]any{"type": "number"}, "last_success": when, "last_error": str, "last_error_at": when,
			"passes": intT, "blobs_sent": intT, "bytes_sent": intT, "changes": intT}))}),
		"ReplicaState": obj(map[string]any{"repository": str, "format": str,
			"components": arr(obj(map[string]any{"name": str, "version": str, "attributes": map[string]any{"type": "object"}, "deprecated": boolT, "deprecation_message": str, "created_at": when, "created_by": str})),
			"assets": arr(obj(map[string]any{"path": str, "blob": str, "size": intT, "content_type": str, "sha1": str, "md5": str, "sha512": str,
				"deprecated": boolT, "deprecation_message": str, "component": obj(map[string]any{"name": str, "version": str}),
				"attributes": map[string]any{"type": "object"}, "created_at": when, "created_by": str})),
			"tags":  arr(obj(map[string]any{"name": str, "tag": str, "target": str})),
			"links": arr(obj(map[string]any{"name": str, "source": str, "target": str, "kind": str}))}, "repository", "format"),
		"ReplicaResult": obj(map[string]any{"missing": strs, "changed": intT}),
		"GCReport": obj(map[string]any{"dry_run": boolT, "started": when, "finished": when, "blobs": intT, "bytes": intT,
			"uploads": intT, "resumed_deletions": intT, "grace_cutoff": when}),
		"TagList":           arr(obj(map[string]any{"name": str, "tag": str, "target": str, "updated_at": when})),
		"Deprecation":       obj(map[string]any{"path": str, "message": str}, "path"),
		"DeprecationResult": obj(map[string]any{"repo": str, "path": str, "deprecated": boolT, "message": str}),
		"Storage": obj(map[string]any{"repositories": arr(obj(map[string]any{"key": str, "assets": intT, "bytes": intT, "quota": intT})),
			"logical_bytes": intT, "physical": obj(map[string]any{"blobs": intT, "bytes": intT, "quota": intT}), "dedupe_ratio": map[string]any{"type": "number"}}),
		"User":             user,
		"UserList":         arr(ref("User")),
		"UserCreate":       obj(map[string]any{"name": str, "password": str, "email": str, "admin": boolT, "groups": strs}, "name"),
		"UserPatch":        obj(map[string]any{"password": str, "email": str, "admin": boolT, "disabled": boolT}),
		"Group":            group,
		"GroupList":        arr(ref("Group")),
		"Scope":            scope,
		"Token":            token,
		"TokenList":        arr(ref("Token")),
		"TokenCreate":      obj(map[string]any{"name": str, "description": str, "user": str, "preset": enum("ci", "promote", "pull"), "scopes": arr(ref("Scope")), "expires_in": map[string]any{"type": "string", "description": "720h, 30d"}}),
		"Permission":       perm,
		"PermissionList":   arr(ref("Permission")),
		"PermissionCreate": obj(map[string]any{"principal_type": enum("user", "group", "anonymous"), "principal": str, "repos": str, "actions": strs}, "principal_type", "repos", "actions"),
		"AuditList": arr(obj(map[string]any{"id": str, "at": when, "actor": str, "action": str, "repo": str, "path": str,
			"detail": map[string]any{"type": "object"}})),
	}
	for k, v := range lifecycleSchemas() {
		out[k] = v
	}
	return out
}
