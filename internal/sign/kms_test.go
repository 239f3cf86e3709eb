package sign

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/sign/kmsfake"
	"github.com/groundzero/groundzero/internal/signature"
)

// Canaries: credentials that must never appear in any output or error (T26).
const (
	canaryAWSSecret  = "CANARYawsSECRETkey0000000000000000000000"
	canaryAWSSession = "CANARYawsSESSIONtoken000000000000"
	canaryVault      = "hvs.CANARYvaultTOKEN000000000000"
	canaryGCP        = "ya29.CANARYgcpACCESStoken000000000"
	testAccessKeyID  = "AKIATESTKMSSIGNER000"
)

var canaries = []string{canaryAWSSecret, canaryAWSSession, canaryVault, canaryGCP}

// isolate gives the test an environment free of ambient cloud settings,
// holding the canary credentials.
func isolate(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "GOOGLE_") || strings.HasPrefix(k, "VAULT_") || strings.HasPrefix(k, "CLOUDSDK_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           testAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       canaryAWSSecret,
		"AWS_SESSION_TOKEN":           canaryAWSSession,
		"AWS_CONFIG_FILE":             filepath.Join(dir, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "aws-credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"VAULT_TOKEN":                 canaryVault,
		"HOME":                        dir,
	} {
		t.Setenv(k, v)
	}
	kmsSigners.Clear()
	t.Cleanup(kmsSigners.Clear)
}

// noCanary fails the test when any canary is in text.
func noCanary(t *testing.T, what, text string) {
	t.Helper()
	for _, c := range canaries {
		if strings.Contains(text, c) {
			t.Errorf("%s holds a secret canary: %s", what, text)
		}
	}
}

// sshsigSignedData builds the SSHSIG signed data for message in namespace
// with SHA-512, as PROTOCOL.sshsig lays it out, independently of sshsig.
func sshsigSignedData(message []byte, namespace string) []byte {
	h := sha512.Sum512(message)
	var b bytes.Buffer
	b.WriteString("SSHSIG")
	for _, f := range [][]byte{[]byte(namespace), nil, []byte("sha512"), h[:]} {
		b.Write(ssh.Marshal(struct{ S []byte }{f})[:4])
		b.Write(f)
	}
	return b.Bytes()
}

// sshKeygenVerify checks sig with the real ssh-keygen -Y verify.
func sshKeygenVerify(t *testing.T, pub ssh.PublicKey, message []byte, sig *signature.Signature, namespace string) error {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Fatal("ssh-keygen is not installed: run `make deps`")
	}
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed_signers")
	line := "ci@example.test " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + "\n"
	if err := os.WriteFile(allowed, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	sigFile := filepath.Join(dir, "msg.sig")
	armored, err := signature.Format([]*signature.Signature{sig})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sigFile, armored, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "ci@example.test", "-n", namespace, "-s", sigFile)
	cmd.Stdin = bytes.NewReader(message)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return errors.New(strings.TrimSpace(string(out)))
	}
	return nil
}

// signAndCheck signs with spec and checks the signature with ssh-keygen in
// the right namespace (accepted) and a wrong one (refused), and that it is
// by the server's key.
func signAndCheck(t *testing.T, spec string, srv *kmsfake.Server) (Signer, []byte) {
	t.Helper()
	ctx := context.Background()
	sp, err := ParseSpec(spec)
	if err != nil {
		t.Fatalf("ParseSpec(%q) = %v", spec, err)
	}
	s, err := New(sp, nil)
	if err != nil {
		t.Fatalf("New(%q) = %v", spec, err)
	}
	msg := []byte("tree 42\norigin groundzero.test\n")
	const ns = "groundzero.checkpoint/v1"
	sig, err := s.Sign(ctx, msg, ns)
	if err != nil {
		t.Fatalf("Sign = %v", err)
	}
	want, err := ssh.NewPublicKey(&srv.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if sig.Scheme != signature.SSH {
		t.Fatalf("Sign scheme = %v, want SSH", sig.Scheme)
	}
	if err := sshKeygenVerify(t, want, msg, sig, ns); err != nil {
		t.Errorf("ssh-keygen -Y verify -n %s = %v, want OK", ns, err)
	}
	if err := sshKeygenVerify(t, want, msg, sig, "git"); err == nil {
		t.Errorf("ssh-keygen -Y verify -n git accepted a signature made for %s", ns)
	}
	if err := sshKeygenVerify(t, want, append(msg, 'x'), sig, ns); err == nil {
		t.Errorf("ssh-keygen -Y verify accepted the signature over other data")
	}
	fpr, err := Fingerprint(ctx, sp)
	if err != nil || fpr != ssh.FingerprintSHA256(want) {
		t.Errorf("Fingerprint = %q, %v, want %s", fpr, err, ssh.FingerprintSHA256(want))
	}
	pub, err := PublicKey(ctx, sp)
	if err != nil || !bytes.Equal(pub.Marshal(), want.Marshal()) || pub.Type() != ssh.KeyAlgoECDSA256 {
		t.Errorf("PublicKey = %v, %v, want the server's ecdsa-sha2-nistp256 key", pub, err)
	}
	return s, sshsigSignedData(msg, ns)
}

// refuse signs with spec against a misbehaving server and returns the
// error, which must name the KEYSPEC and hold no canary.
func refuse(t *testing.T, spec string) error {
	t.Helper()
	kmsSigners.Clear()
	sp, err := ParseSpec(spec)
	if err != nil {
		t.Fatalf("ParseSpec(%q) = %v", spec, err)
	}
	s, err := New(sp, nil)
	if err != nil {
		t.Fatalf("New(%q) = %v", spec, err)
	}
	sig, err := s.Sign(context.Background(), []byte("payload\n"), "groundzero")
	if err == nil {
		t.Fatalf("Sign = %v, nil; want a refusal", sig)
	}
	var se *SpecError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), spec) {
		t.Errorf("Sign error %q does not name %s", err, spec)
	}
	noCanary(t, "Sign error", err.Error())
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("Sign error spans lines: %q", err)
	}
	return err
}

func digestOf(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func derSig(r, s int64) []byte { return derSigBig(big.NewInt(r), big.NewInt(s)) }

func derSigBig(r, s *big.Int) []byte {
	der, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		panic(err)
	}
	return der
}

func TestSSHECDSASignature(t *testing.T) {
	for _, tc := range []struct {
		name string
		der  []byte
	}{
		{"empty", nil},
		{"raw r||s", bytes.Repeat([]byte{1}, 64)},
		{"trailing data", append(derSig(1, 2), 0)},
		{"zero r", derSig(0, 2)},
		{"negative s", []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0xff}},
		{"non-minimal integer", []byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01}},
		{"three integers", []byte{0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}},
		{"r = n", derSigBig(elliptic.P256().Params().N, big.NewInt(1))},
	} {
		if _, err := sshECDSASignature(tc.der); err == nil {
			t.Errorf("sshECDSASignature(%s) = nil error, want a refusal", tc.name)
		}
	}
	blob, err := sshECDSASignature(derSig(1, 0x80))
	if err != nil {
		t.Fatalf("sshECDSASignature(valid) = %v", err)
	}
	// mpint 1, mpint 0x80 (with its leading zero byte)
	want := []byte{0, 0, 0, 1, 1, 0, 0, 0, 2, 0, 0x80}
	if !bytes.Equal(blob, want) {
		t.Errorf("sshECDSASignature = %x, want %x", blob, want)
	}
}

func TestParseSpecKMS(t *testing.T) {
	good := []string{
		"awskms:1234abcd-12ab-34cd-56ef-1234567890ab",
		"awskms:arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"awskms:alias/groundzero-ci?region=us-east-2",
		"awskms:mrk-1234abcd12ab34cd56ef1234567890ab?region=eu-central-1",
		"gcpkms:projects/acme-ci/locations/europe-west1/keyRings/ci/cryptoKeys/signer/cryptoKeyVersions/3",
		"vault:groundzero-ci",
		"vault:groundzero-ci?mount=ci/transit",
	}
	for _, s := range good {
		if _, err := ParseSpec(s); err != nil {
			t.Errorf("ParseSpec(%q) = %v, want OK", s, err)
		}
	}
	bad := map[string]string{
		"awskms:not a key":                                                                      "expected awskms:",
		"awskms:alias/ci?region=moon":                                                           "not an AWS region",
		"awskms:alias/ci?regoin=eu-west-1":                                                      "unknown option",
		"awskms:alias/ci?region=eu-west-1&region=eu-west-2":                                     "needs one value",
		"awskms:arn:aws:kms:eu-west-1:111122223333:alias/ci?region=us-east-1":                   "not us-east-1",
		"gcpkms:projects/acme-ci/locations/global/keyRings/ci/cryptoKeys/k":                     "key version",
		"gcpkms:projects/acme-ci/locations/global/keyRings/ci/cryptoKeys/k/cryptoKeyVersions/0": "key version",
		"vault:../sys":                    "transit-key-name",
		"vault:ci?mount=../sys":           "not a mount path",
		"vault:ci?mount=transit&path=sys": "unknown option",
	}
	for s, want := range bad {
		_, err := ParseSpec(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSpec(%q) = %v, want an error with %q", s, err, want)
		}
	}
}
