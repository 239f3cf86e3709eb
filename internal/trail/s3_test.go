package trail_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/groundzero/groundzero/internal/s3gateway"
	"github.com/groundzero/groundzero/internal/trail"
)

func openS3(t *testing.T, raw string) *trail.S3 {
	t.Helper()
	u, _ := url.Parse(raw)
	s, err := trail.OpenS3(context.Background(), u, trail.S3Options{RetentionDays: 2555})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestS3AppendVerifyExport(t *testing.T) {
	s3gateway.UseEnv(t)
	g := s3gateway.Start(t)
	g.Bucket(t, "evidence", false)
	f := newFixture(t)
	s := openS3(t, g.URL("evidence", "trail"))
	if s.ObjectLock() {
		t.Fatal("plain bucket reported Object Lock")
	}
	now := time.Now()
	appendN(t, s, 5, now)
	old := f.checkpoint(t, s, now)
	appendN(t, s, 2, now)
	f.checkpoint(t, s, now)
	if rep := f.verify(t, s, old); !rep.OK() || rep.Entries != 7 || rep.CheckpointsValid != 2 {
		t.Fatalf("Verify = %+v", rep)
	}
	// Export a local trail to a fresh prefix, twice.
	local, _ := trail.OpenDir(t.TempDir())
	appendN(t, local, 9, now)
	f.checkpoint(t, local, now)
	dst := openS3(t, g.URL("evidence", "exported"))
	for i, want := range []int64{9, 0} {
		res, err := trail.Export(context.Background(), local, dst, trail.ExportOptions{AllowNoObjectLock: true})
		if err != nil || res.Entries != want || res.ObjectLock {
			t.Fatalf("Export #%d = %+v, %v; want %d entries, no Object Lock", i+1, res, err, want)
		}
	}
	if rep := f.verify(t, dst, nil); !rep.OK() || rep.Entries != 9 {
		t.Fatalf("exported: %+v", rep)
	}
}

// 8 processes × 250 appends through conditional writes: exactly 2,000
// entries and a valid chain, with no coordinator.
func TestS3ConcurrentAppends(t *testing.T) {
	s3gateway.UseEnv(t)
	g := s3gateway.Start(t)
	g.Bucket(t, "race", false)
	url := g.URL("race", "trail")
	runAppenders(t, url, 8, 250)
	f := newFixture(t)
	s := openS3(t, url)
	f.checkpoint(t, s, time.Now())
	rep := f.verify(t, s, nil)
	if !rep.OK() || rep.Entries != 2000 {
		t.Fatalf("Verify = %d entries, %q; want 2000", rep.Entries, rep.Problem)
	}
}

// In a bucket with Object Lock every exported object carries COMPLIANCE
// retention: the store refuses to delete a retained version or shorten its
// retention.
func TestS3ObjectLockRetention(t *testing.T) {
	s3gateway.UseEnv(t)
	g := s3gateway.Start(t)
	g.Bucket(t, "worm", true)
	f := newFixture(t)
	local, _ := trail.OpenDir(t.TempDir())
	now := time.Now()
	appendN(t, local, 3, now)
	f.checkpoint(t, local, now)
	s := openS3(t, g.URL("worm", "trail"))
	if !s.ObjectLock() {
		t.Fatal("Object Lock bucket not detected")
	}
	if _, err := trail.Export(context.Background(), local, s, trail.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := g.Client()
	key := s.EntryKey(0)
	ver, err := s.EntryVersion(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	ret, err := c.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: aws.String("worm"), Key: aws.String(key), VersionId: aws.String(ver)})
	if err != nil {
		t.Fatal(err)
	}
	if ret.Retention.Mode != types.ObjectLockRetentionModeCompliance || ret.Retention.RetainUntilDate.Before(now.Add(2554*24*time.Hour)) {
		t.Fatalf("retention = %s until %v, want COMPLIANCE for 7 years", ret.Retention.Mode, ret.Retention.RetainUntilDate)
	}
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("worm"), Key: aws.String(key), VersionId: aws.String(ver)})
	if err == nil {
		t.Fatal("deleting a retained version succeeded")
	}
	_, err = c.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: aws.String("worm"), Key: aws.String(key), VersionId: aws.String(ver),
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeCompliance, RetainUntilDate: aws.Time(now.Add(24 * time.Hour))}})
	if err == nil {
		t.Fatal("shortening retention succeeded")
	}
	if rep := f.verify(t, s, nil); !rep.OK() || rep.Entries != 3 {
		t.Fatalf("Verify = %+v", rep)
	}
}

// T28: a store that ignores If-None-Match is refused before any entry is
// written to it.
func TestS3ProbeRefusesStoreIgnoringConditionalWrites(t *testing.T) {
	s3gateway.UseEnv(t)
	var puts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut:
			if r.Header.Get("If-None-Match") != "*" {
				t.Errorf("PUT without If-None-Match: *")
			}
			puts.Add(1)
			w.WriteHeader(http.StatusOK) // and ignores the condition
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse("s3://bucket/trail?path_style=true&endpoint=" + srv.URL)
	_, err := trail.OpenS3(context.Background(), u, trail.S3Options{})
	var ce *trail.CapabilityError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "If-None-Match") {
		t.Fatalf("OpenS3(ignoring store) = %v, want CapabilityError", err)
	}
	if puts.Load() != 3 {
		t.Fatalf("probe made %d PUTs, want 3 (the marker, then the same key twice)", puts.Load())
	}
}

// versionedTrail opens a trail in a new Object Lock bucket of a gateway of
// its own, with entries and checkpoints written the ordinary way: it
// verifies, and the store reads it version by version.
func versionedTrail(t *testing.T, f *fixture, entries ...int) (*s3gateway.Gateway, *trail.S3) {
	t.Helper()
	s3gateway.UseEnv(t)
	g := s3gateway.Start(t)
	g.Bucket(t, "worm", true)
	s := openS3(t, g.URL("worm", "trail"))
	if !s.ObjectLock() || !s.Versioned() {
		t.Fatalf("Object Lock bucket: ObjectLock() = %v, Versioned() = %v, want both", s.ObjectLock(), s.Versioned())
	}
	now := time.Now()
	for _, n := range entries {
		appendN(t, s, n, now)
		f.checkpoint(t, s, now)
	}
	if rep := f.verify(t, s, nil); !rep.OK() || rep.Unanchored() {
		t.Fatalf("Verify(clean versioned trail) = %+v, want OK", rep)
	}
	return g, s
}

func getObject(t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func checkpointKeys(t *testing.T, c *s3.Client, bucket, prefix string) []string {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix + "/checkpoints/")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		if k := aws.ToString(o.Key); strings.HasSuffix(k, ".cp") {
			keys = append(keys, k)
		}
	}
	return keys
}

// T34: a plain PutObject over an entry adds a new current version (Object
// Lock keeps the original only as an older one). A reader of current
// versions would see a rewritten entry; every reader of the store reports
// the key instead.
func TestS3NewVersionOfAnEntryIsTampering(t *testing.T) {
	f := newFixture(t)
	g, s := versionedTrail(t, f, 4, 3)
	ctx := context.Background()
	c := g.Client()
	key := s.EntryKey(3)
	orig := getObject(t, c, "worm", key)
	rewritten := bytes.Replace(orig, []byte(`"subject":"s"`), []byte(`"subject":"x"`), 1)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("worm"), Key: aws.String(key), Body: bytes.NewReader(rewritten)}); err != nil {
		t.Fatalf("plain PutObject over a retained entry: %v (the gateway should accept a new version)", err)
	}
	if got := getObject(t, c, "worm", key); !bytes.Equal(got, rewritten) {
		t.Fatalf("current version = %q, want the rewrite (the threat this test is about)", got)
	}
	var te *trail.TamperError
	_, err := trail.Verify(ctx, s, trail.VerifyConfig{Registry: f.reg, Now: time.Now()})
	if !errors.As(err, &te) || te.Key != key || !strings.Contains(te.Reason, "has 2 versions") {
		t.Fatalf("Verify(entry overwritten) = %v, want TamperError naming %s", err, key)
	}
	if !strings.Contains(err.Error(), key) {
		t.Fatalf("TamperError.Error() = %q, want it to name %s", err, key)
	}
	// A writer in another process (a fresh store) refuses to append.
	fresh := openS3(t, g.URL("worm", "trail"))
	if _, err := trail.Append(ctx, fresh, time.Now(), trail.Event{Action: "x"}); !errors.As(err, &te) || te.Key != key {
		t.Fatalf("Append(onto a tampered trail) = %v, want TamperError naming %s", err, key)
	}
	// And so does an export from it.
	dst, _ := trail.OpenDir(t.TempDir())
	if _, err := trail.Export(ctx, fresh, dst, trail.ExportOptions{AllowNoObjectLock: true}); !errors.As(err, &te) {
		t.Fatalf("Export(from a tampered trail) = %v, want TamperError", err)
	}
}

// T34: a DeleteObject without a version id puts a delete marker on a
// checkpoint: a reader of current versions no longer sees it (a tail
// truncation would then go unnoticed). The marker is tampering.
func TestS3DeleteMarkerIsTampering(t *testing.T) {
	f := newFixture(t)
	g, s := versionedTrail(t, f, 4, 3)
	ctx := context.Background()
	c := g.Client()
	keys := checkpointKeys(t, c, "worm", "trail")
	if len(keys) != 2 {
		t.Fatalf("checkpoints = %q, want 2", keys)
	}
	newest := keys[1]
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("worm"), Key: aws.String(newest)}); err != nil {
		t.Fatalf("DeleteObject without a version id: %v (the gateway should add a delete marker)", err)
	}
	if now := checkpointKeys(t, c, "worm", "trail"); len(now) != 1 {
		t.Fatalf("current checkpoints after the delete = %q, want 1 (the threat this test is about)", now)
	}
	var te *trail.TamperError
	_, err := trail.Verify(ctx, s, trail.VerifyConfig{Registry: f.reg, Now: time.Now()})
	if !errors.As(err, &te) || te.Key != newest || !strings.Contains(te.Reason, "delete marker") {
		t.Fatalf("Verify(checkpoint deleted) = %v, want TamperError naming %s", err, newest)
	}

}

// The version listing is paginated (the gateway returns 1,000 keys a page)
// and an appender that resumes from the count it knows lists only the tail.
func TestS3VersionListingPages(t *testing.T) {
	s3gateway.UseEnv(t)
	f := newFixture(t)
	g := s3gateway.Start(t)
	g.Bucket(t, "worm", true)
	local, _ := trail.OpenDir(t.TempDir())
	now := time.Now()
	var events []trail.Event
	for i := 0; i < 1100; i++ {
		events = append(events, trail.Event{Actor: "alice", Action: "test", Subject: "s"})
	}
	if _, err := trail.Append(context.Background(), local, now, events...); err != nil {
		t.Fatal(err)
	}
	f.checkpoint(t, local, now)
	s := openS3(t, g.URL("worm", "trail"))
	if res, err := trail.Export(context.Background(), local, s, trail.ExportOptions{}); err != nil || res.Entries != 1100 {
		t.Fatalf("Export = %+v, %v", res, err)
	}
	fresh := openS3(t, g.URL("worm", "trail"))
	if rep := f.verify(t, fresh, nil); !rep.OK() || rep.Entries != 1100 || rep.CheckpointsValid != 1 {
		t.Fatalf("Verify = %+v, want 1100 entries", rep)
	}
	appendN(t, fresh, 3, now)
	if n, _, err := fresh.Head(context.Background()); err != nil || n != 1103 {
		t.Fatalf("Head = %d, %v, want 1103", n, err)
	}
}

// Export refuses a target without Object Lock unless governance waives it,
// copies artifacts once, and keeps them under retention.
func TestS3ExportObjectLockAndArtifacts(t *testing.T) {
	s3gateway.UseEnv(t)
	f := newFixture(t)
	g := s3gateway.Start(t)
	g.Bucket(t, "plain", false)
	g.Bucket(t, "worm", true)
	ctx := context.Background()
	local, _ := trail.OpenDir(t.TempDir())
	now := time.Now()
	appendN(t, local, 5, now)
	f.checkpoint(t, local, now)
	local.PutArtifact(ctx, "apply-1.log", []byte("first apply\n"))
	local.PutArtifact(ctx, "apply-2.log", []byte("second apply\n"))

	plain := openS3(t, g.URL("plain", "trail"))
	_, err := trail.Export(ctx, local, plain, trail.ExportOptions{})
	var nol *trail.NoObjectLockError
	if !errors.As(err, &nol) || !strings.Contains(err.Error(), "has no Object Lock") {
		t.Fatalf("Export(to a bucket without Object Lock) = %v, want NoObjectLockError", err)
	}
	if n, _, _ := plain.Head(ctx); n != 0 {
		t.Fatalf("a refused export wrote %d entries", n)
	}
	res, err := trail.Export(ctx, local, plain, trail.ExportOptions{AllowNoObjectLock: true})
	if err != nil || res != (trail.ExportResult{Entries: 5, Checkpoints: 1, Artifacts: 2}) {
		t.Fatalf("Export(waived) = %+v, %v", res, err)
	}

	worm := openS3(t, g.URL("worm", "trail"))
	for i, want := range []trail.ExportResult{{Entries: 5, Checkpoints: 1, Artifacts: 2, ObjectLock: true}, {ObjectLock: true}} {
		res, err := trail.Export(ctx, local, worm, trail.ExportOptions{})
		if err != nil || res != want {
			t.Fatalf("Export #%d to Object Lock = %+v, %v, want %+v", i+1, res, err, want)
		}
	}
	if names, err := worm.Artifacts(ctx); err != nil || strings.Join(names, ",") != "apply-1.log,apply-2.log" {
		t.Fatalf("Artifacts = %q, %v", names, err)
	}
	if data, err := worm.Artifact(ctx, "apply-2.log"); err != nil || string(data) != "second apply\n" {
		t.Fatalf("Artifact(apply-2.log) = %q, %v", data, err)
	}
	c := g.Client()
	key := "trail/artifacts/apply-1.log"
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("worm"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	ret, err := c.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: aws.String("worm"), Key: aws.String(key), VersionId: head.VersionId})
	if err != nil || ret.Retention.Mode != types.ObjectLockRetentionModeCompliance {
		t.Fatalf("artifact retention = %+v, %v, want COMPLIANCE", ret, err)
	}
	// An artifact overwritten in the bucket is tampering, seen by the
	// next export.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("worm"), Key: aws.String(key), Body: strings.NewReader("edited\n")}); err != nil {
		t.Fatal(err)
	}
	var te *trail.TamperError
	if _, err := trail.Export(ctx, local, openS3(t, g.URL("worm", "trail")), trail.ExportOptions{}); !errors.As(err, &te) || te.Key != key {
		t.Fatalf("Export(onto an overwritten artifact) = %v, want TamperError naming %s", err, key)
	}
}

// lostAnswer delivers the first PUT of an entry and then loses the answer,
// as a dropped connection would; the SDK sends the PUT again.
type lostAnswer struct {
	next http.RoundTripper
	lost atomic.Int32
}

func (l *lostAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err == nil && r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/entries/") && l.lost.Add(1) == 1 {
		resp.Body.Close()
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return resp, err
}

// An append whose answer was lost is retried by the SDK, finds its own
// entry in place (412), and counts it as written: no entry twice (T22).
func TestS3RetriedAppendIsNotDuplicated(t *testing.T) {
	s3gateway.UseEnv(t)
	g := s3gateway.Start(t)
	g.Bucket(t, "evidence", false)
	u, _ := url.Parse(g.URL("evidence", "trail"))
	lost := &lostAnswer{next: http.DefaultTransport}
	s, err := trail.OpenS3(context.Background(), u, trail.S3Options{HTTPClient: &http.Client{Transport: lost}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	entries, err := trail.Append(context.Background(), s, now, trail.Event{Actor: "alice", Action: "a", Subject: "x"})
	if err != nil || len(entries) != 1 {
		t.Fatalf("Append = %d entries, %v", len(entries), err)
	}
	if lost.lost.Load() < 2 {
		t.Fatalf("the SDK sent the PUT %d time(s); the test needs a retry", lost.lost.Load())
	}
	n, _, err := s.Head(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Head = %d, %v; want exactly 1 entry", n, err)
	}
}
