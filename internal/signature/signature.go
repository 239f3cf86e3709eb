// Package signature reads, writes and checks the detached signatures that
// groundzero keeps beside signed files: OpenPGP signature packets in ".asc"
// files and OpenSSH SSHSIG blocks in ".sig" files.
//
// A signature file may carry several signatures, one per signer, so that many
// people can sign one artifact. An ".asc" file is one or more ASCII-armored
// "PGP SIGNATURE" blocks holding one or more signature packets each; `gpg
// --verify FILE.asc FILE` checks every packet. A ".sig" file is one or more
// armored SSHSIG blocks; `ssh-keygen -Y verify` checks one block at a time.
//
// Verification is pure Go and fails closed: any error from the underlying
// library rejects the signature, SHA-1 and weaker hashes are refused, and the
// signing key must be valid (not expired, not revoked) at the verification
// time the caller fixes, whatever creation time the signature claims. A
// caller may instead fix a time a trusted witness vouches for (VerifyAt);
// revocation still counts as of now.
//
// Keys are compared by their public key material, not their fingerprints
// (Material): an ed25519 key is the same key as an OpenPGP certificate and as
// an SSH key line.
package signature

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/sshsig"
)

// Limits on untrusted input.
const (
	MaxFileSize   = 1 << 20 // a signature or public key file
	MaxSignatures = 64      // signatures in one file
	MinRSABits    = 3072
	// ClockSkew is how far in the future a signature's creation time may lie.
	ClockSkew = 5 * time.Minute
)

// Scheme is a signature scheme.
type Scheme int

const (
	OpenPGP Scheme = iota + 1
	SSH
)

func (s Scheme) String() string {
	switch s {
	case OpenPGP:
		return "openpgp"
	case SSH:
		return "ssh"
	}
	return "unknown"
}

// Ext is the file extension that holds signatures of the scheme.
func (s Scheme) Ext() string {
	if s == SSH {
		return ".sig"
	}
	return ".asc"
}

// MalformedError reports input that is not a well-formed key or signature. It
// never echoes the input.
type MalformedError struct {
	What   string
	Reason string
}

func (e *MalformedError) Error() string { return fmt.Sprintf("malformed %s: %s", e.What, e.Reason) }

// KeyError reports a key that may not sign at the verification time.
type KeyError struct {
	Key    string // fingerprint
	Reason string // "expired", "revoked", "not valid yet", "weak"
}

func (e *KeyError) Error() string { return fmt.Sprintf("key %s is %s", e.Key, e.Reason) }

// BadSignatureError reports a signature that does not verify.
type BadSignatureError struct {
	Key    string
	Reason string
}

func (e *BadSignatureError) Error() string {
	return fmt.Sprintf("signature by key %s does not verify: %s", e.Key, e.Reason)
}

var rejectedHashes = map[crypto.Hash]bool{
	crypto.MD5: true, crypto.SHA1: true, crypto.RIPEMD160: true, crypto.SHA224: true,
}

func pgpConfig(now time.Time) *packet.Config {
	return &packet.Config{
		Time:                        func() time.Time { return now },
		MinRSABits:                  MinRSABits,
		RejectHashAlgorithms:        rejectedHashes,
		RejectMessageHashAlgorithms: rejectedHashes,
	}
}

// PublicKey is a verification key: an OpenPGP certificate or an SSH public key.
type PublicKey struct {
	Scheme      Scheme
	Fingerprint string // upper-case hex (OpenPGP) or "SHA256:…" (SSH)
	entity      *openpgp.Entity
	ssh         ssh.PublicKey
}

// Summary describes the key for people: scheme, algorithm and fingerprint.
func (k *PublicKey) Summary() string {
	if k.Scheme == SSH {
		return fmt.Sprintf("ssh %s %s", k.ssh.Type(), k.Fingerprint)
	}
	return fmt.Sprintf("openpgp %s", k.Fingerprint)
}

// SSHKey returns the SSH public key, or nil for an OpenPGP key.
func (k *PublicKey) SSHKey() ssh.PublicKey { return k.ssh }

var allowedSSHTypes = map[string]bool{
	ssh.KeyAlgoED25519:    true,
	ssh.KeyAlgoECDSA256:   true,
	ssh.KeyAlgoECDSA384:   true,
	ssh.KeyAlgoECDSA521:   true,
	ssh.KeyAlgoRSA:        true,
	ssh.KeyAlgoSKED25519:  true,
	ssh.KeyAlgoSKECDSA256: true,
}

// ParsePublicKey reads an armored OpenPGP public key (as `gpg --armor
// --export` writes it, one certificate) or one SSH public key line.
func ParsePublicKey(data []byte) (*PublicKey, error) {
	if len(data) > MaxFileSize {
		return nil, &MalformedError{"public key", fmt.Sprintf("larger than %d bytes", MaxFileSize)}
	}
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		return parseOpenPGPKey(trimmed)
	}
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----")) {
		return nil, &MalformedError{"public key", "this is a private key; export the public half with `gpg --armor --export`"}
	}
	if bytes.Contains(trimmed, []byte("PRIVATE KEY")) {
		return nil, &MalformedError{"public key", "this is a private key; give the .pub file instead"}
	}
	first, more, _ := bytes.Cut(trimmed, []byte("\n"))
	pub, _, options, rest, err := ssh.ParseAuthorizedKey(first)
	if err != nil {
		return nil, &MalformedError{"public key", "neither an armored OpenPGP public key nor an SSH public key line"}
	}
	if len(more) > 0 {
		return nil, &MalformedError{"public key", "an SSH public key file must hold exactly one key line"}
	}
	if len(options) > 0 || len(bytes.TrimSpace(rest)) > 0 {
		return nil, &MalformedError{"public key", "SSH key line carries options or trailing data"}
	}
	if _, isCert := pub.(*ssh.Certificate); isCert || !allowedSSHTypes[pub.Type()] {
		return nil, &MalformedError{"public key", fmt.Sprintf("SSH key type %s is not accepted (use ed25519, ecdsa, rsa >= %d bits, sk-ssh-ed25519 or sk-ecdsa)", pub.Type(), MinRSABits)}
	}
	if pub.Type() == ssh.KeyAlgoRSA {
		if bits := rsaBits(pub); bits < MinRSABits {
			return nil, &MalformedError{"public key", fmt.Sprintf("RSA key of %d bits is too short; at least %d are required", bits, MinRSABits)}
		}
	}
	return &PublicKey{Scheme: SSH, Fingerprint: ssh.FingerprintSHA256(pub), ssh: pub}, nil
}

func rsaBits(pub ssh.PublicKey) int {
	cpk, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return 0
	}
	type sizer interface{ Size() int }
	if s, ok := cpk.CryptoPublicKey().(sizer); ok {
		return s.Size() * 8
	}
	return 0
}

func parseOpenPGPKey(data []byte) (k *PublicKey, err error) {
	defer func() {
		if r := recover(); r != nil {
			k, err = nil, &MalformedError{"public key", "unparseable OpenPGP data"}
		}
	}()
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	if err != nil {
		return nil, &MalformedError{"public key", "unreadable OpenPGP public key"}
	}
	if len(el) != 1 {
		return nil, &MalformedError{"public key", fmt.Sprintf("file holds %d OpenPGP keys; export one person's key per file", len(el))}
	}
	e := el[0]
	if e.PrivateKey != nil {
		return nil, &MalformedError{"public key", "this is a private key; export the public half with `gpg --armor --export`"}
	}
	return &PublicKey{Scheme: OpenPGP, Fingerprint: fmt.Sprintf("%X", e.PrimaryKey.Fingerprint), entity: e}, nil
}

// Signature is one signature from a signature file.
type Signature struct {
	Scheme Scheme
	raw    []byte // one serialized OpenPGP signature packet, or one SSHSIG blob
	pgp    *packet.Signature
	ssh    *sshsig.Signature
}

// Issuer names the key that claims to have made the signature, for messages:
// an OpenPGP fingerprint or key ID, or an SSH key fingerprint.
func (s *Signature) Issuer() string {
	if s.Scheme == SSH {
		return ssh.FingerprintSHA256(s.ssh.PublicKey)
	}
	if len(s.pgp.IssuerFingerprint) > 0 {
		return fmt.Sprintf("%X", s.pgp.IssuerFingerprint)
	}
	if s.pgp.IssuerKeyId != nil {
		return fmt.Sprintf("%016X", *s.pgp.IssuerKeyId)
	}
	return "(no issuer)"
}

// Equal reports whether two signatures are byte-for-byte the same.
func (s *Signature) Equal(o *Signature) bool {
	return s.Scheme == o.Scheme && bytes.Equal(s.raw, o.raw)
}

// Parse reads a signature file of the given scheme.
func Parse(scheme Scheme, data []byte) ([]*Signature, error) {
	if len(data) > MaxFileSize {
		return nil, &MalformedError{"signature file", fmt.Sprintf("larger than %d bytes", MaxFileSize)}
	}
	switch scheme {
	case OpenPGP:
		return parseOpenPGP(data)
	case SSH:
		return parseSSH(data)
	}
	return nil, &MalformedError{"signature file", "unknown scheme"}
}

// SchemeOfFile picks the scheme from a signature file's name.
func SchemeOfFile(name string) (Scheme, bool) {
	switch {
	case strings.HasSuffix(name, ".asc"):
		return OpenPGP, true
	case strings.HasSuffix(name, ".sig"):
		return SSH, true
	}
	return 0, false
}

func parseSSH(data []byte) ([]*Signature, error) {
	blobs, err := sshsig.Unarmor(data, MaxSignatures)
	if err != nil {
		return nil, &MalformedError{"SSH signature file", strings.TrimPrefix(err.Error(), sshsig.ErrMalformed.Error()+": ")}
	}
	sigs := make([]*Signature, 0, len(blobs))
	for _, b := range blobs {
		s, err := sshsig.Parse(b)
		if err != nil {
			return nil, &MalformedError{"SSH signature", strings.TrimPrefix(err.Error(), sshsig.ErrMalformed.Error()+": ")}
		}
		sigs = append(sigs, &Signature{Scheme: SSH, raw: b, ssh: s})
	}
	return sigs, nil
}

const (
	pgpBegin = "-----BEGIN PGP SIGNATURE-----"
	pgpEnd   = "-----END PGP SIGNATURE-----"
)

// ArmorBlocks splits text into its armored blocks of the given type, refusing
// any other non-blank text.
func armorBlocks(data []byte, begin, end string) ([][]byte, error) {
	var blocks [][]byte
	start := -1
	off := 0
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		t := strings.TrimRight(string(line), "\r\n \t")
		switch {
		case start < 0 && t == "":
		case start < 0 && t == begin:
			start = off
		case start < 0:
			return nil, errors.New("unexpected text outside a signature block")
		case t == end:
			blocks = append(blocks, data[start:off+len(line)])
			start = -1
		}
		off += len(line)
	}
	if start >= 0 {
		return nil, errors.New("missing " + end)
	}
	if len(blocks) == 0 {
		return nil, errors.New("no signature block")
	}
	return blocks, nil
}

func parseOpenPGP(data []byte) (sigs []*Signature, err error) {
	defer func() {
		if r := recover(); r != nil {
			sigs, err = nil, &MalformedError{"OpenPGP signature file", "unparseable OpenPGP data"}
		}
	}()
	blocks, err := armorBlocks(data, pgpBegin, pgpEnd)
	if err != nil {
		return nil, &MalformedError{"OpenPGP signature file", err.Error()}
	}
	for _, blk := range blocks {
		b, err := armor.Decode(bytes.NewReader(blk))
		if err != nil || b.Type != "PGP SIGNATURE" {
			return nil, &MalformedError{"OpenPGP signature file", "bad armor"}
		}
		body, err := io.ReadAll(io.LimitReader(b.Body, MaxFileSize+1))
		if err != nil || len(body) > MaxFileSize {
			return nil, &MalformedError{"OpenPGP signature file", "bad armor body or checksum"}
		}
		br := bytes.NewReader(body)
		for br.Len() > 0 {
			startLen := br.Len()
			// packet.Read consumes exactly one packet, so the reader's
			// remaining length marks where the packet's bytes end.
			p, err := packet.Read(br)
			if err != nil {
				return nil, &MalformedError{"OpenPGP signature", "unreadable signature packet"}
			}
			sig, ok := p.(*packet.Signature)
			if !ok {
				return nil, &MalformedError{"OpenPGP signature file", fmt.Sprintf("holds a %T packet; only signature packets are allowed", p)}
			}
			used := startLen - br.Len()
			off := len(body) - startLen
			raw := append([]byte(nil), body[off:off+used]...)
			if len(sigs) == MaxSignatures {
				return nil, &MalformedError{"OpenPGP signature file", fmt.Sprintf("more than %d signatures", MaxSignatures)}
			}
			sigs = append(sigs, &Signature{Scheme: OpenPGP, raw: raw, pgp: sig})
		}
	}
	if len(sigs) == 0 {
		return nil, &MalformedError{"OpenPGP signature file", "no signature packets"}
	}
	return sigs, nil
}

// Format writes signatures of one scheme as a signature file: for OpenPGP one
// armored block holding every packet, for SSH one armored block per signature.
func Format(sigs []*Signature) ([]byte, error) {
	if len(sigs) == 0 {
		return nil, errors.New("no signatures to write")
	}
	scheme := sigs[0].Scheme
	var out bytes.Buffer
	switch scheme {
	case SSH:
		for _, s := range sigs {
			if s.Scheme != SSH {
				return nil, errors.New("mixed signature schemes")
			}
			out.Write(sshsig.Armor(s.raw))
		}
	case OpenPGP:
		// With the CRC-24 line: GnuPG 2.2 reads an armor body that ends
		// without '=' padding and without a checksum line into the END
		// line ("invalid radix64 character"), so one signature in three
		// would not verify with stock gpg.
		w, err := armor.EncodeWithChecksumOption(&out, "PGP SIGNATURE", nil, true)
		if err != nil {
			return nil, err
		}
		for _, s := range sigs {
			if s.Scheme != OpenPGP {
				return nil, errors.New("mixed signature schemes")
			}
			if _, err := w.Write(s.raw); err != nil {
				return nil, err
			}
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		out.WriteString("\n")
	}
	return out.Bytes(), nil
}

// Merge adds the signatures in add to those in have, dropping exact duplicates
// and any earlier signature by the same key, so re-signing replaces.
func Merge(have, add []*Signature) []*Signature {
	out := append([]*Signature(nil), have...)
	for _, a := range add {
		dup := false
		for i, h := range out {
			if h.Equal(a) {
				dup = true
				break
			}
			if h.Scheme == a.Scheme && h.Issuer() == a.Issuer() {
				out[i] = a
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

// Matches reports whether s claims to be made by k (by any of its subkeys).
func (k *PublicKey) Matches(s *Signature) bool {
	if k.Scheme != s.Scheme {
		return false
	}
	if k.Scheme == SSH {
		return bytes.Equal(k.ssh.Marshal(), s.ssh.PublicKey.Marshal())
	}
	if len(s.pgp.IssuerFingerprint) > 0 {
		if bytes.Equal(k.entity.PrimaryKey.Fingerprint, s.pgp.IssuerFingerprint) {
			return true
		}
		for _, sk := range k.entity.Subkeys {
			if bytes.Equal(sk.PublicKey.Fingerprint, s.pgp.IssuerFingerprint) {
				return true
			}
		}
		return false
	}
	if s.pgp.IssuerKeyId == nil {
		return false
	}
	id := *s.pgp.IssuerKeyId
	if k.entity.PrimaryKey.KeyId == id {
		return true
	}
	for _, sk := range k.entity.Subkeys {
		if sk.PublicKey.KeyId == id {
			return true
		}
	}
	return false
}

// Verify checks that s is a valid signature by k over message, at time now.
// namespace applies to SSH signatures; OpenPGP signatures carry no namespace
// and must bind their purpose inside the signed payload.
func (k *PublicKey) Verify(message []byte, s *Signature, namespace string, now time.Time) error {
	return k.verify(message, s, namespace, now)
}

// VerifyAt checks s as Verify does, but judges the key's expiry (and any
// other time-bound validity) at time at rather than now. at must be a time
// that someone other than the signer vouches for, such as the time a trusted
// audit checkpoint first recorded the signed data; it is never the creation
// time the signature claims. The signature may not claim a creation time
// after at, and a revocation of the certificate or of the signing subkey in
// effect now refuses it whatever at is: revocation is hard.
func (k *PublicKey) VerifyAt(message []byte, s *Signature, namespace string, at, now time.Time) error {
	if at.After(now) {
		return &KeyError{Key: k.Fingerprint, Reason: "judged at " + at.UTC().Format(time.RFC3339) + ", after the verification time"}
	}
	if err := k.verify(message, s, namespace, at); err != nil {
		return err
	}
	if k.revokedFor(s, now) {
		return &KeyError{Key: k.Fingerprint, Reason: "revoked"}
	}
	return nil
}

// Revoked reports whether the OpenPGP certificate carries a key revocation
// in effect at now (a revocation for compromise, or without a reason, is in
// effect at all times). SSH keys carry no revocations: the registry revokes
// them.
func (k *PublicKey) Revoked(now time.Time) (revoked bool) {
	if k.Scheme != OpenPGP {
		return false
	}
	defer func() {
		if r := recover(); r != nil {
			revoked = true // fail closed on unverifiable revocation data
		}
	}()
	return k.entity.Revoked(now)
}

// revokedFor reports whether the certificate, or the subkey that s names as
// its issuer, is revoked at now.
func (k *PublicKey) revokedFor(s *Signature, now time.Time) (revoked bool) {
	if k.Scheme != OpenPGP {
		return false
	}
	defer func() {
		if r := recover(); r != nil {
			revoked = true
		}
	}()
	if k.entity.Revoked(now) {
		return true
	}
	for i := range k.entity.Subkeys {
		sk := &k.entity.Subkeys[i]
		issued := len(s.pgp.IssuerFingerprint) > 0 && bytes.Equal(sk.PublicKey.Fingerprint, s.pgp.IssuerFingerprint) ||
			len(s.pgp.IssuerFingerprint) == 0 && s.pgp.IssuerKeyId != nil && sk.PublicKey.KeyId == *s.pgp.IssuerKeyId
		if issued && sk.Revoked(nil, now) {
			return true
		}
	}
	return false
}

func (k *PublicKey) verify(message []byte, s *Signature, namespace string, now time.Time) (err error) {
	if !k.Matches(s) {
		return &BadSignatureError{Key: k.Fingerprint, Reason: "made by another key (" + s.Issuer() + ")"}
	}
	if k.Scheme == SSH {
		if err := sshsig.Verify(k.ssh, bytes.NewReader(message), s.ssh, namespace); err != nil {
			return &BadSignatureError{Key: k.Fingerprint, Reason: strings.TrimPrefix(err.Error(), "SSH signature: ")}
		}
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = &BadSignatureError{Key: k.Fingerprint, Reason: "unverifiable OpenPGP data"}
		}
	}()
	sig := s.pgp
	if sig.SigType != packet.SigTypeBinary {
		return &BadSignatureError{Key: k.Fingerprint, Reason: fmt.Sprintf("signature type 0x%02x is not a binary document signature", uint8(sig.SigType))}
	}
	if rejectedHashes[sig.Hash] {
		return &BadSignatureError{Key: k.Fingerprint, Reason: "signature uses the weak hash " + sig.Hash.String()}
	}
	if sig.CreationTime.After(now.Add(ClockSkew)) {
		return &BadSignatureError{Key: k.Fingerprint, Reason: "signature claims a creation time in the future"}
	}
	cfg := pgpConfig(now)
	if _, err := k.entity.VerifyPrimaryKey(now, cfg); err != nil {
		return &KeyError{Key: k.Fingerprint, Reason: keyReason(err)}
	}
	var keyID uint64
	if sig.IssuerKeyId != nil {
		keyID = *sig.IssuerKeyId
	}
	if _, ok := k.entity.SigningKeyById(now, keyID, cfg); !ok {
		return &KeyError{Key: k.Fingerprint, Reason: "not valid for signing now (its signing subkey is expired, revoked or weak)"}
	}
	// go-crypto counts a signature made after its clock as expired; one
	// made within ClockSkew after now (gpg stamps the signing moment, which
	// can be a second past a command's fixed time) is judged at its own
	// creation time. The key's validity above stays judged at now.
	sigCfg := cfg
	if sig.CreationTime.After(now) {
		sigCfg = pgpConfig(sig.CreationTime)
	}
	_, _, verr := openpgp.VerifyDetachedSignature(openpgp.EntityList{k.entity}, bytes.NewReader(message), bytes.NewReader(s.raw), sigCfg)
	if verr != nil {
		if errors.Is(verr, pgperrors.ErrKeyExpired) || errors.Is(verr, pgperrors.ErrKeyRevoked) {
			return &KeyError{Key: k.Fingerprint, Reason: keyReason(verr)}
		}
		return &BadSignatureError{Key: k.Fingerprint, Reason: pgpReason(verr)}
	}
	return nil
}

func keyReason(err error) string {
	switch {
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return "expired"
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return "revoked"
	}
	var weak pgperrors.WeakAlgorithmError
	if errors.As(err, &weak) {
		return "weak (" + string(weak) + ")"
	}
	return "not valid now (" + err.Error() + ")"
}

func pgpReason(err error) string {
	switch {
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return "the signature has expired"
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return "unknown issuer"
	}
	msg := err.Error()
	if strings.Contains(msg, "hash") {
		return msg
	}
	return "signature does not match the data (" + msg + ")"
}
