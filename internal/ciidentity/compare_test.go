package ciidentity

import (
	"net/url"
	"strings"
	"testing"
)

var planTrust = Document{Version: "2012-10-17", Statement: []Statement{{
	Sid: "CIWebIdentity", Effect: "Allow",
	Principal: map[string][]string{"Federated": {"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"}},
	Action:    []string{"sts:AssumeRoleWithWebIdentity"},
	Condition: map[string]map[string][]string{
		"StringEquals": {"token.actions.githubusercontent.com:aud": {"groundzero"}},
		"StringLike":   {"token.actions.githubusercontent.com:sub": {"repo:acme/platform:ref:refs/tags/*"}},
	},
}}}

func TestCompareDocuments(t *testing.T) {
	gen := string(planTrust.JSON())
	for _, tc := range []struct {
		name, live      string
		drift, widening bool
		detail          string
	}{
		{"identical", gen, false, false, ""},
		{"identical, URL-encoded and one value as a string", url.QueryEscape(strings.NewReplacer(
			`"Federated": [
            "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
          ]`, `"Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"`).Replace(gen)), false, false, ""},
		{"narrower: one tag by StringEquals", strings.Replace(gen, `"StringLike": {
          "token.actions.githubusercontent.com:sub": [
            "repo:acme/platform:ref:refs/tags/*"
          ]
        }`, `"stringequals": {"token.actions.githubusercontent.com:sub": "repo:acme/platform:ref:refs/tags/v1"}`, 1), true, false, ""},
		{"another repository's tags", strings.Replace(gen, "repo:acme/platform:ref:refs/tags/*", "repo:acme/*", 1), true, true, "admits repo:acme/*"},
		{"a wildcard principal", strings.Replace(gen, `"Federated": [`, `"AWS": ["*"], "Federated": [`, 1), true, true, "adds principal AWS *"},
		{"a second statement", strings.Replace(gen, `"Statement": [`, `"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},`, 1), true, true, "statement 1"},
		{"a Deny added", strings.Replace(gen, `"Statement": [`, `"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"},`, 1), true, false, ""},
		{"not JSON", "%zz", false, true, "cannot be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := compareDocuments(planTrust, tc.live)
			if (len(c.Widening) > 0) != tc.widening {
				t.Errorf("compareDocuments() widening = %v, want %v", c.Widening, tc.widening)
			}
			if !tc.widening && (len(c.Drift) > 0) != tc.drift {
				t.Errorf("compareDocuments() drift = %v, want %v", c.Drift, tc.drift)
			}
			if tc.detail != "" && !strings.Contains(strings.Join(c.Widening, "\n"), tc.detail) {
				t.Errorf("compareDocuments() = %v, want %q", c.Widening, tc.detail)
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"repo:a/b:ref:refs/tags/*", "repo:a/b:ref:refs/tags/v1", true},
		{"repo:a/b:ref:refs/tags/*", "repo:a/bc:ref:refs/tags/v1", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*", "", true},
	} {
		if got := globMatch(tc.p, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}

// FuzzCompareDocuments: any live document is judged without a panic, and
// the generated document is never judged widened against itself.
func FuzzCompareDocuments(f *testing.F) {
	f.Add(string(planTrust.JSON()))
	f.Add(`{"Statement": {"Effect": "Allow", "NotAction": "x", "Resource": 1}}`)
	f.Add(`{"Statement": [{"Condition": {"StringLike": {"k": [1, true, null]}}}]}`)
	f.Fuzz(func(t *testing.T, live string) {
		compareDocuments(planTrust, live)
		if c := compareDocuments(planTrust, string(planTrust.JSON())); !c.same() {
			t.Fatalf("the generated document differs from itself: %+v", c)
		}
	})
}
