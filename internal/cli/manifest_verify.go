package cli

import (
	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/gate"
)

func (a *app) manifestVerifyCmd() *cobra.Command {
	var trustRoot, format string
	c := &cobra.Command{
		Use:   "verify",
		Short: "check every governed file against MANIFEST and its signatures",
		Long: `verify checks that every listed file matches its SHA-256, that no governed
file is unlisted, and that MANIFEST carries signatures from at least
gates.manifest.approvals distinct approver or security signers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			env, err := a.gates(r, a.trustRoot(trustRoot), false)
			if err != nil {
				return err
			}
			return a.finishGates(r, env, format, []gate.Result{env.AnchorGate(), env.ManifestGate(a.ctx)})
		},
	}
	trustRootFlag(c, &trustRoot)
	formatFlagVar(c, &format, "text", "json")
	return c
}
