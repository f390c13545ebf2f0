package server

import (
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/repo"
)

// bodyLimit is the request body limit of an API route: replication moves
// whole repository states and blobs, everything else is small JSON.
func bodyLimit(pattern string) int64 {
	switch {
	case strings.HasPrefix(pattern, "PUT /api/v1/replication/blobs/"):
		return 0 // the blob store verifies size and digest; uploads are bounded by Content-Length
	case strings.HasPrefix(pattern, "POST /api/v1/replication/"):
		return 1 << 30
	}
	return maxAPIBody
}

// SetReplication connects the replication status to the management API.
func (s *Server) SetReplication(status func() any) { s.replication = status }

func (a *api) replicationStatus(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	var targets any = []any{}
	if a.s.replication != nil {
		targets = a.s.replication()
	}
	return writeJSON(w, http.StatusOK, map[string]any{"targets": targets})
}

func (a *api) replicaState(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	st, err := a.repos.ReplicaState(r.Context(), r.PathValue("key"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (a *api) applyReplica(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	var st repo.ReplicaState
	if err := decodeBody(r, &st); err != nil {
		return err
	}
	if st.Repository != r.PathValue("key") {
		return errs.New(errs.Invalid, "the state is of repository %q, not %q", st.Repository, r.PathValue("key"))
	}
	res, err := a.repos.ApplyReplica(r.Context(), r.PathValue("key"), &st, r.URL.Query().Get("dry") == "true")
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (a *api) receiveBlob(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	if r.ContentLength < 0 {
		return errs.New(errs.Invalid, "Content-Length is required")
	}
	if err := a.repos.ReceiveBlob(r.Context(), digest.Digest(r.PathValue("digest")), r.ContentLength, r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}
