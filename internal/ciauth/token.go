package ciauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

// Token is a raw ID token. It is a bearer credential: fmt and log/slog print it as
// [REDACTED]; string(tok) is the only way to its value.
type Token string

const redacted = "[REDACTED]"

// String returns [REDACTED].
func (Token) String() string { return redacted }

// GoString returns [REDACTED].
func (Token) GoString() string { return redacted }

// Format prints [REDACTED] for every verb.
func (Token) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// LogValue logs [REDACTED].
func (Token) LogValue() slog.Value { return slog.StringValue(redacted) }

// Environment variables that carry the token or the means to request it.
const (
	// GitHubRequestURL and GitHubRequestToken are set by GitHub Actions in a job with
	// permissions id-token: write.
	GitHubRequestURL   = "ACTIONS_ID_TOKEN_REQUEST_URL"
	GitHubRequestToken = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
	// GitLabTokenVar is the id_tokens variable read on GitLab. A caller that names another
	// variable maps this name to it in the getenv it passes to TokenFromEnv.
	GitLabTokenVar = "GROUNDZERO_ID_TOKEN"
	// GitLabLegacyVar is GitLab's predefined token (removed in GitLab 17.0), read when
	// GitLabTokenVar is unset. Its audience is the GitLab instance URL.
	GitLabLegacyVar = "CI_JOB_JWT_V2"
)

// maxTokenResponse bounds the body of GitHub's token endpoint.
const maxTokenResponse = 64 << 10

// TokenFromEnv obtains the runner's ID token the way provider hands it out, reading the
// environment through getenv (os.Getenv in production).
//
// GitHub: a GET of $ACTIONS_ID_TOKEN_REQUEST_URL with audience=audience added to its
// query and $ACTIONS_ID_TOKEN_REQUEST_TOKEN as bearer token; the answer is JSON
// {"value": "<token>"}, read up to 64 KiB. The request URL must be https. client may be
// nil (a client with a 30-second timeout); the request is bounded by 30 seconds either way.
//
// GitLab: the variable GROUNDZERO_ID_TOKEN (declared under id_tokens in .gitlab-ci.yml,
// with aud set to the policy's audience), else CI_JOB_JWT_V2. The audience is fixed by the
// pipeline, so audience and client are not used; Verify checks it.
//
// Errors: *EnvError when the environment lacks what is needed, *RequestError when the
// endpoint fails, *TokenError (ReasonTooLarge) for an oversized token, *PolicyError for
// an unknown provider or an empty audience. None contains a token.
func TokenFromEnv(ctx context.Context, provider Provider, getenv func(string) string, audience string, client *http.Client) (Token, error) {
	var tok string
	switch provider {
	case GitHub:
		if audience == "" {
			return "", &PolicyError{Field: "audience", Reason: "is empty"}
		}
		var err error
		if tok, err = requestGitHub(ctx, getenv, audience, client); err != nil {
			return "", err
		}
	case GitLab:
		tok = strings.TrimSpace(getenv(GitLabTokenVar))
		if tok == "" {
			tok = strings.TrimSpace(getenv(GitLabLegacyVar))
		}
		if tok == "" {
			return "", &EnvError{Var: GitLabTokenVar, Problem: fmt.Sprintf(
				"is not set: declare it under id_tokens in .gitlab-ci.yml with aud: %s", audience)}
		}
	default:
		return "", &PolicyError{Field: "provider", Reason: fmt.Sprintf("%q is not github or gitlab", string(provider))}
	}
	if len(tok) > MaxTokenSize {
		return "", &TokenError{Reason: ReasonTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", len(tok), MaxTokenSize)}
	}
	return Token(tok), nil
}

func requestGitHub(ctx context.Context, getenv func(string) string, audience string, client *http.Client) (string, error) {
	const hint = "is not set: give the job permissions: id-token: write"
	rawURL, bearer := getenv(GitHubRequestURL), getenv(GitHubRequestToken)
	if rawURL == "" {
		return "", &EnvError{Var: GitHubRequestURL, Problem: hint}
	}
	if bearer == "" {
		return "", &EnvError{Var: GitHubRequestToken, Problem: hint}
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return "", &EnvError{Var: GitHubRequestURL, Problem: "is not an https URL"}
	}
	q := u.Query()
	q.Set("audience", audience)
	u.RawQuery = q.Encode()

	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", &EnvError{Var: GitHubRequestURL, Problem: "is not a valid request URL"}
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Accept", "application/json")
	if client == nil {
		client = &http.Client{Timeout: defaultTimeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		// The *url.Error names the URL; keep only its cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return "", &RequestError{Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", &RequestError{Status: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	if err != nil {
		return "", &RequestError{Status: resp.StatusCode, Err: err}
	}
	if len(body) > maxTokenResponse {
		return "", &RequestError{Status: resp.StatusCode, Err: fmt.Errorf("response larger than %d bytes", maxTokenResponse)}
	}
	var answer struct {
		Value string `json:"value"`
	}
	// The decoder's messages may quote the body, which holds the token: report neither.
	if err := json.Unmarshal(body, &answer); err != nil || answer.Value == "" {
		return "", &RequestError{Status: resp.StatusCode, Err: errors.New(`response is not JSON {"value": "<token>"}`)}
	}
	return answer.Value, nil
}
