package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/evidence"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/trail"
)

func (a *app) evidenceExportCmd() *cobra.Command {
	var out, since, until, key, trustRoot string
	c := &cobra.Command{
		Use:   "export --out FILE [--since TIME] [--until TIME] [--key KEYSPEC]",
		Short: "write a signed evidence bundle (tar.gz) for auditors",
		Long: `export collects, from the evidence store that governance/policy.yaml names
and from the repository, everything an auditor needs to check the governed
changes of a period offline: the whole audit trail from entry 0 up to the
newest checkpoint that covers the period, with the trusted checkpoints and
their signatures; the apply logs, plans and break-glass records of the
period; the intents, revocations, backend locks, machine records and
incident reports; the signed MANIFEST, policy.yaml, signers.yaml, its earlier
versions and the public keys; verify.py and an SSH allowed-signers file. It
adds INDEX.json, listing every file's SHA-256 and the controls it
evidences, signed with --key by a registry signer, and SHA256SUMS.

--since and --until (RFC 3339 times or dates) select the records and
timeline events in scope; the trail is always whole from entry 0, so that
its chain and Merkle roots can be recomputed. Entries after the newest
checkpoint are left out until a checkpoint covers them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usage(errors.New("--out is required"), "for example --out evidence.tar.gz")
			}
			from, err := parsePeriod("--since", since, false)
			if err != nil {
				return err
			}
			to, err := parsePeriod("--until", until, true)
			if err != nil {
				return err
			}
			if !from.IsZero() && !to.IsZero() && to.Before(from) {
				return usage(fmt.Errorf("--until %s is before --since %s", until, since), "")
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			signer, spec, err := a.signer(r, key)
			if err != nil {
				return err
			}
			owner, err := a.keyOwner(r, spec)
			if err != nil {
				return err
			}
			reg, pol, err := a.trustedRegistry(r, trustRoot)
			if err != nil {
				return err
			}
			who := reg.Lookup(owner)
			if who == nil || who.Status(a.now) != "active" {
				return usage(fmt.Errorf("key %s is not the key of an active signer in governance/signers.yaml", spec),
					"sign the bundle with your own registered key: --key gpg:FINGERPRINT or --key ssh:PATH")
			}
			store, err := a.openStore(r, "")
			if err != nil {
				return err
			}
			if pol == nil {
				pol = a.evidencePolicy(r)
			}
			days := policy.DefaultRetentionDays
			var roles []string
			if pol != nil {
				days, roles = pol.Evidence.RetentionDays, pol.Gates.Checkpoint.Roles
			}
			worm := false
			if ol, ok := store.(interface{ ObjectLock() bool }); ok {
				worm = ol.ObjectLock()
			}
			if !worm {
				a.info("warning: evidence store %s keeps no WORM retention (Object Lock): what it held could have been rewritten before this export; use s3://… or gs://… with retention (evidence.retention_days: %d)", redactURL(store.URL()), days)
			}
			abs, err := filepath.Abs(out)
			if err != nil {
				return usage(err, "")
			}
			tmp, err := os.CreateTemp(filepath.Dir(abs), ".evidence-*.tmp")
			if err != nil {
				return usage(err, "--out must name a file in a writable directory")
			}
			defer os.Remove(tmp.Name())
			res, err := evidence.Export(a.ctx, tmp, evidence.ExportConfig{
				Repo: r, Store: store, StoreName: redactURL(store.URL()), Registry: reg, Roles: roles, Now: a.now,
				Since: from, Until: to, Signer: signer, Exporter: owner, RetentionDays: days, WORM: worm,
			})
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return exportBundleError(err)
			}
			if err := os.Rename(tmp.Name(), abs); err != nil {
				return usage(err, "")
			}
			rec := a.recorder(r)
			rec.add("evidence.export", filepath.Base(out), map[string]any{"index_sha256": res.IndexSHA256, "entries": res.Index.Entries,
				"files": len(res.Index.Files), "since": res.Index.Since, "until": res.Index.Until, "worm": worm, "exporter": owner})
			fmt.Fprintf(a.stdout, "wrote %s: %d files, %d bytes\n", out, len(res.Index.Files)+2, res.Bytes)
			fmt.Fprintf(a.stdout, "trail %s: entries 0 to %d, %d checkpoint(s)\n", res.Index.Origin, res.Index.Entries-1, res.Checkpoints)
			fmt.Fprintf(a.stdout, "%d artifact(s), %d governed file(s)\n", res.Artifacts, res.Records)
			fmt.Fprintf(a.stdout, "index sha256 %s, signed by %s\n", res.IndexSHA256, owner)
			switch {
			case res.Uncovered > 0 && to.IsZero():
				fmt.Fprintf(a.stdout, "%d newer entr%s not covered by a checkpoint yet, left out\n", res.Uncovered, plural(int(res.Uncovered), "y", "ies"))
			case res.Uncovered > 0:
				fmt.Fprintf(a.stdout, "%d later entries left out: the period ends before them\n", res.Uncovered)
			}
			return rec.flush(nil)
		},
	}
	c.Flags().StringVar(&out, "out", "", "the bundle `FILE` to write (.tar.gz)")
	c.Flags().StringVar(&since, "since", "", "start of the period in scope (RFC 3339 `TIME` or date)")
	c.Flags().StringVar(&until, "until", "", "end of the period in scope (RFC 3339 `TIME` or date)")
	keyFlag(c, &key)
	trustRootFlag(c, &trustRoot)
	return c
}

// exportBundleError gives an export failure its exit code and hint.
func exportBundleError(err error) error {
	var nc *evidence.NoCheckpointError
	var tl *evidence.TooLargeError
	var te *trail.TamperError
	var de *trail.DamagedError
	switch {
	case errors.As(err, &nc):
		return failed(err, "a registry signer runs `groundzero audit checkpoint --key KEYSPEC`, then export again")
	case errors.As(err, &tl):
		return failed(err, "export a shorter period with --since and --until")
	case errors.As(err, &te):
		return failed(err, "someone with write access to the bucket changed the trail: `groundzero audit verify` shows where")
	case errors.As(err, &de):
		return failed(err, "nothing is exported from a damaged trail; `groundzero audit verify` shows the damage")
	}
	return usage(err, "")
}
