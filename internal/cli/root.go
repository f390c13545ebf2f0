// Package cli is the coffer command line: `coffer serve` runs the server;
// the other subcommands talk to a server through the management API.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cofferhq/coffer/internal/app"
	"github.com/cofferhq/coffer/internal/config"
)

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := NewRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "coffer:", err)
		return 1
	}
	return 0
}

// NewRoot builds the command tree.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "coffer",
		Short:         "Coffer: one artifact repository for every package format",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serveCmd(stderr))
	root.AddCommand(storageCommands(stderr)...)
	addClientCommands(root)
	return root
}

func serveCmd(stderr io.Writer) *cobra.Command {
	var cfgPath, listen, dataDir, addrFile, logFormat string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Coffer server (no configuration needed: SQLite and files in ./coffer-data on 127.0.0.1:8080)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath, config.Options{Formats: app.FormatNames()})
			if err != nil {
				return err
			}
			if listen != "" {
				cfg.Server.Listen = listen
			}
			if dataDir != "" {
				cfg.Storage.DataDir = dataDir
			}
			if logFormat != "" {
				cfg.Log.Format = logFormat
			}
			if probs := config.Validate(&cfg, nil, config.Options{Formats: app.FormatNames()}); len(probs) > 0 {
				return &config.Problems{Source: "flags", List: probs}
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return app.Run(ctx, cfg, addrFile, app.Options{Stderr: stderr})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "configuration file (YAML)")
	f.StringVar(&listen, "listen", "", "listen address (default 127.0.0.1:8080)")
	f.StringVar(&dataDir, "data", "", "data directory (default ./coffer-data)")
	f.StringVar(&logFormat, "log-format", "", "log format: text or json")
	f.StringVar(&addrFile, "addr-file", "", "write the bound address to this file once serving (for scripts and tests)")
	return cmd
}
