package signature_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/keyfixture"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/sshsig"
)

var msg = []byte("governance/policy.yaml  0123\n")

func mustKey(t *testing.T, data []byte) *signature.PublicKey {
	t.Helper()
	k, err := signature.ParsePublicKey(data)
	if err != nil {
		t.Fatalf("ParsePublicKey: %v", err)
	}
	return k
}

func mustSigs(t *testing.T, s signature.Scheme, data []byte) []*signature.Signature {
	t.Helper()
	sigs, err := signature.Parse(s, data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return sigs
}

func TestOpenPGPWithGPG(t *testing.T) {
	g := keyfixture.NewGPG(t)
	fpr, pub := g.Generate(t, "Alice", "alice@example.test", keyfixture.KeyOpts{})
	_, otherPub := g.Generate(t, "Bob", "bob@example.test", keyfixture.KeyOpts{})
	k := mustKey(t, pub)
	if k.Fingerprint != fpr {
		t.Fatalf("Fingerprint = %s, want %s", k.Fingerprint, fpr)
	}
	now := time.Now()
	sigs := mustSigs(t, signature.OpenPGP, g.DetachSign(t, fpr, msg))
	if len(sigs) != 1 {
		t.Fatalf("len(sigs) = %d, want 1", len(sigs))
	}
	// A signature made a moment after the verifier's fixed time (a command
	// that signs and then checks) is within the clock skew; one claiming
	// a time beyond it is refused.
	for _, c := range []struct {
		ahead time.Duration
		ok    bool
	}{{3 * time.Second, true}, {signature.ClockSkew + time.Minute, false}} {
		later := mustSigs(t, signature.OpenPGP, g.DetachSign(t, fpr, msg, "--faked-system-time", fmt.Sprintf("%d!", now.Add(c.ahead).Unix())))
		if err := k.Verify(msg, later[0], "", now); (err == nil) != c.ok {
			t.Errorf("a signature made %s after the fixed time: Verify = %v", c.ahead, err)
		}
	}
	if err := k.Verify(msg, sigs[0], "", now); err != nil {
		t.Fatalf("Verify good signature: %v", err)
	}
	tampered := append([]byte(nil), msg...)
	tampered[0] ^= 1
	var bad *signature.BadSignatureError
	if err := k.Verify(tampered, sigs[0], "", now); !errors.As(err, &bad) {
		t.Fatalf("Verify tampered = %v, want BadSignatureError", err)
	}
	other := mustKey(t, otherPub)
	if other.Matches(sigs[0]) {
		t.Fatal("Bob's key matches Alice's signature")
	}
	if err := other.Verify(msg, sigs[0], "", now); !errors.As(err, &bad) {
		t.Fatalf("Verify with wrong key = %v, want BadSignatureError", err)
	}
}

// T18: SHA-1 signatures are refused even from a valid key.
func TestOpenPGPRejectsSHA1(t *testing.T) {
	g := keyfixture.NewGPG(t)
	fpr, pub := g.Generate(t, "Alice", "alice@example.test", keyfixture.KeyOpts{})
	sigs := mustSigs(t, signature.OpenPGP, g.DetachSign(t, fpr, msg, "--digest-algo", "SHA1"))
	err := mustKey(t, pub).Verify(msg, sigs[0], "", time.Now())
	if err == nil || !strings.Contains(err.Error(), "SHA1") && !strings.Contains(err.Error(), "SHA-1") {
		t.Fatalf("Verify SHA-1 signature = %v, want weak hash error", err)
	}
}

// T16, T17: a key that has expired is refused now, though the signature was
// made while it was valid; a revoked key is refused at all times.
func TestOpenPGPExpiredAndRevoked(t *testing.T) {
	g := keyfixture.NewGPG(t)
	old := "20200101T000000"
	fpr, pub := g.Generate(t, "Old", "old@example.test", keyfixture.KeyOpts{Expire: "1d", FakeTime: old})
	sig := g.DetachSign(t, fpr, msg, "--faked-system-time", old+"!", "--ignore-time-conflict")
	k := mustKey(t, pub)
	sigs := mustSigs(t, signature.OpenPGP, sig)
	var ke *signature.KeyError
	if err := k.Verify(msg, sigs[0], "", time.Now()); !errors.As(err, &ke) || ke.Reason != "expired" {
		t.Fatalf("Verify by expired key = %v, want KeyError expired", err)
	}
	// Judged at the time the signature claims, it would pass: the claim is
	// not what counts.
	if err := k.Verify(msg, sigs[0], "", time.Date(2020, 1, 1, 1, 0, 0, 0, time.UTC)); err != nil {
		t.Fatalf("Verify at signing time: %v", err)
	}

	rfpr, _ := g.Generate(t, "Rev", "rev@example.test", keyfixture.KeyOpts{})
	rsig := g.DetachSign(t, rfpr, msg)
	revoked := mustKey(t, g.Revoke(t, rfpr))
	if err := revoked.Verify(msg, mustSigs(t, signature.OpenPGP, rsig)[0], "", time.Now()); !errors.As(err, &ke) || ke.Reason != "revoked" {
		t.Fatalf("Verify by revoked key = %v, want KeyError revoked", err)
	}
}

func TestOpenPGPFutureSignature(t *testing.T) {
	g := keyfixture.NewGPG(t)
	fpr, pub := g.Generate(t, "Alice", "alice@example.test", keyfixture.KeyOpts{})
	future := time.Now().Add(48 * time.Hour).UTC().Format("20060102T150405")
	sig := g.DetachSign(t, fpr, msg, "--faked-system-time", future+"!", "--ignore-time-conflict")
	err := mustKey(t, pub).Verify(msg, mustSigs(t, signature.OpenPGP, sig)[0], "", time.Now())
	if err == nil || !strings.Contains(err.Error(), "future") {
		t.Fatalf("Verify future signature = %v, want refusal", err)
	}
}

func TestOpenPGPRejectsShortRSA(t *testing.T) {
	g := keyfixture.NewGPG(t)
	fpr, pub := g.Generate(t, "Weak", "weak@example.test", keyfixture.KeyOpts{Algo: "rsa2048"})
	sig := g.DetachSign(t, fpr, msg)
	err := mustKey(t, pub).Verify(msg, mustSigs(t, signature.OpenPGP, sig)[0], "", time.Now())
	var ke *signature.KeyError
	if !errors.As(err, &ke) {
		t.Fatalf("Verify by RSA-2048 key = %v, want KeyError", err)
	}
}

// Several signers in one .asc file: groundzero writes one armored block that
// gpg --verify accepts, and Parse(Format(x)) gives x back.
func TestOpenPGPMultipleAndGPGInterop(t *testing.T) {
	g := keyfixture.NewGPG(t)
	a, apub := g.Generate(t, "Alice", "alice@example.test", keyfixture.KeyOpts{})
	b, bpub := g.Generate(t, "Bob", "bob@example.test", keyfixture.KeyOpts{})
	concat := append(g.DetachSign(t, a, msg), g.DetachSign(t, b, msg)...)
	sigs := mustSigs(t, signature.OpenPGP, concat)
	if len(sigs) != 2 {
		t.Fatalf("len(sigs) = %d, want 2", len(sigs))
	}
	out, err := signature.Format(sigs)
	if err != nil {
		t.Fatal(err)
	}
	again := mustSigs(t, signature.OpenPGP, out)
	if len(again) != 2 || !again[0].Equal(sigs[0]) || !again[1].Equal(sigs[1]) {
		t.Fatal("Parse(Format(sigs)) differs from sigs")
	}
	out2, _ := signature.Format(again)
	if !bytes.Equal(out, out2) {
		t.Fatal("Format is not stable")
	}
	for i, pub := range [][]byte{apub, bpub} {
		if err := mustKey(t, pub).Verify(msg, again[i], "", time.Now()); err != nil {
			t.Fatalf("Verify sig %d: %v", i, err)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "m"), msg, 0o644)
	os.WriteFile(filepath.Join(dir, "m.asc"), out, 0o644)
	status, err := g.Try(nil, "--status-fd", "1", "--verify", filepath.Join(dir, "m.asc"), filepath.Join(dir, "m"))
	if err != nil {
		t.Fatalf("gpg --verify: %v", err)
	}
	if n := strings.Count(string(status), "[GNUPG:] GOODSIG"); n != 2 {
		t.Fatalf("gpg --verify GOODSIG count = %d, want 2:\n%s", n, status)
	}
}

func TestParseRejects(t *testing.T) {
	g := keyfixture.NewGPG(t)
	fpr, pub := g.Generate(t, "Alice", "alice@example.test", keyfixture.KeyOpts{})
	sig := g.DetachSign(t, fpr, msg)
	cases := map[string][]byte{
		"empty":            nil,
		"garbage":          []byte("hello"),
		"text before":      append([]byte("note\n"), sig...),
		"public key block": pub,
		"truncated":        sig[:len(sig)/2],
		"huge":             bytes.Repeat([]byte("A"), signature.MaxFileSize+1),
	}
	for name, data := range cases {
		var me *signature.MalformedError
		if _, err := signature.Parse(signature.OpenPGP, data); !errors.As(err, &me) {
			t.Errorf("Parse(%s) = %v, want MalformedError", name, err)
		}
	}
	// T8: too many signatures.
	many := bytes.Repeat(sig, signature.MaxSignatures+1)
	if _, err := signature.Parse(signature.OpenPGP, many); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("Parse(65 signatures) = %v, want count error", err)
	}
}

// RFC 9580 Appendix A: the sample v6 certificate has the fingerprint the RFC
// states, its secret key signs in process, and the A.6 cleartext signature is
// intact but refused by groundzero as a text-mode signature.
func TestRFC9580Vectors(t *testing.T) {
	cert, _ := os.ReadFile("testdata/rfc9580/v6-cert.asc")
	k := mustKey(t, cert)
	const want = "CB186C4F0609A697E4D52DFA6C722B0C1F1E27C18A56708F6525EC27BAD9ACC9"
	if k.Fingerprint != want {
		t.Fatalf("v6 Fingerprint = %s, want %s", k.Fingerprint, want)
	}
	s, err := sign.New(sign.Spec{Kind: "file", Value: "testdata/rfc9580/v6-secret.asc"}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(context.Background(), msg, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Verify(msg, sig, "", time.Now()); err != nil {
		t.Fatalf("Verify v6 signature: %v", err)
	}
	if err := k.Verify(append(msg, 'x'), sig, "", time.Now()); err == nil {
		t.Fatal("v6 signature verified over other data")
	}

	clear, _ := os.ReadFile("testdata/rfc9580/cleartext-sig.asc")
	sigs := mustSigs(t, signature.OpenPGP, clear)
	text := []byte("What we need from the grocery store:\r\n\r\n- tofu\r\n- vegetables\r\n- noodles\r\n")
	at := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := k.Verify(text, sigs[0], "", at); err == nil || !strings.Contains(err.Error(), "binary document") {
		t.Fatalf("Verify text-mode signature = %v, want refusal", err)
	}
	el, _ := openpgp.ReadArmoredKeyRing(bytes.NewReader(cert))
	if _, _, err := openpgp.VerifyArmoredDetachedSignature(el, bytes.NewReader(text), bytes.NewReader(clear), nil); err != nil {
		t.Fatalf("the A.6 vector itself does not verify: %v", err)
	}
}

func TestSSHWithSSHKeygen(t *testing.T) {
	dir := t.TempDir()
	for _, kt := range []struct {
		typ  string
		bits int
	}{{"ed25519", 0}, {"ecdsa", 256}, {"ecdsa", 384}, {"ecdsa", 521}, {"rsa", 3072}} {
		name := kt.typ + string(rune('0'+kt.bits%10))
		key := keyfixture.NewSSHKey(t, dir, name+kt.typ, kt.typ, kt.bits)
		k := mustKey(t, key.PublicLine(t))
		sigs := mustSigs(t, signature.SSH, key.Sign(t, msg, "groundzero"))
		if err := k.Verify(msg, sigs[0], "groundzero", time.Now()); err != nil {
			t.Errorf("%s-%d: Verify: %v", kt.typ, kt.bits, err)
		}
		// T21: another namespace, or none, never verifies.
		for _, ns := range []string{"git", "groundzero.intent/v1", ""} {
			if err := k.Verify(msg, sigs[0], ns, time.Now()); err == nil {
				t.Errorf("%s-%d: Verify in namespace %q succeeded", kt.typ, kt.bits, ns)
			}
		}
		if err := k.Verify(append(msg, 'x'), sigs[0], "groundzero", time.Now()); err == nil {
			t.Errorf("%s-%d: Verify over other data succeeded", kt.typ, kt.bits)
		}
	}
}

// In-process SSH signatures are accepted by ssh-keygen -Y verify, with the
// allowed_signers principal and namespace it checks.
func TestSSHInteropWithSSHKeygenVerify(t *testing.T) {
	dir := t.TempDir()
	key := keyfixture.NewSSHKey(t, dir, "alice", "ed25519", 0)
	s, err := sign.New(sign.Spec{Kind: "file", Value: key.Private}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(context.Background(), msg, "groundzero")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := signature.Format([]*signature.Signature{sig})
	sigPath := filepath.Join(dir, "m.sig")
	os.WriteFile(sigPath, out, 0o644)
	allowed := filepath.Join(dir, "allowed_signers")
	os.WriteFile(allowed, append([]byte("alice "), key.PublicLine(t)...), 0o644)
	verify := func(principal, ns string) error {
		cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", principal, "-n", ns, "-s", sigPath)
		cmd.Stdin = bytes.NewReader(msg)
		if out, err := cmd.CombinedOutput(); err != nil {
			return errors.New(string(out))
		}
		return nil
	}
	if err := verify("alice", "groundzero"); err != nil {
		t.Fatalf("ssh-keygen -Y verify: %v", err)
	}
	if err := verify("bob", "groundzero"); err == nil {
		t.Fatal("ssh-keygen accepted the wrong principal")
	}
	if err := verify("alice", "git"); err == nil {
		t.Fatal("ssh-keygen accepted the wrong namespace")
	}
}

func TestSSHRejectsWeakKeysAndSHA1(t *testing.T) {
	dir := t.TempDir()
	short := keyfixture.NewSSHKey(t, dir, "short", "rsa", 2048)
	if _, err := signature.ParsePublicKey(short.PublicLine(t)); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Fatalf("ParsePublicKey(rsa-2048) = %v, want too short", err)
	}
	// An "ssh-rsa" (SHA-1) SSHSIG from an otherwise valid RSA-3072 key.
	rsaKey := keyfixture.NewSSHKey(t, dir, "rsa", "rsa", 3072)
	raw, _ := os.ReadFile(rsaKey.Private)
	signer, err := ssh.ParsePrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	good, err := sshsig.Sign(signer, bytes.NewReader(msg), "groundzero")
	if err != nil {
		t.Fatal(err)
	}
	// Re-sign the same SSHSIG body with SHA-1 RSA to build the downgrade.
	body := sshsigSignedData(t, msg, "groundzero")
	sha1sig, err := signer.(ssh.AlgorithmSigner).SignWithAlgorithm(rand.Reader, body, ssh.KeyAlgoRSA)
	if err != nil {
		t.Fatal(err)
	}
	good.Sig = sha1sig
	sigs := mustSigs(t, signature.SSH, sshsig.Armor(good.Marshal()))
	k := mustKey(t, rsaKey.PublicLine(t))
	if err := k.Verify(msg, sigs[0], "groundzero", time.Now()); err == nil || !strings.Contains(err.Error(), "SHA-1") {
		t.Fatalf("Verify ssh-rsa signature = %v, want SHA-1 refusal", err)
	}
}

func sshsigSignedData(t *testing.T, message []byte, ns string) []byte {
	t.Helper()
	h := sha512Sum(message)
	return ssh.Marshal(struct {
		Magic     [6]byte
		Namespace string
		Reserved  string
		HashAlg   string
		Hash      []byte
	}{[6]byte{'S', 'S', 'H', 'S', 'I', 'G'}, ns, "", "sha512", h})
}

// A security-key (sk-ssh-ed25519) signature, built the way a FIDO token
// signs: Ed25519 over SHA-256(application) || flags || counter || SHA-256(data).
// The user-presence flag is required.
func TestSSHSecurityKey(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	app := "ssh:"
	wire := ssh.Marshal(struct {
		Name        string
		KeyBytes    []byte
		Application string
	}{ssh.KeyAlgoSKED25519, pub, app})
	skPub, err := ssh.ParsePublicKey(wire)
	if err != nil {
		t.Fatal(err)
	}
	line := ssh.MarshalAuthorizedKey(skPub)
	k := mustKey(t, line)

	mk := func(flags byte) *signature.Signature {
		data := sshsigSignedData(t, msg, "groundzero")
		appH := sha256.Sum256([]byte(app))
		dataH := sha256.Sum256(data)
		counter := []byte{0, 0, 0, 7}
		signed := append(append(append(appH[:], flags), counter...), dataH[:]...)
		edSig := ed25519.Sign(priv, signed)
		s := &sshsig.Signature{PublicKey: skPub, Namespace: "groundzero", HashAlg: "sha512", Sig: &ssh.Signature{
			Format: ssh.KeyAlgoSKED25519, Blob: edSig, Rest: append([]byte{flags}, counter...),
		}}
		return mustSigs(t, signature.SSH, sshsig.Armor(s.Marshal()))[0]
	}
	if err := k.Verify(msg, mk(0x01), "groundzero", time.Now()); err != nil {
		t.Fatalf("Verify sk signature with user presence: %v", err)
	}
	if err := k.Verify(msg, mk(0x00), "groundzero", time.Now()); err == nil {
		t.Fatal("Verify sk signature without user presence succeeded")
	}
}

func TestSSHMultipleBlocksRoundTrip(t *testing.T) {
	dir := t.TempDir()
	a := keyfixture.NewSSHKey(t, dir, "a", "ed25519", 0)
	b := keyfixture.NewSSHKey(t, dir, "b", "ed25519", 0)
	data := append(a.Sign(t, msg, "groundzero"), b.Sign(t, msg, "groundzero")...)
	sigs := mustSigs(t, signature.SSH, data)
	if len(sigs) != 2 {
		t.Fatalf("len = %d, want 2", len(sigs))
	}
	out, _ := signature.Format(sigs)
	again := mustSigs(t, signature.SSH, out)
	if !again[0].Equal(sigs[0]) || !again[1].Equal(sigs[1]) {
		t.Fatal("round trip differs")
	}
	merged := signature.Merge(sigs[:1], sigs)
	if len(merged) != 2 {
		t.Fatalf("Merge kept %d, want 2", len(merged))
	}
}

// Whatever the length of the armored body, stock gpg reads the armor that
// groundzero writes: a body whose length is a multiple of three has no '='
// padding, and without a checksum line GnuPG 2.2 reads on into the END line.
// One, two and three signatures in a file give bodies of every length mod 3.
func TestFormatArmorAnyLengthGPG(t *testing.T) {
	g := keyfixture.NewGPG(t)
	var fprs []string
	for _, n := range []string{"alice", "bob", "carol"} {
		fpr, _ := g.Generate(t, n, n+"@example.test", keyfixture.KeyOpts{})
		fprs = append(fprs, fpr)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "m"), msg, 0o644)
	var all []*signature.Signature
	for _, fpr := range fprs {
		all = append(all, mustSigs(t, signature.OpenPGP, g.DetachSign(t, fpr, msg))...)
	}
	seen := map[int]bool{}
	for k := 1; k <= len(all); k++ {
		raw, err := signature.Format(all[:k])
		if err != nil {
			t.Fatal(err)
		}
		block, err := armor.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(block.Body)
		seen[len(body)%3] = true
		os.WriteFile(filepath.Join(dir, "m.asc"), raw, 0o644)
		status, err := g.Try(nil, "--status-fd", "1", "--verify", filepath.Join(dir, "m.asc"), filepath.Join(dir, "m"))
		if n := strings.Count(string(status), "[GNUPG:] GOODSIG"); err != nil || n != k {
			t.Errorf("gpg --verify of %d signature(s), a %d-byte body: %v, %d GOODSIG, want %d\n%s", k, len(body), err, n, k, status)
		}
	}
	t.Logf("body lengths mod 3 covered: %v", seen)
}
