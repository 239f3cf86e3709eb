// Package gate runs the static governance gates of a repository, the ones
// that need no cloud: the policy file, the signers registry and its trust
// chain, the integrity manifest, the secret scan of the governed files, and
// the signed release tag. Each gate gives a Result that says pass or fail,
// why, and what fixes it.
package gate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/gittag"
	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/secretscan"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/strictyaml"
	"github.com/groundzero/groundzero/internal/trail"
)

// Result is the outcome of one gate.
type Result struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Hint   string `json:"hint,omitempty"`
	// Config marks a failure caused by unusable configuration (malformed
	// YAML, a missing file the command needs) rather than a failed check.
	Config bool `json:"-"`
}

func pass(name, detail string) Result { return Result{Name: name, OK: true, Detail: detail} }

func fail(name, detail, hint string) Result {
	return Result{Name: name, Detail: detail, Hint: hint}
}

// Env is what the gates read, loaded once per command at a fixed time.
type Env struct {
	Repo      *repo.Repo
	Now       time.Time
	TrustRoot string // pinned registry SHA-256, or ""
	Strict    bool   // trust on first use is a failure

	Policy    *policy.Policy
	PolicyErr error
	Chain     *signers.Chain
	ChainErr  error
	Report    *signers.Report
	// Trusted is set when the registry chain verified; only then may its
	// keys vouch for anything else.
	Trusted bool
	// Anchor is what the authoritative audit trail says was in force (nil
	// when it could not be read: AnchorErr says why). A registry or
	// governed state older than it records is a rollback.
	Anchor    *anchor.Index
	AnchorErr error
	// StorePinned: CI settings pin the evidence store
	// (GROUNDZERO_EVIDENCE_STORE), so an older signed policy.yaml cannot
	// name another one; --strict requires it, as it requires the trust root.
	StorePinned bool
	// Manifest is the verified MANIFEST, set by a passing ManifestGate.
	Manifest *manifest.Manifest
	// ManifestRaw is its exact bytes.
	ManifestRaw []byte
	// Secrets are the credentials SecretsGate found in governed files and
	// no waiver covers.
	Secrets []secretscan.Finding

	policyRaw []byte // the policy.yaml bytes Policy was parsed from
}

// RollbackError reports a registry older than, or different from, the
// version the audit trail recorded as in force (T3).
type RollbackError struct{ Msg string }

func (e *RollbackError) Error() string { return e.Msg }

// Load reads policy.yaml and the signers chain and verifies the chain from
// the pin, with the anchor's witness times, and that it is not older than
// the version the anchor records as in force. ix is the anchor, or nil with
// anchorErr saying why it could not be read.
func Load(r *repo.Repo, now time.Time, trustRoot string, strict bool, ix *anchor.Index, anchorErr error) *Env {
	e := &Env{Repo: r, Now: now, TrustRoot: trustRoot, Strict: strict, Anchor: ix, AnchorErr: anchorErr}
	if data, err := r.ReadFile(repo.PolicyFile, strictyaml.MaxSize); err != nil {
		e.PolicyErr = err
	} else {
		e.Policy, e.PolicyErr = policy.Parse(repo.PolicyFile, data)
		e.policyRaw = data
	}
	e.Chain, e.ChainErr = signers.Load(r)
	if e.ChainErr == nil {
		var witness signers.Witness
		if ix != nil {
			witness = ix.Witness
		}
		e.Report, e.ChainErr = e.Chain.Verify(now, trustRoot, witness)
	}
	if e.ChainErr == nil && ix != nil && ix.Registry != nil {
		seen := ix.Registry
		switch cur := e.Report.Version; {
		case cur < seen.Version:
			e.ChainErr = &RollbackError{fmt.Sprintf("rollback: %s is version %d, but version %d was in force before (audit entry %d in %s)", repo.SignersFile, cur, seen.Version, seen.Seq, ix.Store)}
		case e.Chain.Versions[seen.Version-1].Hash() != seen.SHA256:
			e.ChainErr = &RollbackError{fmt.Sprintf("version %d of the signers registry is not the one in force before (audit entry %d in %s recorded sha256:%.16s): its history was rewritten", seen.Version, seen.Seq, ix.Store, seen.SHA256)}
		}
	}
	e.Trusted = e.ChainErr == nil
	return e
}

// Demo reports whether every named environment (every declared one when
// names is empty) is marked demo-grade in policy.yaml.
func (e *Env) Demo(names ...string) bool {
	if e.Policy == nil {
		return false
	}
	if len(names) == 0 {
		for _, env := range e.Policy.Environments {
			names = append(names, env.Name)
		}
	}
	for _, n := range names {
		if env := e.Policy.Environment(n); env == nil || !env.Demo {
			return false
		}
	}
	return len(names) > 0
}

// AnchorGate reports whether the freshness anchor can be relied on for the
// named environments (all when none are named): the authoritative evidence
// store was read and verified. A local store serves demo-grade environments
// only, and never under --strict.
func (e *Env) AnchorGate(envs ...string) Result {
	const name = "anchor"
	ix := e.Anchor
	var torn *trail.TornError
	switch {
	case errors.As(e.AnchorErr, &torn):
		return fail(name, "the freshness anchor cannot be read: "+e.AnchorErr.Error(),
			"an append was interrupted; `groundzero audit repair` moves the torn bytes aside (they are kept), then run check again")
	case e.AnchorErr != nil:
		return fail(name, "the freshness anchor cannot be read: "+e.AnchorErr.Error(),
			"the evidence store that policy.yaml names must be reachable and readable; rollback and replay are judged against it")
	case ix == nil:
		return fail(name, "the freshness anchor was not read", "")
	case !ix.Report.OK():
		return fail(name, fmt.Sprintf("the audit trail in %s does not verify: %s", ix.Store, ix.Report.Problem),
			"`groundzero audit verify` shows the damage; compare the trail with its WORM copy before anything else")
	}
	what := fmt.Sprintf("%s: %d entries", ix.Store, ix.Report.Entries)
	if cp := ix.Report.Latest; cp != nil {
		what += fmt.Sprintf(", trusted checkpoint of %d at %s", cp.Size, cp.Time.Format(time.RFC3339))
	} else {
		what += ", no trusted checkpoint yet"
	}
	if ix.Authoritative {
		switch {
		case e.Strict && e.TrustRoot == "":
			return fail(name, what+"; but no trust root is pinned", "pin the registry with --trust-root or GROUNDZERO_TRUST_ROOT")
		case e.Strict && !e.StorePinned:
			return fail(name, what+"; but the store is not pinned outside the repository (--strict): an older signed policy.yaml could name another store",
				"set GROUNDZERO_EVIDENCE_STORE to this store's URL in CI settings the repository cannot change")
		}
		return pass(name, what)
	}
	hint := "name object storage with Object Lock as evidence.store in governance/policy.yaml (s3://BUCKET/PREFIX)"
	switch {
	case e.Strict:
		return fail(name, what+"; a local store is a cache, not an authoritative anchor (--strict)", hint)
	case !e.Demo(envs...):
		return fail(name, what+"; a local store is a cache, accepted only for environments marked demo: true", hint)
	}
	return pass(name, what+"; local store: demo-grade only")
}

// Registry returns the current registry, or nil when it could not be read.
func (e *Env) Registry() *signers.Registry {
	if e.Chain == nil {
		return nil
	}
	return e.Chain.Current()
}

func isConfig(err error) bool {
	var se *strictyaml.Error
	var tl *repo.TooLargeError
	return errors.As(err, &se) || errors.As(err, &tl) || errors.Is(err, fs.ErrNotExist)
}

// PolicyGate reports whether policy.yaml is usable.
func (e *Env) PolicyGate() Result {
	if e.PolicyErr != nil {
		// Whatever stops policy.yaml from loading (syntax, schema, size,
		// an unreadable file) is a configuration problem (T8).
		r := fail("policy", e.PolicyErr.Error(), hintFor(e.PolicyErr, repo.PolicyFile))
		r.Config = true
		return r
	}
	return pass("policy", fmt.Sprintf("%s valid; backend %s; %d environment(s)", repo.PolicyFile, e.Policy.Backend.Kind, len(e.Policy.Environments)))
}

func hintFor(err error, file string) string {
	var se *strictyaml.Error
	if errors.As(err, &se) && se.Hint != "" {
		return se.Hint
	}
	var pe *policy.InvalidError
	if errors.As(err, &pe) {
		return pe.Hint
	}
	var ie *signers.InvalidError
	if errors.As(err, &ie) {
		return ie.Hint
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "run `groundzero init` in the repository root, or restore " + file + " from version control"
	}
	return ""
}

// SignersGate reports whether the registry chain verifies from its anchor.
func (e *Env) SignersGate() Result {
	const name = "signers"
	if e.ChainErr != nil {
		var pinErr *signers.PinError
		var chainErr *signers.ChainError
		var rbErr *RollbackError
		switch {
		case errors.As(e.ChainErr, &rbErr):
			return fail(name, e.ChainErr.Error(), "restore governance/signers.yaml and governance/signers.d/ to the newest version from version control")
		case errors.As(e.ChainErr, &pinErr):
			return fail(name, e.ChainErr.Error(),
				"the registry was replaced or rewritten; restore governance/signers.yaml and governance/signers.d/ from a reviewed commit, or re-pin after an out-of-band review")
		case errors.As(e.ChainErr, &chainErr):
			file := repo.SignersFile
			if chainErr.Version < e.Report.Version {
				file = fmt.Sprintf("%s/%d.yaml", repo.SignersDir, chainErr.Version)
			}
			return fail(name, e.ChainErr.Error(),
				fmt.Sprintf("have version %d's security signers sign it: `groundzero signers sign --key KEYSPEC` (signatures go to %s.asc or .sig)", chainErr.By, file))
		}
		r := fail(name, e.ChainErr.Error(), hintFor(e.ChainErr, repo.SignersFile))
		r.Config = isConfig(e.ChainErr)
		return r
	}
	rep := e.Report
	reg := e.Registry()
	detail := fmt.Sprintf("%s version %d (sha256:%s) approved by %s", repo.SignersFile, rep.Version, rep.Hash[:16], strings.Join(rep.Approvers[rep.Version], ", "))
	// Links whose signers are no longer valid stand as the anchor saw them.
	var seen []string
	for v := 1; v <= rep.Version; v++ {
		if at, ok := rep.WitnessedAt[v]; ok {
			seen = append(seen, fmt.Sprintf("version %d as witnessed in force at %s", v, at.Format(time.RFC3339)))
		}
	}
	if len(seen) > 0 {
		detail += "; " + strings.Join(seen, ", ")
	}
	if rep.Pinned {
		return pass(name, fmt.Sprintf("%s; chain verified from pinned version %d; %d signer(s)", detail, rep.Anchor, len(reg.Signers)))
	}
	if e.Strict {
		return fail(name, detail+"; no trust root is pinned (trust on first use)",
			"pin the registry: pass --trust-root "+e.Chain.Versions[0].Hash()+" or set GROUNDZERO_TRUST_ROOT in CI settings the repository cannot change")
	}
	return pass(name, detail+"; trust on first use: no --trust-root pinned (v1 sha256:"+e.Chain.Versions[0].Hash()+")")
}

// ManifestGate checks MANIFEST against the work tree and its signatures
// against the registry.
func (e *Env) ManifestGate(ctx context.Context) Result {
	const name = "manifest"
	data, err := e.Repo.ReadFile(repo.ManifestFile, manifest.MaxSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail(name, repo.ManifestFile+" is missing", "run `groundzero manifest update`, review, then `groundzero manifest sign`")
		}
		r := fail(name, err.Error(), "regenerate it with `groundzero manifest update` and sign it again")
		r.Config = isConfig(err)
		return r
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return fail(name, err.Error(), "regenerate it with `groundzero manifest update` and sign it again")
	}
	problems, err := manifest.Check(ctx, e.Repo, m)
	if err != nil {
		return fail(name, err.Error(), "governed files must be regular files inside the repository")
	}
	if len(problems) > 0 {
		var lines []string
		for _, p := range problems {
			lines = append(lines, p.String())
		}
		return fail(name, strings.Join(lines, "; "),
			"if the change is intended, run `groundzero manifest update` and have an approver sign it (`groundzero manifest sign`); otherwise restore the file")
	}
	approvers, err := e.manifestApprovers(data)
	if err != nil {
		return fail(name, err.Error(), "an approver or security signer signs it: `groundzero manifest sign --key KEYSPEC`")
	}
	if err := e.loadedAsListed(m); err != nil {
		return fail(name, err.Error(), "governed files must not change while groundzero runs; run the command again, and find what wrote them")
	}
	if err := e.manifestFresh(m, data); err != nil {
		return fail(name, err.Error(), "restore governance/ from the newest reviewed commit: an older signed state cannot be replayed")
	}
	e.Manifest, e.ManifestRaw = m, data
	return pass(name, fmt.Sprintf("%d governed file(s) match %s version %d; signed by %s", len(m.Entries), repo.ManifestFile, m.Version, strings.Join(approvers, ", ")))
}

// loadedAsListed checks that the policy and the registry versions the gates
// parsed, earlier in the command, are the bytes the manifest lists: a file
// swapped between being read and being hashed is caught (T30).
func (e *Env) loadedAsListed(m *manifest.Manifest) error {
	want := map[string][]byte{}
	if e.policyRaw != nil {
		want[repo.PolicyFile] = e.policyRaw
	}
	if e.Chain != nil {
		for _, v := range e.Chain.Versions {
			want[v.File] = v.Raw
		}
	}
	for _, en := range m.Entries {
		if raw, ok := want[en.Path]; ok && sha256.Sum256(raw) != en.Sum {
			return fmt.Errorf("%s changed while it was being checked: the bytes read earlier in this command are not the ones MANIFEST lists", en.Path)
		}
	}
	return nil
}

// manifestFresh checks the governed state's version against the newest one
// the anchor records as in force (T33).
func (e *Env) manifestFresh(m *manifest.Manifest, data []byte) error {
	if e.Anchor == nil || e.Anchor.Manifest == nil {
		return nil
	}
	seen := e.Anchor.Manifest
	at := fmt.Sprintf("audit entry %d in %s", seen.Seq, e.Anchor.Store)
	sum := sha256.Sum256(data)
	switch {
	case m.Version == 0:
		return &RollbackError{fmt.Sprintf("rollback: %s has no version line, but version %d was in force (%s)", repo.ManifestFile, seen.Version, at)}
	case m.Version < seen.Version:
		return &RollbackError{fmt.Sprintf("rollback: %s is version %d, but version %d was in force (%s)", repo.ManifestFile, m.Version, seen.Version, at)}
	case m.Version == seen.Version && hex.EncodeToString(sum[:]) != seen.SHA256:
		return &RollbackError{fmt.Sprintf("%s version %d is not the one in force (%s recorded sha256:%.16s): the governed state was rewritten", repo.ManifestFile, m.Version, at, seen.SHA256)}
	case m.Version == seen.Version+1 && m.Previous != seen.SHA256:
		return &RollbackError{fmt.Sprintf("%s version %d names previous sha256:%.16s, but version %d in force was sha256:%.16s (%s): it does not follow the governed state", repo.ManifestFile, m.Version, m.Previous, seen.Version, seen.SHA256, at)}
	}
	return nil
}

func (e *Env) manifestApprovers(data []byte) ([]string, error) {
	if !e.Trusted {
		return nil, fmt.Errorf("signatures not checked: the signers registry is not trusted")
	}
	sigs, err := sigfile.Load(e.Repo, repo.ManifestFile)
	if err != nil {
		return nil, err
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%s is not signed: neither %s.asc nor %s.sig exists", repo.ManifestFile, repo.ManifestFile, repo.ManifestFile)
	}
	need := 1
	if e.Policy != nil {
		need = e.Policy.Gates.Manifest.Approvals
	}
	outcomes := e.Registry().Check(data, sigs, signers.Namespace, e.Now, signers.Current)
	return signers.Count(outcomes, signers.Requirement{
		What:      repo.ManifestFile,
		Roles:     []string{signers.RoleApprover, signers.RoleSecurity},
		Threshold: need,
	})
}

// TagRequired reports whether the tag gate applies.
func (e *Env) TagRequired(flag bool) bool {
	return flag || (e.Policy != nil && e.Policy.Gates.RequireTag)
}

// TagGate checks that ref (or, for "HEAD", some tag on the governed commit)
// is an annotated tag of the governed commit, signed by a current release
// signer, and that no governed file has uncommitted changes. The governed
// commit is HEAD, less the commits on its first-parent line that only
// change signed records (gittag.Governed): approvals committed after the
// tag do not move what the tag vouches for.
func (e *Env) TagGate(ctx context.Context, ref string) Result {
	const name = "tag"
	head, err := gittag.Head(ctx, e.Repo)
	if err != nil {
		return fail(name, "HEAD has no commit", "commit the governed files, then tag the commit with `git tag -s`")
	}
	if !e.Trusted {
		return fail(name, "not checked: the signers registry is not trusted", "fix the signers gate first")
	}
	dirty, err := gittag.Dirty(ctx, e.Repo, repo.GovernanceDir, repo.BootstrapDir)
	if err != nil {
		return fail(name, err.Error(), "")
	}
	var governedDirty []string
	for _, p := range dirty {
		if manifest.IsGoverned(p) || p == repo.ManifestFile || strings.HasPrefix(p, repo.ManifestFile+".") {
			governedDirty = append(governedDirty, p)
		}
	}
	if len(governedDirty) > 0 {
		return fail(name, "governed files have uncommitted changes: "+strings.Join(governedDirty, ", "),
			"commit the changes and tag the new commit, or restore the files (`git restore`)")
	}
	governed, extra, err := gittag.Governed(ctx, e.Repo)
	if err != nil {
		return fail(name, err.Error(), "")
	}
	var refs []string
	if ref == "HEAD" {
		names, err := gittag.At(ctx, e.Repo, governed)
		if err != nil {
			return fail(name, err.Error(), "")
		}
		if len(names) == 0 {
			if extra == 0 {
				return fail(name, fmt.Sprintf("HEAD (%.12s) has no tag", head),
					"tag the commit with a signed annotated tag: `git tag -s vX.Y.Z -m ...` by a release signer")
			}
			return fail(name, fmt.Sprintf("the governed commit %.12s (HEAD less %s) has no tag", governed, recordsOnlyCommits(extra)),
				"tag the governed commit with a signed annotated tag: `git tag -s vX.Y.Z -m ... "+governed[:12]+"` by a release signer")
		}
		for _, n := range names {
			refs = append(refs, "refs/tags/"+n)
		}
	} else {
		refs = []string{ref}
	}
	var reasons []string
	for _, rf := range refs {
		detail, err := e.verifyTag(ctx, rf, governed, extra)
		if err == nil {
			return pass(name, detail)
		}
		reasons = append(reasons, err.Error())
	}
	return fail(name, strings.Join(reasons, "; "),
		"tag the governed commit (HEAD, less commits that only change signed records) with `git tag -s` using the key of a current signer with role release (gpg.format openpgp or ssh)")
}

// recordsOnly describes extra commits that only change signed records.
func recordsOnlyCommits(extra int) string {
	if extra == 1 {
		return "1 commit that only changes signed records"
	}
	return fmt.Sprintf("%d commits that only change signed records", extra)
}

// verifyTag checks one tag against the governed commit, which HEAD follows
// by extra records-only commits.
func (e *Env) verifyTag(ctx context.Context, ref, governed string, extra int) (string, error) {
	short := strings.TrimPrefix(ref, "refs/tags/")
	tr, err := gittag.Read(ctx, e.Repo, ref)
	if err != nil {
		return "", fmt.Errorf("%s: %w", short, err)
	}
	t := tr.Tag
	if t.Type != "commit" || t.Object != governed {
		if extra == 0 {
			return "", fmt.Errorf("%s: tags %s %.12s, but HEAD is %.12s", short, t.Type, t.Object, governed)
		}
		return "", fmt.Errorf("%s: tags %s %.12s, but the governed commit is %.12s (HEAD less %s)", short, t.Type, t.Object, governed, recordsOnlyCommits(extra))
	}
	sigs, err := t.Signatures()
	if err != nil {
		return "", fmt.Errorf("%s: %w", short, err)
	}
	outcomes := e.Registry().Check(t.Payload, sigs, gittag.Namespace, e.Now, signers.Current)
	ids, err := signers.Count(outcomes, signers.Requirement{What: "tag " + short, Roles: []string{signers.RoleRelease}, Threshold: 1})
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("%s (%.12s) signed with %s by %s (release)", short, governed, t.Scheme, strings.Join(ids, ", "))
	if extra > 0 {
		detail += "; HEAD adds " + recordsOnlyCommits(extra)
	}
	return detail, nil
}
