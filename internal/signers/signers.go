// Package signers is the registry of people and machines trusted to sign
// governance artifacts: governance/signers.yaml, the keys it names in
// governance/keys/, and the chain of its earlier versions.
//
// # Format
//
//	version: 3            # increases by one with every signed change
//	threshold: 2          # security signatures needed to approve the next version
//	signers:
//	  - id: alice                       # [a-z0-9][a-z0-9._-]*, unique
//	    name: Alice Example             # optional
//	    roles: [security, release]      # release, operator, approver, security, ci
//	    keys:
//	      - file: keys/alice-3AA5C34371567BD2.asc    # relative to governance/
//	        fingerprint: 9F2B…3AA5C34371567BD2       # OpenPGP hex or SSH SHA256:…
//	        sha256: 5d41…e5b3                        # of the key file's exact bytes
//	    valid_after: "2026-01-01T00:00:00Z"          # optional window
//	    valid_before: "2028-01-01T00:00:00Z"
//	    revoked:                                     # set by `signers revoke`
//	      at: "2026-06-01T00:00:00Z"
//	      reason: laptop stolen
//
// The file is validated against the JSON Schema embedded in this package;
// unknown fields are errors.
//
// Each key file is bound into the registry by the SHA-256 (64 lower-case hex
// digits) of its exact bytes: a key file edited without a new registry
// version, such as an OpenPGP certificate restored from before its
// revocation, is refused (T32). A changed key gets a new file name, so that
// earlier versions keep the files they name.
//
// A key belongs to one signer and is listed once. Keys are compared by their
// public key material, whatever their format (signature.PublicKey.Material):
// one ed25519 key listed as an OpenPGP certificate under one id and as an SSH
// key under another is refused, as is the same key listed twice under one id
// (T2, T31).
//
// # Trust
//
// The registry cannot vouch for itself. Version 1 is signed by threshold of
// its own security signers; version N+1 is valid only when signed by threshold
// of version N's security signers, as TUF rotates its root. Earlier versions
// and their signatures stay in governance/signers.d/N.yaml so that the chain
// can be walked offline, and a pin held outside the repository (the SHA-256
// of one version's bytes) anchors it.
//
// Every link is judged at the verification time. A link whose signers are no
// longer valid (their window closed, their OpenPGP key expired) still counts
// if a trusted witness, the audit trail's checkpointed part, first recorded
// that exact version as in force at a time when they were valid; it is then
// judged at that time (see Chain.Verify). A signature's own claimed creation
// time never decides validity. Revocation is hard: a signer revoked in the
// approving version, or in the current version, or whose OpenPGP key is
// revoked now, never counts.
//
// Thresholds count distinct signer ids, never keys or signature packets.
package signers

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/strictyaml"
)

//go:embed schema.json
var schemaJSON []byte

var schema = strictyaml.MustCompile("signers.schema.json", schemaJSON)

// SchemaJSON returns the embedded JSON Schema for signers.yaml.
func SchemaJSON() []byte { return slices.Clone(schemaJSON) }

// Namespace is the SSH signature namespace for the registry and the manifest.
const Namespace = "groundzero"

// Roles.
const (
	RoleRelease  = "release"
	RoleOperator = "operator"
	RoleApprover = "approver"
	RoleSecurity = "security"
	RoleCI       = "ci"
)

// AllRoles lists the roles in display order.
var AllRoles = []string{RoleRelease, RoleOperator, RoleApprover, RoleSecurity, RoleCI}

// DefaultThreshold applies when signers.yaml omits threshold.
const DefaultThreshold = 1

// KeyRef names a public key file, its fingerprint and the SHA-256 of its
// exact bytes.
type KeyRef struct {
	File        string `yaml:"file"`
	Fingerprint string `yaml:"fingerprint"`
	SHA256      string `yaml:"sha256"`
}

// FileHash returns the hex SHA-256 of a key file's bytes, as KeyRef.SHA256
// records it.
func FileHash(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// Revocation records that a signer may no longer sign.
type Revocation struct {
	At     string `yaml:"at"`
	Reason string `yaml:"reason"`
}

// Signer is one trusted identity.
type Signer struct {
	ID          string      `yaml:"id"`
	Name        string      `yaml:"name,omitempty"`
	Roles       []string    `yaml:"roles,flow"`
	Keys        []KeyRef    `yaml:"keys"`
	ValidAfter  string      `yaml:"valid_after,omitempty"`
	ValidBefore string      `yaml:"valid_before,omitempty"`
	Revoked     *Revocation `yaml:"revoked,omitempty"`

	after, before time.Time
	keys          []*signature.PublicKey
}

// HasRole reports whether the signer holds role.
func (s *Signer) HasRole(role string) bool { return slices.Contains(s.Roles, role) }

// HasAnyRole reports whether the signer holds one of roles.
func (s *Signer) HasAnyRole(roles []string) bool {
	for _, r := range roles {
		if s.HasRole(r) {
			return true
		}
	}
	return false
}

// Status describes whether the signer may sign at time now.
func (s *Signer) Status(now time.Time) string {
	switch {
	case s.Revoked != nil:
		return "revoked"
	case !s.after.IsZero() && now.Before(s.after):
		return "not yet valid"
	case !s.before.IsZero() && !now.Before(s.before):
		return "expired"
	}
	return "active"
}

// PublicKeys returns the loaded keys (after LoadKeys), one for each entry of
// Keys, in the same order.
func (s *Signer) PublicKeys() []*signature.PublicKey { return s.keys }

// Registry is one version of signers.yaml.
type Registry struct {
	Version   int       `yaml:"version"`
	Threshold int       `yaml:"threshold,omitempty"`
	Signers   []*Signer `yaml:"signers"`

	File string `yaml:"-"` // repository path it was read from
	Raw  []byte `yaml:"-"` // exact bytes, as signed
}

// Hash is the hex SHA-256 of the registry's exact bytes: what a trust-root
// pin names.
func (r *Registry) Hash() string {
	h := sha256.Sum256(r.Raw)
	return hex.EncodeToString(h[:])
}

// EffectiveThreshold is Threshold, or DefaultThreshold when unset.
func (r *Registry) EffectiveThreshold() int {
	if r.Threshold == 0 {
		return DefaultThreshold
	}
	return r.Threshold
}

// Lookup returns the signer with id, or nil.
func (r *Registry) Lookup(id string) *Signer {
	for _, s := range r.Signers {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// InvalidError reports a registry that parses but breaks a rule the schema
// cannot express (duplicate ids or keys, an empty window). It is a governance
// failure, not a syntax error.
type InvalidError struct {
	File string
	Msg  string
	Hint string
}

func (e *InvalidError) Error() string { return e.File + ": " + e.Msg }

// Parse reads signers.yaml bytes. file names it in errors.
func Parse(file string, data []byte) (*Registry, error) {
	var r Registry
	if err := strictyaml.Decode(file, data, schema, &r); err != nil {
		return nil, err
	}
	r.File, r.Raw = file, slices.Clone(data)
	ids := map[string]bool{}
	fprs := map[string]string{}
	files := map[string]string{}
	for i, s := range r.Signers {
		if ids[s.ID] {
			return nil, &InvalidError{file, fmt.Sprintf("signer id %q appears twice", s.ID), "give each person one entry; a person with several keys lists them under keys"}
		}
		ids[s.ID] = true
		var err error
		if s.ValidAfter != "" {
			if s.after, err = time.Parse(time.RFC3339, s.ValidAfter); err != nil {
				return nil, &InvalidError{file, fmt.Sprintf("signers[%d].valid_after: %v", i, err), "use RFC 3339, for example 2026-01-01T00:00:00Z"}
			}
		}
		if s.ValidBefore != "" {
			if s.before, err = time.Parse(time.RFC3339, s.ValidBefore); err != nil {
				return nil, &InvalidError{file, fmt.Sprintf("signers[%d].valid_before: %v", i, err), "use RFC 3339, for example 2027-01-01T00:00:00Z"}
			}
		}
		if !s.after.IsZero() && !s.before.IsZero() && !s.after.Before(s.before) {
			return nil, &InvalidError{file, fmt.Sprintf("signer %q: valid_after is not before valid_before", s.ID), "fix the validity window"}
		}
		for _, k := range s.Keys {
			if other, dup := fprs[k.Fingerprint]; dup {
				return nil, &InvalidError{file, fmt.Sprintf("key %s is listed under both %q and %q", k.Fingerprint, other, s.ID),
					"a key belongs to one person; remove it from one of them"}
			}
			fprs[k.Fingerprint] = s.ID
			if other, dup := files[k.File]; dup {
				return nil, &InvalidError{file, fmt.Sprintf("key file %s is listed under both %q and %q", k.File, other, s.ID), "each key has its own file"}
			}
			files[k.File] = s.ID
		}
	}
	return &r, nil
}

// Format renders the registry as YAML, deterministically.
func (r *Registry) Format() []byte {
	var b bytes.Buffer
	b.WriteString("# groundzero signers registry: who may sign what. Edit it with `groundzero signers`.\n")
	b.WriteString("# Once a version is signed it never changes; changes make version N+1, which\n")
	b.WriteString("# threshold security signers of version N must sign (`groundzero signers sign`).\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if r.Signers == nil {
		r.Signers = []*Signer{}
	}
	if err := enc.Encode(r); err != nil {
		panic(err) // plain structs always encode
	}
	enc.Close()
	return b.Bytes()
}

// KeyReader reads a file under governance/ by its registry-relative path.
type KeyReader func(rel string) ([]byte, error)

// LoadKeys reads and parses every key file, checking each file's SHA-256 and
// fingerprint against the registry, and refuses a registry in which any key
// material appears twice.
func (r *Registry) LoadKeys(read KeyReader) error {
	type owner struct{ id, file string }
	seen := map[string]owner{}
	for _, s := range r.Signers {
		s.keys = s.keys[:0]
		for _, k := range s.Keys {
			data, err := read(k.File)
			if err != nil {
				return &InvalidError{r.File, fmt.Sprintf("signer %q: key file governance/%s: %v", s.ID, k.File, err),
					"restore the key file, or re-add the signer with `groundzero signers add`"}
			}
			if got := FileHash(data); got != k.SHA256 {
				return &InvalidError{r.File, fmt.Sprintf("signer %q: key file governance/%s has sha256 %s, but the registry records %s", s.ID, k.File, got, k.SHA256),
					"the key file changed without a new registry version; restore it, or record the new file through `groundzero signers add` (a changed key gets a new file name, so earlier registry versions keep theirs)"}
			}
			pk, err := signature.ParsePublicKey(data)
			if err != nil {
				return &InvalidError{r.File, fmt.Sprintf("signer %q: key file governance/%s: %v", s.ID, k.File, err), "replace the key file with the signer's public key"}
			}
			if pk.Fingerprint != k.Fingerprint {
				return &InvalidError{r.File, fmt.Sprintf("signer %q: key file governance/%s has fingerprint %s, but the registry records %s", s.ID, k.File, pk.Fingerprint, k.Fingerprint),
					"the key file was replaced; restore the original"}
			}
			for _, m := range pk.Material() {
				if o, dup := seen[m]; dup {
					return &InvalidError{r.File, fmt.Sprintf("one key is listed twice: signer %q key file governance/%s and signer %q key file governance/%s hold the same %s key material",
						o.id, o.file, s.ID, k.File, algorithmOf(m)),
						"a key belongs to one person and is listed once; remove one of them"}
				}
				seen[m] = owner{s.ID, k.File}
			}
			s.keys = append(s.keys, pk)
		}
	}
	return nil
}

// algorithmOf names the algorithm of a key material identity.
func algorithmOf(material string) string {
	alg, _, _ := strings.Cut(material, ":")
	return alg
}

// FindKey returns the signer and key that a signature claims to come from.
func (r *Registry) FindKey(sig *signature.Signature) (*Signer, *signature.PublicKey) {
	for _, s := range r.Signers {
		for _, k := range s.keys {
			if k.Matches(sig) {
				return s, k
			}
		}
	}
	return nil, nil
}

// FindByFingerprint returns the signer that owns the key, or nil.
func (r *Registry) FindByFingerprint(fpr string) *Signer {
	for _, s := range r.Signers {
		for _, k := range s.Keys {
			if k.Fingerprint == fpr {
				return s
			}
		}
	}
	return nil
}

// Typed verification errors: each tells the caller what to do next.

// UnknownSignerError: the signing key is not in the registry.
type UnknownSignerError struct{ Issuer string }

func (e *UnknownSignerError) Error() string {
	return "signed by key " + e.Issuer + ", which is not in the signers registry"
}

// RevokedError: the signer was revoked; none of their signatures count.
type RevokedError struct {
	ID, At, Reason string
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("signer %q was revoked at %s (%s)", e.ID, e.At, e.Reason)
}

// WindowError: the verification time is outside the signer's validity window.
type WindowError struct {
	ID     string
	Status string
}

func (e *WindowError) Error() string { return fmt.Sprintf("signer %q is %s", e.ID, e.Status) }

// SignatureError: the signature itself does not verify, or the key may not
// sign now (expired, revoked or weak).
type SignatureError struct {
	ID  string
	Err error
}

func (e *SignatureError) Error() string { return fmt.Sprintf("signer %q: %v", e.ID, e.Err) }
func (e *SignatureError) Unwrap() error { return e.Err }

// RoleError: a valid signature from someone without a required role.
type RoleError struct {
	ID    string
	Roles []string
	Need  []string
}

func (e *RoleError) Error() string {
	return fmt.Sprintf("signer %q has roles [%s], but this needs %s", e.ID, strings.Join(e.Roles, ", "), strings.Join(e.Need, " or "))
}

// ExcludedError: a valid signature from someone who may not approve this
// (the requester of an intent, for example).
type ExcludedError struct {
	ID     string
	Reason string
}

func (e *ExcludedError) Error() string {
	return fmt.Sprintf("signer %q does not count: %s", e.ID, e.Reason)
}

// Outcome is the result for one signature.
type Outcome struct {
	Sig    *signature.Signature
	Signer *Signer // nil when unknown
	Err    error   // nil when the signature is valid
}

// Mode selects how signatures are judged. There is one mode, Current: a
// signature's own claimed time never decides validity, and a chain link that
// is no longer valid now counts only when a trusted witness saw it while it
// was (Chain.Verify).
type Mode int

const (
	// Current judges everything at the verification time: the signer's
	// window and revocation, and the key's expiry and revocation.
	Current Mode = iota
)

// Check verifies each signature over message against the registry at time
// now. mode must be Current.
func (r *Registry) Check(message []byte, sigs []*signature.Signature, namespace string, now time.Time, mode Mode) []Outcome {
	return r.checkAt(message, sigs, namespace, now, now)
}

// checkAt verifies each signature over message against the registry as at
// time at, a time fixed by the verifier or a trusted witness, never by the
// signer: the signer's window and the key's expiry are judged at at, while
// the registry's revocations count whenever they were made and the key's
// OpenPGP revocation counts if it is in effect at at or now.
func (r *Registry) checkAt(message []byte, sigs []*signature.Signature, namespace string, at, now time.Time) []Outcome {
	out := make([]Outcome, 0, len(sigs))
	for _, sig := range sigs {
		s, k := r.FindKey(sig)
		o := Outcome{Sig: sig, Signer: s}
		switch {
		case s == nil:
			o.Err = &UnknownSignerError{Issuer: sig.Issuer()}
		case s.Revoked != nil:
			o.Err = &RevokedError{ID: s.ID, At: s.Revoked.At, Reason: s.Revoked.Reason}
		case s.Status(at) != "active":
			o.Err = &WindowError{ID: s.ID, Status: s.Status(at)}
		default:
			if err := k.VerifyAt(message, sig, namespace, at, now); err != nil {
				o.Err = &SignatureError{ID: s.ID, Err: err}
			}
		}
		out = append(out, o)
	}
	return out
}

// Requirement says whose signatures are needed.
type Requirement struct {
	What      string   // what is being signed, for messages
	Roles     []string // a counted signer holds at least one
	Threshold int      // distinct signers needed
	// Exclude maps signer ids that never count to the reason why.
	Exclude map[string]string
}

// ThresholdError: not enough distinct valid signers.
type ThresholdError struct {
	What     string
	Have     int
	Need     int
	Roles    []string
	Counted  []string
	Rejected []Outcome
}

func (e *ThresholdError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s needs %d distinct signer(s) with role %s, has %d", e.What, e.Need, strings.Join(e.Roles, " or "), e.Have)
	if len(e.Counted) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(e.Counted, ", "))
	}
	for _, o := range e.Rejected {
		fmt.Fprintf(&b, "; %v", o.Err)
	}
	return b.String()
}

// Count applies a requirement to outcomes: it returns the distinct signer ids
// that count, in order, or a *ThresholdError. A signer is counted once however
// many of their keys or signatures appear (T2).
func Count(outcomes []Outcome, req Requirement) ([]string, error) {
	seen := map[string]bool{}
	var counted []string
	var rejected []Outcome
	for _, o := range outcomes {
		if o.Err != nil {
			rejected = append(rejected, o)
			continue
		}
		id := o.Signer.ID
		if seen[id] {
			continue
		}
		if why, ok := req.Exclude[id]; ok {
			seen[id] = true
			rejected = append(rejected, Outcome{Sig: o.Sig, Signer: o.Signer, Err: &ExcludedError{ID: id, Reason: why}})
			continue
		}
		if len(req.Roles) > 0 && !o.Signer.HasAnyRole(req.Roles) {
			seen[id] = true
			rejected = append(rejected, Outcome{Sig: o.Sig, Signer: o.Signer, Err: &RoleError{ID: id, Roles: o.Signer.Roles, Need: req.Roles}})
			continue
		}
		seen[id] = true
		counted = append(counted, id)
	}
	if len(counted) < req.Threshold {
		return counted, &ThresholdError{What: req.What, Have: len(counted), Need: req.Threshold, Roles: req.Roles, Counted: counted, Rejected: rejected}
	}
	return counted, nil
}
