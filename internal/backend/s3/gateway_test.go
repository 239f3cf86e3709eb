package s3_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/backend/s3"
	"github.com/groundzero/groundzero/internal/s3gateway"
)

// gatewaySpec is a MinIO-kind spec for a bucket on the gateway at endpoint.
func gatewaySpec(endpoint, bucket string, versioning bool) backend.Spec {
	return backend.Spec{
		Kind: backend.KindMinIO, Env: "prod", Bucket: bucket, Prefix: "states", Endpoint: endpoint,
		Lock: backend.LockFile, Versioning: versioning,
		Tags: map[string]string{"owner": "platform", "cost-center": "42"},
	}
}

func open(t *testing.T, spec backend.Spec) *s3.Store {
	t.Helper()
	st, err := s3.New(context.Background(), spec, s3.Options{})
	if err != nil {
		t.Fatalf("New(%+v) = %v", spec, err)
	}
	return st
}

func outcomes(calls []backend.Call) map[string]int {
	n := map[string]int{}
	for _, c := range calls {
		n[c.Outcome]++
	}
	return n
}

func results(t *testing.T, got []backend.ProbeResult) map[string]backend.ProbeResult {
	t.Helper()
	if len(got) != len(backend.Probes) {
		t.Fatalf("Probe gave %d results, want %d: %+v", len(got), len(backend.Probes), got)
	}
	m := map[string]backend.ProbeResult{}
	for i, r := range got {
		if r.Name != backend.Probes[i] {
			t.Fatalf("probe result %d is %s, want %s (backend.Probes order)", i, r.Name, backend.Probes[i])
		}
		m[r.Name] = r
	}
	return m
}

// probeLeftovers lists every version and delete marker under the probe
// folder.
func probeLeftovers(t *testing.T, c *awss3.Client, bucket string) []string {
	t.Helper()
	out, err := c.ListObjectVersions(context.Background(), &awss3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("states/.groundzero-probe/")})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, v := range out.Versions {
		left = append(left, aws.ToString(v.Key)+"@"+aws.ToString(v.VersionId))
	}
	for _, m := range out.DeleteMarkers {
		left = append(left, aws.ToString(m.Key)+"@marker")
	}
	return left
}

// Create makes the bucket once; a second run finds everything and creates
// nothing. The gateway's 501s are recorded, not fatal.
func TestGatewayCreateIdempotent(t *testing.T) {
	s3gateway.UseEnv(t)
	g := s3gateway.Start(t)
	spec := gatewaySpec(g.Endpoint, "state-idem", true)
	st := open(t, spec)
	ctx := context.Background()

	first, err := st.Create(ctx)
	if err != nil {
		t.Fatalf("Create #1 = %v; calls %+v", err, first.Calls)
	}
	if want := g.Endpoint + "/state-idem"; first.Bucket != want || first.Key != "" || first.Lock != "" {
		t.Fatalf("Create #1 = bucket %q key %q lock %q, want %q, no key, no lock table", first.Bucket, first.Key, first.Lock, want)
	}
	n := outcomes(first.Calls)
	if n["created"] < 3 || n["unsupported"] == 0 || n["failed"] != 0 {
		t.Fatalf("Create #1 outcomes = %v, want bucket, versioning and policy created and the gateway's gaps unsupported; calls %+v", n, first.Calls)
	}
	for _, c := range first.Calls {
		if c.Service != "s3" || c.Operation == "" || c.Resource != first.Bucket {
			t.Errorf("Create #1 call %+v: want service s3, an operation and resource %s", c, first.Bucket)
		}
		if c.RequestID == "" && c.Outcome != "missing" {
			t.Errorf("Create #1 call %+v has no request ID", c)
		}
	}
	ver, err := g.Client().GetBucketVersioning(ctx, &awss3.GetBucketVersioningInput{Bucket: aws.String("state-idem")})
	if err != nil || ver.Status != s3types.BucketVersioningStatusEnabled {
		t.Fatalf("after Create, GetBucketVersioning = %v, %v; want Enabled", ver, err)
	}
	tags, err := g.Client().GetBucketTagging(ctx, &awss3.GetBucketTaggingInput{Bucket: aws.String("state-idem")})
	if err != nil || len(tags.TagSet) != 2 {
		t.Fatalf("after Create, GetBucketTagging = %v, %v; want the spec's 2 tags", tags, err)
	}

	second, err := open(t, spec).Create(ctx)
	if err != nil {
		t.Fatalf("Create #2 = %v", err)
	}
	n = outcomes(second.Calls)
	if n["created"] != 0 || n["updated"] != 0 || n["exists"] == 0 {
		t.Fatalf("Create #2 outcomes = %v, want nothing created or updated; calls %+v", n, second.Calls)
	}
	if second.Bucket != first.Bucket {
		t.Fatalf("Create #2 bucket = %q, want %q", second.Bucket, first.Bucket)
	}
}

// On a versioned bucket the gateway refuses If-None-Match: * over a delete
// marker: the probe must catch that defect. The probe cleans up after
// itself.
func TestGatewayProbeVersionedCatchesDeleteMarkerDefect(t *testing.T) {
	s3gateway.UseEnv(t)
	g := s3gateway.Start(t)
	st := open(t, gatewaySpec(g.Endpoint, "state-versioned", true))
	ctx := context.Background()
	if _, err := st.Create(ctx); err != nil {
		t.Fatal(err)
	}
	got, calls, err := st.Probe(ctx)
	if err != nil {
		t.Fatalf("Probe = %v; calls %+v", err, calls)
	}
	r := results(t, got)
	for name, ok := range map[string]bool{
		backend.ProbeConditionalWrite:     true,
		backend.ProbeConditionalAfterMark: false,
		backend.ProbeVersioning:           true,
		backend.ProbeEncryption:           false,
		backend.ProbeObjectLock:           false,
		backend.ProbeCreateTags:           true,
		backend.ProbePublicAccessBlock:    false,
	} {
		if r[name].OK != ok || r[name].Detail == "" {
			t.Errorf("probe %s = %+v, want OK %v with a detail", name, r[name], ok)
		}
	}
	if d := r[backend.ProbeConditionalAfterMark].Detail; !strings.Contains(d, "delete marker") || !strings.Contains(d, "412") {
		t.Errorf("conditional_write_after_delete detail = %q, want the delete marker and the store's 412", d)
	}
	for _, name := range []string{backend.ProbeEncryption, backend.ProbePublicAccessBlock} {
		if d := r[name].Detail; !strings.Contains(d, "501") {
			t.Errorf("probe %s detail = %q, want the store's 501 answer", name, d)
		}
	}
	if n := outcomes(calls); n["written"] < 2 || n["refused"] < 2 || n["deleted"] < 3 {
		t.Errorf("Probe call outcomes = %v, want probe writes, refusals and deletes recorded; calls %+v", n, calls)
	}
	if left := probeLeftovers(t, g.Client(), "state-versioned"); len(left) != 0 {
		t.Errorf("the probe left %v behind", left)
	}
	for _, c := range calls {
		if strings.Contains(c.Resource, "terraform.tfstate") {
			t.Errorf("the probe touched the state key: %+v", c)
		}
	}
}

// On an unversioned bucket conditional writes pass, after a delete too.
func TestGatewayProbeUnversioned(t *testing.T) {
	s3gateway.UseEnv(t)
	g := s3gateway.Start(t)
	st := open(t, gatewaySpec(g.Endpoint, "state-plain", false))
	ctx := context.Background()
	if _, err := st.Create(ctx); err != nil {
		t.Fatal(err)
	}
	got, calls, err := st.Probe(ctx)
	if err != nil {
		t.Fatalf("Probe = %v; calls %+v", err, calls)
	}
	r := results(t, got)
	if !r[backend.ProbeConditionalWrite].OK {
		t.Errorf("conditional_write = %+v, want OK", r[backend.ProbeConditionalWrite])
	}
	if res := r[backend.ProbeConditionalAfterMark]; !res.OK || !strings.Contains(res.Detail, "not versioned") {
		t.Errorf("conditional_write_after_delete = %+v, want OK, saying the bucket is not versioned", res)
	}
	if r[backend.ProbeVersioning].OK {
		t.Errorf("versioning = %+v on an unversioned bucket, want a failure", r[backend.ProbeVersioning])
	}
	if left := probeLeftovers(t, g.Client(), "state-plain"); len(left) != 0 {
		t.Errorf("the probe left %v behind", left)
	}
}

// Verify finds nothing on a fresh store and reports versioning suspended
// behind its back; the gateway's missing features are not drift on minio.
func TestGatewayVerifyVersioningDrift(t *testing.T) {
	s3gateway.UseEnv(t)
	g := s3gateway.Start(t)
	st := open(t, gatewaySpec(g.Endpoint, "state-drift", true))
	ctx := context.Background()
	if _, err := st.Create(ctx); err != nil {
		t.Fatal(err)
	}
	findings, calls, err := st.Verify(ctx, "")
	if err != nil || len(findings) != 0 {
		t.Fatalf("Verify of a fresh store = %v, %v; want no findings; calls %+v", findings, err, calls)
	}
	if _, err := g.Client().PutBucketVersioning(ctx, &awss3.PutBucketVersioningInput{Bucket: aws.String("state-drift"),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusSuspended}}); err != nil {
		t.Fatal(err)
	}
	findings, _, err = st.Verify(ctx, "")
	if err != nil || len(findings) != 1 {
		t.Fatalf("Verify after suspending versioning = %v, %v; want one finding", findings, err)
	}
	f := findings[0]
	if f.Check != "versioning" || f.Resource != g.Endpoint+"/state-drift" || !strings.Contains(f.Detail, "Suspended") || !strings.Contains(f.Detail, "Status=Enabled") {
		t.Fatalf("finding = %+v, want versioning Suspended on the bucket, with the fix", f)
	}
	// A deleted bucket is the one finding left.
	if _, err := g.Client().DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: aws.String("state-drift")}); err != nil {
		t.Fatal(err)
	}
	findings, _, err = st.Verify(ctx, "")
	if err != nil || len(findings) != 1 || findings[0].Check != "bucket" {
		t.Fatalf("Verify of a deleted bucket = %v, %v; want one bucket finding", findings, err)
	}
}

// A proxy in front of the store that drops If-None-Match (and re-signs the
// request, as a credentialed gateway would) lets a second writer overwrite:
// the probe fails conditional_write (T28).
func TestGatewayProbeCatchesStrippedConditionalWrite(t *testing.T) {
	s3gateway.UseEnv(t)
	g := s3gateway.Start(t)
	target, _ := url.Parse(g.Endpoint)
	var stripped atomic.Int32
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: s3gateway.AccessKey, SecretAccessKey: s3gateway.SecretKey}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			out := pr.Out
			out.Host = target.Host
			if out.Method == http.MethodPut && out.Header.Get("If-None-Match") != "" {
				out.Header.Del("If-None-Match")
				stripped.Add(1)
			}
			out.Header.Del("Authorization")
			out.Header.Del("X-Forwarded-For")
			if err := signer.SignHTTP(out.Context(), creds, out, out.Header.Get("X-Amz-Content-Sha256"), "s3", "us-east-1", time.Now()); err != nil {
				t.Errorf("re-signing %s %s: %v", out.Method, out.URL, err)
			}
		},
	}
	srv := httptest.NewServer(proxy)
	defer srv.Close()

	spec := gatewaySpec(srv.URL, "state-t28", false)
	st := open(t, spec)
	ctx := context.Background()
	if _, err := st.Create(ctx); err != nil {
		t.Fatal(err)
	}
	got, calls, err := st.Probe(ctx)
	if err != nil {
		t.Fatalf("Probe through the proxy = %v; calls %+v", err, calls)
	}
	if stripped.Load() == 0 {
		t.Fatal("the proxy saw no If-None-Match to strip")
	}
	r := results(t, got)
	if res := r[backend.ProbeConditionalWrite]; res.OK || !strings.Contains(res.Detail, "overwrote") {
		t.Fatalf("conditional_write through a proxy that drops If-None-Match = %+v, want a failure saying it overwrote", res)
	}

	// The same bucket straight on the gateway passes.
	direct := spec
	direct.Endpoint = g.Endpoint
	got, _, err = open(t, direct).Probe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res := results(t, got)[backend.ProbeConditionalWrite]; !res.OK {
		t.Fatalf("conditional_write straight on the gateway = %+v, want OK", res)
	}
}
