package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signers"
)

func (a *app) signersRevokeCmd() *cobra.Command {
	var id, reason string
	c := &cobra.Command{
		Use:   "revoke --id ID --reason TEXT",
		Short: "revoke a signer: none of their signatures verify from then on, whenever made",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if id == "" || strings.TrimSpace(reason) == "" {
				return usage(errors.New("--id and --reason are required"), "")
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			reg, err := signers.Edit(r, func(reg *signers.Registry) error {
				s := reg.Lookup(id)
				if s == nil {
					return usage(fmt.Errorf("no signer %q in %s", id, repo.SignersFile), "see `groundzero signers list`")
				}
				if s.Revoked != nil {
					return usage(fmt.Errorf("signer %q is already revoked (%s)", id, s.Revoked.At), "")
				}
				s.Revoked = &signers.Revocation{At: a.now.Format(time.RFC3339), Reason: reason}
				return nil
			})
			if err != nil {
				var e *Error
				if errors.As(err, &e) {
					return e
				}
				return registryError(err)
			}
			fmt.Fprintln(a.stdout, repo.SignersFile)
			a.info("signer %s revoked in %s version %d", id, repo.SignersFile, reg.Version)
			if reg.Version > 1 {
				a.info("version %d needs signatures from version %d's security signers: `groundzero signers sign`", reg.Version, reg.Version-1)
			}
			rec := a.recorder(r)
			rec.add("signers.revoke", id, map[string]any{"reason": reason, "version": reg.Version})
			return rec.flush(nil)
		},
	}
	c.Flags().StringVar(&id, "id", "", "signer id")
	c.Flags().StringVar(&reason, "reason", "", "why the signer is revoked")
	return c
}
