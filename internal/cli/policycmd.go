package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signers"
)

func (a *app) policyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "check the parity policy on configuration or a plan; test custom rules",
	}
	c.AddCommand(a.policyCheckCmd(), a.policyTestCmd(), a.policySchemaCmd())
	return c
}

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

func (a *app) policyTestCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "test",
		Short: "run the Rego tests (governance/rego/*_test.rego) of the custom rules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			paths, _ := filepath.Glob(filepath.Join(r.Abs(repo.RegoDir), "*.rego"))
			if len(paths) == 0 {
				return usage(errors.New("no Rego files in governance/rego/"), "write custom rules and their *_test.rego tests there")
			}
			mods := map[string]*ast.Module{}
			for _, p := range paths {
				rel, _ := filepathRel(r.Root, p)
				data, err := r.ReadFile(rel, parity.MaxRegoFile)
				if err != nil {
					return usage(err, "")
				}
				m, err := ast.ParseModuleWithOpts(rel, string(data), ast.ParserOptions{RegoVersion: ast.RegoV1})
				if err != nil {
					return usage(fmt.Errorf("%s: %v", rel, err), "")
				}
				mods[rel] = m
			}
			// The same built-ins as the gate: no network, no environment.
			ch, err := parity.RunTests(a.ctx, mods)
			if err != nil {
				return usage(err, "")
			}
			pass, fail := 0, 0
			for res := range ch {
				pkg := strings.TrimPrefix(res.Package, "data.")
				switch {
				case res.Error != nil:
					fail++
					fmt.Fprintf(a.stdout, "ERROR %s: %s.%s: %v\n", res.Location.File, pkg, res.Name, res.Error)
				case res.Fail:
					fail++
					fmt.Fprintf(a.stdout, "FAIL  %s: %s.%s\n", res.Location.File, pkg, res.Name)
				case res.Skip:
				default:
					pass++
					fmt.Fprintf(a.stdout, "PASS  %s: %s.%s\n", res.Location.File, pkg, res.Name)
				}
			}
			fmt.Fprintf(a.stdout, "%d passed, %d failed\n", pass, fail)
			if fail > 0 {
				return failed(fmt.Errorf("%d Rego test(s) failed", fail), "fix the rules or the tests in governance/rego/")
			}
			if pass == 0 {
				return usage(errors.New("no tests found (test rules are named test_*)"), "")
			}
			return nil
		},
	}
}

func (a *app) policySchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema [policy|signers]",
		Short: "print the JSON Schema built into groundzero for policy.yaml or signers.yaml",
		Long: `schema prints the JSON Schema that groundzero validates governance/policy.yaml
(or, with "signers", governance/signers.yaml) against, for editors that check
YAML as it is typed.`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"policy", "signers"},
		RunE: func(cmd *cobra.Command, args []string) error {
			which := "policy"
			if len(args) == 1 {
				which = args[0]
			}
			switch which {
			case "policy":
				_, err := a.stdout.Write(policy.SchemaJSON())
				return err
			case "signers":
				_, err := a.stdout.Write(signers.SchemaJSON())
				return err
			}
			return usage(fmt.Errorf("no schema %q; give policy or signers", which), "")
		},
	}
}
