package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/parity"
)

func (a *app) policyExportCmd() *cobra.Command {
	var out, env string
	c := &cobra.Command{
		Use:   "export --out DIR [--env ENV]",
		Short: "write the built-in parity rules and policy.yaml as data, for conftest and opa eval",
		Long: `export writes the built-in parity rules as Rego, with the normalisation of
plan JSON that groundzero does, and the environment's policy.yaml as
data.json, so that conftest or opa eval give the same findings as
` + "`groundzero policy check --plan`" + ` on the same plan JSON:

  DIR/policy/parity.rego   the built-in rules (package groundzero.parity)
  DIR/policy/plan.rego     normalisation of tofu show -json output
  DIR/data.json            policy.yaml of the environment, and the type tables

  conftest test PLAN.json -p DIR/policy --data DIR/data.json --namespace groundzero.parity
  opa eval -d DIR/policy -d DIR/data.json -i PLAN.json data.groundzero.parity.deny

Custom rules (governance/rego) are not exported: they read groundzero's
normalised input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usage(fmt.Errorf("--out is required"), "name the directory to write the rules to")
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
			files, err := parity.Export(pol, env)
			if err != nil {
				return usage(err, "fix governance/policy.yaml")
			}
			var names []string
			for n := range files {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				p := filepath.Join(out, filepath.FromSlash(n))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return usage(err, "")
				}
				if err := os.WriteFile(p, files[n], 0o644); err != nil {
					return usage(err, "")
				}
				fmt.Fprintln(a.stdout, p)
			}
			a.info("conftest test PLAN.json -p %s --data %s --namespace groundzero.parity",
				filepath.Join(out, "policy"), filepath.Join(out, "data.json"))
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "`DIR` to write policy/*.rego and data.json to")
	c.Flags().StringVar(&env, "env", "", "environment `ENV` (default: the only one)")
	return c
}
