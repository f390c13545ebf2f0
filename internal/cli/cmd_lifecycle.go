package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

func (g *globals) lifecycleCmds() []*cobra.Command {
	return []*cobra.Command{g.retentionCmd(), g.pinCmd()}
}

type retentionReport struct {
	DryRun  bool `json:"dry_run"`
	Expired int  `json:"expired"`
	Repos   []struct {
		Repo    string `json:"repo"`
		Skipped string `json:"skipped"`
		Expired []struct {
			Name    string   `json:"name"`
			Version string   `json:"version"`
			Tags    []string `json:"tags"`
			Rule    string   `json:"rule"`
		} `json:"expired"`
		Protected []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Reason  string `json:"reason"`
		} `json:"protected"`
	} `json:"repositories"`
}

func (g *globals) retentionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "retention", Short: "Retention rules: expire old versions (administrators)"}
	var dry bool
	var repos []string
	run := &cobra.Command{
		Use:   "run",
		Short: "Apply retention rules now; --dry-run lists what would expire and the rule that decided each",
		Long: "Apply the retention rules of local repositories now (every local repository, or those named\n" +
			"with --repo). Repositories without rules keep everything: retention is opt-in. Release\n" +
			"repositories never expire anything. Pinned versions and versions downloaded recently are kept.",
		Args: cobra.NoArgs,
	}
	run.Flags().BoolVar(&dry, "dry-run", false, "list what would expire, change nothing")
	run.Flags().StringSliceVar(&repos, "repo", nil, "repository to evaluate (repeatable; default: every local repository)")
	run.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var rep retentionReport
		raw, err := c.JSON(ctx, http.MethodPost, apiPath("retention"), nil, map[string]any{"repos": repos, "dry_run": dry}, &rep)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		verb := "expired"
		if rep.DryRun {
			verb = "would expire"
		}
		var rows [][]string
		for _, r := range rep.Repos {
			if r.Skipped != "" {
				rows = append(rows, []string{r.Repo, "-", "-", "kept: " + r.Skipped})
			}
			for _, x := range r.Expired {
				rows = append(rows, []string{r.Repo, x.Name + " " + x.Version, strings.Join(x.Tags, ","), verb + ": " + x.Rule})
			}
			for _, p := range r.Protected {
				rows = append(rows, []string{r.Repo, p.Name + " " + p.Version, "", "kept: " + p.Reason})
			}
		}
		if err := table(cmd.OutOrStdout(), []string{"REPOSITORY", "VERSION", "TAGS", "DECISION"}, rows); err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "%d version(s) %s\n", rep.Expired, verb)
		return err
	})
	cmd.AddCommand(run)
	return cmd
}

func (g *globals) pinCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pin", Short: "Pin artifacts in use so that retention never expires them"}
	var reason string
	add := &cobra.Command{
		Use:   "add REPO ARTIFACT",
		Short: "Pin an artifact (coordinates in the repository's format: team/api:v2, @acme/ui@1.4.0, acme-lib==1.0.0, a raw path)",
		Args:  cobra.ExactArgs(2),
	}
	add.Flags().StringVar(&reason, "reason", "", "why it is in use (shown by retention)")
	add.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var p struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		}
		raw, err := c.JSON(ctx, http.MethodPost, apiPath("repositories", args[0], "pins"), nil, map[string]string{"artifact": args[1], "reason": reason}, &p)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		return fields(cmd.OutOrStdout(), "Pinned", strings.TrimSpace(p.Name+" "+p.Version), "Repository", args[0])
	})
	rm := &cobra.Command{Use: "rm REPO ARTIFACT", Short: "Unpin an artifact", Args: cobra.ExactArgs(2)}
	rm.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		_, err = c.JSON(ctx, http.MethodDelete, apiPath("repositories", args[0], "pins"), url.Values{"artifact": {args[1]}}, nil, nil)
		return err
	})
	ls := &cobra.Command{Use: "ls REPO", Short: "List pinned versions", Args: cobra.ExactArgs(1)}
	ls.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var pins []struct {
			Name      string `json:"name"`
			Version   string `json:"version"`
			Reason    string `json:"reason"`
			CreatedBy string `json:"created_by"`
			CreatedAt string `json:"created_at"`
		}
		raw, err := c.JSON(ctx, http.MethodGet, apiPath("repositories", args[0], "pins"), nil, nil, &pins)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		var rows [][]string
		for _, p := range pins {
			rows = append(rows, []string{p.Name, p.Version, p.Reason, p.CreatedBy, p.CreatedAt})
		}
		return table(cmd.OutOrStdout(), []string{"NAME", "VERSION", "REASON", "BY", "AT"}, rows)
	})
	cmd.AddCommand(add, rm, ls)
	return cmd
}
