package cli

import "github.com/spf13/cobra"

func (a *app) ciCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "ci",
		Short: "show and rotate the CI identities",
	}
	c.AddCommand(a.ciPolicyCmd(), a.ciRotateCmd())
	return c
}
