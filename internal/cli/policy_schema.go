package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/signers"
)

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
