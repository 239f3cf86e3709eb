package signers_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/groundzero/groundzero/internal/keyfixture"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
)

// member is one signer entry of a registry written by hand in a test.
type member struct {
	id, roles string
	file      string // under governance/
	data      []byte // the key file
	extra     string // more lines of the entry (window, revocation)
}

// window opens in 2020 and closes at the start of 2021.
const window = "    valid_after: \"2020-01-01T00:00:00Z\"\n    valid_before: \"2021-01-01T00:00:00Z\"\n"

var (
	inWindow     = time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC)
	beforeWindow = time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC)
	afterWindow  = time.Date(2022, 6, 1, 0, 0, 0, 0, time.UTC)
)

func keyRef(t *testing.T, file string, data []byte) string {
	t.Helper()
	pk, err := signature.ParsePublicKey(data)
	if err != nil {
		t.Fatalf("ParsePublicKey(%s) = %v", file, err)
	}
	return fmt.Sprintf("{file: %s, fingerprint: %q, sha256: %s}", file, pk.Fingerprint, signers.FileHash(data))
}

func registryDoc(t *testing.T, version, threshold int, members ...member) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "version: %d\nthreshold: %d\nsigners:\n", version, threshold)
	for _, m := range members {
		fmt.Fprintf(&b, "  - id: %s\n    roles: [%s]\n    keys:\n      - %s\n%s", m.id, m.roles, keyRef(t, m.file, m.data), m.extra)
	}
	return b.String()
}

func keyFiles(members ...member) map[string][]byte {
	files := map[string][]byte{}
	for _, m := range members {
		files[m.file] = m.data
	}
	return files
}

func reader(files map[string][]byte) signers.KeyReader {
	return func(rel string) ([]byte, error) {
		data, ok := files[rel]
		if !ok {
			return nil, os.ErrNotExist
		}
		return data, nil
	}
}

// link is one registry version and its signatures.
type link struct {
	doc  string
	sigs []*signature.Signature
}

func chainOf(t *testing.T, files map[string][]byte, links ...link) *signers.Chain {
	t.Helper()
	c := &signers.Chain{}
	for i, l := range links {
		r, err := signers.Parse(fmt.Sprintf("governance/signers.d/%d.yaml", i+1), []byte(l.doc))
		if err != nil {
			t.Fatalf("Parse(version %d) = %v\n%s", i+1, err, l.doc)
		}
		if err := r.LoadKeys(reader(files)); err != nil {
			t.Fatalf("LoadKeys(version %d) = %v", i+1, err)
		}
		c.Versions = append(c.Versions, r)
		c.Sigs = append(c.Sigs, l.sigs)
	}
	return c
}

func sshSig(t *testing.T, k *keyfixture.Ed25519, doc string) *signature.Signature {
	t.Helper()
	sigs, err := signature.Parse(signature.SSH, keyfixture.SignSSH(t, k.SSH, []byte(doc), signers.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	return sigs[0]
}

func pgpSig(t *testing.T, e *openpgp.Entity, doc string, at time.Time) *signature.Signature {
	t.Helper()
	sigs, err := signature.Parse(signature.OpenPGP, keyfixture.SignPGP(t, e, []byte(doc), at))
	if err != nil {
		t.Fatal(err)
	}
	return sigs[0]
}

// sighting is a registry version the audit trail's trusted part recorded as
// in force, by its hash, at a time.
type sighting struct {
	version int
	sha256  string
	at      time.Time
}

func witnessOf(seen ...sighting) signers.Witness {
	return func(version int, sha256 string) (time.Time, bool) {
		for _, s := range seen {
			if s.version == version && s.sha256 == sha256 {
				return s.at, true
			}
		}
		return time.Time{}, false
	}
}

// chainErr checks that err is a *ChainError for version and returns it with
// the outcomes rejected at the verification time.
func chainErr(t *testing.T, err error, version int) (*signers.ChainError, []signers.Outcome) {
	t.Helper()
	var ce *signers.ChainError
	if !errors.As(err, &ce) || ce.Version != version {
		t.Fatalf("Verify = %v, want *signers.ChainError for version %d", err, version)
	}
	var te *signers.ThresholdError
	if !errors.As(ce.Err, &te) {
		t.Fatalf("ChainError.Err = %v, want *signers.ThresholdError", ce.Err)
	}
	return ce, te.Rejected
}

// expiredChain is the T17 attack: security signer "old" was valid in 2020
// only. Today the holder of old's key signs version 2, which adds a security
// signer "new" that they control; "new" signs version 3. Version 1 is signed
// by "root", a security signer valid now, so that it stands when judged now
// (a pinned version 1 is still judged against its own signers).
func expiredChain(t *testing.T) *signers.Chain {
	root := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{})
	old, nu := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{}), keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{})
	r := member{"root", "security", "keys/root.pub", root.SSHLine, ""}
	o := member{"old", "security", "keys/old.pub", old.SSHLine, window}
	n := member{"new", "security", "keys/new.pub", nu.SSHLine, ""}
	v1 := registryDoc(t, 1, 1, r, o)
	v2 := registryDoc(t, 2, 1, r, o, n)
	v3 := registryDoc(t, 3, 1, r, o, n)
	return chainOf(t, keyFiles(r, o, n),
		link{v1, []*signature.Signature{sshSig(t, root, v1)}},
		link{v2, []*signature.Signature{sshSig(t, old, v2)}},
		link{v3, []*signature.Signature{sshSig(t, nu, v3)}},
	)
}

// (a) Every link is judged now: a signer whose window has closed cannot
// approve a new version today, however the chain is anchored.
func TestVerifyExpiredSignerJudgedNow(t *testing.T) {
	c := expiredChain(t)
	now := time.Now()
	pin := c.Versions[0].Hash()

	rep, err := c.Verify(now, pin, nil)
	ce, rejected := chainErr(t, err, 2)
	if ce.By != 1 || !ce.Witnessed.IsZero() || ce.WitnessErr != nil {
		t.Errorf("Verify(pin v1, no witness) = %+v, want version 2 by version 1, no witness", ce)
	}
	var we *signers.WindowError
	if len(rejected) != 1 || !errors.As(rejected[0].Err, &we) || we.ID != "old" || we.Status != "expired" {
		t.Errorf("Verify(pin v1, no witness) rejected %+v, want old's signature as expired", rejected)
	}
	if !rep.Pinned || rep.Anchor != 1 {
		t.Errorf("Verify(pin v1) report anchor %d pinned %v, want 1, true", rep.Anchor, rep.Pinned)
	}

	// Without a pin the walk starts at version 1 and fails at version 2 the
	// same way.
	if _, err := c.Verify(now, "", nil); err == nil {
		t.Error("Verify(no pin, no witness) = nil, want a ChainError for version 2")
	} else {
		chainErr(t, err, 2)
	}

	// A witness that saw nothing changes nothing.
	if _, err := c.Verify(now, pin, witnessOf()); err == nil {
		t.Error("Verify(pin v1, empty witness) = nil, want a ChainError")
	}

	// Judged in 2020, as the signature would have it, the chain passes: the
	// time the verifier fixes decides, not one the signer claims.
	if _, err := c.Verify(inWindow, pin, nil); err != nil {
		t.Errorf("Verify(at %s) = %v, want nil", inWindow, err)
	}
}

// (b) A link the audit trail witnessed in force while its signer was valid
// still counts, judged at the witnessed time, and the report says so.
func TestVerifyWitnessedLink(t *testing.T) {
	c := expiredChain(t)
	now := time.Now()
	pin := c.Versions[0].Hash()
	w := witnessOf(sighting{2, c.Versions[1].Hash(), inWindow})

	rep, err := c.Verify(now, pin, w)
	if err != nil {
		t.Fatalf("Verify(pin v1, v2 witnessed %s) = %v, want nil", inWindow, err)
	}
	if want := map[int]time.Time{2: inWindow}; !reflect.DeepEqual(rep.WitnessedAt, want) {
		t.Errorf("Report.WitnessedAt = %v, want %v", rep.WitnessedAt, want)
	}
	if want := map[int][]string{1: {"root"}, 2: {"old"}, 3: {"new"}}; !reflect.DeepEqual(rep.Approvers, want) {
		t.Errorf("Report.Approvers = %v, want %v", rep.Approvers, want)
	}
	if rep.Version != 3 || rep.Hash != c.Current().Hash() {
		t.Errorf("Report version, hash = %d, %s, want 3, %s", rep.Version, rep.Hash, c.Current().Hash())
	}

	// Version 1 is judged against its own signers the same way.
	old := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{})
	o := member{"old", "security", "keys/old.pub", old.SSHLine, window}
	v1 := registryDoc(t, 1, 1, o)
	c = chainOf(t, keyFiles(o), link{v1, []*signature.Signature{sshSig(t, old, v1)}})
	if _, err := c.Verify(now, c.Versions[0].Hash(), nil); err == nil {
		t.Error("Verify(version 1 signed by its expired signer) = nil, want a ChainError")
	} else {
		chainErr(t, err, 1)
	}
	rep, err = c.Verify(now, c.Versions[0].Hash(), witnessOf(sighting{1, c.Versions[0].Hash(), inWindow}))
	if err != nil || !reflect.DeepEqual(rep.WitnessedAt, map[int]time.Time{1: inWindow}) {
		t.Errorf("Verify(version 1 witnessed) = %+v, %v, want approved as witnessed", rep, err)
	}
}

// (c) The witness must have seen that exact version, at a time that is not
// later than now and at which the signer was valid.
func TestVerifyWitnessMismatch(t *testing.T) {
	c := expiredChain(t)
	now := time.Now()
	pin := c.Versions[0].Hash()
	v2, v3 := c.Versions[1].Hash(), c.Versions[2].Hash()
	for _, tc := range []struct {
		name    string
		seen    sighting
		matched bool // the witness answers for version 2's hash
	}{
		{"another hash for version 2", sighting{2, v3, inWindow}, false},
		{"version 2's hash as another version", sighting{3, v2, inWindow}, false},
		{"witnessed after the window closed", sighting{2, v2, afterWindow}, true},
		{"witnessed before the window opened", sighting{2, v2, beforeWindow}, true},
	} {
		_, err := c.Verify(now, pin, witnessOf(tc.seen))
		if err == nil {
			t.Errorf("Verify(%s) = nil, want a ChainError for version 2", tc.name)
			continue
		}
		ce, _ := chainErr(t, err, 2)
		if got := ce.WitnessErr != nil; got != tc.matched {
			t.Errorf("Verify(%s) WitnessErr = %v, want non-nil %v", tc.name, ce.WitnessErr, tc.matched)
		}
		if tc.matched && (!ce.Witnessed.Equal(tc.seen.at) || !strings.Contains(ce.Error(), "as witnessed in force at")) {
			t.Errorf("Verify(%s) = %q, want the witnessed time %s in the error", tc.name, ce.Error(), tc.seen.at)
		}
	}

	// A witnessed time later than the verification time is no witness.
	_, err := c.Verify(now, pin, witnessOf(sighting{2, v2, now.Add(time.Hour)}))
	if err == nil {
		t.Error("Verify(witnessed after now) = nil, want a ChainError")
	} else if ce, _ := chainErr(t, err, 2); ce.WitnessErr != nil {
		t.Errorf("Verify(witnessed after now) WitnessErr = %v, want the witness ignored", ce.WitnessErr)
	}
}

// (d) T16, T17: an OpenPGP key whose certificate expired signs version 2
// today with a signature that claims a creation time inside the key's
// lifetime. Judged now it is refused; witnessed in force inside the lifetime
// it counts; witnessed after the expiry, or before the claimed creation, not.
func TestVerifyExpiredOpenPGPKeyBackdated(t *testing.T) {
	created := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	old := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{Created: created, Lifetime: 24 * time.Hour})
	nu := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{})
	root := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{})
	r := member{"root", "security", "keys/root.pub", root.SSHLine, ""}
	o := member{"old", "security", "keys/old.asc", old.PGPArmor, ""}
	n := member{"new", "security", "keys/new.pub", nu.SSHLine, ""}
	v1 := registryDoc(t, 1, 1, r, o)
	v2 := registryDoc(t, 2, 1, r, o, n)
	v3 := registryDoc(t, 3, 1, r, o, n)
	claimed := created.Add(2 * time.Hour)
	c := chainOf(t, keyFiles(r, o, n),
		link{v1, []*signature.Signature{sshSig(t, root, v1), pgpSig(t, old.PGP, v1, created.Add(time.Hour))}},
		link{v2, []*signature.Signature{pgpSig(t, old.PGP, v2, claimed)}},
		link{v3, []*signature.Signature{sshSig(t, nu, v3)}},
	)
	now := time.Now()
	pin := c.Versions[0].Hash()

	_, err := c.Verify(now, pin, nil)
	_, rejected := chainErr(t, err, 2)
	var ke *signature.KeyError
	if len(rejected) != 1 || !errors.As(rejected[0].Err, &ke) || ke.Reason != "expired" {
		t.Fatalf("Verify(backdated signature by expired key) rejected %+v, want the key expired", rejected)
	}

	witnessed := claimed.Add(time.Hour)
	rep, err := c.Verify(now, pin, witnessOf(sighting{2, c.Versions[1].Hash(), witnessed}))
	if err != nil || !rep.WitnessedAt[2].Equal(witnessed) {
		t.Fatalf("Verify(v2 witnessed %s) = %+v, %v, want approved as witnessed", witnessed, rep, err)
	}

	for _, at := range []time.Time{created.Add(48 * time.Hour), claimed.Add(-time.Hour)} {
		_, err := c.Verify(now, pin, witnessOf(sighting{2, c.Versions[1].Hash(), at}))
		if err == nil {
			t.Errorf("Verify(v2 witnessed %s) = nil, want a ChainError", at)
			continue
		}
		if ce, _ := chainErr(t, err, 2); ce.WitnessErr == nil {
			t.Errorf("Verify(v2 witnessed %s) WitnessErr = nil, want why it fails at that time", at)
		}
	}
}

// T2, T31: a registry that lists one key twice, in any two forms, under two
// ids or under one, is refused, naming both ids and both files.
func TestLoadKeysSameMaterial(t *testing.T) {
	k := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{})
	other := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{})
	g := keyfixture.NewGPG(t)
	gfpr, gpub := g.Generate(t, "Gee", "gee@example.test", keyfixture.KeyOpts{})
	gssh := g.ExportSSH(t, gfpr)
	type form struct {
		file string
		data []byte
	}
	pgp4 := form{"keys/x.asc", k.PGPArmor}
	pgp6 := form{"keys/x6.asc", k.PGPv6Armor}
	sshf := form{"keys/y.pub", k.SSHLine}
	sk := form{"keys/y-sk.pub", k.SKLine}
	for _, tc := range []struct {
		name string
		a, b form
	}{
		{"OpenPGP v4 and SSH", pgp4, sshf},
		{"OpenPGP v6 and SSH", pgp6, sshf},
		{"OpenPGP v4 and v6", pgp4, pgp6},
		{"SSH and security key", sshf, sk},
		{"gpg certificate and gpg --export-ssh-key", form{"keys/g.asc", gpub}, form{"keys/g.pub", gssh}},
	} {
		for _, sameID := range []bool{false, true} {
			var doc string
			if sameID {
				doc = "version: 1\nsigners:\n  - id: alice\n    roles: [security]\n    keys:\n      - " +
					keyRef(t, tc.a.file, tc.a.data) + "\n      - " + keyRef(t, tc.b.file, tc.b.data) + "\n"
			} else {
				doc = registryDoc(t, 1, 1, member{"alice", "security", tc.a.file, tc.a.data, ""}, member{"mallory", "approver", tc.b.file, tc.b.data, ""})
			}
			r := mustParse(t, []byte(doc))
			err := r.LoadKeys(reader(map[string][]byte{tc.a.file: tc.a.data, tc.b.file: tc.b.data}))
			var ie *signers.InvalidError
			if !errors.As(err, &ie) {
				t.Errorf("LoadKeys(%s, same id %v) = %v, want *signers.InvalidError", tc.name, sameID, err)
				continue
			}
			second := "mallory"
			if sameID {
				second = "alice"
			}
			for _, want := range []string{`"alice"`, `"` + second + `"`, "governance/" + tc.a.file, "governance/" + tc.b.file} {
				if !strings.Contains(ie.Msg, want) {
					t.Errorf("LoadKeys(%s, same id %v) = %q, want mention of %s", tc.name, sameID, ie.Msg, want)
				}
			}
			if ie.Hint != "a key belongs to one person and is listed once; remove one of them" {
				t.Errorf("LoadKeys(%s) hint = %q", tc.name, ie.Hint)
			}
		}
	}

	// Different keys in different forms load.
	doc := registryDoc(t, 1, 1, member{"alice", "security", pgp4.file, pgp4.data, ""}, member{"bob", "security", "keys/o.pub", other.SSHLine, ""})
	r := mustParse(t, []byte(doc))
	if err := r.LoadKeys(reader(map[string][]byte{pgp4.file: pgp4.data, "keys/o.pub": other.SSHLine})); err != nil {
		t.Errorf("LoadKeys(two different keys) = %v, want nil", err)
	}
}

// T32: each key file is bound by its SHA-256. Restoring a certificate from
// before its revocation, with no new registry version, is refused.
func TestLoadKeysFileHash(t *testing.T) {
	k := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{Created: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)})
	unrevoked := k.PGPArmor
	if err := k.PGP.Revoke(packet.KeyCompromised, "stolen", nil); err != nil {
		t.Fatal(err)
	}
	revokedCert := keyfixture.ArmorPublic(t, k.PGP)
	m := member{"alice", "security", "keys/alice.asc", revokedCert, ""}
	r := mustParse(t, []byte(registryDoc(t, 1, 1, m)))
	if err := r.LoadKeys(reader(keyFiles(m))); err != nil {
		t.Fatalf("LoadKeys(recorded file) = %v, want nil", err)
	}
	if !r.Signers[0].PublicKeys()[0].Revoked(time.Now()) {
		t.Fatal("the recorded certificate is not revoked")
	}

	err := r.LoadKeys(reader(map[string][]byte{m.file: unrevoked}))
	var ie *signers.InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("LoadKeys(certificate from before its revocation) = %v, want *signers.InvalidError", err)
	}
	for _, want := range []string{`"alice"`, "governance/keys/alice.asc", signers.FileHash(unrevoked), signers.FileHash(revokedCert)} {
		if !strings.Contains(ie.Msg, want) {
			t.Errorf("LoadKeys(restored file) = %q, want mention of %s", ie.Msg, want)
		}
	}
	if !strings.Contains(ie.Hint, "the key file changed without a new registry version") || !strings.Contains(ie.Hint, "groundzero signers") {
		t.Errorf("LoadKeys(restored file) hint = %q, want how to fix it", ie.Hint)
	}

	// One byte more is another file.
	if err := r.LoadKeys(reader(map[string][]byte{m.file: append(bytes.Clone(revokedCert), '\n')})); !errors.As(err, &ie) {
		t.Errorf("LoadKeys(file with a byte added) = %v, want *signers.InvalidError", err)
	}
}

// writeRepo makes a repository directory holding files under governance/.
func writeRepo(t *testing.T, files map[string][]byte) *repo.Repo {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &repo.Repo{Root: dir}
	for rel, data := range files {
		if err := r.WriteFile(rel, data); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// Load binds key files on disk; Edit writes no registry that Load would
// refuse.
func TestLoadAndEditOnDisk(t *testing.T) {
	alice := keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{})
	a := member{"alice", "security", "keys/alice.pub", alice.SSHLine, ""}
	doc := registryDoc(t, 1, 1, a)
	r := writeRepo(t, map[string][]byte{
		repo.SignersFile:                 []byte(doc),
		"governance/keys/alice.pub":      alice.SSHLine,
		"governance/keys/alice-pgp.asc":  alice.PGPArmor,
		"governance/keys/unrelated.pub":  keyfixture.NewEd25519(t, keyfixture.Ed25519Opts{}).SSHLine,
		"governance/keys/alice.pub.orig": alice.SSHLine,
	})
	if _, err := signers.Load(r); err != nil {
		t.Fatalf("Load = %v, want nil", err)
	}

	// Adding alice's key again, in OpenPGP form, as mallory is refused
	// before anything is written.
	_, err := signers.Edit(r, func(reg *signers.Registry) error {
		if got := len(reg.Signers[0].PublicKeys()); got != 1 {
			t.Errorf("Edit: mutate sees %d loaded keys for alice, want 1", got)
		}
		pk, err := signature.ParsePublicKey(alice.PGPArmor)
		if err != nil {
			return err
		}
		reg.Signers = append(reg.Signers, &signers.Signer{ID: "mallory", Roles: []string{"security"},
			Keys: []signers.KeyRef{{File: "keys/alice-pgp.asc", Fingerprint: pk.Fingerprint, SHA256: signers.FileHash(alice.PGPArmor)}}})
		return nil
	})
	var ie *signers.InvalidError
	if !errors.As(err, &ie) || !strings.Contains(ie.Msg, `"mallory"`) {
		t.Errorf("Edit(add alice's key as mallory) = %v, want *signers.InvalidError naming mallory", err)
	}
	if data, _ := r.ReadFile(repo.SignersFile, 1<<20); string(data) != doc {
		t.Errorf("Edit(refused) changed %s:\n%s", repo.SignersFile, data)
	}

	// A key file edited in place is refused at Load.
	if err := r.WriteFile("governance/keys/alice.pub", append(bytes.Clone(alice.SSHLine), '\n')); err != nil {
		t.Fatal(err)
	}
	if _, err := signers.Load(r); !errors.As(err, &ie) || !strings.Contains(ie.Msg, "governance/keys/alice.pub has sha256") {
		t.Errorf("Load(key file edited) = %v, want *signers.InvalidError about its sha256", err)
	}
}
