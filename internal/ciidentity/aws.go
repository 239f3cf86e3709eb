package ciidentity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/groundzero/groundzero/internal/backend"
)

// AWSOptions say how the IAM client reaches IAM.
type AWSOptions struct {
	// Endpoint is IAM's endpoint; "" is the SDK's (AWS_ENDPOINT_URL_IAM
	// overrides it).
	Endpoint string
	// HTTPClient carries every request; nil uses the SDK default. It is set
	// on the service, since the SDK refuses a config-wide client when a CA
	// bundle is configured.
	HTTPClient aws.HTTPClient
	// Credentials; nil uses the SDK's default chain.
	Credentials aws.CredentialsProvider
}

// AWS makes and verifies one environment's identities in AWS IAM.
type AWS struct {
	spec *Spec
	set  AWSSet
	iam  *iam.Client
}

// NewAWS builds the IAM client for spec; it makes no request.
func NewAWS(ctx context.Context, spec *Spec, opt AWSOptions) (*AWS, error) {
	if spec.Kind != backend.KindS3 || spec.AWS == nil {
		return nil, fmt.Errorf("AWS CI identities need backend kind s3 and ci.aws")
	}
	load := []func(*config.LoadOptions) error{config.WithRegion("us-east-1")}
	if opt.Credentials != nil {
		load = append(load, config.WithCredentialsProvider(opt.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("CI identities: AWS configuration: %v", err)
	}
	c := iam.NewFromConfig(cfg, func(o *iam.Options) {
		if opt.Endpoint != "" {
			o.BaseEndpoint = aws.String(opt.Endpoint)
		}
		if opt.HTTPClient != nil {
			o.HTTPClient = opt.HTTPClient
		}
	})
	return &AWS{spec: spec, set: AWSDocuments(spec), iam: c}, nil
}

// awsCalls collects the calls of one Provision or Verify.
type awsCalls struct{ calls []backend.Call }

func (r *awsCalls) ok(op, resource, outcome string, md middleware.Metadata) {
	id, _ := awsmiddleware.GetRequestIDMetadata(md)
	r.calls = append(r.calls, backend.Call{Service: "iam", Operation: op, RequestID: id, Resource: resource, Outcome: outcome})
}

func (r *awsCalls) fail(op, resource, outcome string, err error) {
	var id string
	var rid interface{ ServiceRequestID() string }
	if errors.As(err, &rid) {
		id = rid.ServiceRequestID()
	}
	r.calls = append(r.calls, backend.Call{Service: "iam", Operation: op, RequestID: id, Resource: resource, Outcome: outcome})
}

// maxPages bounds the listings of one role's policies (IAM allows ten
// managed policies and a few inline ones; a page holds up to 100).
const maxPages = 9

func markerOf(m string) *string {
	if m == "" {
		return nil
	}
	return aws.String(m)
}

func noSuchEntity(err error) bool {
	var nse *iamtypes.NoSuchEntityException
	return errors.As(err, &nse)
}

func (a *AWS) tags(role string) []iamtypes.Tag {
	return []iamtypes.Tag{
		{Key: aws.String("groundzero:env"), Value: aws.String(a.spec.Env)},
		{Key: aws.String("groundzero:repository"), Value: aws.String(a.spec.Repository)},
		{Key: aws.String("groundzero:role"), Value: aws.String(role)},
	}
}

// Provision makes the OIDC provider and the roles, or finds them made as
// generated. What exists but differs is left alone and returned as
// findings in a *DriftError.
func (a *AWS) Provision(ctx context.Context) (*Provisioned, error) {
	r := &awsCalls{}
	findings, err := a.reconcile(ctx, r, true)
	p := &Provisioned{Federation: a.set.Provider, Identities: map[string]string{}, Calls: r.calls}
	for _, role := range a.set.Roles {
		p.Identities[role.Role] = role.ARN
	}
	if err == nil && len(findings) > 0 {
		err = &DriftError{findings}
	}
	return p, err
}

// Verify compares the live provider and roles with the generated ones.
func (a *AWS) Verify(ctx context.Context) ([]backend.Finding, []backend.Call, error) {
	r := &awsCalls{}
	f, err := a.reconcile(ctx, r, false)
	return f, r.calls, err
}

func (a *AWS) reconcile(ctx context.Context, r *awsCalls, create bool) ([]backend.Finding, error) {
	var out []backend.Finding
	find := func(check, res, format string, args ...any) {
		out = append(out, backend.Finding{Check: check, Resource: res, Detail: fmt.Sprintf(format, args...)})
	}
	// The OIDC provider.
	prov := a.set.Provider
	g, err := a.iam.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(prov)})
	switch {
	case err == nil:
		r.ok("GetOpenIDConnectProvider", prov, "exists", g.ResultMetadata)
		if u := strings.TrimPrefix(aws.ToString(g.Url), "https://"); u != a.spec.issuerHost() {
			find(CheckDrift, prov, "the provider's URL is %s, not %s", u, a.spec.issuerHost())
		}
		if !slices.Contains(g.ClientIDList, a.spec.Audience) {
			find(CheckDrift, prov, "the provider's audiences %v lack %s", g.ClientIDList, a.spec.Audience)
		}
		for _, aud := range g.ClientIDList {
			if aud != a.spec.Audience {
				find(CheckWidening, prov, "the provider also admits audience %s", aud)
			}
		}
	case noSuchEntity(err) && create:
		r.fail("GetOpenIDConnectProvider", prov, "missing", err)
		c, err := a.iam.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
			Url: aws.String(a.spec.Issuer), ClientIDList: []string{a.spec.Audience},
			// One provider per issuer serves every environment of the account.
			Tags: []iamtypes.Tag{{Key: aws.String("groundzero:managed"), Value: aws.String("true")}},
		})
		if err != nil {
			r.fail("CreateOpenIDConnectProvider", prov, "failed", err)
			return out, fmt.Errorf("CI identities: iam:CreateOpenIDConnectProvider %s: %w", a.spec.Issuer, err)
		}
		if got := aws.ToString(c.OpenIDConnectProviderArn); got != "" && got != prov {
			r.ok("CreateOpenIDConnectProvider", got, "created", c.ResultMetadata)
			return out, fmt.Errorf("CI identities: IAM made the OIDC provider %s, not %s: ci.aws.account names another account than the credentials'", got, prov)
		}
		r.ok("CreateOpenIDConnectProvider", prov, "created", c.ResultMetadata)
	case noSuchEntity(err):
		r.fail("GetOpenIDConnectProvider", prov, "missing", err)
		find(CheckMissing, prov, "the OIDC provider of %s does not exist", a.spec.Issuer)
	default:
		r.fail("GetOpenIDConnectProvider", prov, "failed", err)
		return out, fmt.Errorf("CI identities: iam:GetOpenIDConnectProvider %s: %w", prov, err)
	}
	// Nothing is added next to something found different.
	create = create && len(out) == 0
	for _, role := range a.set.Roles {
		f, err := a.reconcileRole(ctx, r, role, create)
		out = append(out, f...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func (a *AWS) reconcileRole(ctx context.Context, r *awsCalls, role AWSRole, create bool) ([]backend.Finding, error) {
	var out []backend.Finding
	find := func(check, format string, args ...any) {
		out = append(out, backend.Finding{Check: check, Resource: role.ARN, Detail: fmt.Sprintf(format, args...)})
	}
	judge := func(what string, want Document, live string) {
		c := compareDocuments(want, live)
		for _, w := range c.Widening {
			find(CheckWidening, "%s: %s", what, w)
		}
		for _, d := range c.Drift {
			find(CheckDrift, "%s: %s", what, d)
		}
	}
	g, err := a.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role.Name)})
	made := false
	switch {
	case err == nil:
		r.ok("GetRole", role.ARN, "exists", g.ResultMetadata)
		judge("trust policy", role.Trust, aws.ToString(g.Role.AssumeRolePolicyDocument))
	case noSuchEntity(err) && create:
		r.fail("GetRole", role.ARN, "missing", err)
		c, err := a.iam.CreateRole(ctx, &iam.CreateRoleInput{
			RoleName: aws.String(role.Name), AssumeRolePolicyDocument: aws.String(string(role.Trust.JSON())),
			Description:        aws.String(fmt.Sprintf("groundzero CI %s of %s from %s", role.Role, a.spec.Env, a.spec.Repository)),
			MaxSessionDuration: aws.Int32(3600), Tags: a.tags(role.Role),
		})
		if err != nil {
			r.fail("CreateRole", role.ARN, "failed", err)
			return out, fmt.Errorf("CI identities: iam:CreateRole %s: %w", role.Name, err)
		}
		r.ok("CreateRole", aws.ToString(c.Role.Arn), "created", c.ResultMetadata)
		made = true
	case noSuchEntity(err):
		r.fail("GetRole", role.ARN, "missing", err)
		find(CheckMissing, "the %s role does not exist", role.Role)
		return out, nil
	default:
		r.fail("GetRole", role.ARN, "failed", err)
		return out, fmt.Errorf("CI identities: iam:GetRole %s: %w", role.Name, err)
	}
	create = create && len(out) == 0
	// The inline permission policy, and no other.
	inline := []string{}
	lastMarker := ""
	if !made {
		for page := 0; ; page++ {
			l, err := a.iam.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(role.Name), Marker: markerOf(lastMarker)})
			if err != nil {
				r.fail("ListRolePolicies", role.ARN, "failed", err)
				return out, fmt.Errorf("CI identities: iam:ListRolePolicies %s: %w", role.Name, err)
			}
			r.ok("ListRolePolicies", role.ARN, "read", l.ResultMetadata)
			inline = append(inline, l.PolicyNames...)
			if !l.IsTruncated || aws.ToString(l.Marker) == "" || page == maxPages {
				if l.IsTruncated {
					find(CheckWidening, "the role has more inline policies than %d listings return", maxPages+1)
				}
				break
			}
			lastMarker = aws.ToString(l.Marker)
		}
	}
	for _, n := range inline {
		if n != InlinePolicy {
			find(CheckWidening, "inline policy %s is not generated", n)
		}
	}
	pol := role.ARN + "/policy/" + InlinePolicy
	if slices.Contains(inline, InlinePolicy) {
		gp, err := a.iam.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role.Name), PolicyName: aws.String(InlinePolicy)})
		if err != nil {
			r.fail("GetRolePolicy", pol, "failed", err)
			return out, fmt.Errorf("CI identities: iam:GetRolePolicy %s %s: %w", role.Name, InlinePolicy, err)
		}
		r.ok("GetRolePolicy", pol, "exists", gp.ResultMetadata)
		judge("permission policy "+InlinePolicy, role.Permissions, aws.ToString(gp.PolicyDocument))
	} else if create {
		p, err := a.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role.Name), PolicyName: aws.String(InlinePolicy), PolicyDocument: aws.String(string(role.Permissions.JSON()))})
		if err != nil {
			r.fail("PutRolePolicy", pol, "failed", err)
			return out, fmt.Errorf("CI identities: iam:PutRolePolicy %s %s: %w", role.Name, InlinePolicy, err)
		}
		r.ok("PutRolePolicy", pol, "created", p.ResultMetadata)
	} else {
		find(CheckMissing, "the permission policy %s does not exist", InlinePolicy)
	}
	// The managed policies: exactly those policy.yaml lists.
	attached := []string{}
	if !made {
		lastMarker = ""
		for page := 0; ; page++ {
			l, err := a.iam.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role.Name), Marker: markerOf(lastMarker)})
			if err != nil {
				r.fail("ListAttachedRolePolicies", role.ARN, "failed", err)
				return out, fmt.Errorf("CI identities: iam:ListAttachedRolePolicies %s: %w", role.Name, err)
			}
			r.ok("ListAttachedRolePolicies", role.ARN, "read", l.ResultMetadata)
			for _, p := range l.AttachedPolicies {
				attached = append(attached, aws.ToString(p.PolicyArn))
			}
			if !l.IsTruncated || aws.ToString(l.Marker) == "" || page == maxPages {
				if l.IsTruncated {
					find(CheckWidening, "the role has more managed policies than %d listings return", maxPages+1)
				}
				break
			}
			lastMarker = aws.ToString(l.Marker)
		}
	}
	for _, p := range attached {
		if !slices.Contains(role.Attached, p) {
			find(CheckWidening, "managed policy %s is attached but not listed in ci.aws.%s_policies", p, role.Role)
		}
	}
	create = create && len(out) == 0
	for _, p := range role.Attached {
		if slices.Contains(attached, p) {
			continue
		}
		if !create {
			find(CheckMissing, "managed policy %s is not attached", p)
			continue
		}
		at, err := a.iam.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(role.Name), PolicyArn: aws.String(p)})
		if err != nil {
			r.fail("AttachRolePolicy", p, "failed", err)
			return out, fmt.Errorf("CI identities: iam:AttachRolePolicy %s %s: %w", role.Name, p, err)
		}
		r.ok("AttachRolePolicy", p, "created", at.ResultMetadata)
	}
	return out, nil
}
