package backend

import (
	"fmt"
	"net/url"
	"slices"

	"github.com/groundzero/groundzero/internal/policy"
)

// FromPolicy is the spec policy.yaml selects for env. Errors name the
// policy field to fix.
func FromPolicy(p *policy.Policy, env string) (Spec, []string, error) {
	b := p.Backend
	kind := b.Kind
	if e := p.Environment(env); e != nil && e.Backend != "" {
		kind = e.Backend
	}
	if kind != b.Kind {
		return Spec{}, nil, fmt.Errorf("%s: environment %s selects backend %s, but backend.kind is %s: one state store serves every environment", p.File, env, kind, b.Kind)
	}
	s := Spec{
		Kind: kind, Env: env, Bucket: b.Bucket, Prefix: b.KeyPrefix, Region: b.Region, Endpoint: b.Endpoint,
		Project: b.Project, Namespace: b.Namespace, Compartment: b.Compartment, Lock: b.Lock, LockTable: b.LockTable,
		Versioning: b.VersioningOn(), Encrypt: b.Encryption.State, Tags: b.Tags, Path: b.Path,
		Key: Key{
			Provider: b.Encryption.Provider, Name: b.Encryption.Key, Location: b.Encryption.Location, Address: b.Encryption.Address,
			Mount: b.Encryption.Mount, Vault: b.Encryption.Vault, RotationDays: b.Encryption.RotationDays,
		},
	}
	if s.Key.Provider == "" {
		s.Key.Provider = KeyProviders[kind][0]
	}
	if s.Key.Provider == KeyOpenBao && s.Key.Mount == "" {
		s.Key.Mount = "transit"
	}
	if s.Lock == "" {
		s.Lock = LockFile
		if !S3API(kind) {
			s.Lock = LockNative
		}
	}
	if s.Region == "" && S3API(kind) {
		s.Region = "us-east-1"
	}
	if kind == KindLocal && s.Path == "" {
		s.Path = "terraform.tfstate"
	}
	if r := b.Replication; r != nil {
		s.Replica = &Replica{Region: r.Region, Bucket: r.Bucket}
	}
	if err := s.Validate(); err != nil {
		return Spec{}, nil, fmt.Errorf("%s: backend: %v", p.File, err)
	}
	if u, err := url.Parse(p.Evidence.Store); err == nil && (u.Scheme == "s3" || u.Scheme == "gs") && u.Host == s.Bucket && s.Kind != KindLocal {
		return Spec{}, nil, fmt.Errorf("%s: backend.bucket %s is the evidence store's bucket: the WORM evidence bucket is never the state bucket", p.File, s.Bucket)
	}
	req := b.Probes.Require
	if req == nil && kind != KindLocal {
		req = DefaultRequired
	}
	return s, slices.Clone(req), nil
}
