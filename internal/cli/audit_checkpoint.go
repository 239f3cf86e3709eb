package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/signers"
)

func (a *app) auditCheckpointCmd() *cobra.Command {
	var keySpec string
	c := &cobra.Command{
		Use:   "checkpoint [--key KEYSPEC]",
		Short: "sign a checkpoint over the whole trail now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			s, spec, err := a.signer(r, keySpec)
			if err != nil {
				return err
			}
			// Only a registry signer who may sign checkpoints vouches for
			// the trail (T35): refuse any other key before writing.
			owner, err := a.keyOwner(r, spec)
			if err != nil {
				return err
			}
			var who *signers.Signer
			if reg := a.currentRegistry(r); reg != nil && owner != "" {
				who = reg.Lookup(owner)
			}
			if err := a.mayCheckpoint(r, who); err != nil {
				return failed(fmt.Errorf("%s cannot sign checkpoints: %w", spec, err),
					"use the key of a registry signer who may sign checkpoints (gates.checkpoint.roles in governance/policy.yaml)")
			}
			// This key, not the default one, signs this command's checkpoint.
			a.ckey, a.ckeyErr = &checkpointKey{spec: spec, signer: s, owner: owner}, nil
			rec := a.recorder(r)
			rec.add("audit.checkpoint", "", nil)
			if err := rec.flush(nil); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "checkpoint signed by %s\n", owner)
			return nil
		},
	}
	keyFlag(c, &keySpec)
	return c
}
