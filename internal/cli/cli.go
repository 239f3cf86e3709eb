// Package cli implements the groundzero command line. Each command lives in
// its own file: it parses flags, calls one package, and prints. stdout carries
// data; stderr carries messages for people.
package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/strictyaml"
	"github.com/groundzero/groundzero/internal/trail"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1 // a governance check failed
	ExitUsage  = 2 // usage, configuration or environment error
)

// Error is an error with an exit code and an optional hint for people.
type Error struct {
	Code int
	Err  error
	Hint string
	// Quiet means the command already reported the failure on stdout;
	// only the one-line summary goes to stderr.
	Quiet bool
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func failed(err error, hint string) *Error { return &Error{Code: ExitFailed, Err: err, Hint: hint} }
func usage(err error, hint string) *Error  { return &Error{Code: ExitUsage, Err: err, Hint: hint} }

// ExitCode returns the process exit code for an error returned by Run.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ExitUsage
}

// PrintError writes the error and its hint to stderr in the house form.
func PrintError(w io.Writer, err error) {
	msg := err.Error()
	fmt.Fprintf(w, "groundzero: error: %s\n", msg)
	var e *Error
	if errors.As(err, &e) && e.Hint != "" {
		fmt.Fprintf(w, "groundzero: hint: %s\n", e.Hint)
	}
	var se *strictyaml.Error
	if errors.As(err, &se) && se.Hint != "" && (e == nil || e.Hint == "") {
		fmt.Fprintf(w, "groundzero: hint: %s\n", se.Hint)
	}
}

// app carries what every command needs.
type app struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	now    time.Time // fixed once per invocation
	dir    string    // -C
	// command is the command's name without "groundzero ", "policy
	// check" say.
	command string

	stores  map[string]trail.Store // opened evidence stores, by base and URL
	anchors map[trail.Store]*anchor.Index
	ckey    *checkpointKey // the default checkpoint key, once resolved
	ckeyErr error
	// intentEnv: the gates that intent verify and list judge against
	intentEnv *gate.Env
	// bgState: what this invocation learnt about break-glass windows
	bgState *bgState
}

func (a *app) repo() (*repo.Repo, error) {
	dir := a.dir
	if dir == "" {
		dir = "."
	}
	r, err := repo.Find(dir)
	if err != nil {
		return nil, usage(err, "run groundzero inside the governed repository (a git work tree), or pass -C DIR")
	}
	return r, nil
}

func (a *app) signer(r *repo.Repo, flag string) (sign.Signer, sign.Spec, error) {
	spec, err := sign.Resolve(flag, a.getenv, func(k string) string { return r.GitConfig(a.ctx, k) })
	if err != nil {
		return nil, spec, usage(err, "KEYSPEC is gpg:<fingerprint-or-email>, ssh:<key-path>, file:<path>, awskms:<key-id-or-arn>, gcpkms:<key-version-name> or vault:<transit-key>")
	}
	s, err := sign.New(spec, func() time.Time { return a.now })
	if err != nil {
		return nil, spec, usage(err, "check the KEYSPEC and that the key exists")
	}
	return s, spec, nil
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) info(format string, args ...any) {
	fmt.Fprintf(a.stderr, "groundzero: "+format+"\n", args...)
}

const exitCodesHelp = `Exit codes:
  0  every check passed
  1  a governance check failed (bad or missing signature, mismatch, policy violation)
  2  usage, configuration or environment error`

// Run runs the groundzero command line with args (without the program name).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	a := &app{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, now: time.Now().UTC()}
	root := &cobra.Command{
		Use:   "groundzero",
		Short: "governed infrastructure bootstrap",
		Long: `groundzero makes the first Terraform/OpenTofu state of an organisation, and
every change after it, a governed act: nothing becomes mutable until it is
signed, checked and confirmed, and everything leaves evidence that an auditor
can verify offline with stock tools.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.Version = versionText()
	root.SetVersionTemplate("{{.Version}}")
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&a.dir, "repo", "C", "", "run as if started in `DIR` (the governed repository)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usage(err, "see `"+c.CommandPath()+" --help`")
	})
	root.SetHelpTemplate(root.HelpTemplate() + "\n" + exitCodesHelp + "\n")
	root.SetUsageTemplate(strings.NewReplacer(
		".LocalFlags.FlagUsages", "flagUsages .LocalFlags",
		".InheritedFlags.FlagUsages", "flagUsages .InheritedFlags",
	).Replace(root.UsageTemplate()))
	root.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		a.command = strings.TrimPrefix(c.CommandPath(), "groundzero ")
		if readOnly[c.CommandPath()] {
			return nil
		}
		// A command that records is refused before it writes anything
		// when the default key may not sign checkpoints (T35).
		r, err := repo.Find(orDot(a.dir))
		if err != nil {
			return nil // the command reports it
		}
		if a.recordsLocally(r) {
			return nil // no checkpoint: the record stays local
		}
		_, err = a.defaultKey(r)
		return err
	}
	root.AddCommand(
		a.initCmd(),
		a.signersCmd(),
		a.manifestCmd(),
		a.tagCmd(),
		a.checkCmd(),
		a.auditCmd(),
		a.intentCmd(),
		a.policyCmd(),
		a.planCmd(),
		a.applyCmd(),
		a.bootstrapCmd(),
		a.backendCmd(),
		a.versionCmd(),
		a.completionCmd(),
		a.doctorCmd(),
		a.machineCmd(),
		a.ciCmd(),
		a.breakglassCmd(),
		a.bundleCmd(),
		a.evidenceCmd(),
		a.drillCmd(),
	)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	// Errors from cobra itself: unknown command, wrong argument count.
	if strings.Contains(err.Error(), "unknown command") || strings.Contains(err.Error(), "arg(s)") || strings.Contains(err.Error(), "flag") {
		return usage(err, "see `groundzero --help`")
	}
	return usage(err, "")
}

// readOnly commands record nothing, so no checkpoint key is resolved for
// them.
var readOnly = map[string]bool{
	"groundzero audit verify":      true,
	"groundzero audit show":        true,
	"groundzero audit prove":       true,
	"groundzero audit check-proof": true,
	"groundzero policy schema":     true,
	"groundzero backend templates": true,
	"groundzero backend render":    true,
	"groundzero help":              true,
	"groundzero version":           true,
	"groundzero completion":        true,
	"groundzero __complete":        true,
	"groundzero __completeNoDesc":  true,
	"groundzero doctor":            true,
	"groundzero evidence verify":   true,
	"groundzero evidence report":   true,
	"groundzero bundle verify":     true,
	"groundzero bundle restore":    true,
}

func init() {
	cobra.AddTemplateFunc("flagUsages", flagUsages)
}

// flagUsages renders a flag set for help as pflag does, but shows a boolean
// flag as plain --name, never --name[=true|false].
func flagUsages(fs *pflag.FlagSet) string {
	type line struct{ left, right string }
	var lines []line
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		left := "      --" + f.Name
		if f.Shorthand != "" && f.ShorthandDeprecated == "" {
			left = "  -" + f.Shorthand + ", --" + f.Name
		}
		varname, text := pflag.UnquoteUsage(f)
		typ := f.Value.Type()
		if varname != "" && typ != "bool" {
			left += " " + varname
		}
		switch {
		case f.NoOptDefVal == "":
		case typ == "string":
			left += fmt.Sprintf("[=%q]", f.NoOptDefVal)
		case typ == "bool" && f.NoOptDefVal == "true", typ == "count" && f.NoOptDefVal == "+1":
		default:
			left += "[=" + f.NoOptDefVal + "]"
		}
		switch f.DefValue {
		case "", "false", "0", "0s", "[]", "<nil>":
		default:
			if typ == "string" {
				text += fmt.Sprintf(" (default %q)", f.DefValue)
			} else {
				text += " (default " + f.DefValue + ")"
			}
		}
		if f.Deprecated != "" {
			text += " (DEPRECATED: " + f.Deprecated + ")"
		}
		lines = append(lines, line{left, text})
		width = max(width, len(left))
	})
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%-*s   %s\n", width, l.left, l.right)
	}
	return b.String()
}

func orDot(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Shared flags, so that each reads and behaves the same in every command.

func keyFlag(c *cobra.Command, v *string) {
	c.Flags().StringVar(v, "key", "", "KEYSPEC: gpg:<id>, ssh:<path>, file:<path>, awskms:<key>, gcpkms:<version> or vault:<key> (default GROUNDZERO_KEY, then git's user.signingkey)")
}

func trustRootFlag(c *cobra.Command, v *string) {
	c.Flags().StringVar(v, "trust-root", "", "SHA-256 of the pinned signers registry version (default GROUNDZERO_TRUST_ROOT)")
}

func storeFlag(c *cobra.Command, v *string) {
	c.Flags().StringVar(v, "store", "", "evidence store URL (default: evidence.store in policy.yaml)")
}

func formatFlagVar(c *cobra.Command, v *string, allowed ...string) {
	c.Flags().StringVar(v, "format", allowed[0], "output format: "+strings.Join(allowed, ", "))
}

// formatFlag validates --format.
func formatFlag(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return usage(fmt.Errorf("--format %q is not one of %s", v, strings.Join(allowed, ", ")), "")
}
