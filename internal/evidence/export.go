// Package evidence builds, verifies and renders groundzero's evidence bundle
// for auditors (the format is package github.com/groundzero/groundzero/evidence):
// Export collects the trail, checkpoints, artifacts and governed records from
// the authoritative evidence store and the repository into one signed
// bundle; Verify checks a bundle offline, signatures included; Render writes
// the auditor's HTML report.
package evidence

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/evidence"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/trail"
)

//go:embed verify.py
var verifyPy []byte

// VerifierScript returns verify.py, the standard-library verifier shipped
// in every bundle.
func VerifierScript() []byte { return bytes.Clone(verifyPy) }

// Governed directories whose records a bundle carries.
const (
	BreakGlassDir = "governance/breakglass"
	IncidentsDir  = "governance/incidents"
	MachinesDir   = "governance/machines"
)

// ExportConfig says what to export and who signs it.
type ExportConfig struct {
	Repo  *repo.Repo
	Store trail.Store
	// StoreName names the store in the index, without credentials.
	StoreName string
	// Registry judges the store's checkpoints; Roles are the roles
	// allowed to sign them (any when empty).
	Registry *signers.Registry
	Roles    []string
	Now      time.Time
	// Since and Until bound the period in scope; zero means open.
	Since, Until time.Time
	// Signer signs the index as Exporter, a registry signer id.
	Signer   sign.Signer
	Exporter string
	// RetentionDays and WORM describe the store's retention.
	RetentionDays int
	WORM          bool
}

// ExportResult says what went into the bundle.
type ExportResult struct {
	Index       *evidence.Index
	IndexSHA256 string
	Checkpoints int
	Artifacts   int
	Records     int
	// Uncovered counts the store's entries after the exported checkpoint,
	// left out because no checkpoint vouches for them yet.
	Uncovered int64
	Bytes     int64
}

// NoCheckpointError reports a period that no trusted checkpoint covers.
type NoCheckpointError struct {
	Store   string
	Entries int64
}

func (e *NoCheckpointError) Error() string {
	return fmt.Sprintf("%s: no checkpoint signed by a registry signer covers the %d entries of the period", e.Store, e.Entries)
}

// TooLargeError reports a bundle beyond what a reader accepts (T8).
type TooLargeError struct{ What string }

func (e *TooLargeError) Error() string { return "the bundle would be too large: " + e.What }

// Export writes a signed bundle to w: the whole trail from entry 0 to the
// newest checkpoint that covers the period, the trusted checkpoints up to
// it, the artifacts and records of the period, and the governed files that
// say who may do what.
func Export(ctx context.Context, w io.Writer, cfg ExportConfig) (*ExportResult, error) {
	m := Controls()
	files := map[string][]byte{}
	classes := map[string]string{}
	var total int64
	add := func(name, class string, data []byte) error {
		if len(data) > evidence.MaxFileSize {
			return &TooLargeError{fmt.Sprintf("%s is %d bytes, more than %d", name, len(data), evidence.MaxFileSize)}
		}
		if total += int64(len(data)); total > evidence.MaxTotalSize {
			return &TooLargeError{fmt.Sprintf("more than %d bytes in all; export a shorter period with --since and --until", evidence.MaxTotalSize)}
		}
		if len(files) >= evidence.MaxFiles-8 {
			return &TooLargeError{fmt.Sprintf("more than %d files; export a shorter period", evidence.MaxFiles)}
		}
		files[name], classes[name] = data, class
		return nil
	}

	// The trail, judged as audit verify judges it.
	stored, err := cfg.Store.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	vcfg := trail.VerifyConfig{Registry: cfg.Registry, Roles: cfg.Roles, Now: cfg.Now}
	var trusted []*audit.SignedCheckpoint
	byName := map[string]trail.StoredCheckpoint{}
	for _, sc := range stored {
		c, err := trail.Judge(sc, vcfg)
		if err != nil || c.Ignored != "" {
			continue
		}
		trusted = append(trusted, c)
		byName[sc.Name] = sc
	}
	rc, err := cfg.Store.Entries(ctx)
	if err != nil {
		return nil, err
	}
	all, err := io.ReadAll(io.LimitReader(rc, evidence.MaxFileSize+1))
	rc.Close()
	if err != nil {
		return nil, err
	}
	if len(all) > evidence.MaxFileSize {
		return nil, &TooLargeError{fmt.Sprintf("the trail is more than %d bytes", evidence.MaxFileSize)}
	}
	rep, err := audit.Verify(bytes.NewReader(all), trusted, audit.Options{})
	if err != nil {
		return nil, err
	}
	if !rep.OK() {
		return nil, &trail.DamagedError{Store: cfg.Store.URL(), Report: rep}
	}
	lines := bytes.SplitAfter(all, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	// The entries the period reaches, and the checkpoint that covers them.
	need := int64(len(lines))
	if !cfg.Until.IsZero() {
		need = 0
		until := cfg.Until.UTC().Format(time.RFC3339)
		for _, l := range lines {
			if _, _, t, ok := audit.EntryFields(bytes.TrimSuffix(l, []byte("\n"))); ok && t <= until {
				need++
			}
		}
	}
	var cover *audit.SignedCheckpoint
	for _, c := range trusted {
		switch {
		case cfg.Until.IsZero():
			if cover == nil || c.Size > cover.Size {
				cover = c
			}
		case c.Size >= need && (cover == nil || c.Size < cover.Size):
			cover = c
		}
	}
	if cover == nil || cover.Size == 0 {
		return nil, &NoCheckpointError{Store: cfg.Store.URL(), Entries: need}
	}
	n := cover.Size
	entries := bytes.Join(lines[:n], nil)
	if err := add(evidence.EntriesFile, "trail", entries); err != nil {
		return nil, err
	}
	res := &ExportResult{Uncovered: int64(len(lines)) - n}
	for _, c := range trusted {
		if c.Size > n {
			continue
		}
		sc := byName[c.Name]
		base := evidence.CheckpointsDir + "/" + path.Base(sc.Name)
		if err := add(base, "checkpoint", sc.Body); err != nil {
			return nil, err
		}
		for ext, sig := range sc.Sigs {
			if err := add(base+ext, "checkpoint", sig); err != nil {
				return nil, err
			}
		}
		res.Checkpoints++
	}

	// What the period reaches: its entries, by their bytes.
	var scope [][]byte
	since := ""
	if !cfg.Since.IsZero() {
		since = cfg.Since.UTC().Format(time.RFC3339)
	}
	for _, l := range lines[:n] {
		if _, _, t, ok := audit.EntryFields(bytes.TrimSuffix(l, []byte("\n"))); ok && t >= since {
			scope = append(scope, l)
		}
	}
	filtered := !cfg.Since.IsZero() || !cfg.Until.IsZero()
	inScope := func(name string) bool {
		if !filtered {
			return true
		}
		id := strings.TrimSuffix(strings.TrimSuffix(name, ".asc"), ".sig")
		id = strings.TrimSuffix(id, path.Ext(id))
		if i := strings.IndexByte(id, '-'); i >= 0 && artifactClass(name) != "artifact" {
			id = id[i+1:]
		}
		for _, l := range scope {
			if bytes.Contains(l, []byte(id)) {
				return true
			}
		}
		return false
	}

	// Artifacts of the period.
	names, err := cfg.Store.Artifacts(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if !inScope(name) {
			continue
		}
		data, err := cfg.Store.Artifact(ctx, name)
		if err != nil {
			return nil, err
		}
		if err := add(evidence.ArtifactsDir+"/"+name, artifactClass(name), data); err != nil {
			return nil, err
		}
		res.Artifacts++
	}

	// Governed files: always the ones that say who may do what; records of
	// the period.
	r := cfg.Repo
	addRepo := func(rel, class string) error {
		data, err := r.ReadFile(rel, repo.MaxFileSize)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := add(evidence.RepoDir+"/"+rel, class, data); err != nil {
			return err
		}
		res.Records++
		return nil
	}
	addSigned := func(rel, class string) error {
		for _, p := range []string{rel, rel + ".asc", rel + ".sig"} {
			if err := addRepo(p, class); err != nil {
				return err
			}
		}
		return nil
	}
	for _, f := range []struct{ rel, class string }{
		{repo.PolicyFile, "policy"}, {repo.SignersFile, "signers"}, {repo.ManifestFile, "manifest"},
	} {
		if err := addSigned(f.rel, f.class); err != nil {
			return nil, err
		}
	}
	for _, d := range []struct {
		dir, class string
		scoped     bool
	}{
		{repo.SignersDir, "signers", false}, {repo.KeysDir, "signers", false},
		{repo.IntentsDir, "intent", true}, {repo.RevocationsDir, "revocation", false},
		{BreakGlassDir, "breakglass", true}, {IncidentsDir, "incident", true}, {MachinesDir, "machine", false},
	} {
		rels, err := listDir(r, d.dir)
		if err != nil {
			return nil, err
		}
		for _, rel := range rels {
			if d.scoped && !inScope(path.Base(rel)) {
				continue
			}
			if err := addRepo(rel, d.class); err != nil {
				return nil, err
			}
		}
	}
	locks, err := backendLocks(r)
	if err != nil {
		return nil, err
	}
	for _, rel := range locks {
		if err := addSigned(rel, "backend-lock"); err != nil {
			return nil, err
		}
	}

	// What lets an auditor check it with stock tools.
	if err := add(evidence.VerifierFile, "verifier", VerifierScript()); err != nil {
		return nil, err
	}
	if err := add(evidence.AllowedSigners, "verifier", AllowedSignersFile(cfg.Registry)); err != nil {
		return nil, err
	}

	ix := &evidence.Index{Kind: evidence.Kind, Created: cfg.Now.UTC().Truncate(time.Second).Format(time.RFC3339),
		Exporter: cfg.Exporter, Store: cfg.StoreName, Origin: rep.Origin, Entries: n,
		RetentionDays: cfg.RetentionDays, WORM: cfg.WORM}
	if !cfg.Since.IsZero() {
		ix.Since = cfg.Since.UTC().Format(time.RFC3339)
	}
	if !cfg.Until.IsZero() {
		ix.Until = cfg.Until.UTC().Format(time.RFC3339)
	}
	if n == 0 {
		ix.Origin = ""
	}
	indexed := func(name string) evidence.File {
		return evidence.File{Path: name, SHA256: evidence.SHA256(files[name]), Size: int64(len(files[name])),
			Class: classes[name], Controls: m.ControlsOf(classes[name])}
	}
	for name := range files {
		ix.Files = append(ix.Files, indexed(name))
	}
	// SHA256SUMS lists the others; the index lists it too.
	sort.Slice(ix.Files, func(i, j int) bool { return ix.Files[i].Path < ix.Files[j].Path })
	if err := add(evidence.SumsFile, "verifier", evidence.Sums(ix)); err != nil {
		return nil, err
	}
	ix.Files = append(ix.Files, indexed(evidence.SumsFile))
	sort.Slice(ix.Files, func(i, j int) bool { return ix.Files[i].Path < ix.Files[j].Path })
	data, err := ix.Marshal()
	if err != nil {
		return nil, err
	}
	sig, err := cfg.Signer.Sign(ctx, data, evidence.Kind)
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", evidence.IndexFile, err)
	}
	sigFiles, err := trail.SignatureFiles([]*signature.Signature{sig})
	if err != nil {
		return nil, err
	}
	files[evidence.IndexFile] = data
	for ext, s := range sigFiles {
		files[evidence.IndexFile+ext] = s
	}
	cw := &countWriter{w: w}
	if err := evidence.Write(cw, files, cfg.Now.UTC().Truncate(time.Second)); err != nil {
		return nil, err
	}
	res.Index, res.IndexSHA256, res.Bytes = ix, evidence.SHA256(data), cw.n
	return res, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// artifactClass classifies a store artifact by its name.
func artifactClass(name string) string {
	switch {
	case strings.HasPrefix(name, "apply-"):
		return "apply-log"
	case strings.HasPrefix(name, "plan-"):
		return "plan"
	case strings.HasPrefix(name, "consumed-"):
		return "marker"
	case strings.HasPrefix(name, "breakglass-"):
		return "breakglass"
	case strings.HasPrefix(name, "drill-"):
		return "drill"
	case strings.HasPrefix(name, "incident-"):
		return "incident"
	}
	return "artifact"
}

// listDir lists the plain files under a governed directory, sorted; a
// symbolic link is refused (T27).
func listDir(r *repo.Repo, dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(r.Abs(dir), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == r.Abs(dir) {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r.Root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return &repo.PathError{Path: rel, Reason: "is a symbolic link"}
		case d.IsDir():
			return nil
		case d.Type().IsRegular():
			out = append(out, rel)
		}
		return nil
	})
	if errors.Is(err, filepath.SkipDir) {
		err = nil
	}
	sort.Strings(out)
	return out, err
}

// backendLocks finds the signed backend locks under infra/.
func backendLocks(r *repo.Repo) ([]string, error) {
	var out []string
	err := filepath.WalkDir(r.Abs("infra"), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == r.Abs("infra") {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".terraform" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && d.Name() == repo.BackendLockName {
			rel, _ := filepath.Rel(r.Root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if errors.Is(err, filepath.SkipDir) {
		err = nil
	}
	sort.Strings(out)
	return out, err
}

// AllowedSignersFile formats the registry's SSH keys as an OpenSSH
// allowed-signers file (one "ID KEYTYPE BASE64" line per key), for
// `ssh-keygen -Y verify -f allowed_signers`.
func AllowedSignersFile(reg *signers.Registry) []byte {
	var b bytes.Buffer
	b.WriteString("# signers.yaml's SSH keys, for ssh-keygen -Y verify -f allowed_signers\n")
	if reg == nil {
		return b.Bytes()
	}
	for _, s := range reg.Signers {
		for _, k := range s.PublicKeys() {
			if k == nil || k.SSHKey() == nil {
				continue
			}
			fmt.Fprintf(&b, "%s %s", s.ID, ssh.MarshalAuthorizedKey(k.SSHKey()))
		}
	}
	return b.Bytes()
}
