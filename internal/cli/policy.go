package cli

import "github.com/spf13/cobra"

func (a *app) policyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "check the parity policy on configuration or a plan; test custom rules",
	}
	c.AddCommand(a.policyCheckCmd(), a.policyTestCmd(), a.policySchemaCmd())
	return c
}
