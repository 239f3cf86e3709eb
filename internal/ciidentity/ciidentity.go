// Package ciidentity makes and verifies the OIDC-federated identities a CI
// runner uses to plan and apply one environment (DESIGN §1, §3 gate 6, §6):
// no long-lived key is ever handed to CI.
//
// # Identities
//
// Each environment gets two identities, both bound to the repository that
// policy.yaml ci.repository names, to the environment, and to the audience
// ci.audience:
//
//   - plan reads the state (PREFIX/ENV/*), takes and releases the state
//     lock, and decrypts with the environment's key. It may be used from
//     signed tags and from the refs ci.plan_refs lists (branches, GitHub pull
//     requests).
//   - apply also writes and deletes state objects and encrypts with the
//     key. It may be used only from the environment's CI environment
//     (GitHub) or from tags (GitLab).
//
// On AWS (backend kind s3, policy ci.aws) they are the IAM roles
// PREFIX-ENV-plan and PREFIX-ENV-apply, trusting the account's IAM OIDC
// provider of the issuer, each with the inline permission policy
// groundzero-state and no other permissions than the managed policies
// ci.aws.plan_policies / apply_policies. AWS evaluates only the aud and
// sub claims of a GitHub or GitLab token, so the trust binds what sub
// carries:
//
//	GitHub apply  repo:OWNER/NAME:environment:ENV
//	GitHub plan   repo:OWNER/NAME:ref:refs/tags/*, repo:OWNER/NAME:ref:refs/heads/B, repo:OWNER/NAME:pull_request
//	GitLab apply  project_path:GROUP/PROJECT:ref_type:tag:ref:*
//	GitLab plan   the same, and project_path:GROUP/PROJECT:ref_type:branch:ref:B
//
// A GitHub environment's deployment rules decide which refs may deploy to
// it (tags only, for an apply environment); the CI gate of `groundzero
// apply --ci` checks ref_type tag and the environment claim again.
//
// On Google Cloud (backend kind gcs, policy ci.gcp) they are the service
// accounts gz-ENV-plan and gz-ENV-apply, impersonated through the Workload
// Identity pool ci.gcp.pool and its provider gz-ENV, whose attribute
// condition admits only the repository, the environment and the allowed
// refs, and whose attribute gz is REPOSITORY|ENVIRONMENT|REF_TYPE. Each
// service account grants roles/iam.workloadIdentityUser to the principal
// set of exactly its repository, environment and ref type. Plan holds
// roles/storage.objectViewer on the bucket and roles/storage.objectUser on
// the lock object only, apply roles/storage.objectAdmin, both under an IAM
// condition on the environment's prefix; on the key plan holds
// roles/cloudkms.cryptoKeyDecrypter, apply
// roles/cloudkms.cryptoKeyEncrypterDecrypter.
//
// # Documents
//
// The documents are generated from policy.yaml and the lock alone
// ([AWSDocuments], [GCPDocuments]): deterministic bytes that `groundzero ci
// policy` prints without a cloud call.
//
// # Provisioning and verification
//
// [AWS.Provision] and [GCP.Provision] make what is missing and leave what
// is there and identical; something there but different is never
// overwritten: it is returned as findings in a [DriftError]. [AWS.Verify]
// and [GCP.Verify] compare the live identities with the generated ones.
// A finding is drift (check ci_drift: different, or ci_missing: absent) or
// widening (check ci_widening: a statement, action, resource, member,
// audience or condition that admits more than the generated one). Every
// call is returned as a backend.Call with the request ID the cloud answered
// with (IAM's x-amzn-RequestId; Google's REST APIs send none their clients
// expose except Cloud Storage's X-GUploader-UploadID) and the resource's
// ARN or resource name.
package ciidentity

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/policy"
)

// Roles of the two identities.
const (
	RolePlan  = "plan"
	RoleApply = "apply"
)

// Checks of the findings.
const (
	CheckDrift    = "ci_drift"
	CheckWidening = "ci_widening"
	CheckMissing  = "ci_missing"
)

// DefaultRolePrefix and DefaultPool are the names used when policy.yaml
// gives none.
const (
	DefaultRolePrefix = "groundzero"
	DefaultPool       = "groundzero"
	// InlinePolicy is the name of each AWS role's inline permission policy.
	InlinePolicy = "groundzero-state"
)

// Spec is what the identities of one environment are made from.
type Spec struct {
	Env        string
	Provider   string // github or gitlab
	Issuer     string
	Audience   string
	Repository string
	PlanRefs   []string

	Kind      string // backend.KindS3 or backend.KindGCS
	Bucket    string
	Prefix    string // the environment's state prefix: PREFIX/ENV
	Region    string
	Lock      string // backend.LockFile, LockDynamoDB or LockNative
	LockTable string
	// KeyID is the state key's identifier (KMS key ARN, Cloud KMS resource
	// name); "" when the store has none of the cloud's keys.
	KeyID string

	AWS *policy.CIAWS
	GCP *policy.CIGCP
	// Project is the GCP project ID (ci.gcp.project, else backend.project).
	Project string
}

// PolicyError is a policy.yaml that does not say enough to make the
// identities of an environment.
type PolicyError struct {
	File string
	Msg  string
	Hint string
}

func (e *PolicyError) Error() string { return e.File + ": " + e.Msg }

// Wanted reports whether policy.yaml asks for CI identities at all.
func Wanted(p *policy.Policy) bool {
	return p.CI != nil && (p.CI.AWS != nil || p.CI.GCP != nil)
}

// FromPolicy is the spec of env's identities: policy.yaml's ci section with
// the store spec (from the policy or the lock) and the key identifier
// provisioning gave.
func FromPolicy(p *policy.Policy, store backend.Spec) (*Spec, error) {
	return fromPolicy(p, store, true)
}

// Precheck refuses, before anything is made, a policy that cannot give env
// its identities; the key identifier may still be unknown.
func Precheck(p *policy.Policy, store backend.Spec) error {
	_, err := fromPolicy(p, store, false)
	return err
}

func fromPolicy(p *policy.Policy, store backend.Spec, needKey bool) (*Spec, error) {
	file := p.File
	ci := p.CI
	if ci == nil || (ci.AWS == nil && ci.GCP == nil) {
		return nil, &PolicyError{file, "ci names no cloud identities (ci.aws or ci.gcp)", "add ci.aws (backend kind s3) or ci.gcp (kind gcs) with the repository and environments CI runs from"}
	}
	if ci.Repository == "" {
		return nil, &PolicyError{file, "ci.repository is empty", "set ci.repository to the repository CI runs from, owner/name"}
	}
	if !slices.Contains(ci.Environments, store.Env) {
		return nil, &PolicyError{file, fmt.Sprintf("environment %s is not in ci.environments", store.Env),
			"list " + store.Env + " in ci.environments: it is the CI environment claim the apply identity is bound to"}
	}
	s := &Spec{
		Env: store.Env, Provider: ci.Provider, Issuer: ci.Issuer, Audience: ci.Audience, Repository: ci.Repository,
		PlanRefs: slices.Clone(ci.PlanRefs), Kind: store.Kind, Bucket: store.Bucket, Region: store.Region,
		Lock: store.Lock, LockTable: store.LockTable, AWS: ci.AWS, GCP: ci.GCP,
	}
	slices.Sort(s.PlanRefs)
	s.Prefix = strings.TrimSuffix(store.StateKey(), "/terraform.tfstate")
	switch store.Kind {
	case backend.KindS3:
		if ci.AWS == nil {
			return nil, &PolicyError{file, "backend kind s3 but no ci.aws", "add ci.aws with the account ID"}
		}
		if store.Key.Provider == backend.KeyAWSKMS {
			if needKey && !strings.HasPrefix(store.Key.ID, "arn:") {
				return nil, &PolicyError{file, "the state key's ARN is not known yet: the permission policy names it", "run `groundzero bootstrap --env " + store.Env + "` first; it makes the key and then the CI identities"}
			}
			s.KeyID = store.Key.ID
		}
	case backend.KindGCS:
		if ci.GCP == nil {
			return nil, &PolicyError{file, "backend kind gcs but no ci.gcp", "add ci.gcp with the project number"}
		}
		s.Project = ci.GCP.Project
		if s.Project == "" {
			s.Project = store.Project
		}
		if store.Key.Provider == backend.KeyGCPKMS {
			if needKey && !strings.HasPrefix(store.Key.ID, "projects/") {
				return nil, &PolicyError{file, "the state key's resource name is not known yet: the key bindings name it", "run `groundzero bootstrap --env " + store.Env + "` first; it makes the key and then the CI identities"}
			}
			s.KeyID = store.Key.ID
		}
		if s.Project == "" {
			return nil, &PolicyError{file, "ci.gcp.project and backend.project are empty", "set ci.gcp.project to the project of the pool and service accounts"}
		}
		if n := len(gcpAccountID(s.Env, RoleApply)); n > 30 {
			return nil, &PolicyError{file, fmt.Sprintf("environment name %s is too long for a service account ID (%d characters, at most 30)", s.Env, n), "use an environment name of 21 characters or fewer"}
		}
	default:
		return nil, &PolicyError{file, fmt.Sprintf("CI identities are made for backend kinds s3 and gcs, not %s", store.Kind),
			"for " + store.Kind + " give CI scoped keys with `groundzero ci rotate`, and remove ci.aws / ci.gcp"}
	}
	return s, nil
}

// DriftError: provisioning found identities that exist but differ from the
// generated ones; it changed none of them.
type DriftError struct{ Findings []backend.Finding }

func (e *DriftError) Error() string {
	var parts []string
	for _, f := range e.Findings {
		parts = append(parts, f.String())
	}
	return fmt.Sprintf("%d CI identity finding(s), nothing was overwritten: %s", len(e.Findings), strings.Join(parts, "; "))
}

// Provisioned is what a Provision made or found.
type Provisioned struct {
	// Identities maps plan and apply to the role ARN or service account
	// e-mail; Federation is the OIDC provider ARN or the WIF provider name.
	Identities map[string]string `json:"identities"`
	Federation string            `json:"federation"`
	Calls      []backend.Call    `json:"calls"`
}

// Identities is one cloud's control plane of an environment's identities.
type Identities interface {
	// Provision makes what is missing; it overwrites nothing.
	Provision(ctx context.Context) (*Provisioned, error)
	// Verify compares the live identities with the generated ones.
	Verify(ctx context.Context) ([]backend.Finding, []backend.Call, error)
}

var (
	_ Identities = (*AWS)(nil)
	_ Identities = (*GCP)(nil)
)

// Open opens the cloud of spec's kind with its default credentials (the
// AWS default chain, Application Default Credentials); none is recorded.
func Open(ctx context.Context, spec *Spec) (Identities, error) {
	if spec.Kind == backend.KindGCS {
		return NewGCP(ctx, spec, GCPOptions{})
	}
	return NewAWS(ctx, spec, AWSOptions{})
}
