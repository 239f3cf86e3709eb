// Package machine certifies admin machines: the hosts on which the
// emergency interactive path (apply, bootstrap and break-glass on a
// terminal) may run when policy.yaml sets gates.certified_machine.
//
// # The machine key
//
// Each host holds one ed25519 SSH key pair, outside any repository, in
// $XDG_CONFIG_HOME/groundzero/machine/ (default ~/.config/groundzero/machine/):
// id_ed25519 (OpenSSH private key, mode 0600, directory 0700) and
// id_ed25519.pub. The host's fingerprint is the lower-case hex SHA-256 of the
// public key in SSH wire form. Only the private key counts: the public key
// is always derived from it, so a copied .pub file proves nothing.
//
// # The certification record
//
// A certification is a canonical JSON record (package record) of kind
// "groundzero.machine/v1", kept as governance/machines/<fingerprint>.json:
//
//	{"created":"2026-12-01T10:00:00Z","expires":"2027-03-01T10:00:00Z",
//	 "fingerprint":"<hex SHA-256 of the public key>","hostname":"admin-1",
//	 "kind":"groundzero.machine/v1","owner":"alice",
//	 "public_key":"ssh-ed25519 AAAA…"}
//
// The record is one line with one final newline; every field is required
// and no other field is allowed. Its detached signatures sit beside it
// (.asc or .sig; SSH namespace "groundzero.machine/v1"). A record counts
// when a current signer with role security signed it, its owner is a
// current signer, the verification time lies in [created, expires), and
// the public key is this host's. The records are governed files: adding
// or replacing one is a governed change that needs a manifest update. The
// directory is the list of certified machines; there is no separate index.
//
// # The machine statement
//
// When the machine gate passes, the machine key signs a statement of what
// is about to run, a canonical record of kind
// "groundzero.machine-statement/v1":
//
//	{"command":"apply","env":"prod","fingerprint":"<hex>",
//	 "intent":"20261201T100000Z-1a2b3c4d",
//	 "kind":"groundzero.machine-statement/v1","time":"2026-12-01T10:05:00Z"}
//
// (without a final newline), with an SSHSIG signature in the namespace
// "groundzero.machine-statement/v1". The audit trail keeps the statement
// and the base64 signature blob, so an auditor can tie the action to the
// machine with the record's public key and ssh-keygen -Y verify.
//
// A breaking change to either record's fields makes a new version (v2).
package machine

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/record"
)

// Kinds, which are also the SSH namespaces of their signatures.
var (
	Kind          = record.Kind("machine")
	StatementKind = record.Kind("machine-statement")
)

// Dir is the repository directory of certification records.
const Dir = "governance/machines"

// MaxSize bounds a certification record.
const MaxSize = 8 << 10

// MaxRecords bounds how many records a listing reads.
const MaxRecords = 1000

// Record is one machine certification.
type Record struct {
	Created     string `json:"created"`
	Expires     string `json:"expires"`
	Fingerprint string `json:"fingerprint"`
	Hostname    string `json:"hostname"`
	Kind        string `json:"kind"`
	Owner       string `json:"owner"`
	PublicKey   string `json:"public_key"`
}

// MalformedError reports a file that is not a valid certification record.
// It does not echo the file's content.
type MalformedError struct {
	File   string
	Reason string
}

func (e *MalformedError) Error() string { return e.File + ": " + e.Reason }

var (
	hexRE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hostRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)
	idRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
)

// Path is the repository path of the record for a fingerprint.
func Path(fingerprint string) string { return Dir + "/" + fingerprint + ".json" }

// Fingerprint is the hex SHA-256 of a public key's SSH wire form.
func Fingerprint(pub ssh.PublicKey) string {
	h := sha256.Sum256(pub.Marshal())
	return hex.EncodeToString(h[:])
}

// AuthorizedKey is a public key as a record holds it: "ssh-ed25519 AAAA…",
// without a comment.
func AuthorizedKey(pub ssh.PublicKey) string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n")
}

// New makes the certification of pub for owner on hostname, valid from
// created for validity.
func New(pub ssh.PublicKey, owner, hostname string, created time.Time, validity time.Duration) (*Record, error) {
	created = created.UTC().Truncate(time.Second)
	r := &Record{
		Created: created.Format(time.RFC3339), Expires: created.Add(validity).Format(time.RFC3339),
		Fingerprint: Fingerprint(pub), Hostname: hostname, Kind: Kind, Owner: owner, PublicKey: AuthorizedKey(pub),
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// Marshal returns the record file bytes.
func (r *Record) Marshal() ([]byte, error) { return record.MarshalFile(r) }

// Parse reads a record, refusing anything but its canonical bytes; file
// names it in errors.
func Parse(file string, data []byte) (*Record, error) {
	var r Record
	if err := record.ParseFileOf(data, MaxSize, Kind, &r, r.validate); err != nil {
		return nil, &MalformedError{file, err.Error()}
	}
	return &r, nil
}

func (r *Record) validate() error {
	switch {
	case !hexRE.MatchString(r.Fingerprint):
		return errors.New("bad fingerprint")
	case !hostRE.MatchString(r.Hostname):
		return errors.New("bad hostname")
	case !idRE.MatchString(r.Owner):
		return errors.New("bad owner id")
	}
	pub, err := r.Key()
	if err != nil {
		return err
	}
	if Fingerprint(pub) != r.Fingerprint {
		return errors.New("fingerprint is not the SHA-256 of public_key")
	}
	if AuthorizedKey(pub) != r.PublicKey {
		return errors.New("public_key is not in canonical form")
	}
	created, err1 := time.Parse(time.RFC3339, r.Created)
	expires, err2 := time.Parse(time.RFC3339, r.Expires)
	switch {
	case err1 != nil || created.Format(time.RFC3339) != r.Created || created.Location() != time.UTC:
		return errors.New("bad created time")
	case err2 != nil || expires.Format(time.RFC3339) != r.Expires || expires.Location() != time.UTC:
		return errors.New("bad expires time")
	case !expires.After(created):
		return errors.New("expires is not after created")
	}
	return nil
}

// Key parses the record's public key, which must be ed25519.
func (r *Record) Key() (ssh.PublicKey, error) {
	pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(r.PublicKey))
	if err != nil || len(rest) != 0 {
		return nil, errors.New("bad public_key")
	}
	if pub.Type() != ssh.KeyAlgoED25519 {
		return nil, fmt.Errorf("public_key is %s, want %s", pub.Type(), ssh.KeyAlgoED25519)
	}
	return pub, nil
}

// Window returns the record's validity interval.
func (r *Record) Window() (created, expires time.Time) {
	created, _ = time.Parse(time.RFC3339, r.Created)
	expires, _ = time.Parse(time.RFC3339, r.Expires)
	return created, expires
}

// Key is this host's machine key.
type Key struct {
	Dir         string
	Signer      ssh.Signer
	Fingerprint string
}

// Public is the key's public half.
func (k *Key) Public() ssh.PublicKey { return k.Signer.PublicKey() }

// Key file names inside the key directory.
const (
	PrivateKeyFile = "id_ed25519"
	PublicKeyFile  = "id_ed25519.pub"
)

// KeyDir is where this host's machine key lives: $XDG_CONFIG_HOME (when set
// to an absolute path) or $HOME/.config, then groundzero/machine.
func KeyDir(getenv func(string) string) (string, error) {
	if x := getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "groundzero", "machine"), nil
	}
	home := getenv("HOME")
	if home == "" || !filepath.IsAbs(home) {
		return "", errors.New("neither $XDG_CONFIG_HOME nor $HOME is set to an absolute path: no place for the machine key")
	}
	return filepath.Join(home, ".config", "groundzero", "machine"), nil
}

// NoKeyError: this host has no machine key.
type NoKeyError struct{ Dir string }

func (e *NoKeyError) Error() string {
	return "this host has no machine key (" + filepath.Join(e.Dir, PrivateKeyFile) + ")"
}

// KeyError reports a machine key that cannot be used. It never echoes key
// material.
type KeyError struct {
	File   string
	Reason string
}

func (e *KeyError) Error() string { return "machine key " + e.File + ": " + e.Reason }

const maxKeyFile = 16 << 10

// LoadKey reads the machine key in dir. A key file that others can read,
// or that is not an unencrypted OpenSSH ed25519 private key, is refused.
func LoadKey(dir string) (*Key, error) {
	file := filepath.Join(dir, PrivateKeyFile)
	fi, err := os.Lstat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &NoKeyError{Dir: dir}
	}
	if err != nil {
		return nil, &KeyError{file, "cannot be read"}
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyError{file, "is not a regular file"}
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, &KeyError{file, fmt.Sprintf("has mode %04o; it must be 0600", fi.Mode().Perm())}
	}
	if fi.Size() > maxKeyFile {
		return nil, &KeyError{file, "is too large"}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &KeyError{file, "cannot be read"}
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, &KeyError{file, "is not an unencrypted OpenSSH private key"}
	}
	if s.PublicKey().Type() != ssh.KeyAlgoED25519 {
		return nil, &KeyError{file, "is not an ed25519 key"}
	}
	return &Key{Dir: dir, Signer: s, Fingerprint: Fingerprint(s.PublicKey())}, nil
}

// CreateKey returns the machine key in dir, creating it when there is none.
// It reports whether it created one.
func CreateKey(dir, comment string) (*Key, bool, error) {
	k, err := LoadKey(dir)
	var none *NoKeyError
	if !errors.As(err, &none) {
		return k, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, &KeyError{dir, "cannot be created"}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, false, &KeyError{dir, "cannot be made private"}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, false, err
	}
	file := filepath.Join(dir, PrivateKeyFile)
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, &KeyError{file, "cannot be created"}
	}
	_, werr := f.Write(pem.EncodeToMemory(block))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(file)
		return nil, false, &KeyError{file, "cannot be written"}
	}
	k, err = LoadKey(dir)
	if err != nil {
		return nil, false, err
	}
	pub := AuthorizedKey(k.Public()) + " " + comment + "\n"
	if err := os.WriteFile(filepath.Join(dir, PublicKeyFile), []byte(pub), 0o644); err != nil {
		return nil, false, &KeyError{filepath.Join(dir, PublicKeyFile), "cannot be written"}
	}
	return k, true, nil
}
