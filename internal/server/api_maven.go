package server

import (
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

// searchMaven finds Maven components (groupId:artifactId:version) in the
// maven repositories the caller may read: g (groupId, exact, or a prefix
// ending in '*'), a (artifactId, exact), v (version, exact), repo=a,b. At
// least one of g, a, v is required. Maven components are named
// "groupId:artifactId" (the maven format's convention).
func (a *api) searchMaven(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	g, art, v := strings.TrimSpace(q.Get("g")), strings.TrimSpace(q.Get("a")), strings.TrimSpace(q.Get("v"))
	if g == "" && art == "" && v == "" {
		return errs.New(errs.Invalid, "give at least one of g (groupId), a (artifactId), v (version)")
	}
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, k := range strings.Split(q.Get("repo"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			want[k] = true
		}
	}
	type file struct {
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
		URI    string `json:"download_uri"`
	}
	type item struct {
		Repo       string `json:"repo"`
		GroupID    string `json:"group_id"`
		ArtifactID string `json:"artifact_id"`
		Version    string `json:"version"`
		Deprecated bool   `json:"deprecated,omitempty"`
		Files      []file `json:"files"`
	}
	items := []item{}
	ctx := r.Context()
	prefix, exact := "", ""
	switch {
	case g != "" && art != "" && !strings.HasSuffix(g, "*"):
		exact = g + ":" + art
	case strings.HasSuffix(g, "*"):
		prefix = strings.TrimSuffix(g, "*")
	case g != "":
		prefix = g + ":"
	}
	for _, rp := range a.repos.List() {
		if rp.Format != "maven" || rp.Kind == repo.Virtual || len(want) > 0 && !want[rp.Key] ||
			!a.auth.Can(ctx, principal(r), auth.Read, rp.Key) {
			continue
		}
		var names []string
		if exact != "" {
			names = []string{exact}
		} else {
			after := ""
			for len(names) < 10000 {
				ns, err := a.store.ListComponentNames(ctx, rp.ID, meta.NameQuery{Prefix: prefix, After: after, Limit: 1000})
				if err != nil {
					return err
				}
				names = append(names, ns...)
				if len(ns) < 1000 {
					break
				}
				after = ns[len(ns)-1]
			}
		}
		for _, n := range names {
			gid, aid, ok := strings.Cut(n, ":")
			if !ok || art != "" && aid != art {
				continue
			}
			cs, err := a.store.ListComponents(ctx, rp.ID, n)
			if err != nil && !errors.Is(err, errs.NotFound) {
				return err
			}
			for _, c := range cs {
				if v != "" && c.Version != v {
					continue
				}
				as, err := a.store.ListComponentAssets(ctx, c.ID)
				if err != nil {
					return err
				}
				if len(as) == 0 {
					continue // every file was deleted
				}
				it := item{Repo: rp.Key, GroupID: gid, ArtifactID: aid, Version: c.Version, Deprecated: c.Deprecated, Files: []file{}}
				for _, f := range as {
					it.Files = append(it.Files, file{Path: f.Path, Size: f.Size, SHA256: strings.TrimPrefix(f.Blob, "sha256:"),
						URI: a.s.deps.BaseURL + "/repository/" + rp.Key + "/" + repo.EscapePath(f.Path)})
				}
				items = append(items, it)
				if len(items) >= limit {
					break
				}
			}
			if len(items) >= limit {
				break
			}
		}
		if len(items) >= limit {
			break
		}
	}
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].GroupID+":"+items[i].ArtifactID != items[j].GroupID+":"+items[j].ArtifactID {
			return items[i].GroupID+":"+items[i].ArtifactID < items[j].GroupID+":"+items[j].ArtifactID
		}
		return items[i].Repo < items[j].Repo
	})
	return writeJSON(w, http.StatusOK, map[string]any{"items": items})
}
