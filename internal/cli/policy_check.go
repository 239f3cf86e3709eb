package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/repo"
)

func (a *app) policyCheckCmd() *cobra.Command {
	var planJSON, dir, env, format string
	c := &cobra.Command{
		Use:   "check [--plan PLAN.json] [--dir DIR] [--env ENV]",
		Short: "evaluate the parity policy; exit 1 on violations",
		Long: `check evaluates the built-in parity rules (required tags, naming, regions,
allowed and denied resource types, backend) and the custom rules in
governance/rego/ on the plan JSON given with --plan (as ` + "`tofu show -json PLAN`" + `
writes it), or else on the configuration in --dir (default infra/bootstrap),
read statically. Each violation names the resource address, the rule, and
what was expected and found. --format sarif writes SARIF 2.1.0 for code
scanning.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json", "sarif"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			pol, err := a.loadPolicy(r)
			if err != nil {
				return err
			}
			if env, err = resolveEnv(pol, env); err != nil {
				return err
			}
			e, err := a.parityEngine(r, pol, env)
			if err != nil {
				return err
			}
			var in *parity.Input
			source := ""
			if planJSON != "" {
				data, err := os.ReadFile(planJSON)
				if err != nil {
					return usage(err, "")
				}
				p, err := parity.ParsePlan(data)
				if err != nil {
					return usage(fmt.Errorf("%s: %w", planJSON, err), "give the output of `tofu show -json PLANFILE`")
				}
				in, source = parity.FromPlan(p), planJSON
			} else {
				if dir == "" {
					dir = r.Abs(repo.BootstrapDir)
				}
				if in, err = parity.FromConfig(dir); err != nil {
					return usage(err, "fix the configuration as the error says; OpenTofu would refuse it too")
				}
				source = dir
			}
			vs, err := e.Check(a.ctx, in)
			if err != nil {
				return usage(err, "")
			}
			switch format {
			case "json":
				if vs == nil {
					vs = []parity.Violation{}
				}
				a.printJSON(map[string]any{"ok": len(vs) == 0, "env": env, "source": in.Source, "resources": len(in.Resources), "violations": vs})
			case "sarif":
				a.printJSON(sarif(vs, source))
			default:
				for _, v := range vs {
					fmt.Fprintf(a.stdout, "%s\n", v)
				}
				fmt.Fprintf(a.stdout, "%d resource(s) checked against environment %s: %d violation(s)\n", len(in.Resources), env, len(vs))
			}
			rec := a.recorder(r)
			rec.add("policy.check", in.Source, map[string]any{"env": env, "resources": len(in.Resources), "violations": len(vs)})
			var result error
			if len(vs) > 0 {
				result = failed(fmt.Errorf("%d parity violation(s)", len(vs)), "change the configuration to meet governance/policy.yaml")
			}
			return rec.flush(result)
		},
	}
	c.Flags().StringVar(&planJSON, "plan", "", "plan JSON (from `tofu show -json PLANFILE`)")
	c.Flags().StringVar(&dir, "dir", "", "configuration directory (default infra/bootstrap)")
	c.Flags().StringVar(&env, "env", "", "environment (default: the only one)")
	formatFlagVar(c, &format, "text", "json", "sarif")
	return c
}

// sarif renders violations as a SARIF 2.1.0 log.
func sarif(vs []parity.Violation, source string) map[string]any {
	rules := map[string]bool{}
	results := []any{}
	for _, v := range vs {
		rules[v.Rule] = true
		msg := v.Message
		if msg == "" {
			msg = fmt.Sprintf("expected %s, found %s", v.Expected, v.Found)
		}
		results = append(results, map[string]any{
			"ruleId":  v.Rule,
			"level":   "error",
			"message": map[string]any{"text": v.Address + ": " + msg},
			"locations": []any{map[string]any{
				"physicalLocation": map[string]any{"artifactLocation": map[string]any{"uri": filepath.ToSlash(source)}},
				"logicalLocations": []any{map[string]any{"fullyQualifiedName": v.Address, "kind": "resource"}},
			}},
		})
	}
	var ruleList []any
	var names []string
	for r := range rules {
		names = append(names, r)
	}
	sort.Strings(names)
	for _, r := range names {
		ruleList = append(ruleList, map[string]any{"id": r, "shortDescription": map[string]any{"text": "groundzero parity rule " + r}})
	}
	if ruleList == nil {
		ruleList = []any{}
	}
	return map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool":    map[string]any{"driver": map[string]any{"name": "groundzero", "informationUri": "https://github.com/groundzero/groundzero", "rules": ruleList}},
			"results": results,
		}},
	}
}
