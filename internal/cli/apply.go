package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/confirm"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/intent"
	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/tfrun"
)

// applyActions are the intent actions a plan can carry out.
var applyActions = []string{"apply", "bootstrap", "destroy"}

func (a *app) applyCmd() *cobra.Command {
	var env, dir, planFile, intentFile, tfBinary, trustRoot string
	c := &cobra.Command{
		Use:   "apply --env ENV --intent FILE [--plan FILE]",
		Short: "apply exactly a saved plan, after every gate and a two-step confirmation",
		Long: `apply re-runs every gate: the signed tag (when required), the integrity
manifest, the signers registry, the signed intent (for this environment,
action and commit; unexpired; unused; approved by the people policy.yaml
requires; bound to this plan when it names one), and the parity policy on the
configuration and on the plan. A plan that destroys anything needs an intent
with action destroy.

Then, on a terminal, the operator types the confirmation token printed with
the summary and then the word APPLY; a wrong answer aborts and is recorded.
Without a terminal apply refuses: non-interactive applies belong to the CI
path. The intent is consumed before OpenTofu runs, the output is streamed and
kept in the evidence store, and the resources created are recorded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if intentFile == "" {
				return usage(errors.New("--intent is required"), "create one with `groundzero intent new` and have it signed")
			}
			g, err := a.openGoverned(env, dir, tfBinary, trustRoot)
			if err != nil {
				return err
			}
			rec := a.recorder(g.r)
			if g.failed() {
				return a.finish(g, rec, nil)
			}
			in, data, rel, err := readIntent(g.r, intentFile)
			if err != nil {
				g.results = append(g.results, gate.Result{Name: "intent", Detail: err.Error()})
				return a.finish(g, rec, nil)
			}
			if planFile == "" {
				planFile = defaultPlanPath(g.r, g.env)
			}
			planFile, _ = filepath.Abs(planFile)
			planSHA, err := sha256File(planFile)
			if err != nil {
				return usage(err, "run `groundzero plan` first, or pass --plan")
			}
			js, err := g.tf.Run(a.ctx, nil, tfrun.ShowJSONArgs(planFile)...)
			if err != nil {
				return usage(err, "the plan file must be one that `groundzero plan` saved for this configuration")
			}
			p, err := parity.ParsePlan(js)
			if err != nil {
				return usage(err, "")
			}
			s := summarise(p)
			// The intent: right action, right plan, approved.
			ig := gate.Result{Name: "intent", OK: true}
			switch {
			case !slices.Contains(applyActions, in.Action):
				ig = gate.Result{Name: "intent", Detail: fmt.Sprintf("intent %s is for %s, which apply does not carry out", in.ID, in.Action)}
			case s.Destroy > 0 && in.Action != "destroy":
				ig = gate.Result{Name: "intent", Detail: fmt.Sprintf("the plan destroys %d resource(s), but intent %s is for %s; destroying needs an intent with action destroy", s.Destroy, in.ID, in.Action),
					Hint: "create an intent with --action destroy and have it approved"}
			default:
				var v *intent.Verified
				var verr error
				v, verr = a.verifyIntent(g.r, g.pol, g.genv, in, data, rel, g.env, planSHA)
				var ce *Error
				if errors.As(verr, &ce) && ce.Code == ExitUsage {
					return ce
				}
				if verr != nil {
					ig = gate.Result{Name: "intent", Detail: fmt.Sprintf("intent %s: %v", in.ID, verr), Hint: intentHint(verr)}
				} else {
					ig.Detail = fmt.Sprintf("intent %s (%s on %s) requested by %s, approved by %s", in.ID, in.Action, in.Env, in.Requester, strings.Join(v.Approvers, ", "))
				}
			}
			g.results = append(g.results, ig)
			if !ig.OK {
				return a.finish(g, rec, nil)
			}
			engine, err := a.parityEngine(g.r, g.pol, g.env)
			if err != nil {
				return err
			}
			cfg, err := parity.FromConfig(g.dir)
			if err != nil {
				return usage(err, "")
			}
			for _, step := range []struct {
				name string
				in   *parity.Input
			}{{"parity", cfg}, {"plan", parity.FromPlan(p)}} {
				res, _, err := a.parityGate(engine, step.name, step.in)
				if err != nil {
					return err
				}
				g.results = append(g.results, res)
				if !res.OK {
					return a.finish(g, rec, nil)
				}
			}
			// Two-step confirmation.
			envPol := g.pol.Environment(g.env)
			planRel, _ := filepath.Rel(g.r.Root, planFile)
			if envPol.ConfirmRequired() {
				if err := a.confirmApply(g, rec, in, s, planSHA); err != nil {
					return err
				}
			} else {
				g.results = append(g.results, gate.Result{Name: "confirm", OK: true, Detail: "confirmation is off for environment " + g.env + " in policy.yaml"})
			}
			// Consume the intent before anything changes: a crash after this
			// point cannot let the intent be used twice.
			rec.add("intent.consumed", in.ID, map[string]any{"nonce": in.Nonce, "env": g.env, "action": in.Action, "plan_sha256": planSHA, "plan_file": filepath.ToSlash(planRel)})
			if err := a.finish(g, rec, nil); err != nil {
				return err
			}
			return a.runApply(g, in, planFile, planSHA, s)
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment (default: the only one)")
	c.Flags().StringVar(&dir, "dir", "", "configuration directory (default infra/bootstrap)")
	c.Flags().StringVar(&planFile, "plan", "", "saved plan file (default .groundzero/plans/ENV.tfplan)")
	c.Flags().StringVar(&intentFile, "intent", "", "the signed intent that authorises this apply")
	c.Flags().StringVar(&tfBinary, "tf-binary", "", "tofu or terraform binary (default: GROUNDZERO_TF_BINARY, .tools/bin/tofu, then PATH)")
	trustRootFlag(c, &trustRoot)
	return c
}

// confirmApply asks on the terminal; every outcome is recorded.
func (a *app) confirmApply(g *governed, rec *recorder, in *intent.Intent, s summary, planSHA string) error {
	tty, err := confirm.OpenTTY()
	if err != nil {
		g.results = append(g.results, gate.Result{Name: "confirm", Detail: "no terminal to confirm on"})
		rec.add("apply.refused", in.ID, map[string]any{"reason": "no terminal", "env": g.env})
		return a.finish(g, rec, usage(errors.New("apply needs a terminal for its two-step confirmation"),
			"run it on a terminal; non-interactive applies belong to the CI path"))
	}
	defer tty.Close()
	summaryText := fmt.Sprintf("%s\nEnvironment %s, intent %s (%s), plan sha256:%s", s, g.env, in.ID, in.Action, planSHA)
	if err := tty.Confirm(summaryText, in.Token()); err != nil {
		g.results = append(g.results, gate.Result{Name: "confirm", Detail: err.Error()})
		rec.add("apply.abort", in.ID, map[string]any{"reason": err.Error(), "env": g.env})
		return a.finish(g, rec, failed(err, "nothing was changed; run apply again and type the token, then APPLY"))
	}
	g.results = append(g.results, gate.Result{Name: "confirm", OK: true, Detail: "token and APPLY typed on the terminal"})
	return nil
}

// runApply applies the saved plan, streams and keeps the log, and records
// what now exists.
func (a *app) runApply(g *governed, in *intent.Intent, planFile, planSHA string, s summary) error {
	var log bytes.Buffer
	_, applyErr := g.tf.Run(a.ctx, io.MultiWriter(a.stderr, &log), tfrun.ApplyArgs(planFile)...)
	rec := a.recorder(g.r)
	details := map[string]any{"ok": applyErr == nil, "env": g.env, "plan_sha256": planSHA, "log_sha256": sha256hex(log.Bytes()),
		"add": s.Add, "change": s.Change, "destroy": s.Destroy}
	store, err := a.openStore(g.r, "")
	if err != nil {
		return err
	}
	name := "apply-" + in.ID + ".log"
	if err := store.PutArtifact(a.ctx, name, log.Bytes()); err != nil {
		PrintError(a.stderr, fmt.Errorf("keeping the apply log: %w", err))
	} else {
		details["log"] = name
	}
	var resources []map[string]any
	if js, err := g.tf.Run(a.ctx, nil, tfrun.ShowJSONArgs("")...); err == nil {
		var st tfjson.State
		if err := st.UnmarshalJSON(js); err == nil && st.Values != nil && st.Values.RootModule != nil {
			for _, r := range allResources(st.Values.RootModule) {
				id, _ := r.AttributeValues["id"].(string)
				resources = append(resources, map[string]any{"address": r.Address, "type": r.Type, "id": id})
			}
		}
	}
	details["resources"] = resources
	if applyErr != nil {
		details["error"] = applyErr.Error()
	}
	rec.add("apply.result", in.ID, details)
	if err := rec.flush(nil); err != nil {
		return err
	}
	if applyErr != nil {
		return usage(applyErr, "the intent is consumed; fix the cause, plan again and have a new intent approved")
	}
	fmt.Fprintf(a.stdout, "applied %s: %d added, %d changed, %d destroyed; %d resource(s) in state; log kept as %s\n", in.ID, s.Add, s.Change, s.Destroy, len(resources), name)
	return nil
}

func allResources(m *tfjson.StateModule) []*tfjson.StateResource {
	out := append([]*tfjson.StateResource(nil), m.Resources...)
	for _, c := range m.ChildModules {
		out = append(out, allResources(c)...)
	}
	return out
}
