package policy

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// planRef is a branch a plan identity may be used from: no wildcards, which
// IAM's StringLike would read as patterns.
var planRef = regexp.MustCompile(`^refs/heads/[A-Za-z0-9._/-]+$`)

// CI says which CI runners may plan and apply without a prompt (DESIGN §3,
// gate 6): the OIDC issuer whose ID tokens prove a runner's identity, the
// audience those tokens must name, the repository the runner must build and
// the CI environments it may run in. Without it, `--ci` is refused.
type CI struct {
	// Provider is github or gitlab; it decides the claims a token carries.
	Provider string `yaml:"provider"`
	// Issuer is the OIDC issuer, an https URL compared exactly with the
	// token's iss (default: GitHub's or gitlab.com's, by provider).
	Issuer string `yaml:"issuer"`
	// IssuerCA is a governed PEM file under governance/ (for instance
	// governance/ci/issuer-ca.pem) holding the CA certificate(s) that alone
	// are trusted for the issuer's TLS certificate; "" trusts the system
	// roots. The runner's environment (SSL_CERT_FILE, proxies) never does.
	IssuerCA string `yaml:"issuer_ca"`
	// Audience must be one of the token's aud values (default groundzero).
	Audience string `yaml:"audience"`
	// Repository is the GitHub repository or GitLab project path, owner/name,
	// compared case-sensitively.
	Repository string `yaml:"repository"`
	// Environments are the allowed values of the token's environment claim;
	// empty allows any.
	Environments []string `yaml:"environments"`
	// PlanRefs are where, besides signed tags, the plan identity of an
	// environment may be used: refs/heads/NAME, or pull_request (GitHub).
	// The apply identity is used from tags only.
	PlanRefs []string `yaml:"plan_refs"`
	// AWS and GCP are the OIDC-federated identities `groundzero bootstrap`
	// makes for each environment (package ciidentity); nil makes none.
	AWS *CIAWS `yaml:"aws"`
	GCP *CIGCP `yaml:"gcp"`
}

// CIAWS places the CI identities of kind s3 in AWS IAM: an OIDC provider for
// the issuer and, per environment, the roles PREFIX-ENV-plan and
// PREFIX-ENV-apply.
type CIAWS struct {
	// Account is the AWS account ID (12 digits) the state store is in.
	Account string `yaml:"account"`
	// RolePrefix begins the role names (default groundzero).
	RolePrefix string `yaml:"role_prefix"`
	// ToolingRole is the ARN of a role in a tooling account that may also
	// assume the roles (cross-account CI); "" allows none.
	ToolingRole string `yaml:"tooling_role"`
	// PlanPolicies and ApplyPolicies are managed policy ARNs attached to the
	// roles for the resources the configuration manages (read-only ones for
	// plan); none by default.
	PlanPolicies  []string `yaml:"plan_policies"`
	ApplyPolicies []string `yaml:"apply_policies"`
}

// CIGCP places the CI identities of kind gcs in Google Cloud: a Workload
// Identity pool with a provider per environment, and the service accounts
// gz-ENV-plan and gz-ENV-apply.
type CIGCP struct {
	// Project is the project ID of the pool and service accounts (default
	// backend.project); ProjectNumber is its number, which principal
	// identifiers name.
	Project       string `yaml:"project"`
	ProjectNumber string `yaml:"project_number"`
	// Pool is the Workload Identity pool ID (default groundzero).
	Pool string `yaml:"pool"`
}

// CI providers and their default issuers and audience.
const (
	GitHubIssuer    = "https://token.actions.githubusercontent.com"
	GitLabIssuer    = "https://gitlab.com"
	DefaultAudience = "groundzero"
)

func (c *CI) defaults() {
	if c.Issuer == "" {
		switch c.Provider {
		case "github":
			c.Issuer = GitHubIssuer
		case "gitlab":
			c.Issuer = GitLabIssuer
		}
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
}

func (c *CI) validate(file string) error {
	if c.Provider != "github" && c.Provider != "gitlab" {
		return &InvalidError{file, fmt.Sprintf("ci.provider %q is not github or gitlab", c.Provider), "set ci.provider to github or gitlab"}
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return &InvalidError{file, fmt.Sprintf("ci.issuer %q is not an https URL without query or fragment", c.Issuer),
			"set ci.issuer to the OIDC issuer exactly as tokens name it, e.g. " + GitHubIssuer}
	}
	if c.IssuerCA != "" {
		p := c.IssuerCA
		if path.Clean(p) != p || !strings.HasPrefix(p, "governance/") || strings.ContainsAny(p, "\\\x00\n\r") ||
			strings.HasPrefix(p, "governance/intents/") || strings.HasPrefix(p, "governance/revocations/") || strings.HasPrefix(p, "governance/MANIFEST") {
			return &InvalidError{file, fmt.Sprintf("ci.issuer_ca %q is not a governed file under governance/", p),
				"put the issuer's CA certificate in a file under governance/ (e.g. governance/ci/issuer-ca.pem), list it in the MANIFEST, and name that path"}
		}
	}
	if c.Repository == "" {
		return &InvalidError{file, "ci.repository is empty", "set ci.repository to the repository CI runs from, owner/name"}
	}
	for i, e := range c.Environments {
		if e == "" {
			return &InvalidError{file, fmt.Sprintf("ci.environments[%d] is empty", i), "list the CI environment names, or leave ci.environments empty to allow any"}
		}
	}
	for i, r := range c.PlanRefs {
		if r != "pull_request" && !planRef.MatchString(r) {
			return &InvalidError{file, fmt.Sprintf("ci.plan_refs[%d] %q is not refs/heads/NAME or pull_request", i, r), "name a branch as refs/heads/NAME (no wildcards), or pull_request"}
		}
		if r == "pull_request" && c.Provider != "github" {
			return &InvalidError{file, fmt.Sprintf("ci.plan_refs[%d] pull_request is a GitHub event; GitLab merge request pipelines run on their branch", i), "name the branch as refs/heads/NAME"}
		}
	}
	return nil
}
