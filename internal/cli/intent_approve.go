package cli

import (
	"errors"
	"fmt"
	"strings"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/trail"
)

func (a *app) intentApproveCmd() *cobra.Command {
	var keySpec, planFile string
	c := &cobra.Command{
		Use:   "approve FILE [--plan PLANFILE] [--key KEYSPEC]",
		Short: "review the saved plan an intent approves, then sign the intent",
		Long: `approve shows the saved plan an intent is bound to, then signs the intent.
The plan and its ` + "`tofu show -json`" + ` rendering are fetched from the evidence
store by the intent's plan_sha256 (` + "`groundzero plan`" + ` keeps them there as
plan-SHA256.tfplan and plan-SHA256.json): the plan must hash to plan_sha256,
and the rendering must be the one the plan's audit entry recorded. Its
resource changes and summary line are printed before anything is signed, so
an approver in a fresh clone sees what they approve without the plan file.

When the store does not hold them, or they do not match, approve refuses,
unless --plan names the saved plan file and its SHA-256 matches: then the
engine renders that file (after the static and engine gates). An intent not
yet bound to a plan (and not yet signed) is bound to --plan first; an intent
bound to another plan than --plan is refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			in, data, rel, err := readIntent(r, args[0])
			if err != nil {
				return err
			}
			local := ""
			if planFile != "" {
				if local, err = sha256File(planFile); err != nil {
					return usage(err, "")
				}
			}
			bind := false
			switch {
			case in.PlanSHA256 == "" && planFile == "":
				return usage(fmt.Errorf("intent %s is not bound to a plan, and no --plan was given", in.ID),
					"give the saved plan written by `groundzero plan`: --plan PLANFILE")
			case in.PlanSHA256 != "" && planFile != "" && in.PlanSHA256 != local:
				return failed(fmt.Errorf("intent %s approves plan sha256:%s, not %s (sha256:%s)", in.ID, in.PlanSHA256[:16], planFile, local[:16]),
					"review the plan the intent names, or create a new intent for this plan")
			case in.PlanSHA256 == "":
				if sigs, _ := sigfile.Load(r, rel); len(sigs) > 0 {
					return failed(fmt.Errorf("intent %s is signed already without a plan; binding it now would void those signatures", in.ID),
						"create a new intent with `groundzero intent new --plan`")
				}
				bind = true
			}
			sum := in.PlanSHA256
			if bind {
				sum = local
			}
			plan, source, err := a.reviewPlan(r, in.Env, sum, planFile, local)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "plan sha256:%s (%s)\n", sum, source)
			for _, ch := range govern.Changes(plan) {
				fmt.Fprintf(a.stdout, "  %s\n", ch)
			}
			fmt.Fprintln(a.stdout, govern.SummaryOf(plan))
			if bind {
				in.PlanSHA256 = sum
				if data, err = in.Marshal(); err != nil {
					return usage(err, "")
				}
				if err := r.WriteFile(rel, data); err != nil {
					return usage(err, "")
				}
				a.info("intent %s is now bound to plan sha256:%s", in.ID, sum)
			}
			return a.signIntent(r, rel, data, keySpec, in, "intent.approve", map[string]any{"plan_sha256": sum})
		},
	}
	keyFlag(c, &keySpec)
	c.Flags().StringVar(&planFile, "plan", "", "the saved plan file, when the evidence store does not hold the plan (its SHA-256 must match the intent's)")
	return c
}

// reviewPlan returns the plan with SHA-256 sum, rendered for review: from
// the evidence store when it holds the plan and the rendering recorded for
// it, else from file (whose SHA-256 is local) through the engine, when its
// hash matches. source says where it came from.
func (a *app) reviewPlan(r *repo.Repo, env, sum, file, local string) (*tfjson.Plan, string, error) {
	plan, source, err := a.planFromStore(r, sum)
	if err == nil {
		return plan, source, nil
	}
	if file == "" || local != sum {
		var ee *govern.EvidenceError
		if errors.As(err, &ee) {
			return nil, "", failed(fmt.Errorf("%w; nothing was signed", err),
				"run `groundzero plan` again to keep the plan in the evidence store, and create a new intent for it; or pass --plan with the saved plan file whose SHA-256 is "+sum)
		}
		return nil, "", err
	}
	a.info("%v; showing %s as the engine renders it", errMessage(err), file)
	p, err := a.planFromEngine(r, env, file)
	if err != nil {
		return nil, "", err
	}
	if p.SHA256 != sum {
		return nil, "", failed(fmt.Errorf("%s changed while it was read: it hashes to sha256:%s now, not %s; nothing was signed", file, p.SHA256, sum), "")
	}
	return p.JSON, "rendered by the engine from " + file, nil
}

// planFromStore fetches the plan and its rendering from the evidence store
// and checks them against the hash and the plan's audit entry. A store it
// cannot read is a usage *Error; evidence that is missing or does not match
// is a *govern.EvidenceError.
func (a *app) planFromStore(r *repo.Repo, sum string) (*tfjson.Plan, string, error) {
	store, err := a.openStore(r, "")
	if err != nil {
		return nil, "", err
	}
	where := redactURL(store.URL())
	ev := &govern.PlanEvidence{SHA256: sum}
	planName, jsonName := govern.PlanArtifacts(sum)
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{planName, &ev.Plan}, {jsonName, &ev.JSON}} {
		b, err := store.Artifact(a.ctx, f.name)
		var missing *trail.ArtifactMissingError
		if errors.As(err, &missing) {
			return nil, "", &govern.EvidenceError{SHA256: sum, Reason: fmt.Sprintf("%s holds no artifact %s", where, f.name)}
		}
		if err != nil {
			return nil, "", usage(fmt.Errorf("reading %s from %s: %w", f.name, where, err), "the evidence store must be reachable and readable")
		}
		*f.dst = b
	}
	var seqs []string
	err = trail.Scan(a.ctx, store, []byte(`"plan_sha256":"`+sum+`"`), func(line []byte) error {
		e, err := audit.ParseEntry(line)
		if err != nil || e.Action != "plan" || e.Details["plan_sha256"] != sum {
			return nil
		}
		if js, ok := e.Details["plan_json_sha256"].(string); ok {
			ev.Recorded = append(ev.Recorded, js)
			seqs = append(seqs, fmt.Sprint(e.Seq))
		}
		return nil
	})
	var torn *trail.TornError
	if err != nil && !errors.As(err, &torn) {
		return nil, "", usage(fmt.Errorf("reading the audit trail in %s: %w", where, err), "the evidence store must be reachable and readable")
	}
	plan, err := ev.Check()
	if err != nil {
		return nil, "", err
	}
	return plan, fmt.Sprintf("from the evidence store %s: %s and %s, recorded in audit entry %s", where, planName, jsonName, strings.Join(seqs, ", ")), nil
}

// planFromEngine renders a local plan file with the engine, after the
// static and engine gates for env.
func (a *app) planFromEngine(r *repo.Repo, env, file string) (*govern.Plan, error) {
	run, err := a.governedRun(r, env, "", "", "", false)
	if err != nil {
		return nil, err
	}
	defer run.Close()
	if err := run.NeedEnv(); err != nil {
		return nil, govErr(err)
	}
	ok, err := run.Static(a.ctx, false, run.EnvName)
	if err != nil {
		return nil, govErr(err)
	}
	var p *govern.Plan
	if ok {
		if p, err = run.ShowPlan(a.ctx, file); err != nil {
			return nil, govErr(err)
		}
	}
	if p == nil {
		for _, res := range run.Results {
			if !res.OK {
				return nil, failed(fmt.Errorf("the plan cannot be rendered: the %s gate failed: %s; nothing was signed", res.Name, res.Detail), res.Hint)
			}
		}
		return nil, failed(errors.New("the plan cannot be rendered; nothing was signed"), "")
	}
	return p, nil
}

// errMessage is an error's message without its hint.
func errMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Err.Error()
	}
	return err.Error()
}
