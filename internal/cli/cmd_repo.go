package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/cofferhq/coffer/internal/config"
)

// repoView is a repository as GET /api/v1/repositories answers it.
type repoView struct {
	config.Repository
	Policy struct {
		Overwrite     bool `json:"overwrite"`
		Delete        bool `json:"delete"`
		AnonymousRead bool `json:"anonymous_read"`
	} `json:"policy"`
	URL       string   `json:"url"`
	Resolved  []string `json:"resolved_members"`
	CreatedAt string   `json:"created_at"`
}

func (g *globals) repoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "List, show, declare and delete repositories",
	}
	cmd.AddCommand(g.repoListCmd(), g.repoGetCmd(), g.repoApplyCmd(), g.repoDeleteCmd())
	return cmd
}

func (g *globals) repoListCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Aliases: []string{"ls"}, Short: "List the repositories you may read", Args: cobra.NoArgs}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var list []repoView
		raw, err := c.JSON(ctx, http.MethodGet, apiPath("repositories"), nil, nil, &list)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		rows := [][]string{}
		for _, r := range list {
			rows = append(rows, []string{r.Key, r.Format, r.Kind, orDash(r.Tier), r.URL})
		}
		return table(cmd.OutOrStdout(), []string{"KEY", "FORMAT", "KIND", "TIER", "URL"}, rows)
	})
	return cmd
}

func (g *globals) repoGetCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "get KEY", Short: "Show one repository and its effective policy", Args: cobra.ExactArgs(1)}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var r repoView
		raw, err := c.JSON(ctx, http.MethodGet, apiPath("repositories", args[0]), nil, nil, &r)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		kv := []string{"Key", r.Key, "Format", r.Format, "Kind", r.Kind, "Tier", r.Tier, "Description", r.Description, "URL", r.URL,
			"Overwrite", yesNo(r.Policy.Overwrite), "Delete", yesNo(r.Policy.Delete), "Anonymous read", yesNo(r.Policy.AnonymousRead)}
		if r.MaxUploadSize > 0 {
			kv = append(kv, "Max upload size", r.MaxUploadSize.String())
		}
		if u := r.Upstream; u != nil {
			kv = append(kv, "Upstream", u.URL, "Upstream user", u.Username)
		}
		if r.MetadataTTL > 0 {
			kv = append(kv, "Metadata TTL", r.MetadataTTL.String())
		}
		if r.NegativeTTL > 0 {
			kv = append(kv, "Negative TTL", r.NegativeTTL.String())
		}
		kv = append(kv, "Members", strings.Join(r.Members, ", "), "Resolved members", strings.Join(r.Resolved, ", "),
			"Default deploy", r.DefaultDeploy, "Created", r.CreatedAt)
		return fields(cmd.OutOrStdout(), kv...)
	})
	return cmd
}

func (g *globals) repoDeleteCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "delete KEY", Aliases: []string{"rm"}, Short: "Delete an empty repository", Args: cobra.ExactArgs(1)}
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		if _, err := c.JSON(ctx, http.MethodDelete, apiPath("repositories", args[0]), nil, nil, nil); err != nil {
			return err
		}
		if g.json() {
			return printValue(cmd, map[string]any{"key": args[0], "deleted": true})
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Deleted repository %s.\n", args[0])
		return nil
	})
	return cmd
}

func (g *globals) repoApplyCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update the repositories declared in a YAML file (never deletes)",
		Long: `Create or update the repositories declared in a YAML file, idempotently: a
whole coffer.yaml (its repositories: list is applied; the rest is ignored) or
just a list of repository declarations. "-" reads standard input. Every
problem with the declarations is listed with its line.`,
		Example: `  coffer repo apply -f coffer.yaml
  coffer repo apply -f - <<'EOF'
  - key: raw-dev
    format: raw
    kind: local
    tier: dev
  EOF`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "YAML file to apply (- for standard input)")
	cmd.MarkFlagRequired("file")
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		var data []byte
		var err error
		name := file
		if file == "-" {
			name = "<stdin>"
			data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 16<<20))
		} else {
			data, err = os.ReadFile(file)
		}
		if err != nil {
			return err
		}
		decls, doc, err := parseRepoFile(name, data)
		if err != nil {
			return err
		}
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var res struct {
			Results []struct {
				Key    string `json:"key"`
				Action string `json:"action"`
			} `json:"results"`
		}
		raw, err := c.JSON(ctx, http.MethodPut, apiPath("repositories"), nil, map[string]any{"repositories": decls}, &res)
		if err != nil {
			var ae *APIError
			if errors.As(err, &ae) && len(ae.Problems) > 0 {
				return &config.Problems{Source: name, List: locateProblems(doc, decls, ae.Problems)}
			}
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		counts := map[string]int{}
		rows := [][]string{}
		for _, r := range res.Results {
			counts[r.Action]++
			rows = append(rows, []string{r.Key, r.Action})
		}
		if err := table(cmd.OutOrStdout(), nil, rows); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%d created, %d updated, %d unchanged.\n", counts["created"], counts["updated"], counts["unchanged"])
		return nil
	})
	return cmd
}

// parseRepoFile decodes the repository declarations of a whole coffer.yaml,
// a list of declarations or one declaration, strictly: unknown fields and
// wrong types are problems with their lines. It returns the YAML document for
// locating the server's problems later.
func parseRepoFile(name string, data []byte) ([]config.Repository, *yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, &config.Problems{Source: name, List: yamlProblems(err)}
	}
	root := docRoot(&doc)
	if root == nil {
		return nil, nil, fmt.Errorf("%s declares no repositories", name)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var decls []config.Repository
	var err error
	switch {
	case root.Kind == yaml.SequenceNode:
		err = dec.Decode(&decls)
	case root.Kind == yaml.MappingNode && mapValue(root, "repositories") != nil:
		cfg := config.Config{}
		err = dec.Decode(&cfg)
		decls = cfg.Repositories
	case root.Kind == yaml.MappingNode && mapValue(root, "key") != nil:
		var one config.Repository
		err = dec.Decode(&one)
		decls = []config.Repository{one}
	default:
		return nil, nil, &config.Problems{Source: name, List: []config.Problem{{Line: root.Line,
			Msg: "expected a coffer.yaml with repositories:, or a list of repository declarations"}}}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, &config.Problems{Source: name, List: yamlProblems(err)}
	}
	if len(decls) == 0 {
		return nil, nil, fmt.Errorf("%s declares no repositories", name)
	}
	return decls, &doc, nil
}

var (
	yamlLineRE    = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlUnknownRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

func yamlProblems(err error) []config.Problem {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var out []config.Problem
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		p := config.Problem{Msg: m}
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			p.Line, _ = strconv.Atoi(sm[1])
			p.Msg = sm[2]
		}
		if sm := yamlUnknownRE.FindStringSubmatch(p.Msg); sm != nil {
			p.Msg = fmt.Sprintf("unknown field %q", sm[1])
		}
		out = append(out, p)
	}
	return out
}

func docRoot(doc *yaml.Node) *yaml.Node {
	n := doc
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// mapValue returns the value node of key in a mapping node, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func mapKeyLine(m *yaml.Node, key string) int {
	if m == nil || m.Kind != yaml.MappingNode {
		return 0
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i].Line
		}
	}
	return 0
}

// problemFieldRE matches the server's field names: repositories[3].kind or
// repositories[raw-dev].kind.
var problemFieldRE = regexp.MustCompile(`^repositories\[(.*)\]\.([a-z_]+)`)

// locateProblems gives the server's problems (which name fields, not lines)
// the lines of the file they come from.
func locateProblems(doc *yaml.Node, decls []config.Repository, probs []config.Problem) []config.Problem {
	var list *yaml.Node
	if root := docRoot(doc); root != nil {
		if root.Kind == yaml.SequenceNode {
			list = root
		} else if v := mapValue(root, "repositories"); v != nil && v.Kind == yaml.SequenceNode {
			list = v
		} else if root.Kind == yaml.MappingNode {
			list = &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{root}}
		}
	}
	out := make([]config.Problem, len(probs))
	for i, p := range probs {
		out[i] = p
		if p.Line > 0 || list == nil {
			continue
		}
		sm := problemFieldRE.FindStringSubmatch(p.Field)
		if sm == nil {
			continue
		}
		idx := -1
		if n, err := strconv.Atoi(sm[1]); err == nil && n >= 0 && n < len(decls) {
			idx = n
		} else {
			for j, d := range decls {
				if d.Key == sm[1] {
					idx = j
					break
				}
			}
		}
		if idx < 0 || idx >= len(list.Content) {
			continue
		}
		item := list.Content[idx]
		for item.Kind == yaml.AliasNode && item.Alias != nil {
			item = item.Alias
		}
		line := mapKeyLine(item, sm[2])
		if line == 0 {
			line = item.Line
		}
		out[i].Line = line
	}
	sortProblemsByLine(out)
	return out
}

func sortProblemsByLine(ps []config.Problem) {
	slices.SortStableFunc(ps, func(a, b config.Problem) int { return cmp.Compare(a.Line, b.Line) })
}
