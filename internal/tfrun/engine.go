package tfrun

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// MaxEngineSize bounds the engine binary that Identify copies.
const MaxEngineSize = 1 << 30

// Engine is an identified OpenTofu (or Terraform) binary.
type Engine struct {
	// Path is a private copy of Source, in a 0700 directory of its own: the
	// program to run (Runner.Bin). Its bytes are the ones SHA256 was computed
	// over, so replacing Source after the check changes nothing.
	Path    string
	Source  string // the binary Identify was given
	SHA256  string // lower-case hex SHA-256 of the executable's bytes
	Version string // as `version -json` reports it ("terraform_version")
	// Cached says the copy and its identity came from the engine cache
	// (IdentifyCached) rather than being made now.
	Cached bool
	owned  bool // Close removes the copy
}

// Close removes the private copy, unless it lives in the engine cache.
func (e *Engine) Close() error {
	if !e.owned {
		return nil
	}
	return os.RemoveAll(filepath.Dir(e.Path))
}

// EngineError reports an engine that cannot be identified.
type EngineError struct {
	Path   string
	Reason string
}

func (e *EngineError) Error() string {
	return fmt.Sprintf("OpenTofu binary %s %s: install OpenTofu outside the repository, or pass --tf-binary", e.Path, e.Reason)
}

// Identify copies bin into a private directory while hashing it, and asks the
// copy for its version (`version -json`, with the owned environment). The
// caller runs Engine.Path and closes the Engine when done.
func Identify(ctx context.Context, bin string) (*Engine, error) {
	src, fi, err := openEngine(bin)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dir, cleanup, err := NewDataDir()
	if err != nil {
		return nil, err
	}
	return identifyIn(ctx, bin, src, fi, dir, cleanup)
}

// openEngine opens bin, which must be a regular file of bounded size.
func openEngine(bin string) (*os.File, os.FileInfo, error) {
	src, err := os.Open(bin)
	if err != nil {
		return nil, nil, &EngineError{Path: bin, Reason: fmt.Sprintf("cannot be read (%v)", err)}
	}
	fi, err := src.Stat()
	switch {
	case err != nil:
	case !fi.Mode().IsRegular():
		err = &EngineError{Path: bin, Reason: "is not a regular file"}
	case fi.Size() > MaxEngineSize:
		err = &EngineError{Path: bin, Reason: fmt.Sprintf("is larger than %d bytes", MaxEngineSize)}
	}
	if err != nil {
		src.Close()
		return nil, nil, err
	}
	return src, fi, nil
}

// identifyIn copies the opened binary src into dir (private, holding the CLI
// configuration), hashes it and asks it for its version. cleanup removes dir
// on failure.
func identifyIn(ctx context.Context, bin string, src *os.File, fi os.FileInfo, dir string, cleanup func()) (*Engine, error) {
	e := &Engine{Path: filepath.Join(dir, filepath.Base(bin)), Source: bin, owned: true}
	if e.Path == filepath.Join(dir, CLIConfigName) {
		e.Path += ".bin"
	}
	fail := func(err error) (*Engine, error) {
		cleanup()
		return nil, err
	}
	dst, err := os.OpenFile(e.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		return fail(err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(dst, h), io.LimitReader(src, MaxEngineSize+1))
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(fmt.Errorf("copying %s: %w", bin, err))
	}
	if n > MaxEngineSize {
		return fail(&EngineError{Path: bin, Reason: fmt.Sprintf("is larger than %d bytes", MaxEngineSize)})
	}
	if err := os.Chmod(e.Path, 0o500); err != nil {
		return fail(err)
	}
	e.SHA256 = hex.EncodeToString(h.Sum(nil))

	var stdout, stderr bytes.Buffer
	err = runRetrying(func() *exec.Cmd {
		stdout.Reset()
		stderr.Reset()
		cmd := exec.CommandContext(ctx, e.Path, VersionArgs()...)
		cmd.Dir = dir
		cmd.Env = Env(os.Environ(), dir)
		cmd.Stdout = &limitedBuffer{buf: &stdout, max: 1 << 20}
		cmd.Stderr = &limitedBuffer{buf: &stderr, max: 1 << 20}
		return cmd
	})
	if err != nil {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		return fail(&EngineError{Path: bin, Reason: fmt.Sprintf("does not report its version (%v: %s)", err, lastLines(stderr.String(), 3))})
	}
	var v struct {
		Version string `json:"terraform_version"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil || v.Version == "" {
		return fail(&EngineError{Path: bin, Reason: "does not report its version as JSON (`version -json` has no terraform_version)"})
	}
	e.Version = v.Version
	return e, nil
}

// limitedBuffer keeps the first max bytes written to it and discards the rest.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// EngineMismatchError refuses an engine that is not the one policy.yaml pins.
type EngineMismatchError struct {
	Field  string // "version" or "sha256", as under engine: in policy.yaml
	Want   string // the pin
	Got    string // what the engine is
	Source string // the binary
}

func (e *EngineMismatchError) Error() string {
	return fmt.Sprintf("OpenTofu binary %s has %s %s, but policy.yaml pins engine.%s %s: install the pinned engine outside the repository and pass --tf-binary, or change engine.%s in governance/policy.yaml (a signed change)",
		e.Source, e.Field, e.Got, e.Field, e.Want, e.Field)
}

// Check refuses an engine whose version or SHA-256 differs from the pin;
// an empty pin is not checked. Versions compare without a leading "v", hashes
// without regard to case. Both mismatches are reported when both differ.
func Check(e *Engine, wantVersion, wantSHA256 string) error {
	var errs []error
	if wantVersion != "" && strings.TrimPrefix(wantVersion, "v") != strings.TrimPrefix(e.Version, "v") {
		errs = append(errs, &EngineMismatchError{Field: "version", Want: wantVersion, Got: e.Version, Source: e.Source})
	}
	if wantSHA256 != "" && !strings.EqualFold(wantSHA256, e.SHA256) {
		errs = append(errs, &EngineMismatchError{Field: "sha256", Want: wantSHA256, Got: e.SHA256, Source: e.Source})
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
