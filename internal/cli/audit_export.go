package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/trail"
)

func (a *app) auditExportCmd() *cobra.Command {
	var storeURL, to string
	c := &cobra.Command{
		Use:   "export --to URL",
		Short: "copy the trail and its artifacts to WORM object storage; idempotent",
		Long: `export copies the entries the target lacks, every checkpoint with its
signatures, and the artifacts (apply logs) the target lacks. What the target
holds already must be byte-identical. The target must keep its objects under
Object Lock, unless governance/policy.yaml waives it (evidence.waive:
[{capability: object_lock, reason: ...}]). The export is recorded in the trail.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usage(errors.New("--to is required"), "for example --to s3://evidence-bucket/trail")
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			src, err := a.openStore(r, storeURL)
			if err != nil {
				return err
			}
			dst, err := a.openStore(r, to)
			if err != nil {
				return err
			}
			waiver := waives(a.evidencePolicy(r), policy.CapObjectLock)
			res, err := trail.Export(a.ctx, src, dst, trail.ExportOptions{AllowNoObjectLock: waiver != nil})
			rec := a.recorder(r)
			details := map[string]any{"ok": err == nil, "from": redactURL(src.URL()), "entries": res.Entries, "checkpoints": res.Checkpoints,
				"artifacts": res.Artifacts, "object_lock": res.ObjectLock}
			if waiver != nil && !res.ObjectLock {
				details["object_lock_waived"] = waiver.Reason
			}
			if err != nil {
				details["error"] = err.Error()
			}
			rec.add("audit.export", redactURL(dst.URL()), details)
			if err != nil {
				return rec.flush(exportError(err))
			}
			fmt.Fprintf(a.stdout, "exported %d entries and %d checkpoints from %s to %s\n", res.Entries, res.Checkpoints, src.URL(), dst.URL())
			fmt.Fprintf(a.stdout, "exported %d artifact%s\n", res.Artifacts, plural(res.Artifacts, "", "s"))
			if !res.ObjectLock {
				fmt.Fprintf(a.stdout, "%s has no Object Lock: waived in %s (%s)\n", dst.URL(), repo.PolicyFile, waiver.Reason)
			}
			return rec.flush(nil)
		},
	}
	c.Flags().StringVar(&storeURL, "store", "", "source store URL (default: evidence.store in policy.yaml)")
	c.Flags().StringVar(&to, "to", "", "destination store URL (s3://BUCKET/PREFIX with Object Lock, or file://DIR where policy waives it)")
	return c
}

// exportError gives an export failure its exit code and hint.
func exportError(err error) error {
	var div *trail.DivergedError
	var nol *trail.NoObjectLockError
	var te *trail.TamperError
	switch {
	case errors.As(err, &div):
		return failed(err, "the two trails have different histories; verify both with `groundzero audit verify --store`")
	case errors.As(err, &nol):
		return failed(err, "export to a bucket created with Object Lock; or, if review accepts evidence that can be rewritten, waive it in governance/policy.yaml: evidence: {waive: [{capability: object_lock, reason: ...}]}")
	case errors.As(err, &te):
		return failed(err, "someone with write access to the bucket changed the trail: verify it with `groundzero audit verify --store URL`")
	}
	return usage(err, "")
}
