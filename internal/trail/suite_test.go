package trail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"google.golang.org/api/option"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/gcsfake"
	"github.com/groundzero/groundzero/internal/s3gateway"
	"github.com/groundzero/groundzero/internal/trail"
)

// The store conformance suite: the same cases against every kind of store,
// each on a real server here. A case that a store cannot take part in skips
// and says why; README.md lists which behaviour is proven where.
//
//	dir           a local directory (file://)
//	s3            versitygw, a plain bucket
//	s3-objectlock versitygw, a bucket with Object Lock (and so versions)
//	gs            fake-gcs-server, a plain bucket
//	gs-versioned  fake-gcs-server, a bucket with object versioning
type suiteBackend struct {
	name       string
	versioned  bool // overwrites and deletes leave versions, which readers see
	objectLock bool // objects are kept under retention
	// fresh returns the URL of a new, empty store.
	fresh func(t *testing.T) suiteStore
	// overwrite writes an object of the store with no precondition, as
	// someone with write access to the bucket could; remove deletes one.
	overwrite, remove func(t *testing.T, s suiteStore, rel string, data []byte)
	// ignoring returns the URL of the store seen through a proxy under
	// which the store ignores create-only preconditions.
	ignoring func(t *testing.T, s suiteStore) string
	// retained checks that an object is kept under retention that cannot
	// be shortened, and cannot be deleted.
	retained func(t *testing.T, s suiteStore, rel string)
	// skipRetention says why the retention case cannot run here.
	skipRetention string
}

// suiteStore is one store of a backend: its URL and, for object stores,
// where its objects are.
type suiteStore struct {
	url, bucket, prefix string
}

func (s suiteStore) key(rel string) string { return s.prefix + "/" + rel }

func (s suiteStore) open(t *testing.T) trail.Store {
	t.Helper()
	st, err := trail.Open(context.Background(), s.url, trail.Options{RetentionDays: 2555})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var suitePrefixes atomic.Int64

func suiteBackends(t *testing.T) []suiteBackend {
	s3gateway.UseEnv(t)
	gcsenv(t)
	gw := s3gateway.Start(t)
	gw.Bucket(t, "plain", false)
	gw.Bucket(t, "worm", true)
	gcs := gcsfake.Start(t)
	gcs.Bucket(t, "plain", false)
	gcs.Bucket(t, "versioned", true)
	ctx := context.Background()
	s3c := gw.Client()
	gcsc := gcsClient(t, gcs)

	s3Fresh := func(bucket string) func(t *testing.T) suiteStore {
		return func(t *testing.T) suiteStore {
			p := fmt.Sprintf("t%d", suitePrefixes.Add(1))
			return suiteStore{url: gw.URL(bucket, p), bucket: bucket, prefix: p}
		}
	}
	gsFresh := func(bucket string) func(t *testing.T) suiteStore {
		return func(t *testing.T) suiteStore {
			p := fmt.Sprintf("t%d", suitePrefixes.Add(1))
			return suiteStore{url: gcs.URL(bucket, p), bucket: bucket, prefix: p}
		}
	}
	s3Overwrite := func(t *testing.T, s suiteStore, rel string, data []byte) {
		t.Helper()
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(rel)), Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("plain PutObject over %s: %v", rel, err)
		}
	}
	s3Remove := func(t *testing.T, s suiteStore, rel string, _ []byte) {
		t.Helper()
		if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(rel))}); err != nil {
			t.Fatalf("DeleteObject %s: %v", rel, err)
		}
	}
	gsOverwrite := func(t *testing.T, s suiteStore, rel string, data []byte) {
		t.Helper()
		w := gcsc.Bucket(s.bucket).Object(s.key(rel)).NewWriter(ctx)
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatalf("unconditional write over %s: %v", rel, err)
		}
	}
	gsRemove := func(t *testing.T, s suiteStore, rel string, _ []byte) {
		t.Helper()
		if err := gcsc.Bucket(s.bucket).Object(s.key(rel)).Delete(ctx); err != nil {
			t.Fatalf("delete %s: %v", rel, err)
		}
	}
	// A gateway that ignored If-None-Match would answer a write over an
	// existing object with success: the proxy turns the gateway's 412
	// into that answer (the request itself is signed, so it cannot be
	// changed on the way).
	s3Ignoring := func(t *testing.T, s suiteStore) string {
		target, _ := url.Parse(gw.Endpoint)
		p := httputil.NewSingleHostReverseProxy(target)
		p.ModifyResponse = func(r *http.Response) error {
			if r.Request.Method == http.MethodPut && r.StatusCode == http.StatusPreconditionFailed {
				r.StatusCode, r.Status = http.StatusOK, "200 OK"
				r.Body.Close()
				r.Body, r.ContentLength = io.NopCloser(strings.NewReader("")), 0
				r.Header.Del("Content-Length")
			}
			return nil
		}
		srv := httptest.NewServer(p)
		t.Cleanup(srv.Close)
		return strings.Replace(s.url, gw.Endpoint, srv.URL, 1)
	}
	// fake-gcs-server honours ifGenerationMatch; the proxy removes it, so
	// that the server really overwrites.
	gsIgnoring := func(t *testing.T, s suiteStore) string {
		srv := httptest.NewServer(stripGenerationMatch(t, gcs.Endpoint, nil))
		t.Cleanup(srv.Close)
		return strings.Replace(s.url, gcs.Endpoint, srv.URL, 1)
	}
	const gsNoRetention = "fake-gcs-server keeps no bucket retention policy or object retention setting and enforces no retention (it stores an object's retention and deletes the object anyway); retention is proven on s3-objectlock only, and the GCS request construction by TestGCSRetentionRequests"
	return []suiteBackend{
		{
			name: "dir",
			fresh: func(t *testing.T) suiteStore {
				return suiteStore{url: "file://" + t.TempDir()}
			},
			skipRetention: "a directory has no retention",
		},
		{name: "s3", fresh: s3Fresh("plain"), overwrite: s3Overwrite, remove: s3Remove, ignoring: s3Ignoring,
			skipRetention: "a bucket without Object Lock"},
		{name: "s3-objectlock", versioned: true, objectLock: true, fresh: s3Fresh("worm"), overwrite: s3Overwrite, remove: s3Remove, ignoring: s3Ignoring,
			retained: func(t *testing.T, s suiteStore, rel string) {
				t.Helper()
				key := s.key(rel)
				head, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
				if err != nil {
					t.Fatal(err)
				}
				ret, err := s3c.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: aws.String(s.bucket), Key: aws.String(key), VersionId: head.VersionId})
				if err != nil {
					t.Fatal(err)
				}
				if ret.Retention.Mode != types.ObjectLockRetentionModeCompliance || ret.Retention.RetainUntilDate.Before(time.Now().Add(2554*24*time.Hour)) {
					t.Fatalf("%s: retention = %s until %v, want COMPLIANCE for 7 years", rel, ret.Retention.Mode, ret.Retention.RetainUntilDate)
				}
				if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key), VersionId: head.VersionId}); err == nil {
					t.Fatalf("%s: deleting a retained version succeeded", rel)
				}
				_, err = s3c.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: aws.String(s.bucket), Key: aws.String(key), VersionId: head.VersionId,
					Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeCompliance, RetainUntilDate: aws.Time(time.Now().Add(24 * time.Hour))}})
				if err == nil {
					t.Fatalf("%s: shortening retention succeeded", rel)
				}
			}},
		{name: "gs", fresh: gsFresh("plain"), overwrite: gsOverwrite, remove: gsRemove, ignoring: gsIgnoring,
			skipRetention: gsNoRetention},
		{name: "gs-versioned", versioned: true, fresh: gsFresh("versioned"), overwrite: gsOverwrite, remove: gsRemove, ignoring: gsIgnoring,
			skipRetention: gsNoRetention},
	}
}

var suiteCases = []struct {
	name string
	run  func(t *testing.T, b suiteBackend)
}{
	{"AppendVerifyCheckpoint", suiteAppendVerifyCheckpoint},
	{"ConcurrentAppenders", suiteConcurrentAppenders},
	{"ConditionalWriteConflict", suiteConflict},
	{"EntriesFrom", suiteEntriesFrom},
	{"States", suiteStates},
	{"ArtifactsOnce", suiteArtifacts},
	{"TamperOverwriteEntry", suiteTamperOverwrite},
	{"TamperDeleteCheckpoint", suiteTamperDelete},
	{"TamperOverwriteArtifact", suiteTamperArtifact},
	{"ProbeRefusesIgnoredPrecondition", suiteProbe},
	{"Export", suiteExport},
	{"Retention", suiteRetention},
}

func TestStoreSuite(t *testing.T) {
	for _, b := range suiteBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range suiteCases {
				t.Run(c.name, func(t *testing.T) { c.run(t, b) })
			}
		})
	}
}

// mustRead returns a function that reads a stream to its end.
func mustRead(t *testing.T) func(rc io.ReadCloser, err error) []byte {
	return func(rc io.ReadCloser, err error) []byte {
		t.Helper()
		return readAll(t, rc, err)
	}
}

func readAll(t *testing.T, rc io.ReadCloser, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func suiteAppendVerifyCheckpoint(t *testing.T, b suiteBackend) {
	ctx := context.Background()
	f := newFixture(t)
	st := b.fresh(t)
	s := st.open(t)
	if ol, ok := s.(interface{ ObjectLock() bool }); ok && ol.ObjectLock() != b.objectLock {
		t.Fatalf("ObjectLock() = %v, want %v", ol.ObjectLock(), b.objectLock)
	}
	if v, ok := s.(interface{ Versioned() bool }); ok && v.Versioned() != b.versioned {
		t.Fatalf("Versioned() = %v, want %v", v.Versioned(), b.versioned)
	}
	if n, last, err := s.Head(ctx); err != nil || n != 0 || last != nil {
		t.Fatalf("Head(empty) = %d, %q, %v, want 0, nil", n, last, err)
	}
	now := time.Now()
	appendN(t, s, 5, now)
	old := f.checkpoint(t, s, now)
	appendN(t, s, 2, now)
	f.checkpoint(t, s, now)
	if rep := f.verify(t, s, old); !rep.OK() || rep.Entries != 7 || rep.CheckpointsValid != 2 {
		t.Fatalf("Verify = %+v, want 7 entries and 2 valid checkpoints", rep)
	}
	// The same checkpoint stored again is not an error, nor a second one.
	cps, err := s.Checkpoints(ctx)
	if err != nil || len(cps) != 2 {
		t.Fatalf("Checkpoints = %d, %v, want 2", len(cps), err)
	}
	cp, err := audit.ParseCheckpoint(cps[1].Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutCheckpoint(ctx, cp.Size, cps[1].Body, cps[1].Sigs); err != nil {
		t.Fatalf("PutCheckpoint(again) = %v", err)
	}
	if cps, err := s.Checkpoints(ctx); err != nil || len(cps) != 2 {
		t.Fatalf("Checkpoints after storing one again = %d, %v, want 2", len(cps), err)
	}
	// Another process sees the same head.
	all := mustRead(t)(s.Entries(ctx))
	fresh := st.open(t)
	n, last, err := fresh.Head(ctx)
	if want := lastLine(all); err != nil || n != 7 || string(last) != want {
		t.Fatalf("Head(reopened) = %d, %q, %v, want 7, %q", n, last, err, want)
	}
}

func suiteConcurrentAppenders(t *testing.T, b suiteBackend) {
	const procs, perProc, goroutines, perGoroutine = 3, 20, 3, 15
	ctx := context.Background()
	st := b.fresh(t)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := trail.Open(ctx, st.url, trail.Options{})
			if err != nil {
				errs <- err
				return
			}
			for i := range perGoroutine {
				if _, err := trail.Append(ctx, s, time.Now(), trail.Event{Actor: "goroutine", Action: "test.append", Subject: "x",
					Details: map[string]any{"g": g, "i": i}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	runAppenders(t, st.url, procs, perProc)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := st.open(t)
	f := newFixture(t)
	f.checkpoint(t, s, time.Now())
	rep := f.verify(t, s, nil)
	if want := int64(procs*perProc + goroutines*perGoroutine); !rep.OK() || rep.Entries != want {
		t.Fatalf("Verify = %d entries, %q; want %d, OK", rep.Entries, rep.Problem, want)
	}
	// Every append is there once: per writer, i runs 0, 1, … without a
	// gap or a repeat.
	seen := map[string][]string{}
	for i, line := range strings.Split(strings.TrimSuffix(string(mustRead(t)(s.Entries(ctx))), "\n"), "\n") {
		e, err := audit.ParseEntry([]byte(line))
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if e.Seq != int64(i) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
		writer := fmt.Sprintf("pid %v", e.Details["pid"])
		if e.Actor == "goroutine" {
			writer = fmt.Sprintf("goroutine %v", e.Details["g"])
		}
		seen[writer] = append(seen[writer], fmt.Sprint(e.Details["i"]))
	}
	if len(seen) != procs+goroutines {
		t.Fatalf("writers = %d, want %d", len(seen), procs+goroutines)
	}
	for w, is := range seen {
		want := perProc
		if strings.HasPrefix(w, "goroutine") {
			want = perGoroutine
		}
		for i := range is {
			if len(is) != want || is[i] != fmt.Sprint(i) {
				t.Fatalf("%s appended %v, want 0…%d once each, in order", w, is, want-1)
			}
		}
	}
}

// Two writers at the same head: the first append wins, the second gets
// ErrConflict and writes nothing.
func suiteConflict(t *testing.T, b suiteBackend) {
	ctx := context.Background()
	st := b.fresh(t)
	a, other := st.open(t), st.open(t)
	now := time.Now()
	appendN(t, a, 3, now)
	n, last, err := other.Head(ctx)
	if err != nil || n != 3 {
		t.Fatalf("Head = %d, %v, want 3", n, err)
	}
	es, err := trail.Append(ctx, a, now, trail.Event{Actor: "alice", Action: "test", Subject: "winner"})
	if err != nil || es[0].Seq != 3 {
		t.Fatalf("Append = %v, %v", es, err)
	}
	won := mustRead(t)(a.EntriesFrom(ctx, 3))
	lost := bytes.Replace(bytes.TrimSuffix(won, []byte("\n")), []byte(`"winner"`), []byte(`"loser"`), 1)
	written, err := other.Append(ctx, 3, last, [][]byte{lost, lost})
	if !errors.Is(err, trail.ErrConflict) || written != 0 {
		t.Fatalf("Append(at a taken seq) = %d, %v, want 0, ErrConflict", written, err)
	}
	if got := mustRead(t)(other.EntriesFrom(ctx, 3)); !bytes.Equal(got, won) {
		t.Fatalf("entries from 3 = %q, want only the winner's %q", got, won)
	}
	// The loser re-reads and appends after the winner.
	if es, err := trail.Append(ctx, other, now, trail.Event{Actor: "bob", Action: "test", Subject: "retry"}); err != nil || es[0].Seq != 4 {
		t.Fatalf("Append(after the conflict) = %v, %v, want seq 4", es, err)
	}
	f := newFixture(t)
	f.checkpoint(t, a, now)
	if rep := f.verify(t, a, nil); !rep.OK() || rep.Entries != 5 {
		t.Fatalf("Verify = %+v", rep)
	}
}

func suiteEntriesFrom(t *testing.T, b suiteBackend) {
	ctx := context.Background()
	s := b.fresh(t).open(t)
	if got := mustRead(t)(s.EntriesFrom(ctx, 0)); len(got) != 0 {
		t.Fatalf("EntriesFrom(empty, 0) = %q", got)
	}
	appendN(t, s, 12, time.Now())
	all := mustRead(t)(s.Entries(ctx))
	lines := strings.SplitAfter(string(all), "\n")
	lines = lines[:len(lines)-1]
	if len(lines) != 12 {
		t.Fatalf("Entries = %d lines, want 12", len(lines))
	}
	for _, first := range []int64{0, 1, 5, 11, 12, 13, 40} {
		want := strings.Join(lines[min(first, 12):], "")
		if got := mustRead(t)(s.EntriesFrom(ctx, first)); string(got) != want {
			t.Errorf("EntriesFrom(%d) = %d bytes, want %d (lines %d…)", first, len(got), len(want), first)
		}
	}
	// A reader closed early does not hang the store.
	rc, err := s.EntriesFrom(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if got := mustRead(t)(s.EntriesFrom(ctx, 10)); string(got) != lines[10]+lines[11] {
		t.Fatalf("EntriesFrom(10) after an early close = %q", got)
	}
}

func suiteStates(t *testing.T, b suiteBackend) {
	ctx := context.Background()
	s := b.fresh(t).open(t)
	if got, err := s.States(ctx, "", 5); err != nil || len(got) != 0 {
		t.Fatalf("States(empty) = %v, %v, want none", got, err)
	}
	type bundle struct {
		size int64
		data string
	}
	put := []bundle{{3, "three"}, {10, "ten"}, {7, "seven"}, {100, "hundred"}, {1, "one"}, {7, "seven, again"}, {1 << 40, "huge"}, {0, "zero"}}
	for _, p := range put {
		if err := s.PutState(ctx, p.size, []byte(p.data)); err != nil {
			t.Fatalf("PutState(%d) = %v", p.size, err)
		}
	}
	if err := s.PutState(ctx, 10, []byte("ten")); err != nil {
		t.Fatalf("PutState(the same bundle again) = %v", err)
	}
	all, err := s.States(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int64
	for i, st := range all {
		sizes = append(sizes, st.Size)
		if !strings.HasPrefix(st.Name, "states/") || (i > 0 && st.Name <= all[i-1].Name) {
			t.Fatalf("States names = %q…, want states/… in ascending order", st.Name)
		}
		if !slices.Contains(put, bundle{st.Size, string(st.Data)}) {
			t.Fatalf("States()[%d] = size %d, %q, which was not stored", i, st.Size, st.Data)
		}
	}
	if want := []int64{1 << 40, 100, 10, 7, 7, 3, 1, 0}; !slices.Equal(sizes, want) {
		t.Fatalf("States sizes = %v, want %v (largest first)", sizes, want)
	}
	for _, limit := range []int{1, 2, 3, 8} {
		var paged []trail.StoredState
		after := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("States(limit %d) does not advance", limit)
			}
			page, err := s.States(ctx, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit {
				t.Fatalf("States(%q, %d) = %d bundles", after, limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1].Name
		}
		if len(paged) != len(all) {
			t.Fatalf("paging by %d: %d bundles, want %d", limit, len(paged), len(all))
		}
		for i := range paged {
			if paged[i].Name != all[i].Name || !bytes.Equal(paged[i].Data, all[i].Data) {
				t.Fatalf("paging by %d: bundle %d = %s, want %s", limit, i, paged[i].Name, all[i].Name)
			}
		}
	}
}

func suiteArtifacts(t *testing.T, b suiteBackend) {
	ctx := context.Background()
	st := b.fresh(t)
	s := st.open(t)
	if names, err := s.Artifacts(ctx); err != nil || len(names) != 0 {
		t.Fatalf("Artifacts(new store) = %q, %v, want none", names, err)
	}
	for _, n := range []string{"b.log", "a.log"} {
		if err := s.PutArtifact(ctx, n, []byte("first "+n)); err != nil {
			t.Fatalf("PutArtifact(%s) = %v", n, err)
		}
	}
	var exists *trail.ArtifactExistsError
	if err := s.PutArtifact(ctx, "a.log", []byte("second")); !errors.As(err, &exists) || exists.Name != "a.log" {
		t.Fatalf("PutArtifact(a.log again) = %v, want ArtifactExistsError", err)
	}
	if names, err := s.Artifacts(ctx); err != nil || strings.Join(names, ",") != "a.log,b.log" {
		t.Fatalf("Artifacts = %q, %v, want a.log,b.log", names, err)
	}
	// A reader that has not listed them (another process) reads them too.
	fresh := st.open(t)
	if data, err := fresh.Artifact(ctx, "a.log"); err != nil || string(data) != "first a.log" {
		t.Fatalf("Artifact(a.log) = %q, %v, want the first write", data, err)
	}
	var missing *trail.ArtifactMissingError
	if _, err := fresh.Artifact(ctx, "c.log"); !errors.As(err, &missing) {
		t.Fatalf("Artifact(c.log) = %v, want ArtifactMissingError", err)
	}
	for _, bad := range []string{"../entries.log", ".hidden", "a/b", ""} {
		if err := s.PutArtifact(ctx, bad, []byte("x")); err == nil {
			t.Errorf("PutArtifact(%q) succeeded", bad)
		}
	}
}

// tamperTrail returns a versioned trail of 4+3 entries with two checkpoints
// that verifies, or skips a backend that keeps no versions.
func tamperTrail(t *testing.T, b suiteBackend) (suiteStore, trail.Store, *fixture) {
	t.Helper()
	if !b.versioned {
		t.Skip("keeps no versions: an overwrite or a delete leaves no trace to see; the hash chain and checkpoints catch a changed or missing entry")
	}
	f := newFixture(t)
	st := b.fresh(t)
	s := st.open(t)
	now := time.Now()
	for _, n := range []int{4, 3} {
		appendN(t, s, n, now)
		f.checkpoint(t, s, now)
	}
	if rep := f.verify(t, s, nil); !rep.OK() || rep.Unanchored() {
		t.Fatalf("Verify(clean trail) = %+v, want OK", rep)
	}
	return st, s, f
}

// T34: an entry written over adds a version; every reader of the store
// reports the key instead of reading the rewrite.
func suiteTamperOverwrite(t *testing.T, b suiteBackend) {
	st, s, f := tamperTrail(t, b)
	ctx := context.Background()
	rel := "entries/" + fmt.Sprintf("%020d", 3)
	orig := mustRead(t)(s.EntriesFrom(ctx, 3))
	orig = orig[:bytes.IndexByte(orig, '\n')+1]
	b.overwrite(t, st, rel, bytes.Replace(orig, []byte(`"subject":"s"`), []byte(`"subject":"x"`), 1))
	var te *trail.TamperError
	_, err := trail.Verify(ctx, s, trail.VerifyConfig{Registry: f.reg, Now: time.Now()})
	if !errors.As(err, &te) || te.Key != st.key(rel) {
		t.Fatalf("Verify(entry overwritten) = %v, want TamperError naming %s", err, st.key(rel))
	}
	fresh := st.open(t)
	if _, err := trail.Append(ctx, fresh, time.Now(), trail.Event{Action: "x"}); !errors.As(err, &te) || te.Key != st.key(rel) {
		t.Fatalf("Append(onto a tampered trail) = %v, want TamperError naming %s", err, st.key(rel))
	}
	dst, _ := trail.OpenDir(t.TempDir())
	if _, err := trail.Export(ctx, fresh, dst, trail.ExportOptions{AllowNoObjectLock: true}); !errors.As(err, &te) {
		t.Fatalf("Export(from a tampered trail) = %v, want TamperError", err)
	}
}

// T34: a deleted checkpoint hides a tail truncation from readers of the
// live objects; the delete is tampering.
func suiteTamperDelete(t *testing.T, b suiteBackend) {
	st, s, f := tamperTrail(t, b)
	ctx := context.Background()
	cps, err := s.Checkpoints(ctx)
	if err != nil || len(cps) != 2 {
		t.Fatalf("Checkpoints = %d, %v, want 2", len(cps), err)
	}
	rel := cps[1].Name
	b.remove(t, st, rel, nil)
	var te *trail.TamperError
	_, err = trail.Verify(ctx, st.open(t), trail.VerifyConfig{Registry: f.reg, Now: time.Now()})
	if !errors.As(err, &te) || te.Key != st.key(rel) {
		t.Fatalf("Verify(checkpoint deleted) = %v, want TamperError naming %s", err, st.key(rel))
	}
	// An entry deleted is tampering too, for a writer as for a reader.
	ent := "entries/" + fmt.Sprintf("%020d", 6)
	b.remove(t, st, ent, nil)
	if _, _, err := st.open(t).Head(ctx); !errors.As(err, &te) || te.Key != st.key(ent) {
		t.Fatalf("Head(newest entry deleted) = %v, want TamperError naming %s", err, st.key(ent))
	}
}

func suiteTamperArtifact(t *testing.T, b suiteBackend) {
	st, s, _ := tamperTrail(t, b)
	ctx := context.Background()
	if err := s.PutArtifact(ctx, "apply-1.log", []byte("first apply\n")); err != nil {
		t.Fatal(err)
	}
	b.overwrite(t, st, "artifacts/apply-1.log", []byte("edited\n"))
	var te *trail.TamperError
	if _, err := st.open(t).Artifact(ctx, "apply-1.log"); !errors.As(err, &te) || te.Key != st.key("artifacts/apply-1.log") {
		t.Fatalf("Artifact(overwritten) = %v, want TamperError", err)
	}
	if _, err := st.open(t).Artifacts(ctx); !errors.As(err, &te) {
		t.Fatalf("Artifacts(one overwritten) = %v, want TamperError", err)
	}
}

// T28: a store that ignores the create-only precondition is refused at
// open, before anything is appended.
func suiteProbe(t *testing.T, b suiteBackend) {
	if b.ignoring == nil {
		t.Skip("a directory appends under an exclusive file lock: there is no precondition to ignore")
	}
	st := b.fresh(t)
	_, err := trail.Open(context.Background(), b.ignoring(t, st), trail.Options{})
	var ce *trail.CapabilityError
	if !errors.As(err, &ce) {
		t.Fatalf("Open(a store ignoring preconditions) = %v, want CapabilityError", err)
	}
	// Through the real server the same store is accepted.
	if n, _, err := st.open(t).Head(context.Background()); err != nil || n != 0 {
		t.Fatalf("Head = %d, %v", n, err)
	}
}

// Export copies a trail into the store and back out, once.
func suiteExport(t *testing.T, b suiteBackend) {
	ctx := context.Background()
	f := newFixture(t)
	local, _ := trail.OpenDir(t.TempDir())
	now := time.Now()
	appendN(t, local, 9, now)
	f.checkpoint(t, local, now)
	local.PutArtifact(ctx, "apply-1.log", []byte("first apply\n"))
	local.PutArtifact(ctx, "apply-2.log", []byte("second apply\n"))
	st := b.fresh(t)
	dst := st.open(t)
	opt := trail.ExportOptions{AllowNoObjectLock: !b.objectLock}
	for i, want := range []trail.ExportResult{{Entries: 9, Checkpoints: 1, Artifacts: 2, ObjectLock: b.objectLock}, {ObjectLock: b.objectLock}} {
		res, err := trail.Export(ctx, local, dst, opt)
		if err != nil || res != want {
			t.Fatalf("Export #%d = %+v, %v, want %+v", i+1, res, err, want)
		}
	}
	if rep := f.verify(t, st.open(t), nil); !rep.OK() || rep.Entries != 9 || rep.CheckpointsValid != 1 {
		t.Fatalf("Verify(exported) = %+v", rep)
	}
	back, _ := trail.OpenDir(t.TempDir())
	if res, err := trail.Export(ctx, st.open(t), back, trail.ExportOptions{AllowNoObjectLock: true}); err != nil || res.Entries != 9 || res.Checkpoints != 1 || res.Artifacts != 2 {
		t.Fatalf("Export(back out) = %+v, %v", res, err)
	}
	if a, c := mustRead(t)(local.Entries(ctx)), mustRead(t)(back.Entries(ctx)); !bytes.Equal(a, c) {
		t.Fatal("the trail exported and back differs from the original")
	}
	if data, err := back.Artifact(ctx, "apply-2.log"); err != nil || string(data) != "second apply\n" {
		t.Fatalf("Artifact(apply-2.log) after the round trip = %q, %v", data, err)
	}
}

// Every object of the trail is kept under retention that the store
// enforces: a delete of the retained version and a shortening are refused.
func suiteRetention(t *testing.T, b suiteBackend) {
	if b.retained == nil {
		t.Skip(b.skipRetention)
	}
	ctx := context.Background()
	f := newFixture(t)
	st := b.fresh(t)
	s := st.open(t)
	now := time.Now()
	appendN(t, s, 3, now)
	f.checkpoint(t, s, now)
	if err := s.PutArtifact(ctx, "apply.log", []byte("log\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutState(ctx, 3, []byte("bundle")); err != nil {
		t.Fatal(err)
	}
	states, err := s.States(ctx, "", 1)
	if err != nil || len(states) != 1 {
		t.Fatalf("States = %v, %v", states, err)
	}
	cps, err := s.Checkpoints(ctx)
	if err != nil || len(cps) != 1 {
		t.Fatalf("Checkpoints = %v, %v", cps, err)
	}
	for _, rel := range []string{"entries/" + fmt.Sprintf("%020d", 0), cps[0].Name, "artifacts/apply.log", states[0].Name} {
		b.retained(t, st, rel)
	}
	if rep := f.verify(t, st.open(t), nil); !rep.OK() || rep.Entries != 3 {
		t.Fatalf("Verify = %+v", rep)
	}
}

// gcsenv keeps the test process's Google settings out of the tests.
func gcsenv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GOOGLE_") || strings.HasPrefix(k, "CLOUDSDK_") || strings.HasPrefix(k, "STORAGE_EMULATOR_HOST") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// gcsClient is a client of the fake server, for tests that write to the
// bucket behind the store's back.
func gcsClient(t *testing.T, srv *gcsfake.Server) *storage.Client {
	t.Helper()
	c, err := storage.NewClient(context.Background(), option.WithEndpoint(srv.Endpoint+"/storage/v1/"),
		option.WithoutAuthentication(), storage.WithJSONReads())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
