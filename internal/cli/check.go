package cli

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/secretscan"
)

func (a *app) trustRoot(flag string) string {
	if flag != "" {
		return flag
	}
	return a.getenv("GROUNDZERO_TRUST_ROOT")
}

func (a *app) checkCmd() *cobra.Command {
	var requireTag, strict bool
	var trustRoot, format, envName string
	c := &cobra.Command{
		Use:   "check",
		Short: "run every static gate; the command a CI build calls",
		Long: `check runs every gate that needs no cloud, in order: the policy file, the
signers registry and its trust chain, the integrity manifest, and the signed
the secret scan of the governed files, the signed
release tag (with --require-tag, or when policy.yaml sets
gates.require_tag), and the parity policy on the configuration in
infra/bootstrap for --env (or the only environment). It prints one line per
gate and fails the build when a governance artifact is missing or invalid.

The registry chain is anchored by --trust-root or GROUNDZERO_TRUST_ROOT, which
belongs in CI settings the repository cannot change. Freshness (rollback of
the registry or the governed state, replay of an intent) is judged against
the authoritative evidence store that policy.yaml names, read and verified in
full: the anchor gate. A local file:// store is a cache, accepted only for
environments marked demo: true. Without a pin, trust is on first use and
check says so; --strict fails without a pin or without an authoritative
store.

The secret scan fails on any cloud access key, private key, token or
literal password in a governed file, naming file, line and rule but never
the secret. Move the secret to a secret store and rotate it. A false
positive is accepted only by a secrets.waive entry in policy.yaml (rule,
path, optional line, and a reason). --format sarif writes the findings as
SARIF 2.1.0 for code scanning; --format junit writes one test case per
gate (GitLab test reports); the exit code still covers every gate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json", "sarif", "junit"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			run, err := a.governedRun(r, envName, "", "", trustRoot, strict)
			if err != nil {
				return err
			}
			defer run.Close()
			var envs []string
			if envName != "" {
				envs = []string{run.EnvName}
			}
			result := run.Check(a.ctx, requireTag, envs...)
			if format == "sarif" && run.Gates != nil {
				if err := a.printJSON(secretscan.SARIF(run.Gates.Secrets)); err != nil {
					return err
				}
			}
			return a.finishRun(run, format, result)
		},
	}
	c.Flags().BoolVar(&requireTag, "require-tag", false, "require HEAD to carry a signed release tag")
	c.Flags().BoolVar(&strict, "strict", false, "fail without a pinned trust root or an authoritative evidence store")
	c.Flags().StringVar(&envName, "env", "", "environment whose parity policy the configuration must meet (default: the only one)")
	trustRootFlag(c, &trustRoot)
	formatFlagVar(c, &format, "text", "json", "sarif", "junit")
	return c
}

// gateJUnit writes the gate results as one JUnit test suite: a test case
// per gate, a failed gate a failure with its detail and hint.
func gateJUnit(w io.Writer, results []gate.Result) error {
	suite := junitSuite{Name: "groundzero check"}
	for _, r := range results {
		c := junitCase{Name: r.Name, Classname: "groundzero.gate", SystemOut: r.Detail}
		if !r.OK {
			text := r.Detail
			if r.Hint != "" {
				text += "\nhint: " + r.Hint
			}
			c.Failures = []junitResult{{Message: r.Detail, Type: r.Name, Text: text}}
			c.SystemOut = ""
			suite.Failures++
		}
		suite.Cases = append(suite.Cases, c)
		suite.Tests++
	}
	out, err := xml.MarshalIndent(junitSuites{Name: "groundzero", Tests: suite.Tests, Failures: suite.Failures, Suites: []junitSuite{suite}}, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s%s\n", xml.Header, out)
	return err
}

// report prints gate results and returns the error that sets the exit code.
func (a *app) report(format string, results []gate.Result) error {
	ok := true
	config := false
	var failedNames []string
	for _, r := range results {
		if !r.OK {
			ok = false
			config = config || r.Config
			failedNames = append(failedNames, r.Name)
		}
	}
	if format == "json" {
		if err := a.printJSON(struct {
			OK    bool          `json:"ok"`
			Gates []gate.Result `json:"gates"`
		}{ok, results}); err != nil {
			return err
		}
	} else if format == "junit" {
		if err := gateJUnit(a.stdout, results); err != nil {
			return err
		}
	} else if format != "sarif" && format != formatNone {
		for _, r := range results {
			status := "PASS"
			if !r.OK {
				status = "FAIL"
			}
			fmt.Fprintf(a.stdout, "%s  %-9s %s\n", status, r.Name, r.Detail)
			if !r.OK && r.Hint != "" {
				fmt.Fprintf(a.stdout, "      %-9s hint: %s\n", "", r.Hint)
			}
		}
	}
	if ok {
		return nil
	}
	err := errors.New(fmt.Sprintf("%d of %d gate(s) failed: %s", len(failedNames), len(results), strings.Join(failedNames, ", ")))
	code := ExitFailed
	var hint string
	for _, r := range results {
		if !r.OK {
			hint = r.Hint
			break
		}
	}
	if config {
		code = ExitUsage
		for _, r := range results {
			if !r.OK && r.Config {
				err = errors.New(r.Detail)
				hint = r.Hint
				break
			}
		}
	}
	return &Error{Code: code, Err: err, Hint: hint}
}
