// Package cicred rotates the scoped access keys that CI runners use for the
// state stores that have no OIDC federation for CI here (backend kinds oci,
// spaces and minio). Each environment has two credentials:
//
//   - plan: reads PREFIX/ENV/* and may write and delete only the lock
//     object PREFIX/ENV/terraform.tfstate.tflock (a plan takes the lock);
//   - apply: reads and writes PREFIX/ENV/*.
//
// A rotation of one credential runs these steps, in this order, and stops
// at the first that fails:
//
//  1. read: the credential in force is read from Vault/OpenBao KV v2
//     (MOUNT/data/PATH/ROLE); its key id is the old key.
//  2. create: a new key is made at the provider, scoped by a policy
//     document built from the governed policy.yaml (Scope).
//  3. verify: the new key is used against the S3 endpoint: it must list
//     the prefix, and (apply) write and delete a probe object.
//  4. store: the new key is written to Vault with check-and-set on the
//     version read in step 1, then read back and compared.
//  5. delete: the old key is deleted at the provider.
//
// A failure in steps 2–4 deletes the new key again and leaves the old one
// in force; a failure in step 5 leaves the new key in force and the old
// one alive, and the next rotation deletes it (Vault keeps its id as
// previous_key_id; a key that is gone already is fine). StepError says which step failed and what to do.
//
// The secret half of a key is a Secret: it prints, logs and marshals as
// REDACTED and goes only to Vault. Errors that could carry it are scrubbed.
package cicred

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/groundzero/groundzero/internal/backend"
)

// Roles.
const (
	RolePlan  = "plan"
	RoleApply = "apply"
)

// Roles lists the roles in the order they rotate.
var Roles = []string{RolePlan, RoleApply}

// Steps of a rotation, as StepError.Step names them.
const (
	StepRead   = "read"
	StepCreate = "create"
	StepVerify = "verify"
	StepStore  = "store"
	StepDelete = "delete"
)

// Secret is the secret half of an access key. It never prints.
type Secret string

const redacted = "REDACTED"

func (Secret) String() string                   { return redacted }
func (Secret) GoString() string                 { return redacted }
func (Secret) LogValue() slog.Value             { return slog.StringValue(redacted) }
func (Secret) MarshalJSON() ([]byte, error)     { return json.Marshal(redacted) }
func (Secret) MarshalText() ([]byte, error)     { return []byte(redacted), nil }
func (s Secret) Format(f fmt.State, _ rune)     { f.Write([]byte(redacted)) }
func (s Secret) fingerprint() [sha256.Size]byte { return sha256.Sum256([]byte(s)) }

// Key is an access key: its id (the S3 access key id) and its secret.
type Key struct {
	ID     string
	Secret Secret
}

// Scope is what one credential may touch: the state of one environment.
type Scope struct {
	Env    string
	Role   string
	Kind   string // backend kind: minio, spaces or oci
	Bucket string
	// Prefix is PREFIX/ENV/, always ending in a slash.
	Prefix string
	// LockKey is the lock object, PREFIX/ENV/terraform.tfstate.tflock.
	LockKey  string
	Region   string
	Endpoint string // the S3(-compatible) endpoint
	// Compartment is the OCI compartment of the bucket (kind oci).
	Compartment string
}

// NewScope derives the scope of role in the environment of spec.
func NewScope(spec backend.Spec, role string) (Scope, error) {
	if role != RolePlan && role != RoleApply {
		return Scope{}, fmt.Errorf("role %q is not plan or apply", role)
	}
	if spec.Bucket == "" {
		return Scope{}, errors.New("backend.bucket is empty")
	}
	state := spec.StateKey()
	prefix := strings.TrimSuffix(state, "terraform.tfstate")
	return Scope{
		Env: spec.Env, Role: role, Kind: spec.Kind, Bucket: spec.Bucket,
		Prefix: prefix, LockKey: state + ".tflock",
		Region: spec.Region, Endpoint: spec.Endpoint, Compartment: spec.Compartment,
	}, nil
}

// String says what the scope allows, in one line.
func (s Scope) String() string {
	if s.Role == RoleApply {
		return fmt.Sprintf("read-write %s/%s*", s.Bucket, s.Prefix)
	}
	return fmt.Sprintf("read-only %s/%s*, write %s/%s", s.Bucket, s.Prefix, s.Bucket, s.LockKey)
}

// Provider makes and deletes access keys at one object store's control
// plane.
type Provider interface {
	// Name is the provider as records name it: minio, spaces or oci.
	Name() string
	// Grant describes the policy a new key of scope gets, as sent.
	Grant(scope Scope) (string, error)
	// Create makes a key limited to scope.
	Create(ctx context.Context, scope Scope) (Key, []backend.Call, error)
	// Delete deletes the key id of scope's role; a key that is gone
	// already is Outcome "missing", not an error.
	Delete(ctx context.Context, scope Scope, id string) (backend.Call, error)
}

// Verifier checks that a key works for its scope.
type Verifier interface {
	Verify(ctx context.Context, scope Scope, key Key) ([]backend.Call, error)
}

// Stored is a credential as Vault holds it, without its secret.
type Stored struct {
	Version       int
	KeyID         string
	Provider      string
	Scope         string
	Created       string
	PreviousKeyID string
	secret        [sha256.Size]byte
}

// Credential is what Store writes: the key and its non-secret description.
type Credential struct {
	Key           Key
	Provider      string
	Env, Role     string
	Scope         string
	Bucket        string
	Prefix        string
	Endpoint      string
	Region        string
	Created       time.Time
	PreviousKeyID string
}

// Store keeps credentials: Vault/OpenBao KV version 2 (KV).
type Store interface {
	// Path is where the credential of env's role lives, for records.
	Path(role string) string
	// Read returns the credential in force, or nil when there is none.
	Read(ctx context.Context, role string) (*Stored, backend.Call, error)
	// Write stores c as a new version if the current version is still
	// cas (0: none yet), and returns the new version.
	Write(ctx context.Context, role string, c Credential, cas int) (int, backend.Call, error)
}

// Config is one rotation.
type Config struct {
	Env      string
	Roles    []string // default Roles
	Scopes   map[string]Scope
	Provider Provider
	Verifier Verifier
	Store    Store
	Now      func() time.Time
	// VerifyAttempts bounds how often a new key is tried (keys take a
	// moment to reach every node of some stores); default 1.
	VerifyAttempts int
	// VerifyWait is the pause between attempts.
	VerifyWait time.Duration
}

// Rotated is the record of one credential's rotation (or of how far it
// got).
type Rotated struct {
	Env       string         `json:"env"`
	Role      string         `json:"role"`
	Provider  string         `json:"provider"`
	Scope     string         `json:"scope"`
	NewKeyID  string         `json:"new_key_id,omitempty"`
	OldKeyID  string         `json:"old_key_id,omitempty"`
	VaultPath string         `json:"vault_path"`
	KVVersion int            `json:"kv_version,omitempty"`
	Calls     []backend.Call `json:"calls"`
	// OldKey is what became of the old key: "deleted", "missing" (gone
	// already), "none" (there was none) or "kept" (the rotation failed).
	OldKey string `json:"old_key"`
	// Earlier is what became of previous_key_id, the old key of the
	// previous rotation (deleted then, unless that step failed):
	// "deleted", "missing" (gone already), "failed" or "" (none).
	Earlier string `json:"earlier_key,omitempty"`
	Step    string `json:"failed_step,omitempty"`
	// Warnings are problems that did not stop the rotation.
	Warnings []string `json:"warnings,omitempty"`
}

// RequestIDs lists the request IDs of the calls, in order.
func (r *Rotated) RequestIDs() []string {
	var ids []string
	for _, c := range r.Calls {
		if c.RequestID != "" {
			ids = append(ids, c.RequestID)
		}
	}
	return ids
}

// StepError is a rotation that stopped at Step. Old says whether the old
// key is still in force (steps read to store) and Hint what to do next.
type StepError struct {
	Env, Role string
	Step      string
	Err       error
	// OldInForce: Vault still holds the old key, and it still works.
	OldInForce bool
	// NewKeyID is the key made in this run ("" when none was made or it
	// was deleted again).
	NewKeyID string
	Hint     string
}

func (e *StepError) Error() string {
	return fmt.Sprintf("ci rotate %s/%s: step %s failed: %v", e.Env, e.Role, e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// Rotate rotates each role's credential in turn and returns what it did;
// on a failure the last Rotated says how far that role got, and the error
// is a *StepError.
func Rotate(ctx context.Context, cfg Config) ([]Rotated, error) {
	roles := cfg.Roles
	if len(roles) == 0 {
		roles = Roles
	}
	var out []Rotated
	for _, role := range roles {
		r, err := rotateOne(ctx, cfg, role)
		out = append(out, r)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func rotateOne(ctx context.Context, cfg Config, role string) (Rotated, error) {
	scope, ok := cfg.Scopes[role]
	if !ok {
		return Rotated{Env: cfg.Env, Role: role}, &StepError{Env: cfg.Env, Role: role, Step: StepRead, Err: errors.New("no scope for role"), OldInForce: true}
	}
	p := cfg.Provider
	res := Rotated{Env: cfg.Env, Role: role, Provider: p.Name(), Scope: scope.String(), VaultPath: cfg.Store.Path(role), OldKey: "kept"}
	fail := func(step string, err error, newID string, hint string) (Rotated, error) {
		res.Step = step
		return res, &StepError{Env: cfg.Env, Role: role, Step: step, Err: err, OldInForce: step != StepDelete, NewKeyID: newID, Hint: hint}
	}

	old, call, err := cfg.Store.Read(ctx, role)
	res.Calls = append(res.Calls, call)
	if err != nil {
		return fail(StepRead, err, "", "nothing changed; check the Vault address, token (VAULT_TOKEN) and its read access to "+res.VaultPath+", then run again")
	}
	if old != nil && old.KeyID != "" {
		res.OldKeyID = old.KeyID
		res.KVVersion = old.Version
		// The old key of the previous rotation, which that rotation
		// deleted unless its last step failed: make sure it is gone. A
		// failure here does not stop the rotation; it is reported.
		if old.PreviousKeyID != "" && old.PreviousKeyID != old.KeyID {
			call, err := p.Delete(ctx, scope, old.PreviousKeyID)
			res.Calls = append(res.Calls, call)
			res.Earlier = call.Outcome
			if err != nil {
				res.Warnings = append(res.Warnings, fmt.Sprintf("key %s of the previous rotation may still exist: %v; delete it at %s by hand", old.PreviousKeyID, err, p.Name()))
			}
		}
	} else {
		res.OldKey = "none"
	}

	key, calls, err := p.Create(ctx, scope)
	res.Calls = append(res.Calls, calls...)
	if err != nil {
		return fail(StepCreate, err, "", "nothing changed and the old key is in force; check the provider credentials and that they may create keys, then run again")
	}
	res.NewKeyID = key.ID
	undo := func(step string, cause error, hint string) (Rotated, error) {
		call, derr := p.Delete(ctx, scope, key.ID)
		res.Calls = append(res.Calls, call)
		if derr != nil {
			return fail(step, fmt.Errorf("%w; deleting the new key %s failed too: %v", cause, key.ID, scrubErr(derr, key.Secret)), key.ID,
				hint+fmt.Sprintf("; delete the unused new key %s at %s by hand", key.ID, p.Name()))
		}
		id := res.NewKeyID
		res.NewKeyID = ""
		return fail(step, fmt.Errorf("%w (new key %s deleted again)", cause, id), "", hint)
	}

	attempts := max(cfg.VerifyAttempts, 1)
	var verr error
	for i := 0; i < attempts; i++ {
		if i > 0 && cfg.VerifyWait > 0 {
			select {
			case <-ctx.Done():
				verr = ctx.Err()
			case <-time.After(cfg.VerifyWait):
			}
		}
		var calls []backend.Call
		calls, verr = cfg.Verifier.Verify(ctx, scope, key)
		res.Calls = append(res.Calls, calls...)
		if verr == nil || ctx.Err() != nil {
			break
		}
	}
	if verr != nil {
		return undo(StepVerify, scrubErr(verr, key.Secret), "the old key is in force; the new key did not work against "+scope.Endpoint+": check the endpoint, the bucket and the grants the provider gives, then run again")
	}

	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	cred := Credential{Key: key, Provider: p.Name(), Env: cfg.Env, Role: role, Scope: scope.String(), Bucket: scope.Bucket,
		Prefix: scope.Prefix, Endpoint: scope.Endpoint, Region: scope.Region, Created: now().UTC()}
	cas := 0
	if old != nil {
		cred.PreviousKeyID = old.KeyID
		cas = old.Version
	}
	version, call, err := cfg.Store.Write(ctx, role, cred, cas)
	res.Calls = append(res.Calls, call)
	if err != nil && version > 0 {
		// The key is stored; only its description is not.
		res.Warnings = append(res.Warnings, scrubErr(err, key.Secret).Error())
		err = nil
	}
	if err != nil {
		return undo(StepStore, scrubErr(err, key.Secret), "the old key is in force; check the token's write access to "+res.VaultPath+" (and that no other rotation ran at the same time), then run again")
	}
	back, call, err := cfg.Store.Read(ctx, role)
	res.Calls = append(res.Calls, call)
	switch {
	case err != nil:
		return fail(StepStore, fmt.Errorf("reading back version %d: %w", version, scrubErr(err, key.Secret)), key.ID,
			fmt.Sprintf("Vault may hold the new key %s; read %s to see which key is in force, and delete the other at %s by hand", key.ID, res.VaultPath, p.Name()))
	case back == nil || back.Version != version || back.KeyID != key.ID || back.secret != key.Secret.fingerprint():
		got := "nothing"
		if back != nil {
			got = fmt.Sprintf("version %d, key %s", back.Version, back.KeyID)
		}
		return fail(StepStore, fmt.Errorf("Vault answered version %d with key %s, but reads back %s", version, key.ID, got), key.ID,
			fmt.Sprintf("another writer changed %s; read it to see which key is in force, and delete the other at %s by hand", res.VaultPath, p.Name()))
	}
	res.KVVersion = version

	if old == nil || old.KeyID == "" {
		return res, nil
	}
	call, err = p.Delete(ctx, scope, old.KeyID)
	res.Calls = append(res.Calls, call)
	if err != nil {
		res.OldKey = "kept"
		return fail(StepDelete, scrubErr(err, key.Secret), "",
			fmt.Sprintf("the new key %s is in force (Vault version %d); the old key %s still works: the next `groundzero ci rotate` deletes it, or delete it at %s by hand", key.ID, version, old.KeyID, p.Name()))
	}
	res.OldKey = call.Outcome
	return res, nil
}

// scrubErr returns err with every occurrence of the secret removed from
// its text.
func scrubErr(err error, s Secret) error {
	if err == nil || s == "" || !strings.Contains(err.Error(), string(s)) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), string(s), redacted))
}

// Planned is what a dry run shows for one role.
type Planned struct {
	Role      string `json:"role"`
	Provider  string `json:"provider"`
	Scope     string `json:"scope"`
	Grant     string `json:"grant"`
	VaultPath string `json:"vault_path"`
	// Current is the key in force and its KV version (empty: none).
	CurrentKeyID   string `json:"current_key_id,omitempty"`
	CurrentVersion int    `json:"current_version,omitempty"`
	// Earlier is a key an earlier rotation left to delete.
	Earlier string `json:"earlier_key_id,omitempty"`
}

// Plan reads what a rotation would change and changes nothing.
func Plan(ctx context.Context, cfg Config) ([]Planned, error) {
	roles := cfg.Roles
	if len(roles) == 0 {
		roles = Roles
	}
	var out []Planned
	for _, role := range roles {
		scope := cfg.Scopes[role]
		grant, err := cfg.Provider.Grant(scope)
		if err != nil {
			return out, err
		}
		pl := Planned{Role: role, Provider: cfg.Provider.Name(), Scope: scope.String(), Grant: grant, VaultPath: cfg.Store.Path(role)}
		{
			cur, _, err := cfg.Store.Read(ctx, role)
			if err != nil {
				return out, &StepError{Env: cfg.Env, Role: role, Step: StepRead, Err: err, OldInForce: true,
					Hint: "check the Vault address, token (VAULT_TOKEN) and its read access"}
			}
			if cur != nil {
				pl.CurrentKeyID, pl.CurrentVersion = cur.KeyID, cur.Version
				if cur.PreviousKeyID != "" && cur.PreviousKeyID != cur.KeyID {
					pl.Earlier = cur.PreviousKeyID
				}
			}
		}
		out = append(out, pl)
	}
	return out, nil
}
