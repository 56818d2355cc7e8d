package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// version is the release of this build. Release builds set it with
// -ldflags "-X main.version=1.2.3".
var version = "0.1.0-dev"

// newRootCommand returns the qakka command with every subcommand.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "qakka",
		Short: "Qakka is a durable message queue service",
		Long: `Qakka is a durable message queue service with a REST API.

Run a server with "qakka serve"; the other commands talk to a running server.`,
		Version: version,
		// main prints the error once; a usage dump would hide it.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})
	root.AddCommand(newServeCommand(), newVersionCommand())
	root.AddCommand(clientCommands()...)
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of qakka",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "qakka %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
