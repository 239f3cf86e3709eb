package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/confirm"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/govern"
)

func (a *app) bootstrapCmd() *cobra.Command {
	var env, dir, planFile, intentFile, tfBinary, trustRoot string
	c := &cobra.Command{
		Use:   "bootstrap --env ENV --intent FILE [--plan FILE]",
		Short: "create the environment's remote state store, move its state into it, and lock the backend",
		Long: `bootstrap creates the state store policy.yaml selects for the environment
(backend.kind: s3, gcs, oci, spaces, minio, or local for demos) and moves the
environment's state into it, behind every gate.

It runs the gates with the signed release tag required, whatever
require_tag says, and refuses to start without a registered key to sign the
audit trail's checkpoints (GROUNDZERO_KEY). It needs an intent with action
bootstrap, approved by two people. After the two-step confirmation (the
token, then APPLY) the intent is consumed, and bootstrap:

  1. creates the key, the bucket (versioning, default encryption, public
     access blocked, TLS-only policy, tags given in the create call) and the
     lock, or finds them made: running it again duplicates nothing;
  2. probes the store (conditional writes, also after a delete marker;
     versioning; encryption; Object Lock; tags at creation; public access)
     and refuses one that lacks a capability policy.yaml requires, unless
     backend.waive names it with a reason;
  3. applies the approved plan (--plan) into local state;
  4. renders backend.tf from the embedded template, with OpenTofu's state
     encryption when backend.encryption.state is set;
  5. migrates the state into the store and reads it back;
  6. writes .backend.lock and records it. Two people then sign it:
     groundzero backend sign --env ENV --key KEYSPEC

Every call's request ID and every resource identifier go into the audit
trail. A bootstrap that stops part-way resumes when run again with the same
intent. An environment that has a lock is not bootstrapped again until the
lock is revoked (groundzero backend revoke).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, run, err := a.intentRun(intentFile, "create one with `groundzero intent new --action bootstrap` and have two people approve it", env, dir, tfBinary, trustRoot)
			if err != nil {
				return err
			}
			defer run.Close()
			if !a.recordsLocally(r) {
				if k, err := a.defaultKey(r); err != nil {
					return err
				} else if k == nil {
					return usage(errors.New("bootstrap needs a registered key to sign the audit trail, and none is set"),
						"set GROUNDZERO_KEY to your own key (gpg:ID, ssh:PATH or file:PATH), registered in governance/signers.yaml")
				}
			}
			// Gate 1 is always required for bootstrap.
			if ok, err := run.Static(a.ctx, true, run.EnvName); err != nil || (!ok && !run.RevokedLockOnly()) {
				return a.finishRun(run, "text", err)
			}
			f, ok := a.runIntent(run, r, intentFile)
			if !ok {
				return a.finishRun(run, "text", nil)
			}
			if planFile != "" {
				planFile, _ = filepath.Abs(planFile)
			}
			req := govern.BootstrapRequest{
				Intent: f, Plan: planFile,
				Open: a.openBackend, Passphrase: a.getenv("GROUNDZERO_STATE_PASSPHRASE"),
			}
			if tty, err := confirm.OpenTTY(); err == nil {
				defer tty.Close()
				req.Confirm = tty.Confirm
			}
			done, err := run.Bootstrap(a.ctx, req)
			var pe *govern.ProbeError
			if errors.As(err, &pe) {
				err = nil // the probe gate's result says it
			}
			if done == nil || done.Lock == nil || err != nil {
				if err != nil && !errors.As(err, new(*govern.UsageError)) {
					err = failed(err, "")
				}
				return a.finishRun(run, "text", err)
			}
			if err := a.finishRun(run, "text", nil); err != nil {
				return err
			}
			if done.Applied != nil && done.Applied.LogErr != nil {
				PrintError(a.stderr, fmt.Errorf("keeping the apply log: %w", done.Applied.LogErr))
			}
			l := done.Lock
			verb := "bootstrapped"
			if done.Resumed {
				verb = "resumed and bootstrapped"
			}
			fmt.Fprintf(a.stdout, "%s environment %s: %s store %s", verb, l.Env, l.Backend, where(l.Bucket, l.StateKey, l.Path))
			if l.KeyID != "" {
				fmt.Fprintf(a.stdout, ", key %s", l.KeyID)
			}
			fmt.Fprintf(a.stdout, ", lock %s\n", l.LockMethod)
			if len(l.Waivers) > 0 {
				var ws []string
				for _, w := range l.Waivers {
					ws = append(ws, w.Probe+" ("+w.Reason+")")
				}
				fmt.Fprintf(a.stdout, "waived: %s\n", strings.Join(ws, "; "))
			}
			fmt.Fprintf(a.stdout, "wrote %s/%s and %s (version %d); two people sign the lock now:\n  groundzero backend sign --env %s --key KEYSPEC\n",
				filepath.Dir(done.LockPath), gate.BackendFile, done.LockPath, l.Version, l.Env)
			return nil
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment (default: the only one)")
	c.Flags().StringVar(&dir, "dir", "", "configuration directory; must be the one policy.yaml declares for the environment")
	c.Flags().StringVar(&planFile, "plan", "", "the approved plan of the bootstrap configuration, applied into local state before the migration")
	c.Flags().StringVar(&intentFile, "intent", "", "the signed bootstrap intent")
	c.Flags().StringVar(&tfBinary, "tf-binary", "", "tofu or terraform binary, outside the repository (default: GROUNDZERO_TF_BINARY, then PATH)")
	trustRootFlag(c, &trustRoot)
	return c
}

func where(bucket, key, path string) string {
	if bucket == "" {
		return path
	}
	return bucket + "/" + key
}
