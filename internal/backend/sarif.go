package backend

import (
	"sort"

	"github.com/groundzero/groundzero/internal/sarif"
)

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
	// The CI identities (internal/ciidentity), checked by backend verify.
	"ci_missing":  "the CI identities `groundzero ci policy` prints exist: the workload identity federation, the plan and apply roles or service accounts",
	"ci_drift":    "the CI identities are as `groundzero ci policy` prints them",
	"ci_widening": "no CI identity admits more than `groundzero ci policy` prints: no extra statement, action, resource, member, audience or condition",
}

// SARIF renders findings as SARIF 2.1.0, located at the lock file (the
// record of what the store should be).
func SARIF(findings []Finding, lockPath string) map[string]any {
	seen := map[string]bool{}
	results := []any{}
	for _, f := range findings {
		seen[f.Check] = true
		results = append(results, map[string]any{
			"ruleId":  "backend-" + f.Check,
			"level":   "error",
			"message": map[string]any{"text": f.Resource + ": " + f.Detail},
			"locations": []any{map[string]any{
				"physicalLocation": sarif.Physical(lockPath, 0),
				"logicalLocations": []any{map[string]any{"fullyQualifiedName": f.Resource, "kind": "resource"}},
			}},
		})
	}
	var names []string
	for r := range seen {
		names = append(names, r)
	}
	sort.Strings(names)
	var rules []sarif.Rule
	for _, r := range names {
		text := checkHelp[r]
		if text == "" {
			text = r
		}
		rules = append(rules, sarif.Rule{ID: "backend-" + r, Text: text})
	}
	return sarif.Log("groundzero", rules, results)
}
