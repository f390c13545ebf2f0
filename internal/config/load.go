package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cofferhq/coffer/internal/errs"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	Line  int    `json:"line,omitempty"` // 0 when not from a file
	Field string `json:"field,omitempty"`
	Msg   string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found, reported at once.
type Problems struct {
	Source string
	List   []Problem
}

// Unwrap classifies a configuration's problems as invalid input.
func (p *Problems) Unwrap() error { return errs.Invalid }

func (p *Problems) Error() string {
	var b strings.Builder
	src := p.Source
	if src == "" {
		src = "configuration"
	}
	fmt.Fprintf(&b, "%s: %d problem(s):", src, len(p.List))
	for _, x := range p.List {
		b.WriteString("\n  - " + x.String())
	}
	return b.String()
}

// Options tell validation what the running binary supports.
type Options struct {
	Formats []string // registered format names
	Getenv  func(string) string
}

// Load reads the configuration: defaults, then the file (if path is not
// empty), then COFFER_* environment overrides, and validates the result.
func Load(path string, opts Options) (Config, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	cfg := Defaults()
	var root *yaml.Node
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		var probs []Problem
		root, probs = decode(data, &cfg)
		if len(probs) > 0 {
			return cfg, &Problems{Source: path, List: probs}
		}
	}
	applyEnv(&cfg, opts.Getenv)
	if probs := Validate(&cfg, root, opts); len(probs) > 0 {
		return cfg, &Problems{Source: path, List: probs}
	}
	return cfg, nil
}

// Parse decodes and validates YAML configuration text (used by tests and
// `coffer repo apply`). Environment overrides are not applied.
func Parse(data []byte, opts Options) (Config, error) {
	cfg := Defaults()
	root, probs := decode(data, &cfg)
	if len(probs) == 0 {
		probs = Validate(&cfg, root, opts)
	}
	if len(probs) > 0 {
		return cfg, &Problems{List: probs}
	}
	return cfg, nil
}

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// decode parses data into cfg, strictly (unknown fields are problems).
func decode(data []byte, cfg *Config) (*yaml.Node, []Problem) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlProblems(err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &root, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return &root, yamlProblems(err)
	}
	return &root, nil
}

func yamlProblems(err error) []Problem {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var out []Problem
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		p := Problem{Msg: m}
		if sm := lineRE.FindStringSubmatch(m); sm != nil {
			p.Line, _ = strconv.Atoi(sm[1])
			p.Msg = sm[2]
		}
		out = append(out, p)
	}
	return out
}

func applyEnv(cfg *Config, getenv func(string) string) {
	if v := getenv("COFFER_LISTEN"); v != "" {
		cfg.Server.Listen = v
	}
	if v := getenv("COFFER_BASE_URL"); v != "" {
		cfg.Server.BaseURL = v
	}
	if v := getenv("COFFER_DATA_DIR"); v != "" {
		cfg.Storage.DataDir = v
	}
	if v := getenv("COFFER_LOG_FORMAT"); v != "" {
		cfg.Log.Format = v
	}
	if v := getenv("COFFER_LOG_LEVEL"); v != "" {
		cfg.Log.Level = v
	}
	if v := getenv("COFFER_MAX_UPLOAD_SIZE"); v != "" {
		if b, err := ParseByteSize(v); err == nil {
			cfg.Server.MaxUploadSize = b
		}
	}
}

// lineOf finds the line of the node at a path of map keys (string) and
// sequence indexes (int); it returns the nearest ancestor's line when the
// exact node is absent, and 0 without a document.
func lineOf(root *yaml.Node, path ...any) int {
	if root == nil {
		return 0
	}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					line = n.Content[i].Line
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return line
			}
		case int:
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return line
			}
			n = n.Content[k]
			line = n.Line
		}
	}
	return line
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
}
