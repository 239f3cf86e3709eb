package cicred_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/common"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/cicred"
)

func scopeOf(t *testing.T, kind, role string) cicred.Scope {
	t.Helper()
	s, err := cicred.NewScope(backend.Spec{Kind: kind, Env: "prod", Bucket: bucket, Prefix: "org", Endpoint: "https://s3.example.test", Compartment: "ocid1.compartment.oc1..aaaacomp"}, role)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const doToken = "dop_v1_CANARY0123456789abcdef"

// doAPI is the part of DigitalOcean's API that Spaces keys use.
type doAPI struct {
	t      *testing.T
	mu     sync.Mutex
	bodies []string
	keys   map[string]bool
	log    []string
}

func (d *doAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+doToken {
		d.t.Errorf("%s %s without the API token", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	d.log = append(d.log, r.Method+" "+r.URL.Path)
	w.Header().Set("X-Request-Id", fmt.Sprintf("do-req-%d", len(d.log)))
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v2/spaces/keys":
		d.bodies = append(d.bodies, strings.TrimSpace(string(body)))
		id := fmt.Sprintf("DO00KEY%d", len(d.log))
		d.keys[id] = true
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"key":{"name":"x","access_key":%q,"secret_key":"spaces-secret-%d","grants":[],"created_at":"2026-12-01T18:00:00Z"}}`, id, len(d.log))
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/v2/spaces/keys/"):
		id := strings.TrimPrefix(r.URL.Path, "/v2/spaces/keys/")
		if !d.keys[id] {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"id":"not_found","message":"The resource you were accessing could not be found.","request_id":"do-404"}`)
			return
		}
		delete(d.keys, id)
		w.WriteHeader(http.StatusNoContent)
	default:
		d.t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestSpacesKeys(t *testing.T) {
	api := &doAPI{t: t, keys: map[string]bool{}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	sp, err := cicred.NewSpaces(cicred.SpacesOptions{Token: doToken, BaseURL: srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var keys []cicred.Key
	for _, role := range cicred.Roles {
		k, calls, err := sp.Create(ctx, scopeOf(t, "spaces", role))
		if err != nil {
			t.Fatal(err)
		}
		if len(calls) != 1 || calls[0].RequestID == "" || calls[0].Resource != k.ID || calls[0].Outcome != "created" {
			t.Errorf("Create calls = %+v", calls)
		}
		keys = append(keys, k)
	}
	want := []string{
		`{"name":"gz-prod-plan","grants":[{"bucket":"tfstate","permission":"read"}]}`,
		`{"name":"gz-prod-apply","grants":[{"bucket":"tfstate","permission":"readwrite"}]}`,
	}
	if strings.Join(api.bodies, "\n") != strings.Join(want, "\n") {
		t.Errorf("create requests =\n%s\nwant\n%s", strings.Join(api.bodies, "\n"), strings.Join(want, "\n"))
	}
	c, err := sp.Delete(ctx, scopeOf(t, "spaces", "plan"), keys[0].ID)
	if err != nil || c.Outcome != "deleted" {
		t.Errorf("Delete = %+v, %v", c, err)
	}
	c, err = sp.Delete(ctx, scopeOf(t, "spaces", "plan"), keys[0].ID)
	if err != nil || c.Outcome != "missing" || c.RequestID != "do-404" {
		t.Errorf("second Delete = %+v, %v; want missing with the request ID", c, err)
	}
	g, _ := sp.Grant(scopeOf(t, "spaces", "plan"))
	if !strings.Contains(g, "read on bucket tfstate") || !strings.Contains(g, "per bucket") {
		t.Errorf("Grant = %q", g)
	}
}

// ociAPI is the part of OCI's identity API that customer secret keys and
// policies use.
type ociAPI struct {
	t        *testing.T
	mu       sync.Mutex
	policies map[string][]string // name -> statements
	keys     map[string]string   // key id -> user
	log      []string
	bodies   []string
}

func (o *ociAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !strings.HasPrefix(r.Header.Get("Authorization"), `Signature version="1"`) || !strings.Contains(r.Header.Get("Authorization"), `keyId="ocid1.tenancy.oc1..aaaatenancy/ocid1.user.oc1..aaaaadmin/`) {
		o.t.Errorf("%s %s is not signed with the admin's API key", r.Method, r.URL.Path)
	}
	body, _ := io.ReadAll(r.Body)
	o.log = append(o.log, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	w.Header().Set("opc-request-id", fmt.Sprintf("oci-req-%d", len(o.log)))
	w.Header().Set("Content-Type", "application/json")
	const users = "/20160918/users/"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/20160918/policies":
		out := []map[string]any{}
		name := r.URL.Query().Get("name")
		if st, ok := o.policies[name]; ok {
			out = append(out, map[string]any{"id": "ocid1.policy.oc1..p-" + name, "compartmentId": r.URL.Query().Get("compartmentId"), "name": name, "statements": st, "description": "d", "timeCreated": "2026-01-01T00:00:00Z", "lifecycleState": "ACTIVE"})
		}
		json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodPost && r.URL.Path == "/20160918/policies":
		o.bodies = append(o.bodies, string(body))
		var p struct {
			Name       string   `json:"name"`
			Statements []string `json:"statements"`
		}
		json.Unmarshal(body, &p)
		o.policies[p.Name] = p.Statements
		json.NewEncoder(w).Encode(map[string]any{"id": "ocid1.policy.oc1..p-" + p.Name, "compartmentId": "c", "name": p.Name, "statements": p.Statements, "description": "d", "timeCreated": "2026-01-01T00:00:00Z", "lifecycleState": "ACTIVE"})
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/20160918/policies/"):
		o.bodies = append(o.bodies, string(body))
		name := strings.TrimPrefix(r.URL.Path, "/20160918/policies/ocid1.policy.oc1..p-")
		var p struct {
			Statements []string `json:"statements"`
		}
		json.Unmarshal(body, &p)
		o.policies[name] = p.Statements
		json.NewEncoder(w).Encode(map[string]any{"id": "ocid1.policy.oc1..p-" + name, "compartmentId": "c", "name": name, "statements": p.Statements, "description": "d", "timeCreated": "2026-01-01T00:00:00Z", "lifecycleState": "ACTIVE"})
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, users) && strings.HasSuffix(r.URL.Path, "/customerSecretKeys"):
		o.bodies = append(o.bodies, string(body))
		user := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, users), "/customerSecretKeys")
		id := fmt.Sprintf("0a1b2c3d4e5f%04d", len(o.log))
		o.keys[id] = user
		json.NewEncoder(w).Encode(map[string]any{"id": id, "key": "oci-secret-" + id, "userId": user, "displayName": "x", "timeCreated": "2026-01-01T00:00:00Z", "lifecycleState": "ACTIVE"})
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, users):
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, users), "/")
		if len(parts) != 3 || parts[1] != "customerSecretKeys" || o.keys[parts[2]] != parts[0] {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"code":"NotAuthorizedOrNotFound","message":"not found"}`)
			return
		}
		delete(o.keys, parts[2])
		w.WriteHeader(http.StatusNoContent)
	default:
		o.t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

func ociProvider(t *testing.T) common.ConfigurationProvider {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
	return common.NewRawConfigurationProvider("ocid1.tenancy.oc1..aaaatenancy", "ocid1.user.oc1..aaaaadmin", "us-ashburn-1", "20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34", pemKey, nil)
}

func TestOCIKeys(t *testing.T) {
	api := &ociAPI{t: t, policies: map[string][]string{}, keys: map[string]string{}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	users := map[string]string{"plan": "ocid1.user.oc1..aaaaplan", "apply": "ocid1.user.oc1..aaaaapply"}
	o, err := cicred.NewOCI(cicred.OCIOptions{ConfigProvider: ociProvider(t), Users: users, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plan := scopeOf(t, "oci", "plan")
	k, calls, err := o.Create(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, c := range calls {
		ops = append(ops, c.Operation+":"+c.Outcome)
		if c.RequestID == "" {
			t.Errorf("call %+v has no request ID", c)
		}
	}
	if got := strings.Join(ops, ","); got != "ListPolicies:missing,CreatePolicy:created,CreateCustomerSecretKey:created" {
		t.Errorf("calls = %s", got)
	}
	wantPlan := []string{
		"Allow any-user to read buckets in compartment id ocid1.compartment.oc1..aaaacomp where all {request.user.id = 'ocid1.user.oc1..aaaaplan', target.bucket.name = 'tfstate'}",
		"Allow any-user to read objects in compartment id ocid1.compartment.oc1..aaaacomp where all {request.user.id = 'ocid1.user.oc1..aaaaplan', target.bucket.name = 'tfstate', target.object.name = /org/prod/*/}",
		"Allow any-user to manage objects in compartment id ocid1.compartment.oc1..aaaacomp where all {request.user.id = 'ocid1.user.oc1..aaaaplan', target.bucket.name = 'tfstate', target.object.name = 'org/prod/terraform.tfstate.tflock'}",
	}
	if got := api.policies["groundzero-ci-prod-plan"]; strings.Join(got, "\n") != strings.Join(wantPlan, "\n") {
		t.Errorf("plan policy statements =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantPlan, "\n"))
	}
	if !strings.Contains(api.bodies[0], `"compartmentId":"ocid1.compartment.oc1..aaaacomp"`) || !strings.Contains(api.bodies[0], `"name":"groundzero-ci-prod-plan"`) {
		t.Errorf("CreatePolicy body = %s", api.bodies[0])
	}
	if api.bodies[1] != `{"displayName":"gz-prod-plan"}` || api.keys[k.ID] != users["plan"] || k.Secret != cicred.Secret("oci-secret-"+k.ID) {
		t.Errorf("CreateCustomerSecretKey body %s, key %s of %s", api.bodies[1], k.ID, api.keys[k.ID])
	}
	// A second key finds the policy as it should be.
	_, calls, err = o.Create(ctx, plan)
	if err != nil || calls[0].Outcome != "exists" || len(calls) != 2 {
		t.Errorf("second Create calls = %+v, %v", calls, err)
	}
	// A policy someone widened is put back.
	api.policies["groundzero-ci-prod-plan"] = []string{"Allow any-user to manage objects in tenancy"}
	_, calls, err = o.Create(ctx, plan)
	if err != nil || len(calls) != 3 || calls[1].Operation != "UpdatePolicy" || calls[1].Outcome != "updated" {
		t.Errorf("Create over a widened policy: calls = %+v, %v", calls, err)
	}
	if got := api.policies["groundzero-ci-prod-plan"]; strings.Join(got, "\n") != strings.Join(wantPlan, "\n") {
		t.Errorf("policy after the update = %v", got)
	}
	apply := scopeOf(t, "oci", "apply")
	if _, _, err := o.Create(ctx, apply); err != nil {
		t.Fatal(err)
	}
	wantApply := []string{
		"Allow any-user to read buckets in compartment id ocid1.compartment.oc1..aaaacomp where all {request.user.id = 'ocid1.user.oc1..aaaaapply', target.bucket.name = 'tfstate'}",
		"Allow any-user to manage objects in compartment id ocid1.compartment.oc1..aaaacomp where all {request.user.id = 'ocid1.user.oc1..aaaaapply', target.bucket.name = 'tfstate', target.object.name = /org/prod/*/}",
	}
	if got := api.policies["groundzero-ci-prod-apply"]; strings.Join(got, "\n") != strings.Join(wantApply, "\n") {
		t.Errorf("apply policy statements = %v", got)
	}
	c, err := o.Delete(ctx, plan, k.ID)
	if err != nil || c.Outcome != "deleted" || !strings.HasPrefix(api.log[len(api.log)-1], "DELETE /20160918/users/ocid1.user.oc1..aaaaplan/customerSecretKeys/"+k.ID) {
		t.Errorf("Delete = %+v, %v; last request %s", c, err, api.log[len(api.log)-1])
	}
	c, err = o.Delete(ctx, plan, k.ID)
	if err != nil || c.Outcome != "missing" {
		t.Errorf("second Delete = %+v, %v", c, err)
	}
}

func TestKVRefuses(t *testing.T) {
	cleanEnv(t)
	for _, addr := range []string{"http://vault.example.test:8200", "https://user@vault.example.test", "https://vault.example.test/v1"} {
		if _, err := cicred.NewKV(cicred.KVOptions{Address: addr, Mount: "secret", Path: "ci/prod", Token: vaultToken}); err == nil {
			t.Errorf("NewKV(%s) accepted", addr)
		}
	}
	for _, p := range []string{"../x", "ci//prod", "ci/./prod", ""} {
		if _, err := cicred.NewKV(cicred.KVOptions{Address: "https://vault.example.test", Mount: "secret", Path: p, Token: vaultToken}); err == nil {
			t.Errorf("NewKV(path %q) accepted", p)
		}
	}
	if _, err := cicred.NewKV(cicred.KVOptions{Address: "https://vault.example.test", Mount: "secret", Path: "ci/prod"}); err == nil {
		t.Error("NewKV without a token accepted")
	}
}

// The process environment's Vault settings decide nothing: not the token,
// not the namespace, not extra headers.
func TestKVIgnoresEnvironment(t *testing.T) {
	cleanEnv(t)
	v := newVaultOnly(t)
	t.Setenv("VAULT_TOKEN", "hvs.from-the-environment")
	t.Setenv("VAULT_NAMESPACE", "elsewhere")
	t.Setenv("VAULT_HEADERS", `{"X-Evil":"1"}`)
	var seen http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		v.ServeHTTP(w, r)
	}))
	defer srv.Close()
	kv, err := cicred.NewKV(cicred.KVOptions{Address: srv.URL, Mount: "secret", Path: "ci/prod", Token: vaultToken})
	if err != nil {
		t.Fatal(err)
	}
	if st, _, err := kv.Read(context.Background(), "plan"); err != nil || st != nil {
		t.Fatalf("Read = %+v, %v", st, err)
	}
	if seen.Get("X-Vault-Token") != vaultToken || seen.Get("X-Vault-Namespace") != "" || seen.Get("X-Evil") != "" {
		t.Errorf("request headers = %v", seen)
	}
	// A refused token: the error names the path and the status, not the token.
	bad, _ := cicred.NewKV(cicred.KVOptions{Address: srv.URL, Mount: "secret", Path: "ci/prod", Token: "hvs.wrong-token-CANARY"})
	_, _, err = bad.Read(context.Background(), "plan")
	if err == nil || !strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "CANARY") {
		t.Errorf("Read with a refused token: %v", err)
	}
}
