package cicred_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/cicred"
	"github.com/groundzero/groundzero/internal/cicred/cicredfake"
	"github.com/groundzero/groundzero/internal/s3gateway"
)

const (
	vaultToken = "hvs.CANARY-vault-token-7d1e0c"
	bucket     = "tfstate"
)

// rig is MinIO's admin API in front of a real S3 gateway, and a KV v2
// engine, wired into a rotation of environment prod.
type rig struct {
	gw    *s3gateway.Gateway
	minio *cicredfake.MinIO
	vault *cicredfake.Vault
	cfg   cicred.Config
}

func cleanEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "VAULT_") || strings.HasPrefix(k, "BAO_") || strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
}

func newRig(t *testing.T) *rig {
	t.Helper()
	cleanEnv(t)
	gw, err := s3gateway.StartWith(t.TempDir(), s3gateway.Options{IAM: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Stop)
	if err := gw.CreateBucket(bucket, false); err != nil {
		t.Fatal(err)
	}
	m := cicredfake.NewMinIO(gw, bucket)
	ms := httptest.NewServer(m.Handler())
	t.Cleanup(ms.Close)
	v := cicredfake.NewVault(vaultToken, "secret")
	vs := httptest.NewServer(v)
	t.Cleanup(vs.Close)
	t.Cleanup(func() {
		for _, u := range append(m.Unexpected, v.Unexpected...) {
			t.Errorf("fake refused: %s", u)
		}
	})
	prov, err := cicred.NewMinIO(cicred.MinIOOptions{Endpoint: ms.URL, AccessKey: m.AdminAccess, SecretKey: cicred.Secret(m.AdminSecret)})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := cicred.NewKV(cicred.KVOptions{Address: vs.URL, Mount: "secret", Path: "groundzero/ci/prod", Token: vaultToken})
	if err != nil {
		t.Fatal(err)
	}
	spec := backend.Spec{Kind: backend.KindMinIO, Env: "prod", Bucket: bucket, Prefix: "org", Endpoint: ms.URL}
	scopes := map[string]cicred.Scope{}
	for _, role := range cicred.Roles {
		if scopes[role], err = cicred.NewScope(spec, role); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	return &rig{gw: gw, minio: m, vault: v, cfg: cicred.Config{
		Env: "prod", Scopes: scopes, Provider: prov, Verifier: cicred.S3Verifier{}, Store: kv, Now: func() time.Time { return now },
	}}
}

func (r *rig) rotate(t *testing.T) ([]cicred.Rotated, error) {
	t.Helper()
	return cicred.Rotate(context.Background(), r.cfg)
}

func (r *rig) mustRotate(t *testing.T) []cicred.Rotated {
	t.Helper()
	res, err := r.rotate(t)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return res
}

// stored returns the key in Vault for role and its version.
func (r *rig) stored(role string) (cicred.Key, int) {
	d, v := r.vault.Current("groundzero/ci/prod/" + role)
	id, _ := d["access_key_id"].(string)
	s, _ := d["secret_access_key"].(string)
	return cicred.Key{ID: id, Secret: cicred.Secret(s)}, v
}

// works reports whether key may list the environment's prefix on the
// gateway, and the error code when not.
func (r *rig) works(k cicred.Key) (bool, string) {
	_, err := r.gw.ClientAs(k.ID, string(k.Secret)).ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("org/prod/")})
	if err != nil {
		return false, err.Error()
	}
	return true, ""
}

const (
	wantPlanPolicy  = `{"Version":"2012-10-17","Statement":[{"Sid":"ListStatePrefix","Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::tfstate"],"Condition":{"StringLike":{"s3:prefix":["org/prod/*"]}}},{"Sid":"ReadState","Effect":"Allow","Action":["s3:GetObject","s3:GetObjectVersion"],"Resource":["arn:aws:s3:::tfstate/org/prod/*"]},{"Sid":"WriteLock","Effect":"Allow","Action":["s3:PutObject","s3:DeleteObject"],"Resource":["arn:aws:s3:::tfstate/org/prod/terraform.tfstate.tflock"]}]}`
	wantApplyPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"ListStatePrefix","Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::tfstate"],"Condition":{"StringLike":{"s3:prefix":["org/prod/*"]}}},{"Sid":"ReadWriteState","Effect":"Allow","Action":["s3:GetObject","s3:GetObjectVersion","s3:PutObject","s3:DeleteObject"],"Resource":["arn:aws:s3:::tfstate/org/prod/*"]}]}`
)

func TestRotateMinIO(t *testing.T) {
	r := newRig(t)
	first := r.mustRotate(t)
	if len(first) != 2 || first[0].Role != "plan" || first[1].Role != "apply" {
		t.Fatalf("Rotate = %+v, want plan then apply", first)
	}
	if got := strings.Join(r.minio.Policies, "\n"); got != wantPlanPolicy+"\n"+wantApplyPolicy {
		t.Errorf("inline policies sent =\n%s\nwant\n%s\n%s", got, wantPlanPolicy, wantApplyPolicy)
	}
	if got := strings.Join(r.minio.Names, ","); got != "gz-prod-plan,gz-prod-apply" {
		t.Errorf("service account names = %s", got)
	}
	plan1, v := r.stored("plan")
	apply1, _ := r.stored("apply")
	if v != 1 || first[0].NewKeyID != plan1.ID || first[0].KVVersion != 1 || first[0].OldKey != "none" || first[0].VaultPath != "secret/data/groundzero/ci/prod/plan" {
		t.Errorf("first plan rotation = %+v; Vault holds %s at version %d", first[0], plan1.ID, v)
	}
	d, _ := r.vault.Current("groundzero/ci/prod/plan")
	for f, want := range map[string]string{"provider": "minio", "env": "prod", "role": "plan", "created": "2026-12-01T18:00:00Z", "key_id": plan1.ID, "bucket": bucket, "prefix": "org/prod/", "previous_key_id": ""} {
		if d[f] != want {
			t.Errorf("Vault field %s = %v, want %q", f, d[f], want)
		}
	}
	if md := r.vault.Metadata("groundzero/ci/prod/plan"); md["key_id"] != plan1.ID || md["secret_access_key"] != "" || md["scope"] == "" {
		t.Errorf("custom metadata = %v", md)
	}
	// The gateway enforces the scope: plan may not write the state, apply
	// may; neither reaches another environment.
	ctx := context.Background()
	put := func(k cicred.Key, key string) error {
		_, err := r.gw.ClientAs(k.ID, string(k.Secret)).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("{}")})
		return err
	}
	if err := put(plan1, "org/prod/terraform.tfstate"); err == nil {
		t.Error("the plan key wrote the state")
	}
	if err := put(plan1, "org/prod/terraform.tfstate.tflock"); err != nil {
		t.Errorf("the plan key may not write the lock: %v", err)
	}
	if err := put(apply1, "org/prod/terraform.tfstate"); err != nil {
		t.Errorf("the apply key may not write the state: %v", err)
	}
	if err := put(apply1, "org/dev/terraform.tfstate"); err == nil {
		t.Error("the apply key wrote another environment's state")
	}

	second := r.mustRotate(t)
	plan2, v := r.stored("plan")
	apply2, _ := r.stored("apply")
	if v != 2 || second[0].OldKeyID != plan1.ID || second[0].NewKeyID != plan2.ID || second[0].OldKey != "deleted" || second[0].KVVersion != 2 {
		t.Errorf("second plan rotation = %+v", second[0])
	}
	if d, _ := r.vault.Current("groundzero/ci/prod/plan"); d["previous_key_id"] != plan1.ID {
		t.Errorf("previous_key_id = %v, want %s", d["previous_key_id"], plan1.ID)
	}
	if got, want := strings.Join(r.minio.Accounts(), ","), strings.Join(sorted(plan2.ID, apply2.ID), ","); got != want {
		t.Errorf("service accounts after the second rotation = %s, want %s", got, want)
	}
	for _, k := range []cicred.Key{plan1, apply1} {
		if ok, _ := r.works(k); ok {
			t.Errorf("old key %s still works", k.ID)
		}
	}
	for _, k := range []cicred.Key{plan2, apply2} {
		if ok, why := r.works(k); !ok {
			t.Errorf("new key %s does not work: %s", k.ID, why)
		}
	}
	if ids := second[0].RequestIDs(); len(ids) < 5 {
		t.Errorf("request IDs of the second plan rotation = %v, want Vault, MinIO and S3 request IDs", ids)
	}

	// Running again converges: the key the last run deleted is gone
	// already ("missing"), and one key per role remains.
	third := r.mustRotate(t)
	if third[0].Earlier != "missing" || third[0].OldKey != "deleted" {
		t.Errorf("third plan rotation = %+v, want earlier key missing, old key deleted", third[0])
	}
	if n := len(r.minio.Accounts()); n != 2 {
		t.Errorf("%d service accounts after three rotations, want 2", n)
	}
}

func sorted(a, b string) []string {
	if a > b {
		return []string{b, a}
	}
	return []string{a, b}
}

// stepError asserts err is a StepError at step for role.
func stepError(t *testing.T, err error, role, step string, oldInForce bool) *cicred.StepError {
	t.Helper()
	var se *cicred.StepError
	if !errors.As(err, &se) {
		t.Fatalf("Rotate error = %v, want a StepError", err)
	}
	if se.Role != role || se.Step != step || se.OldInForce != oldInForce || se.Hint == "" {
		t.Fatalf("StepError = %+v (%v), want role %s step %s old in force %v, with a hint", se, se, role, step, oldInForce)
	}
	return se
}

func TestRotateVaultWriteFails(t *testing.T) {
	r := newRig(t)
	r.mustRotate(t)
	old, _ := r.stored("plan")
	before := r.minio.Accounts()
	r.vault.FailWrites = true
	res, err := r.rotate(t)
	stepError(t, err, "plan", cicred.StepStore, true)
	if len(res) != 1 || res[0].Step != cicred.StepStore || res[0].OldKey != "kept" || res[0].NewKeyID != "" {
		t.Errorf("Rotate = %+v", res)
	}
	if !strings.Contains(err.Error(), "new key") || !strings.Contains(err.Error(), "deleted again") {
		t.Errorf("error %q does not say the new key was deleted again", err)
	}
	now, v := r.stored("plan")
	if now.ID != old.ID || v != 1 {
		t.Errorf("Vault holds %s version %d, want the old key %s version 1", now.ID, v, old.ID)
	}
	if got := r.minio.Accounts(); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Errorf("service accounts = %v, want the old ones %v", got, before)
	}
	if ok, why := r.works(old); !ok {
		t.Errorf("the old key stopped working: %s", why)
	}
}

// corrupting hands the verifier a key whose secret is wrong, as a store
// that issued an unusable key would.
type corrupting struct{ cicred.Verifier }

func (c corrupting) Verify(ctx context.Context, s cicred.Scope, k cicred.Key) ([]backend.Call, error) {
	k.Secret += "x"
	return c.Verifier.Verify(ctx, s, k)
}

func TestRotateVerifyFails(t *testing.T) {
	r := newRig(t)
	r.mustRotate(t)
	old, _ := r.stored("plan")
	before := r.minio.Accounts()
	r.cfg.Verifier = corrupting{r.cfg.Verifier}
	res, err := r.rotate(t)
	stepError(t, err, "plan", cicred.StepVerify, true)
	if !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("error %q does not carry the gateway's refusal", err)
	}
	if now, v := r.stored("plan"); now.ID != old.ID || v != 1 {
		t.Errorf("Vault holds %s version %d, want the old key", now.ID, v)
	}
	if got := r.minio.Accounts(); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Errorf("service accounts = %v, want the old ones %v", got, before)
	}
	if ok, why := r.works(old); !ok {
		t.Errorf("the old key stopped working: %s", why)
	}
	if res[0].Calls[len(res[0].Calls)-1].Operation != "delete-service-account" {
		t.Errorf("the last call is %+v, want the new key's deletion", res[0].Calls[len(res[0].Calls)-1])
	}
}

// tooWide makes every new key an apply key: a plan key must then fail
// verification, because it may write the state.
type tooWide struct{ cicred.Provider }

func (w tooWide) Create(ctx context.Context, s cicred.Scope) (cicred.Key, []backend.Call, error) {
	s.Role = cicred.RoleApply
	return w.Provider.Create(ctx, s)
}

func TestRotateRefusesWidePlanKey(t *testing.T) {
	r := newRig(t)
	r.cfg.Provider = tooWide{r.cfg.Provider}
	_, err := r.rotate(t)
	stepError(t, err, "plan", cicred.StepVerify, true)
	if !strings.Contains(err.Error(), "wider than read-only") {
		t.Errorf("error = %v", err)
	}
	if n := len(r.minio.Accounts()); n != 0 {
		t.Errorf("%d service accounts left, want 0", n)
	}
}

func TestRotateDeleteFailsThenRerun(t *testing.T) {
	r := newRig(t)
	r.mustRotate(t)
	old, _ := r.stored("plan")
	r.minio.FailDelete = true
	_, err := r.rotate(t)
	se := stepError(t, err, "plan", cicred.StepDelete, false)
	if !strings.Contains(se.Hint, old.ID) || !strings.Contains(se.Hint, "next `groundzero ci rotate` deletes it") {
		t.Errorf("hint = %q", se.Hint)
	}
	cur, v := r.stored("plan")
	if cur.ID == old.ID || v != 2 {
		t.Fatalf("Vault holds %s version %d, want the new key at version 2", cur.ID, v)
	}
	if ok, _ := r.works(old); !ok {
		t.Error("the old key was deleted although the delete failed")
	}
	r.minio.FailDelete = false
	res := r.mustRotate(t)
	if res[0].Earlier != "deleted" || res[0].OldKey != "deleted" {
		t.Errorf("rerun plan rotation = %+v, want the leftover and the old key deleted", res[0])
	}
	if ok, _ := r.works(old); ok {
		t.Error("the leftover key still works after the rerun")
	}
	if n := len(r.minio.Accounts()); n != 2 {
		t.Errorf("%d service accounts, want 2", n)
	}
}

func TestRotateCreateFails(t *testing.T) {
	r := newRig(t)
	r.mustRotate(t)
	old, _ := r.stored("plan")
	r.minio.FailAdd = true
	_, err := r.rotate(t)
	stepError(t, err, "plan", cicred.StepCreate, true)
	if cur, v := r.stored("plan"); cur.ID != old.ID || v != 1 {
		t.Errorf("Vault changed: %s version %d", cur.ID, v)
	}
}

// racing writes another version between the rotation's read and its
// write, as a second rotation running at the same time would.
type racing struct {
	cicred.Store
	vault *cicredfake.Vault
}

func (r racing) Read(ctx context.Context, role string) (*cicred.Stored, backend.Call, error) {
	s, c, err := r.Store.Read(ctx, role)
	if err == nil && s != nil {
		d, _ := r.vault.Current("groundzero/ci/prod/" + role)
		r.vault.Put("groundzero/ci/prod/"+role, d)
	}
	return s, c, err
}

func TestRotateCheckAndSet(t *testing.T) {
	r := newRig(t)
	r.mustRotate(t)
	before := r.minio.Accounts()
	r.cfg.Store = racing{r.cfg.Store, r.vault}
	_, err := r.rotate(t)
	stepError(t, err, "plan", cicred.StepStore, true)
	if !strings.Contains(err.Error(), "check-and-set") {
		t.Errorf("error = %v", err)
	}
	if got := r.minio.Accounts(); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Errorf("service accounts = %v, want %v: the new key must be deleted again", got, before)
	}
}

// T26: no secret — the keys made, the admin key, the Vault token — is in
// any result, error, hint or printed form, successful or not.
func TestRotateLeaksNoSecret(t *testing.T) {
	r := newRig(t)
	var outputs []string
	keep := func(res []cicred.Rotated, err error) {
		b, _ := json.Marshal(res)
		outputs = append(outputs, string(b), fmt.Sprintf("%v %+v %#v", res, res, res))
		if err != nil {
			outputs = append(outputs, err.Error(), fmt.Sprintf("%+v %#v", err, err))
			var se *cicred.StepError
			if errors.As(err, &se) {
				outputs = append(outputs, se.Hint)
			}
		}
	}
	keep(r.rotate(t))
	keep(r.rotate(t))
	var secrets []string
	for _, role := range cicred.Roles {
		k, _ := r.stored(role)
		secrets = append(secrets, string(k.Secret))
		outputs = append(outputs, fmt.Sprintf("%v %+v %#v %s", k, k, k, k.Secret))
		b, _ := json.Marshal(k)
		outputs = append(outputs, string(b))
	}
	r.vault.FailWrites = true
	keep(r.rotate(t))
	r.vault.FailWrites = false
	r.cfg.Verifier = corrupting{r.cfg.Verifier}
	keep(r.rotate(t))
	r.cfg.Verifier = cicred.S3Verifier{}
	r.minio.FailDelete = true
	keep(r.rotate(t))
	pl, err := cicred.Plan(context.Background(), r.cfg)
	b, _ := json.Marshal(pl)
	outputs = append(outputs, string(b), fmt.Sprint(err), fmt.Sprintf("%#v %v", r.cfg, r.cfg))
	secrets = append(secrets, r.minio.AdminSecret, vaultToken)
	all := strings.Join(outputs, "\n")
	for _, s := range secrets {
		if s == "" {
			t.Fatal("a secret is empty: the canary proves nothing")
		}
		if strings.Contains(all, s) {
			t.Errorf("secret %.4s… appears in the output", s)
		}
	}
	if !strings.Contains(all, "REDACTED") {
		t.Error("printing a key does not say REDACTED")
	}
}

func TestPlanChangesNothing(t *testing.T) {
	r := newRig(t)
	r.mustRotate(t)
	old, _ := r.stored("plan")
	nAccounts, nLog := len(r.minio.Accounts()), len(r.minio.Log)
	pl, err := cicred.Plan(context.Background(), r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(pl) != 2 || pl[0].CurrentKeyID != old.ID || pl[0].CurrentVersion != 1 || pl[0].Grant != wantPlanPolicy || pl[1].Grant != wantApplyPolicy {
		t.Errorf("Plan = %+v", pl)
	}
	if len(r.minio.Accounts()) != nAccounts || len(r.minio.Log) != nLog {
		t.Error("Plan called the provider")
	}
	if cur, v := r.stored("plan"); cur.ID != old.ID || v != 1 {
		t.Error("Plan changed Vault")
	}
}

func newVaultOnly(t *testing.T) http.Handler {
	return cicredfake.NewVault(vaultToken, "secret")
}

// A secret whose newest version was deleted (kv delete) has no key in
// force, but its version still counts for check-and-set.
func TestRotateAfterDeletedVersion(t *testing.T) {
	r := newRig(t)
	r.vault.Put("groundzero/ci/prod/plan", nil)
	res := r.mustRotate(t)
	if res[0].OldKey != "none" || res[0].KVVersion != 2 {
		t.Errorf("plan rotation = %+v, want no old key and version 2", res[0])
	}
	if k, v := r.stored("plan"); v != 2 || k.ID != res[0].NewKeyID {
		t.Errorf("Vault holds %s at version %d", k.ID, v)
	}
}
