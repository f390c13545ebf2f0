// Command coffer is the Coffer artifact repository: `coffer serve` runs it,
// the other subcommands manage a running server.
package main

import (
	"os"

	"github.com/cofferhq/coffer/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
