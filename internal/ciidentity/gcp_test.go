package ciidentity_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/ciidentity"
	"github.com/groundzero/groundzero/internal/policy"
)

// Google's IAM, Cloud Storage IAM and Cloud KMS IAM cannot be reached here.
// fakeGCP is one httptest server for the three REST APIs: it keeps the
// pool, provider, service accounts and IAM policies it is sent, checks
// every request's method and path, and answers as the APIs do.
type fakeGCP struct {
	t  *testing.T
	mu sync.Mutex

	ops      []string // METHOD PATH
	objects  map[string]map[string]any
	policies map[string]map[string]any // resource -> IAM policy
	uploads  int
}

const (
	project  = "acme-prod"
	gcsKey   = "projects/acme-prod/locations/europe-west1/keyRings/tf/cryptoKeys/state"
	poolName = "projects/acme-prod/locations/global/workloadIdentityPools/groundzero"
)

func newFakeGCP(t *testing.T) (*fakeGCP, *httptest.Server) {
	f := &fakeGCP{t: t, objects: map[string]map[string]any{}, policies: map[string]map[string]any{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeGCP) changes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, o := range f.ops {
		if !strings.HasPrefix(o, "GET ") && !strings.HasSuffix(o, ":getIamPolicy") {
			out = append(out, o)
		}
	}
	return out
}

func (f *fakeGCP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	p := r.URL.Path
	f.ops = append(f.ops, r.Method+" "+p)
	var in map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			f.t.Errorf("%s %s: body is not JSON: %v", r.Method, p, err)
		}
	}
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	notFound := func() {
		w.WriteHeader(404)
		reply(map[string]any{"error": map[string]any{"code": 404, "message": "not found", "status": "NOT_FOUND"}})
	}
	switch {
	case strings.HasPrefix(p, "/storage/v1/b/"):
		f.uploads++
		w.Header().Set("X-Guploader-Uploadid", fmt.Sprintf("upload-%d", f.uploads))
		bucket := strings.TrimSuffix(strings.TrimPrefix(p, "/storage/v1/b/"), "/iam")
		res := "projects/_/buckets/" + bucket
		switch r.Method {
		case http.MethodGet:
			if r.URL.Query().Get("optionsRequestedPolicyVersion") != "3" {
				f.t.Errorf("bucket getIamPolicy without policy version 3: conditions would be lost")
			}
			reply(f.policy(res))
		case http.MethodPut:
			f.setPolicy(res, in)
			reply(in)
		}
	case strings.HasSuffix(p, ":getIamPolicy"):
		res := strings.TrimSuffix(strings.TrimPrefix(p, "/v1/"), ":getIamPolicy")
		if v := r.URL.Query().Get("options.requestedPolicyVersion"); v != "3" {
			f.t.Errorf("%s getIamPolicy: requested policy version %q, want 3", res, v)
		}
		reply(f.policy(res))
	case strings.HasSuffix(p, ":setIamPolicy"):
		res := strings.TrimSuffix(strings.TrimPrefix(p, "/v1/"), ":setIamPolicy")
		pol, _ := in["policy"].(map[string]any)
		f.setPolicy(res, pol)
		reply(pol)
	case r.Method == http.MethodGet:
		name := strings.TrimPrefix(p, "/v1/")
		if o, ok := f.objects[name]; ok {
			reply(o)
		} else {
			notFound()
		}
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/workloadIdentityPools"):
		name := strings.TrimPrefix(p, "/v1/") + "/" + r.URL.Query().Get("workloadIdentityPoolId")
		in["name"], in["state"] = name, "ACTIVE"
		f.objects[name] = in
		reply(map[string]any{"name": name + "/operations/op1", "done": true})
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/providers"):
		name := strings.TrimPrefix(p, "/v1/") + "/" + r.URL.Query().Get("workloadIdentityPoolProviderId")
		in["name"], in["state"] = name, "ACTIVE"
		f.objects[name] = in
		reply(map[string]any{"name": name + "/operations/op2", "done": true})
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/serviceAccounts"):
		id, _ := in["accountId"].(string)
		email := id + "@" + project + ".iam.gserviceaccount.com"
		name := "projects/" + project + "/serviceAccounts/" + email
		sa, _ := in["serviceAccount"].(map[string]any)
		sa["name"], sa["email"] = name, email
		f.objects[name] = sa
		reply(sa)
	default:
		f.t.Errorf("unexpected request %s %s", r.Method, p)
		w.WriteHeader(400)
	}
}

func (f *fakeGCP) policy(res string) map[string]any {
	if p, ok := f.policies[res]; ok {
		return p
	}
	return map[string]any{"etag": "BwE=", "version": 1}
}

func (f *fakeGCP) setPolicy(res string, p map[string]any) {
	if old := f.policy(res); old["etag"] != p["etag"] {
		f.t.Errorf("setIamPolicy %s with etag %v, want the read one %v", res, p["etag"], old["etag"])
	}
	if v, _ := p["version"].(float64); v != 3 {
		f.t.Errorf("setIamPolicy %s version %v, want 3", res, p["version"])
	}
	p["etag"] = fmt.Sprintf("etag-%d", len(f.ops))
	f.policies[res] = p
}

// grants lists a resource's bindings as "ROLE MEMBER [CONDITION]".
func (f *fakeGCP) grants(res string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	bs, _ := f.policy(res)["bindings"].([]any)
	for _, b := range bs {
		m := b.(map[string]any)
		cond := ""
		if c, ok := m["condition"].(map[string]any); ok {
			cond = " [" + c["expression"].(string) + "]"
		}
		for _, mem := range m["members"].([]any) {
			out = append(out, m["role"].(string)+" "+mem.(string)+cond)
		}
	}
	slices.Sort(out)
	return out
}

const gcpCI = `ci:
  provider: github
  repository: acme/platform
  environments: [prod]
  plan_refs: [refs/heads/main]
  gcp: {project_number: "123456789012"}
`

func gcpSpec(t *testing.T, ci string) *ciidentity.Spec {
	t.Helper()
	p, err := policy.Parse("governance/policy.yaml", []byte(`version: 1
backend:
  kind: gcs
  bucket: acme-tfstate
  key_prefix: org
  project: acme-prod
  encryption: {provider: gcp_kms, key: tf/state, location: europe-west1}
environments:
  - name: prod
`+ci))
	if err != nil {
		t.Fatal(err)
	}
	store, _, err := backend.FromPolicy(p, "prod")
	if err != nil {
		t.Fatal(err)
	}
	store.Key.ID = gcsKey
	s, err := ciidentity.FromPolicy(p, store)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newGCP(t *testing.T, spec *ciidentity.Spec) (*ciidentity.GCP, *fakeGCP) {
	t.Helper()
	f, srv := newFakeGCP(t)
	g, err := ciidentity.NewGCP(context.Background(), spec, ciidentity.GCPOptions{
		IAMEndpoint: srv.URL + "/", StorageEndpoint: srv.URL + "/storage/v1/", KMSEndpoint: srv.URL + "/",
	})
	if err != nil {
		t.Fatal(err)
	}
	return g, f
}

const (
	planSA  = "serviceAccount:gz-prod-plan@acme-prod.iam.gserviceaccount.com"
	applySA = "serviceAccount:gz-prod-apply@acme-prod.iam.gserviceaccount.com"
	wifSet  = "principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/groundzero/attribute.gz/acme/platform:"
	prefixE = `resource.name == "projects/_/buckets/acme-tfstate" || resource.name.startsWith("projects/_/buckets/acme-tfstate/objects/org/prod/")`
)

func TestGCPProvisionSendsTheGeneratedIdentities(t *testing.T) {
	g, f := newGCP(t, gcpSpec(t, gcpCI))
	p, err := g.Provision(context.Background())
	if err != nil {
		t.Fatalf("Provision() = %v", err)
	}
	prov := f.objects[poolName+"/providers/gz-prod"]
	if prov == nil {
		t.Fatal("no provider was created")
	}
	wantCond := `assertion.repository == "acme/platform" && (assertion.ref.startsWith("refs/tags/") || assertion.ref in ["refs/heads/main"]) && (!has(assertion.environment) || assertion.environment == "prod")`
	if prov["attributeCondition"] != wantCond {
		t.Errorf("attribute condition = %v, want %s", prov["attributeCondition"], wantCond)
	}
	oidc := prov["oidc"].(map[string]any)
	if oidc["issuerUri"] != policy.GitHubIssuer || fmt.Sprint(oidc["allowedAudiences"]) != "[groundzero]" {
		t.Errorf("provider oidc = %v", oidc)
	}
	if m := prov["attributeMapping"].(map[string]any); m["google.subject"] != "assertion.sub" || !strings.Contains(m["attribute.gz"].(string), "assertion.environment") {
		t.Errorf("attribute mapping = %v", m)
	}
	// Each account is usable by exactly its principal set.
	if got, want := f.grants("projects/acme-prod/serviceAccounts/gz-prod-apply@acme-prod.iam.gserviceaccount.com"), []string{"roles/iam.workloadIdentityUser " + wifSet + "prod:tag"}; !slices.Equal(got, want) {
		t.Errorf("apply account bindings = %v, want %v", got, want)
	}
	if got, want := f.grants("projects/acme-prod/serviceAccounts/gz-prod-plan@acme-prod.iam.gserviceaccount.com"), []string{
		"roles/iam.workloadIdentityUser " + wifSet + "-:ref", "roles/iam.workloadIdentityUser " + wifSet + "-:tag"}; !slices.Equal(got, want) {
		t.Errorf("plan account bindings = %v, want %v", got, want)
	}
	// The bucket: viewer (plan) and admin (apply) under the prefix, the lock
	// object alone writable by plan.
	wantBucket := []string{
		"roles/storage.objectAdmin " + applySA + " [" + prefixE + "]",
		"roles/storage.objectUser " + planSA + ` [resource.name == "projects/_/buckets/acme-tfstate/objects/org/prod/default.tflock"]`,
		"roles/storage.objectViewer " + planSA + " [" + prefixE + "]",
	}
	if got := f.grants("projects/_/buckets/acme-tfstate"); !slices.Equal(got, wantBucket) {
		t.Errorf("bucket bindings =\n%v\nwant\n%v", strings.Join(got, "\n"), strings.Join(wantBucket, "\n"))
	}
	wantKey := []string{"roles/cloudkms.cryptoKeyDecrypter " + planSA, "roles/cloudkms.cryptoKeyEncrypterDecrypter " + applySA}
	if got := f.grants(gcsKey); !slices.Equal(got, wantKey) {
		t.Errorf("key bindings = %v, want %v", got, wantKey)
	}
	for _, c := range p.Calls {
		if c.Resource == "" || c.Outcome == "" {
			t.Errorf("call %+v lacks its resource", c)
		}
		if c.Service == "storage" && !strings.HasPrefix(c.RequestID, "upload-") {
			t.Errorf("storage call %+v lacks its X-GUploader-UploadID", c)
		}
	}
	// Idempotent: a second run changes nothing, a verification finds nothing.
	before := len(f.changes())
	if _, err := g.Provision(context.Background()); err != nil {
		t.Fatalf("second Provision() = %v", err)
	}
	if after := f.changes(); len(after) != before {
		t.Errorf("second Provision() changed: %v", after[before:])
	}
	if fs, _, err := g.Verify(context.Background()); err != nil || len(fs) != 0 {
		t.Errorf("Verify() = %v, %v, want no findings", fs, err)
	}
}

func TestGCPVerifyFindsWidening(t *testing.T) {
	addBinding := func(f *fakeGCP, res, role, member string, cond map[string]any) {
		p := f.policy(res)
		bs, _ := p["bindings"].([]any)
		b := map[string]any{"role": role, "members": []any{member}}
		if cond != nil {
			b["condition"] = cond
		}
		p["bindings"] = append(bs, b)
		f.policies[res] = p
	}
	cases := []struct {
		name   string
		change func(f *fakeGCP)
		detail string
	}{
		{"condition removed", func(f *fakeGCP) {
			f.objects[poolName+"/providers/gz-prod"]["attributeCondition"] = ""
		}, "no attribute condition"},
		{"condition changed", func(f *fakeGCP) {
			f.objects[poolName+"/providers/gz-prod"]["attributeCondition"] = `assertion.repository_owner == "acme"`
		}, "attribute condition is"},
		{"whole pool may act as apply", func(f *fakeGCP) {
			addBinding(f, "projects/acme-prod/serviceAccounts/gz-prod-apply@acme-prod.iam.gserviceaccount.com", "roles/iam.workloadIdentityUser",
				"principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/groundzero/*", nil)
		}, "workloadIdentityPools/groundzero/* holds roles/iam.workloadIdentityUser"},
		{"bucket-wide admin", func(f *fakeGCP) {
			addBinding(f, "projects/_/buckets/acme-tfstate", "roles/storage.objectAdmin", planSA, nil)
		}, "holds roles/storage.objectAdmin without a condition"},
		{"extra audience", func(f *fakeGCP) {
			f.objects[poolName+"/providers/gz-prod"]["oidc"].(map[string]any)["allowedAudiences"] = []any{"groundzero", "other"}
		}, "also admits audience other"},
		{"key admin", func(f *fakeGCP) {
			addBinding(f, gcsKey, "roles/cloudkms.admin", applySA, nil)
		}, "holds roles/cloudkms.admin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, f := newGCP(t, gcpSpec(t, gcpCI))
			if _, err := g.Provision(context.Background()); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			tc.change(f)
			f.mu.Unlock()
			fs, _, err := g.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(fs, func(x backend.Finding) bool {
				return x.Check == ciidentity.CheckWidening && strings.Contains(x.Detail, tc.detail)
			}) {
				t.Errorf("Verify() = %v, want a widening with %q", fs, tc.detail)
			}
			before := len(f.changes())
			_, err = g.Provision(context.Background())
			var de *ciidentity.DriftError
			if !errors.As(err, &de) {
				t.Errorf("Provision() over a widened identity = %v, want a *DriftError", err)
			}
			if after := f.changes(); len(after) != before {
				t.Errorf("Provision() over a widened identity changed: %v", after[before:])
			}
		})
	}
}

func TestGCPVerifyMissing(t *testing.T) {
	g, _ := newGCP(t, gcpSpec(t, gcpCI))
	fs, calls, err := g.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Check != ciidentity.CheckMissing || fs[0].Resource != poolName {
		t.Errorf("Verify() of nothing = %v, want the pool missing", fs)
	}
	if len(calls) != 1 || calls[0].Outcome != "missing" {
		t.Errorf("Verify() calls = %+v", calls)
	}
}

func TestGCPGolden(t *testing.T) {
	got, _ := json.MarshalIndent(ciidentity.GCPDocuments(gcpSpec(t, gcpCI)), "", "  ")
	golden(t, "gcp-github-prod.json", append(got, '\n'))
	gl := gcpSpec(t, strings.Replace(gcpCI, "provider: github", "provider: gitlab", 1))
	set := ciidentity.GCPDocuments(gl)
	want := `assertion.project_path == "acme/platform" && (assertion.ref_type == "tag" || (assertion.ref_type == "branch" && assertion.ref in ["main"])) && (!has(assertion.environment) || assertion.environment == "prod")`
	if set.AttributeCondition != want {
		t.Errorf("GitLab attribute condition = %s, want %s", set.AttributeCondition, want)
	}
}
