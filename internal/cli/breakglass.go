package cli

import "github.com/spf13/cobra"

func (a *app) breakglassCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "breakglass",
		Short:  "open, close and show a break-glass window",
		Hidden: true,
	}
}
