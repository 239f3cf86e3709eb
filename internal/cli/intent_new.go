package cli

import (
	"errors"
	"fmt"
	"path"
	"sort"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/gittag"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/intent"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
)

func (a *app) intentNewCmd() *cobra.Command {
	var env, action, reason, ticket, ttlFlag, planFile, requester, keySpec string
	c := &cobra.Command{
		Use:   "new --env ENV --action ACTION --reason TEXT",
		Short: "write a new intent to governance/intents/<id>.json",
		Long: `new writes an intent: a canonical JSON record of kind
groundzero.intent/v2 that names the environment, the action (bootstrap,
apply, destroy, revoke or break-glass), the reason and ticket, the requester,
the governed commit (HEAD, less the commits that only change signed intents
or revocations) and its tag, the SHA-256 of governance/MANIFEST, its lifetime
(--ttl, default and maximum from policy.yaml) and a random nonce. With --plan
it is bound to that saved plan's SHA-256. The requester is the owner of
--key (default GROUNDZERO_KEY, then git's user.signingkey), who must be in
the signers registry, and whose signature the intent carries from the start.
Its path is printed; commit it, and approvers run
` + "`groundzero intent approve`" + ` (or ` + "`intent sign`" + `) and commit their signatures:
commits that only change intents or revocations do not move what an intent
is bound to.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			pol, err := a.loadPolicy(r)
			if err != nil {
				return err
			}
			if env, err = resolveEnv(pol, env); err != nil {
				return err
			}
			ttl, _ := policy.ParseDuration(pol.Gates.Intent.DefaultTTL)
			maxTTL, _ := policy.ParseDuration(pol.Gates.Intent.MaxTTL)
			if ttlFlag != "" {
				if ttl, err = policy.ParseDuration(ttlFlag); err != nil || ttl <= 0 {
					return usage(fmt.Errorf("--ttl %q is not a duration such as 4h or 1d", ttlFlag), "")
				}
			}
			if ttl > maxTTL {
				return usage(fmt.Errorf("--ttl %s is longer than the policy's max_ttl of %s", ttl, maxTTL), "ask for a shorter lifetime, or change gates.intent.max_ttl through review")
			}
			// The requester is whoever holds the key that creates and signs
			// the intent (T31): a name alone proves nothing.
			signer, spec, err := a.signer(r, keySpec)
			if err != nil {
				return usage(errors.New("the requester signs the intent: pass --key KEYSPEC (or set GROUNDZERO_KEY)"), "")
			}
			owner, err := a.keyOwner(r, spec)
			if err != nil {
				return err
			}
			if owner == "" {
				return failed(fmt.Errorf("key %s is not in the signers registry", spec), "only registered signers may request an intent; the requester is the owner of --key")
			}
			if requester != "" && requester != owner {
				return usage(fmt.Errorf("--requester %s, but key %s belongs to %s", requester, spec, owner), "the requester is the owner of the key that signs the intent; drop --requester or use your own key")
			}
			requester = owner
			if _, err := gittag.Head(a.ctx, r); err != nil {
				return usage(errors.New("the repository has no commit"), "commit the governed files first")
			}
			commit, extra, err := gittag.Governed(a.ctx, r)
			if err != nil {
				return usage(err, "")
			}
			tag := ""
			if names, err := gittag.At(a.ctx, r, commit); err == nil && len(names) > 0 {
				sort.Strings(names)
				tag = names[0]
			}
			manifestSum, err := govern.ManifestSum(r)
			if err != nil {
				return govErr(err)
			}
			req := intent.Request{Env: env, Action: action, Reason: reason, Ticket: ticket, Requester: requester,
				Commit: commit, Tag: tag, ManifestSHA256: manifestSum}
			if planFile != "" {
				if req.PlanSHA256, err = sha256File(planFile); err != nil {
					return usage(err, "")
				}
			}
			in, err := intent.New(req, a.now, ttl)
			if err != nil {
				return usage(err, "")
			}
			data, err := in.Marshal()
			if err != nil {
				return usage(err, "")
			}
			sig, err := signer.Sign(a.ctx, data, intent.Kind)
			if err != nil {
				return usage(err, "check that the key is available to gpg, ssh-keygen or the file given")
			}
			p := path.Join(repo.IntentsDir, in.ID+".json")
			if err := r.WriteFile(p, data); err != nil {
				return usage(err, "")
			}
			if _, err := sigfile.Add(r, p, sig); err != nil {
				return usage(err, "")
			}
			fmt.Fprintln(a.stdout, p)
			a.info("intent %s: %s on %s, requested and signed by %s, expires %s", in.ID, in.Action, in.Env, in.Requester, in.Expires)
			if extra > 0 {
				a.info("intent %s is bound to the governed commit %.12s: HEAD adds %d commit(s) that only change signed records", in.ID, commit, extra)
			}
			rec := a.recorder(r)
			rec.as(signer, sig)
			rec.add("intent.new", in.ID, map[string]any{"env": in.Env, "action": in.Action, "requester": in.Requester, "reason": in.Reason,
				"ticket": in.Ticket, "commit": in.Commit, "manifest_sha256": in.ManifestSHA256, "expires": in.Expires, "plan_sha256": in.PlanSHA256,
				"record_sha256": sha256hex(data), "key": sig.Issuer()})
			return rec.flush(nil)
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment (declared in policy.yaml)")
	c.Flags().StringVar(&action, "action", "", "bootstrap, apply, destroy, revoke or break-glass")
	c.Flags().StringVar(&reason, "reason", "", "why this change is needed")
	c.Flags().StringVar(&ticket, "ticket", "", "change ticket reference")
	c.Flags().StringVar(&ttlFlag, "ttl", "", "lifetime, such as 4h or 1d (default and maximum from policy.yaml)")
	c.Flags().StringVar(&planFile, "plan", "", "bind the intent to this saved plan")
	c.Flags().StringVar(&requester, "requester", "", "signer id of the requester; must be the owner of --key (a check, never an override)")
	c.Flags().StringVar(&keySpec, "key", "", "KEYSPEC of the requester, who signs the intent (default GROUNDZERO_KEY, then git's user.signingkey)")
	return c
}
