package parity_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/pinned"
	"github.com/groundzero/groundzero/internal/policy"
)

const policyYAML = `version: 1
backend: {kind: s3}
environments:
  - name: prod
    regions: [eu-west-1, europe-west1, eu-frankfurt-1, fra1]
    naming:
      aws_s3_bucket: "^acme-prod-[a-z0-9-]+$"
      google_storage_bucket: "^acme-prod-[a-z0-9-]+$"
    tags:
      env: "^prod$"
      owner: "^[a-z-]+$"
resources:
  denied: [aws_iam_user, aws_iam_access_key]
`

func engine(t testing.TB, yaml string, custom map[string]string) *parity.Engine {
	t.Helper()
	p, err := policy.Parse("policy.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	mods, err := parity.ParseCustom(custom, func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	e, err := parity.New(context.Background(), p, p.Environments[0].Name, mods)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func planInput(t testing.TB, file string) *parity.Input {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "plans", file))
	if err != nil {
		t.Fatal(err)
	}
	p, err := parity.ParsePlan(data)
	if err != nil {
		t.Fatalf("%s does not parse with terraform-json: %v", file, err)
	}
	return parity.FromPlan(p)
}

func check(t testing.TB, e *parity.Engine, in *parity.Input) []string {
	t.Helper()
	vs, err := e.Check(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range vs {
		out = append(out, v.Address+" "+v.Rule+" "+v.Found)
	}
	return out
}

// The hand-written fixtures follow the terraform-json schema, and each
// provider's tags, regions and names are understood.
func TestNormaliseProviders(t *testing.T) {
	cases := []struct {
		file, address, region, name string
		tags                        map[string]string
	}{
		{"aws.json", "aws_s3_bucket.state", "eu-west-1", "acme-prod-tfstate", map[string]string{"owner": "platform", "env": "prod", "cost-center": "cc-1234"}},
		{"aws.json", "aws_kms_key.state", "eu-west-1", "", map[string]string{"env": "prod", "cost-center": "cc-1234"}},
		{"aws.json", "aws_s3_bucket_versioning.state", "eu-west-1", "", nil},
		{"google.json", "google_storage_bucket.state", "europe-west1", "acme-prod-tfstate", map[string]string{"owner": "platform", "env": "prod", "goog-terraform-provisioned": "true"}},
		{"oci.json", "oci_objectstorage_bucket.state", "eu-frankfurt-1", "acme-prod-tfstate", map[string]string{"owner": "platform", "Operations.env": "prod"}},
		{"oci.json", "oci_kms_vault.state", "eu-frankfurt-1", "state-vault", map[string]string{}},
		{"digitalocean.json", "digitalocean_droplet.runner", "nyc3", "runner", map[string]string{"owner": "platform", "env": "prod", "ci": ""}},
		{"digitalocean.json", "digitalocean_spaces_bucket.state", "fra1", "acme-prod-tfstate", nil},
	}
	for _, c := range cases {
		in := planInput(t, c.file)
		var found *parity.Resource
		for i := range in.Resources {
			if in.Resources[i].Address == c.address {
				found = &in.Resources[i]
			}
		}
		if found == nil {
			t.Errorf("%s: %s not found", c.file, c.address)
			continue
		}
		if found.Region != c.region || found.Name != c.name || !reflect.DeepEqual(found.Tags, c.tags) {
			t.Errorf("%s: %s = region %q name %q tags %v, want %q %q %v", c.file, c.address, found.Region, found.Name, found.Tags, c.region, c.name, c.tags)
		}
	}
	// Reads, no-ops and deletes are not checked.
	for _, r := range planInput(t, "aws.json").Resources {
		if r.Address == "aws_iam_user.legacy" || strings.HasPrefix(r.Address, "data.") {
			t.Errorf("%s should not be checked", r.Address)
		}
	}
}

func TestPlanViolations(t *testing.T) {
	e := engine(t, policyYAML, nil)
	want := map[string][]string{
		"aws.json": {
			"aws_kms_key.state required-tag no such tag",
			`aws_s3_bucket.logs naming "Logs_Bucket"`,
			"aws_s3_bucket.logs region us-east-1",
			`aws_s3_bucket.logs tag-value "staging"`,
		},
		"google.json": {"google_kms_crypto_key.state required-tag no such tag"},
		"oci.json": {
			"oci_kms_vault.state required-tag no such tag",
			"oci_kms_vault.state required-tag no such tag",
			"oci_objectstorage_bucket.state required-tag no such tag",
		},
		"digitalocean.json": {"digitalocean_droplet.runner region nyc3"},
	}
	for file, w := range want {
		got := check(t, e, planInput(t, file))
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s: violations =\n%s\nwant\n%s", file, strings.Join(got, "\n"), strings.Join(w, "\n"))
		}
	}
}

func TestDeniedAndAllowedTypes(t *testing.T) {
	e := engine(t, policyYAML, nil)
	in := &parity.Input{Source: "plan", Resources: []parity.Resource{{Address: "aws_iam_user.x", Type: "aws_iam_user", Actions: []string{"create"}}}}
	if got := check(t, e, in); !reflect.DeepEqual(got, []string{"aws_iam_user.x denied-type aws_iam_user"}) {
		t.Fatalf("denied type: %v", got)
	}
	allowed := strings.Replace(policyYAML, "  denied: [aws_iam_user, aws_iam_access_key]", "  allowed: [aws_s3_bucket]", 1)
	e = engine(t, allowed, nil)
	in.Resources[0] = parity.Resource{Address: "aws_sqs_queue.q", Type: "aws_sqs_queue"}
	if got := check(t, e, in); len(got) != 1 || !strings.Contains(got[0], "allowed-type aws_sqs_queue") {
		t.Fatalf("allowed types: %v", got)
	}
}

func TestCustomRules(t *testing.T) {
	custom := map[string]string{"governance/rego/kms.rego": `package groundzero.custom

import rego.v1

deny contains msg if {
	some r in input.resources
	r.type == "aws_kms_key"
	not r.values.enable_key_rotation
	msg := sprintf("%s: KMS keys must rotate", [r.address])
}

deny contains v if {
	some r in input.resources
	r.type == "aws_s3_bucket"
	r.values.force_destroy
	v := {"address": r.address, "rule": "no-force-destroy", "msg": "state buckets must not be force-destroyed"}
}
`}
	e := engine(t, policyYAML, custom)
	in := &parity.Input{Source: "plan", Resources: []parity.Resource{
		{Address: "aws_kms_key.k", Type: "aws_kms_key", Values: map[string]any{"enable_key_rotation": false}},
		{Address: "aws_s3_bucket.b", Type: "aws_s3_bucket", Name: "acme-prod-x", Region: "eu-west-1", Values: map[string]any{"force_destroy": true}},
	}}
	vs, err := e.Check(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.String())
	}
	want := []string{"(custom): custom: aws_kms_key.k: KMS keys must rotate", "aws_s3_bucket.b: no-force-destroy: state buckets must not be force-destroyed"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("custom violations = %q, want %q", got, want)
	}
	// A module in another package, or one that does not compile, is refused
	// with its file and line.
	for src, msg := range map[string]string{
		"package other\n": "custom rules belong in package groundzero.custom",
		"package groundzero.custom\n\ndeny contains {": "line 3",
	} {
		_, err := parity.ParseCustom(map[string]string{"bad.rego": src}, func(s string) string { return s })
		if err == nil || !strings.Contains(err.Error(), msg) || !strings.HasPrefix(err.Error(), "bad.rego: ") {
			t.Errorf("ParseCustom(%q) = %v, want %q", src, err, msg)
		}
	}
}

// The static check reads literal values from the configuration, with the AWS
// provider's default tags, and checks the backend.
func TestFromConfig(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.tf"), []byte(`
terraform {
  backend "local" {}
}
provider "aws" {
  region = "us-east-2"
  default_tags {
    tags = { env = "prod" }
  }
}
variable "name" { default = "x" }
resource "aws_s3_bucket" "state" {
  bucket = "acme-prod-tfstate"
  tags   = { owner = "platform" }
}
resource "aws_s3_bucket" "dyn" {
  bucket = var.name
}
resource "terraform_data" "marker" {
  input = { name = "m", region = "eu-west-1", tags = { env = "prod", owner = "ops" } }
}
`), 0o644)
	in, err := parity.FromConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := engine(t, policyYAML, nil)
	got := check(t, e, in)
	// bucket = var.name is left to the plan check.
	want := []string{
		"aws_s3_bucket.dyn region us-east-2",
		"aws_s3_bucket.dyn required-tag no such tag",
		"aws_s3_bucket.state region us-east-2",
		"terraform.backend backend local",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("config violations =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	os.WriteFile(filepath.Join(dir, "bad.tf"), []byte("resource {"), 0o644)
	if _, err := parity.FromConfig(dir); err == nil || !strings.Contains(err.Error(), "bad.tf") {
		t.Fatalf("FromConfig(broken) = %v, want an error naming bad.tf", err)
	}
}

// Real plan JSON from the pinned OpenTofu, of a configuration of built-in
// resources, goes through the same rules.
func TestRealTofuPlan(t *testing.T) {
	tofu, err := pinned.Path("tofu")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.tf"), []byte(`
resource "terraform_data" "good" {
  input = { name = "acme-prod-a", region = "eu-west-1", tags = { env = "prod", owner = "platform" } }
}
resource "terraform_data" "bad" {
  input = { name = "b", region = "ap-south-1", tags = { env = "dev" } }
}
`), 0o644)
	run := func(args ...string) []byte {
		cmd := exec.Command(tofu, args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "TF_CLI_CONFIG_FILE=/dev/null", "TF_IN_AUTOMATION=1"}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tofu %v: %v", args, err)
		}
		return out
	}
	run("init", "-input=false", "-no-color")
	run("plan", "-input=false", "-no-color", "-out=p.tfplan")
	p, err := parity.ParsePlan(run("show", "-json", "p.tfplan"))
	if err != nil {
		t.Fatal(err)
	}
	got := check(t, engine(t, policyYAML, nil), parity.FromPlan(p))
	want := []string{"terraform_data.bad region ap-south-1", "terraform_data.bad required-tag no such tag", `terraform_data.bad tag-value "dev"`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("violations = %q, want %q", got, want)
	}
}

// BenchmarkCheck10k evaluates the built-in rules on a generated plan of
// 10,000 resources (bench/genplan), streamed from a file as policy check
// reads it. bench/run compares the whole command with conftest.
func BenchmarkCheck10k(b *testing.B) {
	out, err := exec.Command("go", "run", "../../bench/genplan", "-n", "10000").Output()
	if err != nil {
		b.Fatal(err)
	}
	plan := filepath.Join(b.TempDir(), "plan.json")
	if err := os.WriteFile(plan, out, 0o644); err != nil {
		b.Fatal(err)
	}
	e := engine(b, benchPolicy, nil)
	b.SetBytes(int64(len(out)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := os.Open(plan)
		if err != nil {
			b.Fatal(err)
		}
		res, n, err := e.EvaluatePlan(context.Background(), f)
		f.Close()
		if err != nil || n != 9900 || len(res.Deny) == 0 {
			b.Fatalf("EvaluatePlan = %d resources, %d denials, %v", n, len(res.Deny), err)
		}
	}
}

// Custom rules get the raw values of the types they name in a comparison
// with .type, streamed from the plan; a rule that reads values without
// naming a type gets every resource's.
func TestCustomValuesForNamedTypes(t *testing.T) {
	named := map[string]string{"governance/rego/kms.rego": `package groundzero.custom

import rego.v1

deny contains v if {
	some r in input.resources
	r.type == "aws_kms_key"
	r.values.enable_key_rotation == true
	v := {"address": r.address, "rule": "kms-rotation", "msg": "rotation is on"}
}
`}
	e := engine(t, policyYAML, named)
	if !e.Values("aws_kms_key") || e.Values("aws_s3_bucket") {
		t.Fatalf("Values(aws_kms_key) = %v, Values(aws_s3_bucket) = %v; want only the named type", e.Values("aws_kms_key"), e.Values("aws_s3_bucket"))
	}
	f, err := os.Open(filepath.Join("testdata", "plans", "aws.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, _, err := e.EvaluatePlan(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range res.Deny {
		if v.Rule == "kms-rotation" {
			got = append(got, v.Address)
		}
	}
	if !reflect.DeepEqual(got, []string{"aws_kms_key.state"}) {
		t.Fatalf("kms-rotation findings = %v, want aws_kms_key.state", got)
	}
	any := map[string]string{"governance/rego/any.rego": `package groundzero.custom

import rego.v1

deny contains r.address if {
	some r in input.resources
	r.values.force_destroy
}
`}
	if e := engine(t, policyYAML, any); !e.Values("aws_s3_bucket") {
		t.Fatal("a rule that reads values of any type does not get them")
	}
}
