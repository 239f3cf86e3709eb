package ciauth

import (
	"fmt"
	"strconv"
	"strings"
)

// Reason says why a token was refused.
type Reason string

// The reasons a *TokenError carries.
const (
	ReasonTooLarge    Reason = "too large"
	ReasonMalformed   Reason = "malformed"
	ReasonSignature   Reason = "bad signature"
	ReasonIssuer      Reason = "wrong issuer"
	ReasonAudience    Reason = "wrong audience"
	ReasonExpired     Reason = "expired"
	ReasonNotYetValid Reason = "not yet valid"
	ReasonInvalid     Reason = "invalid"
)

// TokenError refuses a token that is not a valid ID token from the policy's issuer for
// the policy's audience at the given time. Detail never contains the token.
type TokenError struct {
	Reason Reason
	Detail string
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("ciauth: ID token refused (%s): %s", e.Reason, e.Detail)
}

// ClaimError refuses a validly signed token whose claims the policy does not allow.
// Got is "" when the claim is absent or empty; Want describes what the policy accepts.
type ClaimError struct {
	Claim string
	Got   string
	Want  string
}

func (e *ClaimError) Error() string {
	if e.Got == "" {
		return fmt.Sprintf("ciauth: ID token claim %q is missing or empty, want %s", e.Claim, e.Want)
	}
	return fmt.Sprintf("ciauth: ID token claim %q is %s, want %s", e.Claim, quote(e.Got), e.Want)
}

// PolicyError reports a policy or provider that cannot be verified against.
type PolicyError struct {
	Field  string
	Reason string
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("ciauth: CI identity policy: %s %s", e.Field, e.Reason)
}

// IssuerError reports that the issuer's discovery document or keys could not be fetched.
type IssuerError struct {
	Issuer string
	Err    error
}

func (e *IssuerError) Error() string {
	return fmt.Sprintf("ciauth: OIDC issuer %s: %s", e.Issuer, strings.TrimSpace(e.Err.Error()))
}

func (e *IssuerError) Unwrap() error { return e.Err }

// EnvError reports that the CI environment does not provide an ID token the way this
// package expects. Problem says what is wrong and how to fix it.
type EnvError struct {
	Var     string
	Problem string
}

func (e *EnvError) Error() string {
	return fmt.Sprintf("ciauth: %s %s", e.Var, e.Problem)
}

// RequestError reports a failed request to GitHub's token endpoint. Status is the HTTP
// status, 0 when no response arrived; Err is the transport or decoding error, if any.
type RequestError struct {
	Status int
	Err    error
}

func (e *RequestError) Error() string {
	if e.Status != 0 && e.Err == nil {
		return fmt.Sprintf("ciauth: requesting the ID token: HTTP status %d", e.Status)
	}
	return fmt.Sprintf("ciauth: requesting the ID token: %v", e.Err)
}

func (e *RequestError) Unwrap() error { return e.Err }

// quote quotes a claim value for an error, cut to a length fit for a message.
func quote(s string) string {
	const max = 200
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}
