package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

type folderListing struct {
	Repo     string `json:"repo"`
	Path     string `json:"path"`
	Children []struct {
		Name         string `json:"name"`
		Folder       bool   `json:"folder"`
		Size         int64  `json:"size"`
		LastModified string `json:"lastModified"`
		Deprecated   bool   `json:"deprecated"`
	} `json:"children"`
}

func (g *globals) lsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ls REPO[/FOLDER]",
		Short:   "List a folder of a repository",
		Example: "  coffer ls raw-release/tools/",
		Args:    cobra.ExactArgs(1),
	}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		repo, folder, err := splitRepoPath(args[0])
		if err != nil {
			return err
		}
		folder = strings.Trim(folder, "/")
		p := repoURLPath(repo, folder)
		if folder != "" {
			p += "/"
		}
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		req, err := c.NewRequest(ctx, http.MethodGet, p, nil, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody))
		if err != nil {
			return err
		}
		var l folderListing
		if err := json.Unmarshal(raw, &l); err != nil || l.Children == nil {
			return fmt.Errorf("%s/%s did not answer with a folder listing (is it a file? coffer pull fetches files)", repo, folder)
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		rows := [][]string{}
		for _, ch := range l.Children {
			if ch.Folder {
				rows = append(rows, []string{strings.TrimSuffix(ch.Name, "/") + "/", "-", ""})
				continue
			}
			name := ch.Name
			if ch.Deprecated {
				name += " (deprecated)"
			}
			rows = append(rows, []string{name, humanSize(ch.Size), ch.LastModified})
		}
		return table(cmd.OutOrStdout(), []string{"NAME", "SIZE", "MODIFIED"}, rows)
	})
	return cmd
}

func (g *globals) deprecateCmd() *cobra.Command {
	var message string
	var undo bool
	cmd := &cobra.Command{
		Use:   "deprecate REPO/PATH --message M",
		Short: "Deprecate an artifact (or --undo a deprecation)",
		Long: `Mark an artifact as deprecated: it is still served, with its message in the
X-Coffer-Deprecated header and in listings. Release repositories deprecate
instead of deleting. --undo removes the mark.`,
		Example: `  coffer deprecate raw-release/tools/v1.0.0/tool.tar.gz --message "CVE-2024-1234: use v1.0.1"
  coffer deprecate --undo raw-release/tools/v1.0.0/tool.tar.gz`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "why, and what to use instead")
	cmd.Flags().BoolVar(&undo, "undo", false, "remove the deprecation")
	cmd.MarkFlagsMutuallyExclusive("message", "undo")
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		repo, p, err := splitRepoPath(args[0])
		if err != nil {
			return err
		}
		if p == "" {
			return fmt.Errorf("%q names a repository: use REPO/PATH", args[0])
		}
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var raw []byte
		if undo {
			raw, err = c.JSON(ctx, http.MethodDelete, apiPath("repositories", repo, "deprecations")+"/"+escapePath(p), nil, nil, nil)
		} else {
			raw, err = c.JSON(ctx, http.MethodPost, apiPath("repositories", repo, "deprecations"), nil, map[string]string{"path": p, "message": message}, nil)
		}
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		if undo {
			fmt.Fprintf(cmd.OutOrStdout(), "%s/%s is no longer deprecated.\n", repo, p)
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "Deprecated %s/%s.\n", repo, p)
		}
		return nil
	})
	return cmd
}

type artifactView struct {
	Repo       string `json:"repo"`
	Path       string `json:"path"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256"`
	UpdatedAt  string `json:"updated_at"`
	Deprecated bool   `json:"deprecated"`
}

func (g *globals) searchCmd() *cobra.Command {
	var repos string
	var limit int
	cmd := &cobra.Command{
		Use:     "search QUERY",
		Short:   "Find artifacts whose path contains QUERY, in the repositories you may read",
		Example: "  coffer search tool.tar.gz --repo raw-release,raw-staging",
		Args:    cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&repos, "repo", "", "only these repositories (comma-separated)")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many results (1-1000)")
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		q := url.Values{"q": {args[0]}, "limit": {strconv.Itoa(limit)}}
		if repos != "" {
			q.Set("repo", repos)
		}
		var page struct {
			Items []artifactView `json:"items"`
			Next  string         `json:"next"`
		}
		raw, err := c.JSON(ctx, http.MethodGet, apiPath("search", "artifacts"), q, nil, &page)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		rows := [][]string{}
		for _, a := range page.Items {
			p := a.Path
			if a.Deprecated {
				p += " (deprecated)"
			}
			rows = append(rows, []string{a.Repo, p, humanSize(a.Size), a.UpdatedAt})
		}
		if err := table(cmd.OutOrStdout(), []string{"REPO", "PATH", "SIZE", "UPDATED"}, rows); err != nil {
			return err
		}
		if page.Next != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "(more than %d results: narrow the query or raise --limit)\n", limit)
		}
		return nil
	})
	return cmd
}

func (g *globals) storageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "storage", Short: "Show storage use: per repository, physical, and the dedupe ratio (administrators)", Args: cobra.NoArgs}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var s struct {
			Repositories []struct {
				Key    string `json:"key"`
				Assets int64  `json:"assets"`
				Bytes  int64  `json:"bytes"`
			} `json:"repositories"`
			LogicalBytes int64 `json:"logical_bytes"`
			Physical     struct {
				Blobs int64 `json:"blobs"`
				Bytes int64 `json:"bytes"`
			} `json:"physical"`
			DedupeRatio float64 `json:"dedupe_ratio"`
		}
		raw, err := c.JSON(ctx, http.MethodGet, apiPath("storage"), nil, nil, &s)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		w := cmd.OutOrStdout()
		rows := [][]string{}
		for _, r := range s.Repositories {
			rows = append(rows, []string{r.Key, strconv.FormatInt(r.Assets, 10), humanSize(r.Bytes)})
		}
		if err := table(w, []string{"REPOSITORY", "ARTIFACTS", "SIZE"}, rows); err != nil {
			return err
		}
		fmt.Fprintln(w)
		return fields(w,
			"Logical", fmt.Sprintf("%s (%d bytes)", humanSize(s.LogicalBytes), s.LogicalBytes),
			"Physical", fmt.Sprintf("%s (%d bytes) in %d blobs", humanSize(s.Physical.Bytes), s.Physical.Bytes, s.Physical.Blobs),
			"Dedupe ratio", strconv.FormatFloat(s.DedupeRatio, 'f', 2, 64))
	})
	return cmd
}
