// Package keyfixture makes throwaway signing keys for tests with the real
// tools people sign with: GnuPG (`gpg`) in a private GNUPGHOME, and OpenSSH's
// `ssh-keygen`; and, in process, one ed25519 key in its OpenPGP and SSH forms.
// Nothing here is used by the groundzero binary.
package keyfixture

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgped25519 "github.com/ProtonMail/go-crypto/openpgp/ed25519"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/sshsig"
)

// GPG is a private GnuPG home with its own agent, removed when the test ends.
type GPG struct {
	Home string
}

// NewGPG creates an empty GNUPGHOME. Its path is short because gpg-agent's
// socket path must fit in a Unix socket address.
func NewGPG(t testing.TB) *GPG {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Fatalf("gpg is not installed: run `make deps` (Debian package gnupg)")
	}
	home, err := os.MkdirTemp("", "gzgpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	g := &GPG{Home: home}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	return g
}

// Env returns the environment that points gpg at this home.
func (g *GPG) Env() []string {
	return append(os.Environ(), "GNUPGHOME="+g.Home)
}

// Run runs gpg in this home with stdin and returns its stdout.
func (g *GPG) Run(t testing.TB, stdin []byte, args ...string) []byte {
	t.Helper()
	out, err := g.Try(stdin, args...)
	if err != nil {
		t.Fatalf("gpg %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// Try runs gpg and returns its stdout, or an error carrying its stderr.
func (g *GPG) Try(stdin []byte, args ...string) ([]byte, error) {
	full := append([]string{"--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)
	cmd := exec.Command("gpg", full...)
	cmd.Env = g.Env()
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%v: %s", err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// KeyOpts tunes Generate.
type KeyOpts struct {
	Algo   string // default "ed25519"
	Expire string // gpg expiry, default "never"
	// FakeTime, when set, creates the key as of that gpg --faked-system-time
	// value (for example "20200101T000000"), so a key can be expired already.
	FakeTime string
}

// Generate creates a key for "Name <email>" and returns its fingerprint and
// armored public key.
func (g *GPG) Generate(t testing.TB, name, email string, o KeyOpts) (fpr string, pub []byte) {
	t.Helper()
	algo, expire := o.Algo, o.Expire
	if algo == "" {
		algo = "ed25519"
	}
	if expire == "" {
		expire = "never"
	}
	uid := fmt.Sprintf("%s <%s>", name, email)
	args := []string{}
	if o.FakeTime != "" {
		args = append(args, "--faked-system-time", o.FakeTime+"!", "--ignore-time-conflict")
	}
	args = append(args, "--quick-gen-key", uid, algo, "sign", expire)
	g.Run(t, nil, args...)
	fpr = g.Fingerprint(t, email)
	pub = g.Run(t, nil, "--armor", "--export", fpr)
	return fpr, pub
}

// Fingerprint returns the primary key fingerprint for a user ID or key.
func (g *GPG) Fingerprint(t testing.TB, who string) string {
	t.Helper()
	out := g.Run(t, nil, "--with-colons", "--fingerprint", who)
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ":")
		if f[0] == "fpr" && len(f) > 9 {
			return f[9]
		}
	}
	t.Fatalf("no fingerprint for %s", who)
	return ""
}

// DetachSign signs data with the key and returns the armored signature. Extra
// gpg arguments come first (for example "--digest-algo", "SHA1").
func (g *GPG) DetachSign(t testing.TB, fpr string, data []byte, extra ...string) []byte {
	t.Helper()
	args := append(extra, "--armor", "--detach-sign", "--local-user", fpr, "--output", "-")
	return g.Run(t, data, args...)
}

// Revoke makes the key revoked by importing its revocation certificate and
// returns the updated armored public key.
func (g *GPG) Revoke(t testing.TB, fpr string) []byte {
	t.Helper()
	rev := filepath.Join(g.Home, "openpgp-revocs.d", fpr+".rev")
	data, err := os.ReadFile(rev)
	if err != nil {
		t.Fatal(err)
	}
	// gpg writes the certificate with a leading ':' to prevent accidental import.
	data = bytes.Replace(data, []byte(":-----BEGIN PGP PUBLIC KEY BLOCK-----"), []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----"), 1)
	g.Run(t, data, "--import")
	return g.Run(t, nil, "--armor", "--export", fpr)
}

// SSHKey is a key pair written by ssh-keygen.
type SSHKey struct {
	Private string // path
	Public  string // path
}

// NewSSHKey creates a key pair with ssh-keygen in dir. typ is "ed25519",
// "ecdsa" or "rsa"; bits is passed when non-zero.
func NewSSHKey(t testing.TB, dir, name, typ string, bits int) SSHKey {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Fatalf("ssh-keygen is not installed: run `make deps` (Debian package openssh-client)")
	}
	path := filepath.Join(dir, name)
	args := []string{"-q", "-t", typ, "-N", "", "-C", name + "@example.test", "-f", path}
	if bits != 0 {
		args = append(args, "-b", fmt.Sprint(bits))
	}
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	return SSHKey{Private: path, Public: path + ".pub"}
}

// Sign signs data with ssh-keygen -Y sign in namespace and returns the armored
// signature.
func (k SSHKey) Sign(t testing.TB, data []byte, namespace string) []byte {
	t.Helper()
	cmd := exec.Command("ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-f", k.Private)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v: %s", err, stderr.String())
	}
	return out
}

// PublicLine returns the public key line.
func (k SSHKey) PublicLine(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ExportSSH returns the key's primary key as an SSH public key line, as `gpg
// --export-ssh-key FPR!` writes it: the same key material in SSH form.
func (g *GPG) ExportSSH(t testing.TB, fpr string) []byte {
	t.Helper()
	return append(g.Run(t, nil, "--export-ssh-key", fpr+"!"), '\n')
}

// Ed25519 is one ed25519 key, made in process from a seed, in each form
// groundzero reads: an SSH key, and OpenPGP certificates with the legacy
// EdDSA algorithm (v4) and the RFC 9580 Ed25519 algorithm (v6). The forms
// have different fingerprints but one public point.
type Ed25519 struct {
	Seed []byte
	// SSH signs as the ssh-ed25519 key; SSHLine is its authorized_keys line
	// and SKLine the same point as an sk-ssh-ed25519 (security key) line.
	SSH             ssh.Signer
	SSHLine, SKLine []byte
	// PGP is the v4 legacy EdDSA certificate, PGPv6 the v6 Ed25519 one, each
	// with its secret key; PGPArmor and PGPv6Armor are the armored public
	// certificates, as `gpg --armor --export` writes them.
	PGP, PGPv6           *openpgp.Entity
	PGPArmor, PGPv6Armor []byte
}

// Ed25519Opts tunes NewEd25519.
type Ed25519Opts struct {
	Seed []byte // 32 bytes; random when nil
	// Created is the OpenPGP certificates' creation time (default now), and
	// Lifetime, when non-zero, their expiry after it.
	Created  time.Time
	Lifetime time.Duration
}

// NewEd25519 makes an ed25519 key in all its forms.
func NewEd25519(t testing.TB, o Ed25519Opts) *Ed25519 {
	t.Helper()
	seed := o.Seed
	if seed == nil {
		seed = make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			t.Fatal(err)
		}
	}
	if len(seed) != ed25519.SeedSize {
		t.Fatalf("NewEd25519: seed of %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	created := o.Created
	if created.IsZero() {
		created = time.Now()
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ssh.ParsePublicKey(ssh.Marshal(struct {
		Name        string
		KeyBytes    []byte
		Application string
	}{ssh.KeyAlgoSKED25519, pub, "ssh:"}))
	if err != nil {
		t.Fatal(err)
	}
	k := &Ed25519{Seed: seed, SSH: signer, SSHLine: ssh.MarshalAuthorizedKey(signer.PublicKey()), SKLine: ssh.MarshalAuthorizedKey(sk)}
	newEntity := func(v6 bool) (*openpgp.Entity, []byte) {
		cfg := &packet.Config{
			// Key generation reads the ed25519 seed first, so the
			// certificate holds the key made from seed.
			Rand:            io.MultiReader(bytes.NewReader(seed), rand.Reader),
			Time:            func() time.Time { return created },
			Algorithm:       packet.PubKeyAlgoEdDSA,
			KeyLifetimeSecs: uint32(o.Lifetime / time.Second),
		}
		if v6 {
			cfg.Algorithm, cfg.V6Keys = packet.PubKeyAlgoEd25519, true
		}
		e, err := openpgp.NewEntity("Key Fixture", "", "fixture@example.test", cfg)
		if err != nil {
			t.Fatalf("openpgp.NewEntity: %v", err)
		}
		var point []byte
		switch p := e.PrimaryKey.PublicKey.(type) {
		case *eddsa.PublicKey:
			point = p.X
		case *pgped25519.PublicKey:
			point = p.Point
		}
		if !bytes.Equal(point, pub) {
			t.Fatalf("openpgp.NewEntity(seed) made point %x, want %x", point, []byte(pub))
		}
		return e, append(ArmorPublic(t, e), '\n')
	}
	k.PGP, k.PGPArmor = newEntity(false)
	k.PGPv6, k.PGPv6Armor = newEntity(true)
	return k
}

// SignPGP makes an armored detached OpenPGP signature over data with e,
// claiming creation time at (which may lie in the past: a backdated
// signature).
func SignPGP(t testing.TB, e *openpgp.Entity, data []byte, at time.Time) []byte {
	t.Helper()
	var out bytes.Buffer
	cfg := &packet.Config{DefaultHash: crypto.SHA512, Time: func() time.Time { return at }}
	if err := openpgp.ArmoredDetachSign(&out, []*openpgp.Entity{e}, bytes.NewReader(data), &openpgp.SignParams{Config: cfg}); err != nil {
		t.Fatalf("openpgp.ArmoredDetachSign: %v", err)
	}
	return out.Bytes()
}

// SignSSH makes an armored SSHSIG signature over data in namespace.
func SignSSH(t testing.TB, s ssh.Signer, data []byte, namespace string) []byte {
	t.Helper()
	sig, err := sshsig.Sign(s, bytes.NewReader(data), namespace)
	if err != nil {
		t.Fatalf("sshsig.Sign: %v", err)
	}
	return sshsig.Armor(sig.Marshal())
}

// ArmorPublic returns the entity's public certificate, armored as `gpg
// --armor --export` writes it.
func ArmorPublic(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := armor.Encode(&out, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
