package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	pubevidence "github.com/groundzero/groundzero/evidence"
	"github.com/groundzero/groundzero/internal/evidence"
)

type evidenceJSON struct {
	OK              bool          `json:"ok"`
	File            string        `json:"file"`
	Origin          string        `json:"origin"`
	Entries         int64         `json:"entries"`
	Files           int           `json:"files"`
	Checkpoints     int           `json:"checkpoints_valid"`
	Records         int           `json:"records_checked"`
	IndexSigners    []string      `json:"index_signers"`
	RegistryVersion int           `json:"registry_version"`
	RegistrySHA256  string        `json:"registry_sha256"`
	Pinned          bool          `json:"pinned"`
	Problems        []problemJSON `json:"problems"`
}

type problemJSON struct {
	File   string `json:"file"`
	Reason string `json:"reason"`
}

// verifyBundle opens and verifies a bundle file.
func (a *app) verifyBundle(file, trustRoot string) (*evidence.Report, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, usage(err, "give the path of a bundle written by `groundzero evidence export`")
	}
	defer f.Close()
	rep, err := evidence.Verify(a.ctx, f, evidence.VerifyConfig{Now: a.now, TrustRoot: a.trustRoot(trustRoot)})
	if err != nil {
		return nil, bundleError(file, err)
	}
	return rep, nil
}

// bundleVerdict is the error for a bundle that does not verify, or nil.
func bundleVerdict(file string, rep *evidence.Report) error {
	if rep.OK() {
		return nil
	}
	hint := "the bundle was changed after it was signed, or is incomplete: ask the exporter for a fresh copy, and compare with the WORM evidence store"
	for _, p := range rep.Problems {
		if p.Path == pubevidence.RepoDir+"/governance/signers.yaml" {
			hint = "the bundle's signers registry does not verify from the trust root: check --trust-root (or GROUNDZERO_TRUST_ROOT) against the pin you hold"
			break
		}
	}
	return &Error{Code: ExitFailed, Err: fmt.Errorf("evidence bundle %s does not verify: %s", file, problemsSummary(rep.Problems)), Hint: hint}
}

func (a *app) evidenceVerifyCmd() *cobra.Command {
	var trustRoot, format string
	c := &cobra.Command{
		Use:   "verify FILE [--trust-root SHA256]",
		Short: "check an evidence bundle offline: files, signatures, chain and tree",
		Long: `verify checks a bundle offline, with no network and no repository: every
file's SHA-256 against INDEX.json, no file missing or extra; the index's
signature by a signer of the bundle's signers registry, whose chain of
versions is anchored by --trust-root (or GROUNDZERO_TRUST_ROOT) when given,
and trusted on first use otherwise; the audit trail's hash chain and Merkle
tree against its checkpoints and their signatures; and the signatures of
every signed record. A modified, missing or extra file fails, naming it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			file := args[0]
			rep, err := a.verifyBundle(file, trustRoot)
			if err != nil {
				return err
			}
			if format == "json" {
				out := evidenceJSON{OK: rep.OK(), File: file, IndexSigners: append([]string{}, rep.IndexSigners...),
					RegistryVersion: rep.RegistryVersion, RegistrySHA256: rep.RegistryHash, Pinned: rep.Pinned,
					Records: len(rep.Records), Problems: []problemJSON{}}
				if rep.Index != nil {
					out.Origin, out.Entries, out.Files = rep.Index.Origin, rep.Index.Entries, len(rep.Index.Files)
				}
				if rep.Trail != nil {
					out.Checkpoints = rep.Trail.CheckpointsValid
				}
				for _, p := range rep.Problems {
					out.Problems = append(out.Problems, problemJSON{File: p.Path, Reason: p.Reason})
				}
				a.printJSON(out)
				return bundleVerdict(file, rep)
			}
			a.printBundle(file, rep)
			return bundleVerdict(file, rep)
		},
	}
	trustRootFlag(c, &trustRoot)
	formatFlagVar(c, &format, "text", "json")
	return c
}

// printBundle writes what verification checked and found.
func (a *app) printBundle(file string, rep *evidence.Report) {
	w := a.stdout
	fmt.Fprintf(w, "Bundle %s\n", file)
	if rep.Index != nil {
		ix := rep.Index
		fmt.Fprintf(w, "exported %s by %s from %s\n", ix.Created, ix.Exporter, ix.Store)
		fmt.Fprintf(w, "%d files checked against the index (SHA-256)\n", len(ix.Files))
	}
	switch {
	case rep.RegistryVersion == 0:
	case rep.Pinned:
		fmt.Fprintf(w, "signers registry version %d (%s), anchored by the trust-root pin\n", rep.RegistryVersion, rep.RegistryHash)
	default:
		fmt.Fprintf(w, "signers registry version %d (%s): trust on first use, no --trust-root or GROUNDZERO_TRUST_ROOT given\n", rep.RegistryVersion, rep.RegistryHash)
	}
	if len(rep.IndexSigners) > 0 {
		fmt.Fprintf(w, "index signed by %s\n", strings.Join(rep.IndexSigners, ", "))
	}
	if t := rep.Trail; t != nil {
		fmt.Fprintf(w, "%d entries checked (hash chain and Merkle tree), %d checkpoint(s) valid", t.Entries, t.CheckpointsValid)
		if t.Latest != nil {
			fmt.Fprintf(w, ", the newest of size %d signed by %s", t.Latest.Size, strings.Join(t.Latest.Signers, ", "))
		}
		fmt.Fprintln(w)
	}
	if rep.Registry != nil {
		fmt.Fprintf(w, "%d signed record(s) checked\n", len(rep.Records))
	}
	for _, rc := range rep.Records {
		for _, n := range rc.Notes {
			fmt.Fprintf(w, "note  %s: %s\n", rc.Path, n)
		}
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "FAIL  %s: %s\n", p.Path, p.Reason)
	}
	if rep.OK() {
		fmt.Fprintf(w, "OK: %s verifies\n", file)
	} else {
		fmt.Fprintf(w, "INVALID: %d problem(s)\n", len(rep.Problems))
	}
}
