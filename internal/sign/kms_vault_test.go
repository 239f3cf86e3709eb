package sign

import (
	"bytes"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/sign/kmsfake"
)

func vaultServer(t *testing.T, mount string) *kmsfake.Server {
	t.Helper()
	isolate(t)
	srv := kmsfake.Vault(mount, "groundzero-ci", canaryVault)
	t.Cleanup(srv.Close)
	t.Setenv("VAULT_ADDR", srv.URL)
	return srv
}

func TestVaultSign(t *testing.T) {
	srv := vaultServer(t, "ci/transit")
	s, blob := signAndCheck(t, "vault:groundzero-ci?mount=ci/transit", srv)
	calls := srv.Calls()
	if len(calls) < 2 || calls[0].Operation != "ReadKey" || calls[0].Key != "ci/transit/keys/groundzero-ci" {
		t.Fatalf("calls = %+v, want a read of ci/transit/keys/groundzero-ci first", calls)
	}
	// The signed data goes whole, hashed by transit with SHA-256, signed
	// by the version whose public key was read, DER-encoded.
	c := calls[1]
	if c.Operation != "Sign" || c.Key != "ci/transit/sign/groundzero-ci/sha2-256" || !bytes.Equal(c.Input, blob) || c.Prehashed || c.Message != "asn1" || c.Version != 1 {
		t.Errorf("sign call = %+v, want ci/transit/sign/groundzero-ci/sha2-256, input the signed data %x, prehashed false, asn1, key_version 1", c, blob)
	}
	if reqs := Requests(s); len(reqs) != 2 || reqs[0].RequestID != "req-0001" || reqs[1].RequestID != "req-0002" {
		t.Errorf("Requests = %+v, want the read and the sign with their request IDs", reqs)
	}
}

func TestVaultDefaultMount(t *testing.T) {
	srv := vaultServer(t, "transit")
	signAndCheck(t, "vault:groundzero-ci", srv)
}

func TestVaultRefusals(t *testing.T) {
	for _, tc := range []struct {
		mode kmsfake.Mode
		want string
	}{
		{kmsfake.OtherKey, "does not verify with the key's public key"},
		{kmsfake.RawSignature, "not a DER ECDSA signature"},
		{kmsfake.P384, `of type "ecdsa-p384"`},
		{kmsfake.Mislabelled, "not an ECDSA P-256 key"},
		{kmsfake.OtherVersion, "vault:v1:"},
		{kmsfake.Echo, "status 403"},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			srv := vaultServer(t, "transit")
			srv.SetMode(tc.mode)
			err := refuse(t, "vault:groundzero-ci")
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
			if tc.mode == kmsfake.Echo && !strings.Contains(err.Error(), "X-Vault-Token: REDACTED") {
				t.Errorf("error = %v: the echoed token is not redacted", err)
			}
		})
	}
}

func TestVaultEnvironment(t *testing.T) {
	srv := vaultServer(t, "transit")
	for _, tc := range []struct {
		addr, token, want string
	}{
		{"", canaryVault, "VAULT_ADDR is not set"},
		{srv.URL, "", "VAULT_TOKEN is not set"},
		{"http://vault.example.test:8200", canaryVault, "must be https"},
		{srv.URL + "/v1/sys?x=1", canaryVault, "not a server URL"},
	} {
		t.Setenv("VAULT_ADDR", tc.addr)
		t.Setenv("VAULT_TOKEN", tc.token)
		err := refuse(t, "vault:groundzero-ci")
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("VAULT_ADDR=%q: error = %v, want %q", tc.addr, err, tc.want)
		}
	}
	// A wrong token: the server refuses, and nothing leaks.
	t.Setenv("VAULT_ADDR", srv.URL)
	t.Setenv("VAULT_TOKEN", canaryVault+"x")
	if err := refuse(t, "vault:groundzero-ci"); !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("wrong token: error = %v, want permission denied", err)
	}
}
