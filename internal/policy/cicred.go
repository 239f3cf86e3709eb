package policy

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// CICredentials says where the scoped access keys of CI runners live, for
// the backends that have no OIDC federation for CI (kinds oci, spaces and
// minio): a Vault or OpenBao KV version 2 engine, and per environment the
// secret path under which `groundzero ci rotate` keeps one credential per
// role, PATH/plan and PATH/apply. OCIUsers names the dedicated OCI users
// whose customer secret keys are the credentials (kind oci only).
type CICredentials struct {
	Vault        CIVault              `yaml:"vault"`
	Environments map[string]CICredEnv `yaml:"environments"`
	OCIUsers     map[string]string    `yaml:"oci_users"`
}

// CIVault is the Vault/OpenBao server and KV version 2 mount.
type CIVault struct {
	Address   string `yaml:"address"`
	Mount     string `yaml:"mount"`
	Namespace string `yaml:"namespace"`
}

// CICredEnv is one environment's secret path, relative to the mount.
type CICredEnv struct {
	Path string `yaml:"path"`
}

// DefaultKVMount is the KV version 2 mount when ci_credentials.vault.mount
// is empty.
const DefaultKVMount = "secret"

// CICredentialKinds are the backend kinds whose CI credentials are rotated
// access keys.
var CICredentialKinds = []string{"oci", "spaces", "minio"}

var ociUser = regexp.MustCompile(`^ocid1\.user\.[a-z0-9-]+\.[a-z0-9-]*\.[a-z0-9.-]+$`)

// Path returns the environment's secret path, or "" when it has none.
func (c *CICredentials) Path(env string) string {
	if c == nil {
		return ""
	}
	return c.Environments[env].Path
}

// KVMount returns the KV mount, with the default applied.
func (c *CICredentials) KVMount() string {
	if c.Vault.Mount == "" {
		return DefaultKVMount
	}
	return strings.Trim(c.Vault.Mount, "/")
}

func (c *CICredentials) validate(file string, p *Policy) error {
	if c == nil {
		return nil
	}
	kind := p.Backend.Kind
	ok := false
	for _, k := range CICredentialKinds {
		ok = ok || k == kind
	}
	if !ok {
		return &InvalidError{file, fmt.Sprintf("backend.ci_credentials is set, but backend kind %s is not one of %s", kind, strings.Join(CICredentialKinds, ", ")),
			"remove backend.ci_credentials: CI reaches this backend through OIDC federation (ci: section)"}
	}
	for _, seg := range strings.Split(c.KVMount(), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return &InvalidError{file, fmt.Sprintf("backend.ci_credentials.vault.mount %q is not a mount path", c.Vault.Mount), "write the KV mount as Vault names it, secret say"}
		}
	}
	seen := map[string]string{}
	for env, e := range c.Environments {
		if p.Environment(env) == nil {
			return &InvalidError{file, fmt.Sprintf("backend.ci_credentials.environments.%s: no such environment", env), "declare it under environments, or remove it here"}
		}
		if path.Clean(e.Path) != e.Path || strings.HasPrefix(e.Path, "/") || strings.HasPrefix(e.Path, "..") || strings.Contains(e.Path, "//") {
			return &InvalidError{file, fmt.Sprintf("backend.ci_credentials.environments.%s.path %q is not a clean relative path", env, e.Path), "write it as ci/ENV, with no leading /, no . or .. parts"}
		}
		if other, dup := seen[e.Path]; dup {
			return &InvalidError{file, fmt.Sprintf("backend.ci_credentials: environments %s and %s share path %s", other, env, e.Path), "give each environment its own path: one environment's keys must not be read as another's"}
		}
		seen[e.Path] = env
	}
	for role, u := range c.OCIUsers {
		if kind != "oci" {
			return &InvalidError{file, "backend.ci_credentials.oci_users is set, but backend kind is " + kind, "remove oci_users"}
		}
		if !ociUser.MatchString(u) {
			return &InvalidError{file, fmt.Sprintf("backend.ci_credentials.oci_users.%s %q is not a user OCID", role, u), "write the OCID of the dedicated user, ocid1.user.oc1..…"}
		}
	}
	if kind == "oci" && (c.OCIUsers["plan"] == "" || c.OCIUsers["apply"] == "") {
		return &InvalidError{file, "backend.ci_credentials.oci_users must name a user for plan and for apply", "create two dedicated OCI users and give their OCIDs: {plan: ocid1.user…, apply: ocid1.user…}"}
	}
	if kind == "oci" && c.OCIUsers["plan"] == c.OCIUsers["apply"] {
		return &InvalidError{file, "backend.ci_credentials.oci_users: plan and apply name the same user", "use two users: the plan user must not hold the apply user's grants"}
	}
	return nil
}
