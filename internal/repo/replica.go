package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
)

// Replication works on a repository's metadata rows, whatever its format:
// a source sends the whole state of a local repository (every file, package
// version, tag, link and deprecation), the target answers which blobs it
// lacks, the source uploads those, and the target makes its repository
// equal to the state in one transaction. See docs/replication.md.

// ReplicaState is everything a local repository holds, in a stable order.
type ReplicaState struct {
	Repository string             `json:"repository"`
	Format     string             `json:"format"`
	Components []ReplicaComponent `json:"components"`
	Assets     []ReplicaAsset     `json:"assets"`
	Tags       []ReplicaTag       `json:"tags"`
	Links      []ReplicaLink      `json:"links"`
}

// ReplicaComponent is a package version.
type ReplicaComponent struct {
	Name               string          `json:"name"`
	Version            string          `json:"version"`
	Attributes         json.RawMessage `json:"attributes,omitempty"`
	Deprecated         bool            `json:"deprecated,omitempty"`
	DeprecationMessage string          `json:"deprecation_message,omitempty"`
	CreatedAt          time.Time       `json:"created_at"`
	CreatedBy          string          `json:"created_by,omitempty"`
}

// ReplicaAsset is a file.
type ReplicaAsset struct {
	Path               string          `json:"path"`
	Blob               string          `json:"blob"`
	Size               int64           `json:"size"`
	ContentType        string          `json:"content_type,omitempty"`
	SHA1               string          `json:"sha1,omitempty"`
	MD5                string          `json:"md5,omitempty"`
	SHA512             string          `json:"sha512,omitempty"`
	Deprecated         bool            `json:"deprecated,omitempty"`
	DeprecationMessage string          `json:"deprecation_message,omitempty"`
	Component          *ComponentKey   `json:"component,omitempty"`
	Attributes         json.RawMessage `json:"attributes,omitempty"`
	CreatedAt          time.Time       `json:"created_at"`
	CreatedBy          string          `json:"created_by,omitempty"`
}

// ComponentKey names a package version.
type ComponentKey struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ReplicaTag is a tag.
type ReplicaTag struct {
	Name   string `json:"name"`
	Tag    string `json:"tag"`
	Target string `json:"target"`
}

// ReplicaLink is an edge between two names' contents (OCI blob, manifest
// and subject links).
type ReplicaLink struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Target string `json:"target"`
	Kind   string `json:"kind"`
}

// ReplicaResult is a target's answer to a state.
type ReplicaResult struct {
	Missing []string `json:"missing,omitempty"` // blobs to upload before the state can be applied
	Changed int      `json:"changed"`           // rows written or removed
}

func localRepo(m *Manager, key string) (*Repository, error) {
	r, err := m.Repo(key)
	if err != nil {
		return nil, err
	}
	if r.Kind != Local {
		return nil, errs.New(errs.Invalid, "repository %s is %s; only local repositories replicate", key, r.Kind)
	}
	return r, nil
}

// ReplicaState reads the whole state of local repository key.
func (m *Manager) ReplicaState(ctx context.Context, key string) (*ReplicaState, error) {
	r, err := localRepo(m, key)
	if err != nil {
		return nil, err
	}
	st := &ReplicaState{Repository: r.Key, Format: r.Format}
	byID := map[string]*ComponentKey{}
	after := ""
	for {
		names, err := m.store.ListComponentNames(ctx, r.ID, meta.NameQuery{After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			cs, err := m.store.ListComponents(ctx, r.ID, name)
			if err != nil {
				return nil, err
			}
			for _, c := range cs {
				byID[c.ID] = &ComponentKey{Name: c.Name, Version: c.Version}
				st.Components = append(st.Components, ReplicaComponent{Name: c.Name, Version: c.Version,
					Attributes: rawJSON(c.Attributes), Deprecated: c.Deprecated, DeprecationMessage: c.DeprecationMessage,
					CreatedAt: c.CreatedAt.UTC(), CreatedBy: c.CreatedBy})
			}
		}
		if len(names) < 1000 {
			break
		}
		after = names[len(names)-1]
	}
	after = ""
	for {
		as, err := m.store.ListAssets(ctx, r.ID, meta.AssetQuery{After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			st.Assets = append(st.Assets, ReplicaAsset{Path: a.Path, Blob: a.Blob, Size: a.Size, ContentType: a.ContentType,
				SHA1: a.SHA1, MD5: a.MD5, SHA512: a.SHA512, Deprecated: a.Deprecated, DeprecationMessage: a.DeprecationMessage,
				Component: byID[a.ComponentID], Attributes: rawJSON(a.Attributes), CreatedAt: a.CreatedAt.UTC(), CreatedBy: a.CreatedBy})
		}
		if len(as) < 1000 {
			break
		}
		after = as[len(as)-1].Path
	}
	tags, err := m.store.ListTags(ctx, r.ID, "")
	if err != nil {
		return nil, err
	}
	for _, t := range tags {
		st.Tags = append(st.Tags, ReplicaTag{Name: t.Name, Tag: t.Tag, Target: t.Target})
	}
	links, err := m.store.ListRepoLinks(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		st.Links = append(st.Links, ReplicaLink{Name: l.Name, Source: l.Source, Target: l.Target, Kind: l.Kind})
	}
	sortState(st)
	return st, nil
}

func rawJSON(b []byte) json.RawMessage {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "{}" || string(b) == "null" {
		return nil
	}
	return json.RawMessage(b)
}

func sortState(st *ReplicaState) {
	sort.Slice(st.Components, func(i, j int) bool {
		a, b := st.Components[i], st.Components[j]
		return a.Name < b.Name || a.Name == b.Name && a.Version < b.Version
	})
	sort.Slice(st.Assets, func(i, j int) bool { return st.Assets[i].Path < st.Assets[j].Path })
	sort.Slice(st.Tags, func(i, j int) bool {
		a, b := st.Tags[i], st.Tags[j]
		return a.Name < b.Name || a.Name == b.Name && a.Tag < b.Tag
	})
	sort.Slice(st.Links, func(i, j int) bool {
		a, b := st.Links[i], st.Links[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Target < b.Target
	})
}

// ApplyReplica makes local repository key equal to st. With dry, or when
// blobs are missing, it changes nothing and lists the blobs to upload
// (ReceiveBlob) first. Replication mirrors: the target's tier rules do not
// apply (a replica of a release repository must follow the source's
// deprecations), so only administrators may call it.
func (m *Manager) ApplyReplica(ctx context.Context, key string, st *ReplicaState, dry bool) (ReplicaResult, error) {
	var res ReplicaResult
	r, err := localRepo(m, key)
	if err != nil {
		return res, err
	}
	if st.Format != r.Format {
		return res, errs.New(errs.Invalid, "replica state of a %s repository cannot be applied to %s, a %s repository", st.Format, key, r.Format)
	}
	seen := map[string]bool{}
	for _, a := range st.Assets {
		if seen[a.Blob] {
			continue
		}
		seen[a.Blob] = true
		if !blob.ValidDigest(digest.Digest(a.Blob)) {
			return res, errs.New(errs.Invalid, "asset %s: %q is not a sha256 digest", a.Path, a.Blob)
		}
		// Lease the blob while checking for it, so that collection does
		// not take it between this answer and the apply.
		b, err := m.store.GetBlob(ctx, a.Blob)
		if err == nil && b.State == "live" {
			if _, serr := m.blobs.Stat(ctx, digest.Digest(a.Blob)); serr == nil {
				if err := m.store.PutBlob(ctx, a.Blob, b.Size); err == nil {
					continue
				}
			}
		} else if err != nil && !errors.Is(err, errs.NotFound) {
			return res, err
		}
		res.Missing = append(res.Missing, a.Blob)
	}
	if dry || len(res.Missing) > 0 {
		return res, nil
	}
	err = m.store.InTx(ctx, func(tx meta.Tx) error {
		res.Changed = 0
		comps, err := allComponents(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		want := map[ComponentKey]bool{}
		for _, c := range st.Components {
			k := ComponentKey{c.Name, c.Version}
			want[k] = true
			old := comps[k]
			if old != nil && bytes.Equal(rawJSON(old.Attributes), c.Attributes) && old.Deprecated == c.Deprecated &&
				old.DeprecationMessage == c.DeprecationMessage {
				continue
			}
			nc := &meta.Component{RepoID: r.ID, Name: c.Name, Version: c.Version, Attributes: orEmpty(c.Attributes),
				CreatedAt: c.CreatedAt, CreatedBy: c.CreatedBy}
			if err := tx.PutComponent(ctx, nc); err != nil {
				return err
			}
			if old == nil || old.Deprecated != c.Deprecated || old.DeprecationMessage != c.DeprecationMessage {
				if err := tx.SetComponentDeprecation(ctx, nc.ID, c.Deprecated, c.DeprecationMessage); err != nil {
					return err
				}
			}
			comps[k] = nc
			res.Changed++
		}
		// Assets.
		existing := map[string]*meta.Asset{}
		after := ""
		for {
			as, err := tx.ListAssets(ctx, r.ID, meta.AssetQuery{After: after, Limit: 1000})
			if err != nil {
				return err
			}
			for _, a := range as {
				existing[a.Path] = a
			}
			if len(as) < 1000 {
				break
			}
			after = as[len(as)-1].Path
		}
		paths := map[string]bool{}
		for _, a := range st.Assets {
			paths[a.Path] = true
			compID := ""
			if a.Component != nil {
				c := comps[*a.Component]
				if c == nil {
					return errs.New(errs.Invalid, "asset %s belongs to %s@%s, which the state does not list", a.Path, a.Component.Name, a.Component.Version)
				}
				compID = c.ID
			}
			old := existing[a.Path]
			if old != nil && old.Blob == a.Blob && old.ComponentID == compID && bytes.Equal(rawJSON(old.Attributes), a.Attributes) &&
				old.Deprecated == a.Deprecated && old.DeprecationMessage == a.DeprecationMessage && old.ContentType == a.ContentType {
				continue
			}
			na := &meta.Asset{RepoID: r.ID, Path: a.Path, Blob: a.Blob, Size: a.Size, ContentType: a.ContentType,
				SHA1: a.SHA1, MD5: a.MD5, SHA512: a.SHA512, Deprecated: a.Deprecated, DeprecationMessage: a.DeprecationMessage,
				ComponentID: compID, Attributes: orEmpty(a.Attributes), CreatedAt: a.CreatedAt, CreatedBy: a.CreatedBy}
			if err := tx.PutAsset(ctx, na); err != nil {
				return err
			}
			res.Changed++
		}
		for p := range existing {
			if !paths[p] {
				if err := tx.DeleteAsset(ctx, r.ID, p); err != nil {
					return err
				}
				res.Changed++
			}
		}
		for k, c := range comps {
			if !want[k] {
				if err := tx.DeleteComponent(ctx, c.ID); err != nil {
					return err
				}
				res.Changed++
			}
		}
		// Tags.
		tags, err := tx.ListTags(ctx, r.ID, "")
		if err != nil {
			return err
		}
		oldTags := map[[2]string]string{}
		for _, t := range tags {
			oldTags[[2]string{t.Name, t.Tag}] = t.Target
		}
		for _, t := range st.Tags {
			k := [2]string{t.Name, t.Tag}
			if target, ok := oldTags[k]; !ok || target != t.Target {
				if err := tx.SetTag(ctx, &meta.Tag{RepoID: r.ID, Name: t.Name, Tag: t.Tag, Target: t.Target}); err != nil {
					return err
				}
				res.Changed++
			}
			delete(oldTags, k)
		}
		for k := range oldTags {
			if err := tx.DeleteTag(ctx, r.ID, k[0], k[1]); err != nil {
				return err
			}
			res.Changed++
		}
		// Links: each (name, source) group is replaced when it differs.
		links, err := tx.ListRepoLinks(ctx, r.ID)
		if err != nil {
			return err
		}
		group := func(ls []meta.Link) map[[2]string][]meta.Link {
			g := map[[2]string][]meta.Link{}
			for _, l := range ls {
				k := [2]string{l.Name, l.Source}
				g[k] = append(g[k], l)
			}
			return g
		}
		var wantLinks []meta.Link
		for _, l := range st.Links {
			wantLinks = append(wantLinks, meta.Link{RepoID: r.ID, Name: l.Name, Source: l.Source, Target: l.Target, Kind: l.Kind})
		}
		have, wantG := group(links), group(wantLinks)
		for k, ls := range wantG {
			if sameLinks(have[k], ls) {
				continue
			}
			if err := tx.DeleteLinksFrom(ctx, r.ID, k[0], k[1]); err != nil {
				return err
			}
			if err := tx.PutLinks(ctx, ls); err != nil {
				return err
			}
			res.Changed++
		}
		for k := range have {
			if _, ok := wantG[k]; !ok {
				if err := tx.DeleteLinksFrom(ctx, r.ID, k[0], k[1]); err != nil {
					return err
				}
				res.Changed++
			}
		}
		if res.Changed == 0 {
			return nil
		}
		return m.audit(ctx, tx, "replicate", r.Key, "", map[string]int{"changed": res.Changed, "assets": len(st.Assets)})
	})
	if err != nil {
		return res, err
	}
	if res.Changed > 0 {
		m.bumpRepo(r.ID)
	}
	return res, nil
}

func orEmpty(b json.RawMessage) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}

func sameLinks(a, b []meta.Link) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(l meta.Link) string { return l.Kind + "\x00" + l.Target }
	m := map[string]int{}
	for _, l := range a {
		m[key(l)]++
	}
	for _, l := range b {
		if m[key(l)] == 0 {
			return false
		}
		m[key(l)]--
	}
	return true
}

func allComponents(ctx context.Context, tx meta.Tx, repoID string) (map[ComponentKey]*meta.Component, error) {
	out := map[ComponentKey]*meta.Component{}
	after := ""
	for {
		names, err := tx.ListComponentNames(ctx, repoID, meta.NameQuery{After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			cs, err := tx.ListComponents(ctx, repoID, n)
			if err != nil {
				return nil, err
			}
			for _, c := range cs {
				out[ComponentKey{c.Name, c.Version}] = c
			}
		}
		if len(names) < 1000 {
			return out, nil
		}
		after = names[len(names)-1]
	}
}

// ReceiveBlob stores a blob of size bytes sent by a replication source,
// verified against d. The blob is leased first (so that collection leaves
// it alone, or finishes with an older copy before this one is written)
// and stays leased until a state that references it is applied.
func (m *Manager) ReceiveBlob(ctx context.Context, d digest.Digest, size int64, body io.Reader) error {
	if !blob.ValidDigest(d) {
		return errs.New(errs.Invalid, "%q is not a sha256 digest", d)
	}
	if err := m.lease(ctx, d, size); err != nil {
		return err
	}
	w, err := m.blobs.Create(ctx)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, io.LimitReader(body, size+1)); err != nil {
		w.Cancel(ctx)
		return fmt.Errorf("receive blob %s: %w", d, err)
	}
	if w.Size() != size {
		w.Cancel(ctx)
		return errs.New(errs.Invalid, "blob %s: received %d bytes, announced %d", d, w.Size(), size)
	}
	_, err = w.Commit(ctx, d)
	return err
}

// OpenBlob opens a stored blob by digest (the replication source's side).
func (m *Manager) OpenBlob(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, error) {
	return m.blobs.Open(ctx, d)
}
