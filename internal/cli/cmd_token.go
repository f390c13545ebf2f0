package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cofferhq/coffer/internal/auth"
)

type scopeView struct {
	Repos   string   `json:"repos"`
	Tiers   []string `json:"tiers,omitempty"`
	Actions []string `json:"actions"`
}

type tokenView struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	User        string      `json:"user"`
	Scopes      []scopeView `json:"scopes"`
	ExpiresAt   string      `json:"expires_at"`
	CreatedAt   string      `json:"created_at"`
	LastUsedAt  string      `json:"last_used_at"`
	Token       string      `json:"token"`
}

// formatScopes writes scopes as "read on *; write on * (staging)".
func formatScopes(scopes []scopeView) string {
	if len(scopes) == 0 {
		return "all of the user's rights"
	}
	parts := make([]string, len(scopes))
	for i, s := range scopes {
		parts[i] = strings.Join(s.Actions, ",") + " on " + s.Repos
		if len(s.Tiers) > 0 {
			parts[i] += " (" + strings.Join(s.Tiers, ",") + ")"
		}
	}
	return strings.Join(parts, "; ")
}

func (g *globals) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke API tokens"}
	cmd.AddCommand(g.tokenCreateCmd(), g.tokenListCmd(), g.tokenRevokeCmd())
	return cmd
}

func (g *globals) tokenCreateCmd() *cobra.Command {
	var name, description, preset, repos, actions, tiers, expires, forUser string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an API token and print its secret (shown once)",
		Long: `Create an API token. Without a preset or scope it acts with all of its user's
rights; a preset (ci: read everything, write staging; promote: promote into
release; pull: read release only) or --repos/--actions/--tiers narrow it.

In text output the secret alone is printed on standard output (details go to
standard error), so that TOKEN=$(coffer token create ...) works; json output
includes it as "token". It cannot be shown again.`,
		Example: `  coffer token create --name ci-main --preset ci --expires 90d --for-user ci-bot
  coffer token create --name deploy --repos 'raw-release*' --actions read --tiers release`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "token name (default: the preset, else \"token\")")
	f.StringVar(&description, "description", "", "what the token is for")
	f.StringVar(&preset, "preset", "", "scope preset: "+strings.Join(auth.PresetNames(), ", "))
	f.StringVar(&repos, "repos", "", "scope the token to repositories matching this pattern (comma-separated globs)")
	f.StringVar(&actions, "actions", "", "actions of the scope: read, write, overwrite, delete, promote, admin")
	f.StringVar(&tiers, "tiers", "", "limit the scope to repositories of these tiers: dev, staging, release")
	f.StringVar(&expires, "expires", "", "lifetime, like 720h or 30d (default: never expires)")
	f.StringVar(&forUser, "for-user", "", "create the token for another user (administrators)")
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		body := map[string]any{"name": name, "description": description}
		if preset != "" {
			if repos != "" || actions != "" || tiers != "" {
				return errors.New("give --preset or --repos/--actions/--tiers, not both")
			}
			body["preset"] = preset
		}
		if actions != "" {
			acts, err := auth.ParseActions(actions)
			if err != nil {
				return err
			}
			if repos == "" {
				repos = "*"
			}
			if err := auth.ValidPattern(repos); err != nil {
				return err
			}
			sc := map[string]any{"repos": repos, "actions": acts}
			if ts := splitList(tiers); len(ts) > 0 {
				for _, t := range ts {
					if t != "dev" && t != "staging" && t != "release" {
						return fmt.Errorf("tier %q is not one of dev, staging, release", t)
					}
				}
				sc["tiers"] = ts
			}
			body["scopes"] = []any{sc}
		} else if repos != "" || tiers != "" {
			return errors.New("--repos and --tiers need --actions")
		}
		if expires != "" {
			body["expires_in"] = expires
		}
		if forUser != "" {
			body["user"] = forUser
		}
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var t tokenView
		raw, err := c.JSON(ctx, http.MethodPost, apiPath("tokens"), nil, body, &t)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		if t.Token == "" {
			return errors.New("the server did not return the token's secret")
		}
		expiry := "never expires"
		if t.ExpiresAt != "" {
			expiry = "expires " + t.ExpiresAt
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "Created token %s (id %s) for %s; %s; scopes: %s.\nThe secret below is shown once: store it now.\n",
			t.Name, t.ID, t.User, expiry, formatScopes(t.Scopes))
		fmt.Fprintln(cmd.OutOrStdout(), t.Token)
		return nil
	})
	return cmd
}

func (g *globals) tokenListCmd() *cobra.Command {
	var all bool
	var user string
	cmd := &cobra.Command{Use: "list", Aliases: []string{"ls"}, Short: "List your API tokens (--all: everyone's, administrators)", Args: cobra.NoArgs}
	cmd.Flags().BoolVar(&all, "all", false, "list every user's tokens (administrators)")
	cmd.Flags().StringVar(&user, "of-user", "", "list this user's tokens (administrators)")
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		q := url.Values{}
		if all {
			q.Set("all", "true")
		}
		if user != "" {
			q.Set("user", user)
		}
		var list []tokenView
		raw, err := c.JSON(ctx, http.MethodGet, apiPath("tokens"), q, nil, &list)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		rows := [][]string{}
		for _, t := range list {
			rows = append(rows, []string{t.ID, t.Name, t.User, formatScopes(t.Scopes), orDash(t.ExpiresAt), orDash(t.LastUsedAt)})
		}
		return table(cmd.OutOrStdout(), []string{"ID", "NAME", "USER", "SCOPES", "EXPIRES", "LAST USED"}, rows)
	})
	return cmd
}

func (g *globals) tokenRevokeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "revoke ID", Short: "Revoke an API token", Args: cobra.ExactArgs(1)}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		return g.simpleDelete(ctx, cmd, apiPath("tokens", args[0]), "Revoked token "+args[0]+".", map[string]any{"id": args[0], "revoked": true})
	})
	return cmd
}
