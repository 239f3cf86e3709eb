// Package tfrun drives OpenTofu (or Terraform) so that nothing outside the
// governed set decides what it does (T29).
//
// The argument vectors are built by pure functions, always non-interactive
// and colourless. The engine never comes from inside the repository (Find),
// and what runs is a private copy whose SHA-256 and reported version were
// checked (Identify, Check): the bytes checked are the bytes run (T30).
//
// # Environment
//
// Env owns the engine's environment. It removes, whatever their values:
//
//	TF_*              every OpenTofu setting, including TF_VAR_*, TF_CLI_ARGS*,
//	                  TF_CLI_CONFIG_FILE, TF_DATA_DIR, TF_REATTACH_PROVIDERS,
//	                  TF_PLUGIN_CACHE_DIR, TF_LOG*, TF_WORKSPACE, TF_ENCRYPTION
//	                  and TF_TOKEN_*
//	TERRAFORM_CONFIG  the legacy name of the CLI configuration file
//	GODEBUG           Go runtime switches, some of which weaken TLS checks
//
// and sets:
//
//	TF_CLI_CONFIG_FILE  DATA/groundzero.tofurc, the CLI configuration below
//	TF_DATA_DIR         DATA, the private data directory (Runner.DataDir)
//	TF_IN_AUTOMATION    1
//	TF_INPUT            0
//	CHECKPOINT_DISABLE  1
//
// The table is EnvTable. Because TF_CLI_CONFIG_FILE is set, OpenTofu reads
// neither ~/.tofurc, ~/.terraformrc nor the ~/.terraform.d configuration
// directory. The CLI configuration groundzero writes (CLIConfig) installs
// providers directly from their registries only, so no dev_overrides, mirror,
// plugin cache or implied local plugin directory (~/.terraform.d/plugins,
// $XDG_DATA_HOME/opentofu/plugins) applies, and it turns off ambient Docker
// credential discovery, which would run a credential helper program named by
// ~/.docker/config.json.
//
// TF_PLUGIN_CACHE_DIR is not passed through. OpenTofu uses a cached provider
// only when it matches the governed lock file, but it links the cache into
// the data directory by symbolic link, so the provider checked at init would
// still run from a shared directory that anyone who can write to it may
// change before plan or apply. Providers are installed into each private data
// directory instead; the cost is a download per command. Registry tokens
// (TF_TOKEN_*) are dropped with the rest, so private registries are not
// reachable; list private modules by their exact source in policy.yaml.
//
// Variables that are not OpenTofu's own (HOME, PATH, proxy and CA settings,
// cloud credentials such as AWS_* and GOOGLE_*) pass through: the backend and
// the providers need them.
//
// # Data directory
//
// Every run uses a private TF_DATA_DIR (NewDataDir): a fresh 0700 temporary
// directory outside any git work tree, so a .terraform/ directory committed
// to the repository (modules.json redirecting a module, a planted provider,
// a backend state) is never read. Callers init into a new one per command.
package tfrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// InitArgs builds `init`. lockfileReadonly adds -lockfile=readonly, which
// makes OpenTofu refuse any provider the governed .terraform.lock.hcl does not
// already record; callers pass true when the configuration directory holds a
// lock file.
func InitArgs(lockfileReadonly bool) []string {
	args := []string{"init", "-input=false", "-no-color"}
	if lockfileReadonly {
		args = append(args, "-lockfile=readonly")
	}
	return args
}

// MigrateArgs builds `init -migrate-state -force-copy`: the state of the
// backend the data directory last used is copied into the configured one
// without a prompt.
func MigrateArgs(lockfileReadonly bool) []string {
	return append(InitArgs(lockfileReadonly), "-migrate-state", "-force-copy")
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

// VersionArgs builds `version -json`.
func VersionArgs() []string {
	return []string{"version", "-json"}
}

// Runner runs the engine in a working directory.
type Runner struct {
	Bin     string   // the engine to run: Engine.Path
	Dir     string   // the configuration directory
	DataDir string   // the private TF_DATA_DIR, from NewDataDir; required
	Environ []string // the base environment; Env filters it
	// Set are NAME=VALUE pairs groundzero itself sets after filtering
	// (the state passphrase variable); they are never read from outside.
	Set []string
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
// It refuses to run without a private data directory.
func (r *Runner) Run(ctx context.Context, tee io.Writer, args ...string) ([]byte, error) {
	if err := checkDataDir(r.DataDir); err != nil {
		return nil, err
	}
	var stdout, combined bytes.Buffer
	err := runRetrying(func() *exec.Cmd {
		stdout.Reset()
		combined.Reset()
		cmd := exec.CommandContext(ctx, r.Bin, args...)
		cmd.Dir = r.Dir
		cmd.Env = append(Env(r.Environ, r.DataDir), r.Set...)
		outs := []io.Writer{&stdout, &combined}
		errs := []io.Writer{&combined}
		if tee != nil {
			outs, errs = append(outs, tee), append(errs, tee)
		}
		cmd.Stdout = io.MultiWriter(outs...)
		cmd.Stderr = io.MultiWriter(errs...)
		return cmd
	})
	if err != nil {
		if ctx.Err() != nil {
			return stdout.Bytes(), fmt.Errorf("tofu %s: %w", strings.Join(args, " "), ctx.Err())
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return stdout.Bytes(), fmt.Errorf("running %s: %w", r.Bin, err)
		}
		return stdout.Bytes(), &Error{Args: args, Output: combined.String()}
	}
	return stdout.Bytes(), nil
}

// runRetrying runs the command that build makes, once more (with a fresh
// command) when the start fails with "text file busy": the engine is a copy
// that was just written, and a process forked concurrently elsewhere in this
// program may briefly hold the copy's write descriptor (golang/go#22315).
func runRetrying(build func() *exec.Cmd) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		cmd := build()
		if err = cmd.Start(); err == nil {
			return cmd.Wait()
		}
		if !errors.Is(err, syscall.ETXTBSY) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	return err
}
