package signers

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/signature"
)

// Chain is every version of the registry, oldest first, with the signatures
// of each.
type Chain struct {
	Versions []*Registry
	Sigs     [][]*signature.Signature
}

// Current is the newest version: governance/signers.yaml.
func (c *Chain) Current() *Registry { return c.Versions[len(c.Versions)-1] }

// CurrentSigned reports whether the newest version carries any signature.
func (c *Chain) CurrentSigned() bool { return len(c.Sigs[len(c.Sigs)-1]) > 0 }

func archivePath(v int) string { return path.Join(repo.SignersDir, strconv.Itoa(v)+".yaml") }

var archiveName = regexp.MustCompile(`^([1-9][0-9]{0,3})\.yaml(\.asc|\.sig)?$`)

func keyReader(r *repo.Repo) KeyReader {
	return func(rel string) ([]byte, error) {
		return r.ReadFile(path.Join(repo.GovernanceDir, rel), signature.MaxFileSize)
	}
}

// Load reads the current registry, its archived versions and all their
// signatures and keys. It checks structure, not trust: see Verify.
func Load(r *repo.Repo) (*Chain, error) {
	data, err := r.ReadFile(repo.SignersFile, 1<<20)
	if err != nil {
		return nil, err
	}
	cur, err := Parse(repo.SignersFile, data)
	if err != nil {
		return nil, err
	}
	n := cur.Version
	c := &Chain{}
	for v := 1; v < n; v++ {
		p := archivePath(v)
		data, err := r.ReadFile(p, 1<<20)
		if err != nil {
			return nil, &InvalidError{repo.SignersFile, fmt.Sprintf("is version %d, but earlier version %s cannot be read: %v", n, p, err),
				"restore governance/signers.d/ from version control; every earlier version must be kept"}
		}
		old, err := Parse(p, data)
		if err != nil {
			return nil, err
		}
		if old.Version != v {
			return nil, &InvalidError{p, fmt.Sprintf("holds version %d, want %d", old.Version, v), "restore the file from version control"}
		}
		sigs, err := sigfile.Load(r, p)
		if err != nil {
			return nil, err
		}
		c.Versions = append(c.Versions, old)
		c.Sigs = append(c.Sigs, sigs)
	}
	sigs, err := sigfile.Load(r, repo.SignersFile)
	if err != nil {
		return nil, err
	}
	// An interrupted edit may have archived the current version already;
	// its archived signatures are the current version's.
	if data, err := r.ReadFile(archivePath(n), 1<<20); err == nil {
		if string(data) != string(cur.Raw) {
			return nil, &InvalidError{archivePath(n), fmt.Sprintf("differs from %s, which has the same version %d", repo.SignersFile, n),
				"remove the stray archive file, or restore both from version control"}
		}
		more, err := sigfile.Load(r, archivePath(n))
		if err != nil {
			return nil, err
		}
		sigs = signature.Merge(sigs, more)
	}
	c.Versions = append(c.Versions, cur)
	c.Sigs = append(c.Sigs, sigs)
	if err := checkArchiveDir(r, n); err != nil {
		return nil, err
	}
	for _, v := range c.Versions {
		if err := v.LoadKeys(keyReader(r)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkArchiveDir refuses files in signers.d that are not versions below n:
// a stray high version must not pin out later ones (T5).
func checkArchiveDir(r *repo.Repo, n int) error {
	entries, err := os.ReadDir(r.Abs(repo.SignersDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		m := archiveName.FindStringSubmatch(e.Name())
		if m == nil {
			return &InvalidError{repo.SignersDir + "/" + e.Name(), "is not an archived registry version", "remove it; signers.d holds only N.yaml and its signatures"}
		}
		v, _ := strconv.Atoi(m[1])
		if v > n {
			return &InvalidError{repo.SignersDir + "/" + e.Name(), fmt.Sprintf("is version %d, newer than the current version %d", v, n),
				"remove it, or restore signers.yaml from version control"}
		}
	}
	return nil
}

// PinError: the chain does not contain the pinned version. Version and
// Actual are the current version and its SHA-256.
type PinError struct {
	Pin     string
	Version int
	Actual  string
}

func (e *PinError) Error() string {
	return fmt.Sprintf("no version of the signers registry has the pinned SHA-256 %s: the pin does not match (current version %d has SHA-256 %s)", e.Pin, e.Version, e.Actual)
}

// ChainError: a version is not approved as the chain requires.
type ChainError struct {
	Version int
	By      int   // the version whose security signers must approve it
	Err     error // why it is not approved at the verification time
	// Witnessed is the time a trusted witness recorded the version as in
	// force, when there is one; WitnessErr is why it is not approved at
	// that time either.
	Witnessed  time.Time
	WitnessErr error
}

func (e *ChainError) Error() string {
	var msg string
	if e.By == e.Version {
		msg = fmt.Sprintf("signers registry version %d is not signed by its own security signers: %v", e.Version, e.Err)
	} else {
		msg = fmt.Sprintf("signers registry version %d is not approved by version %d's security signers: %v", e.Version, e.By, e.Err)
	}
	if e.WitnessErr != nil {
		msg += fmt.Sprintf("; nor as witnessed in force at %s: %v", e.Witnessed.UTC().Format(time.RFC3339), e.WitnessErr)
	}
	return msg
}
func (e *ChainError) Unwrap() error { return e.Err }

// Report describes a verified chain.
type Report struct {
	Version int    // current version
	Hash    string // current version's SHA-256
	Anchor  int    // version the walk started from
	Pinned  bool   // the anchor was pinned from outside the repository
	// Approvers lists, per version from the anchor on, the ids whose
	// signatures approved it.
	Approvers map[int][]string
	// WitnessedAt holds, for each version that was approved only as a
	// trusted witness saw it, the witnessed time its signatures were judged
	// at. A version in Approvers but not here was judged at the
	// verification time.
	WitnessedAt map[int]time.Time
}

// Witness reports the time at which the trusted part of the audit trail
// first recorded the registry version with the given SHA-256 (lower-case hex
// of its exact bytes) as in force. ok is false when it never did. The trail
// must match both the version and the hash.
type Witness func(version int, sha256 string) (at time.Time, ok bool)

// NormalizePin accepts "sha256:HEX" or "HEX".
func NormalizePin(pin string) string {
	return strings.ToLower(strings.TrimPrefix(strings.TrimSpace(pin), "sha256:"))
}

// Verify walks the chain at time now. With a pin, the walk starts at the
// pinned version; without one it starts at version 1 (trust on first use).
// Each version must be approved by threshold distinct security signers of the
// version before it (version 1 by its own).
//
// Every link is judged at now: the signers' windows, their revocation in the
// approving version, and their keys' expiry and revocation. A link that fails
// at now is judged again at the time witnessed reports for that version and
// its hash, when there is one and it is not after now: windows and key expiry
// then count as at that time, and the link stands if it was valid when the
// trail saw it in force. Revocation always counts: a signer revoked in the
// approving version, or whose OpenPGP key (as the approving version's key
// file has it) is revoked, counts for no link, witnessed or not. A
// revocation recorded later does not undo the links the signer approved
// before it: each later version was approved on top of them. A nil
// witnessed witnesses nothing.
func (c *Chain) Verify(now time.Time, pin string, witnessed Witness) (*Report, error) {
	n := len(c.Versions)
	rep := &Report{Version: n, Hash: c.Current().Hash(), Anchor: 1, Approvers: map[int][]string{}, WitnessedAt: map[int]time.Time{}}
	if pin != "" {
		pin = NormalizePin(pin)
		found := false
		for i, v := range c.Versions {
			if v.Hash() == pin {
				rep.Anchor, rep.Pinned, found = i+1, true, true
				break
			}
		}
		if !found {
			return rep, &PinError{Pin: pin, Version: n, Actual: rep.Hash}
		}
	}
	link := func(v int) error {
		by := v - 1
		if v == 1 {
			by = 1
		}
		prev, target, sigs := c.Versions[by-1], c.Versions[v-1], c.Sigs[v-1]
		ids, err := approve(prev, target, sigs, now, now)
		if err == nil {
			rep.Approvers[v] = ids
			return nil
		}
		ce := &ChainError{Version: v, By: by, Err: err}
		if witnessed == nil {
			return ce
		}
		at, ok := witnessed(v, target.Hash())
		if !ok || at.IsZero() || at.After(now) {
			return ce
		}
		ids, werr := approve(prev, target, sigs, at, now)
		if werr != nil {
			ce.Witnessed, ce.WitnessErr = at, werr
			return ce
		}
		rep.Approvers[v] = ids
		rep.WitnessedAt[v] = at
		return nil
	}
	if rep.Anchor == 1 {
		if err := link(1); err != nil {
			return rep, err
		}
	}
	for v := rep.Anchor + 1; v <= n; v++ {
		if err := link(v); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// approve judges target's signatures against by's security signers at time
// at (now, or a witnessed time).
func approve(by, target *Registry, sigs []*signature.Signature, at, now time.Time) ([]string, error) {
	outcomes := by.checkAt(target.Raw, sigs, Namespace, at, now)
	return Count(outcomes, Requirement{
		What:      fmt.Sprintf("signers registry version %d", target.Version),
		Roles:     []string{RoleSecurity},
		Threshold: by.EffectiveThreshold(),
	})
}

// Edit applies mutate to the registry. When the current version is unsigned
// it is edited in place; when it carries signatures it is archived to
// signers.d/N.yaml with them and mutate applies to a new version N+1, which
// needs the signatures of version N's security signers. mutate sees the keys
// of the current version's signers loaded (Signer.PublicKeys). The edited
// registry must parse and its keys load (each key file's SHA-256 and
// fingerprint as recorded, no key material twice) before anything is
// written. It returns the edited registry.
func Edit(r *repo.Repo, mutate func(*Registry) error) (*Registry, error) {
	c, err := Load(r)
	if err != nil {
		return nil, err
	}
	cur := c.Current()
	next, err := Parse(cur.File, cur.Raw)
	if err != nil {
		return nil, err
	}
	for i, s := range next.Signers {
		s.keys = slices.Clone(cur.Signers[i].keys)
	}
	signed := c.CurrentSigned()
	if signed {
		next.Version = cur.Version + 1
	}
	if err := mutate(next); err != nil {
		return nil, err
	}
	out := next.Format()
	edited, err := Parse(repo.SignersFile, out)
	if err != nil {
		return nil, err
	}
	if err := edited.LoadKeys(keyReader(r)); err != nil {
		return nil, err
	}
	if signed {
		// Archive first, then drop the old signatures, then write the new
		// version: an interruption at any point leaves a chain that Load
		// understands and the command can simply be run again.
		if err := r.WriteFile(archivePath(cur.Version), cur.Raw); err != nil {
			return nil, err
		}
		for _, scheme := range []signature.Scheme{signature.OpenPGP, signature.SSH} {
			if err := writeSigs(r, archivePath(cur.Version)+scheme.Ext(), c.Sigs[len(c.Sigs)-1], scheme); err != nil {
				return nil, err
			}
		}
		if err := sigfile.Remove(r, repo.SignersFile); err != nil {
			return nil, err
		}
	}
	if err := r.WriteFile(repo.SignersFile, out); err != nil {
		return nil, err
	}
	return edited, nil
}

func writeSigs(r *repo.Repo, p string, sigs []*signature.Signature, scheme signature.Scheme) error {
	var keep []*signature.Signature
	for _, s := range sigs {
		if s.Scheme == scheme {
			keep = append(keep, s)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	data, err := signature.Format(keep)
	if err != nil {
		return err
	}
	return r.WriteFile(p, data)
}
