package cli

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/spf13/cobra"
)

func (g *globals) gcCmd() *cobra.Command {
	var dry bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Run garbage collection on the server now: delete blobs nothing references (administrators)",
		Long: "Run garbage collection on the server now. Blobs no artifact references, and that no upload\n" +
			"leased within the grace period, are deleted while the server keeps serving; abandoned upload\n" +
			"sessions are removed too. --dry-run reports what would be reclaimed and changes nothing.",
		Args: cobra.NoArgs,
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "report what would be reclaimed, delete nothing")
	cmd.RunE = g.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		c, err := g.client(cmd)
		if err != nil {
			return err
		}
		var rep struct {
			DryRun  bool   `json:"dry_run"`
			Blobs   int    `json:"blobs"`
			Bytes   int64  `json:"bytes"`
			Uploads int    `json:"uploads"`
			Started string `json:"started"`
		}
		raw, err := c.JSON(ctx, http.MethodPost, apiPath("gc"), nil, map[string]bool{"dry_run": dry}, &rep)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(cmd, raw)
		}
		verb := "Reclaimed"
		if rep.DryRun {
			verb = "Would reclaim"
		}
		return fields(cmd.OutOrStdout(),
			verb, fmt.Sprintf("%s in %d blobs", humanSize(rep.Bytes), rep.Blobs),
			"Bytes", strconv.FormatInt(rep.Bytes, 10),
			"Upload sessions expired", strconv.Itoa(rep.Uploads))
	})
	return cmd
}
