package cli

import (
	"fmt"
	"os"
	"path/filepath"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/tfrun"
)

// summary counts what a plan does.
type summary struct {
	Add, Change, Destroy int
}

func (s summary) String() string {
	return fmt.Sprintf("Plan: %d to add, %d to change, %d to destroy.", s.Add, s.Change, s.Destroy)
}

func summarise(p *tfjson.Plan) summary {
	var s summary
	for _, rc := range p.ResourceChanges {
		if rc == nil || rc.Change == nil || rc.Mode != tfjson.ManagedResourceMode {
			continue
		}
		a := rc.Change.Actions
		switch {
		case a.Replace():
			s.Add++
			s.Destroy++
		case a.Create():
			s.Add++
		case a.Update():
			s.Change++
		case a.Delete():
			s.Destroy++
		}
	}
	return s
}

// governed is what plan and apply share: the repository, its policy, the
// chosen environment and the static gates.
type governed struct {
	r       *repo.Repo
	pol     *policy.Policy
	env     string
	genv    *gate.Env
	results []gate.Result
	dir     string
	tf      *tfrun.Runner
}

func (g *governed) failed() bool {
	for _, res := range g.results {
		if !res.OK {
			return true
		}
	}
	return false
}

// openGoverned loads everything and runs the static gates.
func (a *app) openGoverned(env, dir, tfBinary, trustRoot string) (*governed, error) {
	r, err := a.repo()
	if err != nil {
		return nil, err
	}
	pol, err := a.loadPolicy(r)
	if err != nil {
		return nil, err
	}
	if env, err = resolveEnv(pol, env); err != nil {
		return nil, err
	}
	genv, err := a.gates(r, a.trustRoot(trustRoot), false)
	if err != nil {
		return nil, err
	}
	g := &governed{r: r, pol: pol, env: env, genv: genv}
	g.results = []gate.Result{genv.PolicyGate(), genv.AnchorGate(env), genv.SignersGate(), genv.ManifestGate(a.ctx)}
	if genv.TagRequired(false) {
		g.results = append(g.results, genv.TagGate(a.ctx, "HEAD"))
	}
	if dir == "" {
		dir = r.Abs(repo.BootstrapDir)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, usage(fmt.Errorf("no configuration directory %s", dir), "put the bootstrap configuration in infra/bootstrap, or pass --dir")
	}
	g.dir, _ = filepath.Abs(dir)
	bin, err := tfrun.Find(tfBinary, a.getenv, r.Root)
	if err != nil {
		return nil, usage(err, "install OpenTofu (`make tools` builds the pinned one into .tools/bin), or pass --tf-binary")
	}
	g.tf = &tfrun.Runner{Bin: bin, Dir: g.dir, Environ: os.Environ()}
	return g, nil
}

// finish prints and records the gates, plus extra events, and returns the
// command's result.
func (a *app) finish(g *governed, rec *recorder, result error) error {
	for _, res := range g.results {
		rec.add("gate", res.Name, map[string]any{"ok": res.OK, "detail": res.Detail, "env": g.env})
	}
	recordSeen(rec, g.genv)
	if err := a.report("text", g.results); err != nil && result == nil {
		result = err
	}
	return rec.flush(result)
}

func defaultPlanPath(r *repo.Repo, env string) string {
	return filepath.Join(r.Abs(repo.LocalStateDir), "plans", env+".tfplan")
}

func (a *app) planCmd() *cobra.Command {
	var env, dir, out, tfBinary, trustRoot string
	var destroy bool
	c := &cobra.Command{
		Use:   "plan --env ENV [--dir DIR] [--out FILE]",
		Short: "run the gates, then a saved OpenTofu plan checked against the parity policy",
		Long: `plan runs the static gates (policy, signers, manifest, and the signed tag
when policy.yaml requires it) and the parity policy on the configuration,
then ` + "`tofu init`, `tofu plan -out` and `tofu show -json`" + `, and the parity
policy on the plan. It records the plan's SHA-256 and what it adds, changes
and destroys, and prints them. The saved plan (default
.groundzero/plans/ENV.tfplan) is what an intent approves and apply applies.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := a.openGoverned(env, dir, tfBinary, trustRoot)
			if err != nil {
				return err
			}
			rec := a.recorder(g.r)
			if g.failed() {
				return a.finish(g, rec, nil)
			}
			engine, err := a.parityEngine(g.r, g.pol, g.env)
			if err != nil {
				return err
			}
			cfg, err := parity.FromConfig(g.dir)
			if err != nil {
				return usage(err, "fix the configuration's syntax")
			}
			res, _, err := a.parityGate(engine, "parity", cfg)
			if err != nil {
				return err
			}
			g.results = append(g.results, res)
			if !res.OK {
				return a.finish(g, rec, nil)
			}
			if out == "" {
				out = defaultPlanPath(g.r, g.env)
			}
			if out, err = filepath.Abs(out); err != nil {
				return usage(err, "")
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return usage(err, "")
			}
			for _, args := range [][]string{tfrun.InitArgs(), tfrun.PlanArgs(out, destroy)} {
				if _, err := g.tf.Run(a.ctx, a.stderr, args...); err != nil {
					rec.add("plan.error", g.env, map[string]any{"error": err.Error()})
					return a.finish(g, rec, usage(err, "fix the configuration or the backend; OpenTofu's output above says what failed"))
				}
			}
			js, err := g.tf.Run(a.ctx, nil, tfrun.ShowJSONArgs(out)...)
			if err != nil {
				return a.finish(g, rec, usage(err, ""))
			}
			p, err := parity.ParsePlan(js)
			if err != nil {
				return a.finish(g, rec, usage(err, ""))
			}
			res, _, err = a.parityGate(engine, "plan", parity.FromPlan(p))
			if err != nil {
				return err
			}
			g.results = append(g.results, res)
			sum, err := sha256File(out)
			if err != nil {
				return usage(err, "")
			}
			s := summarise(p)
			rel, _ := filepath.Rel(g.r.Root, out)
			rec.add("plan", g.env, map[string]any{"plan_sha256": sum, "add": s.Add, "change": s.Change, "destroy": s.Destroy, "file": filepath.ToSlash(rel), "ok": res.OK})
			result := a.finish(g, rec, nil)
			fmt.Fprintln(a.stdout, s)
			fmt.Fprintf(a.stdout, "plan file: %s\nplan sha256: %s\n", filepath.ToSlash(rel), sum)
			if result == nil {
				action := "apply"
				if s.Destroy > 0 {
					action = "destroy"
				}
				a.info("next: groundzero intent new --env %s --action %s --reason '...' --plan %s; approvers sign it; then groundzero apply --env %s --intent FILE", g.env, action, filepath.ToSlash(rel), g.env)
			}
			return result
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment (default: the only one)")
	c.Flags().StringVar(&dir, "dir", "", "configuration directory (default infra/bootstrap)")
	c.Flags().StringVar(&out, "out", "", "saved plan file (default .groundzero/plans/ENV.tfplan)")
	c.Flags().StringVar(&tfBinary, "tf-binary", "", "tofu or terraform binary (default: GROUNDZERO_TF_BINARY, .tools/bin/tofu, then PATH)")
	trustRootFlag(c, &trustRoot)
	c.Flags().BoolVar(&destroy, "destroy", false, "plan to destroy everything (needs an intent with action destroy)")
	return c
}
