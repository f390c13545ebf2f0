package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/checksum"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
)

// FetchSpec describes what a format knows about a path it asks a remote
// repository for.
type FetchSpec struct {
	// Immutable content never changes at this path (a blob by digest, a
	// released version's file): a cached copy is served without asking the
	// upstream again. Otherwise the path is revalidated after the metadata TTL.
	Immutable bool
	// URL overrides the upstream URL (default: the upstream URL + path).
	URL string
	// Expect is the sha256 digest the content must have, when an index said so.
	Expect digest.Digest
	// Declared are other checksums the content must match (hex).
	Declared checksum.Sums
	// Hashes are the extra digests to compute while streaming (nil: as for
	// PutOptions.Hashes); declared ones are always computed, missing
	// generic ones filled in after the commit.
	Hashes []checksum.Alg
	// Header adds request headers (an Accept, say).
	Header http.Header
	// ChallengeAuth sends the upstream credentials only when the upstream
	// asks (a 401 with a Basic or Bearer challenge), as registries expect;
	// otherwise they go with every request.
	ChallengeAuth bool
	// Stream lets requests read the content while it is being fetched
	// (large, immutable content with a known digest: OCI layers). The
	// returned Asset then has Stream set and no committed blob yet.
	Stream bool
	// Component, when set, is the package version the fetched file belongs
	// to; it is created (or its attributes updated) in the transaction that
	// caches the file, so that a format can still describe the version when
	// the upstream no longer does (a version unpublished upstream).
	Component *ComponentSpec
}

// Proxy outcomes, reported to the observer (metrics) and in logs.
const (
	OutcomeHit         = "hit"         // served from cache, fresh
	OutcomeRevalidated = "revalidated" // upstream said 304
	OutcomeFetched     = "fetched"     // new content from upstream
	OutcomeStale       = "stale"       // upstream failed, cached copy served
	OutcomeNegative    = "negative"    // remembered 404
	OutcomeNotFound    = "not_found"   // upstream 404
	OutcomeError       = "error"       // upstream failed, nothing cached
)

func newUpstreamClient(rt http.RoundTripper) *http.Client {
	if rt == nil {
		rt = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	return &http.Client{Transport: rt, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("too many redirects")
		}
		// Credentials go only to the upstream's own host.
		if len(via) > 0 && req.URL.Host != via[0].URL.Host {
			req.Header.Del("Authorization")
		}
		return nil
	}}
}

type negativeCache struct {
	mu      sync.Mutex
	entries map[string]time.Time
}

func flightKey(r *Repository, path string) string { return r.ID + "\x00" + path }

func (n *negativeCache) has(r *Repository, path string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	exp, ok := n.entries[flightKey(r, path)]
	if ok && now.After(exp) {
		delete(n.entries, flightKey(r, path))
		return false
	}
	return ok
}

func (n *negativeCache) add(r *Repository, path string, until time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.entries) > 100_000 {
		clear(n.entries) // bounded: forgetting early is always safe
	}
	n.entries[flightKey(r, path)] = until
}

func (n *negativeCache) forget(r *Repository, path string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.entries, flightKey(r, path))
}

// UpstreamURL is where a remote repository finds path.
func UpstreamURL(r *Repository, path string) string {
	base := *r.Upstream.URL
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
		if base.RawPath != "" {
			base.RawPath += "/"
		}
	}
	return strings.TrimSuffix(base.String(), "/") + "/" + EscapePath(path)
}

// EscapePath escapes each segment of a slash-separated path for a URL.
func EscapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// Fetch returns path from a remote repository: from its cache when fresh
// (or immutable), else from the upstream, caching what it gets.
func (m *Manager) Fetch(ctx context.Context, r *Repository, path string, spec FetchSpec) (*Asset, error) {
	if r.Kind != Remote {
		return nil, fmt.Errorf("Fetch on %s repository %s", r.Kind, r.Key)
	}
	now := m.now()
	cached, err := m.store.GetAsset(ctx, r.ID, path)
	if err != nil && !errors.Is(err, errs.NotFound) {
		return nil, err
	}
	if cached != nil && m.fresh(r, cached, spec, now) {
		m.observe(r, OutcomeHit)
		return &Asset{Asset: cached, Repo: r}, nil
	}
	if cached == nil && m.negative.has(r, path, now) {
		m.observe(r, OutcomeNegative)
		return nil, errs.New(errs.NotFound, "%s not found in %s (upstream answered 404 recently)", path, r.Key)
	}
	fl := m.fills.join(flightKey(r, path), func(fl *fill) {
		// Detached: a waiter that gives up must not abort the fill for the others.
		fl.asset, fl.err = m.fill(context.WithoutCancel(ctx), r, path, spec, fl)
	})
	if spec.Stream {
		select {
		case <-ctx.Done():
			return nil, errs.Wrap(errs.Canceled, ctx.Err(), "request canceled while fetching %s from upstream", path)
		case <-fl.ready:
			if p := fl.stream; p != nil {
				return &Asset{Asset: &meta.Asset{RepoID: r.ID, Path: path, Size: p.size}, Repo: r, Stream: p.reader(ctx)}, nil
			}
		}
	}
	select {
	case <-ctx.Done():
		return nil, errs.Wrap(errs.Canceled, ctx.Err(), "request canceled while fetching %s from upstream", path)
	case <-fl.done:
		return fl.asset, fl.err
	}
}

func (m *Manager) fresh(r *Repository, a *meta.Asset, spec FetchSpec, now time.Time) bool {
	if spec.Immutable {
		return true
	}
	return now.Sub(a.FetchedAt) < r.MetadataTTL
}

func (m *Manager) observe(r *Repository, outcome string) {
	if m.observer != nil {
		m.observer(r.Key, outcome)
	}
}

// fill asks the upstream for path (conditionally when a copy is cached) and
// stores what it answers. It runs once per path at a time.
func (m *Manager) fill(ctx context.Context, r *Repository, path string, spec FetchSpec, fl *fill) (*Asset, error) {
	// Readers following a stream learn at the end whether what they read
	// was committed (verified) or must be thrown away.
	committed := false
	var stream *progress
	defer func() {
		if stream != nil {
			if committed {
				stream.finish(nil)
			} else {
				stream.finish(errs.New(errs.Upstream, "the download of %s from the upstream of %s failed verification or broke off", path, r.Key))
			}
		}
	}()
	cached, err := m.store.GetAsset(ctx, r.ID, path)
	if err != nil && !errors.Is(err, errs.NotFound) {
		return nil, err
	}
	if cached != nil && m.fresh(r, cached, spec, m.now()) {
		// Filled by a flight that finished just before this one started.
		return &Asset{Asset: cached, Repo: r}, nil
	}
	stale := func(cause error) (*Asset, error) {
		if cached != nil {
			m.observe(r, OutcomeStale)
			m.log.Warn("upstream failed; serving cached copy", "repo", r.Key, "path", path, "err", cause)
			return &Asset{Asset: cached, Repo: r, Stale: true}, nil
		}
		m.observe(r, OutcomeError)
		return nil, cause
	}

	u := spec.URL
	if u == "" {
		u = UpstreamURL(r, path)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range spec.Header {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", "coffer")
	// Credentials go only to the upstream's own host: a URL the format found
	// in upstream metadata (an npm tarball on a CDN) may point elsewhere.
	hasCreds := (r.Upstream.Username != "" || r.Upstream.Password != "") && req.URL.Host == r.Upstream.URL.Host
	if hasCreds && !spec.ChallengeAuth {
		req.SetBasicAuth(r.Upstream.Username, r.Upstream.Password)
	}
	if cached != nil {
		if cached.UpstreamETag != "" {
			req.Header.Set("If-None-Match", cached.UpstreamETag)
		}
		if cached.UpstreamLastModified != "" {
			req.Header.Set("If-Modified-Since", cached.UpstreamLastModified)
		}
	}
	// The timeout bounds the wait for the upstream's answer; once bytes flow,
	// it bounds the silence between them.
	watchdog := time.AfterFunc(r.Upstream.Timeout, cancel)
	defer watchdog.Stop()
	resp, err := m.client.Do(req)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		ch := resp.Header.Get("WWW-Authenticate")
		switch {
		case strings.HasPrefix(strings.ToLower(ch), "bearer"):
			// A registry wants a token from its token service first.
			resp.Body.Close()
			tok, terr := m.bearerFor(ctx, r, ch)
			if terr != nil {
				return stale(errs.Wrap(errs.Upstream, terr, "upstream of %s refused the configured credentials (%v)", r.Key, terr))
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err = m.client.Do(req)
		case hasCreds && spec.ChallengeAuth && strings.HasPrefix(strings.ToLower(ch), "basic"):
			resp.Body.Close()
			req.SetBasicAuth(r.Upstream.Username, r.Upstream.Password)
			resp, err = m.client.Do(req)
		}
	}
	if err != nil {
		return stale(errs.Wrap(errs.Upstream, err, "upstream of %s (%s) is unreachable: %v", r.Key, redact(u), cleanNetErr(err)))
	}
	defer resp.Body.Close()
	watchdog.Reset(r.Upstream.Timeout)

	switch {
	case resp.StatusCode == http.StatusNotModified && cached != nil:
		if err := m.store.MarkFetched(ctx, cached.ID, m.now(), cached.UpstreamETag, cached.UpstreamLastModified); err != nil {
			return nil, err
		}
		m.observe(r, OutcomeRevalidated)
		return &Asset{Asset: cached, Repo: r}, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		if cached != nil {
			// Gone upstream (unpublished, yanked, deleted): whoever pinned it
			// keeps getting it from the cache.
			m.store.MarkFetched(ctx, cached.ID, m.now(), cached.UpstreamETag, cached.UpstreamLastModified)
			m.observe(r, OutcomeStale)
			return &Asset{Asset: cached, Repo: r}, nil
		}
		m.negative.add(r, path, m.now().Add(r.NegativeTTL))
		m.observe(r, OutcomeNotFound)
		return nil, errs.New(errs.NotFound, "%s not found in %s (upstream answered %d)", path, r.Key, resp.StatusCode)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return stale(errs.New(errs.Upstream, "upstream of %s refused the configured credentials (%s)", r.Key, resp.Status))
	case resp.StatusCode != http.StatusOK:
		return stale(errs.New(errs.Upstream, "upstream of %s answered %s for %s", r.Key, resp.Status, path))
	}

	declared := checksum.Sums{}
	for alg, v := range spec.Declared {
		declared[alg] = v
	}
	for alg, h := range map[checksum.Alg]string{checksum.SHA256: "X-Checksum-Sha256", checksum.SHA1: "X-Checksum-Sha1", checksum.MD5: "X-Checksum-Md5"} {
		if v := resp.Header.Get(h); v != "" && declared[alg] == "" && alg.ValidHex(strings.ToLower(v)) {
			declared[alg] = v
		}
	}
	if spec.Expect != "" {
		declared[checksum.SHA256] = spec.Expect.Encoded()
	}
	body := &progressReader{r: resp.Body, onRead: func() { watchdog.Reset(r.Upstream.Timeout) }}
	var sink blob.Writer
	if spec.Stream && resp.ContentLength >= 0 {
		if bw, err := m.blobs.Create(ctx); err == nil {
			if pk, ok := bw.(blob.Peeker); ok {
				if rd, err := pk.Peek(); err == nil {
					stream = newProgress(resp.ContentLength, rd)
					sink = teeWriter{bw, stream}
					fl.stream = stream
					close(fl.ready)
				}
			}
			if sink == nil {
				sink = bw
			}
		}
	}
	w, err := m.receive(ctx, sink, body, inlineHashes(spec.Hashes, declared, resp.ContentLength))
	if err != nil {
		return stale(errs.Wrap(errs.Upstream, err, "download of %s from the upstream of %s failed: %v",
			path, r.Key, cleanNetErr(err)))
	}
	defer w.discard(ctx)
	sums := w.sums
	if resp.ContentLength >= 0 && w.Size() != resp.ContentLength {
		return stale(errs.New(errs.Upstream, "upstream of %s sent %d of %d bytes for %s", r.Key, w.Size(), resp.ContentLength, path))
	}
	if msg := checksum.Verify(declared, sums); msg != "" {
		return stale(errs.New(errs.Upstream, "content of %s from the upstream of %s failed verification (%s); not cached", path, r.Key, msg))
	}
	if _, err := m.blobs.Stat(ctx, w.Digest()); err == nil {
		if err := m.lease(ctx, w.Digest(), w.Size()); err != nil {
			return nil, err
		}
	}
	info, err := w.commit(ctx)
	if err != nil {
		return nil, err
	}
	a := &meta.Asset{
		RepoID:               r.ID,
		Path:                 path,
		Blob:                 info.Digest.String(),
		Size:                 info.Size,
		ContentType:          resp.Header.Get("Content-Type"),
		SHA1:                 sums[checksum.SHA1],
		MD5:                  sums[checksum.MD5],
		SHA512:               sums[checksum.SHA512],
		CreatedBy:            auth.PrincipalFrom(ctx).Name(),
		FetchedAt:            m.now(),
		UpstreamETag:         resp.Header.Get("ETag"),
		UpstreamLastModified: resp.Header.Get("Last-Modified"),
	}
	if cached != nil {
		a.ID, a.CreatedAt = cached.ID, cached.CreatedAt
	}
	err = m.inTxOwnBytes(ctx, a.Blob, func(tx meta.Tx) error {
		if c := spec.Component; c != nil {
			comp := &meta.Component{RepoID: r.ID, Name: c.Name, Version: c.Version, Attributes: c.Attributes,
				CreatedBy: a.CreatedBy}
			if err := tx.PutComponent(ctx, comp); err != nil {
				return err
			}
			a.ComponentID = comp.ID
		}
		if err := tx.PutBlob(ctx, a.Blob, a.Size); err != nil {
			return err
		}
		if err := tx.PutAsset(ctx, a); err != nil {
			return err
		}
		return m.audit(ctx, tx, "cache", r.Key, path, map[string]any{"digest": a.Blob, "size": a.Size, "upstream": redact(u)})
	})
	if err != nil {
		return nil, err
	}
	committed = true
	m.negative.forget(r, path)
	if spec.Hashes == nil && missingGeneric(a) {
		m.checksums.need(info.Digest)
	}
	if spec.Component != nil {
		m.Bump(r.ID, spec.Component.Name)
	}
	m.observe(r, OutcomeFetched)
	return &Asset{Asset: a, Repo: r}, nil
}

type progressReader struct {
	r      io.Reader
	onRead func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.onRead()
	}
	return n, err
}

func redact(u string) string {
	if pu, err := url.Parse(u); err == nil {
		return pu.Redacted()
	}
	return u
}

// cleanNetErr turns "context canceled" from the watchdog into "timed out".
func cleanNetErr(err error) string {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// teeWriter also tells a stream's progress what was written.
type teeWriter struct {
	blob.Writer
	p *progress
}

func (t teeWriter) Write(b []byte) (int, error) {
	n, err := t.Writer.Write(b)
	t.p.Write(b[:n])
	return n, err
}

// CacheAlias records, in a remote repository's cache, content it already
// holds under another path (an OCI manifest fetched by tag is also its
// digest's content), so that the alias is served from the cache too.
func (m *Manager) CacheAlias(ctx context.Context, r *Repository, path string, src *meta.Asset) error {
	if r.Kind != Remote {
		return fmt.Errorf("CacheAlias on %s repository %s", r.Kind, r.Key)
	}
	if _, err := m.store.GetAsset(ctx, r.ID, path); err == nil {
		return nil
	}
	a := &meta.Asset{RepoID: r.ID, Path: path, Blob: src.Blob, Size: src.Size, ContentType: src.ContentType,
		SHA1: src.SHA1, MD5: src.MD5, SHA512: src.SHA512, CreatedBy: src.CreatedBy, FetchedAt: m.now()}
	err := m.store.InTx(ctx, func(tx meta.Tx) error {
		// Lease the blob in the same transaction (it may be being collected).
		if err := tx.PutBlob(ctx, a.Blob, a.Size); err != nil {
			return err
		}
		return tx.PutAsset(ctx, a)
	})
	if errs.KindOf(err) == errs.Exists || errs.KindOf(err) == errs.Unavailable {
		return nil // a concurrent alias, or content on its way out: nothing to record
	}
	return err
}
