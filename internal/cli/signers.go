package cli

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/signers"
)

func (a *app) signersCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "signers",
		Short: "manage the trusted signers registry (governance/signers.yaml)",
	}
	c.AddCommand(a.signersAddCmd(), a.signersListCmd(), a.signersRevokeCmd(), a.signersSignCmd(), a.signersPubkeyCmd())
	return c
}

// registryError maps registry loading errors to exit codes.
func registryError(err error) error {
	var ie *signers.InvalidError
	if errors.As(err, &ie) {
		return failed(err, ie.Hint)
	}
	if errors.Is(err, os.ErrNotExist) {
		return usage(err, "run `groundzero init` first")
	}
	return usage(err, "")
}
