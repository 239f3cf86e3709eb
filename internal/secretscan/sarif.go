package secretscan

import "github.com/groundzero/groundzero/internal/sarif"

// SARIF renders findings as a SARIF 2.1.0 log for code scanning: one result
// per finding, located by repository-relative URI (against %SRCROOT%) and,
// when it has one, its line. Like the findings, it holds no secret.
func SARIF(findings []Finding) map[string]any {
	rules := make([]sarif.Rule, 0, len(Rules))
	for _, r := range Rules {
		rules = append(rules, sarif.Rule{ID: r.ID, Text: r.Description, Help: Fix})
	}
	results := []any{}
	for _, f := range findings {
		results = append(results, map[string]any{
			"ruleId":    f.Rule,
			"level":     "error",
			"message":   map[string]any{"text": f.Description + " in a governed file: " + Fix},
			"locations": []any{map[string]any{"physicalLocation": sarif.Physical(f.Path, f.Line)}},
		})
	}
	return sarif.Log("groundzero secret scan", rules, results)
}

// Fix is what to do about a finding.
const Fix = "move the secret to a secret store and refer to it from there; rotate it, since it is in the repository's history; a false positive is waived in governance/policy.yaml (secrets.waive: rule, path, reason)"
