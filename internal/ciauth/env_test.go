package ciauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// requestToken stands in for $ACTIONS_ID_TOKEN_REQUEST_TOKEN.
const requestToken = "ghs_reqT0ken-9f8e7d6c5b4a3210ffeeddcc"

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// githubEndpoint serves GitHub's token endpoint at /idtoken on is: it checks the bearer
// token and the query, then answers with respond.
func githubEndpoint(t *testing.T, is *testIssuer, respond func(w http.ResponseWriter, r *http.Request)) (env func(string) string, hits *atomic.Int32) {
	t.Helper()
	hits = new(atomic.Int32)
	is.mux.HandleFunc("GET /idtoken", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if got := r.Header.Get("Authorization"); got != "Bearer "+requestToken {
			t.Errorf("token endpoint: Authorization = %q, want the bearer request token", got)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		q := r.URL.Query()
		if got := q["audience"]; len(got) != 1 || got[0] != audience {
			t.Errorf("token endpoint: audience = %q, want [%q]", got, audience)
		}
		if got := q.Get("api-version"); got != "2.0" {
			t.Errorf("token endpoint: api-version = %q, want 2.0 (kept from the URL)", got)
		}
		respond(w, r)
	})
	return envMap(map[string]string{
		GitHubRequestURL:   is.URL + "/idtoken?api-version=2.0",
		GitHubRequestToken: requestToken,
	}), hits
}

func TestTokenFromEnvGitHub(t *testing.T) {
	is := newIssuer(t)
	minted := mint(t, issuerKey(), is.githubClaims())
	getenv, hits := githubEndpoint(t, is, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"value": string(minted)})
	})
	tok, err := TokenFromEnv(t.Context(), GitHub, getenv, audience, is.client())
	if err != nil {
		t.Fatalf("TokenFromEnv(github) = %v, want nil", err)
	}
	if tok != minted {
		t.Fatalf("TokenFromEnv(github) returned another token than the endpoint served")
	}
	if hits.Load() != 1 {
		t.Errorf("token endpoint hit %d times, want 1", hits.Load())
	}
	id, err := Verify(t.Context(), GitHub, tok, githubPolicy(is), now, true)
	if err != nil {
		t.Fatalf("Verify(token from the endpoint) = %v, want nil", err)
	}
	if id.Repository != "acme/infra" {
		t.Errorf("Verify(token from the endpoint).Repository = %q, want acme/infra", id.Repository)
	}
}

func TestTokenFromEnvGitHubRefuses(t *testing.T) {
	is := newIssuer(t)
	minted := string(mint(t, issuerKey(), is.githubClaims()))
	tests := []struct {
		name    string
		respond func(w http.ResponseWriter, r *http.Request)
		want    func(error) bool
	}{
		{"forbidden, echoing the request", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad credentials: "+r.Header.Get("Authorization"), http.StatusForbidden)
		}, isStatus(http.StatusForbidden)},
		{"not JSON, holding the token", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "value=%s %s", minted, r.Header.Get("Authorization"))
		}, isStatus(http.StatusOK)},
		{"value not a string", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, map[string]any{"value": []string{minted}})
		}, isStatus(http.StatusOK)},
		{"no value", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, map[string]any{"count": 1})
		}, isStatus(http.StatusOK)},
		{"response over 64 KiB", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, map[string]string{"value": minted, "padding": strings.Repeat("p", maxTokenResponse)})
		}, isStatus(http.StatusOK)},
		{"token over 16 KiB", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, map[string]string{"value": minted + strings.Repeat("A", MaxTokenSize)})
		}, isToken(ReasonTooLarge)},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := fmt.Sprintf("/case%d", i)
			is.mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer "+requestToken {
					t.Errorf("token endpoint: no bearer request token")
				}
				tc.respond(w, r)
			})
			getenv := envMap(map[string]string{
				GitHubRequestURL:   is.URL + path + "?api-version=2.0",
				GitHubRequestToken: requestToken,
			})
			tok, err := TokenFromEnv(t.Context(), GitHub, getenv, audience, is.client())
			if err == nil || tok != "" {
				t.Fatalf("TokenFromEnv() = %d bytes, %v; want an error", len(tok), err)
			}
			if !tc.want(err) {
				t.Fatalf("TokenFromEnv() = %T %v; not the error wanted", err, err)
			}
			assertNoLeak(t, requestToken, err.Error())
			assertNoLeak(t, minted, err.Error())
		})
	}
}

func isStatus(status int) func(error) bool {
	return func(err error) bool {
		re, ok := errors.AsType[*RequestError](err)
		return ok && re.Status == status
	}
}

func TestTokenFromEnvGitHubEnvironment(t *testing.T) {
	is := newIssuer(t)
	url := is.URL + "/idtoken?api-version=2.0"
	tests := []struct {
		name     string
		env      map[string]string
		audience string
		want     func(error) bool
	}{
		{"no request URL", map[string]string{GitHubRequestToken: requestToken}, audience, isEnv(GitHubRequestURL)},
		{"no request token", map[string]string{GitHubRequestURL: url}, audience, isEnv(GitHubRequestToken)},
		{"http request URL", map[string]string{
			GitHubRequestURL: strings.Replace(url, "https:", "http:", 1), GitHubRequestToken: requestToken,
		}, audience, isEnv(GitHubRequestURL)},
		{"no audience", map[string]string{GitHubRequestURL: url, GitHubRequestToken: requestToken}, "", isPolicy("audience")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TokenFromEnv(t.Context(), GitHub, envMap(tc.env), tc.audience, is.client())
			if !tc.want(err) {
				t.Fatalf("TokenFromEnv() = %T %v; not the error wanted", err, err)
			}
			assertNoLeak(t, requestToken, err.Error())
		})
	}
}

func isEnv(name string) func(error) bool {
	return func(err error) bool {
		ee, ok := errors.AsType[*EnvError](err)
		return ok && ee.Var == name
	}
}

func TestTokenFromEnvGitHubTimeout(t *testing.T) {
	is := newIssuer(t)
	getenv, _ := githubEndpoint(t, is, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := TokenFromEnv(ctx, GitHub, getenv, audience, is.client())
	if _, ok := errors.AsType[*RequestError](err); !ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("TokenFromEnv(stalled endpoint) = %T %v, want *RequestError wrapping context.DeadlineExceeded", err, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("TokenFromEnv(stalled endpoint) took %v, want about 200ms", d)
	}
	assertNoLeak(t, requestToken, err.Error())
	assertNoLeak(t, is.URL+"/idtoken", err.Error())
}

func TestTokenFromEnvGitLab(t *testing.T) {
	is := newIssuer(t)
	minted := mint(t, issuerKey(), is.gitlabClaims())
	legacy := mint(t, issuerKey(), is.githubClaims())
	tests := []struct {
		name string
		env  map[string]string
		want Token
	}{
		{"id_tokens variable", map[string]string{GitLabTokenVar: string(minted)}, minted},
		{"id_tokens variable with a newline", map[string]string{GitLabTokenVar: string(minted) + "\n"}, minted},
		{"id_tokens variable before the legacy one", map[string]string{GitLabTokenVar: string(minted), GitLabLegacyVar: string(legacy)}, minted},
		{"legacy variable", map[string]string{GitLabLegacyVar: string(legacy)}, legacy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// No client: GitLab needs no request.
			got, err := TokenFromEnv(t.Context(), GitLab, envMap(tc.env), audience, nil)
			if err != nil {
				t.Fatalf("TokenFromEnv(gitlab) = %v, want nil", err)
			}
			if got != tc.want {
				t.Fatalf("TokenFromEnv(gitlab) returned another token than the one in the environment")
			}
		})
	}

	// A caller that names another variable maps GitLabTokenVar onto it.
	env := map[string]string{"DEPLOY_ID_TOKEN": string(minted)}
	getenv := func(k string) string {
		if k == GitLabTokenVar {
			k = "DEPLOY_ID_TOKEN"
		}
		return env[k]
	}
	tok, err := TokenFromEnv(t.Context(), GitLab, getenv, audience, nil)
	if err != nil {
		t.Fatalf("TokenFromEnv(gitlab, renamed variable) = %v, want nil", err)
	}
	id, err := Verify(t.Context(), GitLab, tok, gitlabPolicy(is), now, true)
	if err != nil {
		t.Fatalf("Verify(gitlab token from the environment) = %v, want nil", err)
	}
	if id.Repository != "acme/platform/infra" || id.JobID != "3434" {
		t.Errorf("Verify(gitlab token from the environment) = %+v, want acme/platform/infra job 3434", *id)
	}

	_, err = TokenFromEnv(t.Context(), GitLab, envMap(nil), audience, nil)
	if !isEnv(GitLabTokenVar)(err) || !strings.Contains(err.Error(), "id_tokens") {
		t.Errorf("TokenFromEnv(gitlab, empty environment) = %v, want *EnvError naming %s and id_tokens", err, GitLabTokenVar)
	}
	_, err = TokenFromEnv(t.Context(), GitLab, envMap(map[string]string{GitLabTokenVar: strings.Repeat("A", MaxTokenSize+1)}), audience, nil)
	if !isToken(ReasonTooLarge)(err) {
		t.Errorf("TokenFromEnv(gitlab, oversized) = %v, want *TokenError %s", err, ReasonTooLarge)
	}
	_, err = TokenFromEnv(t.Context(), "circleci", envMap(nil), audience, nil)
	if !isPolicy("provider")(err) {
		t.Errorf("TokenFromEnv(circleci) = %v, want *PolicyError provider", err)
	}
}
