package policy

import (
	"fmt"
	"net/url"
)

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
	// Audience must be one of the token's aud values (default groundzero).
	Audience string `yaml:"audience"`
	// Repository is the GitHub repository or GitLab project path, owner/name,
	// compared case-sensitively.
	Repository string `yaml:"repository"`
	// Environments are the allowed values of the token's environment claim;
	// empty allows any.
	Environments []string `yaml:"environments"`
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
	if c.Repository == "" {
		return &InvalidError{file, "ci.repository is empty", "set ci.repository to the repository CI runs from, owner/name"}
	}
	for i, e := range c.Environments {
		if e == "" {
			return &InvalidError{file, fmt.Sprintf("ci.environments[%d] is empty", i), "list the CI environment names, or leave ci.environments empty to allow any"}
		}
	}
	return nil
}
