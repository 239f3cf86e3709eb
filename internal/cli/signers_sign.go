package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/signers"
)

func (a *app) signersSignCmd() *cobra.Command {
	var keySpec string
	c := &cobra.Command{
		Use:   "sign [--key KEYSPEC]",
		Short: "sign the current registry version",
		Long: `sign adds the caller's signature over the exact bytes of
governance/signers.yaml to governance/signers.yaml.asc (OpenPGP) or .sig (SSH,
namespace "groundzero"). Version 1 needs threshold of its own security
signers; version N+1 needs threshold of version N's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			chain, err := signers.Load(r)
			if err != nil {
				return registryError(err)
			}
			s, _, err := a.signer(r, keySpec)
			if err != nil {
				return err
			}
			cur := chain.Current()
			sig, err := s.Sign(a.ctx, cur.Raw, signers.Namespace)
			if err != nil {
				return usage(err, "check that the key is available to gpg, ssh-keygen or the file given")
			}
			by := cur
			if len(chain.Versions) > 1 {
				by = chain.Versions[len(chain.Versions)-2]
			}
			if who, _ := by.FindKey(sig); who == nil || !who.HasRole(signers.RoleSecurity) {
				a.info("warning: key %s is not a security signer of version %d; this signature will not count toward approving version %d", sig.Issuer(), by.Version, cur.Version)
			}
			p, err := sigfile.Add(r, repo.SignersFile, sig)
			if err != nil {
				return usage(err, "")
			}
			fmt.Fprintln(a.stdout, p)
			a.info("signed %s version %d (sha256:%s)", repo.SignersFile, cur.Version, cur.Hash())
			rec := a.recorder(r)
			rec.as(s, sig)
			rec.add("signers.sign", repo.SignersFile, map[string]any{"version": cur.Version, "sha256": cur.Hash(), "key": sig.Issuer()})
			return rec.flush(nil)
		},
	}
	keyFlag(c, &keySpec)
	return c
}
