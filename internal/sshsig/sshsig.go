// Package sshsig implements OpenSSH's detached signature format, SSHSIG, as
// produced by `ssh-keygen -Y sign` and checked by `ssh-keygen -Y verify`.
//
// The format is specified in OpenSSH's PROTOCOL.sshsig. A signature blob is
//
//	byte[6]  "SSHSIG"
//	uint32   version (1)
//	string   public key (SSH wire encoding)
//	string   namespace
//	string   reserved (empty)
//	string   hash algorithm ("sha256" or "sha512")
//	string   signature (SSH wire encoding)
//
// and the signed data is
//
//	byte[6]  "SSHSIG"
//	string   namespace
//	string   reserved
//	string   hash algorithm
//	string   H(message)
//
// Armored, the blob is base64 between "-----BEGIN SSH SIGNATURE-----" and
// "-----END SSH SIGNATURE-----", wrapped at 70 columns as ssh-keygen writes it.
// A file may hold several armored blocks one after another, one per signer.
//
// The namespace binds a signature to its purpose: a signature made for one
// namespace never verifies in another. Verification refuses an empty namespace,
// SHA-1 RSA signatures ("ssh-rsa"), and a blob whose embedded key differs from
// the key it is checked against.
package sshsig

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"

	"golang.org/x/crypto/ssh"
)

const (
	magic        = "SSHSIG"
	version      = 1
	armorBegin   = "-----BEGIN SSH SIGNATURE-----"
	armorEnd     = "-----END SSH SIGNATURE-----"
	armorColumns = 70

	// MaxBlobSize bounds one decoded signature blob. The largest legitimate
	// blob (RSA-8192 key and signature) is well under 4 KiB.
	MaxBlobSize = 16 << 10
)

// Signature is one parsed SSHSIG blob.
type Signature struct {
	PublicKey ssh.PublicKey
	Namespace string
	HashAlg   string // "sha256" or "sha512"
	Sig       *ssh.Signature
}

// ErrMalformed reports a signature blob or armor that does not follow the format.
var ErrMalformed = errors.New("malformed SSH signature")

type wireSig struct {
	Magic     [6]byte
	Version   uint32
	PublicKey []byte
	Namespace string
	Reserved  string
	HashAlg   string
	Signature []byte
}

type signedData struct {
	Magic     [6]byte
	Namespace string
	Reserved  string
	HashAlg   string
	Hash      []byte
}

// Parse decodes a binary SSHSIG blob.
func Parse(blob []byte) (*Signature, error) {
	if len(blob) > MaxBlobSize {
		return nil, fmt.Errorf("%w: blob of %d bytes exceeds %d", ErrMalformed, len(blob), MaxBlobSize)
	}
	var w wireSig
	if err := ssh.Unmarshal(blob, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if string(w.Magic[:]) != magic {
		return nil, fmt.Errorf("%w: bad magic", ErrMalformed)
	}
	if w.Version != version {
		return nil, fmt.Errorf("%w: unsupported version %d", ErrMalformed, w.Version)
	}
	if w.Reserved != "" {
		return nil, fmt.Errorf("%w: reserved field is not empty", ErrMalformed)
	}
	pub, err := ssh.ParsePublicKey(w.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %v", ErrMalformed, err)
	}
	sig := new(ssh.Signature)
	if err := ssh.Unmarshal(w.Signature, sig); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	return &Signature{PublicKey: pub, Namespace: w.Namespace, HashAlg: w.HashAlg, Sig: sig}, nil
}

// Marshal encodes s as a binary SSHSIG blob.
func (s *Signature) Marshal() []byte {
	w := wireSig{
		Version:   version,
		PublicKey: s.PublicKey.Marshal(),
		Namespace: s.Namespace,
		HashAlg:   s.HashAlg,
		Signature: ssh.Marshal(s.Sig),
	}
	copy(w.Magic[:], magic)
	return ssh.Marshal(w)
}

// Armor encodes a blob in the armored text form, ending with a newline.
func Armor(blob []byte) []byte {
	var b bytes.Buffer
	b.WriteString(armorBegin + "\n")
	enc := base64.StdEncoding.EncodeToString(blob)
	for len(enc) > armorColumns {
		b.WriteString(enc[:armorColumns] + "\n")
		enc = enc[armorColumns:]
	}
	b.WriteString(enc + "\n")
	b.WriteString(armorEnd + "\n")
	return b.Bytes()
}

// Unarmor decodes every armored block in data, in order. Text outside the
// blocks other than blank lines is refused. max bounds the number of blocks.
func Unarmor(data []byte, max int) ([][]byte, error) {
	var blobs [][]byte
	lines := bytes.Split(data, []byte("\n"))
	in := false
	var body bytes.Buffer
	for i, raw := range lines {
		line := bytes.TrimRight(raw, "\r")
		switch {
		case !in && len(bytes.TrimSpace(line)) == 0:
			continue
		case !in && string(line) == armorBegin:
			in = true
			body.Reset()
		case !in:
			return nil, fmt.Errorf("%w: line %d: unexpected text outside a signature block", ErrMalformed, i+1)
		case string(line) == armorEnd:
			in = false
			blob, err := base64.StdEncoding.DecodeString(body.String())
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: bad base64: %v", ErrMalformed, i+1, err)
			}
			if len(blobs) == max {
				return nil, fmt.Errorf("%w: more than %d signatures", ErrMalformed, max)
			}
			blobs = append(blobs, blob)
		default:
			if body.Len()+len(line) > MaxBlobSize*2 {
				return nil, fmt.Errorf("%w: signature block too large", ErrMalformed)
			}
			body.Write(bytes.TrimSpace(line))
		}
	}
	if in {
		return nil, fmt.Errorf("%w: missing %s", ErrMalformed, armorEnd)
	}
	if len(blobs) == 0 {
		return nil, fmt.Errorf("%w: no signature block", ErrMalformed)
	}
	return blobs, nil
}

func hasher(alg string) (hash.Hash, error) {
	switch alg {
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unsupported hash algorithm %q", alg)
}

func toSign(message io.Reader, namespace, hashAlg string) ([]byte, error) {
	h, err := hasher(hashAlg)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(h, message); err != nil {
		return nil, err
	}
	d := signedData{Namespace: namespace, HashAlg: hashAlg, Hash: h.Sum(nil)}
	copy(d.Magic[:], magic)
	return ssh.Marshal(d), nil
}

// Sign signs message under namespace with SHA-512, as ssh-keygen does. RSA
// keys sign with rsa-sha2-512.
func Sign(signer ssh.Signer, message io.Reader, namespace string) (*Signature, error) {
	if namespace == "" {
		return nil, errors.New("sshsig: empty namespace")
	}
	data, err := toSign(message, namespace, "sha512")
	if err != nil {
		return nil, err
	}
	var sig *ssh.Signature
	if as, ok := signer.(ssh.AlgorithmSigner); ok && signer.PublicKey().Type() == ssh.KeyAlgoRSA {
		sig, err = as.SignWithAlgorithm(rand.Reader, data, ssh.KeyAlgoRSASHA512)
	} else {
		sig, err = signer.Sign(rand.Reader, data)
	}
	if err != nil {
		return nil, err
	}
	return &Signature{PublicKey: signer.PublicKey(), Namespace: namespace, HashAlg: "sha512", Sig: sig}, nil
}

// VerifyError says why a well-formed signature does not verify.
type VerifyError struct{ Reason string }

func (e *VerifyError) Error() string { return "SSH signature: " + e.Reason }

// Verify checks that sig is a signature by pub over message in namespace.
func Verify(pub ssh.PublicKey, message io.Reader, sig *Signature, namespace string) error {
	if namespace == "" {
		return &VerifyError{"empty namespace"}
	}
	if sig.Namespace != namespace {
		return &VerifyError{fmt.Sprintf("namespace is %q, want %q", sig.Namespace, namespace)}
	}
	if !bytes.Equal(sig.PublicKey.Marshal(), pub.Marshal()) {
		return &VerifyError{"made by a different key (" + ssh.FingerprintSHA256(sig.PublicKey) + ")"}
	}
	switch sig.Sig.Format {
	case ssh.KeyAlgoRSA:
		return &VerifyError{"ssh-rsa signatures use SHA-1 and are refused; re-sign with rsa-sha2-512"}
	case ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512:
		if pub.Type() != ssh.KeyAlgoRSA {
			return &VerifyError{"signature algorithm does not match the key"}
		}
	default:
		if sig.Sig.Format != pub.Type() {
			return &VerifyError{"signature algorithm does not match the key"}
		}
	}
	data, err := toSign(message, namespace, sig.HashAlg)
	if err != nil {
		return &VerifyError{err.Error()}
	}
	if err := pub.Verify(data, sig.Sig); err != nil {
		return &VerifyError{"signature does not match the data"}
	}
	return nil
}
