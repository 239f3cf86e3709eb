package oci_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/backend/oci"
)

func keySpec(addr string) backend.Spec {
	return backend.Spec{
		Kind: backend.KindOCI, Bucket: "tfstate", Namespace: namespace, Compartment: compartment, Versioning: true,
		Key:  backend.Key{Provider: backend.KeyOCIVault, Name: "state-prod", Address: addr, Vault: vaultID},
		Tags: map[string]string{"env": "prod", "owner": "platform"},
	}
}

func newKeys(t *testing.T, spec backend.Spec, opt oci.Options) *oci.Keys {
	t.Helper()
	if opt.ConfigProvider == nil {
		opt.ConfigProvider = provider()
	}
	k, err := oci.NewKeys(spec, opt)
	if err != nil {
		t.Fatalf("NewKeys = %v", err)
	}
	return k
}

// A missing key is made as an HSM-protected 32-byte AES key with the tags
// given at creation; both calls carry OCI's request IDs.
func TestKeysEnsureCreates(t *testing.T) {
	ocienv(t)
	f, srv := newKMS(t)
	k := newKeys(t, keySpec(srv.URL), oci.Options{})
	id, calls, err := k.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if id != "ocid1.key.oc1.iad.created1" {
		t.Fatalf("Ensure id = %q, want the OCID CreateKey answered", id)
	}
	wantCalls := []backend.Call{
		{Service: "oci-kms", Operation: "ListKeys", RequestID: "kms-1", Resource: compartment, Outcome: "read"},
		{Service: "oci-kms", Operation: "CreateKey", RequestID: "kms-2", Resource: id, Outcome: "created"},
	}
	if !reflect.DeepEqual(calls, wantCalls) {
		t.Fatalf("Ensure calls = %+v, want %+v", calls, wantCalls)
	}
	want := map[string]any{
		"compartmentId":  compartment,
		"displayName":    "state-prod",
		"keyShape":       map[string]any{"algorithm": "AES", "length": float64(32)},
		"protectionMode": "HSM",
		"freeformTags":   map[string]any{"env": "prod", "owner": "platform"},
	}
	if len(f.creates) != 1 || !reflect.DeepEqual(f.creates[0], want) {
		t.Fatalf("CreateKey bodies = %v, want one %v", f.creates, want)
	}
}

// A second run — while the new key is still being created — finds it and
// makes nothing.
func TestKeysEnsureIdempotent(t *testing.T) {
	ocienv(t)
	f, srv := newKMS(t)
	k := newKeys(t, keySpec(srv.URL), oci.Options{})
	id, _, err := k.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	id2, calls, err := k.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []backend.Call{{Service: "oci-kms", Operation: "ListKeys", RequestID: "kms-3", Resource: id, Outcome: "exists"}}
	if id2 != id || !reflect.DeepEqual(calls, want) {
		t.Fatalf("second Ensure = %q, %+v, want %q, %+v", id2, calls, id, want)
	}
	if len(f.creates) != 1 {
		t.Fatalf("%d CreateKey calls after two runs, want 1", len(f.creates))
	}
}

// Ensure reads every page and picks the usable key of the name in the
// spec's vault, passing over disabled keys, keys of other vaults and keys
// of other names.
func TestKeysEnsureFinds(t *testing.T) {
	ocienv(t)
	f, srv := newKMS(t)
	f.pageSize = 2
	f.keys = []map[string]any{
		keySummary("ocid1.key.oc1.iad.other", "other", "ENABLED", vaultID, "HSM"),
		keySummary("ocid1.key.oc1.iad.disabled", "state-prod", "DISABLED", vaultID, "HSM"),
		keySummary("ocid1.key.oc1.iad.elsewhere", "state-prod", "ENABLED", "ocid1.vault.oc1.iad.other", "HSM"),
		keySummary("ocid1.key.oc1.iad.deleted", "state-prod", "PENDING_DELETION", vaultID, "HSM"),
		keySummary("ocid1.key.oc1.iad.target", "state-prod", "ENABLED", vaultID, "HSM"),
	}
	k := newKeys(t, keySpec("https://unused.example.com"), oci.Options{ManagementEndpoint: srv.URL})
	id, calls, err := k.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []backend.Call{
		{Service: "oci-kms", Operation: "ListKeys", RequestID: "kms-1", Resource: compartment, Outcome: "read"},
		{Service: "oci-kms", Operation: "ListKeys", RequestID: "kms-2", Resource: compartment, Outcome: "read"},
		{Service: "oci-kms", Operation: "ListKeys", RequestID: "kms-3", Resource: "ocid1.key.oc1.iad.target", Outcome: "exists"},
	}
	if id != "ocid1.key.oc1.iad.target" || !reflect.DeepEqual(calls, want) {
		t.Fatalf("Ensure = %q, %+v, want the target key and %+v", id, calls, want)
	}
	if len(f.creates) != 0 {
		t.Fatalf("CreateKey called %d times, want 0", len(f.creates))
	}
}

// Two usable keys of the name are ambiguous: Ensure fails and makes none.
func TestKeysEnsureAmbiguous(t *testing.T) {
	ocienv(t)
	f, srv := newKMS(t)
	f.keys = []map[string]any{
		keySummary("ocid1.key.oc1.iad.a", "state-prod", "ENABLED", vaultID, "HSM"),
		keySummary("ocid1.key.oc1.iad.b", "state-prod", "ENABLED", vaultID, "HSM"),
	}
	k := newKeys(t, keySpec(srv.URL), oci.Options{})
	_, _, err := k.Ensure(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ocid1.key.oc1.iad.a") || !strings.Contains(err.Error(), "ocid1.key.oc1.iad.b") {
		t.Fatalf("Ensure with two keys of the name = %v, want an error naming both", err)
	}
	if len(f.creates) != 0 {
		t.Fatalf("CreateKey called %d times, want 0", len(f.creates))
	}
}

func TestKeysCheck(t *testing.T) {
	ocienv(t)
	f, srv := newKMS(t)
	f.keys = []map[string]any{
		keySummary("ocid1.key.oc1.iad.good", "state-prod", "ENABLED", vaultID, "HSM"),
		keySummary("ocid1.key.oc1.iad.off", "state-prod", "DISABLED", vaultID, "HSM"),
		keySummary("ocid1.key.oc1.iad.soft", "state-prod", "ENABLED", vaultID, "SOFTWARE"),
	}
	k := newKeys(t, keySpec(srv.URL), oci.Options{})
	for _, c := range []struct {
		id      string
		outcome string
		want    []backend.Finding
	}{
		{"ocid1.key.oc1.iad.good", "read", nil},
		{"ocid1.key.oc1.iad.off", "read", []backend.Finding{{Check: "key", Resource: "ocid1.key.oc1.iad.off", Detail: "the key is DISABLED, not ENABLED"}}},
		{"ocid1.key.oc1.iad.soft", "read", []backend.Finding{{Check: "key", Resource: "ocid1.key.oc1.iad.soft", Detail: `the key's protection mode is "SOFTWARE", not HSM`}}},
		{"ocid1.key.oc1.iad.gone", "missing", []backend.Finding{{Check: "key", Resource: "ocid1.key.oc1.iad.gone", Detail: "the key does not exist or is not visible to these credentials"}}},
	} {
		fs, calls, err := k.Check(context.Background(), c.id)
		if err != nil {
			t.Fatalf("Check(%s) = %v", c.id, err)
		}
		if !reflect.DeepEqual(fs, c.want) {
			t.Errorf("Check(%s) = %+v, want %+v", c.id, fs, c.want)
		}
		if len(calls) != 1 || calls[0].Operation != "GetKey" || calls[0].Resource != c.id || !strings.HasPrefix(calls[0].RequestID, "kms-") || calls[0].Outcome != c.outcome {
			t.Errorf("Check(%s) calls = %+v, want one GetKey, %s, with its request ID", c.id, calls, c.outcome)
		}
	}
}

// A refusal is one line naming the operation, OCI's status, code and
// request ID.
func TestKeysServiceError(t *testing.T) {
	ocienv(t)
	srv := newRefusing(t)
	k := newKeys(t, keySpec(srv.URL), oci.Options{})
	_, calls, err := k.Ensure(context.Background())
	want := "oci-kms: ListKeys " + compartment + ": 401 NotAuthenticated: The required information to complete authentication was not provided. (opc-request-id refused-1)"
	wantCalls := []backend.Call{{Service: "oci-kms", Operation: "ListKeys", RequestID: "refused-1", Resource: compartment, Outcome: "failed"}}
	if err == nil || err.Error() != want || !reflect.DeepEqual(calls, wantCalls) {
		t.Fatalf("Ensure = %+v, %v, want %+v, %q", calls, err, wantCalls, want)
	}
}

// A refused CreateKey is recorded as failed, with its request ID.
func TestKeysCreateRefused(t *testing.T) {
	ocienv(t)
	f, srv := newKMS(t)
	f.refuse = true
	k := newKeys(t, keySpec(srv.URL), oci.Options{})
	id, calls, err := k.Ensure(context.Background())
	want := []backend.Call{
		{Service: "oci-kms", Operation: "ListKeys", RequestID: "kms-1", Resource: compartment, Outcome: "read"},
		{Service: "oci-kms", Operation: "CreateKey", RequestID: "kms-2", Resource: compartment, Outcome: "failed"},
	}
	if err == nil || !strings.Contains(err.Error(), "400 LimitExceeded: key limit reached (opc-request-id kms-2)") || id != "" || !reflect.DeepEqual(calls, want) {
		t.Fatalf("Ensure = %q, %+v, %v, want an error and %+v", id, calls, err, want)
	}
}

func TestNewKeysRejects(t *testing.T) {
	ocienv(t)
	for _, c := range []struct {
		name   string
		change func(*backend.Spec, *oci.Options)
	}{
		{"no provider", func(_ *backend.Spec, o *oci.Options) { o.ConfigProvider = nil }},
		{"no endpoint", func(s *backend.Spec, _ *oci.Options) { s.Key.Address = "" }},
		{"plain http", func(s *backend.Spec, _ *oci.Options) { s.Key.Address = "http://kms.example.com" }},
		{"endpoint path", func(s *backend.Spec, _ *oci.Options) { s.Key.Address = "https://kms.example.com/20180608" }},
		{"key provider", func(s *backend.Spec, _ *oci.Options) { s.Key.Provider = backend.KeyOpenBao }},
		{"no compartment", func(s *backend.Spec, _ *oci.Options) { s.Compartment = "" }},
		{"no name", func(s *backend.Spec, _ *oci.Options) { s.Key.Name = "" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, opt := keySpec("https://aaaa-management.kms.us-ashburn-1.oraclecloud.com"), oci.Options{ConfigProvider: provider()}
			c.change(&spec, &opt)
			if _, err := oci.NewKeys(spec, opt); err == nil {
				t.Fatal("NewKeys = nil error, want one")
			}
		})
	}
}
