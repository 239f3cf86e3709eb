package policy_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/strictyaml"
)

func TestCI(t *testing.T) {
	p := mustParse(t, minimal+`ci:
  provider: github
  issuer: https://token.actions.githubusercontent.com
  audience: deploy
  repository: acme/platform
  environments: [production, staging]
`)
	want := &policy.CI{Provider: "github", Issuer: policy.GitHubIssuer, Audience: "deploy", Repository: "acme/platform", Environments: []string{"production", "staging"}}
	if !reflect.DeepEqual(p.CI, want) {
		t.Errorf("Parse(ci).CI = %+v, want %+v", p.CI, want)
	}
	if p := mustParse(t, minimal); p.CI != nil {
		t.Errorf("Parse(no ci).CI = %+v, want nil", p.CI)
	}
}

func TestCIDefaults(t *testing.T) {
	for provider, issuer := range map[string]string{"github": policy.GitHubIssuer, "gitlab": policy.GitLabIssuer} {
		p := mustParse(t, minimal+"ci: {provider: "+provider+", repository: acme/platform}\n")
		want := &policy.CI{Provider: provider, Issuer: issuer, Audience: policy.DefaultAudience, Repository: "acme/platform"}
		if !reflect.DeepEqual(p.CI, want) {
			t.Errorf("Parse(ci %s).CI = %+v, want %+v", provider, p.CI, want)
		}
	}
	p := mustParse(t, minimal+"ci: {provider: gitlab, issuer: https://gitlab.example.test, repository: acme/infra/platform}\n")
	if p.CI.Issuer != "https://gitlab.example.test" {
		t.Errorf("Parse(ci gitlab instance).CI.Issuer = %q, want the one given", p.CI.Issuer)
	}
}

func TestTemplateCI(t *testing.T) {
	tmpl := string(policy.Template("local", "dev", ""))
	var lines []string
	in := false
	for _, l := range strings.Split(tmpl, "\n") {
		switch {
		case l == "# ci:":
			in = true
		case in && strings.HasPrefix(l, "#   "):
		default:
			in = false
		}
		if in {
			l = strings.TrimPrefix(l, "# ")
		}
		lines = append(lines, l)
	}
	p := mustParse(t, strings.Join(lines, "\n"))
	if p.CI == nil || p.CI.Provider != "github" || p.CI.Repository != "acme/platform" || p.CI.Issuer != policy.GitHubIssuer || p.CI.Audience != "groundzero" {
		t.Errorf("Parse(Template with ci uncommented).CI = %+v, want the github example", p.CI)
	}
}

func TestCIErrors(t *testing.T) {
	for name, tc := range map[string]struct{ ci, msg string }{
		"no provider":       {"{repository: acme/platform}", "provider"},
		"unknown provider":  {"{provider: jenkins, repository: acme/platform}", "provider"},
		"no repository":     {"{provider: github}", "repository"},
		"bad repository":    {"{provider: github, repository: platform}", "repository"},
		"http issuer":       {"{provider: github, issuer: http://token.example.test, repository: a/b}", "issuer"},
		"issuer with query": {"{provider: github, issuer: 'https://token.example.test?x=1', repository: a/b}", "issuer"},
		"empty audience":    {"{provider: github, audience: '', repository: a/b}", "audience"},
		"empty environment": {"{provider: github, repository: a/b, environments: ['']}", "environments"},
		"duplicate env":     {"{provider: github, repository: a/b, environments: [prod, prod]}", "environments"},
		"unknown field":     {"{provider: github, repository: a/b, repo: a/b}", "repo"},
	} {
		_, err := policy.Parse(file, []byte(minimal+"ci: "+tc.ci+"\n"))
		var se *strictyaml.Error
		if !errors.As(err, &se) {
			t.Errorf("Parse(%s) = %v, want *strictyaml.Error", name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Parse(%s) = %q, want mention of %q", name, err, tc.msg)
		}
	}
}

func TestCIInvalid(t *testing.T) {
	// The schema admits it; the URL has no host.
	_, err := policy.Parse(file, []byte(minimal+"ci: {provider: github, issuer: https:///token, repository: a/b}\n"))
	var ie *policy.InvalidError
	if !errors.As(err, &ie) || !strings.Contains(ie.Msg, "ci.issuer") || ie.Hint == "" {
		t.Errorf("Parse(ci.issuer https:///token) = %v, want *policy.InvalidError naming ci.issuer with a hint", err)
	}
}
