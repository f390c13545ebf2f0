package errs

import "net/http"

// HTTPStatus is the default table from kind to HTTP status, used by the
// management API and by formats whose clients read only the status line.
// Formats with a native error vocabulary keep their own table.
func HTTPStatus(err error) int {
	switch KindOf(err) {
	case NotFound:
		return http.StatusNotFound
	case Exists, Immutable:
		return http.StatusConflict
	case Invalid, DigestMismatch:
		return http.StatusBadRequest
	case Denied:
		return http.StatusForbidden
	case Unauthenticated:
		return http.StatusUnauthorized
	case Quota:
		return http.StatusInsufficientStorage
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case Upstream:
		return http.StatusBadGateway
	case Unavailable:
		return http.StatusServiceUnavailable
	case NotAllowed:
		return http.StatusMethodNotAllowed
	case Canceled:
		return 499 // client closed request; never seen by the client
	}
	return http.StatusInternalServerError
}

// Code is a stable upper-case name for the kind, used in JSON error bodies.
func Code(err error) string {
	switch KindOf(err) {
	case NotFound:
		return "NOT_FOUND"
	case Exists:
		return "EXISTS"
	case Invalid:
		return "INVALID"
	case DigestMismatch:
		return "DIGEST_MISMATCH"
	case Denied:
		return "DENIED"
	case Unauthenticated:
		return "UNAUTHORIZED"
	case Immutable:
		return "IMMUTABLE"
	case Quota:
		return "QUOTA_EXCEEDED"
	case TooLarge:
		return "TOO_LARGE"
	case Upstream:
		return "UPSTREAM"
	case Unavailable:
		return "UNAVAILABLE"
	case NotAllowed:
		return "METHOD_NOT_ALLOWED"
	case Canceled:
		return "CANCELED"
	}
	return "INTERNAL"
}
