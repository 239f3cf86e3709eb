package cli

import "github.com/spf13/cobra"

func (a *app) manifestCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "manifest",
		Short: "compute, sign and verify governance/MANIFEST (sha256sum format)",
	}
	c.AddCommand(a.manifestUpdateCmd(), a.manifestSignCmd(), a.manifestVerifyCmd())
	return c
}
