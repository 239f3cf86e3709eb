package cli

import (
	"context"
	"fmt"

	"github.com/oracle/oci-go-sdk/v65/common"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/backend/gcs"
	"github.com/groundzero/groundzero/internal/backend/oci"
	"github.com/groundzero/groundzero/internal/backend/s3"
	"github.com/groundzero/groundzero/internal/backend/vault"
)

// openBackend opens the control plane of spec's kind, with its key provider
// in front when the key lives in another service. Credentials come from
// each cloud's usual places (the AWS and Google default chains, the OCI
// config file, VAULT_TOKEN or BAO_TOKEN); none is ever recorded.
func (a *app) openBackend(ctx context.Context, spec backend.Spec) (backend.Store, error) {
	open := func(s backend.Spec) (backend.Store, error) { return a.openStore1(ctx, s) }
	switch spec.Key.Provider {
	case backend.KeyOpenBao:
		token := a.getenv("VAULT_TOKEN")
		if token == "" {
			token = a.getenv("BAO_TOKEN")
		}
		keys, err := vault.New(spec.Key, vault.Options{Token: token})
		if err != nil {
			return nil, err
		}
		return backend.Keyed(keys, spec, open), nil
	case backend.KeyOCIVault:
		keys, err := oci.NewKeys(spec, oci.Options{ConfigProvider: common.DefaultConfigProvider()})
		if err != nil {
			return nil, err
		}
		return backend.Keyed(keys, spec, open), nil
	}
	return open(spec)
}

func (a *app) openStore1(ctx context.Context, spec backend.Spec) (backend.Store, error) {
	switch spec.Kind {
	case backend.KindLocal:
		return backend.Local{}, nil
	case backend.KindGCS:
		return gcs.New(ctx, spec, gcs.Options{StorageEndpoint: spec.Endpoint})
	case backend.KindOCI:
		// The bucket is made through OCI's own API (so the Vault key
		// encrypts it); OpenTofu and the probe speak to it through the
		// S3-compatible endpoint.
		compat, err := s3.New(ctx, spec, s3.Options{})
		if err != nil {
			return nil, err
		}
		b, err := oci.NewBuckets(spec, oci.Options{ConfigProvider: common.DefaultConfigProvider()})
		if err != nil {
			return nil, err
		}
		return &ociStore{buckets: b, compat: compat, keyID: spec.Key.ID}, nil
	case backend.KindS3, backend.KindMinIO, backend.KindSpaces:
		return s3.New(ctx, spec, s3.Options{})
	}
	return nil, fmt.Errorf("backend kind %q has no control plane", spec.Kind)
}

// ociStore makes and verifies the bucket through OCI's API and probes it
// through the S3-compatible endpoint OpenTofu uses.
type ociStore struct {
	buckets *oci.Buckets
	compat  backend.Store
	keyID   string
}

func (o *ociStore) Create(ctx context.Context) (*backend.Provisioned, error) {
	return o.buckets.Create(ctx, o.keyID)
}

func (o *ociStore) Probe(ctx context.Context) ([]backend.ProbeResult, []backend.Call, error) {
	return o.compat.Probe(ctx)
}

func (o *ociStore) Verify(ctx context.Context, keyID string) ([]backend.Finding, []backend.Call, error) {
	return o.buckets.Verify(ctx, keyID)
}
