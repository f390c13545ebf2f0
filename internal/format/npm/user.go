package npm

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/auth"
	"github.com/cofferhq/coffer/internal/errs"
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/repo"
)

// whoami serves GET /-/whoami.
func (h *handler) whoami(w http.ResponseWriter, r *http.Request) error {
	p := auth.PrincipalFrom(r.Context())
	if p.IsAnonymous() {
		return errs.New(errs.Unauthenticated, "not logged in: run npm login, or set _authToken for this registry in .npmrc")
	}
	writeJSON(w, r, http.StatusOK, map[string]string{"username": p.User.Name})
	return nil
}

// login serves npm login / npm adduser: PUT /-/user/org.couchdb.user:<name>
// with the CouchDB user document. Coffer does not create accounts this
// way: an existing user's password is checked and an API token created,
// which npm stores as _authToken.
func (h *handler) login(w http.ResponseWriter, r *http.Request, t *format.Target, name string) error {
	var doc struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if err := readJSON(r, 64<<10, &doc); err != nil {
		return err
	}
	if doc.Name != name {
		return errs.New(errs.Invalid, "the user document's name (%q) is not the user in the URL (%q)", doc.Name, name)
	}
	if doc.Password == "" {
		return errs.New(errs.Invalid, "a password is required")
	}
	if strings.HasPrefix(doc.Password, auth.TokenPrefix) {
		// A token (perhaps scoped) must not be exchanged for an unscoped one.
		return errs.New(errs.Unauthenticated, "npm login takes the user's password, not an API token; put a token in .npmrc as _authToken instead")
	}
	ctx := r.Context()
	p, err := h.d.Auth.Login(ctx, name, doc.Password)
	if err != nil {
		if errs.KindOf(err) == errs.Unauthenticated {
			return errs.Wrap(errs.Unauthenticated, err,
				"wrong user name or password (npm adduser does not create accounts on Coffer: an administrator does)")
		}
		return err
	}
	tok, err := h.d.Auth.CreateToken(ctx, p.User, "npm login",
		"created by npm login on repository "+t.Repo.Key+" at "+time.Now().UTC().Format(time.RFC3339), nil, 0)
	if err != nil {
		return err
	}
	detail, _ := json.Marshal(map[string]string{"token_id": tok.Token.ID, "via": "npm login"})
	if err := h.d.Repos.Store().AddAudit(ctx, &meta.AuditEvent{Actor: p.User.Name, Action: "token.create",
		Repo: t.Repo.Key, Detail: string(detail)}); err != nil {
		return err
	}
	writeJSON(w, r, http.StatusCreated, map[string]any{
		"ok": true, "id": "org.couchdb.user:" + name, "rev": "1-" + tok.Token.ID, "token": tok.Secret,
	})
	return nil
}

// logout serves npm logout: DELETE /-/user/token/<token> revokes the token
// the caller authenticated with (or another of the caller's tokens).
func (h *handler) logout(w http.ResponseWriter, r *http.Request, secret string) error {
	ctx := r.Context()
	p := auth.PrincipalFrom(ctx)
	if p.IsAnonymous() {
		return errs.New(errs.Unauthenticated, "authentication required to log out")
	}
	tok, err := h.d.Repos.Store().GetTokenByHash(ctx, auth.HashToken(secret))
	if err != nil || tok.UserID != p.User.ID {
		return notFound(errs.NotFound, "no such token of user %s", p.User.Name)
	}
	if err := h.d.Repos.Store().DeleteToken(ctx, tok.ID); err != nil {
		return err
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"ok": true})
	return nil
}

// Search limits.
const (
	maxSearchSize  = 250
	maxSearchNames = 20000 // names scanned per repository
)

type searchHit struct {
	name  string
	p     *pkg
	score float64
}

// search serves GET /-/v1/search?text=&size=&from= over the packages of
// the local repositories behind the addressed one (a remote repository's
// upstream is not searched: its own registry's search is for that).
// Every word of the text must match the name, description or keywords;
// "keywords:x", "scope:x" and "author:x" qualify a word.
func (h *handler) search(w http.ResponseWriter, r *http.Request, t *format.Target) error {
	ctx := r.Context()
	q := r.URL.Query()
	size, _ := strconv.Atoi(q.Get("size"))
	if size <= 0 {
		size = 20
	}
	size = min(size, maxSearchSize)
	from, _ := strconv.Atoi(q.Get("from"))
	from = max(from, 0)
	terms := strings.Fields(strings.ToLower(q.Get("text")))

	var locals []*repo.Repository
	switch t.Repo.Kind {
	case repo.Local:
		locals = []*repo.Repository{t.Repo}
	case repo.Virtual:
		locals, _ = h.d.Repos.Split(t.Repo)
	}
	seen := map[string]bool{}
	var hits []searchHit
	for _, l := range locals {
		after := ""
		for scanned := 0; scanned < maxSearchNames; {
			names, err := h.d.Repos.Store().ListComponentNames(ctx, l.ID, meta.NameQuery{After: after, Limit: 1000})
			if err != nil {
				return err
			}
			if len(names) == 0 {
				break
			}
			scanned += len(names)
			after = names[len(names)-1]
			for _, name := range names {
				if seen[name] {
					continue
				}
				s, err := h.localPkg(ctx, l, name)
				if err != nil {
					return err
				}
				if s.pkg == nil {
					continue
				}
				seen[name] = true
				if score, ok := matches(s.pkg, terms); ok {
					hits = append(hits, searchHit{name, s.pkg, score})
				}
			}
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].score != hits[j].score {
			return hits[i].score > hits[j].score
		}
		return hits[i].name < hits[j].name
	})
	total := len(hits)
	if from > len(hits) {
		from = len(hits)
	}
	hits = hits[from:min(from+size, len(hits))]
	objects := make([]any, 0, len(hits))
	base := h.repoURL(t.Repo)
	for _, hit := range hits {
		objects = append(objects, searchObject(hit, base))
	}
	writeJSON(w, r, http.StatusOK, map[string]any{
		"objects": objects, "total": total, "time": time.Now().UTC().Format(time.RFC1123),
	})
	return nil
}

// matches scores a package against the search words.
func matches(p *pkg, terms []string) (float64, bool) {
	desc := strings.ToLower(jsonString(p.top["description"]))
	keywords := keywordsOf(p)
	author := strings.ToLower(string(p.top["author"]) + " " + string(p.top["maintainers"]))
	score := 1.0
	for _, term := range terms {
		qual, word, ok := strings.Cut(term, ":")
		if !ok {
			qual, word = "", term
		}
		switch qual {
		case "keywords":
			found := false
			for _, k := range strings.Split(word, ",") {
				for _, kw := range keywords {
					if kw == k {
						found = true
					}
				}
			}
			if !found {
				return 0, false
			}
		case "scope":
			if !strings.HasPrefix(p.name, "@"+strings.TrimPrefix(word, "@")+"/") {
				return 0, false
			}
		case "author", "maintainer":
			if !strings.Contains(author, word) {
				return 0, false
			}
		default:
			name := strings.ToLower(p.name)
			switch {
			case name == term || baseName(name) == term:
				score += 10
			case strings.Contains(name, term):
				score += 5
			case strings.Contains(desc, term):
				score += 1
			default:
				found := false
				for _, kw := range keywords {
					if strings.Contains(kw, term) {
						found = true
					}
				}
				if !found {
					return 0, false
				}
				score += 2
			}
		}
	}
	return score, true
}

func keywordsOf(p *pkg) []string {
	var kws []string
	if json.Unmarshal(p.top["keywords"], &kws) != nil {
		var s string
		json.Unmarshal(p.top["keywords"], &s)
		kws = strings.Fields(strings.ReplaceAll(s, ",", " "))
	}
	for i := range kws {
		kws[i] = strings.ToLower(kws[i])
	}
	return kws
}

// searchObject is one result in the shape npm search reads.
func searchObject(hit searchHit, base string) map[string]any {
	p := hit.p
	latest := p.tags["latest"]
	scope := "unscoped"
	if strings.HasPrefix(p.name, "@") {
		scope = strings.TrimPrefix(p.name[:strings.IndexByte(p.name, '/')], "@")
	}
	type person struct {
		Username string `json:"username"`
		Email    string `json:"email,omitempty"`
	}
	var raw []struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	json.Unmarshal(p.top["maintainers"], &raw)
	maintainers := []person{}
	for _, m := range raw {
		maintainers = append(maintainers, person{m.Name, m.Email})
	}
	pk := map[string]any{
		"name":        p.name,
		"scope":       scope,
		"version":     latest,
		"description": jsonString(p.top["description"]),
		"keywords":    keywordsOf(p),
		"date":        p.times[latest],
		"links":       map[string]string{"npm": base + escapeName(p.name)},
		"maintainers": maintainers,
	}
	if v := p.versions[latest]; v != nil {
		var u struct {
			Name  string `json:"name"`
			Email string `json:"email"`
		}
		if json.Unmarshal(v.manifest["_npmUser"], &u) == nil && u.Name != "" {
			pk["publisher"] = person{u.Name, u.Email}
		}
	}
	return map[string]any{
		"package":     pk,
		"score":       map[string]any{"final": hit.score, "detail": map[string]float64{"quality": 1, "popularity": 1, "maintenance": 1}},
		"searchScore": hit.score,
		"flags":       map[string]any{},
	}
}
