package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/repo"
)

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
				// Nothing to test is not a failure: the built-in rules are
				// tested with groundzero itself.
				fmt.Fprintln(a.stdout, "0 passed, 0 failed")
				a.info("no custom rules in governance/rego/: nothing to test")
				return nil
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
			var fb *parity.ForbiddenBuiltinError
			if errors.As(err, &fb) {
				return failed(err, "custom rules and their tests decide from input and policy.yaml alone; remove the call")
			}
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
