package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/reqctx"
)

// The distribution spec's error codes.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeUnauthorized        = "UNAUTHORIZED"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeRangeInvalid        = "RANGE_INVALID"
	codeUnknown             = "UNKNOWN"
	codeUnavailable         = "UNAVAILABLE"
)

// ociError is an error with an explicit spec code; it wraps a domain kind
// so that logging and metrics classify it as every other error.
type ociError struct {
	code   string
	status int
	msg    string
	detail any
	kind   error
}

func (e *ociError) Error() string { return e.msg }
func (e *ociError) Unwrap() error { return e.kind }

func newErr(code string, status int, kind error, detail any, format string, args ...any) *ociError {
	return &ociError{code: code, status: status, kind: kind, detail: detail, msg: fmt.Sprintf(format, args...)}
}

// The one table from domain kinds to spec codes, for errors that do not
// carry a code of their own.
func codeFor(err error) (string, int) {
	switch errs.KindOf(err) {
	case errs.NotFound:
		return codeNameUnknown, http.StatusNotFound
	case errs.Invalid:
		return codeUnsupported, http.StatusBadRequest
	case errs.DigestMismatch:
		return codeDigestInvalid, http.StatusBadRequest
	case errs.Denied, errs.Immutable, errs.Exists:
		return codeDenied, http.StatusForbidden
	case errs.Quota:
		return codeDenied, http.StatusForbidden
	case errs.Unauthenticated:
		return codeUnauthorized, http.StatusUnauthorized
	case errs.TooLarge:
		return codeSizeInvalid, http.StatusRequestEntityTooLarge
	case errs.NotAllowed:
		return codeUnsupported, http.StatusMethodNotAllowed
	case errs.Upstream:
		return codeUnknown, http.StatusBadGateway
	case errs.Unavailable:
		return codeUnavailable, http.StatusServiceUnavailable
	case errs.Canceled:
		return codeUnknown, 499
	}
	return codeUnknown, http.StatusInternalServerError
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError renders err in the spec's JSON shape; a 401 carries the
// Bearer challenge docker-class clients follow to the token endpoint.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error, scope string) {
	reqctx.LogError(r.Context(), err)
	code, status := codeFor(err)
	var oe *ociError
	if errors.As(err, &oe) {
		code, status = oe.code, oe.status
	}
	entry := errorEntry{Code: code, Message: errs.Message(err)}
	if oe != nil {
		entry.Detail = oe.detail
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", h.challenge(scope))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		json.NewEncoder(w).Encode(errorBody{Errors: []errorEntry{entry}})
	}
}
