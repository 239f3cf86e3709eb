package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/strictyaml"
)

func TestCIIssuerCA(t *testing.T) {
	p := mustParse(t, minimal+"ci: {provider: github, repository: a/b, issuer_ca: governance/ci/issuer-ca.pem}\n")
	if p.CI.IssuerCA != "governance/ci/issuer-ca.pem" {
		t.Errorf("Parse(ci.issuer_ca).CI.IssuerCA = %q, want governance/ci/issuer-ca.pem", p.CI.IssuerCA)
	}
	if p := mustParse(t, minimal+"ci: {provider: github, repository: a/b}\n"); p.CI.IssuerCA != "" {
		t.Errorf("Parse(no ci.issuer_ca).CI.IssuerCA = %q, want empty (system roots)", p.CI.IssuerCA)
	}
}

// issuer_ca must name a governed file: inside governance/, in clean form,
// not a record directory or the MANIFEST, which the manifest does not list.
func TestCIIssuerCARefused(t *testing.T) {
	for _, ca := range []string{
		"/etc/ssl/certs/ca.pem",
		"ca.pem",
		"infra/bootstrap/ca.pem",
		"governance/../ca.pem",
		"governance/ci/../../ca.pem",
		"governance//ci/ca.pem",
		"governance/./ca.pem",
		"governance/intents/ca.pem",
		"governance/revocations/ca.pem",
		"governance/MANIFEST",
		"governance/MANIFEST.asc",
		`governance\ci\ca.pem`,
		"",
	} {
		src := minimal + "ci: {provider: github, repository: a/b, issuer_ca: '" + ca + "'}\n"
		_, err := policy.Parse(file, []byte(src))
		var se *strictyaml.Error
		var ie *policy.InvalidError
		switch {
		case errors.As(err, &ie):
			if !strings.Contains(ie.Msg, "ci.issuer_ca") || !strings.Contains(ie.Hint, "governance/") {
				t.Errorf("Parse(issuer_ca %q) = %v, want an error naming ci.issuer_ca with a hint", ca, err)
			}
		case errors.As(err, &se):
			if !strings.Contains(err.Error(), "issuer_ca") {
				t.Errorf("Parse(issuer_ca %q) = %v, want mention of issuer_ca", ca, err)
			}
		default:
			t.Errorf("Parse(issuer_ca %q) = %v, want it refused", ca, err)
		}
	}
}
