package cli

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/lock"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
)

func (a *app) backendRevokeCmd() *cobra.Command {
	var env, intentFile, reason, keySpec, trustRoot string
	c := &cobra.Command{
		Use:   "revoke --env ENV --intent FILE [--reason TEXT] [--key KEYSPEC]",
		Short: "revoke the environment's backend lock, signed by two people under a revoke intent",
		Long: `revoke withdraws the backend lock in force for the environment, so that a
new bootstrap may lock another backend. It needs an intent with action
revoke, approved as policy.yaml requires, and a revocation record
(groundzero.revocation/v1, in governance/revocations/) signed by two people.

The first run writes the record, with --reason, and signs it with the
caller's key. Others sign it with
  groundzero backend sign governance/revocations/ID.json --key KEYSPEC
(or run revoke again with --key). Once two people have signed, revoke
records the revocation in the audit trail and consumes the intent. Only
then may bootstrap make a new lock (version N+1, naming the revoked one).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, run, err := a.intentRun(intentFile, "create one with `groundzero intent new --action revoke` and have it approved", env, "", "", trustRoot)
			if err != nil {
				return err
			}
			defer run.Close()
			if ok, err := run.Static(a.ctx, false, run.EnvName); !ok || err != nil {
				// A lock that no longer verifies can still be revoked:
				// only the backend gate may have failed.
				if err != nil || !onlyBackendFailed(run.Results) {
					return a.finishRun(run, "text", err)
				}
			}
			dir := run.Policy.Environment(run.EnvName).Dir
			st, err := run.Gates.ReadLock(run.EnvName, dir)
			if err != nil {
				return a.finishRun(run, "text", usage(err, "restore the lock from git"))
			}
			fail := func(detail, hint string) error {
				run.Results = append(run.Results, gate.Result{Name: "revoke", Detail: detail, Hint: hint})
				return a.finishRun(run, "text", nil)
			}
			switch {
			case st.Recorded == nil:
				return fail(fmt.Sprintf("environment %s has no lock recorded in the audit trail: there is nothing to revoke", run.EnvName), "")
			case st.Revoked:
				return fail(fmt.Sprintf("the lock of environment %s (version %d) is revoked already", run.EnvName, st.Recorded.Version), "bootstrap again: `groundzero bootstrap --env "+run.EnvName+" --intent FILE`")
			}
			f, ok := a.runIntent(run, r, intentFile)
			if !ok {
				return a.finishRun(run, "text", nil)
			}
			in := f.Intent
			ig := gate.Result{Name: "intent", OK: true}
			if in.Action != "revoke" {
				ig = gate.Result{Name: "intent", Detail: fmt.Sprintf("intent %s is for %s; revoking a lock needs an intent with action revoke", in.ID, in.Action)}
			} else if v, verr := govern.VerifyIntent(a.ctx, run.Gates, run.Policy, f, run.EnvName, ""); verr != nil {
				var ue *govern.UsageError
				if errors.As(verr, &ue) {
					return a.finishRun(run, "text", ue)
				}
				ig = gate.Result{Name: "intent", Detail: fmt.Sprintf("intent %s: %v", in.ID, verr), Hint: govern.IntentHint(verr)}
			} else {
				ig.Detail = fmt.Sprintf("intent %s (revoke on %s) requested by %s, approved by %s", in.ID, in.Env, in.Requester, strings.Join(v.Approvers, ", "))
			}
			run.Results = append(run.Results, ig)
			if !ig.OK {
				return a.finishRun(run, "text", nil)
			}
			recRel, recData, rv, err := a.findRevocation(r, st.Recorded.SHA256, in.ID)
			if err != nil {
				return a.finishRun(run, "text", err)
			}
			if rv == nil || keySpec != "" {
				s, spec, err := a.signer(r, keySpec)
				if err != nil {
					return a.finishRun(run, "text", err)
				}
				if rv == nil {
					if len(strings.TrimSpace(reason)) < 10 {
						return a.finishRun(run, "text", usage(errors.New("--reason is required (10 characters or more) to write the revocation"), ""))
					}
					owner, err := a.keyOwner(r, spec)
					if err != nil {
						return a.finishRun(run, "text", err)
					}
					if rv, err = lock.NewRevocation(run.EnvName, st.Recorded.SHA256, st.Recorded.Version, in.ID, reason, owner, a.now); err != nil {
						return a.finishRun(run, "text", usage(err, ""))
					}
					recData, _ = rv.Marshal()
					recRel = path.Join(repo.RevocationsDir, rv.ID+".json")
					if err := r.WriteFile(recRel, recData); err != nil {
						return a.finishRun(run, "text", usage(err, ""))
					}
					fmt.Fprintln(a.stdout, recRel)
				}
				sig, err := s.Sign(a.ctx, recData, lock.RevocationKind)
				if err != nil {
					return a.finishRun(run, "text", usage(err, "check that the key is available"))
				}
				if _, err := sigfile.Add(r, recRel, sig); err != nil {
					return a.finishRun(run, "text", usage(err, ""))
				}
				run.Note("revocation.sign", recRel, map[string]any{"sha256": sha256hex(recData), "key": sig.Issuer(), "subject": rv.ID})
			}
			sigs, err := sigfile.Load(r, recRel)
			if err != nil {
				return a.finishRun(run, "text", failed(err, ""))
			}
			// Judged now: a signature this command just made carries a time
			// later than the one the command started at.
			ids, err := lock.Approve("revocation "+rv.ID, recData, sigs, run.Gates.Registry(), time.Now().UTC(), lock.RevocationKind, run.Policy.Gates.Approvals["revoke"])
			if err != nil {
				fmt.Fprintf(a.stdout, "revocation %s is not in force yet: %v\nanother person signs it:\n  groundzero backend sign %s --key KEYSPEC\nthen run this command again to record it\n", rv.ID, err, recRel)
				return a.finishRun(run, "text", nil)
			}
			run.Results = append(run.Results, gate.Result{Name: "revoke", OK: true, Detail: fmt.Sprintf("revocation %s of lock version %d signed by %s", rv.ID, rv.Version, strings.Join(ids, ", "))})
			run.Note("intent.consumed", in.ID, map[string]any{"nonce": in.Nonce, "expires": in.Expires, "env": run.EnvName, "action": in.Action})
			run.Note(anchor.LockRevoked, gate.LockPath(dir), map[string]any{"env": run.EnvName, "version": rv.Version, "sha256": rv.Lock,
				"revocation": rv.ID, "revocation_sha256": sha256hex(recData), "reason": rv.Reason, "approvers": ids, "intent": in.ID})
			if err := a.finishRun(run, "text", nil); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "revoked lock version %d of environment %s (revocation %s); a new bootstrap may lock a backend now\n", rv.Version, run.EnvName, rv.ID)
			return nil
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment (default: the only one)")
	c.Flags().StringVar(&intentFile, "intent", "", "the signed revoke intent")
	c.Flags().StringVar(&reason, "reason", "", "why the lock is revoked (written into the revocation record)")
	keyFlag(c, &keySpec)
	trustRootFlag(c, &trustRoot)
	return c
}

func onlyBackendFailed(rs []gate.Result) bool {
	for _, r := range rs {
		if !r.OK && r.Name != "backend" {
			return false
		}
	}
	return true
}

// findRevocation finds the revocation record of the lock with that SHA-256
// under the intent, or returns nil when there is none.
func (a *app) findRevocation(r *repo.Repo, lockSHA, intentID string) (string, []byte, *lock.Revocation, error) {
	ents, err := os.ReadDir(r.Abs(repo.RevocationsDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", nil, nil, usage(err, "")
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		rel := path.Join(repo.RevocationsDir, e.Name())
		data, err := r.ReadFile(rel, lock.MaxSize)
		if err != nil {
			return "", nil, nil, usage(err, "")
		}
		rv, err := lock.ParseRevocation(rel, data)
		if err != nil {
			return "", nil, nil, failed(err, "revocation records are written by `groundzero backend revoke` and never edited")
		}
		if rv.Lock == lockSHA && rv.Intent == intentID {
			return rel, data, rv, nil
		}
	}
	return "", nil, nil, nil
}
