package repo

import (
	"context"
	"errors"
	"strings"

	"github.com/cofferhq/coffer/internal/errs"
)

// Members returns the repositories a virtual repository resolves through,
// nested virtual repositories expanded, in declared order, each once.
func (m *Manager) Members(v *Repository) []*Repository { return m.members(v) }

func (m *Manager) members(v *Repository) []*Repository {
	var out []*Repository
	seen := map[string]bool{v.Key: true}
	var walk func(r *Repository)
	walk = func(r *Repository) {
		for _, key := range r.Members {
			if seen[key] {
				continue
			}
			seen[key] = true
			mem, err := m.Repo(key)
			if err != nil {
				continue // validated at apply; a member deleted since is skipped
			}
			if mem.Kind == Virtual {
				walk(mem)
				continue
			}
			out = append(out, mem)
		}
	}
	walk(v)
	return out
}

// Split returns a virtual repository's local and remote members, each in
// declared order. Formats that resolve by package name use it for the
// dependency-confusion rule: a name any local member has is never taken
// from a remote member.
func (m *Manager) Split(v *Repository) (locals, remotes []*Repository) {
	for _, mem := range m.members(v) {
		if mem.Kind == Local {
			locals = append(locals, mem)
		} else {
			remotes = append(remotes, mem)
		}
	}
	return locals, remotes
}

func (m *Manager) resolveVirtual(ctx context.Context, v *Repository, path string, spec func(*Repository) FetchSpec) (*Asset, error) {
	locals, remotes := m.Split(v)
	for _, mem := range locals {
		a, err := m.store.GetAsset(ctx, mem.ID, path)
		if err == nil {
			return &Asset{Asset: a, Repo: mem}, nil
		}
		if !errors.Is(err, errs.NotFound) {
			return nil, err
		}
	}
	var upstreamErrs []string
	for _, mem := range remotes {
		a, err := m.Fetch(ctx, mem, path, spec(mem))
		if err == nil {
			return a, nil
		}
		if errors.Is(err, errs.NotFound) {
			continue
		}
		if ctx.Err() != nil {
			return nil, err
		}
		upstreamErrs = append(upstreamErrs, err.Error())
	}
	if len(upstreamErrs) > 0 {
		// An unreachable remote member is skipped, as Nexus groups do: the
		// path is not available here (a push through the virtual repository
		// checking whether a blob exists must not fail on it).
		return nil, errs.New(errs.NotFound, "%s not found in the local members of %s (and %s)", path, v.Key,
			strings.Join(upstreamErrs, "; "))
	}
	return nil, errs.New(errs.NotFound, "%s not found in %s (members: %s)", path, v.Key, strings.Join(v.Members, ", "))
}
