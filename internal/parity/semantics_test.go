package parity_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/pinned"
	"github.com/groundzero/groundzero/internal/policy"
)

// semanticCase is a hand-written plan (testdata/semantics/*.txtar) with the
// policy it is checked against and the findings it must give, one per line:
// LEVEL ADDRESS RULE FOUND, where LEVEL is deny, warn or waived.
type semanticCase struct {
	name   string
	policy *policy.Policy
	plan   []byte
	want   []string
}

func semanticCases(t *testing.T) []semanticCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "semantics", "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases in testdata/semantics: %v", err)
	}
	var out []semanticCase
	for _, f := range files {
		a, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := semanticCase{name: strings.TrimSuffix(filepath.Base(f), ".txtar")}
		for _, af := range a.Files {
			switch af.Name {
			case "policy.yaml":
				if c.policy, err = policy.Parse(f+": policy.yaml", af.Data); err != nil {
					t.Fatal(err)
				}
			case "plan.json":
				c.plan = af.Data
			case "want":
				c.want = lines(af.Data)
			}
		}
		if c.policy == nil || c.plan == nil {
			t.Fatalf("%s: needs policy.yaml and plan.json", f)
		}
		out = append(out, c)
	}
	return out
}

// findings renders a result as sorted, distinct LEVEL ADDRESS RULE FOUND
// lines.
func findings(res *parity.Result) []string {
	set := map[string]bool{}
	for level, vs := range map[string][]parity.Violation{"deny": res.Deny, "warn": res.Warn, "waived": res.Waived} {
		for _, v := range vs {
			set[fmt.Sprintf("%s %s %s %s", level, v.Address, v.Rule, v.Found)] = true
		}
	}
	var out []string
	for l := range set {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

func evaluate(t testing.TB, p *policy.Policy, in *parity.Input) *parity.Result {
	t.Helper()
	e, err := parity.New(context.Background(), p, p.Environments[0].Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Evaluate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Each semantic case gives its findings, streamed (ReadPlan) and through
// terraform-json (FromPlan, the path governed plans take) alike.
func TestSemantics(t *testing.T) {
	for _, c := range semanticCases(t) {
		t.Run(c.name, func(t *testing.T) {
			in, err := parity.ReadPlan(bytes.NewReader(c.plan), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := findings(evaluate(t, c.policy, in))
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("findings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			e, err := parity.New(context.Background(), c.policy, c.policy.Environments[0].Name, nil)
			if err != nil {
				t.Fatal(err)
			}
			streamed, n, err := e.EvaluatePlan(context.Background(), bytes.NewReader(c.plan))
			if err != nil {
				t.Fatal(err)
			}
			if viaStream := findings(streamed); !reflect.DeepEqual(viaStream, got) || n != len(in.Resources) {
				t.Errorf("streamed, %d resources, findings =\n%s\nwant %d,\n%s", n, strings.Join(viaStream, "\n"), len(in.Resources), strings.Join(got, "\n"))
			}
			p, err := parity.ParsePlan(c.plan)
			if err != nil {
				t.Fatal(err)
			}
			if viaJSON := findings(evaluate(t, c.policy, parity.FromPlan(p))); !reflect.DeepEqual(viaJSON, got) {
				t.Errorf("through terraform-json, findings =\n%s\nwant\n%s", strings.Join(viaJSON, "\n"), strings.Join(got, "\n"))
			}
		})
	}
}

// With parity.unknown at its default, unknown values deny.
func TestUnknownDeniesByDefault(t *testing.T) {
	for _, c := range semanticCases(t) {
		if c.name != "unknown" {
			continue
		}
		c.policy.Parity.Unknown = "deny"
		in, err := parity.ReadPlan(bytes.NewReader(c.plan), nil)
		if err != nil {
			t.Fatal(err)
		}
		res := evaluate(t, c.policy, in)
		unknown := 0
		for _, v := range res.Deny {
			if v.Rule == "unknown" {
				unknown++
			}
		}
		if len(res.Warn) != 0 || unknown != 4 {
			t.Fatalf("deny = %v, warn = %v; want the four unknown findings denied", res.Deny, res.Warn)
		}
		return
	}
	t.Fatal("no unknown case")
}

// Bad plan JSON names the byte offset and says what is wrong.
func TestReadPlanErrors(t *testing.T) {
	for src, want := range map[string]string{
		`[]`:                        "not a JSON object",
		`{"resource_changes": []}`:  "no format_version",
		`{"format_version": "2.0"}`: `format_version "2.0" is not 1.x`,
		`{"format_version": "1.2", "a": 1, "a": 2}`:                                                               "duplicate",
		`{"format_version": "1.2", "resource_changes": [{"mode": "managed", "change": {"actions": ["create"]}}]}`: "no address or type",
		`{"format_version": "1.2"} {}`:                                                                            "more than one JSON value",
		`{"format_version": "1.2", "resource_changes": [`:                                                         "byte",
	} {
		_, err := parity.ReadPlan(strings.NewReader(src), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadPlan(%s) = %v, want an error containing %q", src, err, want)
		}
	}
}

// A waiver must name a built-in rule, with a glob that compiles; a naming
// pattern for a type with no name of its own says which type carries it.
func TestPolicyRefusals(t *testing.T) {
	for extra, want := range map[string]string{
		"parity:\n  waive:\n    - {rule: no-such-rule, reason: \"because of a reason\"}\n":        `no built-in rule "no-such-rule"`,
		"parity:\n  waive:\n    - {rule: dns, address: \"[\", reason: \"because of a reason\"}\n": "parity.waive[0].address",
	} {
		p, err := policy.Parse("policy.yaml", []byte(policyYAML+extra))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parity.New(context.Background(), p, "prod", nil); err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "policy.yaml: ") {
			t.Errorf("New(%q) = %v, want an error naming policy.yaml and %q", extra, err, want)
		}
	}
	if _, err := policy.Parse("policy.yaml", []byte(policyYAML+"parity:\n  waive:\n    - {rule: dns}\n")); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Errorf("a waiver without a reason parsed: %v", err)
	}
	kms := strings.Replace(policyYAML, "    naming:\n", "    naming:\n      aws_kms_key: \"^x$\"\n", 1)
	p, err := policy.Parse("policy.yaml", []byte(kms))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parity.New(context.Background(), p, "prod", nil); err == nil || !strings.Contains(err.Error(), "write the pattern for aws_kms_alias") {
		t.Errorf("naming aws_kms_key = %v, want it sent to aws_kms_alias", err)
	}
}

// tofuPlan is the plan JSON of a real OpenTofu plan (the pinned binary) of
// built-in resources: a region from a variable, at the root and through a
// module; a tag that is unknown until apply; and a resource in state that a
// removed block forgets.
var tofuPlanOnce struct {
	sync.Mutex
	data []byte
}

func tofuPlan(t *testing.T) []byte {
	t.Helper()
	tofuPlanOnce.Lock()
	defer tofuPlanOnce.Unlock()
	if tofuPlanOnce.data != nil {
		return tofuPlanOnce.data
	}
	tofu, err := pinned.Path("tofu")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) []byte {
		cmd := exec.Command(tofu, args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "TF_CLI_CONFIG_FILE=/dev/null", "TF_IN_AUTOMATION=1"}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tofu %v: %v\n%s", args, err, stderr.Bytes())
		}
		return out
	}
	write("main.tf", `resource "terraform_data" "old" {
  input = { name = "acme-prod-old", region = "eu-west-1", tags = { owner = "platform" } }
}
`)
	run("init", "-input=false", "-no-color")
	run("apply", "-input=false", "-no-color", "-auto-approve")
	write("main.tf", `variable "region" {
  type = string
}

removed {
  from = terraform_data.old
  lifecycle {
    destroy = false
  }
}

resource "terraform_data" "source" {
  input = "x"
}

resource "terraform_data" "regional" {
  input = { name = "acme-prod-a", region = var.region, tags = { owner = "platform" } }
}

resource "terraform_data" "late" {
  input = { name = "acme-prod-b", region = "eu-west-1", tags = { owner = terraform_data.source.id } }
}

module "m" {
  source = "./m"
  region = var.region
}
`)
	write("m/main.tf", `variable "region" {
  type = string
}

resource "terraform_data" "inner" {
  input = { name = "acme-prod-c", region = var.region, tags = { owner = "platform" } }
}
`)
	run("init", "-input=false", "-no-color")
	run("plan", "-input=false", "-no-color", "-var", "region=us-east-1", "-out=p.tfplan")
	tofuPlanOnce.data = run("show", "-json", "p.tfplan")
	return tofuPlanOnce.data
}

const tofuPolicy = `version: 1
backend: {kind: local}
environments:
  - name: prod
    regions: [eu-west-1]
    naming: {"*": "^acme-prod-[a-z]+$"}
    tags: {owner: "^[a-z-]+$"}
`

// A real OpenTofu plan: the forgotten resource is not checked, the region
// that a variable sets is read (at the root and in a module), and a tag
// unknown until apply is its own finding.
func TestRealTofuPlanSemantics(t *testing.T) {
	data := tofuPlan(t)
	in, err := parity.ReadPlan(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	var forgotten bool
	for _, r := range in.Resources {
		forgotten = forgotten || r.Address == "terraform_data.old"
	}
	if forgotten || !bytes.Contains(data, []byte(`"forget"`)) {
		t.Fatalf("terraform_data.old: checked = %v, plan has a forget action = %v; want it forgotten and not checked", forgotten, bytes.Contains(data, []byte(`"forget"`)))
	}
	p, err := policy.Parse("policy.yaml", []byte(tofuPolicy))
	if err != nil {
		t.Fatal(err)
	}
	got := findings(evaluate(t, p, in))
	want := []string{
		"deny module.m.terraform_data.inner region us-east-1",
		"deny terraform_data.late unknown unknown until apply",
		"deny terraform_data.regional region us-east-1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("findings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A cancelled evaluation is an error, never a pass.
func TestCancelledEvaluationFails(t *testing.T) {
	c := semanticCases(t)[0]
	e, err := parity.New(context.Background(), c.policy, c.policy.Environments[0].Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in, err := parity.ReadPlan(bytes.NewReader(c.plan), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := e.Evaluate(ctx, in); err == nil {
		t.Fatalf("Evaluate(cancelled) = %+v, want an error", res)
	}
	if res, _, err := e.EvaluatePlan(ctx, bytes.NewReader(c.plan)); err == nil {
		t.Fatalf("EvaluatePlan(cancelled) = %+v, want an error", res)
	}
}
