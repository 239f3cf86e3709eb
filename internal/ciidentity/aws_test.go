package ciidentity_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/ciidentity"
	"github.com/groundzero/groundzero/internal/ciidentity/iamfake"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/s3gateway"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const keyARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func testPolicy(t *testing.T, ci string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("governance/policy.yaml", []byte(`version: 1
backend:
  kind: s3
  bucket: state-bucket
  key_prefix: org
  region: eu-west-1
  encryption: {provider: aws_kms, key: acme-tfstate}
environments:
  - name: prod
  - name: dev
`+ci))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const githubCI = `ci:
  provider: github
  repository: acme/platform
  environments: [prod]
  plan_refs: [refs/heads/main, pull_request]
  aws: {account: "111122223333"}
`

func storeSpec(t *testing.T, p *policy.Policy, env string) backend.Spec {
	t.Helper()
	s, _, err := backend.FromPolicy(p, env)
	if err != nil {
		t.Fatal(err)
	}
	s.Key.ID = keyARN
	return s
}

func awsSpec(t *testing.T, ci string) *ciidentity.Spec {
	t.Helper()
	p := testPolicy(t, ci)
	s, err := ciidentity.FromPolicy(p, storeSpec(t, p, "prod"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// AWS IAM cannot be reached here: newAWS points the client at a fake IAM
// (package iamfake) for account 111122223333 that accepts requests signed
// by AKIDFAKE, and fails the test on any request it refused as malformed.
func newAWS(t *testing.T, spec *ciidentity.Spec) (*ciidentity.AWS, *iamfake.Server) {
	t.Helper()
	f := iamfake.Start("111122223333", "AKIDFAKE")
	t.Cleanup(func() {
		f.Close()
		for _, p := range f.Problems() {
			t.Errorf("fake IAM: %s", p)
		}
	})
	s3gateway.UseEnv(t)
	a, err := ciidentity.NewAWS(context.Background(), spec, ciidentity.AWSOptions{
		Endpoint: f.URL, Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return a, f
}

// ops lists the operations the fake received, in order.
func ops(f *iamfake.Server) []string {
	var out []string
	for _, r := range f.Requests() {
		out = append(out, r.Op)
	}
	return out
}

// writes lists the operations received that change something.
func writes(f *iamfake.Server) []string {
	var out []string
	for _, r := range f.Requests() {
		if r.Writes() {
			out = append(out, r.Op)
		}
	}
	return out
}

// param returns parameter name of the first request of op (for role
// roleName, unless "").
func param(t *testing.T, f *iamfake.Server, op, roleName, name string) string {
	t.Helper()
	for _, r := range f.Requests() {
		if r.Op == op && (roleName == "" || r.Params.Get("RoleName") == roleName) {
			return r.Params.Get(name)
		}
	}
	t.Fatalf("no %s request for role %q", op, roleName)
	return ""
}

// doc reads a policy document as sent (JSON) or stored (URL-encoded).
type doc struct {
	Statement []struct {
		Sid       string
		Effect    string
		Principal map[string][]string
		Action    []string
		Resource  []string
		Condition map[string]map[string][]string
	}
}

func parseDoc(t *testing.T, s string) doc {
	t.Helper()
	if u, err := url.QueryUnescape(s); err == nil && !strings.HasPrefix(s, "{") {
		s = u
	}
	var d doc
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		t.Fatalf("document %q: %v", s, err)
	}
	return d
}

func TestAWSProvisionSendsTheGeneratedDocuments(t *testing.T) {
	a, f := newAWS(t, awsSpec(t, githubCI))
	p, err := a.Provision(context.Background())
	if err != nil {
		t.Fatalf("Provision() = %v", err)
	}
	wantOps := []string{"GetOpenIDConnectProvider", "CreateOpenIDConnectProvider",
		"GetRole", "CreateRole", "PutRolePolicy", "GetRole", "CreateRole", "PutRolePolicy"}
	if got := ops(f); !slices.Equal(got, wantOps) {
		t.Errorf("operations = %v, want %v", got, wantOps)
	}
	if got := param(t, f, "CreateOpenIDConnectProvider", "", "Url"); got != policy.GitHubIssuer {
		t.Errorf("CreateOpenIDConnectProvider Url = %q, want %q", got, policy.GitHubIssuer)
	}
	if got := param(t, f, "CreateOpenIDConnectProvider", "", "ClientIDList.member.1"); got != "groundzero" {
		t.Errorf("CreateOpenIDConnectProvider audience = %q, want groundzero", got)
	}
	if got := param(t, f, "CreateOpenIDConnectProvider", "", "ClientIDList.member.2"); got != "" {
		t.Errorf("CreateOpenIDConnectProvider has a second audience %q", got)
	}
	fed := "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"

	// Apply: exactly the environment's subject, from a GitHub environment.
	apply := parseDoc(t, param(t, f, "CreateRole", "groundzero-prod-apply", "AssumeRolePolicyDocument"))
	if len(apply.Statement) != 1 {
		t.Fatalf("apply trust has %d statements, want 1", len(apply.Statement))
	}
	st := apply.Statement[0]
	if !slices.Equal(st.Principal["Federated"], []string{fed}) || !slices.Equal(st.Action, []string{"sts:AssumeRoleWithWebIdentity"}) {
		t.Errorf("apply trust principal %v action %v", st.Principal, st.Action)
	}
	wantCond := map[string]map[string][]string{"StringEquals": {
		"token.actions.githubusercontent.com:aud": {"groundzero"},
		"token.actions.githubusercontent.com:sub": {"repo:acme/platform:environment:prod"},
	}}
	if !condEqual(st.Condition, wantCond) {
		t.Errorf("apply trust condition = %v, want %v", st.Condition, wantCond)
	}
	// Plan: tags, the listed branch and pull requests; never the
	// environment's subject.
	plan := parseDoc(t, param(t, f, "CreateRole", "groundzero-prod-plan", "AssumeRolePolicyDocument"))
	wantCond = map[string]map[string][]string{
		"StringEquals": {"token.actions.githubusercontent.com:aud": {"groundzero"}},
		"StringLike": {"token.actions.githubusercontent.com:sub": {
			"repo:acme/platform:ref:refs/tags/*", "repo:acme/platform:ref:refs/heads/main", "repo:acme/platform:pull_request"}},
	}
	if !condEqual(plan.Statement[0].Condition, wantCond) {
		t.Errorf("plan trust condition = %v, want %v", plan.Statement[0].Condition, wantCond)
	}

	// Permissions: nothing beyond the environment's prefix, its lock and
	// its key; plan writes the lock object only.
	for _, role := range []string{"plan", "apply"} {
		d := parseDoc(t, param(t, f, "PutRolePolicy", "groundzero-prod-"+role, "PolicyDocument"))
		if got := param(t, f, "PutRolePolicy", "groundzero-prod-"+role, "PolicyName"); got != ciidentity.InlinePolicy {
			t.Errorf("%s PutRolePolicy name = %q", role, got)
		}
		checkLeastPrivilege(t, role, d)
	}
	// Every call has the request ID IAM answered it with, and its resource.
	reqs := f.Requests()
	for i, c := range p.Calls {
		if i >= len(reqs) || c.RequestID != reqs[i].RequestID || c.Operation != reqs[i].Op || !strings.HasPrefix(c.Resource, "arn:aws:iam::111122223333:") || c.Service != "iam" {
			t.Errorf("call %+v lacks its request ID or resource ARN", c)
		}
	}
	if len(p.Calls) != len(wantOps) {
		t.Errorf("Provision() recorded %d calls, want %d", len(p.Calls), len(wantOps))
	}
	if p.Identities["plan"] != "arn:aws:iam::111122223333:role/groundzero-prod-plan" || p.Federation != fed {
		t.Errorf("Provisioned = %+v", p)
	}
}

// checkLeastPrivilege checks a role's permission policy: every resource is
// the bucket (listed under the environment's prefix only), an object under
// PREFIX/ENV/, or the key; plan puts and deletes the lock object alone.
func checkLeastPrivilege(t *testing.T, role string, d doc) {
	t.Helper()
	const objects = "arn:aws:s3:::state-bucket/org/prod/"
	for _, st := range d.Statement {
		if st.Effect != "Allow" {
			t.Errorf("%s %s: effect %s", role, st.Sid, st.Effect)
		}
		for _, r := range st.Resource {
			switch {
			case r == "arn:aws:s3:::state-bucket":
				if !slices.Equal(st.Action, []string{"s3:ListBucket"}) || !slices.Equal(st.Condition["StringLike"]["s3:prefix"], []string{"org/prod/", "org/prod/*"}) {
					t.Errorf("%s %s: the bucket with %v %v, want s3:ListBucket under the prefix only", role, st.Sid, st.Action, st.Condition)
				}
			case strings.HasPrefix(r, objects):
				if strings.Count(r, "*") > 1 || (strings.Contains(r, "*") && r != objects+"*") {
					t.Errorf("%s %s: wildcard resource %s", role, st.Sid, r)
				}
			case r == keyARN:
				want := []string{"kms:Decrypt", "kms:GenerateDataKey"}
				if role == "apply" {
					want = []string{"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"}
				}
				if !slices.Equal(st.Action, want) {
					t.Errorf("%s key actions = %v, want %v", role, st.Action, want)
				}
			default:
				t.Errorf("%s %s: resource %s is outside the environment", role, st.Sid, r)
			}
			for _, a := range st.Action {
				if strings.Contains(a, "*") {
					t.Errorf("%s %s: wildcard action %s", role, st.Sid, a)
				}
				if role == "plan" && (strings.HasPrefix(a, "s3:Put") || strings.HasPrefix(a, "s3:Delete")) && r != objects+"terraform.tfstate.tflock" {
					t.Errorf("plan %s: %s on %s: plan writes nothing but the lock object", st.Sid, a, r)
				}
			}
		}
	}
}

func condEqual(got, want map[string]map[string][]string) bool {
	if len(got) != len(want) {
		return false
	}
	for op, kv := range want {
		if len(got[op]) != len(kv) {
			return false
		}
		for k, v := range kv {
			a, b := slices.Clone(got[op][k]), slices.Clone(v)
			slices.Sort(a)
			slices.Sort(b)
			if !slices.Equal(a, b) {
				return false
			}
		}
	}
	return true
}

func TestAWSProvisionIsIdempotent(t *testing.T) {
	spec := awsSpec(t, strings.Replace(githubCI, `aws: {account: "111122223333"}`, `aws: {account: "111122223333", plan_policies: [arn:aws:iam::aws:policy/ReadOnlyAccess]}`, 1))
	a, f := newAWS(t, spec)
	if _, err := a.Provision(context.Background()); err != nil {
		t.Fatalf("first Provision() = %v", err)
	}
	if got := param(t, f, "AttachRolePolicy", "groundzero-prod-plan", "PolicyArn"); got != "arn:aws:iam::aws:policy/ReadOnlyAccess" {
		t.Errorf("AttachRolePolicy = %q", got)
	}
	before := len(writes(f))
	p, err := a.Provision(context.Background())
	if err != nil {
		t.Fatalf("second Provision() = %v", err)
	}
	if after := writes(f); len(after) != before {
		t.Errorf("second Provision() made calls that change something: %v", after[before:])
	}
	for _, c := range p.Calls {
		if c.Outcome != "exists" && c.Outcome != "read" {
			t.Errorf("second Provision() call %+v, want exists or read", c)
		}
	}
	f2, calls, err := a.Verify(context.Background())
	if err != nil || len(f2) != 0 {
		t.Errorf("Verify() after Provision = %v, %v, want no findings", f2, err)
	}
	if len(calls) == 0 {
		t.Error("Verify() recorded no calls")
	}
}

func TestAWSVerifyFindsWideningAndDrift(t *testing.T) {
	type (
		provs = map[string]*iamfake.Provider
		roles = map[string]*iamfake.Role
	)
	widen := func(rs roles, role, old, new string, trust bool) {
		r := rs["groundzero-prod-"+role]
		doc := &r.Trust
		if !trust {
			s := r.Inline[ciidentity.InlinePolicy]
			doc = &s
			defer func() { r.Inline[ciidentity.InlinePolicy] = s }()
		}
		if !strings.Contains(*doc, old) {
			t.Fatalf("%s document has no %q: %s", role, old, *doc)
		}
		*doc = strings.Replace(*doc, old, new, 1)
	}
	cases := []struct {
		name   string
		change func(provs, roles)
		check  string
		detail string
	}{
		{"wildcard resource", func(_ provs, rs roles) {
			widen(rs, "apply", `"arn:aws:s3:::state-bucket/org/prod/*"`, `"arn:aws:s3:::state-bucket/*"`, false)
		}, ciidentity.CheckWidening, "resource arn:aws:s3:::state-bucket/* is broader than generated"},
		{"added action", func(_ provs, rs roles) {
			widen(rs, "plan", `"s3:GetObject"`, `"s3:GetObject", "s3:PutObject"`, false)
		}, ciidentity.CheckWidening, "adds action s3:putobject"},
		{"missing sub condition", func(_ provs, rs roles) {
			widen(rs, "apply", `,
          "token.actions.githubusercontent.com:sub": [
            "repo:acme/platform:environment:prod"
          ]`, ``, true)
		}, ciidentity.CheckWidening, "lacks condition stringequals token.actions.githubusercontent.com:sub"},
		{"sub condition widened", func(_ provs, rs roles) {
			widen(rs, "apply", `"StringEquals": {`, `"StringLike": {"token.actions.githubusercontent.com:sub": ["repo:acme/*"]}, "StringEquals": {`, true)
			widen(rs, "apply", `,
          "token.actions.githubusercontent.com:sub": [
            "repo:acme/platform:environment:prod"
          ]`, ``, true)
		}, ciidentity.CheckWidening, "lacks condition stringequals token.actions.githubusercontent.com:sub"},
		{"sub condition missing and permission policy deleted", func(_ provs, rs roles) {
			widen(rs, "apply", `,
          "token.actions.githubusercontent.com:sub": [
            "repo:acme/platform:environment:prod"
          ]`, ``, true)
			delete(rs["groundzero-prod-apply"].Inline, ciidentity.InlinePolicy)
		}, ciidentity.CheckWidening, "lacks condition stringequals token.actions.githubusercontent.com:sub"},
		{"NotAction", func(_ provs, rs roles) {
			widen(rs, "plan", `"Action": [
        "s3:GetObject"`, `"NotAction": [
        "iam:PassRole"`, false)
		}, ciidentity.CheckWidening, "NotAction"},
		{"attached admin policy", func(_ provs, rs roles) {
			rs["groundzero-prod-plan"].Attached = append(rs["groundzero-prod-plan"].Attached, "arn:aws:iam::aws:policy/AdministratorAccess")
		}, ciidentity.CheckWidening, "managed policy arn:aws:iam::aws:policy/AdministratorAccess is attached"},
		{"extra inline policy", func(_ provs, rs roles) {
			rs["groundzero-prod-plan"].Inline["extra"] = "{}"
		}, ciidentity.CheckWidening, "inline policy extra is not generated"},
		{"extra audience", func(ps provs, _ roles) {
			for _, p := range ps {
				p.Audiences = append(p.Audiences, "sts.amazonaws.com")
			}
		}, ciidentity.CheckWidening, "also admits audience sts.amazonaws.com"},
		{"statement removed", func(_ provs, rs roles) {
			widen(rs, "apply", `"kms:Encrypt",`, ``, false)
		}, ciidentity.CheckDrift, "(StateKey) is not there as generated"},
		{"role deleted", func(_ provs, rs roles) {
			delete(rs, "groundzero-prod-apply")
		}, ciidentity.CheckMissing, "the apply role does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, f := newAWS(t, awsSpec(t, githubCI))
			if _, err := a.Provision(context.Background()); err != nil {
				t.Fatal(err)
			}
			f.Change(tc.change)
			findings, _, err := a.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(findings, func(x backend.Finding) bool {
				return x.Check == tc.check && strings.Contains(x.Detail, tc.detail)
			}) {
				t.Errorf("Verify() = %v, want a %s finding with %q", findings, tc.check, tc.detail)
			}
			if tc.check == ciidentity.CheckDrift && slices.ContainsFunc(findings, func(x backend.Finding) bool { return x.Check == ciidentity.CheckWidening }) {
				t.Errorf("Verify() = %v: a narrower document is drift, not widening", findings)
			}
			// Provisioning again overwrites nothing and reports the same.
			before := len(writes(f))
			_, err = a.Provision(context.Background())
			var de *ciidentity.DriftError
			if tc.check != ciidentity.CheckMissing {
				if !errors.As(err, &de) {
					t.Fatalf("Provision() over a changed identity = %v, want a *DriftError", err)
				}
				if after := writes(f); len(after) != before {
					t.Errorf("Provision() over a changed identity changed it: %v", after[before:])
				}
			} else if err != nil {
				t.Errorf("Provision() of a deleted role = %v, want it made again", err)
			}
		})
	}
}

func TestAWSCrossAccountAndGitLab(t *testing.T) {
	spec := awsSpec(t, `ci:
  provider: gitlab
  repository: acme/infra/platform
  environments: [prod]
  plan_refs: [refs/heads/main]
  aws: {account: "111122223333", tooling_role: "arn:aws:iam::444455556666:role/ci-tooling", role_prefix: gz}
`)
	set := ciidentity.AWSDocuments(spec)
	if set.Provider != "arn:aws:iam::111122223333:oidc-provider/gitlab.com" {
		t.Errorf("provider = %s", set.Provider)
	}
	for _, r := range set.Roles {
		d := parseDoc(t, string(r.Trust.JSON()))
		want := []string{"project_path:acme/infra/platform:ref_type:tag:ref:*"}
		if r.Role == "plan" {
			want = append(want, "project_path:acme/infra/platform:ref_type:branch:ref:main")
		}
		if got := d.Statement[0].Condition["StringLike"]["gitlab.com:sub"]; !slices.Equal(got, want) {
			t.Errorf("%s sub = %v, want %v", r.Name, got, want)
		}
		if len(d.Statement) != 2 || !slices.Equal(d.Statement[1].Principal["AWS"], []string{"arn:aws:iam::444455556666:role/ci-tooling"}) ||
			!slices.Equal(d.Statement[1].Action, []string{"sts:AssumeRole"}) {
			t.Errorf("%s trust lacks the tooling role statement: %s", r.Name, r.Trust.JSON())
		}
		if !strings.HasPrefix(r.Name, "gz-prod-") {
			t.Errorf("role name %s", r.Name)
		}
	}
}

func TestAWSDynamoDBLock(t *testing.T) {
	p := testPolicy(t, githubCI)
	p.Backend.Lock, p.Backend.LockTable = "dynamodb", "tf-locks"
	s, err := ciidentity.FromPolicy(p, storeSpec(t, p, "prod"))
	if err != nil {
		t.Fatal(err)
	}
	set := ciidentity.AWSDocuments(s)
	table := "arn:aws:dynamodb:eu-west-1:111122223333:table/tf-locks"
	for _, r := range set.Roles {
		d := parseDoc(t, string(r.Permissions.JSON()))
		for _, st := range d.Statement {
			if !slices.Contains(st.Resource, table) {
				continue
			}
			keys := st.Condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
			for _, k := range keys {
				if !strings.HasPrefix(k, "state-bucket/org/prod/terraform.tfstate") {
					t.Errorf("%s %s: leading key %s is not the environment's", r.Role, st.Sid, k)
				}
			}
			if len(keys) == 0 {
				t.Errorf("%s %s: table access without a leading-key condition", r.Role, st.Sid)
			}
			if r.Role == "plan" && slices.Contains(st.Action, "dynamodb:PutItem") && !slices.Equal(keys, []string{"state-bucket/org/prod/terraform.tfstate"}) {
				t.Errorf("plan may write %v, want the lock item only", keys)
			}
		}
		for _, st := range d.Statement {
			if r.Role == "plan" && slices.Contains(st.Action, "kms:GenerateDataKey") {
				t.Errorf("plan with a DynamoDB lock writes no object, but holds kms:GenerateDataKey")
			}
		}
	}
}

func TestFromPolicyRefuses(t *testing.T) {
	p := testPolicy(t, githubCI)
	for name, tc := range map[string]struct {
		mut  func(*policy.Policy, *backend.Spec)
		want string
	}{
		"environment not listed": {func(p *policy.Policy, s *backend.Spec) { s.Env = "dev" }, "environment dev is not in ci.environments"},
		"no environments":        {func(p *policy.Policy, s *backend.Spec) { p.CI.Environments = nil }, "environment prod is not in ci.environments"},
		"no repository":          {func(p *policy.Policy, s *backend.Spec) { p.CI.Repository = "" }, "ci.repository is empty"},
		"key unknown":            {func(p *policy.Policy, s *backend.Spec) { s.Key.ID = "" }, "key's ARN is not known yet"},
		"kind without cloud":     {func(p *policy.Policy, s *backend.Spec) { s.Kind = backend.KindMinIO }, "kinds s3 and gcs"},
		"no aws":                 {func(p *policy.Policy, s *backend.Spec) { p.CI.GCP, p.CI.AWS = &policy.CIGCP{ProjectNumber: "1"}, nil }, "no ci.aws"},
		"no identities":          {func(p *policy.Policy, s *backend.Spec) { p.CI.AWS = nil }, "names no cloud identities"},
	} {
		t.Run(name, func(t *testing.T) {
			cp := *p
			ci := *p.CI
			cp.CI = &ci
			s := storeSpec(t, p, "prod")
			tc.mut(&cp, &s)
			_, err := ciidentity.FromPolicy(&cp, s)
			var pe *ciidentity.PolicyError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) || pe.Hint == "" {
				t.Errorf("FromPolicy() = %v, want a *PolicyError with %q and a hint", err, tc.want)
			}
		})
	}
	// The schema refuses a wildcard in a plan ref.
	if _, err := policy.Parse("p.yaml", []byte("version: 1\nbackend: {kind: s3, bucket: b}\nenvironments: [{name: prod}]\nci: {provider: github, repository: a/b, plan_refs: [\"refs/heads/*\"]}\n")); err == nil {
		t.Error("Parse(plan_refs: refs/heads/*) = nil error, want a refusal")
	}
	if _, err := policy.Parse("p.yaml", []byte("version: 1\nbackend: {kind: s3, bucket: b}\nenvironments: [{name: prod}]\nci: {provider: gitlab, repository: a/b, plan_refs: [pull_request]}\n")); err == nil || !strings.Contains(err.Error(), "GitHub event") {
		t.Errorf("Parse(gitlab plan_refs: pull_request) = %v, want a refusal", err)
	}
	if _, err := policy.Parse("p.yaml", []byte("version: 1\nbackend: {kind: s3, bucket: b}\nenvironments: [{name: prod}]\nci: {provider: github, repository: a/b, aws: {account: \"12\"}}\n")); err == nil {
		t.Error("Parse(ci.aws.account 12) = nil error, want a refusal")
	}
}

func TestAWSGolden(t *testing.T) {
	set := ciidentity.AWSDocuments(awsSpec(t, githubCI))
	got, _ := json.MarshalIndent(set, "", "  ")
	// Deterministic: generating again gives the same bytes.
	again, _ := json.MarshalIndent(ciidentity.AWSDocuments(awsSpec(t, githubCI)), "", "  ")
	golden(t, "aws-github-prod.json", append(got, '\n'))
	if string(again) != string(got) {
		t.Error("AWSDocuments is not deterministic")
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the generated documents:\n%s", p, got)
	}
}

func TestAWSRefusedCallIsRecorded(t *testing.T) {
	a, f := newAWS(t, awsSpec(t, githubCI))
	f.Refuse("CreateRole", 403)
	p, err := a.Provision(context.Background())
	if err == nil || !strings.Contains(err.Error(), "iam:CreateRole groundzero-prod-plan") {
		t.Fatalf("Provision() = %v, want the refused CreateRole", err)
	}
	last := p.Calls[len(p.Calls)-1]
	if last.Operation != "CreateRole" || last.Outcome != "failed" || last.RequestID != f.Requests()[len(f.Requests())-1].RequestID || last.Resource != "arn:aws:iam::111122223333:role/groundzero-prod-plan" {
		t.Errorf("last call = %+v, want the failed CreateRole with its request ID and ARN", last)
	}
	if strings.Contains(err.Error(), "fake-secret") {
		t.Error("the error carries the secret key")
	}
}

func TestAWSVerifyReadsEveryPage(t *testing.T) {
	spec := awsSpec(t, strings.Replace(githubCI, `aws: {account: "111122223333"}`,
		`aws: {account: "111122223333", plan_policies: [arn:aws:iam::aws:policy/ReadOnlyAccess, arn:aws:iam::111122223333:policy/read-network]}`, 1))
	a, f := newAWS(t, spec)
	if _, err := a.Provision(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.PageSize(1)
	f.Change(func(_ map[string]*iamfake.Provider, rs map[string]*iamfake.Role) {
		rs["groundzero-prod-plan"].Attached = append(rs["groundzero-prod-plan"].Attached, "arn:aws:iam::aws:policy/AdministratorAccess")
	})
	fs, calls, err := a.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Check != ciidentity.CheckWidening || !strings.Contains(fs[0].Detail, "AdministratorAccess") {
		t.Errorf("Verify() = %v, want only the admin policy on the third page as widening", fs)
	}
	pages := 0
	for _, c := range calls {
		if c.Operation == "ListAttachedRolePolicies" && c.Resource == "arn:aws:iam::111122223333:role/groundzero-prod-plan" {
			pages++
		}
	}
	if pages != 3 {
		t.Errorf("Verify() listed the plan role's managed policies in %d calls, want 3 pages", pages)
	}
}
