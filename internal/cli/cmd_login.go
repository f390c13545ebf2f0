package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

type whoami struct {
	Name      string   `json:"name"`
	Anonymous bool     `json:"anonymous"`
	Admin     bool     `json:"admin"`
	Groups    []string `json:"groups"`
	Token     *struct {
		ID     string      `json:"id"`
		Name   string      `json:"name"`
		Scopes []scopeView `json:"scopes"`
	} `json:"token"`
}

func (g *globals) loginCmd() *cobra.Command {
	var passwordStdin bool
	var expires string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to a server: create an API token with your password and save it for later commands",
		Long: `Log in to a server: create an API token named cli@<hostname> with your user
name and password, check it, and save the server and the token in the CLI
configuration file ($COFFER_CLI_CONFIG, else <user config dir>/coffer/cli.json,
readable by you only). Later commands use it unless given --token or --user.
The password is prompted for (without echo) unless given with --password,
COFFER_PASSWORD or --password-stdin.`,
		Example: `  coffer login --server https://coffer.example.com --user alice
  echo "$PW" | coffer login --server http://127.0.0.1:8080 --user ci --password-stdin`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	cmd.Flags().StringVar(&expires, "expires", "", "let the saved token expire after this long (like 720h or 30d; default: never)")
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		path, err := cliConfigPath(g.getenv)
		if err != nil {
			return err
		}
		old, err := loadLogin(path)
		if err != nil {
			old = nil // a broken file is replaced
		}
		server, err := g.serverURL(old)
		if err != nil {
			return err
		}
		user := first(g.user, g.getenv("COFFER_USER"))
		if user == "" {
			if user, err = promptLine(cmd, "User: "); err != nil || user == "" {
				return errors.New("give the user name with --user (or COFFER_USER)")
			}
		}
		password := first(g.password, g.getenv("COFFER_PASSWORD"))
		if passwordStdin || password == "" {
			if password, err = secret(cmd, passwordStdin, fmt.Sprintf("Password for %s at %s: ", user, server), false); err != nil {
				return err
			}
		}
		c, err := NewClient(server)
		if err != nil {
			return err
		}
		c.User, c.Password = user, password
		host, _ := os.Hostname()
		if host == "" {
			host = "unknown-host"
		}
		var tok tokenView
		body := map[string]any{"name": "cli@" + host, "description": "created by coffer login"}
		if expires != "" {
			body["expires_in"] = expires
		}
		if _, err := c.JSON(ctx, http.MethodPost, apiPath("tokens"), nil, body, &tok); err != nil {
			return fmt.Errorf("logging in to %s as %s: %w", server, user, err)
		}
		if tok.Token == "" {
			return fmt.Errorf("logging in to %s: the server did not return a token", server)
		}
		tc, _ := NewClient(server)
		tc.Token = tok.Token
		var me whoami
		if _, err := tc.JSON(ctx, http.MethodGet, apiPath("whoami"), nil, nil, &me); err != nil || me.Anonymous {
			c.JSON(ctx, http.MethodDelete, apiPath("tokens", tok.ID), nil, nil, nil)
			if err == nil {
				err = errors.New("the server does not accept the new token")
			}
			return fmt.Errorf("checking the new token: %w", err)
		}
		saved := &savedLogin{Server: server, User: me.Name, Token: tok.Token, TokenID: tok.ID, TokenName: tok.Name}
		if err := saveLogin(path, saved); err != nil {
			c.JSON(ctx, http.MethodDelete, apiPath("tokens", tok.ID), nil, nil, nil)
			return err
		}
		// The previous login's token for the same server is no longer needed.
		if old != nil && old.TokenID != "" && old.TokenID != tok.ID && old.Server == server {
			oc, _ := NewClient(server)
			oc.Token = old.Token
			oc.JSON(ctx, http.MethodDelete, apiPath("tokens", old.TokenID), nil, nil, nil)
		}
		if g.json() {
			return printValue(cmd, map[string]any{"server": server, "user": me.Name, "admin": me.Admin,
				"token_id": tok.ID, "token_name": tok.Name, "expires_at": tok.ExpiresAt, "config": path})
		}
		role := ""
		if me.Admin {
			role = " (administrator)"
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s%s.\nToken %s (id %s) saved in %s.\n", server, me.Name, role, tok.Name, tok.ID, path)
		return nil
	})
	return cmd
}

func (g *globals) logoutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Revoke the saved login's token on its server and forget it",
		Args:  cobra.NoArgs,
	}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		path, err := cliConfigPath(g.getenv)
		if err != nil {
			return err
		}
		saved, err := loadLogin(path)
		if err != nil {
			return err
		}
		if saved == nil {
			if g.json() {
				return printValue(cmd, map[string]any{"logged_out": false})
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Not logged in.")
			return nil
		}
		c, err := NewClient(saved.Server)
		if err != nil {
			return err
		}
		c.Token = saved.Token
		var revokeErr error
		if saved.TokenID != "" {
			_, revokeErr = c.JSON(ctx, http.MethodDelete, apiPath("tokens", saved.TokenID), nil, nil, nil)
			var ae *APIError
			if errors.As(revokeErr, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusNotFound) {
				revokeErr = nil // already revoked or expired
			}
		}
		if err := forgetLogin(path); err != nil {
			return err
		}
		if revokeErr != nil {
			return fmt.Errorf("forgot the saved login, but could not revoke its token %s on %s: %w\n(revoke it later with `coffer token revoke %s`)",
				saved.TokenID, saved.Server, revokeErr, saved.TokenID)
		}
		if g.json() {
			return printValue(cmd, map[string]any{"logged_out": true, "server": saved.Server, "token_id": saved.TokenID})
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Logged out of %s (token %s revoked).\n", saved.Server, orDash(saved.TokenID))
		return nil
	})
	return cmd
}

func (g *globals) whoamiCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who the server takes you for",
		Args:  cobra.NoArgs,
	}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var me whoami
		raw, err := c.JSON(ctx, http.MethodGet, apiPath("whoami"), nil, nil, &me)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		w := cmd.OutOrStdout()
		if me.Anonymous {
			fmt.Fprintf(w, "anonymous (not logged in to %s)\n", c.Base)
			return nil
		}
		role := "user"
		if me.Admin {
			role = "administrator"
		}
		kv := []string{"User", me.Name, "Role", role, "Groups", strings.Join(me.Groups, ", "), "Server", c.Base}
		if me.Token != nil {
			kv = append(kv, "Token", fmt.Sprintf("%s (id %s)", me.Token.Name, me.Token.ID))
			if len(me.Token.Scopes) > 0 {
				kv = append(kv, "Scopes", formatScopes(me.Token.Scopes))
			}
		}
		return fields(w, kv...)
	})
	return cmd
}
