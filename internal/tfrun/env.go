package tfrun

import (
	"path/filepath"
	"strings"
)

// An EnvRule is one line of the table Env applies.
type EnvRule struct {
	// Name is a variable name, or a prefix followed by "*".
	Name string
	// Value is what Env sets the variable to; DataDirToken stands for the
	// data directory. "" means the variable is removed.
	Value string
	// Why the rule exists.
	Reason string
}

// DataDirToken stands for the private data directory in EnvTable values.
const DataDirToken = "{datadir}"

// CLIConfigName is the file, in the data directory, that TF_CLI_CONFIG_FILE
// names.
const CLIConfigName = "groundzero.tofurc"

// CLIConfig is the whole CLI configuration the engine sees: providers come
// directly from their registries (no dev_overrides, mirrors, plugin cache or
// implied local plugin directories), and no ambient Docker credential helper
// runs.
const CLIConfig = `# Written by groundzero: the only CLI configuration OpenTofu reads.
disable_checkpoint = true

provider_installation {
  direct {}
}

oci_default_credentials {
  discover_ambient_credentials = false
}
`

// EnvTable is what Env removes from the environment it is given, and what it
// sets. Removals come first; every name that is set is also removed from the
// given environment, so an ambient value never survives beside it.
var EnvTable = []EnvRule{
	{Name: "TF_*", Reason: "OpenTofu settings are not governed: variables (TF_VAR_*), extra arguments (TF_CLI_ARGS*), " +
		"the CLI configuration (TF_CLI_CONFIG_FILE), the data directory (TF_DATA_DIR), provider reattachment " +
		"(TF_REATTACH_PROVIDERS), the plugin cache (TF_PLUGIN_CACHE_DIR), logging (TF_LOG*), the workspace, " +
		"state encryption (TF_ENCRYPTION) and registry tokens (TF_TOKEN_*)"},
	{Name: "TERRAFORM_CONFIG", Reason: "the legacy name of the CLI configuration file, read when TF_CLI_CONFIG_FILE is unset"},
	{Name: "GODEBUG", Reason: "Go runtime switches that OpenTofu honours at start; some weaken TLS and certificate checks"},
	{Name: "TF_CLI_CONFIG_FILE", Value: DataDirToken + "/" + CLIConfigName, Reason: "the CLI configuration groundzero writes (CLIConfig); no ~/.tofurc, ~/.terraformrc or ~/.terraform.d applies"},
	{Name: "TF_DATA_DIR", Value: DataDirToken, Reason: "the private data directory: a committed .terraform/ is never read"},
	{Name: "TF_IN_AUTOMATION", Value: "1", Reason: "no advice meant for people at a terminal"},
	{Name: "TF_INPUT", Value: "0", Reason: "never prompt"},
	{Name: "CHECKPOINT_DISABLE", Value: "1", Reason: "no version check calls to HashiCorp"},
}

// matches reports whether the variable name k falls under the rule name n.
// Names compare without regard to case: Windows treats them so, and nothing
// that differs only in case may slip past.
func matches(n, k string) bool {
	k = strings.ToUpper(k)
	if p, ok := strings.CutSuffix(n, "*"); ok {
		return strings.HasPrefix(k, p)
	}
	return k == n
}

// Env returns the environment for the engine: environ without the variables
// EnvTable removes, plus the ones it sets, with dataDir as the private data
// directory. It is pure.
func Env(environ []string, dataDir string) []string {
	var out []string
next:
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		for _, r := range EnvTable {
			if matches(r.Name, k) {
				continue next
			}
		}
		out = append(out, kv)
	}
	for _, r := range EnvTable {
		if r.Value == "" {
			continue
		}
		v := r.Value
		if rest, ok := strings.CutPrefix(v, DataDirToken); ok {
			v = dataDir + filepath.FromSlash(rest)
		}
		out = append(out, r.Name+"="+v)
	}
	return out
}
