package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signers"
)

type signerJSON struct {
	ID          string   `json:"id"`
	Name        string   `json:"name,omitempty"`
	Roles       []string `json:"roles"`
	Keys        []string `json:"keys"`
	Status      string   `json:"status"`
	ValidAfter  string   `json:"valid_after,omitempty"`
	ValidBefore string   `json:"valid_before,omitempty"`
	RevokedAt   string   `json:"revoked_at,omitempty"`
	Reason      string   `json:"revocation_reason,omitempty"`
}

func (a *app) signersListCmd() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "list",
		Short: "list the signers of the current registry version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			chain, err := signers.Load(r)
			if err != nil {
				return registryError(err)
			}
			reg := chain.Current()
			var list []signerJSON
			for _, s := range reg.Signers {
				j := signerJSON{ID: s.ID, Name: s.Name, Roles: s.Roles, Status: s.Status(a.now), ValidAfter: s.ValidAfter, ValidBefore: s.ValidBefore}
				for _, k := range s.Keys {
					j.Keys = append(j.Keys, k.Fingerprint)
				}
				if s.Revoked != nil {
					j.RevokedAt, j.Reason = s.Revoked.At, s.Revoked.Reason
				}
				list = append(list, j)
			}
			if format == "json" {
				if list == nil {
					list = []signerJSON{}
				}
				return a.printJSON(map[string]any{
					"version": reg.Version, "sha256": reg.Hash(), "threshold": reg.EffectiveThreshold(),
					"signed": chain.CurrentSigned(), "signers": list,
				})
			}
			fmt.Fprintf(a.stdout, "# %s version %d, sha256:%s, threshold %d, %s\n", repo.SignersFile, reg.Version, reg.Hash(), reg.EffectiveThreshold(),
				map[bool]string{true: "signed", false: "unsigned"}[chain.CurrentSigned()])
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tROLES\tSTATUS\tKEYS")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, strings.Join(s.Roles, ","), s.Status, strings.Join(s.Keys, " "))
			}
			return tw.Flush()
		},
	}
	formatFlagVar(c, &format, "text", "json")
	return c
}
