package auth

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Action is something a principal does to a repository.
type Action string

// The actions. They are independent: write does not imply overwrite or
// delete; admin implies everything.
const (
	Read      Action = "read"
	Write     Action = "write"
	Overwrite Action = "overwrite"
	Delete    Action = "delete"
	Promote   Action = "promote"
	Admin     Action = "admin"
)

// AllActions lists every action.
var AllActions = []Action{Read, Write, Overwrite, Delete, Promote, Admin}

// ParseActions parses "read,write" (or a list) into actions.
func ParseActions(list ...string) ([]Action, error) {
	var out []Action
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(strings.ToLower(s))
			if s == "" {
				continue
			}
			a := Action(s)
			if !slices.Contains(AllActions, a) {
				return nil, fmt.Errorf("unknown action %q (one of read, write, overwrite, delete, promote, admin)", s)
			}
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no actions given")
	}
	return out, nil
}

func joinActions(as []Action) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ",")
}

// MatchRepo reports whether key matches a comma-separated list of glob
// patterns ("docker-*,npm-release-local").
func MatchRepo(patterns, key string) bool {
	for _, p := range strings.Split(patterns, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if ok, err := path.Match(p, key); err == nil && ok {
			return true
		}
	}
	return false
}

// ValidPattern reports whether every pattern in the list is well formed.
func ValidPattern(patterns string) error {
	if strings.TrimSpace(patterns) == "" {
		return fmt.Errorf("repository pattern is empty")
	}
	for _, p := range strings.Split(patterns, ",") {
		if _, err := path.Match(strings.TrimSpace(p), ""); err != nil {
			return fmt.Errorf("bad repository pattern %q", p)
		}
	}
	return nil
}

// Scope narrows what a token may do: actions on repositories matching a
// key pattern and, when Tiers is set, only repositories of those tiers.
type Scope struct {
	Repos   string   `json:"repos"`
	Tiers   []string `json:"tiers,omitempty"`
	Actions []Action `json:"actions"`
}

// Presets are the token scopes of the seed's roles.
var Presets = map[string][]Scope{
	// CI service accounts read everything and write staging only.
	"ci": {
		{Repos: "*", Actions: []Action{Read}},
		{Repos: "*", Tiers: []string{"staging"}, Actions: []Action{Write}},
	},
	// The release pipeline promotes into release repositories.
	"promote": {
		{Repos: "*", Actions: []Action{Read}},
		{Repos: "*", Tiers: []string{"staging", "release"}, Actions: []Action{Promote}},
		{Repos: "*", Tiers: []string{"release"}, Actions: []Action{Write}},
	},
	// Production nodes pull from release repositories only.
	"pull": {
		{Repos: "*", Tiers: []string{"release"}, Actions: []Action{Read}},
	},
}

// PresetNames lists the preset names in a stable order.
func PresetNames() []string { return []string{"ci", "promote", "pull"} }
