package tfrun

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DataDirInRepoError reports a data directory inside a git work tree, where
// the repository's content could stand in for OpenTofu's working files.
type DataDirInRepoError struct {
	Dir  string
	Repo string // the work tree that holds it
}

func (e *DataDirInRepoError) Error() string {
	return fmt.Sprintf("data directory %s lies inside the git work tree %s: set TMPDIR to a directory outside any repository", e.Dir, e.Repo)
}

// DataDirError reports a data directory that NewDataDir did not make: missing,
// not private, or with a CLI configuration that is not groundzero's.
type DataDirError struct {
	Dir    string
	Reason string
}

func (e *DataDirError) Error() string {
	return fmt.Sprintf("data directory %q %s: create it with tfrun.NewDataDir", e.Dir, e.Reason)
}

// NewDataDir creates a private data directory: a fresh temporary directory,
// mode 0700, outside any git work tree, holding the CLI configuration
// (CLIConfig). cleanup removes it.
func NewDataDir() (dir string, cleanup func(), err error) {
	d, err := os.MkdirTemp("", "groundzero-tf-")
	if err != nil {
		return "", nil, fmt.Errorf("creating a private OpenTofu data directory: %w", err)
	}
	cleanup = func() { os.RemoveAll(d) }
	real, err := filepath.EvalSymlinks(d)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	if repo := enclosingRepo(real); repo != "" {
		cleanup()
		return "", nil, &DataDirInRepoError{Dir: real, Repo: repo}
	}
	if err := os.Chmod(real, 0o700); err != nil {
		cleanup()
		return "", nil, err
	}
	f, err := os.OpenFile(filepath.Join(real, CLIConfigName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = f.WriteString(CLIConfig)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("writing the OpenTofu CLI configuration: %w", err)
	}
	return real, func() { os.RemoveAll(real) }, nil
}

// enclosingRepo returns the nearest directory at or above dir that holds
// .git, or "".
func enclosingRepo(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// checkDataDir refuses a data directory that is not private: missing, open to
// others, inside a git work tree, or without groundzero's CLI configuration.
func checkDataDir(dir string) error {
	if dir == "" {
		return &DataDirError{Dir: dir, Reason: "is not set (Runner.DataDir)"}
	}
	if !filepath.IsAbs(dir) {
		return &DataDirError{Dir: dir, Reason: "is not an absolute path"}
	}
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &DataDirError{Dir: dir, Reason: "does not exist"}
	case err != nil:
		return err
	case !fi.IsDir():
		return &DataDirError{Dir: dir, Reason: "is not a directory"}
	case fi.Mode().Perm()&0o077 != 0:
		return &DataDirError{Dir: dir, Reason: fmt.Sprintf("is open to other users (mode %04o)", fi.Mode().Perm())}
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	if repo := enclosingRepo(real); repo != "" {
		return &DataDirInRepoError{Dir: real, Repo: repo}
	}
	cfg := filepath.Join(dir, CLIConfigName)
	if fi, err := os.Lstat(cfg); err != nil || !fi.Mode().IsRegular() {
		return &DataDirError{Dir: dir, Reason: "has no CLI configuration " + CLIConfigName}
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		return err
	}
	if !bytes.Equal(b, []byte(CLIConfig)) {
		return &DataDirError{Dir: dir, Reason: "holds a CLI configuration " + CLIConfigName + " that groundzero did not write"}
	}
	return nil
}
