// Package backend is the remote state store an environment's OpenTofu state
// lives in: which kind it is (explicit selection), the backend.tf rendered
// for it from an embedded, checksummed template, the capability probe a
// store must pass before it is accepted, and the findings of a verification
// against the live store.
//
// The kinds' control planes (bucket, lock table, encryption key) are in the
// subpackages s3 (AWS S3 and the S3-compatible kinds: MinIO, DigitalOcean
// Spaces, OCI Object Storage's compatibility endpoint), gcs, oci and vault;
// each implements Store over the cloud's official SDK.
package backend

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Kinds of backend. Spaces, MinIO and OCI's compatibility endpoint are S3
// configurations.
const (
	KindS3     = "s3"
	KindGCS    = "gcs"
	KindOCI    = "oci"
	KindSpaces = "spaces"
	KindMinIO  = "minio"
	KindLocal  = "local"
)

// Kinds lists every kind.
var Kinds = []string{KindS3, KindGCS, KindOCI, KindSpaces, KindMinIO, KindLocal}

// S3API reports whether OpenTofu reaches the kind through its s3 backend.
func S3API(kind string) bool {
	return kind == KindS3 || kind == KindMinIO || kind == KindSpaces || kind == KindOCI
}

// Key providers: the key that encrypts the bucket and, through OpenTofu's
// state encryption, the state itself.
const (
	KeyAWSKMS   = "aws_kms"   // AWS KMS (kind s3)
	KeyGCPKMS   = "gcp_kms"   // Google Cloud KMS (kind gcs)
	KeyOCIVault = "oci_vault" // OCI Vault (kind oci): encrypts the bucket
	KeyOpenBao  = "openbao"   // HashiCorp Vault / OpenBao transit
	KeyPBKDF2   = "pbkdf2"    // a passphrase (MinIO, Spaces, OCI)
	KeyNone     = "none"      // the store's own encryption only
)

// KeyProviders lists, for each kind, the key providers it accepts; the first
// is the default.
var KeyProviders = map[string][]string{
	KindS3:     {KeyAWSKMS, KeyOpenBao},
	KindGCS:    {KeyGCPKMS, KeyOpenBao, KeyNone}, // none: Google-managed keys
	KindOCI:    {KeyOCIVault, KeyOpenBao, KeyPBKDF2},
	KindSpaces: {KeyNone, KeyPBKDF2, KeyOpenBao},
	KindMinIO:  {KeyNone, KeyPBKDF2, KeyOpenBao},
	KindLocal:  {KeyNone, KeyPBKDF2},
}

// Lock methods.
const (
	LockFile     = "lockfile" // OpenTofu's use_lockfile: S3 conditional writes
	LockDynamoDB = "dynamodb" // a DynamoDB table (kind s3 only)
	LockNative   = "native"   // the backend's own locking (gcs, oci native)
)

// Spec is the state store policy.yaml selects for one environment.
type Spec struct {
	Kind     string
	Env      string
	Bucket   string
	Prefix   string // key prefix; the state key is Prefix/Env/terraform.tfstate
	Region   string
	Endpoint string // S3-compatible or custom endpoint; "" for the cloud's own
	// Project is the GCP project; Namespace and Compartment locate OCI
	// Object Storage.
	Project     string
	Namespace   string
	Compartment string
	Lock        string // LockFile, LockDynamoDB or LockNative
	LockTable   string // DynamoDB table for LockDynamoDB
	Key         Key
	// Versioning turns on object versions (the caller's default is on;
	// off needs a waiver of the versioning probe).
	Versioning bool
	// Encrypt renders OpenTofu's state encryption block, enforced.
	Encrypt bool
	Tags    map[string]string
	Replica *Replica // replication to a second region, when asked for
	// Path is the state file of kind local, relative to the configuration
	// directory.
	Path string
}

// Key is the encryption key of the state store.
type Key struct {
	Provider string // one of the Key* constants
	// Name is what the key is created as: an alias (alias/NAME) in AWS KMS,
	// KEYRING/KEY in Cloud KMS, a display name in OCI Vault, a transit key
	// name in Vault/OpenBao.
	Name string
	// ID is the identifier provisioning gave the key: an ARN, a Cloud KMS
	// resource name, an OCID, a transit path. It goes into the lock.
	ID string
	// Address is the Vault/OpenBao address, or OCI Vault's management
	// endpoint; Location is the Cloud KMS location.
	Address  string
	Location string
	Mount    string // Vault/OpenBao transit mount (default "transit")
	// Vault is the OCID of the OCI vault the key lives in.
	Vault        string
	RotationDays int
}

// Replica is the second region the bucket replicates to.
type Replica struct {
	Region string
	Bucket string
	// Role is the IAM role ARN S3 replicates as (kind s3).
	Role string
	// Key is the KMS key ARN, in the replica's region, that replicas of
	// SSE-KMS objects are encrypted with; S3 does not replicate SSE-KMS
	// objects without one.
	Key string
}

// StateKey is the object key of the environment's state ("" for kind
// local, whose state is a file: Path).
func (s *Spec) StateKey() string {
	if s.Kind == KindLocal {
		return ""
	}
	if s.Prefix == "" {
		return s.Env + "/terraform.tfstate"
	}
	return strings.Trim(s.Prefix, "/") + "/" + s.Env + "/terraform.tfstate"
}

// Validate checks that the spec is complete for its kind.
func (s *Spec) Validate() error {
	if !slices.Contains(Kinds, s.Kind) {
		return fmt.Errorf("backend kind %q is not one of %s", s.Kind, strings.Join(Kinds, ", "))
	}
	if s.Kind != KindLocal && s.Bucket == "" {
		return fmt.Errorf("backend kind %s needs a bucket", s.Kind)
	}
	p := s.Key.Provider
	if p == "" {
		p = KeyProviders[s.Kind][0]
	}
	if !slices.Contains(KeyProviders[s.Kind], p) {
		return fmt.Errorf("key provider %s does not serve backend kind %s (it takes %s)", p, s.Kind, strings.Join(KeyProviders[s.Kind], ", "))
	}
	switch {
	case s.Lock == LockDynamoDB && s.Kind != KindS3:
		return fmt.Errorf("a DynamoDB lock table serves backend kind s3 only")
	case s.Lock == LockDynamoDB && s.LockTable == "":
		return fmt.Errorf("lock: dynamodb needs lock_table")
	case s.Kind == KindGCS && s.Project == "":
		return fmt.Errorf("backend kind gcs needs a project")
	case s.Kind == KindOCI && (s.Namespace == "" || s.Compartment == ""):
		return fmt.Errorf("backend kind oci needs namespace and compartment")
	case (s.Kind == KindMinIO || s.Kind == KindSpaces) && s.Endpoint == "" && s.Kind == KindMinIO:
		return fmt.Errorf("backend kind minio needs an endpoint")
	case s.Kind == KindLocal && s.Encrypt:
		return fmt.Errorf("backend kind local keeps plain state: state encryption needs a remote store")
	case p == KeyOpenBao && s.Key.Address == "":
		return fmt.Errorf("key provider openbao needs key.address (the Vault/OpenBao URL)")
	case p == KeyGCPKMS && s.Key.Location == "":
		return fmt.Errorf("key provider gcp_kms needs key.location")
	case p == KeyOCIVault && s.Key.Vault == "":
		return fmt.Errorf("key provider oci_vault needs key.vault (the vault's OCID)")
	}
	return nil
}

// Call is one control-plane call, kept in the audit trail: the service and
// operation, the request ID the cloud answered with, and the identifier of
// the resource it concerned.
type Call struct {
	Service   string `json:"service"`
	Operation string `json:"operation"`
	RequestID string `json:"request_id,omitempty"`
	Resource  string `json:"resource,omitempty"`
	// Outcome: "created", "exists" (nothing to do), "updated", "read",
	// "missing" (a lookup found nothing), "unsupported" (the store does not
	// implement the operation: 501), "written", "refused" and "deleted"
	// (the probe's own objects), "failed".
	Outcome string `json:"outcome"`
}

// Capabilities the probe checks.
const (
	ProbeConditionalWrite      = "conditional_write"              // If-None-Match: * refuses an existing key
	ProbeConditionalAfterMark  = "conditional_write_after_delete" // and creates a key whose newest version is a delete marker
	ProbeVersioning            = "versioning"
	ProbeEncryption            = "encryption"  // default encryption is on
	ProbeObjectLock            = "object_lock" // the bucket has Object Lock (optional for state)
	ProbeCreateTags            = "create_tags" // tags given at creation are kept
	ProbePublicAccessBlock     = "public_access_block"
	ProbeConditionalWriteRaces = "conditional_write_race"
)

// Probes lists the capabilities in the order the probe reports them.
var Probes = []string{ProbeConditionalWrite, ProbeConditionalAfterMark, ProbeVersioning, ProbeEncryption, ProbeObjectLock, ProbeCreateTags, ProbePublicAccessBlock}

// DefaultRequired are the probes a store must pass unless policy.yaml says
// otherwise.
var DefaultRequired = []string{ProbeConditionalWrite, ProbeConditionalAfterMark, ProbeVersioning, ProbeEncryption, ProbeCreateTags}

// ProbeResult is one capability's outcome.
type ProbeResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Finding is one way the live store departs from what the lock records.
type Finding struct {
	Check    string `json:"check"`    // versioning, encryption, key, public_access, tls_policy, replication, lock_table, key_rotation, bucket, tags
	Resource string `json:"resource"` // the bucket, key or table concerned
	Detail   string `json:"detail"`
}

func (f Finding) String() string { return f.Check + ": " + f.Resource + ": " + f.Detail }

// Provisioned is what Create made or found.
type Provisioned struct {
	Bucket string // the bucket's identifier (ARN, self link, OCID, URL)
	Key    string // the key's identifier, "" when the kind has none
	Lock   string // the lock table's identifier, "" for lockfile/native
	Calls  []Call
}

// Store is one kind's control plane.
type Store interface {
	// Create makes the key, the bucket and the lock, or finds them made:
	// running it again changes nothing and duplicates nothing.
	Create(ctx context.Context) (*Provisioned, error)
	// Probe checks what the store does; the bucket must exist.
	Probe(ctx context.Context) ([]ProbeResult, []Call, error)
	// Verify compares the live store with the spec and the key identifier
	// the lock records.
	Verify(ctx context.Context, keyID string) ([]Finding, []Call, error)
}

// Tags returns the spec's tags in name order (deterministic requests).
func (s *Spec) SortedTags() [][2]string {
	var out [][2]string
	for k, v := range s.Tags {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}
