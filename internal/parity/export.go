package parity

import (
	_ "embed"
	"encoding/json"

	"github.com/groundzero/groundzero/internal/policy"
)

//go:embed plan.rego
var planRego string

// Export renders the built-in rules for conftest and opa eval on raw plan
// JSON: policy/parity.rego (the rules groundzero evaluates),
// policy/plan.rego (the normalisation of plan JSON that groundzero does in
// Go), and data.json (policy.yaml of environment env and the type tables,
// as data.groundzero). Files are keyed by their path in the export.
// Custom rules are not exported: they read groundzero's normalised input.
func Export(p *policy.Policy, env string) (map[string][]byte, error) {
	data, err := Data(p, env)
	if err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(data, "", "  ")
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		"policy/parity.rego": []byte(builtinRego),
		"policy/plan.rego":   []byte(planRego),
		"data.json":          append(js, '\n'),
	}, nil
}
