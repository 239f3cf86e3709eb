// Package policy reads governance/policy.yaml: the backend selection, the
// environments with their parity rules (regions, naming, required tags), the
// resource allow and deny lists, and the gate settings (approvals per action,
// intent lifetimes, whether a signed tag is required).
//
// The file is validated against the JSON Schema embedded in this package;
// unknown fields are errors that name file:line:column.
package policy

import (
	_ "embed"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/groundzero/groundzero/internal/strictyaml"
)

//go:embed schema.json
var schemaJSON []byte

var schema = strictyaml.MustCompile("policy.schema.json", schemaJSON)

// SchemaJSON returns the embedded JSON Schema for policy.yaml.
func SchemaJSON() []byte { return slices.Clone(schemaJSON) }

// Backend kinds.
var BackendKinds = []string{"s3", "gcs", "oci", "spaces", "minio", "local"}

// Actions that an intent can authorise.
var Actions = []string{"bootstrap", "apply", "destroy", "revoke", "break-glass"}

// Policy is a parsed policy.yaml with defaults applied.
type Policy struct {
	Version      int           `yaml:"version"`
	Backend      Backend       `yaml:"backend"`
	Evidence     Evidence      `yaml:"evidence"`
	Engine       Engine        `yaml:"engine"`
	Modules      Modules       `yaml:"modules"`
	Gates        Gates         `yaml:"gates"`
	Environments []Environment `yaml:"environments"`
	Resources    Resources     `yaml:"resources"`
	Parity       Parity        `yaml:"parity"`
	Secrets      Secrets       `yaml:"secrets"`
	BreakGlass   BreakGlass    `yaml:"breakglass"`
	// CI is nil when policy.yaml has no ci: section: no CI runner may act.
	CI *CI `yaml:"ci"`

	File string `yaml:"-"`
}

// Backend selects the remote state store and says how it is made: the
// bucket and where in it the state lives, its lock, its key, its tags, and
// which capability probes it must pass.
type Backend struct {
	Kind        string            `yaml:"kind"`
	Bucket      string            `yaml:"bucket"`
	KeyPrefix   string            `yaml:"key_prefix"`
	Region      string            `yaml:"region"`
	Endpoint    string            `yaml:"endpoint"`
	Project     string            `yaml:"project"`
	Namespace   string            `yaml:"namespace"`
	Compartment string            `yaml:"compartment"`
	Path        string            `yaml:"path"`
	Lock        string            `yaml:"lock"`
	LockTable   string            `yaml:"lock_table"`
	Versioning  *bool             `yaml:"versioning"`
	Encryption  BackendEncryption `yaml:"encryption"`
	Replication *Replication      `yaml:"replication"`
	Tags        map[string]string `yaml:"tags"`
	Probes      BackendProbes     `yaml:"probes"`
	Waive       []ProbeWaiver     `yaml:"waive"`
	// CICredentials: where `ci rotate` keeps CI access keys (cicred.go).
	CICredentials *CICredentials `yaml:"ci_credentials"`
}

// BackendEncryption is the key of the state store; State renders
// OpenTofu's state encryption with it, enforced.
type BackendEncryption struct {
	State        bool   `yaml:"state"`
	Provider     string `yaml:"provider"`
	Key          string `yaml:"key"`
	Location     string `yaml:"location"`
	Address      string `yaml:"address"`
	Mount        string `yaml:"mount"`
	Vault        string `yaml:"vault"`
	RotationDays int    `yaml:"rotation_days"`
}

// Replication copies the state bucket to a second region.
type Replication struct {
	Region string `yaml:"region"`
	Bucket string `yaml:"bucket"`
	Role   string `yaml:"role"`
}

// BackendProbes lists the capabilities the store must have; nil means the
// defaults.
type BackendProbes struct {
	Require []string `yaml:"require"`
}

// ProbeWaiver accepts a store that fails one capability probe, for a reason
// review approved. It counts only under a signed bootstrap intent, and the
// lock and the audit trail record it.
type ProbeWaiver struct {
	Probe  string `yaml:"probe"`
	Reason string `yaml:"reason"`
}

// VersioningOn reports whether the state bucket keeps versions (default on).
func (b *Backend) VersioningOn() bool { return b.Versioning == nil || *b.Versioning }

// Waives returns the waiver of probe, or nil.
func (b *Backend) Waives(probe string) *ProbeWaiver {
	for i := range b.Waive {
		if b.Waive[i].Probe == probe {
			return &b.Waive[i]
		}
	}
	return nil
}

type Evidence struct {
	Store         string   `yaml:"store"`
	RetentionDays int      `yaml:"retention_days"`
	Waive         []Waiver `yaml:"waive"`
	ReadOnly      ReadOnly `yaml:"read_only"`
}

// ReadOnly says where commands that change nothing (check, the verify
// commands, intent list, policy check) record what they found. Commands
// that change state always record in the store.
type ReadOnly struct {
	// Record is "store" (the default: every command records in the
	// evidence store, and needs write access to it) or "local": they
	// only read the store, and record in Local.
	Record string `yaml:"record"`
	// Local is the file:// store they record in (default
	// file://.groundzero/readonly); `audit ship --store` forwards it.
	Local string `yaml:"local"`
	// InStore names the read-only commands that record in the store
	// anyway, "check" say.
	InStore []string `yaml:"in_store"`
}

// DefaultReadOnlyStore is where read-only commands record with record: local.
const DefaultReadOnlyStore = "file://.groundzero/readonly"

// RecordsLocally reports whether the read-only command (its name as
// in_store spells it, "policy check" say) records in the local store.
func (e *Evidence) RecordsLocally(command string) bool {
	if e.ReadOnly.Record != "local" {
		return false
	}
	for _, c := range e.ReadOnly.InStore {
		if c == command {
			return false
		}
	}
	return true
}

// Engine optionally pins the OpenTofu (or Terraform) binary that runs: its
// version as it reports it, and the SHA-256 of the executable.
type Engine struct {
	Version string `yaml:"version"`
	SHA256  string `yaml:"sha256"`
}

// Modules says which module sources beyond the governed tree may be used.
type Modules struct {
	Remote []RemoteModule `yaml:"remote"`
}

// RemoteModule allows one remote module source at one exact version.
type RemoteModule struct {
	Source  string `yaml:"source"`
	Version string `yaml:"version"`
}

// Waiver accepts an evidence store that lacks a capability, for a reason
// that review approved.
type Waiver struct {
	Capability string `yaml:"capability"`
	Reason     string `yaml:"reason"`
}

// Capabilities an evidence store waiver can name.
const CapObjectLock = "object_lock"

// Waives returns the waiver for capability, or nil.
func (e *Evidence) Waives(capability string) *Waiver {
	for i := range e.Waive {
		if e.Waive[i].Capability == capability {
			return &e.Waive[i]
		}
	}
	return nil
}

// Local reports whether the store is a local directory: a cache of the
// trail that anyone with the machine can rewrite, never an anchor.
func (e *Evidence) Local() bool { return strings.HasPrefix(e.Store, "file://") }

type Gates struct {
	RequireTag bool                `yaml:"require_tag"`
	Manifest   ManifestGate        `yaml:"manifest"`
	Checkpoint CheckpointGate      `yaml:"checkpoint"`
	Intent     IntentGate          `yaml:"intent"`
	Approvals  map[string]Approval `yaml:"approvals"`
	// CertifiedMachine: interactive apply, bootstrap and break-glass run
	// only on a host whose machine key has a verified certification
	// record in governance/machines/.
	CertifiedMachine bool `yaml:"certified_machine"`
}

// BreakGlass bounds break-glass windows. MaxTTL is the longest a window
// may stay open (default DefaultBreakGlassMaxTTL). RequireWindow refuses
// interactive apply and bootstrap (the path a person runs on an admin
// machine when CI is unreachable) unless a verified break-glass window is
// open for the environment.
type BreakGlass struct {
	MaxTTL        string `yaml:"max_ttl"`
	RequireWindow bool   `yaml:"require_window"`
}

type ManifestGate struct {
	Approvals int `yaml:"approvals"`
}

type CheckpointGate struct {
	Roles  []string `yaml:"roles"`
	MaxAge string   `yaml:"max_age"`
}

type IntentGate struct {
	DefaultTTL string `yaml:"default_ttl"`
	MaxTTL     string `yaml:"max_ttl"`
}

// Approval is the signature rule for one intent action.
type Approval struct {
	Count           int      `yaml:"count"`
	Roles           []string `yaml:"roles"`
	RequireOneOf    []string `yaml:"require_one_of"`
	RequesterCounts *bool    `yaml:"requester_counts"`
}

type Environment struct {
	Name    string   `yaml:"name"`
	Backend string   `yaml:"backend"`
	Regions []string `yaml:"regions"`
	Confirm *bool    `yaml:"confirm"`
	// Demo marks a demo-grade environment: its freshness anchor may be a
	// local evidence store, which anyone with the machine can rewrite.
	Demo bool `yaml:"demo"`
	// Dir is the environment's configuration directory, relative to the
	// repository root and inside the governed tree (default
	// infra/bootstrap).
	Dir    string            `yaml:"dir"`
	Naming map[string]string `yaml:"naming"`
	Tags   map[string]string `yaml:"tags"`
}

// ConfirmRequired reports whether the two-step confirmation applies (default on).
func (e *Environment) ConfirmRequired() bool { return e.Confirm == nil || *e.Confirm }

type Resources struct {
	Denied  []string `yaml:"denied"`
	Allowed []string `yaml:"allowed"`
}

// Parity holds the parity gate's settings: whether a value the rules need
// that is unknown until apply denies or warns, and the waivers of built-in
// rules.
type Parity struct {
	Unknown string       `yaml:"unknown"` // "deny" (default) or "warn"
	Waive   []RuleWaiver `yaml:"waive"`
}

// RuleWaiver waives one built-in parity rule, for a reason that review
// approved: for the resources whose address matches Address (a glob; every
// resource when empty), in environment Env (every environment when empty).
type RuleWaiver struct {
	Rule    string `yaml:"rule"`
	Address string `yaml:"address"`
	Env     string `yaml:"env"`
	Reason  string `yaml:"reason"`
}

// Defaults.
const (
	DefaultEvidenceStore = "file://.groundzero/evidence"
	DefaultRetentionDays = 2555 // seven years
	DefaultIntentTTL     = "24h"
	DefaultMaxIntentTTL  = "72h"
	DefaultDir           = "infra/bootstrap"
)

// DefaultBreakGlassMaxTTL is the longest a break-glass window stays open
// when policy.yaml does not set breakglass.max_ttl.
const DefaultBreakGlassMaxTTL = "4h"

func boolp(b bool) *bool { return &b }

// DefaultApprovals are the approval rules when policy.yaml does not set them.
func DefaultApprovals() map[string]Approval {
	humans := []string{"operator", "approver", "security"}
	twoPerson := Approval{Count: 2, Roles: humans, RequireOneOf: []string{"approver", "security"}, RequesterCounts: boolp(false)}
	return map[string]Approval{
		"apply":       {Count: 1, Roles: []string{"operator"}, RequesterCounts: boolp(true)},
		"bootstrap":   twoPerson,
		"destroy":     twoPerson,
		"revoke":      twoPerson,
		"break-glass": twoPerson,
	}
}

// InvalidError reports a policy that is well-formed YAML and matches the
// schema but is still unusable, such as a bad regular expression.
type InvalidError struct {
	File string
	Msg  string
	Hint string
}

func (e *InvalidError) Error() string { return e.File + ": " + e.Msg }

// Parse reads policy.yaml bytes, validates them and applies defaults.
func Parse(file string, data []byte) (*Policy, error) {
	var p Policy
	if err := strictyaml.Decode(file, data, schema, &p); err != nil {
		return nil, err
	}
	p.File = file
	if p.Evidence.Store == "" {
		p.Evidence.Store = DefaultEvidenceStore
	}
	if p.Evidence.ReadOnly.Local == "" {
		p.Evidence.ReadOnly.Local = DefaultReadOnlyStore
	}
	if p.Evidence.RetentionDays == 0 {
		p.Evidence.RetentionDays = DefaultRetentionDays
	}
	if p.Parity.Unknown == "" {
		p.Parity.Unknown = "deny"
	}
	if p.Gates.Manifest.Approvals == 0 {
		p.Gates.Manifest.Approvals = 1
	}
	if p.Gates.Intent.DefaultTTL == "" {
		p.Gates.Intent.DefaultTTL = DefaultIntentTTL
	}
	if p.Gates.Intent.MaxTTL == "" {
		p.Gates.Intent.MaxTTL = DefaultMaxIntentTTL
	}
	if p.BreakGlass.MaxTTL == "" {
		p.BreakGlass.MaxTTL = DefaultBreakGlassMaxTTL
	}
	def := DefaultApprovals()
	if p.Gates.Approvals == nil {
		p.Gates.Approvals = map[string]Approval{}
	}
	for _, a := range Actions {
		got, ok := p.Gates.Approvals[a]
		if !ok {
			p.Gates.Approvals[a] = def[a]
			continue
		}
		if got.Roles == nil {
			got.Roles = def[a].Roles
		}
		if got.RequesterCounts == nil {
			got.RequesterCounts = def[a].RequesterCounts
		}
		if got.RequireOneOf == nil {
			// Raising the count must not drop the approver rule; write
			// require_one_of: [] to drop it on purpose.
			got.RequireOneOf = def[a].RequireOneOf
		}
		p.Gates.Approvals[a] = got
	}
	for name, d := range map[string]string{"gates.intent.default_ttl": p.Gates.Intent.DefaultTTL, "gates.intent.max_ttl": p.Gates.Intent.MaxTTL, "gates.checkpoint.max_age": p.Gates.Checkpoint.MaxAge, "breakglass.max_ttl": p.BreakGlass.MaxTTL} {
		if d == "" {
			continue
		}
		if _, err := ParseDuration(d); err != nil {
			return nil, &InvalidError{file, fmt.Sprintf("%s: %v", name, err), "write a duration such as 24h, 7d or 90m"}
		}
	}
	if def, _ := ParseDuration(p.Gates.Intent.DefaultTTL); def > mustDuration(p.Gates.Intent.MaxTTL) {
		return nil, &InvalidError{file, "gates.intent.default_ttl is longer than gates.intent.max_ttl", "shorten default_ttl or raise max_ttl"}
	}
	seen := map[string]bool{}
	for i := range p.Environments {
		e := &p.Environments[i]
		if seen[e.Name] {
			return nil, &InvalidError{file, fmt.Sprintf("environment %q is declared twice", e.Name), "merge the two entries"}
		}
		seen[e.Name] = true
		if e.Backend == "" {
			e.Backend = p.Backend.Kind
		}
		if e.Dir == "" {
			e.Dir = DefaultDir
		}
		if path.Clean(e.Dir) != e.Dir {
			return nil, &InvalidError{file, fmt.Sprintf("environments[%s].dir %q is not a clean path", e.Name, e.Dir), "write it as infra/NAME, with no . or .. parts"}
		}
		for kind, pat := range e.Naming {
			if _, err := regexp.Compile(pat); err != nil {
				return nil, &InvalidError{file, fmt.Sprintf("environments[%s].naming.%s: bad regular expression: %v", e.Name, kind, err), "fix the pattern (Go RE2 syntax)"}
			}
		}
		for tag, pat := range e.Tags {
			if _, err := regexp.Compile(pat); err != nil {
				return nil, &InvalidError{file, fmt.Sprintf("environments[%s].tags.%s: bad regular expression: %v", e.Name, tag, err), "fix the pattern (Go RE2 syntax)"}
			}
		}
	}
	if !p.Backend.VersioningOn() && p.Backend.Waives("versioning") == nil {
		return nil, &InvalidError{file, "backend.versioning is false, but backend.waive does not waive the versioning probe", "keep versioning on, or add {probe: versioning, reason: …} under backend.waive"}
	}
	if err := p.Secrets.validate(file); err != nil {
		return nil, err
	}
	if err := p.Backend.CICredentials.validate(file, &p); err != nil {
		return nil, err
	}
	if p.CI != nil {
		p.CI.defaults()
		if err := p.CI.validate(file); err != nil {
			return nil, err
		}
	}
	for _, t := range p.Resources.Denied {
		if slices.Contains(p.Resources.Allowed, t) {
			return nil, &InvalidError{file, fmt.Sprintf("resource type %s is both allowed and denied", t), "remove it from one list"}
		}
	}
	return &p, nil
}

func mustDuration(s string) time.Duration {
	d, _ := ParseDuration(s)
	return d
}

// ParseDuration reads durations such as "90m", "24h" or "7d" (a day is 24h).
func ParseDuration(s string) (time.Duration, error) {
	days := time.Duration(0)
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 100_000 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || days+d < days {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return days + d, nil
}

// Environment returns the named environment, or nil.
func (p *Policy) Environment(name string) *Environment {
	for i := range p.Environments {
		if p.Environments[i].Name == name {
			return &p.Environments[i]
		}
	}
	return nil
}

// Template renders the commented policy.yaml that `groundzero init` writes.
// With no evidence store the environment is demo-grade and the trail is
// local.
func Template(backend, env, evidence string) []byte {
	store := "# evidence:\n#   store: " + DefaultEvidenceStore + "\n#   retention_days: 2555"
	demo := "    demo: true          # demo-grade: the evidence store is local (see evidence above)\n"
	if evidence != "" {
		store = "evidence:\n  store: " + evidence + "\n  retention_days: 2555"
		demo = "    # demo: false        # demo: true accepts a local evidence store\n"
	}
	return []byte(fmt.Sprintf(`# groundzero policy: the rules every change must pass before any state
# becomes mutable. Validated against the schema built into groundzero;
# unknown fields are errors. Commented lines show the defaults.
version: 1

# Explicit backend selection for the remote state (s3, gcs, oci, spaces,
# minio, or local for demos and tests only). `+"`groundzero bootstrap`"+` creates
# it and writes the signed lock; changing it later needs a revocation.
backend:
  kind: %[1]s
  # bucket: acme-tfstate        # never the evidence bucket
  # key_prefix: org             # state key: org/ENV/terraform.tfstate
  # region: eu-west-1
  # endpoint: https://...       # S3-compatible stores (minio, spaces, oci)
  # lock: lockfile              # or dynamodb (s3), with lock_table
  # versioning: true            # false needs a waiver of the versioning probe
  # encryption: {provider: aws_kms, key: acme-tfstate, rotation_days: 365, state: true}
  # tags: {owner: platform}     # applied in the create calls
  # waive: [{probe: encryption, reason: "..."}]

# Where the audit trail and evidence are kept, and for how long Object Lock
# retention holds them. The store is the freshness anchor: rollback and
# replay are judged against it. Real use needs object storage with Object
# Lock (s3://BUCKET/PREFIX); a local file:// store is a cache that anyone with
# the machine can rewrite, accepted only for environments marked demo: true.
%[3]s

gates:
  # Run only from a signed annotated tag (checked by `+"`groundzero check`"+`).
  require_tag: false
  # Distinct approver or security signatures needed on governance/MANIFEST.
  manifest:
    approvals: 1
  # checkpoint:
  #   roles: []          # roles that may sign audit checkpoints; empty means any
  #   max_age: 30d       # a trusted checkpoint older than this is refused
  # intent:
  #   default_ttl: 24h
  #   max_ttl: 72h
  # Signatures an intent needs, per action. The requester never counts for
  # bootstrap, destroy, revoke or break-glass.
  # approvals:
  #   apply:       {count: 1, roles: [operator], requester_counts: true}
  #   bootstrap:   {count: 2, roles: [operator, approver, security], require_one_of: [approver, security]}
  #   destroy:     {count: 2, roles: [operator, approver, security], require_one_of: [approver, security]}
  #   revoke:      {count: 2, roles: [operator, approver, security], require_one_of: [approver, security]}
  #   break-glass: {count: 2, roles: [operator, approver, security], require_one_of: [approver, security]}

# Parity rules per environment.
environments:
  - name: %[2]s
    # backend: %[1]s      # defaults to backend.kind
    regions: []           # allowed regions; empty means any region
    # dir: infra/bootstrap # configuration directory (governed, under infra/)
    # confirm: true       # two-step confirmation (typed token, then APPLY)
%[4]s    naming: {}            # resource type, or "*" for every type with a name -> regular expression for its name
    tags: {}              # required tag -> regular expression for its value

# The OpenTofu binary may be pinned (version as `+"`tofu version`"+` reports it,
# SHA-256 of the executable); it never comes from inside the repository.
# engine:
#   version: 1.12.6
#   sha256: ...
# Local modules must lie in the governed tree; remote ones only as listed.
# modules:
#   remote:
#     - {source: "registry.opentofu.org/terraform-aws-modules/s3-bucket/aws", version: "4.1.2"}

# resources:
#   denied: []            # resource types that may never be created
#   allowed: []           # when set, the only resource types allowed

# CI runners that may plan and apply with --ci, proven by their OIDC ID
# token; a fully approved intent and this identity replace the prompt.
# ci:
#   provider: github      # github or gitlab
#   issuer: https://token.actions.githubusercontent.com
#   audience: groundzero
#   repository: acme/platform
#   environments: []      # allowed CI environment claims; empty means any

# parity:
#   unknown: deny         # a value the rules need that is unknown until apply: deny or warn
#   waive:                # built-in rules are on; a waiver needs a reason
#     - {rule: dns, address: "aws_route53_record.*", reason: "..."}
`, backend, env, store, demo))
}
