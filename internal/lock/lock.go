// Package lock is the signed backend lock and its revocation.
//
// # The lock
//
// An environment's backend lock (.backend.lock in its configuration
// directory) is a canonical JSON record of kind "groundzero.backend-lock/v1"
// that fixes where the environment's state lives and how backend.tf renders:
//
//	{"backend":"minio","bucket":"acme-tfstate","commit":"<hex>",
//	 "created":"2026-12-01T10:00:00Z","encrypt":false,"endpoint":"http://…",
//	 "env":"demo","intent":"<bootstrap intent id>","key_address":"",
//	 "key_id":"","key_mount":"","key_name":"","key_provider":"none",
//	 "kind":"groundzero.backend-lock/v1","lock":"lockfile","lock_table":"",
//	 "namespace":"","path":"","previous":"","probes":[…],"region":"us-east-1",
//	 "resources":{"bucket":"…"},"revocation":"","state_key":"demo/terraform.tfstate",
//	 "tag":"v1","template":"s3.v1","template_sha256":"<hex>","version":1,
//	 "waivers":[{"probe":"…","reason":"…"}]}
//
// Its detached signatures sit beside it (.backend.lock.asc or .sig, SSH
// namespace "groundzero.backend-lock/v1"), by two distinct people. A lock is
// never edited: a different backend needs a revocation first, and the new
// lock has version N+1 and names the one it replaces (previous).
//
// # The revocation
//
// A revocation (governance/revocations/<id>.json, kind
// "groundzero.revocation/v1") withdraws one lock, named by its SHA-256, for
// a reason, under a revoke intent; it too needs two people's signatures.
package lock

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/record"
)

// Kinds, which are also the SSH namespaces of their signatures.
var (
	Kind           = record.Kind("backend-lock")
	RevocationKind = record.Kind("revocation")
)

// MaxSize bounds a lock or revocation file.
const MaxSize = 64 << 10

// Waiver is a capability probe failure accepted by policy.yaml, for a reason.
type Waiver struct {
	Probe  string `json:"probe"`
	Reason string `json:"reason"`
}

// Lock is one backend lock.
type Lock struct {
	Backend        string            `json:"backend"`
	Bucket         string            `json:"bucket"`
	Commit         string            `json:"commit"`
	Created        string            `json:"created"`
	Encrypt        bool              `json:"encrypt"`
	Endpoint       string            `json:"endpoint"`
	Env            string            `json:"env"`
	Intent         string            `json:"intent"`
	KeyAddress     string            `json:"key_address"`
	KeyID          string            `json:"key_id"`
	KeyMount       string            `json:"key_mount"`
	KeyName        string            `json:"key_name"`
	KeyProvider    string            `json:"key_provider"`
	Kind           string            `json:"kind"`
	LockMethod     string            `json:"lock"`
	LockTable      string            `json:"lock_table"`
	Namespace      string            `json:"namespace"`
	Path           string            `json:"path"`
	Previous       string            `json:"previous"`
	Probes         []string          `json:"probes"` // the capabilities that passed
	Region         string            `json:"region"`
	Resources      map[string]string `json:"resources"`
	Revocation     string            `json:"revocation"`
	StateKey       string            `json:"state_key"`
	Tag            string            `json:"tag"`
	Template       string            `json:"template"`
	TemplateSHA256 string            `json:"template_sha256"`
	Version        int               `json:"version"`
	Waivers        []Waiver          `json:"waivers"`
}

// MalformedError reports a file that is not a valid lock or revocation.
type MalformedError struct {
	File   string
	Reason string
}

func (e *MalformedError) Error() string { return e.File + ": " + e.Reason }

var (
	hexRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	idRE  = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$`)
)

// Marshal returns the lock file bytes.
func (l *Lock) Marshal() ([]byte, error) {
	if l.Probes == nil {
		l.Probes = []string{}
	}
	if l.Waivers == nil {
		l.Waivers = []Waiver{}
	}
	if l.Resources == nil {
		l.Resources = map[string]string{}
	}
	return record.MarshalFile(l)
}

// Parse reads a lock, refusing anything but its canonical bytes; file names
// it in errors.
func Parse(file string, data []byte) (*Lock, error) {
	var l Lock
	if err := record.ParseFileOf(data, MaxSize, Kind, &l, l.validate); err != nil {
		return nil, &MalformedError{file, err.Error()}
	}
	return &l, nil
}

func (l *Lock) validate() error {
	switch {
	case l.Version < 1:
		return errors.New("version must be 1 or more")
	case l.Version == 1 && (l.Previous != "" || l.Revocation != ""):
		return errors.New("version 1 replaces nothing: previous and revocation must be empty")
	case l.Version > 1 && (!hexRE.MatchString(l.Previous) || !idRE.MatchString(l.Revocation)):
		return errors.New("a lock after version 1 names the lock it replaces (previous) and its revocation")
	case !idRE.MatchString(l.Intent):
		return errors.New("bad intent id")
	case !hexRE.MatchString(l.TemplateSHA256):
		return errors.New("bad template_sha256")
	case l.Env == "":
		return errors.New("no env")
	}
	if _, err := time.Parse(time.RFC3339, l.Created); err != nil {
		return errors.New("bad created time")
	}
	return nil
}

// SHA256 is the hex SHA-256 of a file's bytes.
func SHA256(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// Values are what the lock renders backend.tf from.
func (l *Lock) Values() backend.Values {
	return backend.Values{
		Kind: l.Backend, Bucket: l.Bucket, StateKey: l.StateKey, Region: l.Region, Endpoint: l.Endpoint,
		Namespace: l.Namespace, Lock: l.LockMethod, LockTable: l.LockTable, Path: l.Path,
		KeyProvider: l.KeyProvider, KeyID: l.KeyID, KeyAddress: l.KeyAddress, KeyMount: l.KeyMount, KeyName: l.KeyName,
		Encrypt: l.Encrypt,
	}
}

// Render renders backend.tf from the template the lock records. A lock whose
// template this build does not embed is an error that says so.
func (l *Lock) Render() ([]byte, error) {
	t := backend.TemplateBySHA256(l.TemplateSHA256)
	if t == nil {
		return nil, fmt.Errorf("the lock records template sha256:%.16s, which this groundzero does not embed", l.TemplateSHA256)
	}
	if t.Name != l.Template {
		return nil, fmt.Errorf("the lock names template %s, but sha256:%.16s is template %s", l.Template, l.TemplateSHA256, t.Name)
	}
	return t.Render(l.Values())
}

// Revocation withdraws one backend lock.
type Revocation struct {
	Created   string `json:"created"`
	Env       string `json:"env"`
	ID        string `json:"id"`
	Intent    string `json:"intent"`
	Kind      string `json:"kind"`
	Lock      string `json:"lock"` // SHA-256 of the lock file revoked
	Nonce     string `json:"nonce"`
	Reason    string `json:"reason"`
	Requester string `json:"requester"`
	Subject   string `json:"subject"` // "backend-lock"
	Version   int    `json:"version"` // the revoked lock's version
}

// SubjectBackendLock is what a backend lock revocation revokes.
const SubjectBackendLock = "backend-lock"

// NewRevocation makes an unsigned revocation of the lock with that SHA-256.
func NewRevocation(env, lockSHA string, version int, intentID, reason, requester string, now time.Time) (*Revocation, error) {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Second)
	r := &Revocation{
		Created: now.Format(time.RFC3339), Env: env, Intent: intentID, Kind: RevocationKind, Lock: lockSHA,
		Nonce: hex.EncodeToString(nonce[:]), Reason: reason, Requester: requester, Subject: SubjectBackendLock, Version: version,
		ID: now.Format("20060102T150405Z") + "-" + hex.EncodeToString(nonce[:4]),
	}
	return r, r.validate()
}

// Marshal returns the revocation file bytes.
func (r *Revocation) Marshal() ([]byte, error) { return record.MarshalFile(r) }

// ParseRevocation reads a revocation, refusing anything but its canonical
// bytes.
func ParseRevocation(file string, data []byte) (*Revocation, error) {
	var r Revocation
	if err := record.ParseFileOf(data, MaxSize, RevocationKind, &r, r.validate); err != nil {
		return nil, &MalformedError{file, err.Error()}
	}
	return &r, nil
}

func (r *Revocation) validate() error {
	switch {
	case !idRE.MatchString(r.ID) || !idRE.MatchString(r.Intent):
		return errors.New("bad id or intent id")
	case r.Subject != SubjectBackendLock:
		return fmt.Errorf("subject %q is not %s", r.Subject, SubjectBackendLock)
	case !hexRE.MatchString(r.Lock):
		return errors.New("bad lock sha256")
	case r.Version < 1:
		return errors.New("bad version")
	case len(r.Reason) < 10 || len(r.Reason) > 2000:
		return errors.New("a revocation needs a reason of 10 to 2000 characters")
	case r.Env == "" || r.Requester == "":
		return errors.New("no env or requester")
	}
	if _, err := time.Parse(time.RFC3339, r.Created); err != nil {
		return errors.New("bad created time")
	}
	return nil
}
