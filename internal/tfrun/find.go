package tfrun

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Where a binary came from.
const (
	SourceFlag = "--tf-binary"
	SourceEnv  = "GROUNDZERO_TF_BINARY"
	SourcePATH = "PATH"
)

// InRepoError refuses an engine that lies inside the repository: anyone who
// can push could replace it.
type InRepoError struct {
	Path   string // the binary, symbolic links resolved
	Source string // SourceFlag, SourceEnv or SourcePATH
}

func (e *InRepoError) Error() string {
	fix := "install OpenTofu outside the repository, or pass --tf-binary"
	switch e.Source {
	case SourceFlag:
		fix = "install OpenTofu outside the repository and pass that path to --tf-binary"
	case SourceEnv:
		fix = "install OpenTofu outside the repository and point GROUNDZERO_TF_BINARY at it, or pass --tf-binary"
	case SourcePATH:
		fix = "install OpenTofu outside the repository, remove the repository's directories from PATH, or pass --tf-binary"
	}
	return fmt.Sprintf("OpenTofu binary %s (from %s) lies inside the repository: %s", e.Path, e.Source, fix)
}

// NotFoundError reports that no engine was found where Source says.
type NotFoundError struct {
	Name   string // what was looked for
	Source string // SourceFlag, SourceEnv or SourcePATH
	Err    error
}

func (e *NotFoundError) Error() string {
	if e.Source == SourcePATH {
		return "neither tofu nor terraform is on PATH: install OpenTofu outside the repository, or pass --tf-binary"
	}
	return fmt.Sprintf("%s %q is not an executable (%v): fix %s, or unset it", e.Source, e.Name, e.Err, e.Source)
}

func (e *NotFoundError) Unwrap() error { return e.Err }

// Find picks the engine: flag, then GROUNDZERO_TF_BINARY, then tofu and
// terraform on PATH. It returns the binary's absolute path with symbolic
// links resolved, and refuses (*InRepoError) one that lies inside repoRoot,
// however it was named.
func Find(flag string, getenv func(string) string, repoRoot string) (string, error) {
	if repoRoot == "" {
		return "", errors.New("tfrun.Find: no repository root")
	}
	root, err := filepath.EvalSymlinks(repoRoot)
	if err != nil {
		return "", fmt.Errorf("resolving the repository root: %w", err)
	}
	for _, c := range []struct{ name, source string }{{flag, SourceFlag}, {getenv(SourceEnv), SourceEnv}} {
		if c.name == "" {
			continue
		}
		p, err := exec.LookPath(c.name)
		if err != nil {
			return "", &NotFoundError{Name: c.name, Source: c.source, Err: err}
		}
		return outsideRepo(p, c.source, root)
	}
	for _, name := range []string{"tofu", "terraform"} {
		if p, err := exec.LookPath(name); err == nil {
			return outsideRepo(p, SourcePATH, root)
		}
	}
	return "", &NotFoundError{Name: "tofu", Source: SourcePATH}
}

// outsideRepo resolves p and refuses it when it lies inside root (resolved).
func outsideRepo(p, source, root string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", &NotFoundError{Name: p, Source: source, Err: err}
	}
	if fi, err := os.Stat(real); err != nil || !fi.Mode().IsRegular() {
		return "", &NotFoundError{Name: p, Source: source, Err: errors.New("not a regular file")}
	}
	if within(root, real) {
		return "", &InRepoError{Path: real, Source: source}
	}
	return real, nil
}

// within reports whether p is root or lies below it (both cleaned, absolute).
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel))
}
