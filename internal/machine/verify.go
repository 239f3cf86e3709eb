package machine

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/sshsig"
	"github.com/groundzero/groundzero/record"
)

// CertifierRole is the role a certification's signer must hold.
const CertifierRole = signers.RoleSecurity

// NotCertifiedError: no certification record exists for the host.
type NotCertifiedError struct {
	Fingerprint string
	File        string
}

func (e *NotCertifiedError) Error() string {
	return fmt.Sprintf("this host (machine key %s) is not certified: %s does not exist", e.Fingerprint, e.File)
}

// ExpiredError: the verification time is outside the record's validity.
type ExpiredError struct {
	File    string
	Created string
	Expires string
	NotYet  bool
}

func (e *ExpiredError) Error() string {
	if e.NotYet {
		return fmt.Sprintf("%s: the certification is not valid before %s", e.File, e.Created)
	}
	return fmt.Sprintf("%s: the certification expired at %s", e.File, e.Expires)
}

// OwnerError: the record's owner is not a current signer.
type OwnerError struct {
	File   string
	Owner  string
	Reason string
}

func (e *OwnerError) Error() string {
	return fmt.Sprintf("%s: owner %q %s", e.File, e.Owner, e.Reason)
}

// CertifierError: no current security signer signed the record.
type CertifierError struct {
	File string
	Err  error
}

func (e *CertifierError) Error() string { return e.File + ": " + e.Err.Error() }
func (e *CertifierError) Unwrap() error { return e.Err }

// KeyMismatchError: the record certifies another key than this host's.
type KeyMismatchError struct {
	File string
	Want string // this host's fingerprint
	Got  string // the record's
}

func (e *KeyMismatchError) Error() string {
	return fmt.Sprintf("%s certifies machine key %s, but this host's private key is %s: the record was made for another machine", e.File, e.Got, e.Want)
}

// Certified is a record that verified.
type Certified struct {
	File       string
	Record     *Record
	Certifiers []string // the security signers who count
}

// Verify judges a record's bytes and signatures against reg at time now:
// signed by a current security signer, owner a current signer, now within
// [created, expires).
func Verify(file string, data []byte, sigs []*signature.Signature, reg *signers.Registry, now time.Time) (*Certified, error) {
	rec, err := Parse(file, data)
	if err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, &CertifierError{file, errors.New("the signers registry did not verify, so no signature can count")}
	}
	outcomes := reg.Check(data, sigs, Kind, now, signers.Current)
	ids, err := signers.Count(outcomes, signers.Requirement{What: "the machine certification", Roles: []string{CertifierRole}, Threshold: 1})
	if err != nil {
		return nil, &CertifierError{file, err}
	}
	switch s := reg.Lookup(rec.Owner); {
	case s == nil:
		return nil, &OwnerError{file, rec.Owner, "is not a signer in the registry"}
	case s.Status(now) != "active":
		return nil, &OwnerError{file, rec.Owner, "is " + s.Status(now)}
	}
	created, expires := rec.Window()
	switch {
	case now.Before(created):
		return nil, &ExpiredError{File: file, Created: rec.Created, Expires: rec.Expires, NotYet: true}
	case !now.Before(expires):
		return nil, &ExpiredError{File: file, Created: rec.Created, Expires: rec.Expires}
	}
	return &Certified{File: file, Record: rec, Certifiers: ids}, nil
}

// Load reads and verifies the record at file in the repository.
func Load(r *repo.Repo, file string, reg *signers.Registry, now time.Time) (*Certified, error) {
	data, err := r.ReadFile(file, MaxSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var tl *repo.TooLargeError
	if errors.As(err, &tl) {
		return nil, &MalformedError{file, fmt.Sprintf("larger than %d bytes", MaxSize)}
	}
	if err != nil {
		return nil, err
	}
	sigs, err := sigfile.Load(r, file)
	if err != nil {
		return nil, &MalformedError{file, "signatures: " + err.Error()}
	}
	return Verify(file, data, sigs, reg, now)
}

// Check verifies that the host whose machine key is k is certified: the
// record named by the key's fingerprint verifies, and certifies exactly
// this key.
func Check(r *repo.Repo, k *Key, reg *signers.Registry, now time.Time) (*Certified, error) {
	file := Path(k.Fingerprint)
	c, err := Load(r, file, reg, now)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &NotCertifiedError{Fingerprint: k.Fingerprint, File: file}
	}
	if err != nil {
		return nil, err
	}
	pub, _ := c.Record.Key()
	if c.Record.Fingerprint != k.Fingerprint || !bytes.Equal(pub.Marshal(), k.Public().Marshal()) {
		return nil, &KeyMismatchError{File: file, Want: k.Fingerprint, Got: c.Record.Fingerprint}
	}
	return c, nil
}

// Entry is one record in the listing.
type Entry struct {
	File   string
	Record *Record // nil when the file does not parse
	// Certified is set when the record verified; Err says why not.
	Certified *Certified
	Err       error
}

// List reads and verifies every record in Dir, in file name order.
func List(r *repo.Repo, reg *signers.Registry, now time.Time) ([]Entry, error) {
	des, err := os.ReadDir(r.Abs(Dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		if len(out) == MaxRecords {
			return out, fmt.Errorf("%s holds more than %d records", Dir, MaxRecords)
		}
		file := Dir + "/" + name
		e := Entry{File: file}
		if data, rerr := r.ReadFile(file, MaxSize); rerr == nil {
			e.Record, _ = Parse(file, data)
		}
		e.Certified, e.Err = Load(r, file, reg, now)
		if e.Err == nil && name != e.Record.Fingerprint+".json" {
			e.Certified, e.Err = nil, &MalformedError{file, "the file name is not the record's fingerprint"}
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.File, b.File) })
	return out, nil
}

// Statement is what the machine key signs before an interactive change.
type Statement struct {
	Command     string `json:"command"`
	Env         string `json:"env"`
	Fingerprint string `json:"fingerprint"`
	Intent      string `json:"intent"`
	Kind        string `json:"kind"`
	Time        string `json:"time"`
}

// SignStatement signs the canonical statement (Kind is filled in) with the
// machine key. It returns the statement's bytes and the base64 SSHSIG blob.
func (k *Key) SignStatement(st Statement) (payload []byte, sig string, err error) {
	st.Kind = StatementKind
	st.Fingerprint = k.Fingerprint
	payload, err = record.Marshal(st)
	if err != nil {
		return nil, "", err
	}
	s, err := sshsig.Sign(k.Signer, bytes.NewReader(payload), StatementKind)
	if err != nil {
		return nil, "", err
	}
	return payload, base64.StdEncoding.EncodeToString(s.Marshal()), nil
}

// VerifyStatement checks a statement's base64 SSHSIG blob against the
// machine's public key.
func VerifyStatement(pub ssh.PublicKey, payload []byte, sig string) error {
	blob, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(blob) > sshsig.MaxBlobSize {
		return errors.New("machine statement: the signature is not base64 SSHSIG")
	}
	s, err := sshsig.Parse(blob)
	if err != nil {
		return err
	}
	if !bytes.Equal(s.PublicKey.Marshal(), pub.Marshal()) {
		return errors.New("machine statement: signed by another key")
	}
	return sshsig.Verify(pub, bytes.NewReader(payload), s, StatementKind)
}

// Hint says what to do about a machine that does not pass the gate.
func Hint(err error) string {
	var (
		nc *NotCertifiedError
		nk *NoKeyError
		ex *ExpiredError
		ow *OwnerError
		ce *CertifierError
		km *KeyMismatchError
		mf *MalformedError
	)
	const certify = "`groundzero machine certify --owner ID --key KEYSPEC` (a security signer's key), then `groundzero manifest update` and have the manifest signed"
	switch {
	case errors.As(err, &nc), errors.As(err, &nk):
		return "run the interactive path on a certified admin machine, or certify this host on it: " + certify
	case errors.As(err, &ex):
		return "certify this host again: " + certify
	case errors.As(err, &ow):
		return "the owner must be a current signer; certify this host again for its current owner: " + certify
	case errors.As(err, &ce):
		return "the record must be signed by a current signer with role security: " + certify
	case errors.As(err, &km):
		return "a record certifies one machine key only; certify this host: " + certify
	case errors.As(err, &mf):
		return "restore the record from git, or certify this host again: " + certify
	}
	return "check the machine key directory and governance/machines/"
}
