package backend_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/ciidentity"
)

// Every check backend verify reports, the store's and the CI identities',
// has a rule whose text says what the check holds, not just its name.
func TestSARIFRuleTexts(t *testing.T) {
	checks := []string{"bucket", "versioning", "encryption", "key", "key_rotation", "public_access", "tls_policy", "replication", "lock_table", "tags",
		ciidentity.CheckMissing, ciidentity.CheckDrift, ciidentity.CheckWidening}
	var findings []backend.Finding
	for _, c := range checks {
		findings = append(findings, backend.Finding{Check: c, Resource: "arn:aws:iam::123456789012:role/groundzero-dev-apply", Detail: "differs"})
	}
	data, err := json.Marshal(backend.SARIF(findings, "infra/bootstrap/.backend.lock"))
	if err != nil {
		t.Fatal(err)
	}
	var log struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Rules []struct {
						ID               string `json:"id"`
						ShortDescription struct {
							Text string `json:"text"`
						} `json:"shortDescription"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID string `json:"ruleId"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(data, &log); err != nil || len(log.Runs) != 1 {
		t.Fatalf("SARIF = %s, %v: want one run", data, err)
	}
	texts := map[string]string{}
	for _, r := range log.Runs[0].Tool.Driver.Rules {
		texts[r.ID] = r.ShortDescription.Text
	}
	if len(texts) != len(checks) || len(log.Runs[0].Results) != len(checks) {
		t.Fatalf("SARIF has %d rules and %d results, want %d of each", len(texts), len(log.Runs[0].Results), len(checks))
	}
	for _, c := range checks {
		text, ok := texts["backend-"+c]
		if !ok {
			t.Errorf("SARIF has no rule backend-%s", c)
			continue
		}
		if text == c || !strings.Contains(text, " ") || strings.HasSuffix(text, ".") {
			t.Errorf("rule backend-%s text = %q, want a description of the check", c, text)
		}
	}
	for c, want := range map[string]string{
		ciidentity.CheckMissing:  "exist",
		ciidentity.CheckDrift:    "are as `groundzero ci policy` prints them",
		ciidentity.CheckWidening: "admits more than",
	} {
		if text := texts["backend-"+c]; !strings.Contains(text, want) {
			t.Errorf("rule backend-%s text = %q, want it to contain %q", c, text, want)
		}
	}
}
