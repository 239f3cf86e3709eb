// Package offline makes, verifies and restores the offline rebuild bundle:
// one file from which an emergency operator pair rebuilds the governed
// repository on a machine with no network and no copy of the repository,
// and knows that what they rebuild is what the release signers tagged.
//
// # Layout
//
// A bundle is a gzip-compressed tar (one gzip member, POSIX/PAX headers) of
// regular files only, in this order:
//
//	groundzero-bundle.json        the index (canonical JSON, below)
//	groundzero-bundle.json.asc    its detached signature(s): OpenPGP …
//	groundzero-bundle.json.sig    … and/or SSHSIG, namespace = the kind
//	repo.git.bundle               `git bundle` of refs/tags/TAG: the signed
//	                              tag object and the history it reaches
//	governance/MANIFEST           the governed state at the tag, with its
//	governance/MANIFEST.asc|.sig  signatures
//	governance/signers.yaml       the signers registry at the tag, its
//	governance/signers.yaml.asc|.sig  signatures,
//	governance/signers.d/N.yaml[.asc|.sig]  its earlier versions,
//	governance/keys/*             and the public keys it names
//
// The loose governance files are byte-for-byte the files of the tag's tree,
// so that anyone can check them with stock tools (`gpg --verify`,
// `ssh-keygen -Y verify`, `sha256sum -c`) before touching git.
//
// # Index
//
// The index is a record (package record) of kind
// "groundzero.offline-bundle/v1":
//
//	{"commit":"<hex>","created":"2026-12-01T18:00:00Z",
//	 "files":[{"path":"governance/MANIFEST","sha256":"<hex>","size":1234},…],
//	 "kind":"groundzero.offline-bundle/v1",
//	 "manifest":{"sha256":"<hex>","version":3},
//	 "registry":{"sha256":"<hex>","version":2},
//	 "tag":"v4","tag_object":"<hex>"}
//
// files lists every entry of the archive except the index and its
// signatures, sorted by path, each once. The index is signed by a current
// signer with role release, approver or security in the registry inside the
// bundle; an operator- or CI-only signer cannot vouch for a bundle.
//
// # Verification
//
// Verify trusts nothing in the bundle until it has been checked, in this
// order: the archive's entries (regular files with clean, known names, each
// once, within size bounds); the registry chain from the pin (--trust-root;
// without one, trust on first use, said so in the report); the index
// signature against that registry; the index itself (canonical, parsed
// once from the verified bytes); every file's SHA-256 and size; the git
// bundle, fetched with git into a private directory, holding exactly
// refs/tags/TAG, the tag object named in the index; the tag, the manifest
// and the registry then pass the same gates `groundzero check` runs, on
// the tag's tree; and the loose governance files are the tree's.
//
// A new field, or a change of meaning, makes a new kind version (v2);
// readers refuse kinds they do not know.
package offline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/gittag"
	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/record"
)

// Names inside a bundle.
const (
	IndexName = "groundzero-bundle.json"
	GitName   = "repo.git.bundle"
)

// Kind is the index's record kind, and the SSH signature namespace.
var Kind = record.Kind("offline-bundle")

// SignerRoles may sign a bundle's index.
var SignerRoles = []string{signers.RoleRelease, signers.RoleApprover, signers.RoleSecurity}

// looseFiles and loosePrefixes are the governance files a bundle carries
// beside the git bundle (each file with its .asc and .sig).
var (
	looseFiles    = []string{repo.ManifestFile, repo.SignersFile}
	loosePrefixes = []string{repo.SignersDir + "/", repo.KeysDir + "/"}
)

// Index is the signed list of a bundle's content.
type Index struct {
	Kind      string  `json:"kind"`
	Tag       string  `json:"tag"`
	TagObject string  `json:"tag_object"`
	Commit    string  `json:"commit"`
	Created   string  `json:"created"`
	Registry  Version `json:"registry"`
	Manifest  Version `json:"manifest"`
	Files     []File  `json:"files"`
}

// Version names one version of a governed file by its SHA-256.
type Version struct {
	Version int    `json:"version"`
	SHA256  string `json:"sha256"`
}

// File is one entry of the bundle.
type File struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// MaxFiles bounds the index's list.
const MaxFiles = 4096

// IndexError reports an index that is not a valid offline-bundle record.
// It never echoes the index.
type IndexError struct{ Reason string }

func (e *IndexError) Error() string { return IndexName + ": " + e.Reason }

// ParseIndex parses an index from its exact bytes (canonical, every field
// present, parsed once) and checks its fields.
func ParseIndex(data []byte) (*Index, error) {
	var ix Index
	if err := record.ParseFile(data, &ix); err != nil {
		return nil, &IndexError{err.Error()}
	}
	if ix.Kind != Kind {
		return nil, &IndexError{fmt.Sprintf("kind is %q, want %q", truncate(ix.Kind), Kind)}
	}
	if !validTag(ix.Tag) {
		return nil, &IndexError{"tag is not a valid tag name"}
	}
	for _, h := range []string{ix.TagObject, ix.Commit} {
		if !isHex(h, 40) && !isHex(h, 64) {
			return nil, &IndexError{"tag_object and commit must be git object ids"}
		}
	}
	if _, err := time.Parse(time.RFC3339, ix.Created); err != nil {
		return nil, &IndexError{"created is not an RFC 3339 time"}
	}
	for _, v := range []Version{ix.Registry, ix.Manifest} {
		if v.Version < 0 || !isHex(v.SHA256, 64) {
			return nil, &IndexError{"registry and manifest need a version and a SHA-256"}
		}
	}
	if len(ix.Files) == 0 || len(ix.Files) > MaxFiles {
		return nil, &IndexError{fmt.Sprintf("lists %d files; a bundle lists 1 to %d", len(ix.Files), MaxFiles)}
	}
	for i, f := range ix.Files {
		if err := repo.CheckRel(f.Path); err != nil || !allowedName(f.Path) || strings.HasPrefix(f.Path, IndexName) {
			return nil, &IndexError{fmt.Sprintf("files[%d] is not a file a bundle holds", i)}
		}
		if i > 0 && ix.Files[i-1].Path >= f.Path {
			return nil, &IndexError{"files are not sorted by path, each once"}
		}
		if !isHex(f.SHA256, 64) || f.Size < 0 {
			return nil, &IndexError{fmt.Sprintf("files[%d] (%s) needs a SHA-256 and a size", i, f.Path)}
		}
	}
	if !slices.ContainsFunc(ix.Files, func(f File) bool { return f.Path == GitName }) {
		return nil, &IndexError{"lists no " + GitName}
	}
	return &ix, nil
}

// Format encodes the index as its record file.
func (ix *Index) Format() ([]byte, error) { return record.MarshalFile(ix) }

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// validTag accepts the tag names groundzero handles: no leading dash, no
// path tricks, nothing git would read as an option or a range.
func validTag(t string) bool {
	if t == "" || len(t) > 200 || strings.HasPrefix(t, "-") || strings.HasPrefix(t, ".") || strings.Contains(t, "..") || strings.HasSuffix(t, ".lock") {
		return false
	}
	for _, c := range t {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("._-/+", c)) {
			return false
		}
	}
	return !strings.Contains(t, "//") && !strings.HasSuffix(t, "/")
}

// FileError reports a file inside the bundle that does not verify.
type FileError struct {
	Path   string
	Reason string
}

func (e *FileError) Error() string { return e.Path + ": " + e.Reason }

// SignatureError reports a signature inside the bundle that does not count:
// the index not signed by a current release, approver or security signer,
// or the tag not signed by a release signer.
type SignatureError struct {
	File string
	Err  error
}

func (e *SignatureError) Error() string { return e.File + ": " + e.Err.Error() }
func (e *SignatureError) Unwrap() error { return e.Err }

// GateError reports a gate that failed on the tag's tree.
type GateError struct{ Result gate.Result }

func (e *GateError) Error() string {
	return e.Result.Name + " gate on the tagged tree: " + e.Result.Detail
}

// RegistryError reports a registry inside the bundle that does not verify
// from the pin (or, without one, from its first version).
type RegistryError struct{ Err error }

func (e *RegistryError) Error() string { return e.Err.Error() }
func (e *RegistryError) Unwrap() error { return e.Err }

// Report is what a verified bundle holds.
type Report struct {
	SHA256    string    `json:"sha256"` // of the bundle file
	Tag       string    `json:"tag"`
	TagObject string    `json:"tag_object"`
	Commit    string    `json:"commit"`
	Created   string    `json:"created"`
	Registry  Version   `json:"registry"`
	Manifest  Version   `json:"manifest"`
	Pinned    bool      `json:"pinned"`              // the registry verified from a pin
	FirstUse  string    `json:"first_use,omitempty"` // without a pin: version 1's SHA-256
	Signers   []string  `json:"index_signers"`       // who signed the index
	TagDetail string    `json:"tag_detail"`          // the tag gate's detail
	Gates     []string  `json:"gates"`               // each gate's detail on the tagged tree
	Files     int       `json:"files"`               // entries the index lists
	Verified  time.Time `json:"verified"`
}

// Opened is a verified bundle, unpacked into a private directory: the loose
// files under Dir and the tagged tree checked out in Tree (a git work tree).
// Close removes both.
type Opened struct {
	Report *Report
	Index  *Index
	Dir    string // the archive's files
	Tree   string // the tag's tree, checked out
	root   string
}

// Close removes the private directory.
func (o *Opened) Close() error {
	if o == nil || o.root == "" {
		return nil
	}
	return os.RemoveAll(o.root)
}

// GitBundle is the OS path of the verified git bundle.
func (o *Opened) GitBundle() string { return filepath.Join(o.Dir, GitName) }

// VerifyConfig is what a verification is judged against.
type VerifyConfig struct {
	Now       time.Time // fixed once
	TrustRoot string    // pinned registry SHA-256, or "" for trust on first use
	Limits    Limits    // zero: DefaultLimits
	TempDir   string    // where the private directory goes ("" is os.TempDir)
}

// Open verifies the bundle file and leaves it unpacked for the caller, who
// closes it. Every refusal is one of the typed errors of this package, or
// an I/O error.
func Open(ctx context.Context, file string, cfg VerifyConfig) (*Opened, error) {
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	root, err := os.MkdirTemp(cfg.TempDir, "groundzero-bundle-")
	if err != nil {
		return nil, err
	}
	o := &Opened{root: root, Dir: filepath.Join(root, "files"), Tree: filepath.Join(root, "tree")}
	ok := false
	defer func() {
		if !ok {
			o.Close()
		}
	}()
	if err := os.Mkdir(o.Dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	names, err := extract(io.TeeReader(f, h), o.Dir, cfg.Limits)
	if err == nil {
		// The hash covers the whole file, trailing bytes included.
		_, err = io.Copy(h, f)
	}
	f.Close()
	if err != nil {
		return nil, err
	}
	rep := &Report{SHA256: hex.EncodeToString(h.Sum(nil)), Verified: cfg.Now}
	if !slices.Contains(names, IndexName) {
		return nil, &FileError{IndexName, "is missing: this is not a groundzero bundle"}
	}

	// The registry, from the pin.
	loose := &repo.Repo{Root: o.Dir}
	chain, err := signers.Load(loose)
	if err != nil {
		return nil, &RegistryError{err}
	}
	chainRep, err := chain.Verify(cfg.Now, signers.NormalizePin(cfg.TrustRoot), nil)
	if err != nil {
		return nil, &RegistryError{err}
	}
	rep.Pinned = chainRep.Pinned
	if !rep.Pinned {
		rep.FirstUse = chain.Versions[0].Hash()
	}
	reg := chain.Current()

	// The index: its signature over its exact bytes, then its content.
	raw, err := loose.ReadFile(IndexName, record.MaxSize)
	if err != nil {
		return nil, &FileError{IndexName, err.Error()}
	}
	sigs, err := sigfile.Load(loose, IndexName)
	if err != nil {
		return nil, &FileError{IndexName, "signature: " + err.Error()}
	}
	if len(sigs) == 0 {
		return nil, &SignatureError{IndexName, errors.New("is not signed: neither " + IndexName + ".asc nor .sig is in the bundle")}
	}
	ids, err := signers.Count(reg.Check(raw, sigs, Kind, cfg.Now, signers.Current),
		signers.Requirement{What: "the bundle index", Roles: SignerRoles, Threshold: 1})
	if err != nil {
		return nil, &SignatureError{IndexName, err}
	}
	rep.Signers = ids
	ix, err := ParseIndex(raw)
	if err != nil {
		return nil, err
	}
	if err := checkFiles(o.Dir, names, ix); err != nil {
		return nil, err
	}
	if ix.Registry.SHA256 != chainRep.Hash || ix.Registry.Version != chainRep.Version {
		return nil, &FileError{repo.SignersFile, "is not the registry version the index names"}
	}

	// The git bundle: exactly the tag, and the tag's tree.
	tree := &repo.Repo{Root: o.Tree}
	if err := unbundle(ctx, filepath.Join(o.Dir, GitName), o.Tree, ix.Tag); err != nil {
		return nil, err
	}
	tr, err := gittag.Read(ctx, tree, "refs/tags/"+ix.Tag)
	if err != nil {
		return nil, &FileError{GitName, "tag " + ix.Tag + ": " + err.Error()}
	}
	if tr.ID != ix.TagObject {
		return nil, &FileError{GitName, fmt.Sprintf("refs/tags/%s is tag object %.12s, but the index names %.12s", ix.Tag, tr.ID, ix.TagObject)}
	}
	if tr.Tag.Type != "commit" || tr.Tag.Object != ix.Commit {
		return nil, &FileError{GitName, fmt.Sprintf("tag %s tags %s %.12s, but the index names commit %.12s", ix.Tag, tr.Tag.Type, tr.Tag.Object, ix.Commit)}
	}
	if _, err := tree.Git(ctx, "-c", "core.hooksPath=/dev/null", "checkout", "-q", "-f", "--detach", ix.Commit); err != nil {
		return nil, &FileError{GitName, "cannot check out the tagged commit: " + err.Error()}
	}
	if err := CheckTree(o.Tree); err != nil {
		return nil, err
	}
	if err := sameAsTree(o.Dir, o.Tree, ix); err != nil {
		return nil, err
	}

	// The gates `check` runs, on the tagged tree, with the same pin.
	g := gate.Load(tree, cfg.Now, cfg.TrustRoot, false, nil, nil)
	for _, res := range []gate.Result{g.PolicyGate(), g.SignersGate(), g.ManifestGate(ctx), g.TagGate(ctx, "refs/tags/"+ix.Tag)} {
		if !res.OK {
			return nil, &GateError{res}
		}
		rep.Gates = append(rep.Gates, res.Name+": "+res.Detail)
		if res.Name == "tag" {
			rep.TagDetail = res.Detail
		}
	}
	if g.Manifest == nil || g.Manifest.Version != ix.Manifest.Version || sha256hex(g.ManifestRaw) != ix.Manifest.SHA256 {
		return nil, &FileError{repo.ManifestFile, "is not the manifest version the index names"}
	}
	rep.Tag, rep.TagObject, rep.Commit, rep.Created = ix.Tag, ix.TagObject, ix.Commit, ix.Created
	rep.Registry, rep.Manifest, rep.Files = ix.Registry, ix.Manifest, len(ix.Files)
	o.Report, o.Index = rep, ix
	ok = true
	return o, nil
}

// Verify checks a bundle file and reports what it holds.
func Verify(ctx context.Context, file string, cfg VerifyConfig) (*Report, error) {
	o, err := Open(ctx, file, cfg)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return o.Report, nil
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkFiles compares the archive's files with the index: the same set,
// each with its SHA-256 and size.
func checkFiles(dir string, names []string, ix *Index) error {
	listed := map[string]File{}
	for _, f := range ix.Files {
		listed[f.Path] = f
	}
	for _, n := range names {
		if strings.HasPrefix(n, IndexName) {
			continue
		}
		if _, ok := listed[n]; !ok {
			return &FileError{n, "is in the bundle but not in the signed index"}
		}
	}
	for _, f := range ix.Files {
		if !slices.Contains(names, f.Path) {
			return &FileError{f.Path, "is in the signed index but missing from the bundle"}
		}
		sum, size, err := hashFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			return &FileError{f.Path, err.Error()}
		}
		if sum != f.SHA256 || size != f.Size {
			return &FileError{f.Path, fmt.Sprintf("has SHA-256 %.16s…, but the signed index records %.16s…: the file was changed", sum, f.SHA256)}
		}
	}
	return nil
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// sameAsTree checks that the loose governance files are the tree's, and
// that the tree holds no governance file of those kinds the bundle lacks.
func sameAsTree(dir, tree string, ix *Index) error {
	want, err := looseOf(tree)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, f := range ix.Files {
		if f.Path == GitName {
			continue
		}
		have[f.Path] = true
		a, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			return &FileError{f.Path, err.Error()}
		}
		b, err := os.ReadFile(filepath.Join(tree, filepath.FromSlash(f.Path)))
		if err != nil || !slices.Contains(want, f.Path) {
			return &FileError{f.Path, "is not in the tagged tree"}
		}
		if !bytes.Equal(a, b) {
			return &FileError{f.Path, "differs from the file in the tagged tree"}
		}
	}
	for _, p := range want {
		if !have[p] {
			return &FileError{p, "is in the tagged tree but missing from the bundle"}
		}
	}
	return nil
}

// looseOf lists the governance files of a tree that a bundle carries
// loose. Each must be a regular file.
func looseOf(tree string) ([]string, error) {
	var out []string
	for _, f := range looseFiles {
		for _, p := range []string{f, f + ".asc", f + ".sig"} {
			fi, err := os.Lstat(filepath.Join(tree, filepath.FromSlash(p)))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if !fi.Mode().IsRegular() {
				return nil, &FileError{p, "is not a regular file in the tagged tree"}
			}
			out = append(out, p)
		}
	}
	for _, d := range loosePrefixes {
		entries, err := os.ReadDir(filepath.Join(tree, filepath.FromSlash(d)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			p := d + e.Name()
			if !e.Type().IsRegular() {
				return nil, &FileError{p, "is not a regular file in the tagged tree; a bundle carries regular files only"}
			}
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// CheckTree refuses a checked-out tree with a symbolic link that points
// outside it, absolutely or by climbing (T27).
func CheckTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() && rel == ".git" {
			return filepath.SkipDir
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) {
			return &FileError{GitName, fmt.Sprintf("the tagged tree holds %s, a symbolic link to the absolute path %s", filepath.ToSlash(rel), truncate(target))}
		}
		joined := filepath.Join(filepath.Dir(rel), target)
		if joined == ".." || strings.HasPrefix(joined, ".."+string(filepath.Separator)) || joined == ".git" || strings.HasPrefix(joined, ".git"+string(filepath.Separator)) {
			return &FileError{GitName, fmt.Sprintf("the tagged tree holds %s, a symbolic link that points outside the tree (%s)", filepath.ToSlash(rel), truncate(target))}
		}
		return nil
	})
}

// unbundle fetches refs/tags/TAG, and nothing else, from a git bundle into
// a new repository at dir, without checking anything out.
func unbundle(ctx context.Context, bundle, dir, tag string) error {
	r := &repo.Repo{Root: dir}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if _, err := r.Git(ctx, "init", "-q"); err != nil {
		return err
	}
	if _, err := r.Git(ctx, "bundle", "verify", "-q", bundle); err != nil {
		return &FileError{GitName, "is not a complete git bundle: " + lastLine(err)}
	}
	out, err := r.Git(ctx, "bundle", "list-heads", bundle)
	if err != nil {
		return &FileError{GitName, "cannot list its references: " + lastLine(err)}
	}
	var refs []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if _, ref, ok := strings.Cut(l, " "); ok {
			refs = append(refs, ref)
		}
	}
	if len(refs) != 1 || refs[0] != "refs/tags/"+tag {
		return &FileError{GitName, fmt.Sprintf("holds references %s; a bundle holds exactly refs/tags/%s", truncate(strings.Join(refs, ", ")), tag)}
	}
	// fsck refuses malformed objects, such as a tree entry named .git.
	if _, err := r.Git(ctx, "-c", "fetch.fsckObjects=true", "fetch", "-q", "--no-tags", "--end-of-options", bundle, "refs/tags/"+tag+":refs/tags/"+tag); err != nil {
		return &FileError{GitName, "cannot be fetched: " + lastLine(err)}
	}
	return nil
}

func lastLine(err error) string {
	s := strings.TrimSpace(err.Error())
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		s = s[i+1:]
	}
	return truncate(s)
}

// CreateConfig is what Create makes a bundle of.
type CreateConfig struct {
	Repo   *repo.Repo
	Tag    string // "" is the tag on the governed commit
	Signer sign.Signer
	Now    time.Time
	Out    string // the bundle file to write
	// TrustRoot, when set, is checked by the verification Create ends
	// with.
	TrustRoot string
}

// Create writes a bundle of the repository at a signed tag, then verifies
// the written file as Verify would; a bundle that does not verify is
// removed and its refusal returned.
func Create(ctx context.Context, cfg CreateConfig) (*Report, error) {
	tag := cfg.Tag
	if tag == "" {
		governed, _, err := gittag.Governed(ctx, cfg.Repo)
		if err != nil {
			return nil, err
		}
		names, err := gittag.At(ctx, cfg.Repo, governed)
		if err != nil {
			return nil, err
		}
		if len(names) != 1 {
			return nil, &NoTagError{Count: len(names), Commit: governed}
		}
		tag = names[0]
	}
	tag = strings.TrimPrefix(tag, "refs/tags/")
	if !validTag(tag) {
		return nil, &NoTagError{Tag: tag}
	}
	tr, err := gittag.Read(ctx, cfg.Repo, "refs/tags/"+tag)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(cfg.Out), ".groundzero-bundle-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	gitFile := filepath.Join(tmp, GitName)
	if _, err := cfg.Repo.Git(ctx, "bundle", "create", "-q", gitFile, "refs/tags/"+tag); err != nil {
		return nil, err
	}
	tree := filepath.Join(tmp, "tree")
	if err := unbundle(ctx, gitFile, tree, tag); err != nil {
		return nil, err
	}
	tr2 := &repo.Repo{Root: tree}
	if _, err := tr2.Git(ctx, "-c", "core.hooksPath=/dev/null", "checkout", "-q", "-f", "--detach", tr.Tag.Object); err != nil {
		return nil, err
	}
	loose, err := looseOf(tree)
	if err != nil {
		return nil, err
	}
	ix := &Index{Kind: Kind, Tag: tag, TagObject: tr.ID, Commit: tr.Tag.Object, Created: cfg.Now.UTC().Format(time.RFC3339)}
	files := []archived{}
	for _, p := range append([]string{GitName}, loose...) {
		src := filepath.Join(tree, filepath.FromSlash(p))
		if p == GitName {
			src = gitFile
		}
		sum, size, err := hashFile(src)
		if err != nil {
			return nil, err
		}
		ix.Files = append(ix.Files, File{Path: p, SHA256: sum, Size: size})
		files = append(files, archived{p, src})
	}
	sort.Slice(ix.Files, func(i, j int) bool { return ix.Files[i].Path < ix.Files[j].Path })
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	for _, v := range []struct {
		p  string
		to *Version
	}{{repo.SignersFile, &ix.Registry}, {repo.ManifestFile, &ix.Manifest}} {
		data, err := tr2.ReadFile(v.p, repo.MaxFileSize)
		if err != nil {
			return nil, &FileError{v.p, "the tagged tree: " + err.Error()}
		}
		v.to.SHA256 = sha256hex(data)
		if v.p == repo.SignersFile {
			reg, err := signers.Parse(v.p, data)
			if err != nil {
				return nil, err
			}
			v.to.Version = reg.Version
		} else {
			m, err := manifest.Parse(data)
			if err != nil {
				return nil, &FileError{v.p, err.Error()}
			}
			v.to.Version = m.Version
		}
	}
	raw, err := ix.Format()
	if err != nil {
		return nil, err
	}
	sig, err := cfg.Signer.Sign(ctx, raw, Kind)
	if err != nil {
		return nil, err
	}
	sigBytes, err := signature.Format([]*signature.Signature{sig})
	if err != nil {
		return nil, err
	}
	idxFile, sigFile := filepath.Join(tmp, IndexName), filepath.Join(tmp, IndexName+sig.Scheme.Ext())
	if err := os.WriteFile(idxFile, raw, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(sigFile, sigBytes, 0o600); err != nil {
		return nil, err
	}
	files = append([]archived{{IndexName, idxFile}, {IndexName + sig.Scheme.Ext(), sigFile}}, files...)
	part := filepath.Join(tmp, "bundle.part")
	out, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	err = writeArchive(out, files)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	rep, err := Verify(ctx, part, VerifyConfig{Now: cfg.Now, TrustRoot: cfg.TrustRoot, TempDir: tmp})
	if err != nil {
		return nil, err
	}
	if err := os.Rename(part, cfg.Out); err != nil {
		return nil, err
	}
	return rep, nil
}

// NoTagError: no single tag to bundle.
type NoTagError struct {
	Tag    string
	Count  int
	Commit string
}

func (e *NoTagError) Error() string {
	switch {
	case e.Tag != "":
		return fmt.Sprintf("%q is not a tag name groundzero bundles", truncate(e.Tag))
	case e.Count == 0:
		return fmt.Sprintf("the governed commit %.12s has no tag", e.Commit)
	}
	return fmt.Sprintf("the governed commit %.12s has %d tags", e.Commit, e.Count)
}

// Restore verifies the bundle, then writes the repository into dir (which
// must not exist, or be an empty directory): a git repository holding the
// tag, checked out at the tagged commit. It returns the verification's
// report.
func Restore(ctx context.Context, file, dir string, cfg VerifyConfig) (*Report, error) {
	if err := emptyTarget(dir); err != nil {
		return nil, err
	}
	o, err := Open(ctx, file, cfg)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	if err := emptyTarget(dir); err != nil {
		return nil, err
	}
	created := false
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		created = true
	} else if err := os.Remove(dir); err != nil { // empty: unbundle makes it anew
		return nil, err
	}
	fail := func(err error) (*Report, error) {
		os.RemoveAll(dir)
		if !created {
			os.Mkdir(dir, 0o755)
		}
		return nil, err
	}
	if err := unbundle(ctx, o.GitBundle(), dir, o.Index.Tag); err != nil {
		return fail(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	r := &repo.Repo{Root: dir}
	if _, err := r.Git(ctx, "-c", "core.hooksPath=/dev/null", "checkout", "-q", "-f", "--detach", o.Index.Commit); err != nil {
		return fail(err)
	}
	if err := CheckTree(dir); err != nil {
		return fail(err)
	}
	return o.Report, nil
}

// TargetError reports a restore target that is not empty.
type TargetError struct {
	Dir    string
	Reason string
}

func (e *TargetError) Error() string { return e.Dir + ": " + e.Reason }

func emptyTarget(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		parent := filepath.Dir(dir)
		if pi, err := os.Stat(parent); err != nil || !pi.IsDir() {
			return &TargetError{dir, "its parent directory does not exist"}
		}
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &TargetError{dir, "exists and is not a directory"}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return &TargetError{dir, fmt.Sprintf("exists and is not empty (%d entries); restore writes only into a new or empty directory", len(entries))}
	}
	return nil
}
