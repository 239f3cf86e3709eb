package cli

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
)

// governedRun opens the gate pipeline for a command: the app's repository,
// clock and environment, with the anchor, the audit trail and the evidence
// store as its I/O.
func (a *app) governedRun(r *repo.Repo, env, dir, tfBinary, trustRoot string, strict bool) (*govern.Run, error) {
	var run *govern.Run
	var err error
	run, err = govern.Open(a.ctx, govern.Config{
		Repo: r, Now: a.now, TrustRoot: a.trustRoot(trustRoot), Strict: strict,
		Env: env, Dir: dir, TFBinary: tfBinary, Getenv: a.getenv, Environ: os.Environ(), Stderr: a.stderr,
		Anchor: func() (*anchor.Index, error) {
			ix, err := a.anchor(r)
			var e *Error
			if errors.As(err, &e) && e.Code == ExitUsage {
				return nil, &govern.UsageError{Err: e.Err, Hint: e.Hint}
			}
			return ix, err
		},
		Record: func(events []govern.Event) error {
			rec := a.runRecorder(r, run)
			for _, ev := range events {
				rec.add(ev.Action, ev.Subject, ev.Details)
			}
			return rec.flush(nil)
		},
		Artifact: func(name string, data []byte) error {
			store, err := a.openStore(r, "")
			if err != nil {
				return err
			}
			return store.PutArtifact(a.ctx, name, data)
		},
	})
	if err != nil {
		return nil, govErr(err)
	}
	return run, nil
}

// finishRun prints the gate results, records the run's events, and returns
// the command's result: result when it is set, else the gates' verdict.
func (a *app) finishRun(run *govern.Run, format string, result error) error {
	if err := a.report(format, run.Results); err != nil && result == nil {
		result = err
	}
	if run.Gates == nil {
		return govErr(result) // stopped before the gates loaded: nothing ran to record
	}
	rec := a.runRecorder(run.Gates.Repo, run)
	for _, ev := range run.Events() {
		rec.add(ev.Action, ev.Subject, ev.Details)
	}
	return rec.flush(govErr(result))
}

// runRecorder is the recorder of a governed run: once the ci gate verified
// the runner, the runner is the actor of what the run records.
func (a *app) runRecorder(r *repo.Repo, run *govern.Run) *recorder {
	rec := a.recorder(r)
	if run != nil && run.CI != nil {
		rec.actor = govern.CIActor(run.CI)
	}
	return rec
}

// govErr gives the pipeline's errors their exit codes and hints.
func govErr(err error) error {
	var ue *govern.UsageError
	var nt govern.NoTerminalError
	var ge *govern.GateError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ue):
		var e *Error
		if errors.As(ue.Err, &e) {
			return e
		}
		return usage(ue.Err, ue.Hint)
	case errors.As(err, &nt):
		return usage(err, "run it on a terminal; non-interactive applies belong to the CI path (`groundzero apply --ci`, with a ci: section in governance/policy.yaml)")
	case errors.As(err, &ge):
		return failed(err, ge.Result.Hint)
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return failed(err, "")
}

// loadPolicy reads policy.yaml; a malformed policy is a usage error.
func (a *app) loadPolicy(r *repo.Repo) (*policy.Policy, error) {
	p, err := govern.LoadPolicy(r)
	return p, govErr(err)
}

// resolveEnv checks --env against the policy; with one environment it is the
// default.
func resolveEnv(p *policy.Policy, name string) (string, error) {
	env, err := govern.ResolveEnv(p, name)
	return env, govErr(err)
}

// parityEngine compiles the built-in and custom rules for env.
func (a *app) parityEngine(r *repo.Repo, p *policy.Policy, env string) (*parity.Engine, error) {
	e, err := govern.ParityEngine(a.ctx, r, p, env)
	return e, govErr(err)
}

func filepathAbs(p string) (string, error) { return filepath.Abs(p) }
func filepathRel(base, p string) (string, error) {
	r, err := filepath.Rel(base, p)
	return filepath.ToSlash(r), err
}

// intentRun opens the pipeline for a command that acts under an intent:
// --intent must be given (hint says how to make one), then the repository,
// the run and its environment. The caller closes the run.
func (a *app) intentRun(intentFile, hint, env, dir, tfBinary, trustRoot string) (*repo.Repo, *govern.Run, error) {
	if intentFile == "" {
		return nil, nil, usage(errors.New("--intent is required"), hint)
	}
	r, err := a.repo()
	if err != nil {
		return nil, nil, err
	}
	run, err := a.governedRun(r, env, dir, tfBinary, trustRoot, false)
	if err != nil {
		return nil, nil, err
	}
	if err := run.NeedEnv(); err != nil {
		run.Close()
		return nil, nil, govErr(err)
	}
	return r, run, nil
}

// runIntent reads the intent the command acts under; a file that is not a
// valid intent fails the intent gate.
func (a *app) runIntent(run *govern.Run, r *repo.Repo, file string) (govern.IntentFile, bool) {
	in, data, rel, err := readIntent(r, file)
	if err != nil {
		run.Results = append(run.Results, gate.Result{Name: "intent", Detail: err.Error()})
		return govern.IntentFile{}, false
	}
	return govern.IntentFile{Intent: in, Data: data, Rel: rel}, true
}
