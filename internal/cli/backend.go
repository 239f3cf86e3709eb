package cli

import (
	"fmt"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/ciidentity"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/lock"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/signers"
)

func (a *app) backendCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "backend",
		Short: "create, verify, sign, render and revoke the environment's state store and its lock",
	}
	c.AddCommand(a.backendCreateCmd(), a.backendVerifyCmd(), a.backendSignCmd(), a.backendRenderCmd(), a.backendRevokeCmd(), a.backendTemplatesCmd())
	return c
}

// envLock loads the policy and the lock of env (default: the only
// environment).
func (a *app) envLock(r *repo.Repo, env string) (*policy.Policy, string, string, *lock.Lock, []byte, error) {
	pol, err := govern.LoadPolicy(r)
	if err != nil {
		return nil, "", "", nil, nil, govErr(err)
	}
	name, err := govern.ResolveEnv(pol, env)
	if err != nil {
		return nil, "", "", nil, nil, govErr(err)
	}
	dir := pol.Environment(name).Dir
	lp := gate.LockPath(dir)
	data, err := r.ReadFile(lp, lock.MaxSize)
	if err != nil {
		return pol, name, dir, nil, nil, usage(err, "environment "+name+" is not bootstrapped: `groundzero bootstrap --env "+name+" --intent FILE`")
	}
	l, err := lock.Parse(lp, data)
	if err != nil {
		return pol, name, dir, nil, nil, failed(err, "restore the lock from git; a lock is never edited")
	}
	return pol, name, dir, l, data, nil
}

// lockSpec is the store a lock records, with the policy's settings for what
// the lock does not hold (tags, replication, probes).
func lockSpec(pol *policy.Policy, l *lock.Lock) (backend.Spec, error) {
	spec, _, err := backend.FromPolicy(pol, l.Env)
	if err != nil {
		return spec, err
	}
	spec.Kind, spec.Bucket, spec.Region, spec.Endpoint, spec.Namespace = l.Backend, l.Bucket, l.Region, l.Endpoint, l.Namespace
	spec.Lock, spec.LockTable, spec.Encrypt, spec.Path = l.LockMethod, l.LockTable, l.Encrypt, l.Path
	spec.Key.Provider, spec.Key.ID, spec.Key.Name = l.KeyProvider, l.KeyID, l.KeyName
	if l.KeyAddress != "" {
		spec.Key.Address, spec.Key.Mount = l.KeyAddress, l.KeyMount
	}
	return spec, nil
}

func (a *app) backendSignCmd() *cobra.Command {
	var env, keySpec string
	c := &cobra.Command{
		Use:   "sign [--env ENV] [FILE] [--key KEYSPEC]",
		Short: "add the caller's signature to the environment's .backend.lock, or to a revocation record",
		Long: `sign signs the environment's backend lock (or the revocation record FILE)
with the caller's key, into FILE.asc (OpenPGP) or FILE.sig (SSH, namespace
the record's kind). A lock or a revocation counts once two distinct people
holding the roles of the bootstrap (or revoke) approval have signed it.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			var rel, kind, subject string
			var data []byte
			if len(args) == 1 {
				if rel, err = absRel(r, args[0]); err != nil {
					return usage(err, "")
				}
				if data, err = r.ReadFile(rel, lock.MaxSize); err != nil {
					return usage(err, "")
				}
				rv, err := lock.ParseRevocation(rel, data)
				if err != nil {
					return failed(err, "give a revocation record from "+repo.RevocationsDir+"/, or no FILE to sign the lock")
				}
				kind, subject = lock.RevocationKind, rv.ID
			} else {
				_, _, dir, l, raw, err := a.envLock(r, env)
				if err != nil {
					return err
				}
				rel, data, kind, subject = gate.LockPath(dir), raw, lock.Kind, l.Env
			}
			s, _, err := a.signer(r, keySpec)
			if err != nil {
				return err
			}
			sig, err := s.Sign(a.ctx, data, kind)
			if err != nil {
				return usage(err, "check that the key is available to gpg, ssh-keygen or the file given")
			}
			if chain, err := signers.Load(r); err == nil {
				if who, _ := chain.Current().FindKey(sig); who == nil {
					a.info("warning: key %s is not in the signers registry; this signature will not count", sig.Issuer())
				}
			}
			p, err := sigfile.Add(r, rel, sig)
			if err != nil {
				return usage(err, "")
			}
			fmt.Fprintln(a.stdout, p)
			rec := a.recorder(r)
			rec.as(s, sig)
			rec.add(strings.TrimPrefix(strings.TrimSuffix(kind, "/v1"), "groundzero.")+".sign", rel, map[string]any{"sha256": sha256hex(data), "key": sig.Issuer(), "subject": subject})
			return rec.flush(nil)
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment whose lock to sign (default: the only one)")
	keyFlag(c, &keySpec)
	return c
}

func (a *app) backendRenderCmd() *cobra.Command {
	var env string
	var check bool
	c := &cobra.Command{
		Use:   "render [--env ENV] [--check]",
		Short: "write backend.tf again from the template and values the signed lock records",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			_, _, dir, l, _, err := a.envLock(r, env)
			if err != nil {
				return err
			}
			out, err := l.Render()
			if err != nil {
				return failed(err, "use the groundzero release that wrote the lock")
			}
			p := path.Join(dir, gate.BackendFile)
			if check {
				have, err := r.ReadFile(p, 1<<20)
				if err != nil || string(have) != string(out) {
					return failed(fmt.Errorf("%s does not render byte-identically from template %s", p, l.Template), "run `groundzero backend render` and review the difference")
				}
				fmt.Fprintf(a.stdout, "%s renders byte-identically from template %s (sha256:%.16s)\n", p, l.Template, l.TemplateSHA256)
				return nil
			}
			if err := r.WriteFile(p, out); err != nil {
				return usage(err, "")
			}
			fmt.Fprintln(a.stdout, p)
			return nil
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment (default: the only one)")
	c.Flags().BoolVar(&check, "check", false, "only compare, write nothing")
	return c
}

func (a *app) backendTemplatesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "templates",
		Short: "list the embedded backend.tf templates and their SHA-256",
		Long: `templates lists every backend.tf template this groundzero embeds, with the
SHA-256 a lock records. The SHA-256 is that of the template file followed by
the state-encryption part it uses, as in
  cat s3.v1.tf.tmpl encryption.v1.tmpl | sha256sum`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, t := range backend.Templates() {
				fmt.Fprintf(a.stdout, "%s  %s  %s\n", t.SHA256, t.Name, strings.Join(t.Files, " "))
			}
			return nil
		},
	}
}

func (a *app) backendVerifyCmd() *cobra.Command {
	var env, format string
	c := &cobra.Command{
		Use:   "verify [--env ENV] [--format text|json|sarif]",
		Short: "compare the live state store with its lock: exit 1 on drift",
		Long: `verify reads the live store the environment's lock records and reports
each way it departs from what bootstrap made: versioning off, default
encryption missing or with another key, public access not blocked, no
TLS-only policy, replication off, lock table missing, key rotation off.
With ci.aws or ci.gcp in policy.yaml it also compares the environment's CI
identities with the documents ` + "`groundzero ci policy`" + ` prints: ci_drift (different),
ci_missing (absent) and ci_widening (a statement, action, resource, member,
audience or condition broader than generated). It exits 1 on any
finding, so a scheduled CI job fails on drift. --format sarif writes
SARIF 2.1.0 located at the lock file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json", "sarif"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			pol, name, dir, l, raw, err := a.envLock(r, env)
			if err != nil {
				return err
			}
			spec, err := lockSpec(pol, l)
			if err != nil {
				return usage(err, "")
			}
			store, err := a.openBackend(a.ctx, spec)
			if err != nil {
				return usage(err, "")
			}
			// The CI identities policy.yaml asks for are checked too: drift,
			// and widening beyond the generated documents.
			var ci ciidentity.Identities
			if ciidentity.Wanted(pol) {
				cs, err := ciSpecFor(pol, spec)
				if err != nil {
					return err
				}
				if ci, err = ciidentity.Open(a.ctx, cs); err != nil {
					return usage(err, "")
				}
			}
			all, calls, err := store.Verify(a.ctx, l.KeyID)
			if err == nil && ci != nil {
				var cf []backend.Finding
				var cc []backend.Call
				cf, cc, err = ci.Verify(a.ctx)
				all, calls = append(all, cf...), append(calls, cc...)
			}
			var waived []string
			for _, w := range l.Waivers {
				waived = append(waived, w.Probe)
			}
			findings, accepted := backend.Waived(all, waived)
			rec := a.recorder(r)
			d := map[string]any{"env": name, "lock_sha256": lock.SHA256(raw), "findings": findings, "waived": accepted, "calls": calls, "ok": err == nil && len(findings) == 0}
			if err != nil {
				d["error"] = err.Error()
			}
			rec.add("backend.verify", spec.Bucket, d)
			if err != nil {
				return rec.flush(usage(fmt.Errorf("verifying %s: %w", where(spec.Bucket, spec.StateKey(), spec.Path), err), "check the credentials and that the store is reachable"))
			}
			lp := gate.LockPath(dir)
			switch format {
			case "sarif":
				a.printJSON(backend.SARIF(findings, lp))
			case "json":
				a.printJSON(map[string]any{"env": name, "ok": len(findings) == 0, "findings": append([]backend.Finding{}, findings...), "waived": append([]backend.Finding{}, accepted...)})
			default:
				for _, f := range findings {
					fmt.Fprintf(a.stdout, "DRIFT  %-13s %s: %s\n", f.Check, f.Resource, f.Detail)
				}
				for _, f := range accepted {
					fmt.Fprintf(a.stdout, "WAIVED %-13s %s: %s\n", f.Check, f.Resource, f.Detail)
				}
				if len(findings) == 0 {
					fmt.Fprintf(a.stdout, "backend %s of environment %s matches %s\n", where(spec.Bucket, spec.StateKey(), spec.Path), name, lp)
				}
			}
			var result error
			if len(findings) > 0 {
				result = failed(fmt.Errorf("%d finding(s): the live store departs from %s", len(findings), lp), "fix the store (or its lock, through a revocation and a new bootstrap)")
			}
			return rec.flush(result)
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment (default: the only one)")
	formatFlagVar(c, &format, "text", "json", "sarif")
	return c
}
