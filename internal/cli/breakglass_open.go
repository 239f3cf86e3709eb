package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/breakglass"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/trail"
)

func (a *app) breakglassOpenCmd() *cobra.Command {
	var env, reason, ttlFlag, intentFile, keySpec, trustRoot string
	c := &cobra.Command{
		Use:   "open --reason TEXT --ttl DURATION --intent FILE [--key KEYSPEC]",
		Short: "open a break-glass window under a break-glass intent signed by two people",
		Long: `open runs the static gates (a failed backend gate does not stop it: the
backend may be what broke), then checks that no window is open, that --ttl
is within policy.yaml's breakglass.max_ttl (default 4h), and the intent:
action break-glass, this environment, the governed commit and MANIFEST,
unexpired, unused (read from the authoritative evidence store), the clock
not behind the trail's newest checkpoint, and signed by its requester and
the approvers policy.yaml requires, two distinct people at least (keys and
signatures never count, people do). The opener, the owner of --key, must be
one of them. Where gates.certified_machine is set, the host must be a
certified machine.

The window lives --ttl, or until the intent expires if that is sooner. Its
marker (groundzero.break-glass/v1), signed by the opener, and the intent
with its signatures are kept in the evidence store as artifacts
breakglass-ID.json[.asc|.sig] and breakglass-ID.intent.json[.asc|.sig];
then the intent is consumed and BREAK_GLASS_ACTIVE recorded. Only then is
the marker written to governance/breakglass/ID.json with its signature.
If the entry cannot be recorded the window is not open. The window id is
printed on stdout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ttl, err := policy.ParseDuration(ttlFlag)
			if ttlFlag == "" || err != nil || ttl <= 0 {
				return usage(fmt.Errorf("--ttl %q is not a duration such as 2h or 90m", ttlFlag), "--ttl is required; policy.yaml's breakglass.max_ttl bounds it")
			}
			r, run, err := a.intentRun(intentFile, "create one with `groundzero intent new --action break-glass` and have two people sign it", env, "", "", trustRoot)
			if err != nil {
				return err
			}
			defer run.Close()
			s, spec, err := a.signer(r, keySpec)
			if err != nil {
				return err
			}
			owner, err := a.keyOwner(r, spec)
			if err != nil {
				return err
			}
			if ok, err := run.Static(a.ctx, false, run.EnvName); !ok || err != nil {
				if err != nil || !onlyBackendFailed(run.Results) {
					return a.finishRun(run, "text", err)
				}
			}
			f, ok := a.runIntent(run, r, intentFile)
			if !ok {
				return a.finishRun(run, "text", nil)
			}
			m, err := run.OpenBreakGlass(a.ctx, govern.OpenRequest{Intent: f, Reason: reason, TTL: ttl, Opener: owner})
			if m == nil || err != nil {
				return a.finishRun(run, "text", err)
			}
			data, err := m.Marshal()
			if err != nil {
				return a.finishRun(run, "text", usage(err, ""))
			}
			sig, err := s.Sign(a.ctx, data, breakglass.Kind)
			if err != nil {
				return a.finishRun(run, "text", usage(err, "check that the key is available"))
			}
			artifacts, err := a.keepOpening(r, m, data, sig, f)
			if err != nil {
				return a.finishRun(run, "text", failed(fmt.Errorf("keeping the break-glass marker in the evidence store: %w", err),
					"the window is not open; the evidence store must be reachable and writable"))
			}
			run.NoteOpened(m, f, sha256hex(data), artifacts)
			if err := a.report("text", run.Results); err != nil {
				return err
			}
			rec := a.runRecorder(r, run)
			rec.as(s, sig)
			for _, ev := range run.Events() {
				rec.add(ev.Action, ev.Subject, ev.Details)
			}
			if err := rec.flush(nil); err != nil {
				var e *Error
				if errors.As(err, &e) {
					e.Hint = "the window is open only if its BREAK_GLASS_ACTIVE entry was recorded: `groundzero breakglass status` says; " + e.Hint
					return e
				}
				return err
			}
			rel := breakglass.MarkerPath(m.ID)
			if err := r.WriteFile(rel, data); err != nil {
				return usage(fmt.Errorf("the window is open (recorded), but writing %s failed: %w", rel, err), "restore it from the evidence store artifact "+breakglass.MarkerArtifact(m.ID))
			}
			if _, err := sigfile.Add(r, rel, sig); err != nil {
				return usage(err, "")
			}
			fmt.Fprintln(a.stdout, m.ID)
			a.info("break-glass window %s is open for %s until %s; marker %s; commit it with its signature", m.ID, m.Env, m.Expires, rel)
			return nil
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment (default: the only one)")
	c.Flags().StringVar(&reason, "reason", "", "why the window is needed (10 to 2000 characters)")
	c.Flags().StringVar(&ttlFlag, "ttl", "", "how long the window stays open, such as 2h (at most breakglass.max_ttl, default 4h)")
	c.Flags().StringVar(&intentFile, "intent", "", "the break-glass intent, signed by two people")
	keyFlag(c, &keySpec)
	trustRootFlag(c, &trustRoot)
	return c
}

// keepOpening stores the marker, its signature and the intent with its
// signatures as artifacts, and returns their names.
func (a *app) keepOpening(r *repo.Repo, m *breakglass.Marker, data []byte, sig *signature.Signature, f govern.IntentFile) ([]string, error) {
	store, err := a.openStore(r, "")
	if err != nil {
		return nil, err
	}
	type artifact struct {
		name string
		data []byte
	}
	list := []artifact{{breakglass.MarkerArtifact(m.ID), data}}
	files, err := trail.SignatureFiles([]*signature.Signature{sig})
	if err != nil {
		return nil, err
	}
	for ext, b := range files {
		list = append(list, artifact{breakglass.MarkerArtifact(m.ID) + ext, b})
	}
	list = append(list, artifact{breakglass.IntentArtifact(m.ID), f.Data})
	for _, p := range sigfile.Paths(f.Rel) {
		b, err := r.ReadFile(p, signature.MaxFileSize)
		if err != nil {
			continue
		}
		list = append(list, artifact{breakglass.IntentArtifact(m.ID) + p[len(f.Rel):], b})
	}
	var names []string
	for _, x := range list {
		if err := store.PutArtifact(a.ctx, x.name, x.data); err != nil {
			return nil, err
		}
		names = append(names, x.name)
	}
	return names, nil
}
