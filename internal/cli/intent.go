package cli

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/gittag"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/intent"
	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/record"
)

func (a *app) intentCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "intent",
		Short: "create, sign, approve and verify signed intents",
	}
	c.AddCommand(a.intentNewCmd(), a.intentSignCmd(), a.intentApproveCmd(), a.intentVerifyCmd(), a.intentListCmd())
	return c
}

func sha256File(p string) (string, error) {
	sum, err := manifest.HashFile(p)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum[:]), nil
}

func (a *app) intentNewCmd() *cobra.Command {
	var env, action, reason, ticket, ttlFlag, planFile, requester, keySpec string
	c := &cobra.Command{
		Use:   "new --env ENV --action ACTION --reason TEXT",
		Short: "write a new intent to governance/intents/<id>.json",
		Long: `new writes an unsigned intent: a canonical JSON record of kind
groundzero.intent/v1 that names the environment, the action (bootstrap,
apply, destroy, revoke or break-glass), the reason and ticket, the requester,
the repository's commit and tag, its lifetime (--ttl, default and maximum from
policy.yaml) and a random nonce. With --plan it is bound to that saved plan's
SHA-256. The requester is the owner of --key (default GROUNDZERO_KEY, then
git's user.signingkey), who must be in the signers registry, and whose
signature the intent carries from the start. Its path is printed; approvers
then run ` + "`groundzero intent sign`" + `.`,
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
			head, err := gittag.Head(a.ctx, r)
			if err != nil {
				return usage(errors.New("the repository has no commit"), "commit the governed files first")
			}
			tag := ""
			if names, err := gittag.AtHead(a.ctx, r); err == nil && len(names) > 0 {
				sort.Strings(names)
				tag = names[0]
			}
			in, err := intent.New(env, action, reason, ticket, requester, head, tag, a.now, ttl)
			if err != nil {
				return usage(err, "")
			}
			if planFile != "" {
				if in.PlanSHA256, err = sha256File(planFile); err != nil {
					return usage(err, "")
				}
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
			rec := a.recorder(r)
			rec.as(signer, sig)
			rec.add("intent.new", in.ID, map[string]any{"env": in.Env, "action": in.Action, "requester": in.Requester, "reason": in.Reason,
				"ticket": in.Ticket, "commit": in.Commit, "expires": in.Expires, "plan_sha256": in.PlanSHA256, "record_sha256": sha256hex(data), "key": sig.Issuer()})
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

// readIntent reads an intent file given on the command line.
func readIntent(r *repo.Repo, file string) (*intent.Intent, []byte, string, error) {
	rel := file
	if abs, err := absRel(r, file); err == nil {
		rel = abs
	}
	data, err := r.ReadFile(rel, record.MaxSize)
	if err != nil {
		return nil, nil, rel, usage(err, "give the path of an intent in governance/intents/")
	}
	in, err := intent.Parse(data)
	if err != nil {
		return nil, nil, rel, failed(fmt.Errorf("%s: %w", rel, err), "intents are written by `groundzero intent new` and never edited by hand")
	}
	if want := path.Join(repo.IntentsDir, in.ID+".json"); rel != want {
		return nil, nil, rel, failed(fmt.Errorf("%s holds intent %s, which belongs at %s", rel, in.ID, want), "")
	}
	return in, data, rel, nil
}

// absRel turns a path given by the user into a repository-relative one.
func absRel(r *repo.Repo, p string) (string, error) {
	abs, err := filepathAbs(p)
	if err != nil {
		return "", err
	}
	rel, err := filepathRel(r.Root, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("%s is outside the repository", p)
	}
	return rel, nil
}

func (a *app) signIntent(r *repo.Repo, rel string, data []byte, keySpec string, in *intent.Intent, action string, extra map[string]any) error {
	s, _, err := a.signer(r, keySpec)
	if err != nil {
		return err
	}
	sig, err := s.Sign(a.ctx, data, intent.Kind)
	if err != nil {
		return usage(err, "check that the key is available to gpg, ssh-keygen or the file given")
	}
	p, err := sigfile.Add(r, rel, sig)
	if err != nil {
		return usage(err, "")
	}
	fmt.Fprintln(a.stdout, p)
	rec := a.recorder(r)
	rec.as(s, sig)
	if reg := a.currentRegistry(r); reg != nil {
		if who, _ := reg.FindKey(sig); who != nil && who.ID == in.Requester {
			a.info("note: you requested intent %s; whether your own signature counts depends on gates.approvals.%s.requester_counts", in.ID, in.Action)
		}
	}
	details := map[string]any{"key": sig.Issuer(), "record_sha256": sha256hex(data)}
	for k, v := range extra {
		details[k] = v
	}
	rec.add(action, in.ID, details)
	return rec.flush(nil)
}

func (a *app) intentSignCmd() *cobra.Command {
	var keySpec string
	c := &cobra.Command{
		Use:   "sign FILE [--key KEYSPEC]",
		Short: "add the caller's signature to an intent",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			in, data, rel, err := readIntent(r, args[0])
			if err != nil {
				return err
			}
			return a.signIntent(r, rel, data, keySpec, in, "intent.sign", nil)
		},
	}
	keyFlag(c, &keySpec)
	return c
}

func (a *app) intentApproveCmd() *cobra.Command {
	var keySpec, planFile string
	c := &cobra.Command{
		Use:   "approve FILE --plan PLANFILE [--key KEYSPEC]",
		Short: "sign an intent bound to the SHA-256 of a saved plan",
		Long: `approve signs an intent only for one saved plan. An intent not yet bound
to a plan (and not yet signed) is bound to PLANFILE first; an intent bound to
another plan is refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if planFile == "" {
				return usage(errors.New("--plan is required"), "give the saved plan written by `groundzero plan`")
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			in, data, rel, err := readIntent(r, args[0])
			if err != nil {
				return err
			}
			sum, err := sha256File(planFile)
			if err != nil {
				return usage(err, "")
			}
			switch {
			case in.PlanSHA256 == sum:
			case in.PlanSHA256 != "":
				return failed(fmt.Errorf("intent %s approves plan sha256:%s, not %s (sha256:%s)", in.ID, in.PlanSHA256[:16], planFile, sum[:16]),
					"review the plan the intent names, or create a new intent for this plan")
			default:
				if sigs, _ := sigfile.Load(r, rel); len(sigs) > 0 {
					return failed(fmt.Errorf("intent %s is signed already without a plan; binding it now would void those signatures", in.ID),
						"create a new intent with `groundzero intent new --plan`")
				}
				in.PlanSHA256 = sum
				if data, err = in.Marshal(); err != nil {
					return usage(err, "")
				}
				if err := r.WriteFile(rel, data); err != nil {
					return usage(err, "")
				}
				a.info("intent %s is now bound to plan sha256:%s", in.ID, sum)
			}
			return a.signIntent(r, rel, data, keySpec, in, "intent.approve", map[string]any{"plan_sha256": sum})
		},
	}
	keyFlag(c, &keySpec)
	c.Flags().StringVar(&planFile, "plan", "", "the saved plan being approved")
	return c
}

type intentStatus struct {
	ID        string   `json:"id"`
	File      string   `json:"file"`
	Env       string   `json:"env"`
	Action    string   `json:"action"`
	Requester string   `json:"requester"`
	Expires   string   `json:"expires"`
	Plan      string   `json:"plan_sha256,omitempty"`
	Valid     bool     `json:"valid"`
	Approvers []string `json:"approvers,omitempty"`
	Problem   string   `json:"problem,omitempty"`
}

// judgeIntent verifies an intent for its own environment and action against
// the repository and the freshness anchor as they are now.
func (a *app) judgeIntent(r *repo.Repo, in *intent.Intent, data []byte, rel, planSHA string) (*intent.Verified, error) {
	pol, err := a.loadPolicy(r)
	if err != nil {
		return nil, err
	}
	genv, err := a.gates(r, "", false)
	if err != nil {
		return nil, err
	}
	if planSHA == "" {
		planSHA = in.PlanSHA256
	}
	v, err := govern.VerifyIntent(a.ctx, genv, pol, govern.IntentFile{Intent: in, Data: data, Rel: rel}, in.Env, planSHA)
	var ue *govern.UsageError
	var ge *govern.GateError
	if errors.As(err, &ue) || errors.As(err, &ge) {
		return nil, govErr(err)
	}
	return v, err
}

func (a *app) intentVerifyCmd() *cobra.Command {
	var format, planFile string
	c := &cobra.Command{
		Use:   "verify FILE [--plan PLANFILE]",
		Short: "check an intent: commit, lifetime, nonce and approvals",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			in, data, rel, err := readIntent(r, args[0])
			if err != nil {
				return err
			}
			planSHA := ""
			if planFile != "" {
				if planSHA, err = sha256File(planFile); err != nil {
					return usage(err, "")
				}
			}
			v, verr := a.judgeIntent(r, in, data, rel, planSHA)
			var e *Error
			if errors.As(verr, &e) {
				return e
			}
			st := intentStatus{ID: in.ID, File: rel, Env: in.Env, Action: in.Action, Requester: in.Requester, Expires: in.Expires, Plan: in.PlanSHA256, Valid: verr == nil}
			if verr != nil {
				st.Problem = verr.Error()
			} else {
				st.Approvers = v.Approvers
			}
			if format == "json" {
				a.printJSON(st)
			} else if verr == nil {
				fmt.Fprintf(a.stdout, "VALID  %s: %s on %s, requested by %s, approved by %s, expires %s\n", in.ID, in.Action, in.Env, in.Requester, strings.Join(v.Approvers, ", "), in.Expires)
			} else {
				fmt.Fprintf(a.stdout, "INVALID  %s: %v\n", in.ID, verr)
			}
			if verr != nil {
				return failed(fmt.Errorf("intent %s: %w", in.ID, verr), intentHint(verr))
			}
			return nil
		},
	}
	formatFlagVar(c, &format, "text", "json")
	c.Flags().StringVar(&planFile, "plan", "", "the saved plan the intent must approve")
	return c
}

func intentHint(err error) string { return govern.IntentHint(err) }

func (a *app) intentListCmd() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "list",
		Short: "list intents with their status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			entries, err := os.ReadDir(r.Abs(repo.IntentsDir))
			if err != nil && !os.IsNotExist(err) {
				return usage(err, "")
			}
			list := []intentStatus{}
			for _, e := range entries {
				if !strings.HasSuffix(e.Name(), ".json") {
					continue
				}
				rel := path.Join(repo.IntentsDir, e.Name())
				data, err := r.ReadFile(rel, record.MaxSize)
				if err != nil {
					continue
				}
				in, err := intent.Parse(data)
				if err != nil {
					list = append(list, intentStatus{File: rel, Problem: err.Error()})
					continue
				}
				st := intentStatus{ID: in.ID, File: rel, Env: in.Env, Action: in.Action, Requester: in.Requester, Expires: in.Expires, Plan: in.PlanSHA256}
				v, verr := a.judgeIntent(r, in, data, rel, "")
				var ce *Error
				if errors.As(verr, &ce) {
					return ce
				}
				if verr != nil {
					st.Problem = verr.Error()
				} else {
					st.Valid, st.Approvers = true, v.Approvers
				}
				list = append(list, st)
			}
			if format == "json" {
				return a.printJSON(list)
			}
			for _, s := range list {
				status := "valid"
				if !s.Valid {
					status = "invalid: " + s.Problem
				}
				fmt.Fprintf(a.stdout, "%s  %-11s %-8s %-10s %s\n", s.ID, s.Action, s.Env, s.Requester, status)
			}
			return nil
		},
	}
	formatFlagVar(c, &format, "text", "json")
	return c
}
