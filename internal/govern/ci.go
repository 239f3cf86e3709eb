package govern

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/groundzero/groundzero/internal/ciauth"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
)

// CIGate is the ci gate of a plan or apply run with --ci, after the static
// gates and before the engine: it obtains the runner's OIDC ID token from
// the CI environment and verifies it against policy.yaml's ci section at
// the run's clock. Apply passes requireTag: it runs only from a tag. When
// it passes, r.CI is the runner's identity: it replaces the prompt of the
// confirmation gate and is the actor of what the run records.
// client requests the token from the runner's token endpoint (nil: a
// default client, as the runner's environment configures it). The issuer's
// keys are fetched by ciauth alone, never through a proxy, trusting only
// the CA file policy.yaml names in ci.issuer_ca (checked against the
// MANIFEST, the bytes hashed being the bytes used) or the system roots.
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
	if pol.IssuerCA != "" {
		ca, res := r.governedBytes(name, pol.IssuerCA, "ci.issuer_ca")
		if ca == nil {
			return r.add(res)
		}
		if len(ca) == 0 {
			// Empty would mean the system roots to ciauth.
			return r.add(gate.Result{Name: name, Detail: pol.IssuerCA + " (ci.issuer_ca) is empty", Hint: "put the issuer's CA certificate (PEM) in it, or remove ci.issuer_ca to trust the system roots"})
		}
		want.IssuerCA = ca
	}
	id, err := ciauth.Verify(ctx, provider, tok, want, r.cfg.Now, requireTag)
	if err != nil {
		return r.add(gate.Result{Name: name, Detail: ciDetail(err), Hint: CIHint(err, pol)})
	}
	if res, ok := r.ciConfigGoverned(ctx, id); !ok {
		return r.add(res)
	}
	r.CI = id
	detail := fmt.Sprintf("%s runner %s verified by OIDC issuer %s: repository %s, ref %s, run %s", id.Provider, id.Subject, id.Issuer, id.Repository, id.Ref, id.RunID)
	if id.Environment != "" {
		detail += ", environment " + id.Environment
	}
	return r.add(gate.Result{Name: name, OK: true, Detail: detail})
}

// maxGovernedCA bounds a CA file policy.yaml names.
const maxGovernedCA = 1 << 20

// governedBytes reads a file policy.yaml names for a gate and returns its
// bytes only if the verified MANIFEST lists it with exactly their SHA-256:
// what the manifest gate checked is what is used, even if the file changes
// in between. Otherwise it returns nil and the failed result.
func (r *Run) governedBytes(gateName, rel, field string) ([]byte, gate.Result) {
	const fix = "put the file under governance/, run `groundzero manifest update`, review and `groundzero manifest sign`"
	if r.Gates == nil || r.Gates.Manifest == nil {
		return nil, gate.Result{Name: gateName, Detail: rel + " (" + field + ") cannot be checked: the manifest gate did not pass", Hint: "run the static gates first"}
	}
	if !manifest.IsGoverned(rel) {
		return nil, gate.Result{Name: gateName, Detail: rel + " (" + field + " in " + repo.PolicyFile + ") is not a governed file", Hint: fix}
	}
	listed := r.listed(rel)
	if listed == nil {
		return nil, gate.Result{Name: gateName, Detail: rel + " (" + field + " in " + repo.PolicyFile + ") is not listed in " + repo.ManifestFile, Hint: fix}
	}
	data, err := r.cfg.Repo.ReadFile(rel, maxGovernedCA)
	if err != nil {
		return nil, gate.Result{Name: gateName, Detail: rel + " (" + field + "): " + err.Error(), Hint: fix}
	}
	if sha256.Sum256(data) != listed.Sum {
		return nil, gate.Result{Name: gateName, Detail: rel + " (" + field + ") does not match " + repo.ManifestFile, Hint: "restore the file, or review the change and sign a new MANIFEST"}
	}
	return data, gate.Result{}
}

// ciConfigGoverned checks that the CI configuration the runner runs — the
// file and commit the verified token names (job_workflow_ref and
// job_workflow_sha, ci_config_ref_uri and ci_config_sha), not what the
// job's environment says — is governed: a CI file the MANIFEST covers, whose
// content at that commit is exactly what the MANIFEST lists. A workflow
// edited to set the environment (a proxy, a CA, a trust root) or to check
// out another commit is not the governed one.
func (r *Run) ciConfigGoverned(ctx context.Context, id *ciauth.Identity) (gate.Result, bool) {
	const name = "ci"
	hint := "run groundzero from the CI configuration `groundzero init --ci` writes (" + strings.Join(manifest.CIFiles, " or ") +
		"), listed in " + repo.ManifestFile + ": change it through review, `groundzero manifest update` and `groundzero manifest sign`"
	rel, err := id.ConfigPath()
	if err != nil {
		return gate.Result{Name: name, Detail: ciDetail(err), Hint: hint}, false
	}
	if r.Gates == nil || r.Gates.Manifest == nil {
		return gate.Result{Name: name, Detail: "the CI configuration " + rel + " cannot be checked: the manifest gate did not pass", Hint: "run the static gates first"}, false
	}
	if !manifest.IsGoverned(rel) {
		return gate.Result{Name: name, Detail: "the runner runs " + rel + ", which is not a governed CI configuration", Hint: hint}, false
	}
	listed := r.listed(rel)
	if listed == nil {
		return gate.Result{Name: name, Detail: "the runner runs " + rel + ", which " + repo.ManifestFile + " does not list", Hint: hint}, false
	}
	// The commit hash was checked by ConfigPath: full hex, no option. Replace
	// refs are ignored: the object is the one the hash names, not a
	// substitute the checkout's refs/replace/ points to.
	data, err := r.cfg.Repo.Git(ctx, "--no-replace-objects", "cat-file", "blob", id.ConfigSHA+":"+rel)
	if err != nil {
		return gate.Result{Name: name, Detail: fmt.Sprintf("the runner runs %s at commit %s, which this checkout does not hold", rel, id.ConfigSHA),
			Hint: "check out the commit the job runs (the tag), with its history, before groundzero runs"}, false
	}
	if sha256.Sum256(data) != listed.Sum {
		return gate.Result{Name: name, Detail: fmt.Sprintf("the runner runs %s at commit %s, which differs from the one %s lists", rel, id.ConfigSHA, repo.ManifestFile), Hint: hint}, false
	}
	return gate.Result{}, true
}

// listed returns the verified MANIFEST's entry for rel, nil when it has none.
func (r *Run) listed(rel string) *manifest.Entry {
	for i, e := range r.Gates.Manifest.Entries {
		if e.Path == rel {
			return &r.Gates.Manifest.Entries[i]
		}
	}
	return nil
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
	return map[string]any{"issuer": id.Issuer, "subject": id.Subject, "repository": id.Repository, "ref": id.Ref, "run_id": id.RunID,
		"config_ref": id.ConfigRef, "config_sha": id.ConfigSHA}
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
		if pol.IssuerCA != "" {
			return "check ci.issuer in governance/policy.yaml, and that the runner reaches it directly (no proxy is used) over HTTPS with a certificate issued by the CA in " + pol.IssuerCA
		}
		return "check ci.issuer in governance/policy.yaml, and that the runner reaches it directly (no proxy is used) over HTTPS with a certificate the system roots trust (SSL_CERT_FILE is not used); for a private CA, commit it as governance/ci/issuer-ca.pem and set ci.issuer_ca through review"
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
