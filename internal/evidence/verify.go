package evidence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/evidence"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/trail"
	"github.com/groundzero/groundzero/record"
)

// VerifyConfig says how to judge a bundle.
type VerifyConfig struct {
	// Now is the time signatures are judged at.
	Now time.Time
	// TrustRoot pins a version of the signers registry by SHA-256; empty
	// means trust on first use of the bundle's version 1.
	TrustRoot string
}

// RecordCheck is the verdict on one signed file's signatures.
type RecordCheck struct {
	Path    string
	Kind    string   // the namespace its signatures were checked in
	Signers []string // who signed it validly
	Notes   []string // valid signatures by signers no longer active
	Problem string   // why it fails, or ""
}

// Report is the outcome of Verify.
type Report struct {
	Bundle *evidence.Bundle
	Index  *evidence.Index // nil when INDEX.json is unreadable
	// Problems name each file that fails, and why; none means the bundle
	// verifies.
	Problems []evidence.Problem
	// Registry is the bundle's signers registry, once its chain verifies.
	Registry        *signers.Registry
	RegistryVersion int
	RegistryHash    string
	Pinned          bool // the registry chain was anchored by a pin
	IndexSigners    []string
	Trail           *audit.Report
	Records         []RecordCheck
	checkedAt       time.Time
}

// OK reports whether the bundle verifies.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) fail(p, format string, args ...any) {
	r.Problems = append(r.Problems, evidence.Problem{Path: p, Reason: fmt.Sprintf(format, args...)})
}

// Verify checks a bundle offline: the index's signature by a signer of the
// bundle's registry (whose chain is anchored by the pin when given), every
// file's SHA-256 against the index, no file missing or extra, the trail's
// chain and tree against the checkpoints and their signatures, and every
// signed record's signatures. The error is for a bundle that cannot be
// unpacked at all (an unsafe entry, beyond the bounds, not a tar.gz); every
// other finding is in Report.Problems.
func Verify(ctx context.Context, r io.Reader, cfg VerifyConfig) (*Report, error) {
	b, err := evidence.Read(r)
	if err != nil {
		return nil, err
	}
	rep := &Report{Bundle: b, checkedAt: cfg.Now}
	data, ok := b.Files[evidence.IndexFile]
	if !ok {
		rep.fail(evidence.IndexFile, "missing: this is not an evidence bundle, or its index was removed")
		return rep, nil
	}
	ix, err := evidence.ParseIndex(data)
	if err != nil {
		rep.fail(evidence.IndexFile, "%v", err)
		return rep, nil
	}
	rep.Index = ix
	rep.Problems = append(rep.Problems, evidence.CheckFiles(b, ix)...)

	// The registry, from its pin or first use.
	chain, err := loadChain(b)
	if err != nil {
		rep.fail(evidence.RepoDir+"/"+repo.SignersFile, "%v", err)
	} else {
		sr, err := chain.Verify(cfg.Now, cfg.TrustRoot, nil)
		rep.RegistryVersion, rep.RegistryHash, rep.Pinned = sr.Version, sr.Hash, sr.Pinned
		if err != nil {
			rep.fail(evidence.RepoDir+"/"+repo.SignersFile, "%v", err)
		} else {
			rep.Registry = chain.Current()
		}
	}
	if rep.Registry == nil {
		return rep, nil // nothing can be vouched for
	}
	reg := rep.Registry

	// The index's signature.
	sigs, perr := bundleSigs(b, evidence.IndexFile)
	switch {
	case perr != nil:
		rep.fail(evidence.IndexFile, "%v", perr)
	case len(sigs) == 0:
		rep.fail(evidence.IndexFile, "not signed: %s.asc or %s.sig is missing", evidence.IndexFile, evidence.IndexFile)
	default:
		ids, err := signers.Count(reg.Check(data, sigs, evidence.Kind, cfg.Now, signers.Current),
			signers.Requirement{What: evidence.IndexFile, Threshold: 1})
		if err != nil {
			rep.fail(evidence.IndexFile, "signature does not verify: %s", rejected(err))
		} else {
			rep.IndexSigners = ids
			if !containsID(ids, ix.Exporter) {
				rep.fail(evidence.IndexFile, "names exporter %q, but is signed by %s", ix.Exporter, strings.Join(ids, ", "))
			}
		}
	}

	// The trail and its checkpoints, signed by the roles the bundle's
	// policy allows.
	var roles []string
	polPath := evidence.RepoDir + "/" + repo.PolicyFile
	if data, ok := b.Files[polPath]; ok {
		if pol, err := policy.Parse(repo.PolicyFile, data); err != nil {
			rep.fail(polPath, "%v", err)
		} else {
			roles = pol.Gates.Checkpoint.Roles
		}
	}
	var judged []*audit.SignedCheckpoint
	for _, sc := range b.Checkpoints() {
		c, err := trail.Judge(trail.StoredCheckpoint{Name: sc.Name, Body: sc.Body, Sigs: sc.Sigs}, trail.VerifyConfig{Registry: reg, Roles: roles, Now: cfg.Now})
		if err != nil {
			rep.fail(sc.Name, "malformed checkpoint: %v", err)
			continue
		}
		judged = append(judged, c)
	}
	tr, problems, err := evidence.VerifyTrail(b, ix, judged)
	if err != nil {
		return nil, err
	}
	rep.Trail = tr
	rep.Problems = append(rep.Problems, problems...)

	// Every other signed file.
	for _, name := range b.Names {
		if strings.HasSuffix(name, ".asc") || strings.HasSuffix(name, ".sig") || name == evidence.IndexFile ||
			strings.HasPrefix(name, evidence.CheckpointsDir+"/") || strings.HasPrefix(name, evidence.RepoDir+"/"+repo.SignersDir+"/") ||
			name == evidence.RepoDir+"/"+repo.SignersFile {
			continue
		}
		sigs, err := bundleSigs(b, name)
		if err != nil {
			rep.fail(name, "%v", err)
			continue
		}
		if len(sigs) == 0 {
			continue
		}
		rc := checkRecord(name, b.Files[name], sigs, reg, cfg.Now)
		if rc.Problem != "" {
			rep.fail(name, "%s", rc.Problem)
		}
		rep.Records = append(rep.Records, rc)
	}
	sort.SliceStable(rep.Problems, func(i, j int) bool { return rep.Problems[i].Path < rep.Problems[j].Path })
	return rep, nil
}

func containsID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// checkRecord judges a signed file's signatures: each must be by a key of
// the registry and verify over the file's exact bytes, in the namespace of
// the record's kind ("groundzero" for the manifest and other files). A valid
// signature by a signer who is no longer active is a note, not a failure:
// the record shows what was signed then.
func checkRecord(name string, data []byte, sigs []*signature.Signature, reg *signers.Registry, now time.Time) RecordCheck {
	ns := signers.Namespace
	kind, err := record.KindOf(data)
	if err == nil {
		ns = kind
	}
	rc := RecordCheck{Path: name, Kind: ns}
	if err != nil && strings.HasSuffix(name, ".json") {
		rc.Problem = err.Error()
		return rc
	}
	var bad []string
	for _, o := range reg.Check(data, sigs, ns, now, signers.Current) {
		var re *signers.RevokedError
		var we *signers.WindowError
		switch {
		case o.Err == nil:
			if !containsID(rc.Signers, o.Signer.ID) {
				rc.Signers = append(rc.Signers, o.Signer.ID)
			}
		case errors.As(o.Err, &re), errors.As(o.Err, &we):
			// The key is known; its signature over these bytes must still
			// hold.
			if _, k := reg.FindKey(o.Sig); k == nil || !signatureHolds(k, data, o.Sig, ns, now) {
				bad = append(bad, o.Err.Error()+", and the signature does not match the bytes")
				continue
			}
			rc.Notes = append(rc.Notes, o.Err.Error())
		default:
			bad = append(bad, o.Err.Error())
		}
	}
	if len(bad) > 0 {
		rc.Problem = "signature does not verify: " + strings.Join(bad, "; ")
	}
	return rc
}

// signatureHolds reports whether sig is a valid signature by k over data,
// whatever the signer's status: the check of the bytes alone.
func signatureHolds(k *signature.PublicKey, data []byte, sig *signature.Signature, ns string, now time.Time) bool {
	err := k.Verify(data, sig, ns, now)
	var bs *signature.BadSignatureError
	return err == nil || !errors.As(err, &bs)
}

// bundleSigs parses the signature files beside name.
func bundleSigs(b *evidence.Bundle, name string) ([]*signature.Signature, error) {
	var all []*signature.Signature
	for _, scheme := range []signature.Scheme{signature.OpenPGP, signature.SSH} {
		data, ok := b.Files[name+scheme.Ext()]
		if !ok {
			continue
		}
		sigs, err := signature.Parse(scheme, data)
		if err != nil {
			return nil, fmt.Errorf("%s%s: %v", name, scheme.Ext(), err)
		}
		all = append(all, sigs...)
	}
	return all, nil
}

// loadChain reads the bundle's signers registry and its earlier versions
// and keys, as signers.Load reads them from a repository.
func loadChain(b *evidence.Bundle) (*signers.Chain, error) {
	dir, err := os.MkdirTemp("", "gzevidence")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	prefix := evidence.RepoDir + "/" + repo.GovernanceDir + "/"
	for _, n := range b.Names {
		rel, ok := strings.CutPrefix(n, prefix)
		if !ok || !(rel == "signers.yaml" || strings.HasPrefix(rel, "signers.yaml.") ||
			strings.HasPrefix(rel, "signers.d/") || strings.HasPrefix(rel, "keys/")) {
			continue
		}
		p := filepath.Join(dir, repo.GovernanceDir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, b.Files[n], 0o600); err != nil {
			return nil, err
		}
	}
	if _, ok := b.Files[path.Join(evidence.RepoDir, repo.SignersFile)]; !ok {
		return nil, errors.New("missing: the bundle has no signers registry to judge signatures with")
	}
	return signers.Load(&repo.Repo{Root: dir})
}

// rejected says why signatures did not count, one reason per signature.
func rejected(err error) string {
	var te *signers.ThresholdError
	if !errors.As(err, &te) || len(te.Rejected) == 0 {
		return err.Error()
	}
	var reasons []string
	for _, o := range te.Rejected {
		reasons = append(reasons, o.Err.Error())
	}
	return strings.Join(reasons, "; ")
}
