package cicred

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/identity"

	"github.com/groundzero/groundzero/internal/backend"
)

// ServiceOCIIdentity is the Call.Service of the OCI identity calls.
const ServiceOCIIdentity = "oci-identity"

// OCI makes CI keys as customer secret keys (the S3-compatible
// credentials of OCI Object Storage) of a dedicated user per role, over
// the identity API of the official SDK. Before each key it makes sure the
// IAM policy groundzero-ci-ENV-ROLE in the bucket's compartment holds
// exactly the statements OCIStatements gives: object access limited to the
// user, the bucket and the environment's prefix. A user has at most two
// customer secret keys; the old and the new one fit.
type OCI struct {
	client identity.IdentityClient
	users  map[string]string // role -> user OCID
}

// OCIOptions are what NewOCI needs.
type OCIOptions struct {
	ConfigProvider common.ConfigurationProvider
	// Users are the dedicated users, by role.
	Users map[string]string
	// Endpoint is the identity endpoint, "" for the region's own.
	Endpoint   string
	HTTPClient *http.Client
}

// String prints the options without the configuration provider, which
// holds the signing key.
func (o OCIOptions) String() string {
	return fmt.Sprintf("cicred.OCIOptions{ConfigProvider:%s, Users:%v, Endpoint:%q}", redacted, o.Users, o.Endpoint)
}

// NewOCI returns the identity client opt names.
func NewOCI(opt OCIOptions) (*OCI, error) {
	if opt.ConfigProvider == nil {
		return nil, errors.New("oci: no configuration provider (~/.oci/config)")
	}
	if opt.Users[RolePlan] == "" || opt.Users[RoleApply] == "" {
		return nil, errors.New("oci: backend.ci_credentials.oci_users must name the plan and apply users")
	}
	c, err := identity.NewIdentityClientWithConfigurationProvider(opt.ConfigProvider)
	if err != nil {
		return nil, fmt.Errorf("oci: %s", scrubText(err.Error(), ""))
	}
	if opt.Endpoint != "" {
		c.Host = opt.Endpoint
	}
	if opt.HTTPClient != nil {
		c.HTTPClient = opt.HTTPClient
	}
	return &OCI{client: c, users: opt.Users}, nil
}

// Name is "oci".
func (o *OCI) Name() string { return "oci" }

// OCIPolicyName is the IAM policy of scope.
func OCIPolicyName(s Scope) string { return "groundzero-ci-" + s.Env + "-" + s.Role }

// OCIStatements are the IAM policy statements that limit user to scope.
func OCIStatements(s Scope, user string) []string {
	where := func(extra string) string {
		return fmt.Sprintf("where all {request.user.id = '%s', target.bucket.name = '%s'%s}", user, s.Bucket, extra)
	}
	in := "in compartment id " + s.Compartment
	prefix := fmt.Sprintf(", target.object.name = /%s*/", s.Prefix)
	st := []string{
		"Allow any-user to read buckets " + in + " " + where(""),
	}
	if s.Role == RoleApply {
		st = append(st, "Allow any-user to manage objects "+in+" "+where(prefix))
	} else {
		st = append(st,
			"Allow any-user to read objects "+in+" "+where(prefix),
			"Allow any-user to manage objects "+in+" "+where(fmt.Sprintf(", target.object.name = '%s'", s.LockKey)))
	}
	return st
}

// Grant is the policy's statements, one a line.
func (o *OCI) Grant(s Scope) (string, error) {
	return "policy " + OCIPolicyName(s) + ": " + strings.Join(OCIStatements(s, o.users[s.Role]), "; "), nil
}

// Create makes sure of the policy, then makes a customer secret key of
// the role's user.
func (o *OCI) Create(ctx context.Context, s Scope) (Key, []backend.Call, error) {
	if s.Compartment == "" {
		return Key{}, nil, errors.New("oci: backend.compartment is empty: the policy needs the bucket's compartment")
	}
	user := o.users[s.Role]
	calls, err := o.ensurePolicy(ctx, s, user)
	if err != nil {
		return Key{}, calls, err
	}
	call := backend.Call{Service: ServiceOCIIdentity, Operation: "CreateCustomerSecretKey", Resource: user, Outcome: "failed"}
	resp, err := o.client.CreateCustomerSecretKey(ctx, identity.CreateCustomerSecretKeyRequest{
		UserId:                         common.String(user),
		CreateCustomerSecretKeyDetails: identity.CreateCustomerSecretKeyDetails{DisplayName: common.String(ServiceAccountName(s))},
	})
	call.RequestID = deref(resp.OpcRequestId)
	if err != nil {
		return Key{}, append(calls, call), ociError("CreateCustomerSecretKey", err)
	}
	id, secret := deref(resp.Id), deref(resp.Key)
	if id == "" || secret == "" {
		return Key{}, append(calls, call), errors.New("oci: CreateCustomerSecretKey: the answer carries no key")
	}
	call.Outcome, call.Resource = "created", id
	return Key{ID: id, Secret: Secret(secret)}, append(calls, call), nil
}

func (o *OCI) ensurePolicy(ctx context.Context, s Scope, user string) ([]backend.Call, error) {
	name := OCIPolicyName(s)
	want := OCIStatements(s, user)
	list := backend.Call{Service: ServiceOCIIdentity, Operation: "ListPolicies", Resource: name, Outcome: "failed"}
	resp, err := o.client.ListPolicies(ctx, identity.ListPoliciesRequest{CompartmentId: common.String(s.Compartment), Name: common.String(name)})
	list.RequestID = deref(resp.OpcRequestId)
	if err != nil {
		return []backend.Call{list}, ociError("ListPolicies", err)
	}
	var found *identity.Policy
	for i := range resp.Items {
		if deref(resp.Items[i].Name) == name && resp.Items[i].LifecycleState != identity.PolicyLifecycleStateDeleted {
			found = &resp.Items[i]
		}
	}
	desc := "groundzero: CI " + s.Role + " credentials of environment " + s.Env + ", " + s.String()
	if found == nil {
		list.Outcome = "missing"
		c := backend.Call{Service: ServiceOCIIdentity, Operation: "CreatePolicy", Resource: name, Outcome: "failed"}
		r, err := o.client.CreatePolicy(ctx, identity.CreatePolicyRequest{CreatePolicyDetails: identity.CreatePolicyDetails{
			CompartmentId: common.String(s.Compartment), Name: common.String(name), Statements: want, Description: common.String(desc),
		}})
		c.RequestID = deref(r.OpcRequestId)
		if err != nil {
			return []backend.Call{list, c}, ociError("CreatePolicy", err)
		}
		c.Outcome, c.Resource = "created", deref(r.Id)
		return []backend.Call{list, c}, nil
	}
	list.Outcome, list.Resource = "read", deref(found.Id)
	if slices.Equal(found.Statements, want) {
		list.Outcome = "exists"
		return []backend.Call{list}, nil
	}
	c := backend.Call{Service: ServiceOCIIdentity, Operation: "UpdatePolicy", Resource: deref(found.Id), Outcome: "failed"}
	r, err := o.client.UpdatePolicy(ctx, identity.UpdatePolicyRequest{PolicyId: found.Id, UpdatePolicyDetails: identity.UpdatePolicyDetails{Statements: want, Description: common.String(desc)}})
	c.RequestID = deref(r.OpcRequestId)
	if err != nil {
		return []backend.Call{list, c}, ociError("UpdatePolicy", err)
	}
	c.Outcome = "updated"
	return []backend.Call{list, c}, nil
}

// Delete deletes the customer secret key id of the scope's user.
func (o *OCI) Delete(ctx context.Context, s Scope, id string) (backend.Call, error) {
	user := o.users[s.Role]
	call := backend.Call{Service: ServiceOCIIdentity, Operation: "DeleteCustomerSecretKey", Resource: id, Outcome: "failed"}
	// A 404 means the key is gone: no eventual-consistency retries.
	rp := common.DefaultRetryPolicyWithoutEventualConsistency()
	resp, err := o.client.DeleteCustomerSecretKey(ctx, identity.DeleteCustomerSecretKeyRequest{UserId: common.String(user), CustomerSecretKeyId: common.String(id),
		RequestMetadata: common.RequestMetadata{RetryPolicy: &rp}})
	call.RequestID = deref(resp.OpcRequestId)
	if se, ok := common.IsServiceError(err); ok && se.GetHTTPStatusCode() == http.StatusNotFound {
		call.Outcome = "missing"
		if call.RequestID == "" {
			call.RequestID = se.GetOpcRequestID()
		}
		return call, nil
	}
	if err != nil {
		return call, ociError("DeleteCustomerSecretKey", err)
	}
	call.Outcome = "deleted"
	return call, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ociError keeps the status, code and message of a service error.
func ociError(op string, err error) error {
	if se, ok := common.IsServiceError(err); ok {
		return fmt.Errorf("oci: %s: status %d %s: %s (opc-request-id %s)", op, se.GetHTTPStatusCode(), se.GetCode(), scrubText(se.GetMessage(), ""), se.GetOpcRequestID())
	}
	return fmt.Errorf("oci: %s: %s", op, scrubText(err.Error(), ""))
}
