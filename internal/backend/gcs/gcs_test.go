package gcs_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/backend/gcs"
	"github.com/groundzero/groundzero/internal/gcsfake"
)

const (
	project  = "proj-1"
	bucket   = "gz-state-dev"
	stateKey = "projects/proj-1/locations/europe-west1/keyRings/gz-ring/cryptoKeys/gz-state"
	selfLink = "https://www.googleapis.com/storage/v1/b/gz-state-dev"
)

var wantLabels = map[string]string{"owner": "platform_team", "cost_center": "42", "env": "dev"}

func testSpec() backend.Spec {
	return backend.Spec{
		Kind: backend.KindGCS, Env: "dev", Bucket: bucket, Prefix: "state", Region: "europe-west1",
		Project: project, Lock: backend.LockNative, Versioning: true,
		Key:  backend.Key{Provider: backend.KeyGCPKMS, Name: "gz-ring/gz-state", Location: "europe-west1"},
		Tags: map[string]string{"Owner": "Platform Team", "cost.center": "42", "env": "dev"},
	}
}

// world is a fake-gcs-server behind a proxy, and a Cloud KMS test server.
type world struct {
	fake  *gcsfake.Server
	proxy *storageProxy
	kms   *kmsFake
}

// newWorld starts the servers; complete makes the proxy keep the bucket
// fields fake-gcs-server drops.
func newWorld(t *testing.T, complete bool) *world {
	t.Helper()
	clearEnv(t)
	fake := gcsfake.Start(t)
	k := newKMSFake(t)
	k.expect(90*24*time.Hour, wantLabels)
	return &world{fake: fake, proxy: newStorageProxy(t, fake.Endpoint, complete), kms: k}
}

func (w *world) open(t *testing.T, spec backend.Spec) *gcs.Store {
	t.Helper()
	s, err := gcs.New(context.Background(), spec, gcs.Options{StorageEndpoint: w.proxy.URL, KMSEndpoint: w.kms.URL})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client reaches the bucket through the proxy, as another tool would.
func (w *world) client(t *testing.T) *storage.Client {
	t.Helper()
	c, err := storage.NewClient(context.Background(), option.WithEndpoint(w.proxy.URL+"/storage/v1/"), option.WithoutAuthentication(), storage.WithJSONReads())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func create(t *testing.T, s *gcs.Store) *backend.Provisioned {
	t.Helper()
	p, err := s.Create(context.Background())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return p
}

// brief renders calls as "service operation outcome resource".
func brief(calls []backend.Call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, strings.Join([]string{c.Service, c.Operation, c.Outcome, c.Resource}, " "))
	}
	return out
}

const agentLink = "https://www.googleapis.com/storage/v1/projects/proj-1/serviceAccount"

func TestCreate(t *testing.T) {
	w := newWorld(t, false)
	s := w.open(t, testSpec())
	ringName := "projects/proj-1/locations/europe-west1/keyRings/gz-ring"

	p := create(t, s)
	if p.Bucket != selfLink || p.Key != stateKey || p.Lock != "" {
		t.Errorf("Create() = bucket %q key %q lock %q, want %q %q \"\"", p.Bucket, p.Key, p.Lock, selfLink, stateKey)
	}
	want := []string{
		"cloudkms GetKeyRing missing " + ringName,
		"cloudkms CreateKeyRing created " + ringName,
		"cloudkms GetCryptoKey missing " + stateKey,
		"cloudkms CreateCryptoKey created " + stateKey,
		"storage projects.serviceAccount.get read " + agentLink,
		"cloudkms GetIamPolicy read " + stateKey,
		"cloudkms SetIamPolicy updated " + stateKey,
		"storage buckets.get missing " + selfLink,
		"storage buckets.insert created " + selfLink,
	}
	if got := brief(p.Calls); !slices.Equal(got, want) {
		t.Errorf("Create() calls =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range p.Calls {
		if (c.Service == gcs.ServiceStorage) != strings.HasPrefix(c.RequestID, "upload-") {
			t.Errorf("Create() call %s %s has request ID %q, want the X-GUploader-UploadID for storage calls only", c.Service, c.Operation, c.RequestID)
		}
	}
	if got, want := w.kms.calls(), []string{"CreateKeyRing " + ringName, "CreateCryptoKey " + stateKey, "SetIamPolicy " + stateKey}; !slices.Equal(got, want) {
		t.Errorf("Cloud KMS changes = %q, want %q", got, want)
	}
	w.kms.mu.Lock()
	policy := w.kms.policies[stateKey]
	w.kms.mu.Unlock()
	if b := policy.GetBindings(); len(b) != 1 || b[0].GetRole() != "roles/cloudkms.cryptoKeyEncrypterDecrypter" || !slices.Equal(b[0].GetMembers(), []string{"serviceAccount:" + agentEmail}) {
		t.Errorf("key policy bindings = %v, want the service agent as encrypter/decrypter", b)
	}

	// What buckets.insert carried, including the fields the fake drops.
	inserts := w.proxy.insertBodies()
	if len(inserts) != 1 {
		t.Fatalf("buckets.insert sent %d times, want 1", len(inserts))
	}
	body := inserts[0]
	checks := []struct {
		field string
		got   any
		want  any
	}{
		{"name", body["name"], bucket},
		{"location", body["location"], "europe-west1"},
		{"versioning", body["versioning"], map[string]any{"enabled": true}},
		{"encryption", body["encryption"], map[string]any{"defaultKmsKeyName": stateKey}},
		{"iamConfiguration.publicAccessPrevention", dig(body, "iamConfiguration", "publicAccessPrevention"), "enforced"},
		{"iamConfiguration.uniformBucketLevelAccess.enabled", dig(body, "iamConfiguration", "uniformBucketLevelAccess", "enabled"), true},
		{"labels", body["labels"], map[string]any{"owner": "platform_team", "cost_center": "42", "env": "dev"}},
		{"customPlacementConfig", body["customPlacementConfig"], nil},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("buckets.insert %s = %v, want %v", c.field, c.got, c.want)
		}
	}
	attrs, err := w.client(t).Bucket(bucket).Attrs(context.Background())
	if err != nil || !attrs.VersioningEnabled {
		t.Fatalf("bucket after Create: %+v, %v; want it versioned", attrs, err)
	}

	// A second run finds everything made.
	p = create(t, s)
	want = []string{
		"cloudkms GetKeyRing exists " + ringName,
		"cloudkms GetCryptoKey exists " + stateKey,
		"storage projects.serviceAccount.get read " + agentLink,
		"cloudkms GetIamPolicy exists " + stateKey,
		"storage buckets.get exists " + selfLink,
	}
	if got := brief(p.Calls); !slices.Equal(got, want) {
		t.Errorf("second Create() calls =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p.Key != stateKey {
		t.Errorf("second Create() key = %q, want %q", p.Key, stateKey)
	}
	if n := len(w.kms.calls()); n != 3 {
		t.Errorf("second Create() changed Cloud KMS: %q", w.kms.calls())
	}
	if n := len(w.proxy.insertBodies()); n != 1 {
		t.Errorf("second Create() sent buckets.insert: %d inserts in all", n)
	}
}

// dig returns the value at a path of object keys.
func dig(doc map[string]any, path ...string) any {
	var v any = doc
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestCreateRotationAndDualRegion(t *testing.T) {
	w := newWorld(t, false)
	spec := testSpec()
	spec.Region = "europe-west1"
	spec.Replica = &backend.Replica{Region: "europe-north1"}
	spec.Key.RotationDays = 30
	spec.Versioning = false
	spec.Tags = nil
	w.kms.expect(30*24*time.Hour, nil)
	create(t, w.open(t, spec))

	body := w.proxy.insertBodies()[0]
	if got := body["location"]; got != "EU" {
		t.Errorf("buckets.insert location = %v, want EU", got)
	}
	if got := fmt.Sprint(dig(body, "customPlacementConfig", "dataLocations")); got != "[EUROPE-WEST1 EUROPE-NORTH1]" {
		t.Errorf("buckets.insert customPlacementConfig.dataLocations = %s, want [EUROPE-WEST1 EUROPE-NORTH1]", got)
	}
	if got := dig(body, "versioning", "enabled"); got == true {
		t.Errorf("buckets.insert versioning.enabled = %v with Versioning off", got)
	}
	if _, ok := body["labels"]; ok {
		t.Errorf("buckets.insert labels = %v with no tags", body["labels"])
	}
}

func TestCreateRefusesKeyOfOtherPurpose(t *testing.T) {
	w := newWorld(t, false)
	w.kms.addKey(stateKey, &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ASYMMETRIC_SIGN})
	p, err := w.open(t, testSpec()).Create(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ENCRYPT_DECRYPT") {
		t.Fatalf("Create() with a signing key = %v, want an error naming ENCRYPT_DECRYPT", err)
	}
	if got := brief(p.Calls); len(got) == 0 || got[len(got)-1] != "cloudkms GetCryptoKey exists "+stateKey {
		t.Errorf("Create() calls = %q, want them to end with the key found", got)
	}
	if n := len(w.proxy.insertBodies()); n != 0 {
		t.Errorf("Create() made a bucket with an unusable key")
	}
}

// Google-managed encryption: no Cloud KMS client and no key.
func openbaoSpec() backend.Spec {
	spec := testSpec()
	spec.Key = backend.Key{Provider: backend.KeyOpenBao, Name: "state", Address: "https://bao.example"}
	return spec
}

func TestCreateWithoutKMS(t *testing.T) {
	w := newWorld(t, false)
	p := create(t, w.open(t, openbaoSpec()))
	want := []string{"storage buckets.get missing " + selfLink, "storage buckets.insert created " + selfLink}
	if got := brief(p.Calls); !slices.Equal(got, want) || p.Key != "" {
		t.Errorf("Create() = key %q calls %q, want no key and %q", p.Key, got, want)
	}
	if enc := w.proxy.insertBodies()[0]["encryption"]; enc != nil {
		t.Errorf("buckets.insert encryption = %v, want none", enc)
	}
}

// STORAGE_EMULATOR_HOST is honoured when no endpoint is given, and no
// credentials are looked for.
func TestEmulatorHostFromEnvironment(t *testing.T) {
	w := newWorld(t, false)
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(w.proxy.URL, "http://"))
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/credentials.json")
	s, err := gcs.New(context.Background(), openbaoSpec(), gcs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	create(t, s)
	if n := len(w.proxy.insertBodies()); n != 1 {
		t.Errorf("buckets.insert reached the emulator %d times, want 1", n)
	}
}

// Without an emulator, requests carry the credentials the client options
// give, and the request IDs are still kept.
func TestCredentials(t *testing.T) {
	w := newWorld(t, false)
	s, err := gcs.New(context.Background(), openbaoSpec(), gcs.Options{ClientOptions: []option.ClientOption{
		option.WithAPIKey("test-api-key"), option.WithEndpoint(w.proxy.URL + "/storage/v1/"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := create(t, s)
	for _, c := range p.Calls {
		if c.RequestID == "" {
			t.Errorf("Create() call %s has no request ID", c.Operation)
		}
	}
	w.proxy.mu.Lock()
	keys := w.proxy.apiKeys
	w.proxy.mu.Unlock()
	if len(keys) != 2 || keys[0] != "test-api-key" || keys[1] != "test-api-key" {
		t.Errorf("API keys sent = %q, want test-api-key on both requests", keys)
	}
}

func probe(t *testing.T, s *gcs.Store) map[string]backend.ProbeResult {
	t.Helper()
	results, calls, err := s.Probe(context.Background())
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	var names []string
	out := map[string]backend.ProbeResult{}
	for _, r := range results {
		names = append(names, r.Name)
		out[r.Name] = r
	}
	if !slices.Equal(names, backend.Probes) {
		t.Errorf("Probe() names = %q, want %q", names, backend.Probes)
	}
	for _, c := range calls {
		if c.Service != gcs.ServiceStorage || c.RequestID == "" || !strings.HasPrefix(c.Resource, selfLink) {
			t.Errorf("Probe() call %+v: want a storage call on the bucket with a request ID", c)
		}
	}
	return out
}

func checkProbe(t *testing.T, got map[string]backend.ProbeResult, want map[string]bool) {
	t.Helper()
	for _, name := range backend.Probes {
		if got[name].OK != want[name] {
			t.Errorf("Probe() %s = %v (%s), want %v", name, got[name].OK, got[name].Detail, want[name])
		}
	}
}

// noObjects checks that the probe left no generation behind.
func noObjects(t *testing.T, c *storage.Client) {
	t.Helper()
	it := c.Bucket(bucket).Objects(context.Background(), &storage.Query{Versions: true})
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("probe left %s generation %d", a.Name, a.Generation)
	}
}

// Against fake-gcs-server as it is: the fields it drops read as missing.
func TestProbeFake(t *testing.T) {
	w := newWorld(t, false)
	s := w.open(t, testSpec())
	create(t, s)
	got := probe(t, s)
	checkProbe(t, got, map[string]bool{
		backend.ProbeConditionalWrite:     true,
		backend.ProbeConditionalAfterMark: true,
		backend.ProbeVersioning:           true,
		backend.ProbeEncryption:           false,
		backend.ProbeObjectLock:           false,
		backend.ProbeCreateTags:           false,
		backend.ProbePublicAccessBlock:    false,
	})
	if d := got[backend.ProbeVersioning].Detail; !strings.Contains(d, "deleted generation is kept") {
		t.Errorf("Probe() versioning detail = %q, want the kept generation checked", d)
	}
	noObjects(t, w.client(t))

	_, calls, err := s.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, c := range calls {
		ops = append(ops, c.Operation+" "+c.Outcome)
	}
	wantOps := []string{
		"buckets.get read",
		"objects.insert written", "objects.insert refused", // conditional_write
		"objects.insert written", "objects.delete deleted", "objects.get read", "objects.insert written", // after delete
		"objects.delete deleted", "objects.delete deleted", "objects.delete deleted", // clean-up
	}
	if !slices.Equal(ops, wantOps) {
		t.Errorf("Probe() calls = %q, want %q", ops, wantOps)
	}
}

// With the fields the fake drops kept, every probe but object_lock passes.
func TestProbeComplete(t *testing.T) {
	w := newWorld(t, true)
	s := w.open(t, testSpec())
	create(t, s)
	checkProbe(t, probe(t, s), map[string]bool{
		backend.ProbeConditionalWrite:     true,
		backend.ProbeConditionalAfterMark: true,
		backend.ProbeVersioning:           true,
		backend.ProbeEncryption:           true,
		backend.ProbeObjectLock:           false,
		backend.ProbeCreateTags:           true,
		backend.ProbePublicAccessBlock:    true,
	})
	noObjects(t, w.client(t))

	// Object ACLs allowed again: public access prevention alone does not
	// pass.
	u := storage.BucketAttrsToUpdate{VersioningEnabled: true, UniformBucketLevelAccess: &storage.UniformBucketLevelAccess{Enabled: false}}
	if _, err := w.client(t).Bucket(bucket).Update(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if got := probe(t, s)[backend.ProbePublicAccessBlock]; got.OK || !strings.Contains(got.Detail, "uniform bucket-level access off") {
		t.Errorf("Probe() %s with uniform access off = %+v, want it failed", backend.ProbePublicAccessBlock, got)
	}
}

// A bucket that says it keeps versions but loses a deleted generation fails
// the versioning probe.
func TestProbeDeletedGenerationLost(t *testing.T) {
	w := newWorld(t, true)
	w.proxy.mu.Lock()
	w.proxy.loseGenerations = true
	w.proxy.mu.Unlock()
	s := w.open(t, testSpec())
	create(t, s)
	got := probe(t, s)[backend.ProbeVersioning]
	if got.OK || !strings.Contains(got.Detail, "not kept") {
		t.Errorf("Probe() versioning = %+v, want it failed: a deleted generation was not kept", got)
	}
}

func TestProbeUnversioned(t *testing.T) {
	w := newWorld(t, true)
	spec := openbaoSpec()
	spec.Versioning = false
	s := w.open(t, spec)
	create(t, s)
	got := probe(t, s)
	checkProbe(t, got, map[string]bool{
		backend.ProbeConditionalWrite:     true,
		backend.ProbeConditionalAfterMark: true,
		backend.ProbeVersioning:           false,
		backend.ProbeEncryption:           true, // Google-managed, as asked
		backend.ProbeObjectLock:           false,
		backend.ProbeCreateTags:           true,
		backend.ProbePublicAccessBlock:    true,
	})
	if d := got[backend.ProbeConditionalAfterMark].Detail; !strings.Contains(d, "unversioned") {
		t.Errorf("Probe() %s detail = %q, want it to say the bucket is unversioned", backend.ProbeConditionalAfterMark, d)
	}
	noObjects(t, w.client(t))
}

func TestProbeMissingBucket(t *testing.T) {
	w := newWorld(t, false)
	results, calls, err := w.open(t, testSpec()).Probe(context.Background())
	if !errors.Is(err, storage.ErrBucketNotExist) {
		t.Fatalf("Probe() of a missing bucket = %v, %v, want storage.ErrBucketNotExist", results, err)
	}
	if got := brief(calls); !slices.Equal(got, []string{"storage buckets.get missing " + selfLink}) {
		t.Errorf("Probe() calls = %q", got)
	}
}

func verify(t *testing.T, s *gcs.Store, keyID string) []string {
	t.Helper()
	findings, _, err := s.Verify(context.Background(), keyID)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var out []string
	for _, f := range findings {
		out = append(out, f.Check+" "+f.Resource)
	}
	slices.Sort(out)
	return out
}

func checkFindings(t *testing.T, step string, got []string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: Verify() findings = %q, want %q", step, got, want)
	}
}

func TestVerifyDrift(t *testing.T) {
	w := newWorld(t, true)
	s := w.open(t, testSpec())
	p := create(t, s)
	ctx := context.Background()
	findings, calls, err := s.Verify(ctx, p.Key)
	if err != nil || len(findings) != 0 {
		t.Fatalf("Verify() after Create = %v, %v, want no findings", findings, err)
	}
	if got, want := brief(calls), []string{"storage buckets.get read " + selfLink, "cloudkms GetCryptoKey read " + stateKey}; !slices.Equal(got, want) {
		t.Errorf("Verify() calls = %q, want %q", got, want)
	}

	b := w.client(t).Bucket(bucket)
	if _, err := b.Update(ctx, storage.BucketAttrsToUpdate{VersioningEnabled: false}); err != nil {
		t.Fatal(err)
	}
	checkFindings(t, "versioning off", verify(t, s, p.Key), "versioning "+selfLink)

	checkFindings(t, "another key recorded", verify(t, s, stateKey+"-old"), "versioning "+selfLink, "key "+selfLink, "key "+stateKey+"-old")

	if _, err := b.Update(ctx, storage.BucketAttrsToUpdate{VersioningEnabled: true, PublicAccessPrevention: storage.PublicAccessPreventionInherited}); err != nil {
		t.Fatal(err)
	}
	checkFindings(t, "public access prevention inherited", verify(t, s, p.Key), "public_access "+selfLink)

	u := storage.BucketAttrsToUpdate{PublicAccessPrevention: storage.PublicAccessPreventionEnforced, VersioningEnabled: true}
	u.DeleteLabel("cost_center")
	u.SetLabel("env", "prod")
	if _, err := b.Update(ctx, u); err != nil {
		t.Fatal(err)
	}
	findings, _, err = s.Verify(ctx, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	var details []string
	for _, f := range findings {
		details = append(details, f.String())
	}
	want := []string{
		"tags: " + selfLink + `: label cost_center is missing`,
		"tags: " + selfLink + `: label env is "prod", want "dev"`,
	}
	if !slices.Equal(details, want) {
		t.Errorf("labels changed: Verify() = %q, want %q", details, want)
	}
}

// Against fake-gcs-server as it is, the fields it drops are drift.
func TestVerifyFakeGaps(t *testing.T) {
	w := newWorld(t, false)
	s := w.open(t, testSpec())
	p := create(t, s)
	got := verify(t, s, p.Key)
	checkFindings(t, "fake-gcs-server", got,
		"encryption "+selfLink, "public_access "+selfLink, "public_access "+selfLink,
		"tags "+selfLink, "tags "+selfLink, "tags "+selfLink)
}

func TestVerifyMissingBucket(t *testing.T) {
	w := newWorld(t, false)
	w.kms.addKey(stateKey, &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT,
		RotationSchedule: &kmspb.CryptoKey_RotationPeriod{RotationPeriod: durationpb.New(90 * 24 * time.Hour)}})
	checkFindings(t, "no bucket", verify(t, w.open(t, testSpec()), stateKey), "bucket "+selfLink)
}

func TestVerifyKeyRotation(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  *kmspb.CryptoKey // nil: no key
		want []string
	}{
		{"90 days", &kmspb.CryptoKey{RotationSchedule: &kmspb.CryptoKey_RotationPeriod{RotationPeriod: durationpb.New(90 * 24 * time.Hour)}}, nil},
		{"30 days", &kmspb.CryptoKey{RotationSchedule: &kmspb.CryptoKey_RotationPeriod{RotationPeriod: durationpb.New(30 * 24 * time.Hour)}}, nil},
		{"no rotation", &kmspb.CryptoKey{}, []string{"key_rotation " + stateKey}},
		{"a year", &kmspb.CryptoKey{RotationSchedule: &kmspb.CryptoKey_RotationPeriod{RotationPeriod: durationpb.New(365 * 24 * time.Hour)}}, []string{"key_rotation " + stateKey}},
		{"no key", nil, []string{"key " + stateKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, true)
			if tc.key != nil {
				tc.key.Purpose = kmspb.CryptoKey_ENCRYPT_DECRYPT
				w.kms.addKey(stateKey, tc.key)
			}
			// The bucket alone, made as Create would make it.
			s := w.open(t, openbaoSpec())
			create(t, s)
			w.proxy.mu.Lock()
			w.proxy.kept[bucket]["encryption"] = map[string]any{"defaultKmsKeyName": stateKey}
			w.proxy.mu.Unlock()
			checkFindings(t, tc.name, verify(t, w.open(t, testSpec()), stateKey), tc.want...)
		})
	}
}

func TestLabels(t *testing.T) {
	got, err := gcs.Labels(map[string]string{"Owner": "Platform Team", "cost.center": "42", "app-name_1": "a-b_c", "Zone": "Zürich", "empty": ""})
	want := map[string]string{"owner": "platform_team", "cost_center": "42", "app-name_1": "a-b_c", "zone": "z_rich", "empty": ""}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("Labels() = %v, %v, want %v", got, err, want)
	}
	long := strings.Repeat("a", 64)
	many := map[string]string{}
	for i := range 65 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	for _, tags := range []map[string]string{
		{"1st": "x"},
		{"_x": "x"},
		{"": "x"},
		{long: "x"},
		{"k": long},
		{"Env": "a", "env": "b"},
		{"a.b": "1", "a_b": "2"},
		many,
	} {
		if got, err := gcs.Labels(tags); err == nil {
			t.Errorf("Labels(%.60v) = %v, want an error", tags, got)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	clearEnv(t)
	replica := func(r backend.Replica) func(*backend.Spec) {
		return func(s *backend.Spec) { s.Replica = &r }
	}
	for _, tc := range []struct {
		name string
		edit func(*backend.Spec)
		want string // in the error
	}{
		{"kind s3", func(s *backend.Spec) { s.Kind = backend.KindS3 }, "not gcs"},
		{"no project", func(s *backend.Spec) { s.Project = "" }, "needs a project"},
		{"key name without ring", func(s *backend.Spec) { s.Key.Name = "gz-state" }, "KEYRING/KEY"},
		{"key name with two slashes", func(s *backend.Spec) { s.Key.Name = "a/b/c" }, "KEYRING/KEY"},
		{"key name with a space", func(s *backend.Spec) { s.Key.Name = "ring/my key" }, "KEYRING/KEY"},
		{"negative rotation", func(s *backend.Spec) { s.Key.RotationDays = -1 }, "rotation_days"},
		{"rotation beyond 100 years", func(s *backend.Spec) { s.Key.RotationDays = 36501 }, "rotation_days"},
		{"tag that is no label", func(s *backend.Spec) { s.Tags = map[string]string{"9lives": "x"} }, "start with a letter"},
		{"replica across continents", replica(backend.Replica{Region: "us-east1"}), "multi-regions"},
		{"replica in the same region", replica(backend.Replica{Region: "europe-west1"}), "own region"},
		{"replica bucket", replica(backend.Replica{Region: "europe-north1", Bucket: "other"}), "replica.bucket"},
		{"replica role", replica(backend.Replica{Region: "europe-north1", Role: "arn:aws:iam::1:role/r"}), "replica.role"},
		{"replica key", replica(backend.Replica{Region: "europe-north1", Key: stateKey}), "replica.key"},
	} {
		spec := testSpec()
		tc.edit(&spec)
		s, err := gcs.New(context.Background(), spec, gcs.Options{StorageEndpoint: "http://127.0.0.1:1", KMSEndpoint: "http://127.0.0.1:1"})
		if err == nil {
			s.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%s) = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	s, err := gcs.New(context.Background(), testSpec(), gcs.Options{StorageEndpoint: "http://127.0.0.1:1", KMSEndpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatalf("New(valid spec) = %v", err)
	}
	s.Close()
}
