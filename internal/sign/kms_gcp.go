package sign

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"

	cloudkms "google.golang.org/api/cloudkms/v1"
	"google.golang.org/api/option"
)

// gcpKey is a Cloud KMS key version of algorithm EC_SIGN_P256_SHA256,
// reached over the REST API with Application Default Credentials
// (GOOGLE_APPLICATION_CREDENTIALS, workload identity federation, the
// metadata server). Requests and answers carry CRC32C checksums, checked
// as Cloud KMS asks.
type gcpKey struct {
	name    string
	options []option.ClientOption // added to the client's; tests point it elsewhere
	svc     *cloudkms.ProjectsLocationsKeyRingsCryptoKeysCryptoKeyVersionsService
	calls   []Request
}

var gcpKeyVersion = regexp.MustCompile(`^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/locations/[a-z0-9-]+/keyRings/[A-Za-z0-9_-]{1,63}/cryptoKeys/[A-Za-z0-9_-]{1,63}/cryptoKeyVersions/[1-9][0-9]*$`)

// gcpClientOptions are added to every Cloud KMS client; tests set them.
var gcpClientOptions []option.ClientOption

var crc32c = crc32.MakeTable(crc32.Castagnoli)

func newGCPKey(spec Spec) (*gcpKey, error) {
	if !gcpKeyVersion.MatchString(spec.Value) {
		return nil, &SpecError{Spec: spec.String(), Reason: "expected gcpkms:projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N (a key version: asymmetric keys sign by version)"}
	}
	return &gcpKey{name: spec.Value, options: gcpClientOptions}, nil
}

func (k *gcpKey) connect(ctx context.Context) (*cloudkms.ProjectsLocationsKeyRingsCryptoKeysCryptoKeyVersionsService, error) {
	if k.svc != nil {
		return k.svc, nil
	}
	opts := append([]option.ClientOption{option.WithScopes(cloudkms.CloudkmsScope)}, k.options...)
	svc, err := cloudkms.NewService(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("Cloud KMS client: %v", err)
	}
	k.svc = cloudkms.NewProjectsLocationsKeyRingsCryptoKeysCryptoKeyVersionsService(svc)
	return k.svc, nil
}

func (k *gcpKey) requests() []Request { return k.calls }

func (k *gcpKey) record(op, requestID string) {
	k.calls = append(k.calls, Request{Service: "cloudkms", Operation: op, Key: k.name, RequestID: requestID})
}

func (k *gcpKey) publicKey(ctx context.Context) (*ecdsa.PublicKey, error) {
	svc, err := k.connect(ctx)
	if err != nil {
		return nil, err
	}
	out, err := svc.GetPublicKey(k.name).Context(ctx).Do()
	if err != nil {
		k.record("GetPublicKey", "")
		return nil, fmt.Errorf("Cloud KMS getPublicKey: %v", err)
	}
	k.record("GetPublicKey", out.Header.Get("X-Goog-Request-Id"))
	if out.Name != k.name {
		return nil, fmt.Errorf("Cloud KMS getPublicKey answered for %q, not %s", out.Name, k.name)
	}
	if out.Algorithm != "EC_SIGN_P256_SHA256" {
		return nil, fmt.Errorf("key version %s has algorithm %s; groundzero signs with EC_SIGN_P256_SHA256 keys (SSH ecdsa-sha2-nistp256)", k.name, out.Algorithm)
	}
	if out.PemCrc32c != 0 && int64(crc32.Checksum([]byte(out.Pem), crc32c)) != out.PemCrc32c {
		return nil, errors.New("Cloud KMS getPublicKey: the public key does not match its CRC32C checksum (corrupted in transit)")
	}
	return parseP256PEM(out.Pem)
}

func (k *gcpKey) sign(ctx context.Context, data []byte) ([]byte, error) {
	svc, err := k.connect(ctx)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(data)
	out, err := svc.AsymmetricSign(k.name, &cloudkms.AsymmetricSignRequest{
		Digest:       &cloudkms.Digest{Sha256: base64.StdEncoding.EncodeToString(digest[:])},
		DigestCrc32c: int64(crc32.Checksum(digest[:], crc32c)),
	}).Context(ctx).Do()
	if err != nil {
		k.record("AsymmetricSign", "")
		return nil, fmt.Errorf("Cloud KMS asymmetricSign: %v", err)
	}
	k.record("AsymmetricSign", out.Header.Get("X-Goog-Request-Id"))
	if out.Name != k.name {
		return nil, fmt.Errorf("Cloud KMS asymmetricSign answered for %q, not %s", out.Name, k.name)
	}
	if !out.VerifiedDigestCrc32c {
		return nil, errors.New("Cloud KMS asymmetricSign did not verify the digest's CRC32C checksum (corrupted in transit)")
	}
	sig, err := base64.StdEncoding.DecodeString(out.Signature)
	if err != nil {
		return nil, errors.New("Cloud KMS asymmetricSign: the signature is not base64")
	}
	if int64(crc32.Checksum(sig, crc32c)) != out.SignatureCrc32c {
		return nil, errors.New("Cloud KMS asymmetricSign: the signature does not match its CRC32C checksum (corrupted in transit)")
	}
	return sig, nil
}
