package sign

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"regexp"
	"strings"
	"sync"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/sshsig"
)

// Signing keys held in a cloud KMS or a Vault transit engine sign SSHSIG
// signatures with an ecdsa-sha2-nistp256 key: the key never leaves the
// service, and the signer's identity in the registry is the key's SSH
// public key, fetched from the service (PublicKey prints it).
//
//	awskms:<key-id-or-arn>[?region=R]   AWS KMS, key spec ECC_NIST_P256
//	gcpkms:projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N
//	                                    Cloud KMS, algorithm EC_SIGN_P256_SHA256
//	vault:<key-name>[?mount=M]          Vault transit, key type ecdsa-p256;
//	                                    VAULT_ADDR and VAULT_TOKEN from the
//	                                    environment
//
// Every signature is checked against the fetched public key before it is
// returned, so a service that signs with another key, or over other data,
// is refused rather than written.

// kmsKey is a P-256 signing key held in a service.
type kmsKey interface {
	// publicKey fetches the public key and checks that it is a P-256
	// signing key.
	publicKey(ctx context.Context) (*ecdsa.PublicKey, error)
	// sign signs data (the SSHSIG signed-data blob) with ECDSA P-256 over
	// SHA-256(data) and returns the DER signature.
	sign(ctx context.Context, data []byte) ([]byte, error)
	// requests lists the calls made so far.
	requests() []Request
}

// Request is one call made to a KMS, as it may be recorded: the operation,
// the key and the service's request ID. It never holds a secret.
type Request struct {
	Service   string `json:"service"`
	Operation string `json:"operation"`
	Key       string `json:"key"`
	RequestID string `json:"request_id,omitempty"`
}

// Requests returns the calls a KMS signer made so far, nil for other
// signers.
func Requests(s Signer) []Request {
	if k, ok := s.(*kmsSigner); ok {
		return k.key.requests()
	}
	return nil
}

func isKMS(kind string) bool { return kind == "awskms" || kind == "gcpkms" || kind == "vault" }

func newKMSKey(spec Spec) (kmsKey, error) {
	switch spec.Kind {
	case "awskms":
		return newAWSKey(spec)
	case "gcpkms":
		return newGCPKey(spec)
	case "vault":
		return newVaultKey(spec, os.Getenv)
	}
	return nil, &SpecError{Spec: spec.String(), Reason: "unknown kind"}
}

// kmsSigner signs with a key held in a service.
type kmsSigner struct {
	spec string
	key  kmsKey

	mu  sync.Mutex
	pub ssh.PublicKey // fetched once
}

// kmsSigners holds one signer per KEYSPEC for the life of the process, so
// that the key whose fingerprint was looked up in the registry is the key
// that signs: an alias moved, or a key rotated, in between cannot slip
// another key's signature under a registered signer's name.
var kmsSigners sync.Map // KEYSPEC → *kmsSigner

func newKMSSigner(spec Spec) (*kmsSigner, error) {
	if v, ok := kmsSigners.Load(spec.String()); ok {
		return v.(*kmsSigner), nil
	}
	k, err := newKMSKey(spec)
	if err != nil {
		return nil, err
	}
	v, _ := kmsSigners.LoadOrStore(spec.String(), &kmsSigner{spec: spec.String(), key: k})
	return v.(*kmsSigner), nil
}

func (*kmsSigner) Scheme() signature.Scheme { return signature.SSH }

// PublicKey fetches the key's SSH public key, once; every later signature
// must verify with it.
func (k *kmsSigner) PublicKey(ctx context.Context) (ssh.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pub != nil {
		return k.pub, nil
	}
	ec, err := k.key.publicKey(ctx)
	if err != nil {
		return nil, k.fail(err)
	}
	pub, err := ssh.NewPublicKey(ec)
	if err != nil {
		return nil, &SpecError{Spec: k.spec, Reason: "the public key is not usable as an SSH key"}
	}
	k.pub = pub
	return pub, nil
}

func (k *kmsSigner) Sign(ctx context.Context, message []byte, namespace string) (*signature.Signature, error) {
	pub, err := k.PublicKey(ctx)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	sig, err := sshsig.Sign(kmsSSHSigner{ctx: ctx, k: k, pub: pub}, bytes.NewReader(message), namespace)
	if err != nil {
		return nil, k.fail(err)
	}
	// The service's answer is trusted no further than it verifies: a
	// signature by another key, or over other data, is never written.
	if err := sshsig.Verify(pub, bytes.NewReader(message), sig, namespace); err != nil {
		return nil, &SpecError{Spec: k.spec, Reason: "the KMS returned a signature that does not verify with the key's public key " + ssh.FingerprintSHA256(pub)}
	}
	return one(signature.SSH, sshsig.Armor(sig.Marshal()), k.spec)
}

// fail turns an error into a SpecError naming the key, without secrets.
func (k *kmsSigner) fail(err error) error {
	var se *SpecError
	if errors.As(err, &se) {
		return err
	}
	return &SpecError{Spec: k.spec, Reason: scrubSecrets(err.Error(), os.Getenv)}
}

// kmsSSHSigner is the ssh.Signer sshsig.Sign calls: it has the service
// sign the signed-data blob and converts the DER signature to SSH's form.
type kmsSSHSigner struct {
	ctx context.Context
	k   *kmsSigner
	pub ssh.PublicKey
}

func (s kmsSSHSigner) PublicKey() ssh.PublicKey { return s.pub }

func (s kmsSSHSigner) Sign(_ io.Reader, data []byte) (*ssh.Signature, error) {
	der, err := s.k.key.sign(s.ctx, data)
	if err != nil {
		return nil, err
	}
	blob, err := sshECDSASignature(der)
	if err != nil {
		return nil, err
	}
	return &ssh.Signature{Format: ssh.KeyAlgoECDSA256, Blob: blob}, nil
}

// sshECDSASignature converts a DER ECDSA-Sig-Value (RFC 3279) to the SSH
// wire form, mpint r followed by mpint s (RFC 5656 §3.1.2). Anything but a
// single, minimally encoded SEQUENCE of two integers in [1, n-1] is refused.
func sshECDSASignature(der []byte) ([]byte, error) {
	var r, s big.Int
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() {
		return nil, errors.New("the KMS returned a signature that is not a DER ECDSA signature")
	}
	n := elliptic.P256().Params().N
	for _, v := range []*big.Int{&r, &s} {
		if v.Sign() <= 0 || v.Cmp(n) >= 0 {
			return nil, errors.New("the KMS returned an ECDSA signature out of range for P-256")
		}
	}
	return ssh.Marshal(struct{ R, S *big.Int }{&r, &s}), nil
}

// parseP256 parses a DER SubjectPublicKeyInfo and requires a P-256 key.
func parseP256(der []byte) (*ecdsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, errors.New("the KMS returned a public key that is not a DER SubjectPublicKeyInfo")
	}
	ec, ok := k.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("the key is not an ECDSA P-256 key; groundzero signs with P-256 keys (SSH ecdsa-sha2-nistp256)")
	}
	return ec, nil
}

// parseP256PEM parses a PEM "PUBLIC KEY" block and requires a P-256 key.
func parseP256PEM(text string) (*ecdsa.PublicKey, error) {
	b, rest := pem.Decode([]byte(text))
	if b == nil || b.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("the KMS returned a public key that is not one PEM PUBLIC KEY block")
	}
	return parseP256(b.Bytes)
}

// secretEnv names the variables whose values never appear in a message.
var secretEnv = []string{"VAULT_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GOOGLE_OAUTH_ACCESS_TOKEN"}

// bearerTokens matches credentials a client fetches itself and that are in
// no variable: Google OAuth access tokens and JWTs (OIDC ID tokens, signed
// assertions).
var bearerTokens = regexp.MustCompile(`ya29\.[A-Za-z0-9_.~+/=-]+|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)

// scrubSecrets replaces every secret the environment holds in s, and any
// bearer token, flattens it to one line and bounds it: a service's error
// text may echo a request header back.
func scrubSecrets(s string, getenv func(string) string) string {
	for _, k := range secretEnv {
		if v := getenv(k); len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "REDACTED")
		}
	}
	s = bearerTokens.ReplaceAllString(s, "REDACTED")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 512 {
		s = strings.ToValidUTF8(s[:512], "") + "…"
	}
	return s
}

// PublicKey returns the SSH public key of the key a spec names: fetched
// from the service for a KMS key, read from the .pub file for ssh:, from
// the private key for an SSH file:. OpenPGP keys have none.
func PublicKey(ctx context.Context, spec Spec) (ssh.PublicKey, error) {
	switch {
	case isKMS(spec.Kind):
		s, err := newKMSSigner(spec)
		if err != nil {
			return nil, err
		}
		return s.PublicKey(ctx)
	case spec.Kind == "ssh":
		pub := spec.Value
		if !strings.HasSuffix(pub, ".pub") {
			pub += ".pub"
		}
		data, err := os.ReadFile(pub)
		if err != nil {
			return nil, &SpecError{Spec: spec.String(), Reason: "cannot read the public key " + pub}
		}
		k, err := signature.ParsePublicKey(data)
		if err != nil {
			return nil, &SpecError{Spec: spec.String(), Reason: err.Error()}
		}
		return k.SSHKey(), nil
	case spec.Kind == "file":
		s, err := newFileSigner(spec, nil)
		if err != nil {
			return nil, err
		}
		if f, ok := s.(sshFileSigner); ok {
			return f.signer.PublicKey(), nil
		}
	}
	return nil, &SpecError{Spec: spec.String(), Reason: "an OpenPGP key has no SSH public key; export it with gpg --armor --export"}
}
