package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// defaultServer is where `coffer serve` listens without configuration.
const defaultServer = "http://127.0.0.1:8080"

// globals are the flags every client command shares, and where it reads and
// writes.
type globals struct {
	server, token, user, password, output string

	getenv func(string) string
}

// addClientCommands adds the subcommands that talk to a running server.
func addClientCommands(root *cobra.Command) {
	g := &globals{getenv: os.Getenv}
	cmds := []*cobra.Command{
		g.loginCmd(), g.logoutCmd(), g.whoamiCmd(),
		g.repoCmd(), g.userCmd(), g.groupCmd(), g.permissionCmd(), g.tokenCmd(),
		g.pushCmd(), g.pullCmd(), g.lsCmd(), g.deprecateCmd(), g.searchCmd(), g.storageCmd(), g.gcCmd(),
	}
	cmds = append(cmds, g.lifecycleCmds()...)
	for _, c := range cmds {
		g.addFlags(c.PersistentFlags())
		c.PersistentPreRunE = g.check
		root.AddCommand(c)
	}
}

func (g *globals) addFlags(f *pflag.FlagSet) {
	f.StringVar(&g.server, "server", "", "server URL (env COFFER_SERVER; default: the saved login's, else "+defaultServer+")")
	f.StringVar(&g.token, "token", "", "API token (env COFFER_TOKEN)")
	f.StringVar(&g.user, "user", "", "user name for HTTP Basic authentication (env COFFER_USER)")
	f.StringVar(&g.password, "password", "", "password for --user (env COFFER_PASSWORD; prompted for when absent)")
	f.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
}

func (g *globals) check(cmd *cobra.Command, _ []string) error {
	switch g.output {
	case "text", "json":
		return nil
	}
	return fmt.Errorf("--output %q is not one of text, json", g.output)
}

func (g *globals) json() bool { return g.output == "json" }

// run adapts a command body: it gets a context canceled by SIGINT/SIGTERM,
// so that transfers stop and clean up.
func (g *globals) run(fn func(ctx context.Context, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return fn(ctx, cmd, args)
	}
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// serverURL is the server named by --server or COFFER_SERVER, else the saved
// login's, else the default.
func (g *globals) serverURL(saved *savedLogin) (string, error) {
	s := first(g.server, g.getenv("COFFER_SERVER"))
	if s == "" && saved != nil {
		s = saved.Server
	}
	return normalizeServer(first(s, defaultServer))
}

// client builds the API client with credentials from, in order: --token or
// COFFER_TOKEN; --user/--password or COFFER_USER/COFFER_PASSWORD (the
// password prompted for on a terminal); the saved login, when it is for the
// same server.
func (g *globals) client(cmd *cobra.Command) (*Client, error) {
	path, err := cliConfigPath(g.getenv)
	if err != nil {
		return nil, err
	}
	saved, err := loadLogin(path)
	if err != nil {
		return nil, err
	}
	server, err := g.serverURL(saved)
	if err != nil {
		return nil, err
	}
	c, err := NewClient(server)
	if err != nil {
		return nil, err
	}
	c.DefaultServer = first(g.server, g.getenv("COFFER_SERVER")) == "" && saved == nil
	token := first(g.token, g.getenv("COFFER_TOKEN"))
	user := first(g.user, g.getenv("COFFER_USER"))
	password := first(g.password, g.getenv("COFFER_PASSWORD"))
	switch {
	case token != "":
		c.Token = token
	case user != "":
		if password == "" {
			if password, err = promptSecret(cmd, fmt.Sprintf("Password for %s at %s: ", user, server), false); err != nil {
				if errors.Is(err, errNoTerminal) {
					err = fmt.Errorf("%w of %s: give --password or set COFFER_PASSWORD", err, user)
				}
				return nil, err
			}
		}
		c.User, c.Password = user, password
	case password != "":
		return nil, errors.New("--password needs --user (or COFFER_USER)")
	case saved != nil:
		if ss, err := normalizeServer(saved.Server); err == nil && ss == server {
			c.Token, c.SavedLogin = saved.Token, true
		}
	}
	return c, nil
}

// ---- terminal input

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

var errNoTerminal = errors.New("no terminal to prompt for the password")

// promptSecret reads a secret from the terminal without echo; confirm asks
// twice. Without a terminal it fails with advice.
func promptSecret(cmd *cobra.Command, prompt string, confirm bool) (string, error) {
	in := cmd.InOrStdin()
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errNoTerminal
	}
	read := func(p string) (string, error) {
		fmt.Fprint(cmd.ErrOrStderr(), p)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		return string(b), nil
	}
	pw, err := read(prompt)
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	if confirm {
		again, err := read("Again: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the two passwords differ")
		}
	}
	return pw, nil
}

// readSecretStdin reads a secret as the first line of standard input.
func readSecretStdin(cmd *cobra.Command) (string, error) {
	r := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 64<<10))
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("standard input holds no password")
	}
	return line, nil
}

// secret reads a password from standard input or the terminal.
func secret(cmd *cobra.Command, fromStdin bool, prompt string, confirm bool) (string, error) {
	if fromStdin {
		return readSecretStdin(cmd)
	}
	pw, err := promptSecret(cmd, prompt, confirm)
	if errors.Is(err, errNoTerminal) {
		err = fmt.Errorf("%w: use --password-stdin", err)
	}
	return pw, err
}

// promptLine reads a line from the terminal (such as a user name).
func promptLine(cmd *cobra.Command, prompt string) (string, error) {
	if !isTerminal(cmd.InOrStdin()) {
		return "", errors.New("no terminal to prompt on")
	}
	fmt.Fprint(cmd.ErrOrStderr(), prompt)
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// ---- output

// printJSON writes a server answer (or any JSON) indented, on stdout.
func printJSON(cmd *cobra.Command, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %v", err)
	}
	b.WriteByte('\n')
	_, err := cmd.OutOrStdout().Write(b.Bytes())
	return err
}

// printValue writes v as indented JSON on stdout.
func printValue(cmd *cobra.Command, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
	return err
}

// table prints aligned columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if header != nil {
		fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		for i, c := range r {
			r[i] = strings.Map(func(r rune) rune {
				if r == '\t' || r == '\n' || r == '\r' {
					return ' '
				}
				return r
			}, c)
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fields prints "Name:  value" lines, aligned, skipping empty values.
func fields(w io.Writer, kv ...string) error {
	var rows [][]string
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			rows = append(rows, []string{kv[i] + ":", kv[i+1]})
		}
	}
	return table(w, nil, rows)
}

// humanSize formats a byte count with binary units.
func humanSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		f /= 1024
		if f < 1024 || u == "PiB" {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return ""
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// splitList splits "a,b, c" into its non-empty items.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// splitRepoPath splits "REPO/PATH" into the repository key and the path.
func splitRepoPath(arg string) (repo, path string, err error) {
	arg = strings.TrimPrefix(arg, "/")
	repo, path, _ = strings.Cut(arg, "/")
	if repo == "" {
		return "", "", fmt.Errorf("%q does not name a repository: use REPO/PATH", arg)
	}
	return repo, path, nil
}
