// Package ciauth verifies the OIDC identity token of a CI runner.
//
// In CI there is no one at a terminal to confirm an apply (DESIGN.md §3, gate 6): a fully
// approved intent plus a verified identity of the runner take the place of the prompt. This
// package provides the second half: it obtains the runner's ID token the way each CI
// provides it ([TokenFromEnv]) and checks it against what policy.yaml says about CI
// identities ([Verify]).
//
// Verification is done by github.com/coreos/go-oidc: the issuer's discovery document and
// JWKS are fetched from [Policy.Issuer] (see "Whom the fetch trusts" below), the signature must be RS256 or ES256 by a key in
// that JWKS, the token's iss must equal Policy.Issuer exactly, its aud must contain
// Policy.Audience, and it must be unexpired at the caller's clock (go-oidc allows a
// not-before up to five minutes in the future, for clock skew). This package then checks
// the provider's claims:
//
//	                 GitHub Actions        GitLab CI
//	repository       repository            project_path
//	ref              ref (refs/tags/v1)    ref (bare name: v1)
//	ref type         ref_type              ref_type
//	environment      environment           environment
//	run              run_id                pipeline_id (and job_id)
//	workflow         workflow              -
//	actor            actor                 user_login
//	subject          sub                   sub
//	CI configuration job_workflow_ref      ci_config_ref_uri
//	its commit       job_workflow_sha      ci_config_sha
//
// Every claim in the table is required and must be a non-empty string; environment is
// required only when [Policy.Environments] is non-empty. A claim that is absent is refused,
// never defaulted. Values are compared exactly, byte for byte: the repository in the policy
// must be spelled with the same case as the provider puts it in the token.
// When a tag is required (apply), ref_type must be "tag" and, on GitHub, ref must start
// with refs/tags/.
//
// The raw token is a bearer credential. It travels as a [Token], which prints and logs as
// [REDACTED], and never appears in an error or an [Identity].
//
// # Whom the fetch trusts
//
// The keys fetched from the issuer decide which tokens verify, so nothing in the runner's
// environment may decide where they come from. The discovery document and the JWKS are
// fetched over a connection of this package's own: no proxy (HTTPS_PROXY, HTTP_PROXY,
// ALL_PROXY and NO_PROXY are ignored), and TLS verified against [Policy.IssuerCA] when it
// is set — exactly those certificates, nothing else — or else against the system roots
// read from their fixed locations (on Linux and the BSDs the CA bundles under /etc and
// /usr/local/etc; SSL_CERT_FILE and SSL_CERT_DIR are ignored). Whoever can edit the CI
// job, and so its environment, cannot put a proxy with a CA of their own in front of the
// issuer and serve a forged JWKS.
//
// [TokenFromEnv] is different: it asks the runner's own token endpoint for the token, as
// the runner's environment directs (proxy and CA included). What it obtains is only
// believed after Verify.
package ciauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Provider names a CI system, which decides the claims a token carries.
type Provider string

// The supported providers.
const (
	GitHub Provider = "github"
	GitLab Provider = "gitlab"
)

// Policy is what policy.yaml says about the CI identities allowed to act.
type Policy struct {
	// Issuer is the OIDC issuer URL, an https URL compared exactly with the token's iss:
	// https://token.actions.githubusercontent.com for GitHub, https://gitlab.com or the
	// instance URL for GitLab.
	Issuer string
	// Audience must be one of the token's aud values, e.g. "groundzero".
	Audience string
	// Repository is "owner/name" (GitHub repository, GitLab project_path, which may name
	// subgroups), compared case-sensitively.
	Repository string
	// Environments lists the allowed values of the environment claim; empty allows any
	// environment, or none.
	Environments []string
	// IssuerCA, when set, is the PEM-encoded CA certificate(s) that alone are trusted for
	// the issuer's TLS certificate; when empty, the system roots (read from their fixed
	// locations, never from the environment) are. It must hold only CERTIFICATE blocks,
	// at least one.
	IssuerCA []byte
}

// Identity is a verified CI runner identity. It holds claims only, never the token.
type Identity struct {
	Provider    Provider
	Issuer      string
	Subject     string
	Repository  string // GitHub repository, GitLab project_path
	Ref         string // as the provider writes it: refs/tags/v1 (GitHub), v1 (GitLab)
	RefType     string // "tag" or "branch"
	Environment string // empty when the job names no environment
	RunID       string // GitHub run_id, GitLab pipeline_id
	JobID       string // GitLab job_id; empty for GitHub
	Workflow    string // GitHub workflow; empty for GitLab
	Actor       string // GitHub actor, GitLab user_login
	// ConfigRef names the CI configuration file the job runs and the ref it
	// was read at: GitHub job_workflow_ref (OWNER/REPO/PATH@REF), GitLab
	// ci_config_ref_uri (HOST/PROJECT//PATH@REF). ConfigSHA is the commit it
	// was read from (job_workflow_sha, ci_config_sha). See [Identity.ConfigPath].
	ConfigRef string
	ConfigSHA string
	Expiry    time.Time
}

// ConfigPath returns the repository path of the CI configuration the job runs,
// from ConfigRef. It is an error when ConfigRef names a file in another
// repository (a reusable workflow or an included configuration kept
// elsewhere), or on another GitLab instance than the issuer, or when
// ConfigSHA is not a full commit hash.
func (id *Identity) ConfigPath() (string, error) {
	claim, prefix := "job_workflow_ref", id.Repository+"/"
	if id.Provider == GitLab {
		claim = "ci_config_ref_uri"
		host := id.Issuer
		if u, err := url.Parse(id.Issuer); err == nil && u.Host != "" {
			host = u.Host + strings.TrimSuffix(u.Path, "/")
		}
		prefix = host + "/" + id.Repository + "//"
	}
	rest, ok := strings.CutPrefix(id.ConfigRef, prefix)
	at := strings.LastIndex(rest, "@")
	if !ok || at <= 0 {
		return "", &ClaimError{Claim: claim, Got: id.ConfigRef, Want: "a file of repository " + quote(id.Repository) + " (" + prefix + "PATH@REF)"}
	}
	if !commitRE.MatchString(id.ConfigSHA) {
		claim := "job_workflow_sha"
		if id.Provider == GitLab {
			claim = "ci_config_sha"
		}
		return "", &ClaimError{Claim: claim, Got: id.ConfigSHA, Want: "a full commit hash"}
	}
	return rest[:at], nil
}

// commitRE matches a full SHA-1 or SHA-256 commit hash.
var commitRE = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// MaxTokenSize bounds the raw token; a larger one is refused before it is parsed.
const MaxTokenSize = 16 << 10

// maxIssuerResponse bounds the discovery document and the JWKS.
const maxIssuerResponse = 256 << 10

// defaultTimeout applies to a nil client and to a client without a Timeout of its own.
const defaultTimeout = 30 * time.Second

// Verify checks tok against pol for the given provider at the caller's clock now and
// returns the identity it proves. requireTag demands a tag ref, as apply does; plan may
// run from a branch.
//
// The discovery document and the JWKS are fetched directly (never through a proxy) over
// TLS verified against pol.IssuerCA or the system roots, with a 30-second timeout;
// responses are bounded in size. The caller cannot supply the HTTP client: whom the fetch
// trusts is decided by the policy alone.
//
// Errors: *PolicyError when pol or provider is unusable, *IssuerError when the issuer
// cannot be reached, *TokenError when the token is malformed, badly signed, from another
// issuer, for another audience, expired or not yet valid, and *ClaimError when a claim is
// missing or not allowed.
func Verify(ctx context.Context, provider Provider, tok Token, pol Policy, now time.Time, requireTag bool) (*Identity, error) {
	if err := pol.check(provider); err != nil {
		return nil, err
	}
	roots, err := pol.roots()
	if err != nil {
		return nil, err
	}
	raw := string(tok)
	switch {
	case len(raw) > MaxTokenSize:
		return nil, &TokenError{Reason: ReasonTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", len(raw), MaxTokenSize)}
	case strings.Count(raw, ".") != 2:
		return nil, &TokenError{Reason: ReasonMalformed, Detail: "not a compact JWS"}
	}

	ctx = oidc.ClientContext(ctx, issuerClient(roots))
	p, err := oidc.NewProvider(ctx, pol.Issuer)
	if err != nil {
		return nil, &IssuerError{Issuer: pol.Issuer, Err: err}
	}
	v := p.VerifierContext(ctx, &oidc.Config{
		ClientID:             pol.Audience,
		Now:                  func() time.Time { return now },
		SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256},
	})
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, classify(pol.Issuer, err)
	}
	if idt.Issuer != pol.Issuer {
		return nil, &TokenError{Reason: ReasonIssuer, Detail: fmt.Sprintf("issued by %q, want %q", idt.Issuer, pol.Issuer)}
	}
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return nil, &TokenError{Reason: ReasonMalformed, Detail: "claims are not a JSON object"}
	}
	id, err := identity(provider, claims)
	if err != nil {
		return nil, err
	}
	id.Issuer = idt.Issuer
	id.Expiry = idt.Expiry
	if err := pol.allow(id, requireTag); err != nil {
		return nil, err
	}
	return id, nil
}

func (pol Policy) check(provider Provider) error {
	if provider != GitHub && provider != GitLab {
		return &PolicyError{Field: "provider", Reason: fmt.Sprintf("%q is not github or gitlab", string(provider))}
	}
	u, err := url.Parse(pol.Issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return &PolicyError{Field: "issuer", Reason: fmt.Sprintf("%q is not an https URL without query or fragment", pol.Issuer)}
	}
	if pol.Audience == "" {
		return &PolicyError{Field: "audience", Reason: "is empty"}
	}
	if pol.Repository == "" {
		return &PolicyError{Field: "repository", Reason: "is empty"}
	}
	return nil
}

// classify turns a go-oidc verification error into a *TokenError or *IssuerError. go-oidc
// types only expiry, so the rest is told apart by its messages, which this package's tests
// pin for the go-oidc version in go.mod.
func classify(issuer string, err error) error {
	if _, ok := errors.AsType[*oidc.TokenExpiredError](err); ok {
		return &TokenError{Reason: ReasonExpired, Detail: err.Error()}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unexpected signature algorithm"):
		return &TokenError{Reason: ReasonSignature, Detail: "signature algorithm is not RS256 or ES256"}
	case strings.HasPrefix(msg, "oidc: malformed jwt"),
		strings.HasPrefix(msg, "oidc: id token not signed"),
		strings.HasPrefix(msg, "oidc: multiple signatures"),
		strings.HasPrefix(msg, "oidc: failed to unmarshal claims"),
		strings.HasPrefix(msg, "oidc: failed to obtain source"),
		strings.HasPrefix(msg, "oidc: source does not exist"):
		// go-jose's and encoding/json's parse errors are not repeated: the token is
		// malformed and that is all the caller needs.
		return &TokenError{Reason: ReasonMalformed, Detail: "not a signed JWT"}
	case strings.Contains(msg, "fetching keys"):
		return &IssuerError{Issuer: issuer, Err: err}
	case strings.HasPrefix(msg, "failed to verify signature"):
		return &TokenError{Reason: ReasonSignature, Detail: msg}
	case strings.HasPrefix(msg, "oidc: id token issued by a different provider"):
		return &TokenError{Reason: ReasonIssuer, Detail: msg}
	case strings.HasPrefix(msg, "oidc: expected audience"):
		return &TokenError{Reason: ReasonAudience, Detail: msg}
	case strings.Contains(msg, "nbf (not before)"):
		return &TokenError{Reason: ReasonNotYetValid, Detail: msg}
	}
	return &TokenError{Reason: ReasonInvalid, Detail: msg}
}

// claimNames maps a provider's claims onto the fields of an Identity.
type claimNames struct {
	repository, run, job, workflow, actor, configRef, configSHA string
}

var names = map[Provider]claimNames{
	GitHub: {repository: "repository", run: "run_id", workflow: "workflow", actor: "actor", configRef: "job_workflow_ref", configSHA: "job_workflow_sha"},
	GitLab: {repository: "project_path", run: "pipeline_id", job: "job_id", actor: "user_login", configRef: "ci_config_ref_uri", configSHA: "ci_config_sha"},
}

func identity(provider Provider, claims map[string]json.RawMessage) (*Identity, error) {
	n := names[provider]
	id := &Identity{Provider: provider}
	required := []struct {
		claim string
		dst   *string
	}{
		{"sub", &id.Subject},
		{n.repository, &id.Repository},
		{"ref", &id.Ref},
		{"ref_type", &id.RefType},
		{n.run, &id.RunID},
		{n.job, &id.JobID},
		{n.workflow, &id.Workflow},
		{n.actor, &id.Actor},
		{n.configRef, &id.ConfigRef},
		{n.configSHA, &id.ConfigSHA},
	}
	for _, r := range required {
		if r.claim == "" {
			continue
		}
		s, err := stringClaim(claims, r.claim)
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, &ClaimError{Claim: r.claim, Want: "a non-empty string"}
		}
		*r.dst = s
	}
	env, err := stringClaim(claims, "environment")
	if err != nil {
		return nil, err
	}
	id.Environment = env
	return id, nil
}

// stringClaim returns the named claim, "" when it is absent or null.
func stringClaim(claims map[string]json.RawMessage, name string) (string, error) {
	raw, ok := claims[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &ClaimError{Claim: name, Got: "(not a string)", Want: "a string"}
	}
	return s, nil
}

func (pol Policy) allow(id *Identity, requireTag bool) error {
	if id.Repository != pol.Repository {
		return &ClaimError{Claim: names[id.Provider].repository, Got: id.Repository, Want: quote(pol.Repository)}
	}
	if requireTag {
		if id.RefType != "tag" {
			return &ClaimError{Claim: "ref_type", Got: id.RefType, Want: `"tag"`}
		}
		if id.Provider == GitHub && !strings.HasPrefix(id.Ref, "refs/tags/") {
			return &ClaimError{Claim: "ref", Got: id.Ref, Want: "a tag ref (refs/tags/…)"}
		}
	}
	if len(pol.Environments) > 0 && !slices.Contains(pol.Environments, id.Environment) {
		quoted := make([]string, len(pol.Environments))
		for i, e := range pol.Environments {
			quoted[i] = quote(e)
		}
		return &ClaimError{Claim: "environment", Got: id.Environment, Want: "one of " + strings.Join(quoted, ", ")}
	}
	return nil
}

// roots returns the certificates the issuer's TLS certificate must chain to.
func (pol Policy) roots() (*x509.CertPool, error) {
	if len(pol.IssuerCA) == 0 {
		pool, err := systemRoots()
		if err != nil {
			return nil, &IssuerError{Issuer: pol.Issuer, Err: err}
		}
		return pool, nil
	}
	pool := x509.NewCertPool()
	rest, n := pol.IssuerCA, 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, &PolicyError{Field: "issuer_ca", Reason: fmt.Sprintf("holds a PEM block of type %q; only CERTIFICATE blocks are allowed", b.Type)}
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, &PolicyError{Field: "issuer_ca", Reason: "holds a certificate that does not parse"}
		}
		pool.AddCert(cert)
		n++
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, &PolicyError{Field: "issuer_ca", Reason: "holds something other than PEM certificates"}
	}
	if n == 0 {
		return nil, &PolicyError{Field: "issuer_ca", Reason: "holds no PEM certificate"}
	}
	return pool, nil
}

// issuerClient returns the client that fetches the issuer's discovery document and keys:
// a transport of its own that never uses a proxy and verifies TLS against roots only, a
// timeout, and a bound on every response body.
func issuerClient(roots *x509.CertPool) *http.Client {
	dialer := &net.Dialer{Timeout: defaultTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 nil, // never http.ProxyFromEnvironment
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: defaultTimeout,
		MaxIdleConns:          2,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Timeout: defaultTimeout, Transport: limitTransport{base: tr, max: maxIssuerResponse}}
}

type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max}
	return resp, nil
}

// limitedBody fails a read past its limit rather than truncating silently.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errResponseTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, errResponseTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

var errResponseTooLarge = errors.New("response body too large")
