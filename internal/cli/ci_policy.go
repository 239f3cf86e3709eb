package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/ciidentity"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/lock"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
)

func (a *app) ciPolicyCmd() *cobra.Command {
	var env, format string
	c := &cobra.Command{
		Use:   "policy [--env ENV] [--format text|json]",
		Short: "print the CI identities' trust and permission documents, without a cloud call",
		Long: `policy prints what bootstrap makes for CI runners in the environment's
cloud, generated from governance/policy.yaml (ci.aws or ci.gcp) and the
environment's lock: on AWS the IAM OIDC provider and the roles plan and
apply, each with its trust policy (bound to ci.repository, the refs and the
CI environment, and ci.audience) and its permission policy (the state
prefix, the lock, the key); on Google Cloud the Workload Identity pool and
provider with its attribute condition, and the service accounts plan and
apply with their bindings. The documents are deterministic; nothing is
read from or sent to the cloud. ` + "`groundzero backend verify`" + ` compares the live
identities with them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			spec, err := ciSpecOf(r, env)
			if err != nil {
				return err
			}
			var set any
			if spec.Kind == backend.KindGCS {
				set = ciidentity.GCPDocuments(spec)
			} else {
				set = ciidentity.AWSDocuments(spec)
			}
			if format == "json" {
				return a.printJSON(map[string]any{"env": spec.Env, "kind": spec.Kind, "repository": spec.Repository, "identities": set})
			}
			switch s := set.(type) {
			case ciidentity.AWSSet:
				printAWSSet(a.stdout, spec, s)
			case ciidentity.GCPSet:
				printGCPSet(a.stdout, spec, s)
			}
			return nil
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment (default: the only one)")
	formatFlagVar(c, &format, "text", "json")
	return c
}

// ciSpecOf is the spec of env's CI identities: from the lock when the
// environment is bootstrapped (it names the key), else from the policy.
func ciSpecOf(r *repo.Repo, env string) (*ciidentity.Spec, error) {
	pol, err := govern.LoadPolicy(r)
	if err != nil {
		return nil, govErr(err)
	}
	name, err := govern.ResolveEnv(pol, env)
	if err != nil {
		return nil, govErr(err)
	}
	store, _, err := backend.FromPolicy(pol, name)
	if err != nil {
		return nil, usage(err, "complete the backend section of governance/policy.yaml")
	}
	lp := gate.LockPath(pol.Environment(name).Dir)
	if data, rerr := r.ReadFile(lp, lock.MaxSize); rerr == nil {
		l, err := lock.Parse(lp, data)
		if err != nil {
			return nil, failed(err, "restore the lock from git; a lock is never edited")
		}
		if store, err = lockSpec(pol, l); err != nil {
			return nil, usage(err, "")
		}
	}
	return ciSpecFor(pol, store)
}

// ciSpecFor turns a refusal of ciidentity.FromPolicy into the house error.
func ciSpecFor(pol *policy.Policy, store backend.Spec) (*ciidentity.Spec, error) {
	spec, err := ciidentity.FromPolicy(pol, store)
	var pe *ciidentity.PolicyError
	if errors.As(err, &pe) {
		return nil, usage(err, pe.Hint)
	}
	return spec, err
}

func printAWSSet(w io.Writer, spec *ciidentity.Spec, s ciidentity.AWSSet) {
	fmt.Fprintf(w, "# environment %s: AWS IAM, CI from %s (%s)\n", spec.Env, spec.Repository, spec.Provider)
	fmt.Fprintf(w, "# OIDC provider %s\n#   url %s, audiences %s\n", s.Provider, s.ProviderURL, strings.Join(s.Audiences, ", "))
	for _, r := range s.Roles {
		fmt.Fprintf(w, "\n# role %s: %s\n# trust policy\n%s\n", r.Role, r.ARN, r.Trust.JSON())
		fmt.Fprintf(w, "# permission policy %s\n%s\n", ciidentity.InlinePolicy, r.Permissions.JSON())
		attached := "none"
		if len(r.Attached) > 0 {
			attached = strings.Join(r.Attached, ", ")
		}
		fmt.Fprintf(w, "# managed policies: %s\n", attached)
	}
}

func printGCPSet(w io.Writer, spec *ciidentity.Spec, s ciidentity.GCPSet) {
	fmt.Fprintf(w, "# environment %s: Google Cloud Workload Identity, CI from %s (%s)\n", spec.Env, spec.Repository, spec.Provider)
	fmt.Fprintf(w, "# pool %s\n# provider %s\n#   issuer %s, audiences %s\n", s.Pool, s.Provider, s.Issuer, strings.Join(s.Audiences, ", "))
	fmt.Fprintln(w, "# attribute mapping")
	var keys []string
	for k := range s.AttributeMapping {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s = %s\n", k, s.AttributeMapping[k])
	}
	fmt.Fprintf(w, "# attribute condition\n%s\n", s.AttributeCondition)
	for _, sa := range s.ServiceAccounts {
		fmt.Fprintf(w, "\n# service account %s: %s\n", sa.Role, sa.Email)
		for _, p := range sa.Principals {
			fmt.Fprintf(w, "roles/iam.workloadIdentityUser on the account: %s\n", p)
		}
		for _, g := range sa.Bucket {
			fmt.Fprintf(w, "%s on bucket %s", g.Role, s.Bucket)
			if g.Condition != nil {
				fmt.Fprintf(w, " if %s", g.Condition.Expression)
			}
			fmt.Fprintln(w)
		}
		for _, g := range sa.Key {
			fmt.Fprintf(w, "%s on key %s\n", g.Role, s.Key)
		}
	}
}
