package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/confirm"
	"github.com/groundzero/groundzero/internal/govern"
)

func (a *app) applyCmd() *cobra.Command {
	var env, dir, planFile, intentFile, tfBinary, trustRoot, format string
	var ci bool
	c := &cobra.Command{
		Use:   "apply --env ENV --intent FILE [--plan FILE] [--ci]",
		Short: "apply exactly a saved plan, after every gate and a two-step confirmation",
		Long: `apply re-runs every gate: the signed tag (when required), the freshness
anchor, the signers registry, the integrity manifest, the engine (binary,
configuration directory, modules, provider lock), the signed intent (for this
environment and action, the governed commit and governance/MANIFEST;
unexpired; unused; approved by the people policy.yaml requires; bound to
this plan when it names one), and the parity
policy on the configuration and on the plan. A plan that destroys anything
needs an intent with action destroy. The plan is copied into a private file
and hashed first; those bytes are what is checked and applied.

Then, on the terminal, apply prints the gate results (one line per gate),
the plan's resource changes (+ create, ~ update, - destroy, -/+ replace) and
its summary, and the operator types the confirmation token printed with them
and then the word APPLY; a wrong answer aborts and is recorded.
Without a terminal apply refuses: non-interactive applies belong to the CI
path. The intent is consumed before OpenTofu runs, the output is streamed and
kept in the evidence store, and the resources created are recorded.

With --ci apply never prompts and needs no terminal. After the static gates
the ci gate obtains the runner's OIDC ID token (GitHub Actions:
ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN; GitLab:
GROUNDZERO_ID_TOKEN or CI_JOB_JWT_V2) and verifies it against the ci section
of policy.yaml; the job must run from a tag. The fully approved intent and
the verified runner replace the confirmation, and the runner
(ci:ISSUER-HOST:SUBJECT) is the actor of every audit entry.

--format json prints one JSON object instead of text (the prompt, on a
terminal, is unchanged): command, ok, env, gates (name, ok, detail, hint),
plan (sha256, summary {add, change, destroy}, changes [{symbol, action,
address}]), intent (id, file, env, action, requester, commit, plan_sha256,
expires), applied (ok, resources, log, error), entries (the audit entries
recorded) and error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			r, run, err := a.intentRun(intentFile, "create one with `groundzero intent new` and have it signed", env, dir, tfBinary, trustRoot)
			if err != nil {
				return err
			}
			defer run.Close()
			doc := &runDoc{Command: "apply"}
			stop := func(err error) error {
				if format == "json" {
					entries, result := a.finishRunJSON(run, err)
					return a.printRunDoc(doc, run, entries, result)
				}
				return a.finishRun(run, "text", err)
			}
			if ok, err := run.Static(a.ctx, false, run.EnvName); !ok || err != nil {
				return stop(err)
			}
			f, ok := a.runIntent(run, r, intentFile)
			if !ok {
				return stop(nil)
			}
			doc.Intent = newIntentDoc(f)
			if ci && !run.CIGate(a.ctx, true, nil) {
				return stop(nil)
			}
			in := f.Intent
			if planFile == "" {
				planFile = defaultPlanPath(r, run.EnvName)
			}
			planFile, _ = filepath.Abs(planFile)
			req := govern.ApplyRequest{Intent: f, Plan: planFile, CI: ci}
			if !ci {
				if tty, err := confirm.OpenTTY(); err == nil {
					defer tty.Close()
					req.Confirm = tty.Confirm
				}
			}
			done, err := run.Apply(a.ctx, req)
			if format == "json" {
				return a.applyJSON(doc, run, done, err)
			}
			if done == nil || err != nil {
				return a.finishRun(run, "text", err)
			}
			if err := a.finishRun(run, "text", nil); err != nil {
				return err
			}
			if done.LogErr != nil {
				PrintError(a.stderr, fmt.Errorf("keeping the apply log: %w", done.LogErr))
			}
			if done.Err != nil {
				return appliedErr(done)
			}
			s := done.Plan.Summary
			fmt.Fprintf(a.stdout, "applied %s: %d added, %d changed, %d destroyed; %d resource(s) in state; log kept as %s\n", in.ID, s.Add, s.Change, s.Destroy, len(done.Resources), done.LogName)
			return nil
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment (default: the only one)")
	c.Flags().StringVar(&dir, "dir", "", "configuration directory; must be the one policy.yaml declares for the environment")
	c.Flags().StringVar(&planFile, "plan", "", "saved plan file (default .groundzero/plans/ENV.tfplan)")
	c.Flags().StringVar(&intentFile, "intent", "", "the signed intent that authorises this apply")
	c.Flags().BoolVar(&ci, "ci", false, "apply in CI: no prompt; the runner's verified OIDC identity and the approved intent replace the confirmation")
	c.Flags().StringVar(&tfBinary, "tf-binary", "", "tofu or terraform binary, outside the repository (default: GROUNDZERO_TF_BINARY, then PATH)")
	trustRootFlag(c, &trustRoot)
	formatFlagVar(c, &format, "text", "json")
	return c
}

// appliedErr is the error of an apply whose OpenTofu run failed after the
// intent was consumed.
func appliedErr(done *govern.Applied) error {
	return usage(done.Err, "the intent is consumed; fix the cause, plan again and have a new intent approved")
}

// applyJSON finishes an apply with --format json: the run is recorded as in
// text mode, then one document is printed.
func (a *app) applyJSON(doc *runDoc, run *govern.Run, done *govern.Applied, err error) error {
	if done == nil || err != nil {
		entries, result := a.finishRunJSON(run, err)
		return a.printRunDoc(doc, run, entries, result)
	}
	entries, result := a.finishRunJSON(run, nil)
	doc.Plan = newPlanDoc(done.Plan, "")
	doc.Applied = &appliedDoc{OK: done.Err == nil, Resources: len(done.Resources), Log: done.LogName}
	if done.LogErr != nil {
		PrintError(a.stderr, fmt.Errorf("keeping the apply log: %w", done.LogErr))
	}
	if done.Err != nil {
		doc.Applied.Error = done.Err.Error()
		if result == nil {
			result = appliedErr(done)
		}
	}
	return a.printRunDoc(doc, run, entries, result)
}
