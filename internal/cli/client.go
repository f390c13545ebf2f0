package cli

import "github.com/spf13/cobra"

// addClientCommands adds the subcommands that talk to a running server.
func addClientCommands(root *cobra.Command) {}
