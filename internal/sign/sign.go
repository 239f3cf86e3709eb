// Package sign makes detached signatures with the operator's own keys,
// selected by a KEYSPEC:
//
//	gpg:<fingerprint-or-email>   the gpg program (agent, smartcard; honours GNUPGHOME)
//	ssh:<key-path>               ssh-keygen -Y sign (ssh-agent and FIDO keys; the path
//	                             may name the private key or, with an agent, the .pub)
//	file:<path>                  in process, from an unencrypted armored OpenPGP secret
//	                             key or an OpenSSH private key (for CI secrets)
//	awskms:<key-id-or-arn>[?region=R]
//	gcpkms:projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N
//	vault:<transit-key-name>[?mount=M]
//	                             an ECDSA P-256 key held in AWS KMS, Cloud KMS or a
//	                             Vault transit engine, signing SSHSIG (for CI identities)
//
// Without an explicit KEYSPEC, GROUNDZERO_KEY is used, then git's
// user.signingkey interpreted by gpg.format.
//
// Key material never appears in an error or a log.
package sign

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/sshsig"
)

// Spec is a parsed KEYSPEC.
type Spec struct {
	Kind  string // "gpg", "ssh", "file", "awskms", "gcpkms" or "vault"
	Value string
}

func (s Spec) String() string { return s.Kind + ":" + s.Value }

// Remote reports whether the key is held by a key service (a KMS or Vault
// transit), which may refuse to sign even though it hands out the public key.
func (s Spec) Remote() bool { return isKMS(s.Kind) }

// SpecError reports an unusable KEYSPEC.
type SpecError struct {
	Spec   string
	Reason string
}

func (e *SpecError) Error() string {
	if e.Spec == "" {
		return "no signing key: " + e.Reason
	}
	return fmt.Sprintf("key %q: %s", e.Spec, e.Reason)
}

// ParseSpec parses "gpg:…", "ssh:…", "file:…", "awskms:…", "gcpkms:…" or
// "vault:…".
func ParseSpec(s string) (Spec, error) {
	kind, val, ok := strings.Cut(s, ":")
	if !ok || val == "" {
		return Spec{}, &SpecError{Spec: s, Reason: "expected gpg:<fingerprint-or-email>, ssh:<key-path>, file:<path>, awskms:<key>, gcpkms:<key-version> or vault:<transit-key>"}
	}
	switch kind {
	case "gpg", "ssh", "file":
		return Spec{Kind: kind, Value: val}, nil
	case "awskms", "gcpkms", "vault":
		spec := Spec{Kind: kind, Value: val}
		if _, err := newKMSKey(spec); err != nil {
			return Spec{}, err
		}
		return spec, nil
	}
	return Spec{}, &SpecError{Spec: s, Reason: fmt.Sprintf("unknown kind %q; expected gpg:, ssh:, file:, awskms:, gcpkms: or vault:", kind)}
}

// Resolve picks the KEYSPEC: the flag value, else GROUNDZERO_KEY, else git's
// user.signingkey with gpg.format. gitConfig returns "" for an unset key.
func Resolve(flag string, getenv func(string) string, gitConfig func(string) string) (Spec, error) {
	if flag != "" {
		return ParseSpec(flag)
	}
	if v := getenv("GROUNDZERO_KEY"); v != "" {
		return ParseSpec(v)
	}
	key := gitConfig("user.signingkey")
	if key == "" {
		return Spec{}, &SpecError{Reason: "pass --key KEYSPEC, set GROUNDZERO_KEY, or set git's user.signingkey"}
	}
	switch format := gitConfig("gpg.format"); format {
	case "", "openpgp":
		return Spec{Kind: "gpg", Value: key}, nil
	case "ssh":
		if strings.HasPrefix(key, "key::") || strings.HasPrefix(key, "ssh-") {
			return Spec{}, &SpecError{Spec: key, Reason: "git's user.signingkey holds a literal key; point it at a key file, or pass --key ssh:<path>"}
		}
		return Spec{Kind: "ssh", Value: expandHome(key, getenv)}, nil
	default:
		return Spec{}, &SpecError{Spec: key, Reason: fmt.Sprintf("gpg.format %q is not supported; use openpgp or ssh", format)}
	}
}

func expandHome(p string, getenv func(string) string) string {
	if strings.HasPrefix(p, "~/") {
		return getenv("HOME") + p[1:]
	}
	return p
}

// Signer signs messages.
type Signer interface {
	// Sign returns one detached signature over message. namespace is used
	// by SSH signatures; OpenPGP signatures ignore it.
	Sign(ctx context.Context, message []byte, namespace string) (*signature.Signature, error)
	Scheme() signature.Scheme
}

// New returns the Signer for a spec. now is the signing time for in-process
// OpenPGP signatures.
func New(spec Spec, now func() time.Time) (Signer, error) {
	switch spec.Kind {
	case "gpg":
		return gpgSigner{id: spec.Value}, nil
	case "ssh":
		if _, err := os.Stat(spec.Value); err != nil {
			return nil, &SpecError{Spec: spec.String(), Reason: "key file not found"}
		}
		return sshKeygenSigner{path: spec.Value}, nil
	case "file":
		return newFileSigner(spec, now)
	case "awskms", "gcpkms", "vault":
		return newKMSSigner(spec)
	}
	return nil, &SpecError{Spec: spec.String(), Reason: "unknown kind"}
}

type gpgSigner struct{ id string }

func (gpgSigner) Scheme() signature.Scheme { return signature.OpenPGP }

func (g gpgSigner) Sign(ctx context.Context, message []byte, _ string) (*signature.Signature, error) {
	out, err := run(ctx, message, "gpg", "--batch", "--yes", "--armor", "--detach-sign",
		"--digest-algo", "SHA512", "--local-user", g.id, "--output", "-")
	if err != nil {
		return nil, &SpecError{Spec: "gpg:" + g.id, Reason: err.Error()}
	}
	return one(signature.OpenPGP, out, "gpg:"+g.id)
}

type sshKeygenSigner struct{ path string }

func (sshKeygenSigner) Scheme() signature.Scheme { return signature.SSH }

func (s sshKeygenSigner) Sign(ctx context.Context, message []byte, namespace string) (*signature.Signature, error) {
	out, err := run(ctx, message, "ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-f", s.path)
	if err != nil {
		return nil, &SpecError{Spec: "ssh:" + s.path, Reason: err.Error()}
	}
	return one(signature.SSH, out, "ssh:"+s.path)
}

func one(scheme signature.Scheme, out []byte, spec string) (*signature.Signature, error) {
	sigs, err := signature.Parse(scheme, out)
	if err != nil {
		return nil, &SpecError{Spec: spec, Reason: "signing tool produced an unreadable signature: " + err.Error()}
	}
	if len(sigs) != 1 {
		return nil, &SpecError{Spec: spec, Reason: fmt.Sprintf("signing tool produced %d signatures, want 1", len(sigs))}
	}
	return sigs[0], nil
}

// run executes a signing program, feeding message on stdin. Its stderr is
// reported only as its last line, which names the problem without echoing
// anything secret (the programs never print key material).
func run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(name); err != nil {
		return nil, fmt.Errorf("%s is not installed", name)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("%s failed: %s", name, msg)
	}
	return stdout.Bytes(), nil
}

const maxKeyFile = 1 << 20

func newFileSigner(spec Spec, now func() time.Time) (Signer, error) {
	f, err := os.Open(spec.Value)
	if err != nil {
		return nil, &SpecError{Spec: spec.String(), Reason: "cannot read key file"}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil || len(data) > maxKeyFile {
		return nil, &SpecError{Spec: spec.String(), Reason: "cannot read key file, or it is too large"}
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----")):
		el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(trimmed))
		if err != nil || len(el) != 1 || el[0].PrivateKey == nil {
			return nil, &SpecError{Spec: spec.String(), Reason: "not a single readable OpenPGP secret key"}
		}
		if el[0].PrivateKey.Encrypted {
			return nil, &SpecError{Spec: spec.String(), Reason: "the OpenPGP secret key is passphrase-protected; use gpg:<fingerprint> instead"}
		}
		return pgpFileSigner{entity: el[0], now: now}, nil
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")):
		s, err := ssh.ParsePrivateKey(trimmed)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, &SpecError{Spec: spec.String(), Reason: "the SSH key is passphrase-protected; use ssh:<path> with ssh-agent instead"}
		}
		if err != nil {
			return nil, &SpecError{Spec: spec.String(), Reason: "not a readable OpenSSH private key"}
		}
		return sshFileSigner{signer: s}, nil
	}
	return nil, &SpecError{Spec: spec.String(), Reason: "expected an armored OpenPGP secret key or an OpenSSH private key"}
}

type pgpFileSigner struct {
	entity *openpgp.Entity
	now    func() time.Time
}

func (pgpFileSigner) Scheme() signature.Scheme { return signature.OpenPGP }

func (p pgpFileSigner) Sign(_ context.Context, message []byte, _ string) (*signature.Signature, error) {
	var out bytes.Buffer
	cfg := &packet.Config{DefaultHash: crypto.SHA512, Time: p.now}
	if err := openpgp.ArmoredDetachSign(&out, []*openpgp.Entity{p.entity}, bytes.NewReader(message), &openpgp.SignParams{Config: cfg}); err != nil {
		return nil, &SpecError{Spec: "file:", Reason: "OpenPGP signing failed: " + err.Error()}
	}
	return one(signature.OpenPGP, out.Bytes(), "file:")
}

type sshFileSigner struct{ signer ssh.Signer }

func (sshFileSigner) Scheme() signature.Scheme { return signature.SSH }

func (s sshFileSigner) Sign(_ context.Context, message []byte, namespace string) (*signature.Signature, error) {
	sig, err := sshsig.Sign(s.signer, bytes.NewReader(message), namespace)
	if err != nil {
		return nil, &SpecError{Spec: "file:", Reason: "SSH signing failed: " + err.Error()}
	}
	return one(signature.SSH, sshsig.Armor(sig.Marshal()), "file:")
}

// Fingerprint returns the fingerprint of the key a spec names, in the form
// the signers registry records, without signing anything.
func Fingerprint(ctx context.Context, spec Spec) (string, error) {
	switch spec.Kind {
	case "gpg":
		out, err := run(ctx, nil, "gpg", "--batch", "--with-colons", "--fingerprint", spec.Value)
		if err != nil {
			return "", &SpecError{Spec: spec.String(), Reason: err.Error()}
		}
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
				return f[9], nil
			}
		}
		return "", &SpecError{Spec: spec.String(), Reason: "gpg knows no such key"}
	case "ssh":
		pub := spec.Value
		if !strings.HasSuffix(pub, ".pub") {
			pub += ".pub"
		}
		data, err := os.ReadFile(pub)
		if err != nil {
			return "", &SpecError{Spec: spec.String(), Reason: "cannot read the public key " + pub}
		}
		k, err := signature.ParsePublicKey(data)
		if err != nil {
			return "", &SpecError{Spec: spec.String(), Reason: err.Error()}
		}
		return k.Fingerprint, nil
	case "file":
		s, err := newFileSigner(spec, time.Now)
		if err != nil {
			return "", err
		}
		switch f := s.(type) {
		case pgpFileSigner:
			return fmt.Sprintf("%X", f.entity.PrimaryKey.Fingerprint), nil
		case sshFileSigner:
			return ssh.FingerprintSHA256(f.signer.PublicKey()), nil
		}
	case "awskms", "gcpkms", "vault":
		pub, err := PublicKey(ctx, spec)
		if err != nil {
			return "", err
		}
		return ssh.FingerprintSHA256(pub), nil
	}
	return "", &SpecError{Spec: spec.String(), Reason: "unknown kind"}
}
