package backend

import "sort"

// checkHelp describes each verification check, for SARIF rules.
var checkHelp = map[string]string{
	"bucket":        "the state bucket exists",
	"versioning":    "object versioning is on, so every state version is kept",
	"encryption":    "default encryption is on",
	"key":           "the bucket and state are encrypted with the key the lock records",
	"key_rotation":  "the key rotates",
	"public_access": "public access is blocked",
	"tls_policy":    "the bucket policy refuses requests without TLS",
	"replication":   "the bucket replicates to its second region",
	"lock_table":    "the state lock table exists",
	"tags":          "the tags given at creation are present",
}

// SARIF renders findings as SARIF 2.1.0, located at the lock file (the
// record of what the store should be).
func SARIF(findings []Finding, lockPath string) map[string]any {
	rules := map[string]bool{}
	results := []any{}
	for _, f := range findings {
		rules[f.Check] = true
		results = append(results, map[string]any{
			"ruleId":  "backend-" + f.Check,
			"level":   "error",
			"message": map[string]any{"text": f.Resource + ": " + f.Detail},
			"locations": []any{map[string]any{
				"physicalLocation": map[string]any{"artifactLocation": map[string]any{"uri": lockPath, "uriBaseId": "%SRCROOT%"}},
				"logicalLocations": []any{map[string]any{"fullyQualifiedName": f.Resource, "kind": "resource"}},
			}},
		})
	}
	var names []string
	for r := range rules {
		names = append(names, r)
	}
	sort.Strings(names)
	ruleList := []any{}
	for _, r := range names {
		text := checkHelp[r]
		if text == "" {
			text = r
		}
		ruleList = append(ruleList, map[string]any{"id": "backend-" + r, "shortDescription": map[string]any{"text": text}})
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
