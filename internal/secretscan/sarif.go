package secretscan

// SARIF renders findings as a SARIF 2.1.0 log for code scanning: one result
// per finding, located by repository-relative URI (against %SRCROOT%) and,
// when it has one, its line. Like the findings, it holds no secret.
func SARIF(findings []Finding) map[string]any {
	rules := make([]any, 0, len(Rules))
	for _, r := range Rules {
		rules = append(rules, map[string]any{
			"id":               r.ID,
			"shortDescription": map[string]any{"text": r.Description},
			"help":             map[string]any{"text": Fix},
		})
	}
	results := []any{}
	for _, f := range findings {
		phys := map[string]any{"artifactLocation": map[string]any{"uri": f.Path, "uriBaseId": "%SRCROOT%"}}
		if f.Line > 0 {
			phys["region"] = map[string]any{"startLine": f.Line}
		}
		results = append(results, map[string]any{
			"ruleId":    f.Rule,
			"level":     "error",
			"message":   map[string]any{"text": f.Description + " in a governed file: " + Fix},
			"locations": []any{map[string]any{"physicalLocation": phys}},
		})
	}
	return map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool":    map[string]any{"driver": map[string]any{"name": "groundzero secret scan", "informationUri": "https://github.com/groundzero/groundzero", "rules": rules}},
			"results": results,
		}},
	}
}

// Fix is what to do about a finding.
const Fix = "move the secret to a secret store and refer to it from there; rotate it, since it is in the repository's history; a false positive is waived in governance/policy.yaml (secrets.waive: rule, path, reason)"
