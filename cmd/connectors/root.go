package main

import (
	"github.com/spf13/cobra"
)

// newRootCommand builds the command tree; env is the process environment,
// read once by main.
func newRootCommand(env environment) *cobra.Command {
	root := &cobra.Command{
		Use:   "connectors",
		Short: "Let workloads use other systems without holding their credentials",
		Long: "connectors runs the components of Connectors: a workload mounts a configuration whose\n" +
			"only secret is its own short-lived token, and a shared gateway swaps in the real credential.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCommand(), newControllerCommand(env), newControlCommand(env), newGatewayCommand(env),
		newCSICommand(env), newKubeconfigCommand(), newInitCommand(), newDevCommand(), newLoadtestCommand())
	return root
}
