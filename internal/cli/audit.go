package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signers"
)

func (a *app) auditCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "audit",
		Short: "verify, show, prove, export, ship and repair the audit trail",
	}
	c.AddCommand(a.auditVerifyCmd(), a.auditShowCmd(), a.auditProveCmd(), a.auditCheckProofCmd(),
		a.auditExportCmd(), a.auditShipCmd(), a.auditRepairCmd(), a.auditCheckpointCmd())
	return c
}

// trustedRegistry loads the signers registry and requires its chain to
// verify: checkpoint signatures are judged against it.
func (a *app) trustedRegistry(r *repo.Repo, trustRoot string) (*signers.Registry, *policy.Policy, error) {
	env, err := a.gates(r, a.trustRoot(trustRoot), false)
	if err != nil {
		return nil, nil, err
	}
	if err := trustedChain(env); err != nil {
		return nil, nil, err
	}
	return env.Registry(), env.Policy, nil
}

// trustedChain requires the registry chain to verify (from the pin, with the
// anchor's witness times, not rolled back).
func trustedChain(env *gate.Env) error {
	if res := env.SignersGate(); !res.OK {
		if env.ChainErr != nil && env.Chain == nil {
			return registryError(env.ChainErr)
		}
		return failed(errors.New(res.Detail), "the signers registry must verify before its keys can vouch for checkpoints; "+res.Hint)
	}
	return nil
}

// proofDoc is an offline-checkable inclusion proof.
type proofDoc struct {
	Format      string            `json:"format"`
	Seq         int64             `json:"seq"`
	Entry       string            `json:"entry"`
	Checkpoint  string            `json:"checkpoint"`
	Signatures  map[string]string `json:"checkpoint_signatures"`
	Proof       []string          `json:"proof"`
	Description string            `json:"description"`
}

const proofFormat = "groundzero.inclusion-proof/v1"

// waives returns policy.yaml's waiver of an evidence store capability, or
// nil: a waiver is governance, reviewed and signed with the policy, never a
// flag.
func waives(pol *policy.Policy, capability string) *policy.Waiver {
	if pol == nil {
		return nil
	}
	return pol.Evidence.Waives(capability)
}
