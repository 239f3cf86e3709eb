package cli

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/trail"
)

func (a *app) auditProveCmd() *cobra.Command {
	var storeURL, trustRoot string
	var seq int64
	c := &cobra.Command{
		Use:   "prove --seq N",
		Short: "print an inclusion proof of entry N against the newest checkpoint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("seq") {
				return usage(errors.New("audit prove needs the entry to prove: pass --seq N"),
					"N is the number in the first column of `groundzero audit show` (or its \"seq\" with --format json)")
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			reg, _, err := a.trustedRegistry(r, trustRoot)
			if err != nil {
				return err
			}
			store, err := a.openStore(r, storeURL)
			if err != nil {
				return err
			}
			rep, err := trail.Verify(a.ctx, store, trail.VerifyConfig{Registry: reg, Now: a.now, Proofs: true})
			if err != nil {
				return usage(err, "")
			}
			if !rep.OK() {
				return failed(fmt.Errorf("the trail does not verify: %s", rep.Problem), "run `groundzero audit verify`")
			}
			if rep.Latest == nil || seq < 0 || seq >= rep.Latest.Size {
				return failed(fmt.Errorf("entry %d is not covered by a signed checkpoint (newest covers %d entries)", seq, sizeOf(rep)),
					"sign a checkpoint first: `groundzero audit checkpoint --key KEYSPEC`")
			}
			proof, err := audit.Prove(rep.Hashes, seq, rep.Latest.Size)
			if err != nil {
				return failed(err, "")
			}
			var line []byte
			trail.Scan(a.ctx, store, []byte(fmt.Sprintf(`,"seq":%d,`, seq)), func(l []byte) error {
				if e, err := audit.ParseEntry(l); err == nil && e.Seq == seq {
					line = append([]byte(nil), l...)
				}
				return nil
			})
			cps, err := store.Checkpoints(a.ctx)
			if err != nil {
				return usage(err, "")
			}
			doc := proofDoc{Format: proofFormat, Seq: seq, Entry: string(line), Checkpoint: string(rep.Latest.Marshal()), Signatures: map[string]string{},
				Description: "RFC 6962 inclusion proof of the entry in the tree of the signed checkpoint; check with `groundzero audit check-proof FILE`"}
			for _, sc := range cps {
				if sc.Name == rep.Latest.Name {
					for ext, data := range sc.Sigs {
						doc.Signatures[ext] = string(data)
					}
				}
			}
			for _, h := range proof {
				doc.Proof = append(doc.Proof, base64.StdEncoding.EncodeToString(h[:]))
			}
			return a.printJSON(doc)
		},
	}
	c.Flags().Int64Var(&seq, "seq", -1, "the entry to prove")
	storeFlag(c, &storeURL)
	trustRootFlag(c, &trustRoot)
	return c
}

func sizeOf(rep *audit.Report) int64 {
	if rep.Latest == nil {
		return 0
	}
	return rep.Latest.Size
}
