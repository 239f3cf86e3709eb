package cli

import "github.com/spf13/cobra"

func (a *app) evidenceCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "evidence",
		Short:  "export, verify and report an evidence bundle for auditors",
		Hidden: true,
	}
}
