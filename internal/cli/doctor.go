package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/pinned"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/tfrun"
	"github.com/groundzero/groundzero/internal/trail"
)

// Doctor statuses.
const (
	doctorPass = "PASS"
	doctorWarn = "WARN"
	doctorFail = "FAIL"
)

// doctorResult is one line of `groundzero doctor`.
type doctorResult struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Hint   string `json:"hint,omitempty"`
}

// credentialVars are the credentials doctor looks for, by name only: their
// values are never read into a message.
var credentialVars = []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE", "GOOGLE_APPLICATION_CREDENTIALS", "VAULT_TOKEN"}

func (a *app) doctorCmd() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "doctor",
		Short: "check the tools, keys, credentials, evidence store and clock groundzero needs",
		Long: `doctor checks this machine and repository, one line each: the OpenTofu (or
Terraform) binary and its version, gpg and gpg-agent, ssh-keygen, git and its
signing configuration, which cloud and Vault credentials are set (by name,
never by value), whether the evidence store that policy.yaml names can be
read, and the clock against the newest trusted checkpoint.

A FAIL line exits 1; WARN lines are things to know, not errors. doctor
records nothing in the audit trail.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			results := a.doctor()
			var failedNames []string
			for _, r := range results {
				if r.Status == doctorFail {
					failedNames = append(failedNames, r.Name)
				}
			}
			if format == "json" {
				if err := a.printJSON(struct {
					OK     bool           `json:"ok"`
					Checks []doctorResult `json:"checks"`
				}{len(failedNames) == 0, results}); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					fmt.Fprintf(a.stdout, "%s  %-9s %s\n", r.Status, r.Name, r.Detail)
					if r.Hint != "" && r.Status != doctorPass {
						fmt.Fprintf(a.stdout, "      %-9s hint: %s\n", "", r.Hint)
					}
				}
			}
			if len(failedNames) > 0 {
				return failed(fmt.Errorf("%d of %d doctor check(s) failed: %s", len(failedNames), len(results), strings.Join(failedNames, ", ")),
					"each FAIL line above says what to fix")
			}
			return nil
		},
	}
	formatFlagVar(c, &format, "text", "json")
	return c
}

// doctor runs every check in order.
func (a *app) doctor() []doctorResult {
	r, repoErr := repo.Find(orDot(a.dir))
	root := ""
	if repoErr == nil {
		root = r.Root
	}
	results := []doctorResult{
		a.doctorEngine(root),
		doctorTool(a.ctx, "gpg", "gpg", "needed for gpg: keys; install GnuPG (gnupg)"),
		doctorTool(a.ctx, "gpg-agent", "gpg-agent", "gpg signs through gpg-agent; install it with GnuPG (gnupg-agent)"),
		doctorTool(a.ctx, "ssh", "ssh-keygen", "needed for ssh: keys; install OpenSSH (openssh-client)"),
		a.doctorGit(r),
		a.doctorCredentials(),
	}
	store, res := a.doctorStore(r, repoErr)
	results = append(results, res, a.doctorClock(r, store))
	return results
}

// doctorEngine finds the engine as plan and apply do: GROUNDZERO_TF_BINARY,
// then tofu and terraform on PATH, never inside the repository.
func (a *app) doctorEngine(root string) doctorResult {
	const name = "tofu"
	var bin string
	var err error
	if root != "" {
		bin, err = tfrun.Find("", a.getenv, root)
	} else {
		bin, err = findEngineNoRepo(a.getenv)
	}
	if err != nil {
		return doctorResult{name, doctorFail, err.Error(), "install OpenTofu " + pinned.TofuVersion + " outside the repository and put it on PATH, or set GROUNDZERO_TF_BINARY"}
	}
	source := tfrun.SourcePATH
	if a.getenv(tfrun.SourceEnv) != "" {
		source = tfrun.SourceEnv
	}
	e, err := tfrun.Identify(a.ctx, bin)
	if err != nil {
		return doctorResult{name, doctorFail, err.Error(), ""}
	}
	defer e.Close()
	detail := fmt.Sprintf("%s version %s (from %s)", bin, e.Version, source)
	if want := strings.TrimPrefix(pinned.TofuVersion, "v"); e.Version != want {
		return doctorResult{name, doctorWarn, detail + "; groundzero is tested with OpenTofu " + pinned.TofuVersion,
			"install OpenTofu " + pinned.TofuVersion + " outside the repository and set GROUNDZERO_TF_BINARY to it"}
	}
	return doctorResult{name, doctorPass, detail, ""}
}

// findEngineNoRepo looks up the engine outside any repository.
func findEngineNoRepo(getenv func(string) string) (string, error) {
	if b := getenv(tfrun.SourceEnv); b != "" {
		p, err := exec.LookPath(b)
		if err != nil {
			return "", &tfrun.NotFoundError{Name: b, Source: tfrun.SourceEnv, Err: err}
		}
		return p, nil
	}
	for _, n := range []string{"tofu", "terraform"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", &tfrun.NotFoundError{Name: "tofu", Source: tfrun.SourcePATH}
}

// doctorTool reports whether a program is on PATH and its version line.
func doctorTool(ctx context.Context, name, program, fix string) doctorResult {
	p, err := exec.LookPath(program)
	if err != nil {
		return doctorResult{name, doctorWarn, program + " is not on PATH", fix}
	}
	detail := p
	if program != "ssh-keygen" { // ssh-keygen has no version flag
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, p, "--version").Output(); err == nil {
			first, _, _ := strings.Cut(string(out), "\n")
			detail += " (" + strings.TrimSpace(first) + ")"
		}
	}
	return doctorResult{name, doctorPass, detail, ""}
}

// doctorGit reports git and the signing configuration groundzero falls back
// on when no --key is given.
func (a *app) doctorGit(r *repo.Repo) doctorResult {
	const name = "git"
	p, err := exec.LookPath("git")
	if err != nil {
		return doctorResult{name, doctorFail, "git is not on PATH", "install git; groundzero finds the repository and verifies tags with it"}
	}
	get := func(key string) string {
		if r != nil {
			return r.GitConfig(a.ctx, key)
		}
		out, err := exec.CommandContext(a.ctx, p, "config", "--get", key).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	format := get("gpg.format")
	if format == "" {
		format = "openpgp (default)"
	}
	key := get("user.signingkey")
	if key == "" {
		detail := p + "; user.signingkey is not set; gpg.format " + format
		if a.getenv("GROUNDZERO_KEY") != "" {
			return doctorResult{name, doctorPass, detail + "; GROUNDZERO_KEY is set", ""}
		}
		return doctorResult{name, doctorWarn, detail,
			"set GROUNDZERO_KEY, or `git config user.signingkey KEY` (with gpg.format ssh for an SSH key), or pass --key to each signing command"}
	}
	return doctorResult{name, doctorPass, p + "; user.signingkey " + key + "; gpg.format " + format, ""}
}

// doctorCredentials names the credentials that are set, never their values.
func (a *app) doctorCredentials() doctorResult {
	var present, absent []string
	for _, k := range credentialVars {
		if a.getenv(k) != "" {
			present = append(present, k)
		} else {
			absent = append(absent, k)
		}
	}
	detail := "present: " + namesOrNone(present) + "; absent: " + namesOrNone(absent)
	if len(present) == 0 {
		return doctorResult{"creds", doctorWarn, detail, "a cloud backend or evidence store needs its credentials: AWS_PROFILE (or AWS_ACCESS_KEY_ID), GOOGLE_APPLICATION_CREDENTIALS or VAULT_TOKEN"}
	}
	return doctorResult{"creds", doctorPass, detail, ""}
}

func namesOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// doctorStore opens the evidence store that policy.yaml names, read-only,
// as read-only commands do.
func (a *app) doctorStore(r *repo.Repo, repoErr error) (trail.Store, doctorResult) {
	const name = "store"
	if repoErr != nil {
		return nil, doctorResult{name, doctorWarn, "not in a governed repository: " + repoErr.Error(), "run doctor inside the governed repository, or pass -C DIR"}
	}
	pol, err := govern.LoadPolicy(r)
	if err != nil {
		hint := "`groundzero policy check` says what is wrong with " + repo.PolicyFile
		if errors.Is(err, fs.ErrNotExist) {
			hint = "run `groundzero init` in the repository root, or restore " + repo.PolicyFile + " from version control"
		}
		return nil, doctorResult{name, doctorFail, err.Error(), hint}
	}
	url, days := pol.Evidence.Store, pol.Evidence.RetentionDays
	if pin := a.getenv("GROUNDZERO_EVIDENCE_STORE"); pin != "" && pin != url {
		return nil, doctorResult{name, doctorFail,
			fmt.Sprintf("%s names evidence store %s, but GROUNDZERO_EVIDENCE_STORE pins %s", repo.PolicyFile, redactURL(url), redactURL(pin)),
			"restore governance/policy.yaml from the newest reviewed commit, or change the pin in the CI settings after review"}
	}
	s, err := trail.Open(a.ctx, url, trail.Options{Base: r.Root, RetentionDays: days, ReadOnly: true})
	if err != nil {
		return nil, doctorResult{name, doctorFail, err.Error(), "check evidence.store in " + repo.PolicyFile + " (file://DIR or s3://BUCKET/PREFIX) and the store's credentials"}
	}
	kind := "a local store: demo-grade only"
	if a.authoritative(s, pol) {
		kind = "authoritative"
	}
	return s, doctorResult{name, doctorPass, redactURL(s.URL()) + " is readable (" + kind + ")", ""}
}

// doctorClock compares the clock with the newest trusted checkpoint: a
// clock behind it would make commands refuse to record.
func (a *app) doctorClock(r *repo.Repo, s trail.Store) doctorResult {
	const name = "clock"
	if s == nil {
		return doctorResult{name, doctorWarn, "not compared: the evidence store was not read", ""}
	}
	cfg := trail.VerifyConfig{Now: a.now}
	if pol := a.evidencePolicy(r); pol != nil {
		cfg.Roles = pol.Gates.Checkpoint.Roles
	}
	if chain, err := signers.Load(r); err == nil {
		cfg.Registry = chain.Current()
	}
	ix, err := anchor.Read(a.ctx, s, cfg, false)
	if err != nil {
		var torn *trail.TornError
		if errors.As(err, &torn) {
			return doctorResult{name, doctorFail, err.Error(), "an append was interrupted; run `groundzero audit repair` to move the torn bytes aside (they are kept)"}
		}
		return doctorResult{name, doctorFail, "the audit trail cannot be read: " + err.Error(), "`groundzero audit verify` shows its state"}
	}
	newest := ix.NewestCheckpoint()
	if newest.IsZero() {
		return doctorResult{name, doctorWarn, "no trusted checkpoint yet to compare the clock with", ""}
	}
	d := a.now.Sub(newest)
	at := newest.UTC().Format(time.RFC3339)
	if d < 0 {
		return doctorResult{name, doctorFail,
			fmt.Sprintf("the clock (%s) is %s behind the newest trusted checkpoint (%s)", a.now.Format(time.RFC3339), (-d).Round(time.Second), at),
			"fix the system clock (NTP); commands refuse to record before the newest checkpoint"}
	}
	return doctorResult{name, doctorPass, fmt.Sprintf("newest trusted checkpoint at %s, %s ago", at, d.Round(time.Second)), ""}
}
