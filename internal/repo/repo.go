// Package repo locates a governed repository and reads and writes its files
// safely: paths are slash-separated and relative to the repository root, never
// absolute, never climbing out with "..", never through a symbolic link, and
// reads are bounded.
package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/groundzero/groundzero/internal/atomicfile"
)

// Well-known paths, relative to the repository root.
const (
	GovernanceDir = "governance"
	PolicyFile    = "governance/policy.yaml"
	SignersFile   = "governance/signers.yaml"
	SignersDir    = "governance/signers.d"
	KeysDir       = "governance/keys"
	ManifestFile  = "governance/MANIFEST"
	IntentsDir    = "governance/intents"
	// RevocationsDir holds signed revocation records.
	RevocationsDir = "governance/revocations"
	RegoDir        = "governance/rego"
	BootstrapDir   = "infra/bootstrap"
	LocalStateDir  = ".groundzero"
	// BackendLockName is the signed backend lock, in an environment's
	// configuration directory; its signatures sit beside it.
	BackendLockName = ".backend.lock"
)

// RecordDirs hold self-signed records (intents, revocations, break-glass
// markers, closes and revocations) and the incident reports a close
// references by hash: each verifies by its own signatures, so the manifest
// does not list them, and a commit that only adds or changes them leaves the
// governed content as it was.
var RecordDirs = []string{IntentsDir, RevocationsDir, "governance/breakglass", "governance/incidents"}

// MaxFileSize bounds any single governed file that groundzero reads whole.
const MaxFileSize = 64 << 20

// Repo is a governed repository: a git work tree.
type Repo struct {
	Root string // absolute
}

// NotRepoError reports a directory outside any git work tree.
type NotRepoError struct{ Dir string }

func (e *NotRepoError) Error() string { return e.Dir + " is not inside a git work tree" }

// Find returns the repository containing dir, found by walking up to the
// directory that holds .git.
func Find(dir string) (*Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return &Repo{Root: d}, nil
		}
		if filepath.Dir(d) == d {
			return nil, &NotRepoError{Dir: abs}
		}
	}
}

// PathError reports a path that groundzero refuses to follow.
type PathError struct {
	Path   string
	Reason string
}

func (e *PathError) Error() string { return e.Path + ": " + e.Reason }

// CheckRel validates a repository-relative slash path.
func CheckRel(rel string) error {
	switch {
	case rel == "" || rel == ".":
		return &PathError{rel, "empty path"}
	case strings.HasPrefix(rel, "/"):
		return &PathError{rel, "absolute paths are not allowed"}
	case strings.ContainsAny(rel, "\\\x00\n\r"):
		return &PathError{rel, "path contains a backslash, NUL or newline"}
	case path.Clean(rel) != rel:
		return &PathError{rel, "path is not in clean form"}
	case rel == ".." || strings.HasPrefix(rel, "../"):
		return &PathError{rel, "path climbs out of the repository"}
	}
	return nil
}

// Abs returns the OS path of a repository-relative path.
func (r *Repo) Abs(rel string) string { return filepath.Join(r.Root, filepath.FromSlash(rel)) }

// NoSymlinks checks that no component of rel below the root is a symbolic
// link. A missing component is reported as fs.ErrNotExist.
func (r *Repo) NoSymlinks(rel string) error { return r.noSymlinks(rel) }

func (r *Repo) noSymlinks(rel string) error {
	parts := strings.Split(rel, "/")
	cur := r.Root
	for i, p := range parts {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return &PathError{strings.Join(parts[:i+1], "/"), "is a symbolic link; governed files must be regular files"}
		}
	}
	return nil
}

// ReadFile reads a repository file of at most max bytes.
func (r *Repo) ReadFile(rel string, max int64) ([]byte, error) {
	if err := CheckRel(rel); err != nil {
		return nil, err
	}
	if err := r.noSymlinks(rel); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &NotExistError{Path: rel}
		}
		return nil, err
	}
	f, err := os.Open(r.Abs(rel))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &PathError{rel, "is not a regular file"}
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, &TooLargeError{Path: rel, Limit: max}
	}
	return data, nil
}

// NotExistError reports a missing repository file. It matches
// fs.ErrNotExist.
type NotExistError struct{ Path string }

func (e *NotExistError) Error() string { return e.Path + " does not exist" }

func (e *NotExistError) Is(target error) bool { return target == fs.ErrNotExist }

// TooLargeError reports a file over the size limit for what it holds (T8).
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: is larger than the %d-byte limit", e.Path, e.Limit)
}

// Exists reports whether rel exists (without following a final symlink).
func (r *Repo) Exists(rel string) bool {
	_, err := os.Lstat(r.Abs(rel))
	return err == nil
}

// WriteFile atomically replaces rel, creating parent directories.
func (r *Repo) WriteFile(rel string, data []byte) error {
	if err := CheckRel(rel); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(r.Abs(rel)), 0o755); err != nil {
		return err
	}
	if dir := path.Dir(rel); dir != "." {
		if err := r.noSymlinks(dir); err != nil {
			return err
		}
	}
	if fi, err := os.Lstat(r.Abs(rel)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return &PathError{rel, "is a symbolic link; refusing to write through it"}
	}
	return atomicfile.Write(r.Abs(rel), data, 0o644)
}

// Remove deletes rel if it exists.
func (r *Repo) Remove(rel string) error {
	if err := CheckRel(rel); err != nil {
		return err
	}
	err := os.Remove(r.Abs(rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// GitError reports a failed git command.
type GitError struct {
	Args   []string
	Stderr string
}

func (e *GitError) Error() string {
	return fmt.Sprintf("git %s: %s", strings.Join(e.Args, " "), strings.TrimSpace(e.Stderr))
}

// GitArgs are the options every git command groundzero runs starts with,
// after -C ROOT: replace objects are never read, whatever the repository's
// configuration says (the command line outranks core.useReplaceRefs in
// .git/config, which GIT_NO_REPLACE_OBJECTS does not), and no file-system
// monitor hook answers `git status` in git's place, so a configured
// core.fsmonitor program cannot report a changed work tree as clean.
var GitArgs = []string{"-c", "core.useReplaceRefs=false", "-c", "core.fsmonitor=false"}

// GitEnv returns the environment for a git process that groundzero runs:
// environ without any GIT_* variable, so the caller's environment cannot
// choose what git reads (T29). GIT_DIR, GIT_WORK_TREE, GIT_COMMON_DIR,
// GIT_INDEX_FILE, GIT_OBJECT_DIRECTORY, GIT_ALTERNATE_OBJECT_DIRECTORIES,
// GIT_NAMESPACE, GIT_REPLACE_REF_BASE, GIT_GRAFT_FILE, GIT_CEILING_DIRECTORIES,
// GIT_CONFIG, GIT_CONFIG_GLOBAL, GIT_CONFIG_SYSTEM, GIT_CONFIG_NOSYSTEM,
// GIT_CONFIG_COUNT/KEY_n/VALUE_n, GIT_CONFIG_PARAMETERS and GIT_EXEC_PATH
// would each redirect the repository, its objects, its refs, its
// configuration or git itself; none is needed, since groundzero never signs
// or fetches through git. What signing and the user's own configuration need
// stays: HOME, PATH, GNUPGHOME, SSH_AUTH_SOCK, XDG_CONFIG_HOME. It adds
// GIT_NO_REPLACE_OBJECTS=1, GIT_TERMINAL_PROMPT=0 and LC_ALL=C.
func GitEnv(environ []string) []string {
	env := make([]string, 0, len(environ)+3)
	for _, kv := range environ {
		if strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "LC_ALL=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GIT_NO_REPLACE_OBJECTS=1", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
}

// Git runs git in the repository and returns its stdout. It runs with
// GitEnv and GitArgs: the repository it reads is r, with its own objects and
// refs, whatever the caller's environment says.
func (r *Repo) Git(ctx context.Context, args ...string) ([]byte, error) {
	argv := append(append([]string{"-C", r.Root}, GitArgs...), args...)
	cmd := exec.CommandContext(ctx, "git", argv...)
	cmd.Env = GitEnv(os.Environ())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if stderr.Len() == 0 {
			stderr.WriteString(err.Error())
		}
		return nil, &GitError{Args: args, Stderr: stderr.String()}
	}
	return stdout.Bytes(), nil
}

// GitConfig returns a git configuration value, or "" when unset.
func (r *Repo) GitConfig(ctx context.Context, key string) string {
	out, err := r.Git(ctx, "config", "--get", key)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
