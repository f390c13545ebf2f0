package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

func (g *globals) lifecycleCmds() []*cobra.Command {
	return []*cobra.Command{g.retentionCmd(), g.pinCmd(), g.promoteCmd(), g.promotionCmd(), g.propertyCmd()}
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

type promotionRecord struct {
	ID          string `json:"id"`
	CreatedAt   string `json:"created_at"`
	RequestedBy string `json:"requested_by"`
	Source      string `json:"source"`
	Target      string `json:"target"`
	Artifact    string `json:"artifact"`
	Digest      string `json:"digest"`
	State       string `json:"state"`
	Reason      string `json:"reason"`
	DecidedBy   string `json:"decided_by"`
	Gates       []struct {
		Gate    string `json:"gate"`
		Passed  bool   `json:"passed"`
		Pending bool   `json:"pending"`
		Detail  string `json:"detail"`
	} `json:"gates"`
}

func (g *globals) printPromotion(cmd *cobra.Command, raw []byte, p promotionRecord) error {
	if g.json() {
		return printJSON(cmd, raw)
	}
	kv := []string{"Promotion", p.ID, "State", p.State, "Artifact", p.Artifact, "From", p.Source, "To", p.Target,
		"Digest", p.Digest, "Requested by", p.RequestedBy}
	if p.DecidedBy != "" {
		kv = append(kv, "Approved by", p.DecidedBy)
	}
	for _, gt := range p.Gates {
		verdict := "failed"
		switch {
		case gt.Pending:
			verdict = "pending"
		case gt.Passed:
			verdict = "passed"
		}
		kv = append(kv, "Gate "+gt.Gate, verdict+": "+gt.Detail)
	}
	return fields(cmd.OutOrStdout(), kv...)
}

func (g *globals) promoteCmd() *cobra.Command {
	var from, to, comment string
	cmd := &cobra.Command{
		Use:   "promote ARTIFACT --from SOURCE --to TARGET",
		Short: "Promote an artifact between local repositories (by reference, through the target's gates)",
		Long: "Promote an artifact, named in its format's coordinates (team/api:v2.3.0, team/api@sha256:...,\n" +
			"@acme/ui@1.4.0, acme-lib==1.0.0, a raw path), from one local repository to another. Nothing is\n" +
			"re-uploaded. The target's gates (signature, properties, approval) decide; a refusal says which\n" +
			"gate failed and why, and exits non-zero. With approval required, the promotion waits: another\n" +
			"user runs `coffer promotion approve ID`.",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&from, "from", "", "source repository (required)")
	cmd.Flags().StringVar(&to, "to", "", "target repository (required)")
	cmd.Flags().StringVar(&comment, "comment", "", "why (kept in the record)")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("to")
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var p promotionRecord
		raw, err := c.JSON(ctx, http.MethodPost, apiPath("promotions"), nil,
			map[string]string{"source": from, "target": to, "artifact": args[0], "comment": comment}, &p)
		if err != nil {
			return err
		}
		return g.printPromotion(cmd, raw, p)
	})
	return cmd
}

func (g *globals) promotionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "promotion", Short: "Promotion records: list, show, approve"}
	var repoKey, artifact, state string
	ls := &cobra.Command{Use: "ls", Short: "List promotion records, newest first", Args: cobra.NoArgs}
	ls.Flags().StringVar(&repoKey, "repo", "", "only promotions from or to this repository")
	ls.Flags().StringVar(&artifact, "artifact", "", "only promotions of this artifact (coordinates, with --repo)")
	ls.Flags().StringVar(&state, "state", "", "pending, promoted or refused")
	ls.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		q := url.Values{}
		for k, v := range map[string]string{"repo": repoKey, "artifact": artifact, "state": state} {
			if v != "" {
				q.Set(k, v)
			}
		}
		var ps []promotionRecord
		raw, err := c.JSON(ctx, http.MethodGet, apiPath("promotions"), q, nil, &ps)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		var rows [][]string
		for _, p := range ps {
			rows = append(rows, []string{p.ID, p.CreatedAt, p.State, p.Artifact, p.Source + " -> " + p.Target, p.RequestedBy, p.Reason})
		}
		return table(cmd.OutOrStdout(), []string{"ID", "AT", "STATE", "ARTIFACT", "FROM -> TO", "BY", "REASON"}, rows)
	})
	show := &cobra.Command{Use: "show ID", Short: "Show a promotion record with its gate results", Args: cobra.ExactArgs(1)}
	show.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var p promotionRecord
		raw, err := c.JSON(ctx, http.MethodGet, apiPath("promotions", args[0]), nil, nil, &p)
		if err != nil {
			return err
		}
		return g.printPromotion(cmd, raw, p)
	})
	approve := &cobra.Command{Use: "approve ID", Short: "Approve a pending promotion (not your own)", Args: cobra.ExactArgs(1)}
	approve.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var p promotionRecord
		raw, err := c.JSON(ctx, http.MethodPost, apiPath("promotions", args[0], "approve"), nil, nil, &p)
		if err != nil {
			return err
		}
		return g.printPromotion(cmd, raw, p)
	})
	cmd.AddCommand(ls, show, approve)
	return cmd
}

func (g *globals) propertyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "property", Short: "Properties of artifacts (e.g. ci.tests=passed, read by promotion gates)"}
	set := &cobra.Command{Use: "set REPO ARTIFACT KEY=VALUE...", Short: "Set properties (KEY= with nothing after removes one)", Args: cobra.MinimumNArgs(3)}
	set.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		props := map[string]*string{}
		for _, kv := range args[2:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("%q is not KEY=VALUE", kv)
			}
			if v == "" {
				props[k] = nil
			} else {
				props[k] = &v
			}
		}
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		return g.showProperties(ctx, cmd, c, http.MethodPut, args[0], map[string]any{"artifact": args[1], "properties": props}, nil)
	})
	ls := &cobra.Command{Use: "ls REPO ARTIFACT", Short: "List an artifact's properties", Args: cobra.ExactArgs(2)}
	ls.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		return g.showProperties(ctx, cmd, c, http.MethodGet, args[0], nil, url.Values{"artifact": {args[1]}})
	})
	cmd.AddCommand(set, ls)
	return cmd
}

func (g *globals) showProperties(ctx context.Context, cmd *cobra.Command, c *Client, method, repoKey string, in any, q url.Values) error {
	var v struct {
		Properties map[string]string `json:"properties"`
	}
	raw, err := c.JSON(ctx, method, apiPath("repositories", repoKey, "properties"), q, in, &v)
	if err != nil {
		return err
	}
	if g.json() {
		return printJSON(cmd, raw)
	}
	var rows [][]string
	for k, val := range v.Properties {
		rows = append(rows, []string{k, val})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	return table(cmd.OutOrStdout(), []string{"KEY", "VALUE"}, rows)
}
