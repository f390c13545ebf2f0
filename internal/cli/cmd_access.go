package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cofferhq/coffer/internal/auth"
)

// ---- users

type userView struct {
	Name      string   `json:"name"`
	Email     string   `json:"email"`
	Admin     bool     `json:"admin"`
	Disabled  bool     `json:"disabled"`
	Groups    []string `json:"groups"`
	CreatedAt string   `json:"created_at"`
}

func (g *globals) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users (administrators)"}
	cmd.AddCommand(g.userListCmd(), g.userCreateCmd(), g.userDeleteCmd(), g.userPasswdCmd())
	return cmd
}

func (g *globals) userListCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Aliases: []string{"ls"}, Short: "List users", Args: cobra.NoArgs}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var list []userView
		raw, err := c.JSON(ctx, http.MethodGet, apiPath("users"), nil, nil, &list)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		rows := [][]string{}
		for _, u := range list {
			rows = append(rows, []string{u.Name, yesNo(u.Admin), yesNo(u.Disabled), orDash(u.Email), orDash(strings.Join(u.Groups, ",")), u.CreatedAt})
		}
		return table(cmd.OutOrStdout(), []string{"NAME", "ADMIN", "DISABLED", "EMAIL", "GROUPS", "CREATED"}, rows)
	})
	return cmd
}

func (g *globals) userCreateCmd() *cobra.Command {
	var admin, passwordStdin bool
	var email, groups string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user; the password is prompted for, or read with --password-stdin",
		Args:  cobra.ExactArgs(1),
	}
	f := cmd.Flags()
	f.BoolVar(&admin, "admin", false, "make the user an administrator")
	f.StringVar(&email, "email", "", "e-mail address")
	f.StringVar(&groups, "groups", "", "comma-separated groups to add the user to")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the new user's password from standard input")
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		pw, err := secret(cmd, passwordStdin, fmt.Sprintf("Password for the new user %s: ", args[0]), true)
		if err != nil {
			return err
		}
		body := map[string]any{"name": args[0], "password": pw, "email": email, "admin": admin, "groups": splitList(groups)}
		var u userView
		raw, err := c.JSON(ctx, http.MethodPost, apiPath("users"), nil, body, &u)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		role := "user"
		if u.Admin {
			role = "administrator"
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Created %s %s.\n", role, u.Name)
		return nil
	})
	return cmd
}

func (g *globals) userDeleteCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "delete NAME", Aliases: []string{"rm"}, Short: "Delete a user and their tokens", Args: cobra.ExactArgs(1)}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		return g.simpleDelete(ctx, cmd, apiPath("users", args[0]), "Deleted user "+args[0]+".", map[string]any{"name": args[0], "deleted": true})
	})
	return cmd
}

func (g *globals) userPasswdCmd() *cobra.Command {
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Change a user's password (your own, or anyone's as an administrator)",
		Args:  cobra.ExactArgs(1),
	}
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the new password from standard input")
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		pw, err := secret(cmd, passwordStdin, fmt.Sprintf("New password for %s: ", args[0]), true)
		if err != nil {
			return err
		}
		raw, err := c.JSON(ctx, http.MethodPatch, apiPath("users", args[0]), nil, map[string]any{"password": pw}, nil)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Changed the password of %s.\n", args[0])
		return nil
	})
	return cmd
}

// simpleDelete sends a DELETE and reports it.
func (g *globals) simpleDelete(ctx context.Context, cmd *cobra.Command, path, text string, js map[string]any) error {
	c, err := g.client(cmd)
	if err != nil {
		return err
	}
	if _, err := c.JSON(ctx, http.MethodDelete, path, nil, nil, nil); err != nil {
		return err
	}
	if g.json() {
		return printValue(cmd, js)
	}
	fmt.Fprintln(cmd.OutOrStdout(), text)
	return nil
}

// ---- groups

type groupView struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Members     []string `json:"members"`
}

func (g *globals) groupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Manage groups (administrators)"}
	cmd.AddCommand(g.groupListCmd(), g.groupCreateCmd(), g.groupDeleteCmd(), g.groupMemberCmd(true), g.groupMemberCmd(false))
	return cmd
}

func (g *globals) groupListCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Aliases: []string{"ls"}, Short: "List groups and their members", Args: cobra.NoArgs}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var list []groupView
		raw, err := c.JSON(ctx, http.MethodGet, apiPath("groups"), nil, nil, &list)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		rows := [][]string{}
		for _, gr := range list {
			rows = append(rows, []string{gr.Name, orDash(strings.Join(gr.Members, ",")), gr.Description})
		}
		return table(cmd.OutOrStdout(), []string{"NAME", "MEMBERS", "DESCRIPTION"}, rows)
	})
	return cmd
}

func (g *globals) groupCreateCmd() *cobra.Command {
	var members, description string
	cmd := &cobra.Command{Use: "create NAME", Short: "Create a group", Args: cobra.ExactArgs(1)}
	cmd.Flags().StringVar(&members, "members", "", "comma-separated user names")
	cmd.Flags().StringVar(&description, "description", "", "what the group is for")
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		body := map[string]any{"name": args[0], "description": description, "members": splitList(members)}
		var gr groupView
		raw, err := c.JSON(ctx, http.MethodPost, apiPath("groups"), nil, body, &gr)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Created group %s (members: %s).\n", gr.Name, orDash(strings.Join(gr.Members, ", ")))
		return nil
	})
	return cmd
}

func (g *globals) groupDeleteCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "delete NAME", Aliases: []string{"rm"}, Short: "Delete a group", Args: cobra.ExactArgs(1)}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		return g.simpleDelete(ctx, cmd, apiPath("groups", args[0]), "Deleted group "+args[0]+".", map[string]any{"name": args[0], "deleted": true})
	})
	return cmd
}

func (g *globals) groupMemberCmd(add bool) *cobra.Command {
	use, short, method := "remove-member GROUP USER", "Remove a user from a group", http.MethodDelete
	if add {
		use, short, method = "add-member GROUP USER", "Add a user to a group", http.MethodPut
	}
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(2)}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		if _, err := c.JSON(ctx, method, apiPath("groups", args[0], "members", args[1]), nil, nil, nil); err != nil {
			return err
		}
		if g.json() {
			return printValue(cmd, map[string]any{"group": args[0], "user": args[1], "member": add})
		}
		if add {
			fmt.Fprintf(cmd.OutOrStdout(), "Added %s to group %s.\n", args[1], args[0])
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "Removed %s from group %s.\n", args[1], args[0])
		}
		return nil
	})
	return cmd
}

// ---- permissions

type permView struct {
	ID            string   `json:"id"`
	PrincipalType string   `json:"principal_type"`
	Principal     string   `json:"principal"`
	Repos         string   `json:"repos"`
	Actions       []string `json:"actions"`
	CreatedAt     string   `json:"created_at"`
}

func (p permView) who() string {
	if p.PrincipalType == "anonymous" {
		return "anonymous"
	}
	return p.PrincipalType + " " + p.Principal
}

func (g *globals) permissionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "permission", Aliases: []string{"perm"}, Short: "Grant and revoke actions on repositories (administrators)"}
	cmd.AddCommand(g.permListCmd(), g.permGrantCmd(), g.permRevokeCmd())
	return cmd
}

func (g *globals) permListCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Aliases: []string{"ls"}, Short: "List permission grants", Args: cobra.NoArgs}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var list []permView
		raw, err := c.JSON(ctx, http.MethodGet, apiPath("permissions"), nil, nil, &list)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		rows := [][]string{}
		for _, p := range list {
			rows = append(rows, []string{p.ID, p.who(), p.Repos, strings.Join(p.Actions, ","), p.CreatedAt})
		}
		return table(cmd.OutOrStdout(), []string{"ID", "PRINCIPAL", "REPOS", "ACTIONS", "CREATED"}, rows)
	})
	return cmd
}

func (g *globals) permGrantCmd() *cobra.Command {
	var user, group, repos, actions string
	var anonymous bool
	cmd := &cobra.Command{
		Use:   "grant (--user U | --group G | --anonymous) --repos PATTERN --actions read,write",
		Short: "Grant actions on repositories matching a pattern",
		Long: `Grant actions (read, write, overwrite, delete, promote, admin) on the
repositories matching PATTERN (comma-separated globs like "docker-*") to a
user, a group or anonymous callers.

Here --user names who receives the grant; to authenticate with a user name and
password, use COFFER_USER and COFFER_PASSWORD (or a token, or the saved login).`,
		Example: `  coffer permission grant --group developers --repos 'raw-dev*' --actions read,write
  coffer permission grant --anonymous --repos public-docs --actions read`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&user, "user", "", "grant to this user")
	f.StringVar(&group, "group", "", "grant to this group")
	f.BoolVar(&anonymous, "anonymous", false, "grant to callers without credentials")
	f.StringVar(&repos, "repos", "", "repository key pattern(s), comma-separated globs")
	f.StringVar(&actions, "actions", "", "comma-separated actions: read, write, overwrite, delete, promote, admin")
	cmd.MarkFlagRequired("repos")
	cmd.MarkFlagRequired("actions")
	cmd.MarkFlagsMutuallyExclusive("user", "group", "anonymous")
	cmd.MarkFlagsOneRequired("user", "group", "anonymous")
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		acts, err := auth.ParseActions(actions)
		if err != nil {
			return err
		}
		body := map[string]any{"repos": repos, "actions": acts}
		switch {
		case user != "":
			body["principal_type"], body["principal"] = "user", user
		case group != "":
			body["principal_type"], body["principal"] = "group", group
		case anonymous:
			body["principal_type"] = "anonymous"
		default:
			return errors.New("give --user, --group or --anonymous")
		}
		// --user is the grantee here (it shadows the global flag), so
		// authentication comes from the environment, --token or the login.
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var p permView
		raw, err := c.JSON(ctx, http.MethodPost, apiPath("permissions"), nil, body, &p)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Granted %s on %s to %s (id %s).\n", strings.Join(p.Actions, ","), p.Repos, p.who(), p.ID)
		return nil
	})
	return cmd
}

func (g *globals) permRevokeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "revoke ID", Short: "Revoke a permission grant", Args: cobra.ExactArgs(1)}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		return g.simpleDelete(ctx, cmd, apiPath("permissions", args[0]), "Revoked permission "+args[0]+".", map[string]any{"id": args[0], "revoked": true})
	})
	return cmd
}
