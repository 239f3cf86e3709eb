// Package evidence defines groundzero's evidence bundle, the single file an
// auditor receives, and checks it offline: every file against the signed
// index, and the audit trail's hash chain and Merkle tree against its
// checkpoints. It is public so that an auditor or another pipeline can check
// a bundle without groundzero; it imports only the standard library, package
// audit and package record. Signatures (OpenPGP, SSH) are checked by
// groundzero's own verifier, or with gpg and ssh-keygen.
//
// # Bundle
//
// A bundle is a gzip-compressed POSIX tar archive of plain files (no
// directories, links or devices), each named by a relative slash-separated
// path without "." or ".." elements, each once:
//
//	INDEX.json            the index (below), canonical JSON
//	INDEX.json.asc        detached OpenPGP signature(s) over INDEX.json, and/or
//	INDEX.json.sig        SSH signature(s), namespace "groundzero.evidence/v1"
//	SHA256SUMS            every other file's SHA-256, for `sha256sum -c`
//	verify.py             a short verifier (Python 3, standard library only)
//	allowed_signers       the registry's SSH keys, for `ssh-keygen -Y verify`
//	trail/entries.jsonl   audit entries 0 … N-1, one per line
//	trail/checkpoints/*   the signed checkpoints of sizes up to N (.cp, .cp.asc, .cp.sig)
//	artifacts/*           store artifacts: apply logs, plans, markers, break-glass records
//	repo/...              governed files at their repository paths: policy.yaml,
//	                      signers.yaml, signers.d/, keys/, MANIFEST and its
//	                      signatures, intents/, revocations/, breakglass/,
//	                      incidents/, machines/, backend locks and their signatures
//
// The trail is always whole from entry 0 up to N, the size of the newest
// checkpoint that covers the exported period, so that the chain and the
// Merkle roots can be recomputed from the bundle alone; the period
// (Index.Since, Index.Until) selects the records and timeline events in
// scope, never a piece of the chain.
//
// # Index
//
// The index is a canonical JSON record (package record) of kind
// "groundzero.evidence/v1":
//
//	{"created":"2026-12-01T18:00:00Z","entries":42,"exporter":"alice",
//	 "files":[{"class":"trail","controls":["ISO27001:2013 A.12.4",…],
//	           "path":"trail/entries.jsonl","sha256":"…","size":9120},…],
//	 "kind":"groundzero.evidence/v1","origin":"groundzero.audit/v1/…",
//	 "retention_days":2555,"since":"","store":"s3://…","until":"","worm":true}
//
// Files are sorted by path and list every file of the bundle except
// INDEX.json and its signature files. Class names the kind of evidence a
// file is, and controls the framework controls it evidences (from
// groundzero's control mapping). A breaking change makes a new kind version
// (v2); readers refuse kinds they do not know.
//
// # Bounds
//
// Read refuses archives with more than MaxFiles entries, a file larger than
// MaxFileSize, or more than MaxTotalSize bytes in all (T8), and any entry
// that is not a plain file or whose name could leave the directory it is
// unpacked in (T27).
package evidence

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/record"
)

// Kind is the index's record kind and the SSH signature namespace.
const Kind = "groundzero.evidence/v1"

// Well-known names inside a bundle.
const (
	IndexFile      = "INDEX.json"
	SumsFile       = "SHA256SUMS"
	VerifierFile   = "verify.py"
	AllowedSigners = "allowed_signers"
	EntriesFile    = "trail/entries.jsonl"
	CheckpointsDir = "trail/checkpoints"
	ArtifactsDir   = "artifacts"
	RepoDir        = "repo"
)

// Bounds on what Read accepts (T8).
const (
	MaxFiles     = 100_000
	MaxFileSize  = 256 << 20
	MaxTotalSize = 1 << 30
	MaxIndexSize = 32 << 20
)

// Index lists a bundle's files.
type Index struct {
	Kind          string `json:"kind"`
	Created       string `json:"created"`  // RFC 3339 UTC
	Exporter      string `json:"exporter"` // signer id of who exported it
	Store         string `json:"store"`    // the evidence store it came from (no credentials)
	Origin        string `json:"origin"`   // the trail's origin line
	Entries       int64  `json:"entries"`  // entries in trail/entries.jsonl
	Since         string `json:"since"`    // start of the period in scope, or ""
	Until         string `json:"until"`    // end of the period in scope, or ""
	RetentionDays int    `json:"retention_days"`
	WORM          bool   `json:"worm"` // the store keeps objects under retention
	Files         []File `json:"files"`
}

// File is one file of the bundle.
type File struct {
	Path     string   `json:"path"`
	SHA256   string   `json:"sha256"`
	Size     int64    `json:"size"`
	Class    string   `json:"class"`
	Controls []string `json:"controls"`
}

// Marshal encodes the index canonically, with its final newline.
func (ix *Index) Marshal() ([]byte, error) {
	for i := range ix.Files {
		if ix.Files[i].Controls == nil {
			ix.Files[i].Controls = []string{}
		}
	}
	if ix.Files == nil {
		ix.Files = []File{}
	}
	return record.MarshalFile(ix)
}

// ParseIndex decodes an index, refusing anything but its canonical encoding,
// another kind, unsorted or repeated paths and bad hashes.
func ParseIndex(data []byte) (*Index, error) {
	if len(data) > MaxIndexSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", IndexFile, MaxIndexSize)
	}
	if err := record.ExpectKind(data, Kind); err != nil {
		return nil, fmt.Errorf("%s: %w", IndexFile, err)
	}
	var ix Index
	if err := record.ParseFile(data, &ix); err != nil {
		return nil, fmt.Errorf("%s: %w", IndexFile, err)
	}
	if _, err := time.Parse(time.RFC3339, ix.Created); err != nil {
		return nil, fmt.Errorf("%s: bad created time", IndexFile)
	}
	for i, f := range ix.Files {
		if err := CheckName(f.Path); err != nil {
			return nil, fmt.Errorf("%s: %w", IndexFile, err)
		}
		if isIndexFile(f.Path) {
			return nil, fmt.Errorf("%s: lists %s, which it cannot", IndexFile, f.Path)
		}
		if i > 0 && ix.Files[i-1].Path >= f.Path {
			return nil, fmt.Errorf("%s: files are not sorted by path, or %s is listed twice", IndexFile, f.Path)
		}
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != 32 || hex.EncodeToString(b) != f.SHA256 || f.Size < 0 {
			return nil, fmt.Errorf("%s: %s has a bad sha256 or size", IndexFile, f.Path)
		}
	}
	return &ix, nil
}

// Lookup returns the index's entry for a path, or nil.
func (ix *Index) Lookup(p string) *File {
	i, ok := slices.BinarySearchFunc(ix.Files, p, func(f File, p string) int { return strings.Compare(f.Path, p) })
	if !ok {
		return nil
	}
	return &ix.Files[i]
}

// isIndexFile reports the index and its signature files.
func isIndexFile(p string) bool {
	return p == IndexFile || p == IndexFile+".asc" || p == IndexFile+".sig"
}

// Sums formats the SHA256SUMS file: every indexed file but SHA256SUMS
// itself, in the form `sha256sum -c` reads.
func Sums(ix *Index) []byte {
	var b bytes.Buffer
	for _, f := range ix.Files {
		if f.Path == SumsFile {
			continue
		}
		fmt.Fprintf(&b, "%s  %s\n", f.SHA256, f.Path)
	}
	return b.Bytes()
}

// PathError reports an archive entry that Read refuses (T27).
type PathError struct {
	Name   string
	Reason string
}

func (e *PathError) Error() string { return fmt.Sprintf("bundle entry %q: %s", e.Name, e.Reason) }

// SizeError reports an archive beyond the bounds (T8).
type SizeError struct {
	Name   string
	Reason string
}

func (e *SizeError) Error() string { return fmt.Sprintf("bundle entry %q: %s", e.Name, e.Reason) }

// CheckName accepts a bundle file name: relative, slash-separated, clean,
// no "." or ".." elements, no backslash or control character.
func CheckName(name string) error {
	switch {
	case name == "" || len(name) > 512:
		return &PathError{name, "empty or too long a name"}
	case strings.HasPrefix(name, "/"):
		return &PathError{name, "absolute path"}
	case strings.ContainsAny(name, "\\\x00"):
		return &PathError{name, "backslash or NUL in the name"}
	case !fs.ValidPath(name) || path.Clean(name) != name:
		return &PathError{name, "climbs out with .. or is not a clean path"}
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return &PathError{name, "control character in the name"}
		}
	}
	return nil
}

// Bundle is an unpacked bundle: its files by name.
type Bundle struct {
	Files map[string][]byte
	Names []string // in archive order
}

// Limits bound what ReadLimited unpacks.
type Limits struct {
	Files     int   // entries
	FileSize  int64 // bytes of one file
	TotalSize int64 // bytes of all files
}

// DefaultLimits are the bounds Read applies.
var DefaultLimits = Limits{Files: MaxFiles, FileSize: MaxFileSize, TotalSize: MaxTotalSize}

// Read unpacks a bundle, refusing anything but plain files with safe names
// (T27) and anything beyond DefaultLimits (T8).
func Read(r io.Reader) (*Bundle, error) { return ReadLimited(r, DefaultLimits) }

// ReadLimited is Read with other bounds.
func ReadLimited(r io.Reader, lim Limits) (*Bundle, error) {
	zr, err := gzip.NewReader(bufio.NewReader(r))
	if err != nil {
		return nil, fmt.Errorf("not a gzip-compressed bundle: %v", err)
	}
	zr.Multistream(false)
	tr := tar.NewReader(zr)
	b := &Bundle{Files: map[string][]byte{}}
	var total int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bundle is not a valid tar archive: %v", err)
		}
		if len(b.Names) == lim.Files {
			return nil, &SizeError{h.Name, fmt.Sprintf("more than %d files", lim.Files)}
		}
		if err := CheckName(h.Name); err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			what := "not a plain file"
			switch h.Typeflag {
			case tar.TypeSymlink:
				what = "a symbolic link (to " + h.Linkname + ")"
			case tar.TypeLink:
				what = "a hard link (to " + h.Linkname + ")"
			case tar.TypeDir:
				what = "a directory"
			}
			return nil, &PathError{h.Name, what + "; a bundle holds plain files only"}
		}
		if _, dup := b.Files[h.Name]; dup {
			return nil, &PathError{h.Name, "appears twice"}
		}
		if h.Size < 0 || h.Size > lim.FileSize {
			return nil, &SizeError{h.Name, fmt.Sprintf("%d bytes, more than %d", h.Size, lim.FileSize)}
		}
		if total += h.Size; total > lim.TotalSize {
			return nil, &SizeError{h.Name, fmt.Sprintf("the bundle unpacks to more than %d bytes", lim.TotalSize)}
		}
		data, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil || int64(len(data)) != h.Size {
			return nil, fmt.Errorf("bundle entry %q: truncated", h.Name)
		}
		b.Files[h.Name] = data
		b.Names = append(b.Names, h.Name)
	}
	if len(b.Names) == 0 {
		return nil, errors.New("the bundle is empty")
	}
	return b, nil
}

// Write writes files as a bundle: a gzip-compressed tar of plain files in
// name order, owned by nobody, dated at mtime.
func Write(w io.Writer, files map[string][]byte, mtime time.Time) error {
	names := make([]string, 0, len(files))
	for n := range files {
		if err := CheckName(n); err != nil {
			return err
		}
		names = append(names, n)
	}
	sort.Strings(names)
	zw := gzip.NewWriter(w)
	zw.ModTime = mtime
	tw := tar.NewWriter(zw)
	for _, n := range names {
		mode := int64(0o644)
		if n == VerifierFile {
			mode = 0o755
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: n, Size: int64(len(files[n])), Mode: mode, ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// Problem is one finding about one file of a bundle.
type Problem struct {
	Path   string
	Reason string
}

func (p Problem) String() string { return p.Path + ": " + p.Reason }

// SHA256 returns the hex SHA-256 of data.
func SHA256(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// CheckFiles compares the bundle's files with the index: every listed file
// present with its SHA-256 and size, no file unlisted (but the index and
// its signatures), and SHA256SUMS exactly what the index implies.
func CheckFiles(b *Bundle, ix *Index) []Problem {
	var out []Problem
	for _, f := range ix.Files {
		data, ok := b.Files[f.Path]
		switch {
		case !ok:
			out = append(out, Problem{f.Path, "missing from the bundle"})
		case SHA256(data) != f.SHA256 || int64(len(data)) != f.Size:
			out = append(out, Problem{f.Path, "modified: its SHA-256 differs from the index"})
		}
	}
	for _, n := range b.Names {
		if !isIndexFile(n) && ix.Lookup(n) == nil {
			out = append(out, Problem{n, "extra: not listed in the index"})
		}
	}
	if data, ok := b.Files[SumsFile]; ok && !bytes.Equal(data, Sums(ix)) {
		out = append(out, Problem{SumsFile, "does not match the index"})
	}
	return out
}

// StoredCheckpoint is a checkpoint of the bundle with its signature files.
type StoredCheckpoint struct {
	Name string            // bundle path of the .cp file
	Body []byte            // the checkpoint
	Sigs map[string][]byte // ".asc" and/or ".sig"
}

// Checkpoints returns the bundle's checkpoints, by name.
func (b *Bundle) Checkpoints() []StoredCheckpoint {
	var out []StoredCheckpoint
	for _, n := range b.Names {
		if path.Dir(n) != CheckpointsDir || !strings.HasSuffix(n, ".cp") {
			continue
		}
		sc := StoredCheckpoint{Name: n, Body: b.Files[n], Sigs: map[string][]byte{}}
		for _, ext := range []string{".asc", ".sig"} {
			if s, ok := b.Files[n+ext]; ok {
				sc.Sigs[ext] = s
			}
		}
		out = append(out, sc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// VerifyTrail checks trail/entries.jsonl (chain, seq, times, tree) against
// the checkpoints, whose signatures the caller has judged (see
// audit.SignedCheckpoint). Every checkpoint must be vouched for and valid;
// the trail must hold exactly entries entries and match the origin, and the
// newest checkpoint must cover all of them.
func VerifyTrail(b *Bundle, ix *Index, cps []*audit.SignedCheckpoint) (*audit.Report, []Problem, error) {
	entries, ok := b.Files[EntriesFile]
	if !ok {
		return nil, []Problem{{EntriesFile, "missing from the bundle"}}, nil
	}
	rep, err := audit.Verify(bytes.NewReader(entries), cps, audit.Options{})
	if err != nil {
		return nil, nil, err
	}
	var out []Problem
	if !rep.OK() {
		out = append(out, Problem{EntriesFile, fmt.Sprintf("invalid at seq %d: %s", rep.FirstBad, rep.Problem)})
	}
	if rep.TornTail > 0 {
		out = append(out, Problem{EntriesFile, "ends with a partial line"})
	}
	for _, ig := range rep.Ignored {
		out = append(out, Problem{ig.Name, "checkpoint not vouched for: " + ig.Reason})
	}
	if rep.Entries != ix.Entries {
		out = append(out, Problem{EntriesFile, fmt.Sprintf("holds %d entries, the index says %d", rep.Entries, ix.Entries)})
	}
	if rep.Origin != ix.Origin {
		out = append(out, Problem{EntriesFile, fmt.Sprintf("is trail %q, the index says %q", rep.Origin, ix.Origin)})
	}
	switch {
	case rep.Latest == nil && rep.Entries > 0:
		out = append(out, Problem{CheckpointsDir, "no valid checkpoint covers the trail"})
	case rep.Latest != nil && rep.Latest.Size != rep.Entries:
		out = append(out, Problem{CheckpointsDir, fmt.Sprintf("the newest valid checkpoint covers %d of %d entries: the trail was cut short or the checkpoint removed", rep.Latest.Size, rep.Entries)})
	}
	return rep, out, nil
}
