package signers

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
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

// PinError: the chain does not contain the pinned version.
type PinError struct{ Pin string }

func (e *PinError) Error() string {
	return fmt.Sprintf("no version of the signers registry has the pinned SHA-256 %s", e.Pin)
}

// ChainError: a version is not approved as the chain requires.
type ChainError struct {
	Version int
	By      int // the version whose security signers must approve it
	Err     error
}

func (e *ChainError) Error() string {
	if e.By == e.Version {
		return fmt.Sprintf("signers registry version %d is not signed by its own security signers: %v", e.Version, e.Err)
	}
	return fmt.Sprintf("signers registry version %d is not approved by version %d's security signers: %v", e.Version, e.By, e.Err)
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
}

// NormalizePin accepts "sha256:HEX" or "HEX".
func NormalizePin(pin string) string {
	return strings.ToLower(strings.TrimPrefix(strings.TrimSpace(pin), "sha256:"))
}

// Verify walks the chain at time now. With a pin, the walk starts at the
// pinned version; without one it starts at version 1 (trust on first use).
// Each version must be approved by threshold distinct security signers of the
// version before it (version 1 by its own). The newest link is judged now;
// older links are history (see Mode).
func (c *Chain) Verify(now time.Time, pin string) (*Report, error) {
	n := len(c.Versions)
	rep := &Report{Version: n, Hash: c.Current().Hash(), Anchor: 1, Approvers: map[int][]string{}}
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
			return rep, &PinError{Pin: pin}
		}
	}
	mode := func(v int) Mode {
		if v == n {
			return Current
		}
		return History
	}
	if rep.Anchor == 1 {
		v1 := c.Versions[0]
		ids, err := approve(v1, v1, c.Sigs[0], now, mode(1))
		if err != nil {
			return rep, &ChainError{Version: 1, By: 1, Err: err}
		}
		rep.Approvers[1] = ids
	}
	for v := rep.Anchor; v < n; v++ {
		prev, next := c.Versions[v-1], c.Versions[v]
		ids, err := approve(prev, next, c.Sigs[v], now, mode(v+1))
		if err != nil {
			return rep, &ChainError{Version: v + 1, By: v, Err: err}
		}
		rep.Approvers[v+1] = ids
	}
	return rep, nil
}

func approve(by, target *Registry, sigs []*signature.Signature, now time.Time, mode Mode) ([]string, error) {
	outcomes := by.Check(target.Raw, sigs, Namespace, now, mode)
	return Count(outcomes, Requirement{
		What:      fmt.Sprintf("signers registry version %d", target.Version),
		Roles:     []string{RoleSecurity},
		Threshold: by.EffectiveThreshold(),
	})
}

// Edit applies mutate to the registry. When the current version is unsigned
// it is edited in place; when it carries signatures it is archived to
// signers.d/N.yaml with them and mutate applies to a new version N+1, which
// needs the signatures of version N's security signers. It returns the edited
// registry.
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
	signed := c.CurrentSigned()
	if signed {
		next.Version = cur.Version + 1
	}
	if err := mutate(next); err != nil {
		return nil, err
	}
	out := next.Format()
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
	return Parse(repo.SignersFile, out)
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
