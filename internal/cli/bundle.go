package cli

import "github.com/spf13/cobra"

func (a *app) bundleCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "bundle",
		Short:  "create, verify and restore the offline rebuild bundle",
		Hidden: true,
	}
}
