package govern_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/ciauth"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/policy"
)

func TestCIGateWithoutCISection(t *testing.T) {
	dir, _ := governedRepo(t)
	var recorded []govern.Event
	gr := openRun(t, dir, keep(&recorded))
	if gr.CIGate(context.Background(), false, nil) {
		t.Fatalf("CIGate without a ci section = true, want false")
	}
	res := gr.Results[len(gr.Results)-1]
	if res.Name != "ci" || res.OK || !strings.Contains(res.Detail, "no ci: section") || !strings.Contains(res.Hint, "add a ci: section") {
		t.Errorf("CIGate without a ci section = %+v, want a failed ci gate that says to add one", res)
	}
	if gr.CI != nil {
		t.Errorf("CIGate without a ci section: CI = %+v, want nil", gr.CI)
	}
}

// A CI apply whose runner the ci gate did not verify fails closed at the
// confirmation: the intent is not consumed and nothing is applied.
func TestCIApplyNeedsVerifiedRunner(t *testing.T) {
	dir, key := governedRepo(t)
	gz(t, dir, "plan", "--env", "dev")
	planFile := filepath.Join(dir, ".groundzero", "plans", "dev.tfplan")
	intentRel := strings.TrimSpace(gz(t, dir, "intent", "new", "--env", "dev", "--action", "apply", "--reason", "r", "--plan", planFile, "--key", key))
	var recorded []govern.Event
	gr := openRun(t, dir, keep(&recorded))
	ctx := context.Background()
	if ok, err := gr.Static(ctx, false, "dev"); !ok || err != nil {
		t.Fatalf("Static = %v, %v: %+v", ok, err, gr.Results)
	}
	done, err := gr.Apply(ctx, govern.ApplyRequest{
		Intent: readIntent(t, dir, intentRel),
		Plan:   planFile,
		CI:     true,
		Confirm: func(string, string) error {
			t.Error("Apply with CI prompted")
			return nil
		},
	})
	if done != nil || err != nil {
		t.Fatalf("Apply(CI, no verified runner) = %+v, %v, want nil, nil", done, err)
	}
	res := gr.Results[len(gr.Results)-1]
	if res.Name != "confirm" || res.OK {
		t.Errorf("Apply(CI, no verified runner) last gate = %+v, want a failed confirm", res)
	}
	for _, ev := range append(recorded, gr.Events()...) {
		if ev.Action == "intent.consumed" {
			t.Errorf("Apply(CI, no verified runner) recorded %+v", ev)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "infra", "bootstrap", "terraform.tfstate")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Apply(CI, no verified runner) left a state file (%v)", err)
	}
}

func TestCIActor(t *testing.T) {
	id := &ciauth.Identity{Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:acme/platform:environment:production"}
	if got, want := govern.CIActor(id), "ci:token.actions.githubusercontent.com:repo:acme/platform:environment:production"; got != want {
		t.Errorf("CIActor(%+v) = %q, want %q", id, got, want)
	}
}

func TestCIHint(t *testing.T) {
	pol := &policy.CI{Provider: "github", Issuer: policy.GitHubIssuer, Audience: "groundzero", Repository: "acme/platform"}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&ciauth.EnvError{Var: ciauth.GitHubRequestURL, Problem: "is not set"}, "id-token: write"},
		{&ciauth.EnvError{Var: ciauth.GitLabTokenVar, Problem: "is not set"}, "id_tokens"},
		{&ciauth.RequestError{Status: 403}, "request one"},
		{&ciauth.PolicyError{Field: "issuer", Reason: "is not https"}, "ci.issuer"},
		{&ciauth.IssuerError{Issuer: pol.Issuer, Err: errors.New("unreachable")}, "HTTPS"},
		{&ciauth.TokenError{Reason: ciauth.ReasonSignature}, "ci.issuer"},
		{&ciauth.TokenError{Reason: ciauth.ReasonAudience}, "audience groundzero"},
		{&ciauth.TokenError{Reason: ciauth.ReasonExpired}, "clock"},
		{&ciauth.TokenError{Reason: ciauth.ReasonMalformed}, "valid ID token"},
		{&ciauth.ClaimError{Claim: "repository", Got: "acme/other"}, "acme/platform"},
		{&ciauth.ClaimError{Claim: "ref_type", Got: "branch"}, "tag"},
		{&ciauth.ClaimError{Claim: "environment", Got: "staging"}, "ci.environments"},
		{&ciauth.ClaimError{Claim: "run_id"}, "run_id"},
	} {
		if got := govern.CIHint(tc.err, pol); !strings.Contains(got, tc.want) {
			t.Errorf("CIHint(%v) = %q, want mention of %q", tc.err, got, tc.want)
		}
	}
}
