package cli

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/repo"
)

func defaultPlanPath(r *repo.Repo, env string) string {
	return filepath.Join(r.Abs(repo.LocalStateDir), "plans", env+".tfplan")
}

func (a *app) planCmd() *cobra.Command {
	var env, dir, out, tfBinary, trustRoot, format string
	var destroy, ci bool
	c := &cobra.Command{
		Use:   "plan --env ENV [--dir DIR] [--out FILE] [--ci]",
		Short: "run the gates, then a saved OpenTofu plan checked against the parity policy",
		Long: `plan runs the static gates (policy, anchor, signers, manifest, and the
signed tag when policy.yaml requires it), the engine gate (the binary, the
configuration directory policy.yaml declares for the environment, its
modules and provider lock), the parity policy on the configuration, then
` + "`tofu init`, `tofu plan -out` and `tofu show -json`" + ` in a private working
directory, and the parity policy on the plan. It records the plan's SHA-256,
what it adds, changes and destroys, and what ran, and prints them. The saved
plan (default .groundzero/plans/ENV.tfplan) is what an intent approves and
apply applies. The plan and its ` + "`tofu show -json`" + ` rendering are kept in the
evidence store as plan-SHA256.tfplan and plan-SHA256.json, where
` + "`groundzero intent approve`" + ` fetches them to show approvers what they sign.

With --ci the ci gate runs after the static gates: the runner's OIDC ID
token is verified against the ci section of policy.yaml (any ref), and the
runner is the actor of the audit entries.

--format json prints one JSON object instead of text: command, ok, env,
gates (name, ok, detail, hint), plan (file, sha256, summary {add, change,
destroy}, changes [{symbol, action, address}], artifacts), entries (the
audit entries recorded) and error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			run, err := a.governedRun(r, env, dir, tfBinary, trustRoot, false)
			if err != nil {
				return err
			}
			defer run.Close()
			if err := run.NeedEnv(); err != nil {
				return govErr(err)
			}
			stop := func(err error) error {
				if format == "json" {
					entries, result := a.finishRunJSON(run, err)
					return a.printRunDoc(&runDoc{Command: "plan"}, run, entries, result)
				}
				return a.finishRun(run, "text", err)
			}
			if ok, err := run.Static(a.ctx, false, run.EnvName); !ok || err != nil {
				return stop(err)
			}
			if ci && !run.CIGate(a.ctx, false, nil) {
				return stop(nil)
			}
			if out == "" {
				out = defaultPlanPath(r, run.EnvName)
			}
			if out, err = filepath.Abs(out); err != nil {
				return usage(err, "")
			}
			p, err := run.MakePlan(a.ctx, out, destroy)
			if format == "json" {
				doc := &runDoc{Command: "plan"}
				entries, result := a.finishRunJSON(run, err)
				if p != nil {
					rel, _ := filepathRel(r.Root, out)
					doc.Plan = newPlanDoc(p, rel)
					if p.ArtifactErr != nil && result == nil {
						result = planArtifactErr(p)
					}
				}
				return a.printRunDoc(doc, run, entries, result)
			}
			result := a.finishRun(run, "text", err)
			if p == nil {
				return result
			}
			rel, _ := filepathRel(r.Root, out)
			fmt.Fprintln(a.stdout, p.Summary)
			fmt.Fprintf(a.stdout, "plan file: %s\nplan sha256: %s\n", rel, p.SHA256)
			if p.ArtifactErr != nil {
				err := planArtifactErr(p)
				if result != nil {
					PrintError(a.stderr, err)
					return result
				}
				return err
			}
			fmt.Fprintf(a.stdout, "kept as evidence: %s\n", strings.Join(p.Artifacts, ", "))
			if result == nil {
				action := "apply"
				if p.Summary.Destroy > 0 {
					action = "destroy"
				}
				a.info("next: groundzero intent new --env %s --action %s --reason '...' --plan %s; approvers review and sign it with groundzero intent approve FILE; then groundzero apply --env %s --intent FILE", run.EnvName, action, rel, run.EnvName)
			}
			return result
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment (default: the only one)")
	c.Flags().StringVar(&dir, "dir", "", "configuration directory; must be the one policy.yaml declares for the environment")
	c.Flags().StringVar(&out, "out", "", "saved plan file (default .groundzero/plans/ENV.tfplan)")
	c.Flags().StringVar(&tfBinary, "tf-binary", "", "tofu or terraform binary, outside the repository (default: GROUNDZERO_TF_BINARY, then PATH)")
	trustRootFlag(c, &trustRoot)
	c.Flags().BoolVar(&destroy, "destroy", false, "plan to destroy everything (needs an intent with action destroy)")
	c.Flags().BoolVar(&ci, "ci", false, "plan in CI: verify the runner's OIDC identity against the ci section of policy.yaml")
	formatFlagVar(c, &format, "text", "json")
	return c
}

// planArtifactErr is the error of a plan that was saved but not kept as
// evidence.
func planArtifactErr(p *govern.Plan) error {
	planName, _ := govern.PlanArtifacts(p.SHA256)
	return usage(fmt.Errorf("the plan was saved, but not kept in the evidence store: %w", p.ArtifactErr),
		"approvers review the plan from the evidence store ("+planName+" and its .json): make the store reachable and writable, then run `groundzero plan` again")
}
