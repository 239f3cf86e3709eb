package gate

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/lock"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/tfconfig"
)

// BackendFile is the rendered backend configuration, in an environment's
// configuration directory.
const BackendFile = "backend.tf"

// LockState is what the backend gate found for one environment.
type LockState struct {
	Env       string
	Dir       string // repository-relative configuration directory
	Lock      *lock.Lock
	Raw       []byte // the lock's bytes
	SHA256    string
	Approvers []string
	// Recorded is the newest lock the anchor records for the environment;
	// Revoked is set when that lock was revoked.
	Recorded *anchorLock
	Revoked  bool
}

type anchorLock struct {
	Version int
	SHA256  string
	Seq     int64
}

// Bootstrapped reports whether the environment has a lock, in the
// repository or in the audit trail.
func (s *LockState) Bootstrapped() bool { return s.Lock != nil || s.Recorded != nil }

// LockPath is the repository-relative path of env's lock.
func LockPath(dir string) string { return path.Join(dir, repo.BackendLockName) }

// ReadLock reads env's lock (in dir) and what the anchor records for env.
// A missing lock file is not an error; a malformed one is.
func (e *Env) ReadLock(env, dir string) (*LockState, error) {
	st := &LockState{Env: env, Dir: dir}
	if e.Anchor != nil {
		if l, revoked := e.Anchor.Lock(env); l != nil {
			st.Recorded = &anchorLock{Version: l.Version, SHA256: l.SHA256, Seq: l.Seq}
			st.Revoked = revoked
		}
	}
	p := LockPath(dir)
	data, err := e.Repo.ReadFile(p, lock.MaxSize)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	l, err := lock.Parse(p, data)
	if err != nil {
		return st, err
	}
	st.Lock, st.Raw, st.SHA256 = l, data, lock.SHA256(data)
	return st, nil
}

// LockApprovers returns who signed the lock, or why it is not signed well
// enough: two distinct people holding the roles of the bootstrap approval.
func (e *Env) LockApprovers(st *LockState) ([]string, error) {
	sigs, err := sigfile.Load(e.Repo, LockPath(st.Dir))
	if err != nil {
		return nil, err
	}
	rule := e.Policy.Gates.Approvals["bootstrap"]
	return lock.Approve("backend lock "+LockPath(st.Dir), st.Raw, sigs, e.Registry(), e.Now, lock.Kind, rule)
}

// BackendGate is gate 3 for one environment: its backend is the one the
// signed lock records, and backend.tf renders byte-identically from the
// template whose SHA-256 the lock records.
//   - Before the first bootstrap there is no lock and no backend block:
//     state is local, and the gate says so.
//   - Afterwards the lock must be there, signed by two people, be the lock
//     the audit trail records for the environment (not an older or revoked
//     one, T3), be for this environment (T7), and agree with policy.yaml.
//   - No other file may configure the backend or state encryption, and
//     nothing may hide backend.tf from OpenTofu.
func (e *Env) BackendGate(env, dir string) Result { return e.backendGate(env, dir, false) }

// BackendGateForBootstrap is the backend gate as a new bootstrap runs it: a
// revoked lock is what it replaces, so that passes; everything before it
// (no stray backend configuration, the lock is the recorded one) still
// applies.
func (e *Env) BackendGateForBootstrap(env, dir string) Result { return e.backendGate(env, dir, true) }

func (e *Env) backendGate(env, dir string, revokedOK bool) Result {
	const name = "backend"
	if e.Policy == nil {
		return fail(name, "not checked: policy.yaml did not load", "fix the policy gate first")
	}
	spec, _, specErr := backend.FromPolicy(e.Policy, env)
	blocks, tofuFiles, err := tfconfig.StateBlocks(e.Repo.Abs(dir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(name, err.Error(), "fix the configuration; OpenTofu would refuse it too")
	}
	var stray []string
	for _, b := range blocks {
		if b.File != BackendFile {
			what := b.Type
			if b.Label != "" {
				what += fmt.Sprintf(" %q", b.Label)
			}
			stray = append(stray, fmt.Sprintf("%s/%s:%d (%s)", dir, b.File, b.Line, what))
		}
	}
	if len(stray) > 0 {
		return fail(name, "state configuration outside "+dir+"/"+BackendFile+": "+strings.Join(stray, ", "),
			"remove it: the backend and state encryption are rendered into backend.tf from the signed .backend.lock (`groundzero bootstrap`)")
	}
	st, err := e.ReadLock(env, dir)
	if err != nil {
		return fail(name, err.Error(), "restore "+LockPath(dir)+" from git; a lock is never edited")
	}
	hasTF := e.Repo.Exists(path.Join(dir, BackendFile))
	if !st.Bootstrapped() {
		if hasTF {
			return fail(name, fmt.Sprintf("%s/%s exists, but environment %s has no backend lock", dir, BackendFile, env),
				"remove backend.tf; `groundzero bootstrap` renders it and writes the lock (a bootstrap that failed part-way puts the earlier file back; after one that was killed, remove it and run the bootstrap again to resume)")
		}
		detail := fmt.Sprintf("environment %s is not bootstrapped: its state is local until `groundzero bootstrap --env %s` creates the %s store", env, env, e.Policy.Backend.Kind)
		if specErr != nil {
			detail += fmt.Sprintf(" (bootstrap will need it complete: %v)", specErr)
		}
		return pass(name, detail)
	}
	lp := LockPath(dir)
	if st.Lock == nil {
		return fail(name, fmt.Sprintf("environment %s was bootstrapped (lock version %d, audit entry %d), but %s is missing", env, st.Recorded.Version, st.Recorded.Seq, lp),
			"restore "+lp+" and its signatures from git")
	}
	l := st.Lock
	switch r := st.Recorded; {
	case l.Env != env:
		return fail(name, fmt.Sprintf("%s is the lock of environment %s, not %s", lp, l.Env, env), "restore the lock of this environment from git")
	case r == nil:
		return fail(name, fmt.Sprintf("%s (version %d, sha256:%.16s) is not recorded in the audit trail: a lock counts only when `groundzero bootstrap` recorded it in the evidence store", lp, l.Version, st.SHA256),
			"bootstrap the environment through groundzero; a lock copied from elsewhere is refused")
	case l.Version < r.Version:
		return fail(name, fmt.Sprintf("rollback: %s is version %d, but version %d is in force (audit entry %d)", lp, l.Version, r.Version, r.Seq),
			"restore the newest lock from git")
	case st.SHA256 != r.SHA256:
		return fail(name, fmt.Sprintf("%s (sha256:%.16s) is not the lock the audit trail records for %s (version %d, sha256:%.16s, entry %d)", lp, st.SHA256, env, r.Version, r.SHA256, r.Seq),
			"restore the recorded lock from git; a lock is never edited")
	case st.Revoked && revokedOK:
		return pass(name, fmt.Sprintf("%s: lock version %d was revoked; a new bootstrap writes version %d", env, l.Version, l.Version+1))
	case st.Revoked:
		return fail(name, fmt.Sprintf("%s (version %d) was revoked", lp, l.Version),
			"bootstrap the environment again: `groundzero bootstrap --env "+env+" --intent FILE`")
	}
	if !e.Trusted {
		return fail(name, "not checked: the signers registry is not trusted", "fix the signers gate first")
	}
	ids, err := e.LockApprovers(st)
	if err != nil {
		return fail(name, err.Error(), "two people sign it: `groundzero backend sign --env "+env+" --key KEYSPEC`")
	}
	st.Approvers = ids
	if specErr != nil {
		return fail(name, specErr.Error(), "complete the backend section of governance/policy.yaml to match "+lp)
	}
	if d := lockDiffers(l, spec); d != "" {
		return fail(name, fmt.Sprintf("policy.yaml and %s disagree: %s", lp, d),
			"a different backend needs the lock revoked first (`groundzero backend revoke`), then a new bootstrap; or restore policy.yaml")
	}
	want, err := l.Render()
	if err != nil {
		return fail(name, fmt.Sprintf("%s: %v", lp, err), "use the groundzero release that wrote the lock, or revoke it and bootstrap again")
	}
	tfPath := path.Join(dir, BackendFile)
	got, err := e.Repo.ReadFile(tfPath, 1<<20)
	if err != nil {
		return fail(name, fmt.Sprintf("%s: %v", tfPath, err), "restore backend.tf from git, or render it: `groundzero backend render --env "+env+"`")
	}
	if !bytes.Equal(got, want) {
		return fail(name, fmt.Sprintf("%s does not render byte-identically from template %s with the values %s records (%s)", tfPath, l.Template, lp, firstDiff(got, want)),
			"restore it from git, or render it again: `groundzero backend render --env "+env+"`")
	}
	if !slices.Contains(tofuFiles, BackendFile) {
		return fail(name, fmt.Sprintf("%s is hidden from OpenTofu by backend.tofu", tfPath), "remove "+dir+"/backend.tofu")
	}
	detail := fmt.Sprintf("%s: %s store %s, lock version %d (sha256:%.16s) signed by %s; %s renders from template %s (sha256:%.16s)",
		env, l.Backend, where(l), l.Version, st.SHA256, strings.Join(ids, ", "), BackendFile, l.Template, l.TemplateSHA256)
	for _, w := range l.Waivers {
		detail += fmt.Sprintf("; probe %s waived (%s)", w.Probe, w.Reason)
	}
	return pass(name, detail)
}

func where(l *lock.Lock) string {
	if l.Backend == backend.KindLocal {
		return l.Path
	}
	return l.Bucket + "/" + l.StateKey
}

// lockDiffers names the first thing policy.yaml selects that the lock does
// not record.
func lockDiffers(l *lock.Lock, s backend.Spec) string {
	for _, c := range []struct{ what, lock, policy string }{
		{"kind", l.Backend, s.Kind},
		{"bucket", l.Bucket, s.Bucket},
		{"state key", l.StateKey, s.StateKey()},
		{"region", l.Region, s.Region},
		{"endpoint", l.Endpoint, s.Endpoint},
		{"namespace", l.Namespace, s.Namespace},
		{"key provider", l.KeyProvider, s.Key.Provider},
		{"key name", l.KeyName, s.Key.Name},
		{"lock method", l.LockMethod, s.Lock},
		{"lock table", l.LockTable, s.LockTable},
		{"path", l.Path, s.Path},
		{"state encryption", fmt.Sprint(l.Encrypt), fmt.Sprint(s.Encrypt)},
	} {
		if c.lock != c.policy {
			return fmt.Sprintf("%s is %q in policy.yaml, %q in the lock", c.what, c.policy, c.lock)
		}
	}
	return ""
}

// firstDiff says where two renderings first differ, by line.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		switch {
		case i >= len(g):
			return fmt.Sprintf("line %d is missing", i+1)
		case i >= len(w):
			return fmt.Sprintf("line %d is extra", i+1)
		case g[i] != w[i]:
			return fmt.Sprintf("line %d is %q, the template renders %q", i+1, strings.TrimSpace(g[i]), strings.TrimSpace(w[i]))
		}
	}
	return "they differ"
}
