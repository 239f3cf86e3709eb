package ciauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func githubPolicy(is *testIssuer) Policy {
	return Policy{Issuer: is.URL, Audience: audience, Repository: "acme/infra", Environments: []string{"prod", "staging"}, IssuerCA: is.caPEM()}
}

func gitlabPolicy(is *testIssuer) Policy {
	return Policy{Issuer: is.URL, Audience: audience, Repository: "acme/platform/infra", Environments: []string{"prod"}, IssuerCA: is.caPEM()}
}

func TestVerifyAccepts(t *testing.T) {
	is := newIssuer(t)
	ctx := t.Context()

	tok := mint(t, issuerKey(), is.githubClaims())
	got, err := Verify(ctx, GitHub, tok, githubPolicy(is), now, true)
	if err != nil {
		t.Fatalf("Verify(github tag token) = %v, want nil", err)
	}
	want := Identity{
		Provider: GitHub, Issuer: is.URL, Subject: "repo:acme/infra:environment:prod",
		Repository: "acme/infra", Ref: "refs/tags/v1.2.0", RefType: "tag", Environment: "prod",
		RunID: "4242", Workflow: "release", Actor: "alice", Expiry: now.Add(5 * time.Minute),
		ConfigRef: "acme/infra/.github/workflows/groundzero.yml@refs/tags/v1.2.0", ConfigSHA: commitSHA,
	}
	if !got.Expiry.Equal(want.Expiry) {
		t.Errorf("Verify(github).Expiry = %v, want %v", got.Expiry, want.Expiry)
	}
	got.Expiry = want.Expiry
	if *got != want {
		t.Errorf("Verify(github) = %+v, want %+v", *got, want)
	}
	assertNoLeak(t, string(tok), fmt.Sprintf("%+v", *got))

	tok = mint(t, issuerKey(), is.gitlabClaims())
	got, err = Verify(ctx, GitLab, tok, gitlabPolicy(is), now, true)
	if err != nil {
		t.Fatalf("Verify(gitlab tag token) = %v, want nil", err)
	}
	want = Identity{
		Provider: GitLab, Issuer: is.URL, Subject: "project_path:acme/platform/infra:ref_type:tag:ref:v1.2.0",
		Repository: "acme/platform/infra", Ref: "v1.2.0", RefType: "tag", Environment: "prod",
		RunID: "1212", JobID: "3434", Actor: "bob", Expiry: got.Expiry,
		ConfigRef: strings.TrimPrefix(is.URL, "https://") + "/acme/platform/infra//.gitlab-ci.yml@refs/tags/v1.2.0", ConfigSHA: commitSHA,
	}
	if *got != want {
		t.Errorf("Verify(gitlab) = %+v, want %+v", *got, want)
	}
}

func TestVerifyAcceptsBranchWithoutRequireTag(t *testing.T) {
	is := newIssuer(t)
	claims := is.githubClaims()
	claims["ref"], claims["ref_type"] = "refs/heads/main", "branch"
	delete(claims, "environment")
	pol := githubPolicy(is)
	pol.Environments = nil
	got, err := Verify(t.Context(), GitHub, mint(t, issuerKey(), claims), pol, now, false)
	if err != nil {
		t.Fatalf("Verify(branch, requireTag=false) = %v, want nil", err)
	}
	if got.Ref != "refs/heads/main" || got.Environment != "" {
		t.Errorf("Verify(branch) = ref %q environment %q, want refs/heads/main and none", got.Ref, got.Environment)
	}

	// Not-before within go-oidc's five minutes of leeway is accepted.
	claims = is.githubClaims()
	claims["nbf"] = now.Add(2 * time.Minute).Unix()
	if _, err := Verify(t.Context(), GitHub, mint(t, issuerKey(), claims), githubPolicy(is), now, true); err != nil {
		t.Errorf("Verify(nbf in 2m) = %v, want nil", err)
	}
}

// isToken, isClaim and isPolicy match the error a case must be refused with.
func isToken(r Reason) func(error) bool {
	return func(err error) bool {
		te, ok := errors.AsType[*TokenError](err)
		return ok && te.Reason == r
	}
}

func isClaim(claim, got string) func(error) bool {
	return func(err error) bool {
		ce, ok := errors.AsType[*ClaimError](err)
		return ok && ce.Claim == claim && ce.Got == got
	}
}

func isPolicy(field string) func(error) bool {
	return func(err error) bool {
		pe, ok := errors.AsType[*PolicyError](err)
		return ok && pe.Field == field
	}
}

func isIssuer(err error) bool {
	_, ok := errors.AsType[*IssuerError](err)
	return ok
}

func TestVerifyRefuses(t *testing.T) {
	is := newIssuer(t)
	gh := func(edit func(map[string]any)) map[string]any {
		c := is.githubClaims()
		edit(c)
		return c
	}
	gl := func(edit func(map[string]any)) map[string]any {
		c := is.gitlabClaims()
		edit(c)
		return c
	}
	big := strings.Repeat("x", MaxTokenSize)

	tests := []struct {
		name       string
		provider   Provider
		tok        Token
		pol        func(*Policy)
		requireTag bool
		want       func(error) bool
	}{
		{name: "github without job_workflow_ref", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { delete(c, "job_workflow_ref") })),
			want: isClaim("job_workflow_ref", "")},
		{name: "github without job_workflow_sha", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { c["job_workflow_sha"] = "" })),
			want: isClaim("job_workflow_sha", "")},
		{name: "gitlab without ci_config_ref_uri", provider: GitLab, requireTag: true,
			tok:  mint(t, issuerKey(), gl(func(c map[string]any) { delete(c, "ci_config_ref_uri") })),
			want: isClaim("ci_config_ref_uri", "")},
		{name: "gitlab without ci_config_sha", provider: GitLab, requireTag: true,
			tok:  mint(t, issuerKey(), gl(func(c map[string]any) { delete(c, "ci_config_sha") })),
			want: isClaim("ci_config_sha", "")},
		{name: "forged signature", provider: GitHub, requireTag: true,
			tok:  mint(t, forgerKey(), is.githubClaims()),
			want: isToken(ReasonSignature)},
		{name: "alg none", provider: GitHub, requireTag: true,
			tok:  unsigned(t, is.githubClaims()),
			want: isToken(ReasonSignature)},
		{name: "wrong audience", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { c["aud"] = "someone-else" })),
			want: isToken(ReasonAudience)},
		{name: "expired", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { c["exp"] = now.Add(-time.Second).Unix() })),
			want: isToken(ReasonExpired)},
		{name: "no expiry", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { delete(c, "exp") })),
			want: isToken(ReasonExpired)},
		{name: "not yet valid", provider: GitHub, requireTag: true,
			tok: mint(t, issuerKey(), gh(func(c map[string]any) {
				c["nbf"] = now.Add(10 * time.Minute).Unix()
				c["exp"] = now.Add(20 * time.Minute).Unix()
			})),
			want: isToken(ReasonNotYetValid)},
		{name: "another issuer", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { c["iss"] = "https://token.actions.githubusercontent.com" })),
			want: isToken(ReasonIssuer)},
		{name: "issuer with trailing slash", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { c["iss"] = is.URL + "/" })),
			want: isToken(ReasonIssuer)},
		{name: "other repository", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { c["repository"] = "acme/other" })),
			want: isClaim("repository", "acme/other")},
		{name: "repository differs in case", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { c["repository"] = "Acme/Infra" })),
			want: isClaim("repository", "Acme/Infra")},
		{name: "github branch when tag required", provider: GitHub, requireTag: true,
			tok: mint(t, issuerKey(), gh(func(c map[string]any) {
				c["ref"], c["ref_type"] = "refs/heads/main", "branch"
			})),
			want: isClaim("ref_type", "branch")},
		{name: "github branch ref with tag ref_type", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { c["ref"] = "refs/heads/main" })),
			want: isClaim("ref", "refs/heads/main")},
		{name: "gitlab branch when tag required", provider: GitLab, requireTag: true,
			tok: mint(t, issuerKey(), gl(func(c map[string]any) {
				c["ref"], c["ref_type"] = "main", "branch"
			})),
			want: isClaim("ref_type", "branch")},
		{name: "gitlab other project", provider: GitLab, requireTag: true,
			tok:  mint(t, issuerKey(), gl(func(c map[string]any) { c["project_path"] = "acme/infra" })),
			want: isClaim("project_path", "acme/infra")},
		{name: "environment not allowed", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { c["environment"] = "dev" })),
			want: isClaim("environment", "dev")},
		{name: "environment missing", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { delete(c, "environment") })),
			want: isClaim("environment", "")},
		{name: "github run_id missing", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { delete(c, "run_id") })),
			want: isClaim("run_id", "")},
		{name: "github run_id a number", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { c["run_id"] = 4242 })),
			want: isClaim("run_id", "(not a string)")},
		{name: "github repository missing", provider: GitHub,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { delete(c, "repository") })),
			want: isClaim("repository", "")},
		{name: "github sub empty", provider: GitHub,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { c["sub"] = "" })),
			want: isClaim("sub", "")},
		{name: "github ref_type missing", provider: GitHub,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { delete(c, "ref_type") })),
			want: isClaim("ref_type", "")},
		{name: "gitlab job_id missing", provider: GitLab, requireTag: true,
			tok:  mint(t, issuerKey(), gl(func(c map[string]any) { delete(c, "job_id") })),
			want: isClaim("job_id", "")},
		{name: "gitlab token read as github", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), is.gitlabClaims()),
			want: isClaim("repository", "")},
		{name: "oversized", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), gh(func(c map[string]any) { c["padding"] = big })),
			want: isToken(ReasonTooLarge)},
		{name: "not a JWT", provider: GitHub, requireTag: true,
			tok:  "not-a-token",
			want: isToken(ReasonMalformed)},
		{name: "three parts of garbage", provider: GitHub, requireTag: true,
			tok:  "Zm9v.YmFy.YmF6",
			want: isToken(ReasonMalformed)},
		{name: "empty", provider: GitHub, requireTag: true,
			tok:  "",
			want: isToken(ReasonMalformed)},
		{name: "http issuer", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), is.githubClaims()),
			pol:  func(p *Policy) { p.Issuer = strings.Replace(p.Issuer, "https:", "http:", 1) },
			want: isPolicy("issuer")},
		{name: "empty audience", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), is.githubClaims()),
			pol:  func(p *Policy) { p.Audience = "" },
			want: isPolicy("audience")},
		{name: "empty repository", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), is.githubClaims()),
			pol:  func(p *Policy) { p.Repository = "" },
			want: isPolicy("repository")},
		{name: "unknown provider", provider: "jenkins", requireTag: true,
			tok:  mint(t, issuerKey(), is.githubClaims()),
			want: isPolicy("provider")},
		{name: "policy names another issuer", provider: GitHub, requireTag: true,
			tok:  mint(t, issuerKey(), is.githubClaims()),
			pol:  func(p *Policy) { p.Issuer += "/other" },
			want: isIssuer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol := githubPolicy(is)
			if tc.provider == GitLab {
				pol = gitlabPolicy(is)
			}
			if tc.pol != nil {
				tc.pol(&pol)
			}
			id, err := Verify(t.Context(), tc.provider, tc.tok, pol, now, tc.requireTag)
			if err == nil {
				t.Fatalf("Verify() = %+v, nil; want an error", *id)
			}
			if !tc.want(err) {
				t.Fatalf("Verify() = %T %v; not the error wanted", err, err)
			}
			if id != nil {
				t.Errorf("Verify() = %+v with an error, want nil identity", *id)
			}
			assertNoLeak(t, string(tc.tok), err.Error())
		})
	}
}

func TestVerifyIssuerUnreachable(t *testing.T) {
	is := newIssuer(t)
	tok := mint(t, issuerKey(), is.githubClaims())
	pol := githubPolicy(is)
	is.srv.Close()
	_, err := Verify(t.Context(), GitHub, tok, pol, now, true)
	if !isIssuer(err) {
		t.Fatalf("Verify(closed issuer) = %T %v, want *IssuerError", err, err)
	}
	assertNoLeak(t, string(tok), err.Error())
}

func TestVerifyBoundsIssuerResponses(t *testing.T) {
	is := newIssuer(t)
	huge := strings.Repeat("k", maxIssuerResponse)
	is.mux.HandleFunc("GET /big/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"issuer": is.URL + "/big", "jwks_uri": is.URL + "/jwks", "padding": huge})
	})
	is.mux.HandleFunc("GET /bigkeys/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"issuer": is.URL + "/bigkeys", "jwks_uri": is.URL + "/bigkeys/jwks"})
	})
	is.mux.HandleFunc("GET /bigkeys/jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"keys": []any{}, "padding": huge})
	})
	for _, path := range []string{"/big", "/bigkeys"} {
		claims := is.githubClaims()
		claims["iss"] = is.URL + path
		pol := githubPolicy(is)
		pol.Issuer = is.URL + path
		_, err := Verify(t.Context(), GitHub, mint(t, issuerKey(), claims), pol, now, true)
		if !isIssuer(err) || !strings.Contains(err.Error(), errResponseTooLarge.Error()) {
			t.Errorf("Verify(issuer %s with a response over %d bytes) = %v, want *IssuerError %q",
				path, maxIssuerResponse, err, errResponseTooLarge)
		}
	}
}

func TestVerifyHonoursContext(t *testing.T) {
	is := newIssuer(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Verify(ctx, GitHub, mint(t, issuerKey(), is.githubClaims()), githubPolicy(is), now, true)
	if !isIssuer(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify(cancelled context) = %v, want *IssuerError wrapping context.Canceled", err)
	}
}

func TestTokenRedacts(t *testing.T) {
	is := newIssuer(t)
	tok := mint(t, issuerKey(), is.githubClaims())
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
		got := fmt.Sprintf(verb, tok)
		if got != redacted {
			t.Errorf("fmt.Sprintf(%q, tok) = %q, want %q", verb, got, redacted)
		}
	}
	if got := fmt.Sprint(struct{ T Token }{tok}); got != "{"+redacted+"}" {
		t.Errorf("fmt.Sprint(struct{T Token}) = %q, want {%s}", got, redacted)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("got token", "token", tok)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("got token", "token", tok)
	assertNoLeak(t, string(tok), buf.String())
	if n := strings.Count(buf.String(), redacted); n != 2 {
		t.Errorf("slog output %q has %d %s, want 2", buf.String(), n, redacted)
	}
}

func TestConfigPath(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		id        Identity
		want      string
		wantClaim string
	}{
		{Identity{Provider: GitHub, Repository: "acme/infra", ConfigRef: "acme/infra/.github/workflows/groundzero.yml@refs/tags/v1", ConfigSHA: sha}, ".github/workflows/groundzero.yml", ""},
		{Identity{Provider: GitHub, Repository: "acme/infra", ConfigRef: "acme/infra/.github/workflows/a@b.yml@refs/heads/x", ConfigSHA: sha}, ".github/workflows/a@b.yml", ""},
		{Identity{Provider: GitLab, Issuer: "https://gitlab.example.test", Repository: "acme/platform/infra", ConfigRef: "gitlab.example.test/acme/platform/infra//.gitlab-ci.yml@refs/tags/v1", ConfigSHA: sha}, ".gitlab-ci.yml", ""},
		{Identity{Provider: GitLab, Issuer: "https://git.example.test/gitlab/", Repository: "a/b", ConfigRef: "git.example.test/gitlab/a/b//.gitlab-ci.yml@refs/heads/main", ConfigSHA: sha}, ".gitlab-ci.yml", ""},
		// a reusable workflow or an included configuration kept in another repository
		{Identity{Provider: GitHub, Repository: "acme/infra", ConfigRef: "acme/shared/.github/workflows/groundzero.yml@refs/heads/main", ConfigSHA: sha}, "", "job_workflow_ref"},
		{Identity{Provider: GitHub, Repository: "acme/infra", ConfigRef: "acme/infra-fork/.github/workflows/groundzero.yml@refs/tags/v1", ConfigSHA: sha}, "", "job_workflow_ref"},
		{Identity{Provider: GitLab, Issuer: "https://gitlab.com", Repository: "acme/infra", ConfigRef: "gitlab.com/acme/other//.gitlab-ci.yml@refs/tags/v1", ConfigSHA: sha}, "", "ci_config_ref_uri"},
		{Identity{Provider: GitLab, Issuer: "https://gitlab.com", Repository: "acme/infra", ConfigRef: "evil.example/acme/infra//.gitlab-ci.yml@refs/tags/v1", ConfigSHA: sha}, "", "ci_config_ref_uri"},
		{Identity{Provider: GitHub, Repository: "acme/infra", ConfigRef: "acme/infra/.github/workflows/groundzero.yml", ConfigSHA: sha}, "", "job_workflow_ref"},
		{Identity{Provider: GitHub, Repository: "acme/infra", ConfigRef: "acme/infra/.github/workflows/groundzero.yml@refs/tags/v1", ConfigSHA: "main"}, "", "job_workflow_sha"},
		{Identity{Provider: GitLab, Issuer: "https://gitlab.com", Repository: "acme/infra", ConfigRef: "gitlab.com/acme/infra//.gitlab-ci.yml@refs/tags/v1", ConfigSHA: "01234567"}, "", "ci_config_sha"},
	} {
		got, err := tc.id.ConfigPath()
		if tc.wantClaim == "" {
			if err != nil || got != tc.want {
				t.Errorf("ConfigPath(%s) = %q, %v, want %q", tc.id.ConfigRef, got, err, tc.want)
			}
			continue
		}
		if ce, ok := errors.AsType[*ClaimError](err); !ok || ce.Claim != tc.wantClaim {
			t.Errorf("ConfigPath(%s, %s) = %q, %v, want *ClaimError for %s", tc.id.ConfigRef, tc.id.ConfigSHA, got, err, tc.wantClaim)
		}
	}
}
