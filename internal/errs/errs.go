// Package errs defines the domain error kinds every layer of Coffer speaks.
//
// Domain code returns one of the sentinel kinds below, wrapped with context
// ("tag v1 in docker-release-local: %w"), or an *Error built with New whose
// message is written for a person. Callers test kinds with errors.Is or with
// KindOf; nobody compares messages. Each protocol (a format, the management
// API) owns one table from kind to its native status and error code.
package errs

import (
	"context"
	"errors"
	"fmt"
)

// The kinds. Each is a sentinel usable with errors.Is.
var (
	NotFound        = errors.New("not found")
	Exists          = errors.New("already exists")
	Invalid         = errors.New("invalid")
	Denied          = errors.New("denied")
	Unauthenticated = errors.New("authentication required")
	Immutable       = errors.New("immutable")
	Quota           = errors.New("quota exceeded")
	Upstream        = errors.New("upstream error")
	Unavailable     = errors.New("unavailable")
	TooLarge        = errors.New("too large")
	DigestMismatch  = errors.New("digest mismatch")
	NotAllowed      = errors.New("method not allowed")
	Canceled        = errors.New("canceled")
)

var kinds = []error{NotFound, Exists, Invalid, Denied, Unauthenticated, Immutable, Quota,
	Upstream, Unavailable, TooLarge, DigestMismatch, NotAllowed, Canceled}

// Error is a domain error whose message is meant for the person at the client.
type Error struct {
	Kind error // one of the sentinel kinds
	Msg  string
	Err  error // optional cause, kept for logs and errors.Is
}

// New returns an error of the given kind with a formatted, human message.
func New(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of the given kind carrying cause for logging.
func Wrap(kind error, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Err: cause}
}

func (e *Error) Error() string { return e.Msg }

// Unwrap exposes both the kind and the cause to errors.Is / errors.As.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// KindOf returns the first kind err wraps, or nil for an unclassified
// (internal) error.
func KindOf(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) && e.Kind != nil {
		return e.Kind
	}
	for _, k := range kinds {
		if errors.Is(err, k) {
			return k
		}
	}
	// A client that went away is not a server error.
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	return nil
}

// Message returns what may be shown to a client: the message of a classified
// error, or a generic text for an internal one (whose details stay in logs).
func Message(err error) string {
	if KindOf(err) == nil {
		return "internal server error"
	}
	return err.Error()
}
