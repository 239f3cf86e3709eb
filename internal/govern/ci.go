package govern

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/groundzero/groundzero/internal/ciauth"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/policy"
)

// CIGate is the ci gate of a plan or apply run with --ci, after the static
// gates and before the engine: it obtains the runner's OIDC ID token from
// the CI environment and verifies it against policy.yaml's ci section at
// the run's clock. Apply passes requireTag: it runs only from a tag. When
// it passes, r.CI is the runner's identity: it replaces the prompt of the
// confirmation gate and is the actor of what the run records.
// client fetches the token and the issuer's keys (nil: a default client,
// which trusts the system roots).
func (r *Run) CIGate(ctx context.Context, requireTag bool, client *http.Client) bool {
	const name = "ci"
	pol := r.Policy.CI
	if pol == nil {
		return r.add(gate.Result{Name: name, Detail: "governance/policy.yaml has no ci: section, so no CI runner may act",
			Hint: "add a ci: section (provider, issuer, audience, repository, environments) to governance/policy.yaml through review; `groundzero policy schema` lists its fields"})
	}
	provider := ciauth.Provider(pol.Provider)
	want := CIPolicy(pol)
	tok, err := ciauth.TokenFromEnv(ctx, provider, r.cfg.Getenv, want.Audience, client)
	if err != nil {
		return r.add(gate.Result{Name: name, Detail: ciDetail(err), Hint: CIHint(err, pol)})
	}
	id, err := ciauth.Verify(ctx, provider, tok, want, r.cfg.Now, requireTag, client)
	if err != nil {
		return r.add(gate.Result{Name: name, Detail: ciDetail(err), Hint: CIHint(err, pol)})
	}
	r.CI = id
	detail := fmt.Sprintf("%s runner %s verified by OIDC issuer %s: repository %s, ref %s, run %s", id.Provider, id.Subject, id.Issuer, id.Repository, id.Ref, id.RunID)
	if id.Environment != "" {
		detail += ", environment " + id.Environment
	}
	return r.add(gate.Result{Name: name, OK: true, Detail: detail})
}

// CIPolicy is what ciauth verifies a token against.
func CIPolicy(c *policy.CI) ciauth.Policy {
	return ciauth.Policy{Issuer: c.Issuer, Audience: c.Audience, Repository: c.Repository, Environments: c.Environments}
}

// CIActor names a verified runner in the audit trail:
// ci:<issuer host>:<subject>.
func CIActor(id *ciauth.Identity) string {
	host := id.Issuer
	if u, err := url.Parse(id.Issuer); err == nil && u.Host != "" {
		host = u.Host
	}
	return "ci:" + host + ":" + id.Subject
}

// ciDetails are the facts about the runner that intent.consumed and
// apply.result record.
func ciDetails(id *ciauth.Identity) map[string]any {
	return map[string]any{"issuer": id.Issuer, "subject": id.Subject, "repository": id.Repository, "ref": id.Ref, "run_id": id.RunID}
}

func ciDetail(err error) string { return strings.TrimPrefix(err.Error(), "ciauth: ") }

// CIHint says what fixes a refused CI identity.
func CIHint(err error, pol *policy.CI) string {
	if e, ok := errors.AsType[*ciauth.EnvError](err); ok {
		if e.Var == ciauth.GitLabTokenVar {
			return "declare GROUNDZERO_ID_TOKEN under id_tokens in .gitlab-ci.yml with aud: " + pol.Audience + ", or run without --ci"
		}
		return "give the job `permissions: id-token: write` in the GitHub Actions workflow, or run without --ci"
	}
	if _, ok := errors.AsType[*ciauth.RequestError](err); ok {
		return "the CI provider did not hand out an ID token: check that the job may request one, and run it again"
	}
	if e, ok := errors.AsType[*ciauth.PolicyError](err); ok {
		return "fix ci." + e.Field + " in governance/policy.yaml through review"
	}
	if _, ok := errors.AsType[*ciauth.IssuerError](err); ok {
		return "check ci.issuer in governance/policy.yaml, and that the runner reaches it over HTTPS with a trusted certificate"
	}
	if e, ok := errors.AsType[*ciauth.TokenError](err); ok {
		switch e.Reason {
		case ciauth.ReasonIssuer, ciauth.ReasonSignature:
			return "the token was not issued by ci.issuer (" + pol.Issuer + "): run on the CI system policy.yaml names, or change ci.issuer through review"
		case ciauth.ReasonAudience:
			return "request the ID token for audience " + pol.Audience + " (ci.audience in governance/policy.yaml)"
		case ciauth.ReasonExpired, ciauth.ReasonNotYetValid:
			return "ID tokens are short-lived: check the runner's clock and run the job again"
		}
		return "the CI provider's token is not a valid ID token; run the job again"
	}
	if e, ok := errors.AsType[*ciauth.ClaimError](err); ok {
		switch e.Claim {
		case "repository", "project_path":
			return "run from the repository ci.repository names (" + pol.Repository + "), or change ci.repository through review"
		case "ref", "ref_type":
			return "apply runs from a tag: trigger the job on a pushed release tag"
		case "environment":
			return "run the job in an environment ci.environments lists (the job's environment: setting)"
		}
		return "the CI provider did not put claim " + e.Claim + " in the token as policy.yaml requires"
	}
	return ""
}
