package signature_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/keyfixture"
	"github.com/groundzero/groundzero/internal/signature"
)

// T2, T31: one ed25519 key, made in process, is one key material in every
// form: an OpenPGP certificate with the legacy EdDSA algorithm (v4), one with
// the RFC 9580 Ed25519 algorithm (v6), an ssh-ed25519 line and an
// sk-ssh-ed25519 line; each has its own fingerprint.
func TestMaterialEd25519AcrossFormats(t *testing.T) {
	k := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{})
	want := fmt.Sprintf("ed25519:%x", []byte(ed25519.NewKeyFromSeed(k.Seed).Public().(ed25519.PublicKey)))
	forms := []struct {
		name string
		data []byte
	}{
		{"OpenPGP v4 EdDSA", k.PGPArmor},
		{"OpenPGP v6 Ed25519", k.PGPv6Armor},
		{"ssh-ed25519", k.SSHLine},
		{"sk-ssh-ed25519", k.SKLine},
	}
	fprs := map[string]string{}
	for _, f := range forms {
		pk := mustKey(t, f.data)
		m := pk.Material()
		if len(m) == 0 || m[0] != want {
			t.Errorf("ParsePublicKey(%s).Material() = %q, want %q first", f.name, m, want)
		}
		if other, dup := fprs[pk.Fingerprint]; dup {
			t.Errorf("%s and %s share fingerprint %s; the test wants distinct fingerprints", f.name, other, pk.Fingerprint)
		}
		fprs[pk.Fingerprint] = f.name
	}
	// SSH keys hold one key; the certificates add their encryption subkey
	// (legacy ECDH on Curve25519 for v4, X25519 for v6), named as x25519.
	if m := mustKey(t, k.SSHLine).Material(); !reflect.DeepEqual(m, []string{want}) {
		t.Errorf("ssh-ed25519 Material() = %q, want [%s]", m, want)
	}
	for _, f := range forms[:2] {
		m := mustKey(t, f.data).Material()
		if len(m) != 2 || !strings.HasPrefix(m[1], "x25519:") || len(m[1]) != len("x25519:")+64 {
			t.Errorf("%s Material() = %q, want the primary key and one x25519 subkey", f.name, m)
		}
	}
	// Another key is other material.
	other := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{})
	if m := mustKey(t, other.SSHLine).Material(); slices.Contains(mustKey(t, k.PGPArmor).Material(), m[0]) {
		t.Errorf("Material() of two different keys share %s", m[0])
	}
}

// GnuPG and OpenSSH agree: a gpg key exported with `gpg --export-ssh-key` is
// the same material as the certificate `gpg --armor --export` writes, for
// ed25519, NIST P-256 and RSA keys.
func TestMaterialGPGExportSSH(t *testing.T) {
	g := keyfixture.NewGPG(t)
	for _, tc := range []struct{ algo, prefix string }{
		{"ed25519", "ed25519:"},
		{"nistp256", "ecdsa:P-256:04"},
		{"nistp384", "ecdsa:P-384:04"},
		{"rsa3072", "rsa:"},
	} {
		email := tc.algo + "@example.test"
		fpr, pub := g.Generate(t, tc.algo, email, keyfixture.KeyOpts{Algo: tc.algo})
		cert := mustKey(t, pub)
		line := g.ExportSSH(t, fpr)
		sshKey := mustKey(t, line)
		cm, sm := cert.Material(), sshKey.Material()
		if len(sm) != 1 || !strings.HasPrefix(sm[0], tc.prefix) {
			t.Errorf("%s: ssh Material() = %q, want one identity starting %q", tc.algo, sm, tc.prefix)
			continue
		}
		if len(cm) == 0 || cm[0] != sm[0] {
			t.Errorf("%s: OpenPGP Material() = %q, want %s first (the SSH form of the same key)", tc.algo, cm, sm[0])
		}
		if cert.Fingerprint == sshKey.Fingerprint {
			t.Errorf("%s: fingerprints agree (%s); the test wants them to differ", tc.algo, cert.Fingerprint)
		}
	}
}

// gpg's default key has a signing primary and an encryption subkey: Material
// names both, and a subkey is compared like a primary key.
func TestMaterialSubkeys(t *testing.T) {
	g := keyfixture.NewGPG(t)
	g.Run(t, nil, "--quick-gen-key", "Sub <sub@example.test>", "ed25519", "sign", "never")
	fpr := g.Fingerprint(t, "sub@example.test")
	g.Run(t, nil, "--quick-add-key", fpr, "ed25519", "sign", "never")
	g.Run(t, nil, "--quick-add-key", fpr, "cv25519", "encr", "never")
	m := mustKey(t, g.Run(t, nil, "--armor", "--export", fpr)).Material()
	if len(m) != 3 || !strings.HasPrefix(m[0], "ed25519:") || !strings.HasPrefix(m[1], "ed25519:") || !strings.HasPrefix(m[2], "x25519:") {
		t.Fatalf("Material() of a key with a signing and an encryption subkey = %q, want ed25519, ed25519, x25519", m)
	}
	// The signing subkey, exported alone in SSH form, is found in the certificate.
	subFpr := ""
	for _, line := range strings.Split(string(g.Run(t, nil, "--with-colons", "--with-subkey-fingerprints", "--list-keys", fpr)), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 && f[9] != fpr && subFpr == "" {
			subFpr = f[9]
		}
	}
	if subFpr == "" {
		t.Fatal("no subkey fingerprint listed")
	}
	sm := mustKey(t, g.ExportSSH(t, subFpr)).Material()
	if !slices.Contains(m[1:], sm[0]) {
		t.Errorf("subkey in SSH form Material() = %q, want one of %q", sm, m[1:])
	}
}

// ssh-keygen's keys name the material of the private key they came from.
func TestMaterialSSHKeygen(t *testing.T) {
	dir := t.TempDir()
	for _, kt := range []struct {
		typ  string
		bits int
	}{{"ed25519", 0}, {"ecdsa", 256}, {"ecdsa", 521}, {"rsa", 3072}} {
		key := keyfixture.NewSSHKey(t, dir, fmt.Sprintf("%s%d", kt.typ, kt.bits), kt.typ, kt.bits)
		raw, err := os.ReadFile(key.Private)
		if err != nil {
			t.Fatal(err)
		}
		priv, err := ssh.ParseRawPrivateKey(raw)
		if err != nil {
			t.Fatal(err)
		}
		var want string
		switch p := priv.(type) {
		case *ed25519.PrivateKey:
			want = fmt.Sprintf("ed25519:%x", []byte(p.Public().(ed25519.PublicKey)))
		case *ecdsa.PrivateKey:
			e, _ := p.PublicKey.ECDH()
			want = fmt.Sprintf("ecdsa:%s:%x", p.Curve.Params().Name, e.Bytes())
		case *rsa.PrivateKey:
			want = fmt.Sprintf("rsa:%x:%d", p.N.Bytes(), p.E)
		default:
			t.Fatalf("ssh-keygen %s: private key %T", kt.typ, priv)
		}
		if got := mustKey(t, key.PublicLine(t)).Material(); !reflect.DeepEqual(got, []string{want}) {
			t.Errorf("ssh-keygen %s-%d Material() = %q, want [%s]", kt.typ, kt.bits, got, want)
		}
	}
}

// T16, T17: a key that expired is refused now, though its signature claims
// a creation time when the key was valid; judged at a time a witness vouches
// for, inside its lifetime, it passes; at a witnessed time before the
// signature claims to exist, or after the expiry, it does not.
func TestVerifyAtExpiredKey(t *testing.T) {
	created := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	k := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{Created: created, Lifetime: time.Hour})
	pk := mustKey(t, k.PGPArmor)
	signedAt := created.Add(10 * time.Minute)
	sig := mustSigs(t, signature.OpenPGP, keyfixture.SignPGP(t, k.PGP, msg, signedAt))[0]
	now := time.Now()

	var ke *signature.KeyError
	if err := pk.Verify(msg, sig, "", now); !errors.As(err, &ke) || ke.Reason != "expired" {
		t.Fatalf("Verify(backdated signature by expired key, now) = %v, want KeyError expired", err)
	}
	if err := pk.VerifyAt(msg, sig, "", created.Add(20*time.Minute), now); err != nil {
		t.Errorf("VerifyAt(at inside the key's lifetime) = %v, want nil", err)
	}
	if err := pk.VerifyAt(msg, sig, "", created.Add(2*time.Hour), now); !errors.As(err, &ke) || ke.Reason != "expired" {
		t.Errorf("VerifyAt(at after expiry) = %v, want KeyError expired", err)
	}
	var bad *signature.BadSignatureError
	if err := pk.VerifyAt(msg, sig, "", created.Add(time.Minute), now); !errors.As(err, &bad) || !strings.Contains(err.Error(), "future") {
		t.Errorf("VerifyAt(at before the claimed creation time) = %v, want BadSignatureError about the future", err)
	}
	if err := pk.VerifyAt(msg, sig, "", now.Add(time.Hour), now); err == nil {
		t.Error("VerifyAt(at after now) = nil, want an error")
	}
	if err := pk.VerifyAt(append(msg, 'x'), sig, "", created.Add(20*time.Minute), now); !errors.As(err, &bad) {
		t.Errorf("VerifyAt(other data) = %v, want BadSignatureError", err)
	}
}

// T16: revocation is hard. A key, or the subkey that signed, revoked for a
// soft reason after the witnessed time is not revoked at that time, but
// VerifyAt refuses it because it is revoked now.
func TestVerifyAtRevokedNow(t *testing.T) {
	created := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	witnessed := created.Add(time.Hour)
	revokedAt := created.Add(24 * time.Hour)
	now := time.Now()
	at := func(tm time.Time) *packet.Config { return &packet.Config{Time: func() time.Time { return tm }} }

	t.Run("certificate", func(t *testing.T) {
		k := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{Created: created})
		sig := mustSigs(t, signature.OpenPGP, keyfixture.SignPGP(t, k.PGP, msg, created.Add(time.Minute)))[0]
		if err := mustKey(t, k.PGPArmor).VerifyAt(msg, sig, "", witnessed, now); err != nil {
			t.Fatalf("VerifyAt before revocation = %v, want nil", err)
		}
		if err := k.PGP.Revoke(packet.KeyRetired, "retired", at(revokedAt)); err != nil {
			t.Fatal(err)
		}
		pk := mustKey(t, keyfixture.ArmorPublic(t, k.PGP))
		if !pk.Revoked(now) || pk.Revoked(witnessed) {
			t.Fatalf("Revoked(now), Revoked(witnessed) = %v, %v, want true, false (a soft revocation)", pk.Revoked(now), pk.Revoked(witnessed))
		}
		if err := pk.Verify(msg, sig, "", witnessed); err != nil {
			t.Fatalf("Verify(at the witnessed time) = %v, want nil: the revocation came later", err)
		}
		var ke *signature.KeyError
		if err := pk.VerifyAt(msg, sig, "", witnessed, now); !errors.As(err, &ke) || ke.Reason != "revoked" {
			t.Errorf("VerifyAt(witnessed before a later revocation) = %v, want KeyError revoked", err)
		}
	})

	t.Run("signing subkey", func(t *testing.T) {
		k := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{Created: created})
		if err := k.PGP.AddSigningSubkey(&packet.Config{Time: func() time.Time { return created }, Algorithm: packet.PubKeyAlgoEdDSA}); err != nil {
			t.Fatal(err)
		}
		sig := mustSigs(t, signature.OpenPGP, keyfixture.SignPGP(t, k.PGP, msg, created.Add(time.Minute)))[0]
		sub := &k.PGP.Subkeys[len(k.PGP.Subkeys)-1]
		if !bytes.Equal(sub.PublicKey.Fingerprint, issuerFingerprint(t, sig, k.PGP)) {
			t.Fatal("the signature was not made by the new signing subkey")
		}
		if err := sub.Revoke(packet.KeySuperseded, "superseded", at(revokedAt)); err != nil {
			t.Fatal(err)
		}
		pk := mustKey(t, keyfixture.ArmorPublic(t, k.PGP))
		if pk.Revoked(now) {
			t.Fatal("Revoked(now) = true for a certificate whose primary key is not revoked")
		}
		subM := fmt.Sprintf("ed25519:%x", sub.PublicKey.PublicKey.(*eddsa.PublicKey).X)
		if !slices.Contains(pk.Material(), subM) {
			t.Errorf("Material() = %q, want the signing subkey's %s among them", pk.Material(), subM)
		}
		var ke *signature.KeyError
		if err := pk.VerifyAt(msg, sig, "", witnessed, now); !errors.As(err, &ke) || ke.Reason != "revoked" {
			t.Errorf("VerifyAt(subkey revoked later) = %v, want KeyError revoked", err)
		}
	})
}

// issuerFingerprint returns the fingerprint of the certificate's key that the
// signature names as its issuer.
func issuerFingerprint(t *testing.T, sig *signature.Signature, e *openpgp.Entity) []byte {
	t.Helper()
	issuer := sig.Issuer()
	if fmt.Sprintf("%X", e.PrimaryKey.Fingerprint) == issuer {
		return e.PrimaryKey.Fingerprint
	}
	for _, sk := range e.Subkeys {
		if fmt.Sprintf("%X", sk.PublicKey.Fingerprint) == issuer {
			return sk.PublicKey.Fingerprint
		}
	}
	t.Fatalf("signature issuer %s is not in the certificate", issuer)
	return nil
}

// SSH keys carry no revocations of their own.
func TestSSHKeyNeverRevoked(t *testing.T) {
	k := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{})
	if mustKey(t, k.SSHLine).Revoked(time.Now()) {
		t.Error("Revoked(now) = true for an SSH key")
	}
}
