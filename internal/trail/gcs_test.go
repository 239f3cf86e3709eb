package trail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groundzero/groundzero/internal/gcsfake"
	"github.com/groundzero/groundzero/internal/trail"
)

// gcsProxy is a reverse proxy in front of fake-gcs-server that records the
// requests it passes (method, path and query) and lets a test change them
// and the answers.
type gcsProxy struct {
	URL string

	mu   sync.Mutex
	seen []string
}

func newGCSProxy(t *testing.T, endpoint string, onRequest func(*http.Request), onResponse func(*http.Response) error) *gcsProxy {
	t.Helper()
	target, _ := url.Parse(endpoint)
	p := &gcsProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = onResponse
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if onRequest != nil {
			onRequest(r)
		}
		p.mu.Lock()
		p.seen = append(p.seen, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// requests returns the requests seen since the last call.
func (p *gcsProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.seen
	p.seen = nil
	return r
}

// stripGenerationMatch is a proxy under which fake-gcs-server ignores
// ifGenerationMatch: it removes the parameter from every request, after
// checking that object creates carry ifGenerationMatch=0.
func stripGenerationMatch(t *testing.T, endpoint string, creates *int) http.Handler {
	target, _ := url.Parse(endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if strings.HasPrefix(r.URL.Path, "/upload/") {
			if q.Get("ifGenerationMatch") != "0" {
				t.Errorf("%s %s without ifGenerationMatch=0", r.Method, r.URL)
			}
			mu.Lock()
			if creates != nil {
				*creates++
			}
			mu.Unlock()
		}
		q.Del("ifGenerationMatch")
		r.URL.RawQuery = q.Encode()
		rp.ServeHTTP(w, r)
	})
}

func openGCS(t *testing.T, raw string) *trail.GCS {
	t.Helper()
	u, _ := url.Parse(raw)
	g, err := trail.OpenGCS(context.Background(), u, trail.GCSOptions{RetentionDays: 2555})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// T28: fake-gcs-server behind a proxy that drops the precondition
// overwrites an existing object, and the probe refuses it before any entry
// is written. Every create the probe made asked for ifGenerationMatch=0.
func TestGCSProbeRefusesStoreIgnoringPreconditions(t *testing.T) {
	gcsenv(t)
	srv := gcsfake.Start(t)
	srv.Bucket(t, "evidence", false)
	creates := 0
	proxy := httptest.NewServer(stripGenerationMatch(t, srv.Endpoint, &creates))
	defer proxy.Close()
	u, _ := url.Parse("gs://evidence/trail?endpoint=" + proxy.URL)
	_, err := trail.OpenGCS(context.Background(), u, trail.GCSOptions{})
	var ce *trail.CapabilityError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "DoesNotExist") {
		t.Fatalf("OpenGCS(ignoring store) = %v, want CapabilityError", err)
	}
	if creates != 2 {
		t.Fatalf("probe made %d creates, want 2 (the same object twice)", creates)
	}
	s := openGCS(t, srv.URL("evidence", "trail"))
	if n, _, err := s.Head(context.Background()); err != nil || n != 0 {
		t.Fatalf("Head = %d, %v: the refused store wrote entries", n, err)
	}
}

// The store URL: bucket, endpoint and scheme errors.
func TestOpenGS(t *testing.T) {
	gcsenv(t)
	srv := gcsfake.Start(t)
	srv.Bucket(t, "evidence", false)
	ctx := context.Background()
	for raw, want := range map[string]string{
		"gs:///trail":                                 "names no bucket",
		"gs://evidence/trail?endpoint=ftp://x":        "endpoint must be an http:// or https:// URL",
		"gs://missing/trail?endpoint=" + srv.Endpoint: "there is no bucket missing",
		"gcs://evidence/trail":                        "scheme must be file://, s3:// or gs://",
	} {
		if _, err := trail.Open(ctx, raw, trail.Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%s) = %v, want an error with %q", raw, err, want)
		}
	}
	s, err := trail.Open(ctx, srv.URL("evidence", "a/b"), trail.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := s.(*trail.GCS); !ok || s.URL() != "gs://evidence/a/b" || g.EntryKey(2) != "a/b/entries/00000000000000000002" {
		t.Fatalf("Open(gs://evidence/a/b) = %T %s", s, s.URL())
	}
}

// bucketAttrs rewrites fake-gcs-server's answer to buckets.get with the
// given fields (it keeps no retention settings of its own).
func bucketAttrs(bucket string, fields map[string]any) func(*http.Response) error {
	return func(r *http.Response) error {
		if r.Request.Method != http.MethodGet || r.Request.URL.Path != "/storage/v1/b/"+bucket || r.StatusCode != http.StatusOK {
			return nil
		}
		var attrs map[string]any
		if err := json.NewDecoder(r.Body).Decode(&attrs); err != nil {
			return err
		}
		r.Body.Close()
		for k, v := range fields {
			attrs[k] = v
		}
		body, _ := json.Marshal(attrs)
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		r.Header.Set("Content-Length", fmt.Sprint(len(body)))
		return nil
	}
}

// uploadRetention reads the retention an object create asks for from its
// multipart body, and puts the body back.
func uploadRetention(t *testing.T, r *http.Request) (name string, retention map[string]string) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		t.Errorf("create %s: %v", r.URL, err)
		return "", nil
	}
	part, err := multipart.NewReader(bytes.NewReader(body), params["boundary"]).NextPart()
	if err != nil {
		t.Errorf("create %s: %v", r.URL, err)
		return "", nil
	}
	var meta struct {
		Name      string            `json:"name"`
		Retention map[string]string `json:"retention"`
	}
	if err := json.NewDecoder(part).Decode(&meta); err != nil {
		t.Errorf("create %s: metadata: %v", r.URL, err)
	}
	return meta.Name, meta.Retention
}

// Retention as GCS has it, which fake-gcs-server neither keeps on buckets nor
// enforces: the bucket's settings are what a proxy says they are, and what
// is checked is what the store asks of the server. With object retention
// enabled every trail object is created with retention in Locked mode for
// the configured days; a locked bucket retention policy counts as Object
// Lock with no per-object setting; an unlocked one does not count.
func TestGCSRetentionRequests(t *testing.T) {
	gcsenv(t)
	srv := gcsfake.Start(t)
	srv.Bucket(t, "worm", false)
	ctx := context.Background()
	f := newFixture(t)
	local, _ := trail.OpenDir(t.TempDir())
	now := time.Now()
	appendN(t, local, 3, now)
	f.checkpoint(t, local, now)
	local.PutArtifact(ctx, "apply.log", []byte("log\n"))

	var mu sync.Mutex
	retained := map[string]map[string]string{}
	record := func(r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/upload/storage/v1/b/worm/o") {
			name, ret := uploadRetention(t, r)
			mu.Lock()
			retained[name] = ret
			mu.Unlock()
		}
	}
	p := newGCSProxy(t, srv.Endpoint, record, bucketAttrs("worm", map[string]any{"objectRetention": map[string]string{"mode": "Enabled"}}))
	s := openGCS(t, "gs://worm/locked?endpoint="+p.URL)
	if !s.ObjectLock() || !s.ObjectRetention() {
		t.Fatalf("object retention enabled: ObjectLock() = %v, ObjectRetention() = %v, want both", s.ObjectLock(), s.ObjectRetention())
	}
	res, err := trail.Export(ctx, local, s, trail.ExportOptions{})
	if err != nil || res != (trail.ExportResult{Entries: 3, Checkpoints: 1, Artifacts: 1, ObjectLock: true}) {
		t.Fatalf("Export = %+v, %v", res, err)
	}
	if err := s.PutState(ctx, 3, []byte("bundle")); err != nil {
		t.Fatal(err)
	}
	var objects int
	for name, ret := range retained {
		if strings.HasPrefix(name, "locked/probe/") {
			continue
		}
		objects++
		until, err := time.Parse(time.RFC3339, ret["retainUntilTime"])
		if ret["mode"] != "Locked" || err != nil || until.Before(now.Add(2554*24*time.Hour)) || until.After(time.Now().Add(2556*24*time.Hour)) {
			t.Errorf("create %s asked for retention %v, want Locked for 2555 days", name, ret)
		}
	}
	if objects != 3+2+1+1 { // entries, checkpoint and signature, artifact, state
		t.Errorf("%d objects created under retention, want 7: %v", objects, retained)
	}
	// The server stored what was asked (though it will not enforce it).
	attrs, err := s.Client().Bucket("worm").Object(s.EntryKey(0)).Attrs(ctx)
	if err != nil || attrs.Retention == nil || attrs.Retention.Mode != "Locked" {
		t.Fatalf("entry 0 attrs = %+v, %v, want retention Locked", attrs, err)
	}

	for _, c := range []struct {
		locked bool
	}{{true}, {false}} {
		policy := map[string]any{"retentionPolicy": map[string]any{"retentionPeriod": "864000", "isLocked": c.locked, "effectiveTime": "2026-01-01T00:00:00Z"}}
		mu.Lock()
		retained = map[string]map[string]string{}
		mu.Unlock()
		p := newGCSProxy(t, srv.Endpoint, record, bucketAttrs("worm", policy))
		s := openGCS(t, fmt.Sprintf("gs://worm/policy-%v?endpoint=%s", c.locked, p.URL))
		period, locked := s.RetentionPolicy()
		if s.ObjectLock() != c.locked || s.ObjectRetention() || period != 10*24*time.Hour || locked != c.locked {
			t.Fatalf("retention policy (locked %v): ObjectLock() = %v, ObjectRetention() = %v, RetentionPolicy() = %v, %v",
				c.locked, s.ObjectLock(), s.ObjectRetention(), period, locked)
		}
		_, err := trail.Export(ctx, local, s, trail.ExportOptions{})
		var nol *trail.NoObjectLockError
		if c.locked && err != nil || !c.locked && !errors.As(err, &nol) {
			t.Fatalf("Export(retention policy, locked %v) = %v", c.locked, err)
		}
		for name, ret := range retained {
			if ret != nil {
				t.Errorf("create %s under a bucket policy asked for object retention %v", name, ret)
			}
		}
	}
}

// A command's reads do not grow with the history: a fresh store finds the
// head from the newest state bundle's name, and States reads one listing
// of at most limit names and one object per bundle.
func TestGCSConstantReads(t *testing.T) {
	gcsenv(t)
	srv := gcsfake.Start(t)
	srv.Bucket(t, "evidence", true)
	ctx := context.Background()
	heads := map[int][]string{}
	for _, size := range []int{20, 60} {
		prefix := fmt.Sprintf("t%d", size)
		w := openGCS(t, srv.URL("evidence", prefix))
		appendN(t, w, size, time.Now())
		for _, n := range []int64{5, int64(size - 2), 2} {
			if err := w.PutState(ctx, n, []byte(fmt.Sprint("bundle ", n))); err != nil {
				t.Fatal(err)
			}
		}
		p := newGCSProxy(t, srv.Endpoint, nil, nil)
		s := openGCS(t, fmt.Sprintf("gs://evidence/%s?endpoint=%s", prefix, p.URL))
		p.requests()
		n, _, err := s.Head(ctx)
		if err != nil || n != int64(size) {
			t.Fatalf("Head = %d, %v, want %d", n, err, size)
		}
		heads[size] = p.requests()
		// The listing of entries starts just before the bundle's size.
		start := fmt.Sprintf("startOffset=%s", url.QueryEscape(fmt.Sprintf("%s/entries/%020d", prefix, size-3)))
		if !slices.ContainsFunc(heads[size], func(r string) bool { return strings.Contains(r, start) }) {
			t.Fatalf("Head made requests %q, want a listing with %s", heads[size], start)
		}
		states, err := s.States(ctx, "", 2)
		if err != nil || len(states) != 2 || states[0].Size != int64(size-2) || states[1].Size != 5 {
			t.Fatalf("States(\"\", 2) = %v, %v", states, err)
		}
		got := p.requests()
		if len(got) != 3 || !strings.Contains(got[0], "/storage/v1/b/evidence/o?") || !strings.Contains(got[0], "maxResults=2") {
			t.Fatalf("States(\"\", 2) made requests %q, want one listing of at most 2 names and two reads", got)
		}
		if more, err := s.States(ctx, states[1].Name, 5); err != nil || len(more) != 1 || more[0].Size != 2 {
			t.Fatalf("States(after %s, 5) = %v, %v, want the bundle for 2", states[1].Name, more, err)
		}
	}
	if len(heads[20]) != len(heads[60]) || len(heads[20]) > 4 {
		t.Fatalf("Head made %d requests at 20 entries and %d at 60, want the same, at most 4:\n%q\n%q",
			len(heads[20]), len(heads[60]), heads[20], heads[60])
	}
}
