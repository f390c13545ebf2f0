// Package app is the one wiring point: it builds the stores, the repository
// manager, authentication, the formats and the HTTP server from a
// configuration, and runs them.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/gc"
	"github.com/cofferhq/coffer/internal/lifecycle"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/metrics"
	"github.com/cofferhq/coffer/internal/replicate"
	"github.com/cofferhq/coffer/internal/repo"
	"github.com/cofferhq/coffer/internal/server"
)

// App is a built, not yet serving, Coffer.
type App struct {
	Config  config.Config
	Log     *slog.Logger
	Store   meta.Store
	Blobs   blob.Store
	Repos   *repo.Manager
	Auth    *auth.Service
	Metrics *metrics.Metrics
	GC      *gc.Collector
	Server  *server.Server
	// Replicator pushes repositories to other instances (nil: none configured).
	Replicator *replicate.Replicator
	// Retention applies repositories' retention rules.
	Retention *lifecycle.Retention
	// Promoter promotes artifacts between local repositories.
	Promoter *lifecycle.Promoter
	// AdminPassword is set when first start generated one.
	AdminPassword string

	node      string             // this node's random ID (scale-out)
	stopCoord context.CancelFunc // stops the scale-out coordination
}

// Options tune New for tests and the command line.
type Options struct {
	// Stderr receives the generated admin password (default os.Stderr).
	Stderr io.Writer
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
	// Transport for upstream requests (nil: default).
	Transport http.RoundTripper
	// ReplicationClient sends to replication targets (nil: default).
	ReplicationClient *http.Client
}

// NewLogger builds the logger the configuration asks for.
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level))
	o := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// OpenStorage opens the metadata store and the blob store the
// configuration names (also for the offline commands: backup, restore,
// verify). getenv reads secrets (nil: os.Getenv). The caller closes the
// store.
func OpenStorage(ctx context.Context, cfg config.Config, getenv func(string) string) (meta.Store, blob.Store, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if err := os.MkdirAll(cfg.Storage.DataDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("data directory: %w", err)
	}
	store, err := openMeta(ctx, cfg.Storage, getenv)
	if err != nil {
		return nil, nil, err
	}
	blobs, err := openBlobs(ctx, cfg.Storage, getenv)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, blobs, nil
}

// New builds everything. baseURL is the external URL (derived from the
// listen address when the configuration leaves it empty).
func New(ctx context.Context, cfg config.Config, baseURL string, opts Options) (*App, error) {
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	log := NewLogger(cfg.Log, opts.Stderr)
	a := &App{Config: cfg, Log: log}
	store, blobs, err := OpenStorage(ctx, cfg, opts.Getenv)
	if err != nil {
		return nil, err
	}
	a.Store, a.Blobs = store, blobs
	a.Metrics = metrics.New()
	a.Repos, err = repo.NewManager(ctx, store, a.Blobs, repo.Options{
		Formats:       FormatNames(),
		MaxUploadSize: int64(cfg.Server.MaxUploadSize),
		Logger:        log,
		Transport:     opts.Transport,
		ProxyObserver: a.Metrics.ObserveProxy,
		Quotas: repo.Quotas{
			Instance:    int64(cfg.Storage.Quota),
			WarnPercent: cfg.Storage.QuotaWarning,
			OnWarning: func(key string, used, quota int64) {
				what := "repository " + key
				if key == "" {
					what = "the instance"
				}
				log.Warn("storage quota warning", "quota_of", what, "used_bytes", used, "quota_bytes", quota,
					"used_percent", used*100/quota, "threshold_percent", cfg.Storage.QuotaWarning)
				a.Store.AddAudit(context.Background(), &meta.AuditEvent{Actor: "coffer", Action: "quota_warning", Repo: key,
					Detail: fmt.Sprintf(`{"used_bytes":%d,"quota_bytes":%d}`, used, quota)})
			},
		},
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	a.GC = gc.New(store, a.Blobs, gc.Options{
		Grace:         cfg.GC.Grace.D(),
		UploadTTL:     cfg.Server.UploadTTL.D(),
		Logger:        log,
		ExpireUploads: a.Repos.ExpireUploads,
		Observe: func(r gc.Report) {
			a.Metrics.ObserveGC(r.DryRun, r.Blobs, r.Bytes, r.Uploads, r.Started, r.Finished)
		},
	})
	a.Auth = auth.New(store, a.Repos.Attrs)
	a.Repos.SetAuth(a.Auth)
	if len(cfg.Repositories) > 0 {
		res, err := a.Repos.Apply(ctx, cfg.Repositories)
		if err != nil {
			a.Close()
			return nil, err
		}
		for _, r := range res {
			if r.Action != "unchanged" {
				log.Info("repository "+r.Action, "repo", r.Key)
			}
		}
	}
	if a.AdminPassword, err = a.Auth.EnsureAdmin(ctx, opts.Getenv("COFFER_ADMIN_PASSWORD")); err != nil {
		a.Close()
		return nil, err
	}
	a.Metrics.RegisterStorage(store, func() []metrics.RepoInfo {
		var out []metrics.RepoInfo
		for _, r := range a.Repos.List() {
			out = append(out, metrics.RepoInfo{ID: r.ID, Key: r.Key, Quota: r.Quota})
		}
		return out
	}, int64(cfg.Storage.Quota))
	cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stopCoord = stop
	if err := a.startCoordination(cctx, opts.Getenv); err != nil {
		a.Close()
		return nil, err
	}
	a.Server = server.New(format.Deps{Repos: a.Repos, Auth: a.Auth, Log: log, BaseURL: strings.TrimSuffix(baseURL, "/")}, Formats(), a.Metrics)
	a.Server.SetCollector(a.GC)
	if len(cfg.Replication) > 0 {
		if a.Replicator, err = replicate.New(a.Repos, cfg.Replication, log, opts.ReplicationClient); err != nil {
			a.Close()
			return nil, err
		}
		a.Repos.OnChange(a.Replicator.Changed)
		a.Server.SetReplication(func() any { return a.Replicator.Status() })
		a.Metrics.RegisterReplication(func() []metrics.ReplicationInfo {
			var out []metrics.ReplicationInfo
			for _, s := range a.Replicator.Status() {
				out = append(out, metrics.ReplicationInfo{Target: s.Name, InSync: s.InSync, LagSeconds: s.LagSeconds,
					LastSuccess: s.LastSuccess, BlobsSent: s.BlobsSent, BytesSent: s.BytesSent})
			}
			return out
		})
	}
	a.Retention = lifecycle.NewRetention(a.Repos, a.Server.Format, log)
	a.Server.SetRetention(a.Retention)
	a.Promoter = lifecycle.NewPromoter(a.Repos, a.Auth, a.Server.Format, log)
	a.Server.SetPromoter(a.Promoter)
	return a, nil
}

// Close releases the stores.
func (a *App) Close() error {
	if a.stopCoord != nil {
		a.stopCoord()
	}
	if a.Repos != nil {
		a.Repos.Close()
	}
	return a.Store.Close()
}

// Run serves until ctx is done, then drains gracefully. addrFile, when set,
// receives the bound address once the server accepts connections.
func Run(ctx context.Context, cfg config.Config, addrFile string, opts Options) error {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Server.Listen, err)
	}
	addr := ln.Addr().String()
	base := cfg.Server.BaseURL
	if base == "" {
		base = "http://" + addr
	}
	a, err := New(ctx, cfg, base, opts)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.Close()
	if a.AdminPassword != "" {
		fmt.Fprintf(opts.Stderr, "\n  Coffer created the account %q with the password:\n\n      %s\n\n  It is shown only this once. Set COFFER_ADMIN_PASSWORD on first start to choose it.\n\n",
			auth.AdminName, a.AdminPassword)
	}
	hs := &http.Server{
		Handler:           a.Server,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	go a.schedule(ctx)
	if addr := opts.Getenv("COFFER_PPROF_LISTEN"); addr != "" {
		// Profiling on its own listener, never on the public one.
		go func() {
			a.Log.Info("pprof listening", "addr", addr)
			a.Log.Warn("pprof stopped", "err", http.ListenAndServe(addr, pprofMux()))
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	a.Server.SetReady(true)
	// Start-up work (migrations, hashing a generated admin password with
	// argon2id's 19 MiB) leaves heap the runtime would return only slowly:
	// give it back now, so that an idle server is small.
	debug.FreeOSMemory()
	a.Log.Info("coffer listening", "addr", addr, "base_url", base, "data_dir", cfg.Storage.DataDir, "formats", FormatNames())
	if addrFile != "" {
		if err := os.WriteFile(addrFile, []byte(addr), 0o644); err != nil {
			return err
		}
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.Server.SetReady(false)
	a.Log.Info("shutting down", "timeout", cfg.Server.ShutdownTimeout.D())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.D())
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.Log.Warn("graceful shutdown incomplete", "err", err)
		hs.Close()
	}
	a.Log.Info("stopped")
	return nil
}

func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// housekeeping runs garbage collection on its schedule (which also expires
// upload sessions) and removes temporary files no session owns.
func (a *App) housekeeping(ctx context.Context) {
	ttl := a.Config.Server.UploadTTL.D()
	every := min(max(ttl/4, time.Second), time.Hour)
	if g := a.Config.GC.Interval.D(); g > 0 {
		every = min(every, max(g, time.Second))
	}
	gcEvery := a.Config.GC.Interval.D()
	lastGC := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := a.Repos.ExpireUploads(ctx, time.Now().Add(-ttl)); err != nil {
			a.Log.Warn("expiring upload sessions", "err", err)
		} else if n > 0 {
			a.Log.Info("expired upload sessions", "count", n)
		}
		// Files older than any live session can be are orphans (a crash).
		if n, b, err := removeStaleUploads(ctx, a.Blobs, time.Now().Add(-ttl-time.Hour)); err != nil {
			a.Log.Warn("removing stale uploads", "err", err)
		} else if n > 0 {
			a.Log.Info("removed stale uploads", "files", n, "bytes", b)
		}
		if gcEvery > 0 && time.Since(lastGC) >= gcEvery {
			lastGC = time.Now()
			if _, err := a.GC.Run(ctx, false); err != nil && ctx.Err() == nil {
				a.Log.Warn("garbage collection failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retentionSchedule runs retention over every local repository on its
// interval (repositories without rules keep everything).
func (a *App) retentionSchedule(ctx context.Context) {
	every := a.Config.Retention.Interval.D()
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := a.Retention.Run(ctx, nil, false); err != nil && ctx.Err() == nil {
			a.Log.Warn("retention failed", "err", err)
		}
	}
}
