package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/strictyaml"
)

func withCICreds(kind, creds string) string {
	return strings.Replace(minimal, "  kind: s3\n", "  kind: "+kind+"\n  ci_credentials:\n"+creds, 1)
}

const ciCreds = "    vault: {address: https://vault.example.test:8200}\n    environments:\n      prod: {path: groundzero/ci/prod}\n"

func TestCICredentials(t *testing.T) {
	p := mustParse(t, withCICreds("minio", ciCreds))
	c := p.Backend.CICredentials
	if c == nil || c.Vault.Address != "https://vault.example.test:8200" || c.KVMount() != policy.DefaultKVMount || c.Path("prod") != "groundzero/ci/prod" || c.Path("dev") != "" {
		t.Errorf("Parse(ci_credentials).Backend.CICredentials = %+v", c)
	}
	if p := mustParse(t, minimal); p.Backend.CICredentials != nil || p.Backend.CICredentials.Path("prod") != "" {
		t.Errorf("Parse(no ci_credentials).Backend.CICredentials = %+v, want nil", p.Backend.CICredentials)
	}
	p = mustParse(t, withCICreds("oci", ciCreds+"    oci_users: {plan: ocid1.user.oc1..aaaaplan, apply: ocid1.user.oc1..aaaaapply}\n"))
	if p.Backend.CICredentials.OCIUsers["apply"] != "ocid1.user.oc1..aaaaapply" {
		t.Errorf("oci_users = %v", p.Backend.CICredentials.OCIUsers)
	}
}

func TestCICredentialsRefused(t *testing.T) {
	for name, tc := range map[string]struct{ data, want string }{
		"kind with OIDC":   {withCICreds("s3", ciCreds), "backend kind s3 is not one of oci, spaces, minio"},
		"unknown env":      {withCICreds("minio", "    vault: {address: https://v.example.test}\n    environments:\n      staging: {path: ci/staging}\n"), "environments.staging: no such environment"},
		"path traversal":   {withCICreds("minio", "    vault: {address: https://v.example.test}\n    environments:\n      prod: {path: ci/../other}\n"), "not a clean relative path"},
		"absolute path":    {withCICreds("minio", "    vault: {address: https://v.example.test}\n    environments:\n      prod: {path: /ci/prod}\n"), "not a clean relative path"},
		"oci without user": {withCICreds("oci", ciCreds+"    oci_users: {plan: ocid1.user.oc1..aaaaplan}\n"), "must name a user for plan and for apply"},
		"oci same user":    {withCICreds("oci", ciCreds+"    oci_users: {plan: ocid1.user.oc1..aaaau, apply: ocid1.user.oc1..aaaau}\n"), "plan and apply name the same user"},
		"oci bad user":     {withCICreds("oci", ciCreds+"    oci_users: {plan: ocid1.group.oc1..aaaag, apply: ocid1.user.oc1..aaaau}\n"), "is not a user OCID"},
		"shared path":      {strings.Replace(withCICreds("minio", "    vault: {address: https://v.example.test}\n    environments:\n      prod: {path: ci/x}\n      dev: {path: ci/x}\n"), "  - name: prod\n", "  - name: prod\n  - name: dev\n", 1), "share path ci/x"},
		"users not oci":    {withCICreds("minio", ciCreds+"    oci_users: {plan: ocid1.user.oc1..aaaap, apply: ocid1.user.oc1..aaaau}\n"), "oci_users is set, but backend kind is minio"},
	} {
		_, err := policy.Parse(file, []byte(tc.data))
		var ie *policy.InvalidError
		if !errors.As(err, &ie) || !strings.Contains(ie.Msg, tc.want) || ie.Hint == "" {
			t.Errorf("%s: Parse = %v, want an InvalidError with %q and a hint", name, err, tc.want)
		}
	}
	for name, data := range map[string]string{
		"no vault":      withCICreds("minio", "    environments:\n      prod: {path: ci/prod}\n"),
		"no envs":       withCICreds("minio", "    vault: {address: https://v.example.test}\n"),
		"unknown field": withCICreds("minio", ciCreds+"    token: hvs.nope\n"),
		"not a URL":     withCICreds("minio", "    vault: {address: vault.example.test}\n    environments:\n      prod: {path: ci/prod}\n"),
	} {
		_, err := policy.Parse(file, []byte(data))
		var se *strictyaml.Error
		if !errors.As(err, &se) {
			t.Errorf("%s: Parse = %v, want a schema error", name, err)
		}
	}
}
