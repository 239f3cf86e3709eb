// Package tfrun drives OpenTofu (or Terraform). The argument vectors are built
// by pure functions, always non-interactive and colourless, and the process
// environment is owned: ambient TF_* settings do not leak in.
package tfrun

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// InitArgs builds `init`.
func InitArgs() []string {
	return []string{"init", "-input=false", "-no-color"}
}

// PlanArgs builds `plan -out`. destroy plans a destroy.
func PlanArgs(out string, destroy bool) []string {
	args := []string{"plan", "-input=false", "-no-color", "-out=" + out}
	if destroy {
		args = append(args, "-destroy")
	}
	return args
}

// ShowJSONArgs builds `show -json` of a saved plan, or of the state when
// plan is "".
func ShowJSONArgs(plan string) []string {
	args := []string{"show", "-json", "-no-color"}
	if plan != "" {
		args = append(args, plan)
	}
	return args
}

// ApplyArgs builds `apply` of exactly a saved plan (a saved plan applies
// without a prompt).
func ApplyArgs(plan string) []string {
	return []string{"apply", "-input=false", "-no-color", plan}
}

// passThrough are the TF_* variables an operator may set on purpose; every
// other TF_* variable is dropped.
var passThrough = map[string]bool{"TF_CLI_CONFIG_FILE": true, "TF_PLUGIN_CACHE_DIR": true}

// Env returns the environment for OpenTofu: the given one without TF_*
// variables (except the pass-through ones), plus automation settings.
func Env(environ []string) []string {
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TF_") && !passThrough[k] {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1")
}

// Find picks the binary: flag, then GROUNDZERO_TF_BINARY, then the pinned
// .tools/bin/tofu of the repository, then tofu and terraform on PATH.
func Find(flag string, getenv func(string) string, repoRoot string) (string, error) {
	for _, c := range []string{flag, getenv("GROUNDZERO_TF_BINARY")} {
		if c != "" {
			if p, err := exec.LookPath(c); err == nil {
				return p, nil
			}
			return "", fmt.Errorf("%s: not an executable", c)
		}
	}
	pinned := filepath.Join(repoRoot, ".tools", "bin", "tofu")
	if fi, err := os.Stat(pinned); err == nil && fi.Mode()&0o111 != 0 {
		return pinned, nil
	}
	for _, name := range []string{"tofu", "terraform"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("neither tofu nor terraform is installed")
}

// Runner runs the binary in a working directory.
type Runner struct {
	Bin     string
	Dir     string
	Environ []string // the base environment; Env filters it
}

// Error reports a failed run with the tail of its output.
type Error struct {
	Args   []string
	Output string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s failed: %s", "tofu", strings.Join(e.Args, " "), lastLines(e.Output, 6))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Run runs args and returns stdout; stderr and stdout also go to tee when set.
func (r *Runner) Run(ctx context.Context, tee io.Writer, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, r.Bin, args...)
	cmd.Dir = r.Dir
	cmd.Env = Env(r.Environ)
	var stdout, combined bytes.Buffer
	outs := []io.Writer{&stdout, &combined}
	errs := []io.Writer{&combined}
	if tee != nil {
		outs, errs = append(outs, tee), append(errs, tee)
	}
	cmd.Stdout = io.MultiWriter(outs...)
	cmd.Stderr = io.MultiWriter(errs...)
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &Error{Args: args, Output: combined.String()}
	}
	return stdout.Bytes(), nil
}
