// Package replicate pushes local repositories to other Coffer instances:
// on every change (event-driven, a few hundred milliseconds after it) and by
// a periodic full reconcile that repairs anything missed (a target that was
// down, a change made while the source restarted). Each pass sends the
// repository's whole state (repo.ReplicaState); the target answers which
// blobs it lacks, receives those, and makes its repository equal to the
// state in one transaction. Passes are idempotent: a repeated or
// interrupted pass neither loses nor duplicates anything.
package replicate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/repo"
)

// Status is a target's replication state, for the API and metrics.
type Status struct {
	Name         string    `json:"name"`
	URL          string    `json:"url"`
	Repositories []string  `json:"repositories"` // local repositories replicated
	InSync       bool      `json:"in_sync"`
	LagSeconds   float64   `json:"lag_seconds"` // age of the oldest change not yet replicated
	LastSuccess  time.Time `json:"last_success,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	Passes       int64     `json:"passes"`
	BlobsSent    int64     `json:"blobs_sent"`
	BytesSent    int64     `json:"bytes_sent"`
	Changes      int64     `json:"changes"` // rows the target wrote or removed
}

// Replicator runs one loop per target.
type Replicator struct {
	repos    *repo.Manager
	log      *slog.Logger
	client   *http.Client
	targets  []*target
	debounce time.Duration
}

type target struct {
	cfg      config.ReplicationTarget
	auth     func(*http.Request)
	interval time.Duration
	wake     chan struct{}

	mu      sync.Mutex
	pending time.Time // oldest change not yet replicated (zero: none)
	st      Status
}

// New builds a Replicator; credentials are read now, so that a missing
// secret is an error at start.
func New(repos *repo.Manager, targets []config.ReplicationTarget, log *slog.Logger, client *http.Client) (*Replicator, error) {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Minute}
	}
	r := &Replicator{repos: repos, log: log, client: client, debounce: 200 * time.Millisecond}
	for _, c := range targets {
		auth, err := credentials(c)
		if err != nil {
			return nil, fmt.Errorf("replication target %s: %w", c.Name, err)
		}
		iv := c.Interval.D()
		if iv == 0 {
			iv = 5 * time.Minute
		}
		t := &target{cfg: c, auth: auth, interval: iv, wake: make(chan struct{}, 1)}
		t.st = Status{Name: c.Name, URL: c.URL}
		t.pending = time.Now() // nothing is known to be in sync before the first pass
		r.targets = append(r.targets, t)
	}
	return r, nil
}

func secret(env, file string) (string, error) {
	if env != "" {
		v := os.Getenv(env)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty", env)
		}
		return v, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func credentials(c config.ReplicationTarget) (func(*http.Request), error) {
	if c.TokenEnv != "" || c.TokenFile != "" {
		tok, err := secret(c.TokenEnv, c.TokenFile)
		if err != nil {
			return nil, err
		}
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }, nil
	}
	pw, err := secret(c.PasswordEnv, c.PasswordFile)
	if err != nil {
		return nil, err
	}
	return func(r *http.Request) { r.SetBasicAuth(c.Username, pw) }, nil
}

// Matches reports whether a repository key is replicated to any target.
func (r *Replicator) matches(t *target, key string) bool {
	for _, p := range t.cfg.Repositories {
		if ok, _ := path.Match(p, key); ok {
			return true
		}
	}
	return false
}

// Changed records a change to a repository (repo.Manager's change hook).
func (r *Replicator) Changed(key string) {
	now := time.Now()
	for _, t := range r.targets {
		if !r.matches(t, key) {
			continue
		}
		t.mu.Lock()
		if t.pending.IsZero() {
			t.pending = now
		}
		t.mu.Unlock()
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// Run replicates until ctx ends.
func (r *Replicator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range r.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, t)
		}()
	}
	wg.Wait()
}

func (r *Replicator) loop(ctx context.Context, t *target) {
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	retry := time.Second
	for {
		err := r.pass(ctx, t)
		wait := t.interval
		if err != nil {
			wait = retry
			retry = min(2*retry, 30*time.Second, t.interval)
		} else {
			retry = time.Second
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-t.wake:
			// Let a burst of changes settle into one pass.
			time.Sleep(r.debounce)
		case <-timer.C:
		case <-tick.C:
		}
		timer.Stop()
	}
}

// pass replicates every matching repository once.
func (r *Replicator) pass(ctx context.Context, t *target) error {
	start := time.Now()
	var keys []string
	for _, rp := range r.repos.List() {
		if rp.Kind == repo.Local && r.matches(t, rp.Key) {
			keys = append(keys, rp.Key)
		}
	}
	sort.Strings(keys)
	var firstErr error
	var blobs, bytes_, changes int64
	for _, k := range keys {
		b, n, c, err := r.syncRepo(ctx, t, k)
		blobs += b
		bytes_ += n
		changes += c
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: %w", k, err)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.st.Repositories = keys
	t.st.Passes++
	t.st.BlobsSent += blobs
	t.st.BytesSent += bytes_
	t.st.Changes += changes
	if firstErr != nil {
		t.st.LastError, t.st.LastErrorAt = firstErr.Error(), time.Now().UTC()
		r.log.Warn("replication pass failed", "target", t.cfg.Name, "err", firstErr)
		return firstErr
	}
	t.st.LastError = ""
	t.st.LastSuccess = time.Now().UTC()
	if !t.pending.IsZero() && !t.pending.After(start) {
		t.pending = time.Time{} // every change before the pass began is on the target
	}
	if changes > 0 || blobs > 0 {
		r.log.Info("replicated", "target", t.cfg.Name, "repositories", len(keys), "blobs", blobs, "bytes", bytes_,
			"changes", changes, "duration", time.Since(start))
	}
	return nil
}

func (r *Replicator) syncRepo(ctx context.Context, t *target, key string) (blobs, bytes_, changes int64, err error) {
	st, err := r.repos.ReplicaState(ctx, key)
	if err != nil {
		return 0, 0, 0, err
	}
	body, err := json.Marshal(st)
	if err != nil {
		return 0, 0, 0, err
	}
	apply := t.cfg.URL + "/api/v1/replication/repositories/" + url.PathEscape(key)
	for attempt := 0; ; attempt++ {
		var res repo.ReplicaResult
		if err := r.call(ctx, t, http.MethodPost, apply, bytes.NewReader(body), int64(len(body)), &res); err != nil {
			return blobs, bytes_, changes, err
		}
		if len(res.Missing) == 0 {
			return blobs, bytes_, int64(res.Changed), nil
		}
		if attempt == 3 {
			return blobs, bytes_, changes, fmt.Errorf("the target still lacks %d blobs after uploading them", len(res.Missing))
		}
		for _, d := range res.Missing {
			n, err := r.sendBlob(ctx, t, digest.Digest(d))
			if err != nil {
				return blobs, bytes_, changes, err
			}
			blobs++
			bytes_ += n
		}
	}
}

func (r *Replicator) sendBlob(ctx context.Context, t *target, d digest.Digest) (int64, error) {
	f, err := r.repos.OpenBlob(ctx, d)
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	u := t.cfg.URL + "/api/v1/replication/blobs/" + d.String()
	return size, r.call(ctx, t, http.MethodPut, u, f, size, nil)
}

func (r *Replicator) call(ctx context.Context, t *target, method, u string, body io.Reader, size int64, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/json")
	t.auth(req)
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
		}
		return fmt.Errorf("%s %s: %d %s", method, u, resp.StatusCode, msg)
	}
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status reports every target.
func (r *Replicator) Status() []Status {
	out := make([]Status, 0, len(r.targets))
	for _, t := range r.targets {
		t.mu.Lock()
		s := t.st
		s.InSync = t.pending.IsZero()
		if !s.InSync {
			s.LagSeconds = time.Since(t.pending).Seconds()
		}
		t.mu.Unlock()
		out = append(out, s)
	}
	return out
}
