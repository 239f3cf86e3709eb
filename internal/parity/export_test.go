package parity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/pinned"
	"github.com/groundzero/groundzero/internal/policy"
)

// exportCase is a plan and the policy it is checked against.
type exportCase struct {
	name   string
	policy *policy.Policy
	plan   []byte
}

func exportCases(t *testing.T) []exportCase {
	var out []exportCase
	for _, c := range semanticCases(t) {
		out = append(out, exportCase{c.name, c.policy, c.plan})
	}
	base, err := policy.Parse("policy.yaml", []byte(policyYAML))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"aws.json", "google.json", "oci.json", "digitalocean.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", "plans", f))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, exportCase{f, base, data})
	}
	real, err := policy.Parse("policy.yaml", []byte(tofuPolicy))
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, exportCase{"real tofu plan", real, tofuPlan(t)})
	gen, err := exec.Command("go", "run", "../../bench/genplan", "-n", "2000").Output()
	if err != nil {
		t.Fatalf("bench/genplan: %v", err)
	}
	generated, err := policy.Parse("policy.yaml", []byte(benchPolicy))
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, exportCase{"generated 2000 resources", generated, gen})
	return out
}

// benchPolicy is the policy of the benchmark in bench/ (bench/run).
const benchPolicy = `version: 1
backend: {kind: s3}
environments:
  - name: prod
    regions: [eu-west-1]
    naming: {"*": "^acme-prod-[a-z0-9-]+$", aws_s3_bucket: "^acme-prod-[a-z0-9-]+$"}
    tags: {owner: "^[a-z-]+$", env: "^prod$"}
resources:
  denied: [aws_iam_user]
parity:
  waive:
    - rule: dns
      address: "aws_route53_record.www_0*"
      reason: "records under 1000 are delegated here (SEC-7)"
`

// pairs renders (level, address, rule) triples, sorted and distinct.
func pairs(level string, vs []parity.Violation, into map[string]bool) {
	for _, v := range vs {
		into[level+" "+v.Address+" "+v.Rule] = true
	}
}

func sorted(set map[string]bool) []string {
	var out []string
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func writeExport(t *testing.T, p *policy.Policy) string {
	t.Helper()
	files, err := parity.Export(p, p.Environments[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The exported rules give the same (address, rule) findings in conftest,
// built from its Go module (scripts/tools), as groundzero does, denials
// and warnings alike, on every semantic case, the provider fixtures, a real
// OpenTofu plan and a generated plan.
func TestExportMatchesConftest(t *testing.T) {
	conftest, err := pinned.Path("conftest")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range exportCases(t) {
		t.Run(c.name, func(t *testing.T) {
			in, err := parity.ReadPlan(bytes.NewReader(c.plan), nil)
			if err != nil {
				t.Fatal(err)
			}
			res := evaluate(t, c.policy, in)
			want := map[string]bool{}
			pairs("deny", res.Deny, want)
			pairs("warn", res.Warn, want)

			dir := writeExport(t, c.policy)
			plan := filepath.Join(dir, "plan.json")
			if err := os.WriteFile(plan, c.plan, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(conftest, "test", plan, "-p", filepath.Join(dir, "policy"), "--data", filepath.Join(dir, "data.json"),
				"--namespace", "groundzero.parity", "--output", "json", "--no-fail", "--no-color")
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("conftest: %v\n%s", err, stderr.Bytes())
			}
			var results []struct {
				Failures []struct {
					Metadata map[string]any `json:"metadata"`
				} `json:"failures"`
				Warnings []struct {
					Metadata map[string]any `json:"metadata"`
				} `json:"warnings"`
			}
			if err := json.Unmarshal(out, &results); err != nil || len(results) != 1 {
				t.Fatalf("conftest output %s: %v", out, err)
			}
			got := map[string]bool{}
			for _, f := range results[0].Failures {
				got[fmt.Sprintf("deny %s %s", f.Metadata["address"], f.Metadata["rule"])] = true
			}
			for _, f := range results[0].Warnings {
				got[fmt.Sprintf("warn %s %s", f.Metadata["address"], f.Metadata["rule"])] = true
			}
			if !reflect.DeepEqual(sorted(got), sorted(want)) {
				t.Errorf("conftest findings =\n%s\ngroundzero findings =\n%s", strings.Join(sorted(got), "\n"), strings.Join(sorted(want), "\n"))
			}
			if len(want) == 0 && c.name != "forget" {
				t.Errorf("no findings: the case checks nothing")
			}

			// opa eval reads the same files: the waived findings agree too.
			waived := map[string]bool{}
			pairs("waived", res.Waived, waived)
			if got := opaWaived(t, dir, c.plan); !reflect.DeepEqual(sorted(got), sorted(waived)) {
				t.Errorf("opa waived =\n%s\ngroundzero waived =\n%s", strings.Join(sorted(got), "\n"), strings.Join(sorted(waived), "\n"))
			}
		})
	}
}

// opaWaived evaluates data.groundzero.parity.waived on the export with
// OPA, as `opa eval -d DIR/policy -d DIR/data.json -i PLAN` would.
func opaWaived(t *testing.T, dir string, plan []byte) map[string]bool {
	t.Helper()
	var data map[string]any
	raw, err := os.ReadFile(filepath.Join(dir, "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &data); err != nil {
		t.Fatal(err)
	}
	opts := []func(*rego.Rego){rego.Query("x := data.groundzero.parity.waived"), rego.Store(inmem.NewFromObject(data)), rego.SetRegoVersion(ast.RegoV1)}
	for _, m := range []string{"parity.rego", "plan.rego"} {
		src, err := os.ReadFile(filepath.Join(dir, "policy", m))
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, rego.Module(m, string(src)))
	}
	var input any
	if err := json.Unmarshal(plan, &input); err != nil {
		t.Fatal(err)
	}
	rs, err := rego.New(append(opts, rego.Input(input))...).Eval(context.Background())
	if err != nil || len(rs) != 1 {
		t.Fatalf("opa: %v %v", rs, err)
	}
	out := map[string]bool{}
	for _, w := range rs[0].Bindings["x"].([]any) {
		m := w.(map[string]any)
		out[fmt.Sprintf("waived %s %s", m["address"], m["rule"])] = true
	}
	return out
}
