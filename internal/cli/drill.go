package cli

import "github.com/spf13/cobra"

func (a *app) drillCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "drill",
		Short:  "rehearse a rebuild into a scratch backend",
		Hidden: true,
	}
}
