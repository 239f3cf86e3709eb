package trail_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/groundzero/groundzero/internal/s3gateway"
	"github.com/groundzero/groundzero/internal/trail"
)

// s3env gives the test process the gateway's credentials and nothing else
// from AWS.
func s3env(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for _, kv := range s3gateway.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

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
	s3env(t)
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
		n, _, err := trail.Export(context.Background(), local, dst)
		if err != nil || n != want {
			t.Fatalf("Export #%d = %d, %v; want %d", i+1, n, err, want)
		}
	}
	if rep := f.verify(t, dst, nil); !rep.OK() || rep.Entries != 9 {
		t.Fatalf("exported: %+v", rep)
	}
}

// 8 processes × 250 appends through conditional writes: exactly 2,000
// entries and a valid chain, with no coordinator.
func TestS3ConcurrentAppends(t *testing.T) {
	s3env(t)
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
	s3env(t)
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
	if _, _, err := trail.Export(context.Background(), local, s); err != nil {
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
	s3env(t)
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
