package cli

import "github.com/spf13/cobra"

func (a *app) ciCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "ci",
		Short:  "show and rotate the CI identities",
		Hidden: true,
	}
}
