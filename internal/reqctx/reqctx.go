// Package reqctx carries request-scoped values every layer may read: the
// request id, what the router learned (repository, format, user) and a
// logger that already names them.
package reqctx

import (
	"context"
	"log/slog"

	"github.com/cofferhq/coffer/internal/errs"
)

// Info is filled in as a request is routed, for logs and metrics.
type Info struct {
	ID     string
	Repo   string
	Format string
	User   string
	// Status is set by a handler that answers on a hijacked connection
	// (to send a reason phrase of its own), for the request log and metrics.
	Status int
}

type infoKey struct{}
type loggerKey struct{}

// With returns ctx carrying info and log.
func With(ctx context.Context, info *Info, log *slog.Logger) context.Context {
	ctx = context.WithValue(ctx, infoKey{}, info)
	return context.WithValue(ctx, loggerKey{}, log)
}

// InfoFrom returns the request's info (an empty one outside a request).
func InfoFrom(ctx context.Context) *Info {
	if i, ok := ctx.Value(infoKey{}).(*Info); ok {
		return i
	}
	return &Info{}
}

// Logger returns the request-scoped logger, with the routing facts added.
func Logger(ctx context.Context) *slog.Logger {
	l, ok := ctx.Value(loggerKey{}).(*slog.Logger)
	if !ok {
		l = slog.Default()
	}
	i := InfoFrom(ctx)
	if i.Repo != "" {
		l = l.With("repo", i.Repo)
	}
	if i.User != "" {
		l = l.With("user", i.User)
	}
	return l
}

// LogError logs an error being answered to a client, once, at a level set
// by its kind: unclassified (internal) errors at error level with their
// detail, upstream failures at warn, client errors at debug.
func LogError(ctx context.Context, err error) {
	switch errs.KindOf(err) {
	case nil:
		Logger(ctx).Error("internal error", "err", err)
	case errs.Upstream, errs.Unavailable:
		Logger(ctx).Warn("request failed", "err", err)
	default:
		Logger(ctx).Debug("request refused", "err", err)
	}
}
