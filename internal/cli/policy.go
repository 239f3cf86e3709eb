package cli

import "github.com/spf13/cobra"

func (a *app) policyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "check the parity policy on configuration or a plan; test custom rules; export the rules for conftest",
	}
	c.AddCommand(a.policyCheckCmd(), a.policyTestCmd(), a.policyExportCmd(), a.policySchemaCmd())
	return c
}
