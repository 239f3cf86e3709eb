package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/signers"
)

func (a *app) manifestSignCmd() *cobra.Command {
	var keySpec string
	c := &cobra.Command{
		Use:   "sign [--key KEYSPEC]",
		Short: "add the caller's signature to governance/MANIFEST.asc or .sig",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			data, err := r.ReadFile(repo.ManifestFile, manifest.MaxSize)
			if err != nil {
				return usage(err, "run `groundzero manifest update` first")
			}
			m, err := manifest.Parse(data)
			if err != nil {
				return failed(err, "regenerate it with `groundzero manifest update`")
			}
			if problems, err := manifest.Check(a.ctx, r, m); err != nil {
				return failed(err, "")
			} else if len(problems) > 0 {
				return failed(fmt.Errorf("refusing to sign a MANIFEST that does not match the work tree: %s", problems[0]),
					"run `groundzero manifest update`, review the change, then sign")
			}
			s, _, err := a.signer(r, keySpec)
			if err != nil {
				return err
			}
			sig, err := s.Sign(a.ctx, data, signers.Namespace)
			if err != nil {
				return usage(err, "check that the key is available to gpg, ssh-keygen or the file given")
			}
			if chain, err := signers.Load(r); err == nil {
				if who, _ := chain.Current().FindKey(sig); who == nil || !who.HasAnyRole([]string{signers.RoleApprover, signers.RoleSecurity}) {
					a.info("warning: key %s is not an approver or security signer; this signature will not count", sig.Issuer())
				}
			}
			p, err := sigfile.Add(r, repo.ManifestFile, sig)
			if err != nil {
				return usage(err, "")
			}
			fmt.Fprintln(a.stdout, p)
			rec := a.recorder(r)
			rec.as(s, sig)
			rec.add("manifest.sign", repo.ManifestFile, map[string]any{"sha256": sha256hex(data), "key": sig.Issuer()})
			return rec.flush(nil)
		},
	}
	keyFlag(c, &keySpec)
	return c
}
