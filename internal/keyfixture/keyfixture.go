// Package keyfixture makes throwaway signing keys for tests with the real
// tools people sign with: GnuPG (`gpg`) in a private GNUPGHOME, and OpenSSH's
// `ssh-keygen`. Nothing here is used by the groundzero binary.
package keyfixture

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
