package signature_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/sshsig"
)

var fuzzMessage = []byte("governance/MANIFEST  fuzz seed\n")

// pgpSeed returns an armored OpenPGP signature made in process with the RFC
// 9580 sample v6 secret key.
func pgpSeed(f *testing.F) []byte {
	f.Helper()
	s, err := sign.New(sign.Spec{Kind: "file", Value: "testdata/rfc9580/v6-secret.asc"}, time.Now)
	if err != nil {
		f.Fatal(err)
	}
	sig, err := s.Sign(context.Background(), fuzzMessage, "")
	if err != nil {
		f.Fatal(err)
	}
	out, err := signature.Format([]*signature.Signature{sig})
	if err != nil {
		f.Fatal(err)
	}
	return out
}

func newSSHSigner(tb testing.TB) ssh.Signer {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// sshSeed returns an armored SSHSIG made in process with a fresh ed25519 key.
func sshSeed(f *testing.F, s ssh.Signer) []byte {
	f.Helper()
	sig, err := sshsig.Sign(s, bytes.NewReader(fuzzMessage), "groundzero")
	if err != nil {
		f.Fatal(err)
	}
	return sshsig.Armor(sig.Marshal())
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// checkRoundTrip is the property every signature file parser keeps: malformed
// input is a *MalformedError, and what parses formats to a file that parses
// to the same signatures.
func checkRoundTrip(t *testing.T, scheme signature.Scheme, data []byte) {
	sigs, err := signature.Parse(scheme, data)
	if err != nil {
		var me *signature.MalformedError
		if !errors.As(err, &me) {
			t.Fatalf("Parse(%v, %q) error = %T %v, want *MalformedError", scheme, data, err, err)
		}
		if sigs != nil {
			t.Fatalf("Parse(%v, %q) = %d signatures and an error", scheme, data, len(sigs))
		}
		return
	}
	if len(sigs) == 0 || len(sigs) > signature.MaxSignatures {
		t.Fatalf("Parse(%v, %q) = %d signatures, want 1 to %d", scheme, data, len(sigs), signature.MaxSignatures)
	}
	for i, s := range sigs {
		if s.Scheme != scheme {
			t.Fatalf("Parse(%v, %q)[%d].Scheme = %v", scheme, data, i, s.Scheme)
		}
		_ = s.Issuer() // must not panic
	}
	out, err := signature.Format(sigs)
	if err != nil {
		t.Fatalf("Format(Parse(%v, %q)) = %v", scheme, data, err)
	}
	again, err := signature.Parse(scheme, out)
	if err != nil {
		t.Fatalf("Parse(Format(Parse(%v, %q))) = %v\nFormat = %q", scheme, data, err, out)
	}
	if len(again) != len(sigs) {
		t.Fatalf("Parse(Format(Parse(%v, %q))) = %d signatures, want %d\nFormat = %q", scheme, data, len(again), len(sigs), out)
	}
	for i := range sigs {
		if !again[i].Equal(sigs[i]) {
			t.Fatalf("Parse(Format(Parse(%v, %q)))[%d] differs from the original", scheme, data, i)
		}
	}
	if out2, err := signature.Format(again); err != nil || !bytes.Equal(out2, out) {
		t.Fatalf("Format(Parse(Format(sigs))) = %q, %v, want %q", out2, err, out)
	}
}

func FuzzParseOpenPGP(f *testing.F) {
	pgp := pgpSeed(f)
	f.Add(pgp)
	f.Add(concat(pgp, pgp))
	f.Add(concat([]byte("\n\n"), pgp, []byte("\n")))
	if sigs, err := signature.Parse(signature.OpenPGP, concat(pgp, pgpSeed(f))); err == nil {
		one, _ := signature.Format(sigs) // two packets in one block
		f.Add(one)
	}
	if clear, err := os.ReadFile("testdata/rfc9580/cleartext-sig.asc"); err == nil {
		f.Add(clear)
	}
	f.Add(pgp[:len(pgp)/2])
	f.Add(bytes.Replace(pgp, []byte("SIGNATURE"), []byte("MESSAGE"), 2))
	f.Add(sshSeed(f, newSSHSigner(f)))
	f.Add([]byte("-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n"))
	f.Add([]byte("-----BEGIN PGP SIGNATURE-----\n\nwsA=\n-----END PGP SIGNATURE-----\n"))
	f.Add([]byte("junk"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRoundTrip(t, signature.OpenPGP, data)
	})
}

func FuzzParseSSH(f *testing.F) {
	s1, s2 := newSSHSigner(f), newSSHSigner(f)
	a, b := sshSeed(f, s1), sshSeed(f, s2)
	f.Add(a)
	f.Add(concat(a, b))
	f.Add(concat(a, []byte("\n\n"), b))
	f.Add(bytes.ReplaceAll(a, []byte("\n"), []byte("\r\n")))
	f.Add(a[:len(a)/2])
	f.Add(concat([]byte("text\n"), a))
	f.Add(pgpSeed(f))
	f.Add([]byte("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"))
	f.Add([]byte("-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----\n"))
	f.Add([]byte("junk"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRoundTrip(t, signature.SSH, data)
	})
}

func FuzzParsePublicKey(f *testing.F) {
	cert, err := os.ReadFile("testdata/rfc9580/v6-cert.asc")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cert)
	f.Add(cert[:len(cert)/2])
	f.Add(concat(cert, cert))
	if secret, err := os.ReadFile("testdata/rfc9580/v6-secret.asc"); err == nil {
		f.Add(secret)
	}
	line := ssh.MarshalAuthorizedKey(newSSHSigner(f).PublicKey())
	f.Add(line)
	f.Add(bytes.TrimSpace(line))
	f.Add(concat(line, line))
	f.Add(concat([]byte(`command="x" `), line))
	f.Add(concat(bytes.TrimSpace(line), []byte(" alice@example.test trailing\n")))
	f.Add([]byte("ssh-ed25519 AAAA"))
	f.Add([]byte("-----BEGIN OPENSSH PRIVATE KEY-----\n"))
	f.Add([]byte("junk"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := signature.ParsePublicKey(data)
		if err != nil {
			var me *signature.MalformedError
			if !errors.As(err, &me) {
				t.Fatalf("ParsePublicKey(%q) error = %T %v, want *MalformedError", data, err, err)
			}
			if k != nil {
				t.Fatalf("ParsePublicKey(%q) = %v and an error", data, k)
			}
			return
		}
		if k.Fingerprint == "" || (k.Scheme != signature.OpenPGP && k.Scheme != signature.SSH) {
			t.Fatalf("ParsePublicKey(%q) = scheme %v, fingerprint %q", data, k.Scheme, k.Fingerprint)
		}
		if (k.Scheme == signature.SSH) != (k.SSHKey() != nil) {
			t.Fatalf("ParsePublicKey(%q): scheme %v with SSHKey %v", data, k.Scheme, k.SSHKey())
		}
		_ = k.Summary()
		again, err := signature.ParsePublicKey(data)
		if err != nil || again.Fingerprint != k.Fingerprint {
			t.Fatalf("ParsePublicKey(%q) twice = %v, %v, want fingerprint %s again", data, again, err, k.Fingerprint)
		}
	})
}
