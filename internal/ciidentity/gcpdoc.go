package ciidentity

import (
	"fmt"
	"strings"
)

// GCP roles the identities are given.
const (
	roleWIFUser         = "roles/iam.workloadIdentityUser"
	roleObjectViewer    = "roles/storage.objectViewer"
	roleObjectUser      = "roles/storage.objectUser"
	roleObjectAdmin     = "roles/storage.objectAdmin"
	roleKeyDecrypter    = "roles/cloudkms.cryptoKeyDecrypter"
	roleKeyEncDecrypter = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
)

// Condition is an IAM condition (CEL).
type Condition struct {
	Title      string `json:"title"`
	Expression string `json:"expression"`
}

// Grant is one role given to one member, under an optional condition.
type Grant struct {
	Role      string     `json:"role"`
	Member    string     `json:"member"`
	Condition *Condition `json:"condition,omitempty"`
}

// GCPServiceAccount is one generated service account.
type GCPServiceAccount struct {
	Role      string `json:"role"` // plan or apply
	AccountID string `json:"account_id"`
	Email     string `json:"email"`
	// Principals are granted roles/iam.workloadIdentityUser on it.
	Principals []string `json:"principals"`
	Bucket     []Grant  `json:"bucket"`
	Key        []Grant  `json:"key,omitempty"`
}

// GCPSet is everything generated for one environment on Google Cloud.
type GCPSet struct {
	Pool               string              `json:"pool"`
	Provider           string              `json:"provider"`
	Issuer             string              `json:"issuer"`
	Audiences          []string            `json:"audiences"`
	AttributeMapping   map[string]string   `json:"attribute_mapping"`
	AttributeCondition string              `json:"attribute_condition"`
	ServiceAccounts    []GCPServiceAccount `json:"service_accounts"`
	Bucket             string              `json:"bucket"`
	Key                string              `json:"key,omitempty"`
}

func gcpAccountID(env, role string) string { return "gz-" + env + "-" + role }

func (s *Spec) pool() string {
	if s.GCP.Pool != "" {
		return s.GCP.Pool
	}
	return DefaultPool
}

// providerID is the environment's WIF provider (4 to 32 characters).
func (s *Spec) providerID() string {
	id := "gz-" + s.Env
	if len(id) > 32 {
		id = id[:32]
	}
	return strings.TrimRight(id, "-")
}

// cel quotes s as a CEL string literal.
func cel(s string) string { return fmt.Sprintf("%q", s) }

// GCPDocuments generates the pool, provider and service accounts of the
// spec's environment.
func GCPDocuments(s *Spec) GCPSet {
	poolName := "projects/" + s.Project + "/locations/global/workloadIdentityPools/" + s.pool()
	repoClaim, tagExpr := "assertion.repository", `assertion.ref.startsWith("refs/tags/")`
	if s.Provider == "gitlab" {
		repoClaim, tagExpr = "assertion.project_path", `assertion.ref_type == "tag"`
	}
	mapping := map[string]string{
		"google.subject":       "assertion.sub",
		"attribute.repository": repoClaim,
		"attribute.ref":        "assertion.ref",
		"attribute.gz":         repoClaim + ` + ":" + (has(assertion.environment) ? assertion.environment : "-") + ":" + (` + tagExpr + ` ? "tag" : "ref")`,
	}
	refs := []string{tagExpr}
	var branches []string
	for _, r := range s.PlanRefs {
		switch {
		case r == "pull_request":
			refs = append(refs, `(assertion.event_name == "pull_request" && assertion.ref.startsWith("refs/pull/"))`)
		case s.Provider == "gitlab":
			branches = append(branches, cel(strings.TrimPrefix(r, "refs/heads/")))
		default:
			branches = append(branches, cel(r))
		}
	}
	if len(branches) > 0 {
		if s.Provider == "gitlab" {
			refs = append(refs, `(assertion.ref_type == "branch" && assertion.ref in [`+strings.Join(branches, ", ")+`])`)
		} else {
			refs = append(refs, `assertion.ref in [`+strings.Join(branches, ", ")+`]`)
		}
	}
	condition := repoClaim + " == " + cel(s.Repository) +
		" && (" + strings.Join(refs, " || ") + ")" +
		" && (!has(assertion.environment) || assertion.environment == " + cel(s.Env) + ")"
	principal := func(env, ref string) string {
		return "principalSet://iam.googleapis.com/projects/" + s.GCP.ProjectNumber + "/locations/global/workloadIdentityPools/" + s.pool() +
			"/attribute.gz/" + s.Repository + ":" + env + ":" + ref
	}
	bucketRes := "projects/_/buckets/" + s.Bucket
	prefixCond := &Condition{
		Title:      "groundzero-" + s.Env + "-state",
		Expression: "resource.name == " + cel(bucketRes) + " || resource.name.startsWith(" + cel(bucketRes+"/objects/"+s.Prefix+"/") + ")",
	}
	lockCond := &Condition{
		Title:      "groundzero-" + s.Env + "-lock",
		Expression: "resource.name == " + cel(bucketRes+"/objects/"+s.Prefix+"/default.tflock"),
	}
	set := GCPSet{
		Pool: poolName, Provider: poolName + "/providers/" + s.providerID(), Issuer: s.Issuer,
		Audiences: []string{s.Audience}, AttributeMapping: mapping, AttributeCondition: condition,
		Bucket: s.Bucket, Key: s.KeyID,
	}
	for _, role := range []string{RolePlan, RoleApply} {
		id := gcpAccountID(s.Env, role)
		email := id + "@" + s.Project + ".iam.gserviceaccount.com"
		member := "serviceAccount:" + email
		sa := GCPServiceAccount{Role: role, AccountID: id, Email: email}
		if role == RoleApply {
			sa.Principals = []string{principal(s.Env, "tag")}
			sa.Bucket = []Grant{{Role: roleObjectAdmin, Member: member, Condition: prefixCond}}
			if s.KeyID != "" {
				sa.Key = []Grant{{Role: roleKeyEncDecrypter, Member: member}}
			}
		} else {
			sa.Principals = []string{principal("-", "tag")}
			if len(s.PlanRefs) > 0 {
				sa.Principals = append(sa.Principals, principal("-", "ref"))
			}
			sa.Bucket = []Grant{{Role: roleObjectViewer, Member: member, Condition: prefixCond}, {Role: roleObjectUser, Member: member, Condition: lockCond}}
			if s.KeyID != "" {
				sa.Key = []Grant{{Role: roleKeyDecrypter, Member: member}}
			}
		}
		set.ServiceAccounts = append(set.ServiceAccounts, sa)
	}
	return set
}
