// Package sarif writes SARIF 2.1.0 logs for code scanning: the envelope and
// the location of a result in the repository. What the results say is the
// caller's.
package sarif

// Rule describes one rule the results name.
type Rule struct {
	ID   string
	Text string // short description
	Help string // what to do about a result, "" for none
}

// Log is a SARIF 2.1.0 log of one run of tool.
func Log(tool string, rules []Rule, results []any) map[string]any {
	rs := make([]any, 0, len(rules))
	for _, r := range rules {
		m := map[string]any{"id": r.ID, "shortDescription": map[string]any{"text": r.Text}}
		if r.Help != "" {
			m["help"] = map[string]any{"text": r.Help}
		}
		rs = append(rs, m)
	}
	if results == nil {
		results = []any{}
	}
	return map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool":    map[string]any{"driver": map[string]any{"name": tool, "informationUri": "https://github.com/groundzero/groundzero", "rules": rs}},
			"results": results,
		}},
	}
}

// Physical locates a result in a repository file (relative to %SRCROOT%),
// at a line when line > 0.
func Physical(uri string, line int) map[string]any {
	p := map[string]any{"artifactLocation": map[string]any{"uri": uri, "uriBaseId": "%SRCROOT%"}}
	if line > 0 {
		p["region"] = map[string]any{"startLine": line}
	}
	return p
}
