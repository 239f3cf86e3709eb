package cli

import (
	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/gate"
)

func (a *app) tagCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "tag",
		Short: "verify signed release tags",
	}
	var trustRoot, format string
	verify := &cobra.Command{
		Use:   "verify [REF]",
		Short: "verify that REF (default HEAD) is a signed annotated tag of HEAD by a release signer",
		Long: `verify checks that REF resolves to an annotated tag object of HEAD's commit,
signed (OpenPGP or SSH, as git tag -s makes it) by a current signer with role
release, and that governed files have no uncommitted changes. With the
default REF, HEAD, any tag that points at HEAD may satisfy it. Verification is
pure Go; git verify-tag is not used.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			ref := "HEAD"
			if len(args) == 1 {
				ref = args[0]
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			env, err := a.gates(r, a.trustRoot(trustRoot), false)
			if err != nil {
				return err
			}
			return a.finishGates(r, env, format, []gate.Result{env.TagGate(a.ctx, ref)})
		},
	}
	trustRootFlag(verify, &trustRoot)
	formatFlagVar(verify, &format, "text", "json")
	c.AddCommand(verify)
	return c
}
