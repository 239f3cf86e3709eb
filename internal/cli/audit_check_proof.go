package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
)

func (a *app) auditCheckProofCmd() *cobra.Command {
	var trustRoot string
	c := &cobra.Command{
		Use:   "check-proof FILE",
		Short: "verify an inclusion proof offline (and its checkpoint's signatures, inside a repository)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return usage(err, "")
			}
			data, err := io.ReadAll(io.LimitReader(f, 1<<20))
			f.Close()
			if err != nil {
				return usage(err, "")
			}
			var doc proofDoc
			dec := json.NewDecoder(strings.NewReader(string(data)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&doc); err != nil || doc.Format != proofFormat {
				return usage(fmt.Errorf("%s is not a %s document", args[0], proofFormat), "produce one with `groundzero audit prove --seq N`")
			}
			cp, err := audit.ParseCheckpoint([]byte(doc.Checkpoint))
			if err != nil {
				return failed(err, "")
			}
			var proof tlog.RecordProof
			for _, p := range doc.Proof {
				b, err := base64.StdEncoding.DecodeString(p)
				if err != nil || len(b) != tlog.HashSize {
					return failed(errors.New("proof hash is malformed"), "")
				}
				var h tlog.Hash
				copy(h[:], b)
				proof = append(proof, h)
			}
			e, err := audit.ParseEntry([]byte(doc.Entry))
			if err != nil || e.Seq != doc.Seq {
				return failed(errors.New("the entry in the proof is malformed or has another seq"), "")
			}
			if err := audit.CheckInclusion([]byte(doc.Entry), doc.Seq, cp, proof); err != nil {
				return failed(fmt.Errorf("entry %d is not in the tree of the checkpoint: %v", doc.Seq, err), "")
			}
			fmt.Fprintf(a.stdout, "entry %d (%s %s) is included in %s at size %d\n", doc.Seq, e.Action, e.Subject, cp.Origin, cp.Size)
			r, err := a.repo()
			if err != nil {
				a.info("checkpoint signatures not checked: not inside a governed repository (no signers registry)")
				return nil
			}
			reg, _, err := a.trustedRegistry(r, trustRoot)
			if err != nil {
				return err
			}
			var sigs []*signature.Signature
			for ext, d := range doc.Signatures {
				scheme, ok := signature.SchemeOfFile(ext)
				if !ok {
					return failed(fmt.Errorf("unknown signature kind %q", ext), "")
				}
				parsed, err := signature.Parse(scheme, []byte(d))
				if err != nil {
					return failed(err, "")
				}
				sigs = append(sigs, parsed...)
			}
			ids, err := signers.Count(reg.Check([]byte(doc.Checkpoint), sigs, audit.CheckpointNamespace, a.now, signers.Current),
				signers.Requirement{What: "the checkpoint", Threshold: 1})
			if err != nil {
				return failed(err, "")
			}
			fmt.Fprintf(a.stdout, "checkpoint signed by %s\n", strings.Join(ids, ", "))
			return nil
		},
	}
	trustRootFlag(c, &trustRoot)
	return c
}
