package ciidentity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/api/cloudkms/v1"
	"google.golang.org/api/googleapi"
	iam "google.golang.org/api/iam/v1"
	"google.golang.org/api/option"
	storage "google.golang.org/api/storage/v1"

	"github.com/groundzero/groundzero/internal/backend"
)

// GCPOptions say how the clients reach Google's REST APIs.
type GCPOptions struct {
	// IAMEndpoint, StorageEndpoint and KMSEndpoint are the roots of the
	// IAM, Cloud Storage JSON and Cloud KMS APIs reached without
	// credentials (a test server); "" is Google's, with Application
	// Default Credentials and ClientOptions.
	IAMEndpoint, StorageEndpoint, KMSEndpoint string
	ClientOptions                             []option.ClientOption
	// Wait is how long to wait between polls of a pool or provider
	// operation that is not done (default one second).
	Wait time.Duration
}

// GCP makes and verifies one environment's identities in Google Cloud.
type GCP struct {
	spec    *Spec
	set     GCPSet
	iam     *iam.Service
	storage *storage.Service
	kms     *cloudkms.Service
	wait    time.Duration
}

// NewGCP builds the clients for spec; it makes no request.
func NewGCP(ctx context.Context, spec *Spec, opt GCPOptions) (*GCP, error) {
	if spec.Kind != backend.KindGCS || spec.GCP == nil {
		return nil, fmt.Errorf("GCP CI identities need backend kind gcs and ci.gcp")
	}
	opts := func(endpoint string) []option.ClientOption {
		if endpoint != "" {
			return []option.ClientOption{option.WithEndpoint(endpoint), option.WithoutAuthentication()}
		}
		return opt.ClientOptions
	}
	g := &GCP{spec: spec, set: GCPDocuments(spec), wait: opt.Wait}
	if g.wait == 0 {
		g.wait = time.Second
	}
	var err error
	if g.iam, err = iam.NewService(ctx, opts(opt.IAMEndpoint)...); err != nil {
		return nil, fmt.Errorf("CI identities: IAM client: %v", err)
	}
	if g.storage, err = storage.NewService(ctx, opts(opt.StorageEndpoint)...); err != nil {
		return nil, fmt.Errorf("CI identities: Cloud Storage client: %v", err)
	}
	if g.kms, err = cloudkms.NewService(ctx, opts(opt.KMSEndpoint)...); err != nil {
		return nil, fmt.Errorf("CI identities: Cloud KMS client: %v", err)
	}
	return g, nil
}

type gcpCalls struct{ calls []backend.Call }

// add records a call; the request ID is Cloud Storage's
// X-GUploader-UploadID, the only one these APIs send.
func (c *gcpCalls) add(service, op, resource, outcome string, h http.Header) {
	c.calls = append(c.calls, backend.Call{Service: service, Operation: op, Resource: resource, Outcome: outcome, RequestID: h.Get("X-Guploader-Uploadid")})
}

func (c *gcpCalls) failed(service, op, resource string, err error) {
	var ge *googleapi.Error
	var h http.Header
	outcome := "failed"
	if errors.As(err, &ge) {
		h = ge.Header
		if ge.Code == http.StatusNotFound {
			outcome = "missing"
		}
	}
	c.add(service, op, resource, outcome, h)
}

func notFound(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusNotFound
}

// Provision makes the pool, the provider, the service accounts and their
// bindings, or finds them made as generated. What exists but differs is
// left alone and returned as findings in a *DriftError.
func (g *GCP) Provision(ctx context.Context) (*Provisioned, error) {
	c := &gcpCalls{}
	findings, err := g.reconcile(ctx, c, true)
	p := &Provisioned{Federation: g.set.Provider, Identities: map[string]string{}, Calls: c.calls}
	for _, sa := range g.set.ServiceAccounts {
		p.Identities[sa.Role] = sa.Email
	}
	if err == nil && len(findings) > 0 {
		err = &DriftError{findings}
	}
	return p, err
}

// Verify compares the live identities with the generated ones.
func (g *GCP) Verify(ctx context.Context) ([]backend.Finding, []backend.Call, error) {
	c := &gcpCalls{}
	f, err := g.reconcile(ctx, c, false)
	return f, c.calls, err
}

func (g *GCP) reconcile(ctx context.Context, c *gcpCalls, create bool) ([]backend.Finding, error) {
	var out []backend.Finding
	find := func(check, res, format string, args ...any) {
		out = append(out, backend.Finding{Check: check, Resource: res, Detail: fmt.Sprintf(format, args...)})
	}
	set := g.set
	pools := g.iam.Projects.Locations.WorkloadIdentityPools
	// The pool.
	pool, err := pools.Get(set.Pool).Context(ctx).Do()
	switch {
	case err == nil:
		c.add("iam", "GetWorkloadIdentityPool", set.Pool, "exists", pool.Header)
		if pool.Disabled || (pool.State != "" && pool.State != "ACTIVE") {
			find(CheckDrift, set.Pool, "the pool is disabled or deleted (state %s)", pool.State)
		}
	case notFound(err) && create:
		c.failed("iam", "GetWorkloadIdentityPool", set.Pool, err)
		parent, id, _ := strings.Cut(set.Pool, "/workloadIdentityPools/")
		op, err := pools.Create(parent, &iam.WorkloadIdentityPool{DisplayName: "groundzero CI", Description: "CI identities made by groundzero"}).WorkloadIdentityPoolId(id).Context(ctx).Do()
		if err != nil {
			c.failed("iam", "CreateWorkloadIdentityPool", set.Pool, err)
			return out, fmt.Errorf("CI identities: create workload identity pool %s: %w", set.Pool, err)
		}
		c.add("iam", "CreateWorkloadIdentityPool", set.Pool, "created", op.Header)
		if err := g.await(ctx, c, op, func(name string) (*iam.Operation, error) { return pools.Operations.Get(name).Context(ctx).Do() }); err != nil {
			return out, err
		}
	case notFound(err):
		c.failed("iam", "GetWorkloadIdentityPool", set.Pool, err)
		find(CheckMissing, set.Pool, "the workload identity pool does not exist")
		return out, nil
	default:
		c.failed("iam", "GetWorkloadIdentityPool", set.Pool, err)
		return out, fmt.Errorf("CI identities: read workload identity pool %s: %w", set.Pool, err)
	}
	// The provider.
	providers := pools.Providers
	pv, err := providers.Get(set.Provider).Context(ctx).Do()
	switch {
	case err == nil:
		c.add("iam", "GetWorkloadIdentityPoolProvider", set.Provider, "exists", pv.Header)
		g.judgeProvider(pv, func(check, format string, args ...any) { find(check, set.Provider, format, args...) })
	case notFound(err) && create:
		c.failed("iam", "GetWorkloadIdentityPoolProvider", set.Provider, err)
		parent, id, _ := strings.Cut(set.Provider, "/providers/")
		op, err := providers.Create(parent, &iam.WorkloadIdentityPoolProvider{
			DisplayName: "groundzero " + g.spec.Env, Description: "CI of " + g.spec.Repository + " for " + g.spec.Env,
			AttributeMapping: set.AttributeMapping, AttributeCondition: set.AttributeCondition,
			Oidc: &iam.Oidc{IssuerUri: set.Issuer, AllowedAudiences: set.Audiences},
		}).WorkloadIdentityPoolProviderId(id).Context(ctx).Do()
		if err != nil {
			c.failed("iam", "CreateWorkloadIdentityPoolProvider", set.Provider, err)
			return out, fmt.Errorf("CI identities: create workload identity provider %s: %w", set.Provider, err)
		}
		c.add("iam", "CreateWorkloadIdentityPoolProvider", set.Provider, "created", op.Header)
		if err := g.await(ctx, c, op, func(name string) (*iam.Operation, error) { return providers.Operations.Get(name).Context(ctx).Do() }); err != nil {
			return out, err
		}
	case notFound(err):
		c.failed("iam", "GetWorkloadIdentityPoolProvider", set.Provider, err)
		find(CheckMissing, set.Provider, "the workload identity provider does not exist")
	default:
		c.failed("iam", "GetWorkloadIdentityPoolProvider", set.Provider, err)
		return out, fmt.Errorf("CI identities: read workload identity provider %s: %w", set.Provider, err)
	}
	// The service accounts and who may act as them.
	var members []string
	for _, sa := range set.ServiceAccounts {
		members = append(members, "serviceAccount:"+sa.Email)
		f, err := g.reconcileAccount(ctx, c, sa, create)
		out = append(out, f...)
		if err != nil {
			return out, err
		}
	}
	// Their roles on the bucket and the key.
	var bucketWant, keyWant []Grant
	for _, sa := range set.ServiceAccounts {
		bucketWant = append(bucketWant, sa.Bucket...)
		keyWant = append(keyWant, sa.Key...)
	}
	f, err := g.reconcileGrants(ctx, c, bucketPolicy{g.storage, set.Bucket}, bucketWant, members, create)
	out = append(out, f...)
	if err != nil {
		return out, err
	}
	if set.Key != "" {
		f, err := g.reconcileGrants(ctx, c, keyPolicy{g.kms, set.Key}, keyWant, members, create)
		out = append(out, f...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// await polls a long-running operation until it is done.
func (g *GCP) await(ctx context.Context, c *gcpCalls, op *iam.Operation, get func(string) (*iam.Operation, error)) error {
	for i := 0; !op.Done; i++ {
		if i == 60 {
			return fmt.Errorf("CI identities: operation %s is not done after %d polls", op.Name, i)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(g.wait):
		}
		next, err := get(op.Name)
		if err != nil {
			c.failed("iam", "GetOperation", op.Name, err)
			return fmt.Errorf("CI identities: operation %s: %w", op.Name, err)
		}
		c.add("iam", "GetOperation", op.Name, "read", next.Header)
		op = next
	}
	if op.Error != nil {
		return fmt.Errorf("CI identities: operation %s failed: %s", op.Name, op.Error.Message)
	}
	return nil
}

func (g *GCP) judgeProvider(pv *iam.WorkloadIdentityPoolProvider, find func(check, format string, args ...any)) {
	set := g.set
	if pv.Disabled || (pv.State != "" && pv.State != "ACTIVE") {
		find(CheckDrift, "the provider is disabled or deleted (state %s)", pv.State)
	}
	if pv.Oidc == nil {
		find(CheckWidening, "the provider is not an OIDC provider of %s", set.Issuer)
		return
	}
	if pv.Oidc.IssuerUri != set.Issuer {
		find(CheckWidening, "the provider trusts issuer %s, not %s", pv.Oidc.IssuerUri, set.Issuer)
	}
	if len(pv.Oidc.AllowedAudiences) == 0 {
		find(CheckWidening, "the provider admits the default audience (its own resource name), not only %s", g.spec.Audience)
	}
	for _, a := range pv.Oidc.AllowedAudiences {
		if !slices.Contains(set.Audiences, a) {
			find(CheckWidening, "the provider also admits audience %s", a)
		}
	}
	if !slices.Contains(pv.Oidc.AllowedAudiences, g.spec.Audience) && len(pv.Oidc.AllowedAudiences) > 0 {
		find(CheckDrift, "the provider does not admit audience %s", g.spec.Audience)
	}
	if pv.AttributeCondition != set.AttributeCondition {
		if pv.AttributeCondition == "" {
			find(CheckWidening, "the provider has no attribute condition: any repository of the issuer is admitted")
		} else {
			find(CheckWidening, "the attribute condition is %q, not the generated %q", pv.AttributeCondition, set.AttributeCondition)
		}
	}
	if !maps.Equal(pv.AttributeMapping, set.AttributeMapping) {
		find(CheckWidening, "the attribute mapping differs from the generated one: the principal sets bound to the service accounts may match other tokens")
	}
}

func (g *GCP) reconcileAccount(ctx context.Context, c *gcpCalls, sa GCPServiceAccount, create bool) ([]backend.Finding, error) {
	var out []backend.Finding
	name := "projects/" + g.spec.Project + "/serviceAccounts/" + sa.Email
	find := func(check, format string, args ...any) {
		out = append(out, backend.Finding{Check: check, Resource: name, Detail: fmt.Sprintf(format, args...)})
	}
	accounts := g.iam.Projects.ServiceAccounts
	got, err := accounts.Get(name).Context(ctx).Do()
	switch {
	case err == nil:
		c.add("iam", "GetServiceAccount", name, "exists", got.Header)
		if got.Disabled {
			find(CheckDrift, "the %s service account is disabled", sa.Role)
		}
	case notFound(err) && create:
		c.failed("iam", "GetServiceAccount", name, err)
		made, err := accounts.Create("projects/"+g.spec.Project, &iam.CreateServiceAccountRequest{AccountId: sa.AccountID, ServiceAccount: &iam.ServiceAccount{
			DisplayName: "groundzero CI " + sa.Role + " " + g.spec.Env,
			Description: "CI " + sa.Role + " of " + g.spec.Env + " from " + g.spec.Repository + ", made by groundzero",
		}}).Context(ctx).Do()
		if err != nil {
			c.failed("iam", "CreateServiceAccount", name, err)
			return out, fmt.Errorf("CI identities: create service account %s: %w", sa.Email, err)
		}
		c.add("iam", "CreateServiceAccount", name, "created", made.Header)
	case notFound(err):
		c.failed("iam", "GetServiceAccount", name, err)
		find(CheckMissing, "the %s service account does not exist", sa.Role)
		return out, nil
	default:
		c.failed("iam", "GetServiceAccount", name, err)
		return out, fmt.Errorf("CI identities: read service account %s: %w", sa.Email, err)
	}
	var want []Grant
	for _, p := range sa.Principals {
		want = append(want, Grant{Role: roleWIFUser, Member: p})
	}
	// Every binding on the account decides who may act as it: all are
	// judged, not only those of generated members.
	f, err := g.reconcileGrants(ctx, c, accountPolicy{accounts, name}, want, nil, create)
	return append(out, f...), err
}

// binding is an IAM policy binding in a service-neutral form.
// policyDoc is a resource's IAM policy in the JSON form the iam, storage
// and cloudkms APIs share: bindings of a role, members and a condition, and
// the etag that guards a write.
type policyDoc struct {
	Bindings []binding `json:"bindings"`
	Etag     string    `json:"etag"`
	Version  int       `json:"version"`
}

type binding struct {
	Role      string     `json:"role"`
	Members   []string   `json:"members"`
	Condition *Condition `json:"condition,omitempty"`
}

// policyFrom reads the policy one of those APIs answered.
func policyFrom(api any) (*policyDoc, error) {
	b, err := json.Marshal(api)
	if err != nil {
		return nil, err
	}
	d := &policyDoc{}
	return d, json.Unmarshal(b, d)
}

// to writes d into api, a policy of one of those APIs, in version 3 (the
// version that carries conditions).
func (d *policyDoc) to(api any) error {
	v3 := *d
	v3.Version = 3
	b, err := json.Marshal(v3)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, api)
}

// policyStore reads and writes one resource's IAM policy.
type policyStore interface {
	service() string
	resource() string
	get(ctx context.Context) (*policyDoc, http.Header, error)
	set(ctx context.Context, p *policyDoc) (http.Header, error)
}

func sameCondition(a, b *Condition) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Expression == b.Expression
}

// reconcileGrants checks the policy of ps: every binding of a member in
// ours (every binding, when ours is nil) must be a wanted grant; a wanted
// grant that is missing is added when create is set.
func (g *GCP) reconcileGrants(ctx context.Context, c *gcpCalls, ps policyStore, want []Grant, ours []string, create bool) ([]backend.Finding, error) {
	var out []backend.Finding
	res := ps.resource()
	find := func(check, format string, args ...any) {
		out = append(out, backend.Finding{Check: check, Resource: res, Detail: fmt.Sprintf(format, args...)})
	}
	pol, h, err := ps.get(ctx)
	if err != nil {
		c.failed(ps.service(), "GetIamPolicy", res, err)
		return out, fmt.Errorf("CI identities: read the IAM policy of %s: %w", res, err)
	}
	c.add(ps.service(), "GetIamPolicy", res, "read", h)
	wanted := func(role, member string, cond *Condition) bool {
		return slices.ContainsFunc(want, func(w Grant) bool {
			return w.Role == role && w.Member == member && sameCondition(w.Condition, cond)
		})
	}
	for _, b := range pol.Bindings {
		for _, m := range b.Members {
			if ours != nil && !slices.Contains(ours, m) {
				continue
			}
			if !wanted(b.Role, m, b.Condition) {
				how := "without a condition"
				if b.Condition != nil {
					how = fmt.Sprintf("under condition %q", b.Condition.Expression)
				}
				find(CheckWidening, "%s holds %s %s, which is not generated", m, b.Role, how)
			}
		}
	}
	var missing []Grant
	for _, w := range want {
		if !slices.ContainsFunc(pol.Bindings, func(b binding) bool {
			return b.Role == w.Role && sameCondition(b.Condition, w.Condition) && slices.Contains(b.Members, w.Member)
		}) {
			missing = append(missing, w)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	if !create || len(out) > 0 {
		for _, w := range missing {
			find(CheckMissing, "%s does not hold %s", w.Member, w.Role)
		}
		return out, nil
	}
	for _, w := range missing {
		pol.Bindings = append(pol.Bindings, binding{Role: w.Role, Members: []string{w.Member}, Condition: w.Condition})
	}
	h, err = ps.set(ctx, pol)
	if err != nil {
		c.failed(ps.service(), "SetIamPolicy", res, err)
		return out, fmt.Errorf("CI identities: set the IAM policy of %s: %w", res, err)
	}
	c.add(ps.service(), "SetIamPolicy", res, "updated", h)
	return out, nil
}

type accountPolicy struct {
	svc  *iam.ProjectsServiceAccountsService
	name string
}

func (p accountPolicy) service() string  { return "iam" }
func (p accountPolicy) resource() string { return p.name }

func (p accountPolicy) get(ctx context.Context) (*policyDoc, http.Header, error) {
	r, err := p.svc.GetIamPolicy(p.name).OptionsRequestedPolicyVersion(3).Context(ctx).Do()
	if err != nil {
		return nil, nil, err
	}
	d, err := policyFrom(r)
	return d, r.Header, err
}

func (p accountPolicy) set(ctx context.Context, d *policyDoc) (http.Header, error) {
	pol := &iam.Policy{}
	if err := d.to(pol); err != nil {
		return nil, err
	}
	r, err := p.svc.SetIamPolicy(p.name, &iam.SetIamPolicyRequest{Policy: pol}).Context(ctx).Do()
	if err != nil {
		return nil, err
	}
	return r.Header, nil
}

type bucketPolicy struct {
	svc    *storage.Service
	bucket string
}

func (p bucketPolicy) service() string  { return "storage" }
func (p bucketPolicy) resource() string { return "projects/_/buckets/" + p.bucket }

func (p bucketPolicy) get(ctx context.Context) (*policyDoc, http.Header, error) {
	r, err := p.svc.Buckets.GetIamPolicy(p.bucket).OptionsRequestedPolicyVersion(3).Context(ctx).Do()
	if err != nil {
		return nil, nil, err
	}
	d, err := policyFrom(r)
	return d, r.Header, err
}

func (p bucketPolicy) set(ctx context.Context, d *policyDoc) (http.Header, error) {
	pol := &storage.Policy{}
	if err := d.to(pol); err != nil {
		return nil, err
	}
	r, err := p.svc.Buckets.SetIamPolicy(p.bucket, pol).Context(ctx).Do()
	if err != nil {
		return nil, err
	}
	return r.Header, nil
}

type keyPolicy struct {
	svc *cloudkms.Service
	key string
}

func (p keyPolicy) service() string  { return "cloudkms" }
func (p keyPolicy) resource() string { return p.key }

func (p keyPolicy) get(ctx context.Context) (*policyDoc, http.Header, error) {
	r, err := p.svc.Projects.Locations.KeyRings.CryptoKeys.GetIamPolicy(p.key).OptionsRequestedPolicyVersion(3).Context(ctx).Do()
	if err != nil {
		return nil, nil, err
	}
	d, err := policyFrom(r)
	return d, r.Header, err
}

func (p keyPolicy) set(ctx context.Context, d *policyDoc) (http.Header, error) {
	pol := &cloudkms.Policy{}
	if err := d.to(pol); err != nil {
		return nil, err
	}
	r, err := p.svc.Projects.Locations.KeyRings.CryptoKeys.SetIamPolicy(p.key, &cloudkms.SetIamPolicyRequest{Policy: pol}).Context(ctx).Do()
	if err != nil {
		return nil, err
	}
	return r.Header, nil
}
