package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// progressThreshold is the size above which transfers show a progress bar on
// a terminal.
const progressThreshold = 1 << 20

// progress returns a progress bar on stderr for a transfer of size bytes (-1
// when unknown), or nil when none is wanted: never with json output; with
// --progress always; else for files over 1 MiB when stderr is a terminal.
func (g *globals) progress(cmd *cobra.Command, size int64, force bool, desc string) *progressbar.ProgressBar {
	if g.json() {
		return nil
	}
	stderr := cmd.ErrOrStderr()
	if !force && !(size > progressThreshold && isTerminal(stderr)) {
		return nil
	}
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionFullWidth(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }),
	)
}

// endProgress finishes a bar after success, or leaves its line after a
// failure so that the error is printed below it.
func endProgress(bar *progressbar.ProgressBar, cmd *cobra.Command, err error) {
	if bar == nil {
		return
	}
	if err == nil {
		bar.Finish()
		return
	}
	bar.Exit()
	fmt.Fprintln(cmd.ErrOrStderr())
}

type pushResult struct {
	Repo        string            `json:"repo"`
	Path        string            `json:"path"`
	Size        int64             `json:"size"`
	DownloadURI string            `json:"downloadUri"`
	Unchanged   bool              `json:"unchanged"`
	Checksums   map[string]string `json:"checksums"`
}

func (g *globals) pushCmd() *cobra.Command {
	var showProgress bool
	var contentType string
	cmd := &cobra.Command{
		Use:   "push REPO/PATH FILE",
		Short: "Upload a file to a repository (the server verifies its SHA-256)",
		Long: `Upload FILE to PATH in repository REPO. The file's SHA-256 is computed first
and sent as X-Checksum-Sha256, so the server refuses bytes that do not match.
A PATH ending in "/" receives FILE under its own name.`,
		Example: `  coffer push raw-dev/tools/v1.2.0/tool.tar.gz ./dist/tool.tar.gz
  coffer push raw-dev/tools/v1.2.0/ ./dist/tool.tar.gz`,
		Args: cobra.ExactArgs(2),
	}
	cmd.Flags().BoolVar(&showProgress, "progress", false, "show a progress bar even for small files or without a terminal")
	cmd.Flags().StringVar(&contentType, "content-type", "", "media type to store (default: from the file name)")
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		repo, p, err := splitRepoPath(args[0])
		if err != nil {
			return err
		}
		file := args[1]
		if p == "" || strings.HasSuffix(p, "/") {
			p += filepath.Base(file)
		}
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", file)
		}
		size := st.Size()
		hbar := g.progress(cmd, size, showProgress, "sha256 "+filepath.Base(file))
		sum, err := hashFile(f, size, hbar)
		endProgress(hbar, cmd, err)
		if err != nil {
			return fmt.Errorf("hashing %s: %w", file, err)
		}
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		bar := g.progress(cmd, size, showProgress, "push "+filepath.Base(p))
		body := func() io.Reader {
			var r io.Reader = io.NewSectionReader(f, 0, size)
			if bar != nil {
				bar.Reset()
				r = io.TeeReader(r, bar)
			}
			return r
		}
		req, err := c.NewRequest(ctx, http.MethodPut, repoURLPath(repo, p), nil, body())
		if err != nil {
			return err
		}
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(body()), nil }
		req.Header.Set("X-Checksum-Sha256", sum)
		req.Header.Set("Accept", "application/json")
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if size > 0 {
			req.Header.Set("Expect", "100-continue")
		}
		resp, err := c.Do(req)
		endProgress(bar, cmd, err)
		if err != nil {
			return fmt.Errorf("push %s/%s: %w", repo, p, err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody))
		if err != nil {
			return fmt.Errorf("push %s/%s: reading the answer: %w", repo, p, err)
		}
		if g.json() {
			if json.Valid(raw) {
				return printJSON(cmd, raw)
			}
			return printValue(cmd, map[string]any{"repo": repo, "path": p, "size": size, "checksums": map[string]string{"sha256": sum}})
		}
		var res pushResult
		json.Unmarshal(raw, &res)
		if res.Checksums["sha256"] != "" && res.Checksums["sha256"] != sum {
			return fmt.Errorf("push %s/%s: the server stored sha256 %s, but the file's is %s", repo, p, res.Checksums["sha256"], sum)
		}
		w := cmd.OutOrStdout()
		if res.Unchanged {
			fmt.Fprintf(w, "%s/%s already holds these bytes (%s, sha256 %s); nothing changed.\n", repo, p, humanSize(size), sum)
		} else {
			fmt.Fprintf(w, "Pushed %s to %s/%s (%s, sha256 %s).\n", file, repo, p, humanSize(size), sum)
		}
		if res.DownloadURI != "" {
			fmt.Fprintln(w, res.DownloadURI)
		}
		return nil
	})
	return cmd
}

// hashFile returns the hex SHA-256 of the first size bytes of f.
func hashFile(f *os.File, size int64, bar *progressbar.ProgressBar) (string, error) {
	h := sha256.New()
	var w io.Writer = h
	if bar != nil {
		w = io.MultiWriter(h, bar)
	}
	n, err := io.Copy(w, io.NewSectionReader(f, 0, size))
	if err != nil {
		return "", err
	}
	if n != size {
		return "", fmt.Errorf("read %d of %d bytes: the file changed", n, size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (g *globals) pullCmd() *cobra.Command {
	var out string
	var showProgress bool
	cmd := &cobra.Command{
		Use:   "pull REPO/PATH",
		Short: "Download a file from a repository, verifying its SHA-256",
		Long: `Download PATH from repository REPO into a file (default: the last segment of
PATH, in the current directory; -O - writes to standard output). The bytes go
to a temporary file that replaces the target only once complete and verified
against the server's X-Checksum-Sha256.`,
		Example: `  coffer pull raw-release/tools/v1.2.0/tool.tar.gz
  coffer pull raw-release/tools/v1.2.0/tool.tar.gz -O /tmp/tool.tgz`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVarP(&out, "output-file", "O", "", "where to write (- for standard output)")
	cmd.Flags().BoolVar(&showProgress, "progress", false, "show a progress bar even for small files or without a terminal")
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		repo, p, err := splitRepoPath(args[0])
		if err != nil {
			return err
		}
		p = strings.TrimSuffix(p, "/")
		if p == "" {
			return fmt.Errorf("%q names a repository, not a file: use REPO/PATH (coffer ls %s lists it)", args[0], repo)
		}
		if out == "" {
			out = path.Base(p)
		}
		if out == "-" && g.json() {
			return errors.New("-O - writes the file to standard output, which --output json also wants")
		}
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		req, err := c.NewRequest(ctx, http.MethodGet, repoURLPath(repo, p), nil, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("pull %s/%s: %w", repo, p, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("pull %s/%s: the server answered %s", repo, p, resp.Status)
		}
		if strings.HasSuffix(resp.Request.URL.Path, "/") {
			return fmt.Errorf("pull %s/%s: that is a folder (coffer ls %s/%s lists it)", repo, p, repo, p)
		}
		res, err := g.receive(cmd, resp, out, showProgress, "pull "+path.Base(p))
		if err != nil {
			return fmt.Errorf("pull %s/%s: %w", repo, p, err)
		}
		if msg := resp.Header.Get("X-Coffer-Deprecated"); msg != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s/%s is deprecated: %s\n", repo, p, msg)
		}
		if g.json() {
			return printValue(cmd, map[string]any{"repo": repo, "path": p, "file": out, "size": res.size, "sha256": res.sha256,
				"verified": res.verified, "deprecated": resp.Header.Get("X-Coffer-Deprecated")})
		}
		w, dest := cmd.OutOrStdout(), out
		if out == "-" {
			w, dest = cmd.ErrOrStderr(), "standard output"
		}
		how := "verified"
		if !res.verified {
			how = "not verified: the server sent no checksum"
		}
		fmt.Fprintf(w, "Pulled %s/%s to %s (%s, sha256 %s %s).\n", repo, p, dest, humanSize(res.size), res.sha256, how)
		return nil
	})
	return cmd
}

type received struct {
	size     int64
	sha256   string
	verified bool
}

// receive writes the body of resp to out (a temporary file renamed into
// place, or stdout for "-"), checking its length and SHA-256.
func (g *globals) receive(cmd *cobra.Command, resp *http.Response, out string, showProgress bool, desc string) (res received, err error) {
	want := strings.ToLower(strings.TrimSpace(resp.Header.Get("X-Checksum-Sha256")))
	var dst io.Writer
	var tmp *os.File
	if out == "-" {
		dst = cmd.OutOrStdout()
	} else {
		if st, err := os.Stat(out); err == nil && st.IsDir() {
			return res, fmt.Errorf("%s is a directory: give a file name with -O", out)
		}
		tmp, err = os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".coffer-*")
		if err != nil {
			return res, err
		}
		defer func() {
			if err != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		dst = tmp
	}
	h := sha256.New()
	bar := g.progress(cmd, resp.ContentLength, showProgress, desc)
	ws := []io.Writer{dst, h}
	if bar != nil {
		ws = append(ws, bar)
	}
	n, err := io.Copy(io.MultiWriter(ws...), resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("received %d of %d bytes", n, resp.ContentLength)
	}
	endProgress(bar, cmd, err)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		}
		return res, fmt.Errorf("download failed: %w", err)
	}
	res = received{size: n, sha256: hex.EncodeToString(h.Sum(nil))}
	if want != "" {
		if want != res.sha256 {
			where := "nothing was written"
			if out == "-" {
				where = "discard what was written to standard output"
			}
			return res, fmt.Errorf("checksum mismatch: the server declared sha256 %s but the %d bytes received hash to %s; %s", want, n, res.sha256, where)
		}
		res.verified = true
	}
	if tmp == nil {
		return res, nil
	}
	if err = tmp.Chmod(0o644); err == nil {
		if err = tmp.Sync(); err == nil {
			err = tmp.Close()
		}
	}
	if err == nil {
		err = os.Rename(tmp.Name(), out)
	}
	return res, err
}
