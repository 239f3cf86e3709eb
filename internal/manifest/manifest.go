// Package manifest computes and checks governance/MANIFEST, the SHA-256 of
// every governed file.
//
// # Format
//
// The format is exactly what `sha256sum` writes and `sha256sum -c` reads in
// its default (text) mode: one line per file,
//
//	<64 lower-case hex digits><space><space><path>\n
//
// sorted by path in byte order, paths relative to the repository root with
// forward slashes. groundzero writes and accepts only this canonical form:
// no escaped names (a path with a backslash or newline is refused), no binary
// marker, no duplicates, no blank lines.
//
// # Version
//
// The governed state is versioned so that an older, validly signed MANIFEST
// cannot be replayed (T33). The first line is a comment, which `sha256sum -c`
// (also with --strict) skips:
//
//	# groundzero.manifest/v1 version=<N> previous=<hex SHA-256 | none>
//
// N starts at 1 and grows by one each time a signed MANIFEST is replaced;
// previous is the SHA-256 of the exact bytes of the MANIFEST it replaces
// (none for version 1). The freshness anchor (the authoritative audit trail)
// records the version in force; an older one is a rollback. A MANIFEST
// without the line is version 0, accepted only where no version was ever
// recorded.
//
// # Governed files
//
// Everything under governance/ except the MANIFEST itself, its signature
// files and governance/intents/, plus everything under infra/bootstrap/
// except OpenTofu's working files (.terraform/, *.tfstate, *.tfstate.backup,
// .terraform.tfstate.lock.info), plus the CI configuration `groundzero init
// --ci` writes ([CIFiles]): it decides what a CI runner runs and with which
// environment, so the ci gate checks that the one the runner ran is listed
// here. Symbolic links are refused.
package manifest

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
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/groundzero/groundzero/internal/repo"
)

// Limits on MANIFEST.
const (
	MaxSize    = 16 << 20
	MaxEntries = 100_000
)

// Entry is one line of the manifest.
type Entry struct {
	Path string
	Sum  [sha256.Size]byte
}

// Manifest is the parsed MANIFEST.
type Manifest struct {
	Version  int    // 0 when the header line is absent
	Previous string // hex SHA-256 of the version before, "" for none
	Entries  []Entry
}

// HeaderPrefix starts the version line.
const HeaderPrefix = "# groundzero.manifest/v1 "

var headerRE = regexp.MustCompile(`^# groundzero\.manifest/v1 version=([1-9][0-9]{0,8}) previous=(none|[0-9a-f]{64})$`)

func (m *Manifest) header() string {
	prev := m.Previous
	if prev == "" {
		prev = "none"
	}
	return fmt.Sprintf("%sversion=%d previous=%s", HeaderPrefix, m.Version, prev)
}

// Next returns a manifest with entries that succeeds the signed MANIFEST
// whose exact bytes are prev: version+1, linked by prev's SHA-256.
// A version-0 MANIFEST (written before versions) is followed by version 1.
func (m *Manifest) Next(prev []byte, entries []Entry) *Manifest {
	if m.Version == 0 {
		return &Manifest{Version: 1, Entries: entries}
	}
	sum := sha256.Sum256(prev)
	return &Manifest{Version: m.Version + 1, Previous: hex.EncodeToString(sum[:]), Entries: entries}
}

// SameEntries reports whether two manifests list the same files and sums.
func (m *Manifest) SameEntries(o *Manifest) bool {
	if len(m.Entries) != len(o.Entries) {
		return false
	}
	for i := range m.Entries {
		if m.Entries[i] != o.Entries[i] {
			return false
		}
	}
	return true
}

// ParseError reports a malformed MANIFEST line.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return repo.ManifestFile + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", repo.ManifestFile, e.Line, e.Msg)
}

// Parse reads MANIFEST bytes, accepting only the canonical form.
func Parse(data []byte) (*Manifest, error) {
	if len(data) > MaxSize {
		return nil, &ParseError{0, fmt.Sprintf("larger than %d bytes", MaxSize)}
	}
	m := &Manifest{}
	if len(data) == 0 {
		return m, nil
	}
	if data[len(data)-1] != '\n' {
		return nil, &ParseError{0, "does not end with a newline"}
	}
	lines := bytes.Split(data[:len(data)-1], []byte("\n"))
	first := 1
	if len(lines) > 0 && bytes.HasPrefix(lines[0], []byte("#")) {
		sm := headerRE.FindSubmatch(lines[0])
		if sm == nil {
			return nil, &ParseError{1, "malformed version line; want \"" + HeaderPrefix + "version=N previous=SHA256|none\""}
		}
		m.Version, _ = strconv.Atoi(string(sm[1]))
		if string(sm[2]) != "none" {
			m.Previous = string(sm[2])
		}
		if (m.Version == 1) != (m.Previous == "") {
			return nil, &ParseError{1, "version 1 has previous=none, and only version 1 has"}
		}
		lines, first = lines[1:], 2
	}
	if len(lines) > MaxEntries {
		return nil, &ParseError{0, fmt.Sprintf("more than %d entries", MaxEntries)}
	}
	m.Entries = make([]Entry, 0, len(lines))
	for i, line := range lines {
		n := i + first
		if len(line) < 64+2+1 || line[64] != ' ' || line[65] != ' ' {
			return nil, &ParseError{n, "expected \"<sha256>  <path>\""}
		}
		var e Entry
		hexSum := line[:64]
		for _, c := range hexSum {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return nil, &ParseError{n, "checksum is not 64 lower-case hex digits"}
			}
		}
		hex.Decode(e.Sum[:], hexSum)
		e.Path = string(line[66:])
		if err := repo.CheckRel(e.Path); err != nil {
			return nil, &ParseError{n, err.Error()}
		}
		if !IsGoverned(e.Path) {
			return nil, &ParseError{n, e.Path + " is not a governed path"}
		}
		if len(m.Entries) > 0 {
			prev := m.Entries[len(m.Entries)-1].Path
			if prev == e.Path {
				return nil, &ParseError{n, e.Path + " is listed twice"}
			}
			if prev > e.Path {
				return nil, &ParseError{n, "entries are not sorted by path"}
			}
		}
		m.Entries = append(m.Entries, e)
	}
	return m, nil
}

// Format writes the canonical MANIFEST bytes.
func (m *Manifest) Format() []byte {
	var b bytes.Buffer
	if m.Version > 0 {
		b.WriteString(m.header())
		b.WriteByte('\n')
	}
	for _, e := range m.Entries {
		b.WriteString(hex.EncodeToString(e.Sum[:]))
		b.WriteString("  ")
		b.WriteString(e.Path)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

var (
	excludedGovernance = map[string]bool{
		repo.ManifestFile:          true,
		repo.ManifestFile + ".asc": true,
		repo.ManifestFile + ".sig": true,
	}
)

// CIFiles are the CI configurations the manifest covers when they exist:
// the GitHub Actions workflow and the GitLab CI file `groundzero init --ci`
// writes.
var CIFiles = []string{".github/workflows/groundzero.yml", ".gitlab-ci.yml"}

// IsGoverned reports whether a repository path is covered by the manifest.
func IsGoverned(p string) bool {
	switch {
	case slices.Contains(CIFiles, p):
		return true
	case strings.HasPrefix(p, repo.GovernanceDir+"/"):
		if excludedGovernance[p] {
			return false
		}
		for _, d := range repo.RecordDirs {
			if p == d || strings.HasPrefix(p, d+"/") {
				return false
			}
		}
		return true
	case strings.HasPrefix(p, repo.BootstrapDir+"/"):
		for _, part := range strings.Split(p, "/") {
			if part == ".terraform" {
				return false
			}
		}
		base := path.Base(p)
		if base == repo.BackendLockName+".asc" || base == repo.BackendLockName+".sig" {
			return false // the lock's own signatures: the lock verifies by them
		}
		if strings.HasSuffix(base, ".tfstate") || strings.HasSuffix(base, ".tfstate.backup") || base == ".terraform.tfstate.lock.info" {
			return false
		}
		return true
	}
	return false
}

// Governed lists every governed file in the work tree, sorted. A symbolic
// link, or anything else that is not a regular file or directory, is an
// error that names it.
func Governed(r *repo.Repo) ([]string, error) {
	var out []string
	for _, top := range []string{repo.GovernanceDir, repo.BootstrapDir} {
		if err := r.NoSymlinks(top); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		root := r.Abs(top)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == root {
					return fs.SkipDir
				}
				return err
			}
			rel, err := filepath.Rel(r.Root, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if d.Type()&fs.ModeSymlink != 0 {
				if IsGoverned(rel) || d.IsDir() {
					return &repo.PathError{Path: rel, Reason: "is a symbolic link; governed files must be regular files"}
				}
				return nil
			}
			if d.IsDir() {
				if rel == repo.IntentsDir || (strings.HasPrefix(rel, repo.BootstrapDir+"/") && d.Name() == ".terraform") {
					return fs.SkipDir
				}
				return nil
			}
			if !IsGoverned(rel) {
				return nil
			}
			if !d.Type().IsRegular() {
				return &repo.PathError{Path: rel, Reason: "is not a regular file"}
			}
			if err := repo.CheckRel(rel); err != nil {
				return err
			}
			out = append(out, rel)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, f := range CIFiles {
		if err := r.NoSymlinks(f); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		fi, err := os.Lstat(r.Abs(f))
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, &repo.PathError{Path: f, Reason: "is not a regular file"}
		}
		out = append(out, f)
	}
	sort.Strings(out)
	if len(out) > MaxEntries {
		return nil, fmt.Errorf("more than %d governed files", MaxEntries)
	}
	return out, nil
}

// HashFile returns the SHA-256 of a file's contents.
func HashFile(p string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(p)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	if _, err := io.CopyBuffer(h, f, *buf); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// hashAll hashes files in parallel with up to workers goroutines.
func hashAll(ctx context.Context, r *repo.Repo, paths []string, workers int) ([][sha256.Size]byte, []error) {
	sums := make([][sha256.Size]byte, len(paths))
	errs := make([]error, len(paths))
	if workers < 1 {
		workers = 1
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				sums[i], errs[i] = HashFile(r.Abs(paths[i]))
			}
		}()
	}
	for i := range paths {
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			continue
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return sums, errs
}

// Workers is the number of files hashed at once; GOMAXPROCS by default.
var Workers = runtime.GOMAXPROCS(0)

// Build computes the manifest of the current work tree.
func Build(ctx context.Context, r *repo.Repo) (*Manifest, error) {
	paths, err := Governed(r)
	if err != nil {
		return nil, err
	}
	sums, errs := hashAll(ctx, r, paths, Workers)
	m := &Manifest{Entries: make([]Entry, len(paths))}
	for i, p := range paths {
		if errs[i] != nil {
			return nil, fmt.Errorf("%s: %w", p, errs[i])
		}
		m.Entries[i] = Entry{Path: p, Sum: sums[i]}
	}
	return m, nil
}

// Problem is one difference between the manifest and the work tree.
type Problem struct {
	Path string
	Kind string // "modified", "missing", "unlisted", "unreadable"
}

func (p Problem) String() string {
	switch p.Kind {
	case "modified":
		return p.Path + ": content differs from MANIFEST"
	case "missing":
		return p.Path + ": listed in MANIFEST but missing"
	case "unlisted":
		return p.Path + ": governed file not listed in MANIFEST"
	}
	return p.Path + ": " + p.Kind
}

// Check compares m with the work tree and returns every difference, sorted
// by path.
func Check(ctx context.Context, r *repo.Repo, m *Manifest) ([]Problem, error) {
	present, err := Governed(r)
	if err != nil {
		return nil, err
	}
	listed := make(map[string]bool, len(m.Entries))
	var toHash []string
	var want [][sha256.Size]byte
	var problems []Problem
	presentSet := make(map[string]bool, len(present))
	for _, p := range present {
		presentSet[p] = true
	}
	for _, e := range m.Entries {
		listed[e.Path] = true
		if !presentSet[e.Path] {
			problems = append(problems, Problem{e.Path, "missing"})
			continue
		}
		toHash = append(toHash, e.Path)
		want = append(want, e.Sum)
	}
	for _, p := range present {
		if !listed[p] {
			problems = append(problems, Problem{p, "unlisted"})
		}
	}
	sums, errs := hashAll(ctx, r, toHash, Workers)
	for i, p := range toHash {
		switch {
		case errs[i] != nil:
			problems = append(problems, Problem{p, "unreadable"})
		case sums[i] != want[i]:
			problems = append(problems, Problem{p, "modified"})
		}
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Path < problems[j].Path })
	return problems, nil
}
