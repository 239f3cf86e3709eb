package oci_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/backend/oci"
)

const keyID = "ocid1.key.oc1.iad.statekey"

func newBuckets(t *testing.T, spec backend.Spec, url string) *oci.Buckets {
	t.Helper()
	b, err := oci.NewBuckets(spec, oci.Options{ConfigProvider: provider(), ObjectStorageEndpoint: url})
	if err != nil {
		t.Fatalf("NewBuckets = %v", err)
	}
	return b
}

// newRefusing is a server that refuses every request as unauthenticated.
func newRefusing(t *testing.T) *httptest.Server {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("opc-request-id", fmt.Sprintf("refused-%d", n))
		writeJSON(w, http.StatusUnauthorized, map[string]string{"code": "NotAuthenticated", "message": "The required information to complete\nauthentication was not provided."})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A missing bucket is made versioned, encrypted with the key, closed to the
// public and tagged, all in the create request.
func TestBucketsCreate(t *testing.T) {
	ocienv(t)
	f, srv := newOS(t)
	b := newBuckets(t, keySpec(""), srv.URL)
	p, err := b.Create(context.Background(), keyID)
	if err != nil {
		t.Fatal(err)
	}
	want := &backend.Provisioned{Bucket: "ocid1.bucket.oc1.iad.tfstate", Key: keyID, Calls: []backend.Call{
		{Service: "objectstorage", Operation: "GetBucket", RequestID: "os-1", Resource: "/n/testns/b/tfstate", Outcome: "missing"},
		{Service: "objectstorage", Operation: "CreateBucket", RequestID: "os-2", Resource: "ocid1.bucket.oc1.iad.tfstate", Outcome: "created"},
	}}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("Create = %+v, want %+v", p, want)
	}
	body := map[string]any{
		"name": "tfstate", "compartmentId": compartment, "publicAccessType": "NoPublicAccess",
		"versioning": "Enabled", "kmsKeyId": keyID, "freeformTags": map[string]any{"env": "prod", "owner": "platform"},
	}
	if len(f.creates) != 1 || !reflect.DeepEqual(f.creates[0], body) {
		t.Fatalf("CreateBucket bodies = %v, want one %v", f.creates, body)
	}
	fs, calls, err := b.Verify(context.Background(), keyID)
	if err != nil || len(fs) != 0 {
		t.Fatalf("Verify(new bucket) = %+v, %v, want no findings", fs, err)
	}
	if wc := []backend.Call{{Service: "objectstorage", Operation: "GetBucket", RequestID: "os-3", Resource: "ocid1.bucket.oc1.iad.tfstate", Outcome: "read"}}; !reflect.DeepEqual(calls, wc) {
		t.Fatalf("Verify calls = %+v, want %+v", calls, wc)
	}
}

// A second run finds the bucket and makes nothing.
func TestBucketsCreateIdempotent(t *testing.T) {
	ocienv(t)
	f, srv := newOS(t)
	b := newBuckets(t, keySpec(""), srv.URL)
	if _, err := b.Create(context.Background(), keyID); err != nil {
		t.Fatal(err)
	}
	p, err := b.Create(context.Background(), keyID)
	if err != nil {
		t.Fatal(err)
	}
	want := []backend.Call{{Service: "objectstorage", Operation: "GetBucket", RequestID: "os-3", Resource: "ocid1.bucket.oc1.iad.tfstate", Outcome: "exists"}}
	if p.Bucket != "ocid1.bucket.oc1.iad.tfstate" || !reflect.DeepEqual(p.Calls, want) {
		t.Fatalf("second Create = %+v, want the bucket and %+v", p, want)
	}
	if len(f.creates) != 1 {
		t.Fatalf("%d CreateBucket calls after two runs, want 1", len(f.creates))
	}
}

// When another run makes the bucket between the read and the create, the
// conflict is read as the bucket existing.
func TestBucketsCreateLostRace(t *testing.T) {
	ocienv(t)
	f, srv := newOS(t)
	f.raceNext = true
	b := newBuckets(t, keySpec(""), srv.URL)
	p, err := b.Create(context.Background(), keyID)
	if err != nil {
		t.Fatal(err)
	}
	want := []backend.Call{
		{Service: "objectstorage", Operation: "GetBucket", RequestID: "os-1", Resource: "/n/testns/b/tfstate", Outcome: "missing"},
		{Service: "objectstorage", Operation: "CreateBucket", RequestID: "os-2", Resource: "/n/testns/b/tfstate", Outcome: "failed"},
		{Service: "objectstorage", Operation: "GetBucket", RequestID: "os-3", Resource: "ocid1.bucket.oc1.iad.tfstate", Outcome: "exists"},
	}
	if p.Bucket != "ocid1.bucket.oc1.iad.tfstate" || !reflect.DeepEqual(p.Calls, want) {
		t.Fatalf("Create after a lost race = %+v, want the bucket and %+v", p, want)
	}
}

// Without versioning in the spec and without a key, the bucket is made
// unversioned with Oracle-managed encryption, and still closed to the
// public.
func TestBucketsCreatePlain(t *testing.T) {
	ocienv(t)
	f, srv := newOS(t)
	spec := keySpec("")
	spec.Versioning = false
	spec.Tags = nil
	b := newBuckets(t, spec, srv.URL)
	if _, err := b.Create(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"name": "tfstate", "compartmentId": compartment, "publicAccessType": "NoPublicAccess", "versioning": "Disabled"}
	if len(f.creates) != 1 || !reflect.DeepEqual(f.creates[0], body) {
		t.Fatalf("CreateBucket bodies = %v, want one %v", f.creates, body)
	}
}

func TestBucketsVerify(t *testing.T) {
	ocienv(t)
	f, srv := newOS(t)
	b := newBuckets(t, keySpec(""), srv.URL)
	const id = "ocid1.bucket.oc1.iad.tfstate"
	good := func() map[string]any {
		return bucketFrom(map[string]any{
			"name": "tfstate", "compartmentId": compartment, "publicAccessType": "NoPublicAccess", "versioning": "Enabled",
			"kmsKeyId": keyID, "freeformTags": map[string]any{"env": "prod", "owner": "platform", "extra": "x"},
		})
	}
	for _, c := range []struct {
		name   string
		change func(map[string]any)
		want   []backend.Finding
	}{
		{"good", func(map[string]any) {}, nil},
		{"suspended", func(m map[string]any) { m["versioning"] = "Suspended" },
			[]backend.Finding{{Check: "versioning", Resource: id, Detail: `versioning is "Suspended", not Enabled`}}},
		{"other key", func(m map[string]any) { m["kmsKeyId"] = "ocid1.key.oc1.iad.other" },
			[]backend.Finding{{Check: "encryption", Resource: id, Detail: "the bucket is encrypted with ocid1.key.oc1.iad.other, not " + keyID}}},
		{"oracle key", func(m map[string]any) { delete(m, "kmsKeyId") },
			[]backend.Finding{{Check: "encryption", Resource: id, Detail: "the bucket is encrypted with an Oracle-managed key, not " + keyID}}},
		{"public", func(m map[string]any) { m["publicAccessType"] = "ObjectRead" },
			[]backend.Finding{{Check: "public_access", Resource: id, Detail: `public access is "ObjectRead", not NoPublicAccess`}}},
		{"tags", func(m map[string]any) { m["freeformTags"] = map[string]any{"env": "dev"} },
			[]backend.Finding{{Check: "tags", Resource: id, Detail: `tag env is "dev", not "prod"`}, {Check: "tags", Resource: id, Detail: "tag owner is missing"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := good()
			c.change(m)
			f.mu.Lock()
			f.buckets["tfstate"] = m
			f.mu.Unlock()
			fs, calls, err := b.Verify(context.Background(), keyID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fs, c.want) {
				t.Errorf("Verify = %+v, want %+v", fs, c.want)
			}
			if len(calls) != 1 || calls[0].Operation != "GetBucket" || calls[0].RequestID == "" {
				t.Errorf("Verify calls = %+v, want one GetBucket with a request ID", calls)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		f.mu.Lock()
		delete(f.buckets, "tfstate")
		f.mu.Unlock()
		fs, _, err := b.Verify(context.Background(), keyID)
		want := []backend.Finding{{Check: "bucket", Resource: "/n/testns/b/tfstate", Detail: "the bucket does not exist or is not visible to these credentials"}}
		if err != nil || !reflect.DeepEqual(fs, want) {
			t.Fatalf("Verify(missing) = %+v, %v, want %+v", fs, err, want)
		}
	})
}

func TestBucketsServiceError(t *testing.T) {
	ocienv(t)
	srv := newRefusing(t)
	b := newBuckets(t, keySpec(""), srv.URL)
	p, err := b.Create(context.Background(), keyID)
	want := "objectstorage: GetBucket /n/testns/b/tfstate: 401 NotAuthenticated: The required information to complete authentication was not provided. (opc-request-id refused-1)"
	calls := []backend.Call{{Service: "objectstorage", Operation: "GetBucket", RequestID: "refused-1", Resource: "/n/testns/b/tfstate", Outcome: "failed"}}
	if err == nil || err.Error() != want || p == nil || p.Bucket != "" || !reflect.DeepEqual(p.Calls, calls) {
		t.Fatalf("Create = %+v, %v, want %q and the failed call %+v", p, err, want, calls)
	}
}

func TestNewBucketsRejects(t *testing.T) {
	ocienv(t)
	for _, c := range []struct {
		name   string
		change func(*backend.Spec, *oci.Options)
	}{
		{"no provider", func(_ *backend.Spec, o *oci.Options) { o.ConfigProvider = nil }},
		{"no namespace", func(s *backend.Spec, _ *oci.Options) { s.Namespace = "" }},
		{"no compartment", func(s *backend.Spec, _ *oci.Options) { s.Compartment = "" }},
		{"no bucket", func(s *backend.Spec, _ *oci.Options) { s.Bucket = "" }},
		{"plain http", func(_ *backend.Spec, o *oci.Options) { o.ObjectStorageEndpoint = "http://objectstorage.example.com" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, opt := keySpec(""), oci.Options{ConfigProvider: provider()}
			c.change(&spec, &opt)
			if _, err := oci.NewBuckets(spec, opt); err == nil {
				t.Fatal("NewBuckets = nil error, want one")
			}
		})
	}
}

// The signing key never leaves in a Call, a Finding, an error or a log
// line, nor when Options, Keys or Buckets are printed.
func TestSigningKeyNeverLeaks(t *testing.T) {
	ocienv(t)
	_, kms := newKMS(t)
	_, os := newOS(t)
	opt := oci.Options{ConfigProvider: provider(), ManagementEndpoint: kms.URL, ObjectStorageEndpoint: os.URL}
	k, err := oci.NewKeys(keySpec(""), opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := oci.NewBuckets(keySpec(""), opt)
	if err != nil {
		t.Fatal(err)
	}
	id, kcalls, err := k.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	kfs, kcalls2, err := k.Check(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Create(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	bfs, bcalls, err := b.Verify(context.Background(), "ocid1.key.oc1.iad.other")
	if err != nil || len(bfs) == 0 {
		t.Fatalf("Verify(other key) = %v, %v, want a finding", bfs, err)
	}
	refused := newRefusing(t)
	kr, err := oci.NewKeys(keySpec(refused.URL), oci.Options{ConfigProvider: provider()})
	if err != nil {
		t.Fatal(err)
	}
	_, _, errK := kr.Ensure(context.Background())
	_, _, errC := kr.Check(context.Background(), id)
	if errK == nil || errC == nil {
		t.Fatal("a refusing server gave no error")
	}
	out, err := json.Marshal([]any{kcalls, kfs, kcalls2, p, bfs, bcalls})
	if err != nil {
		t.Fatal(err)
	}
	all := []string{string(out), errK.Error(), errC.Error(),
		fmt.Sprintf("%v %+v %#v %s", opt, opt, opt, &opt),
		fmt.Sprintf("%v %+v %#v %v %+v %#v", k, k, k, *k, *k, *k),
		fmt.Sprintf("%v %+v %#v %v %+v %#v", b, b, b, *b, *b, *b),
	}
	var log bytes.Buffer
	slog.New(slog.NewJSONHandler(&log, nil)).Info("oci", "opt", opt, "keys", k, "buckets", b)
	slog.New(slog.NewTextHandler(&log, nil)).Info("oci", "opt", opt, "keys", k, "buckets", b)
	all = append(all, log.String())
	if s := strings.Join(all, "\n"); strings.Contains(s, keyMaterial()) || strings.Contains(s, "PRIVATE KEY") {
		t.Fatalf("the signing key leaked:\n%s", s)
	}
}
