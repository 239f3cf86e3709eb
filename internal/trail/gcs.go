package trail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/groundzero/groundzero/audit"
)

// GCS is a trail in a Google Cloud Storage bucket, laid out as in S3: one
// object per entry under PREFIX/entries/, keyed by zero-padded seq and
// created with a DoesNotExist precondition (ifGenerationMatch=0), so that
// many CI runners append without a coordinator; checkpoints, state bundles
// and artifacts under PREFIX/checkpoints/, PREFIX/states/ and
// PREFIX/artifacts/.
//
// WORM: a bucket with object retention enabled gets every object written
// with retention in Locked mode for the configured number of days (GCS's
// counterpart of S3 Object Lock in COMPLIANCE mode); a bucket whose
// retention policy is locked keeps every object for the policy's period.
// Either counts as Object Lock. A retention policy that is not locked does
// not: whoever administers the bucket can remove it, and then the objects.
//
// Every object is written once. The readers list every generation, live
// and noncurrent, and read each object by its only generation: where the
// bucket keeps versions, a second generation (an overwrite) or a key with
// no live generation (a delete) is tampering that readers of the live
// objects would not see (T34), and gives a *TamperError.
type GCS struct {
	client     *storage.Client
	bucket     *storage.BucketHandle
	bucketName string
	prefix     string
	raw        string

	retention       time.Duration // per-object retention; zero unless the bucket has object retention
	objectRetention bool          // the bucket has object retention enabled
	policy          time.Duration // the bucket's retention policy period, if any
	policyLocked    bool
	versioned       bool
	readOnly        bool // opened to read only: put refuses

	mu        sync.Mutex
	known     int64            // entries known to exist, to start listing late
	artifacts map[string]int64 // artifact name → generation, from the last listing
}

// GCSOptions are the knobs of a GCS store that do not belong in its URL.
type GCSOptions struct {
	RetentionDays int          // object retention per object, where the bucket has it enabled
	HTTPClient    *http.Client // for tests; nil uses the client library's transport and credentials
	ReadOnly      bool         // only read: no write probe, and writes are refused
}

// OpenGCS opens gs://BUCKET/PREFIX and probes it. Credentials are the client
// library's defaults (Application Default Credentials), and it honours
// STORAGE_EMULATOR_HOST. The query parameter endpoint=URL names another
// server (an emulator) reached without credentials: the root of its JSON
// API, to which /storage/v1/ is added when the URL has no path.
func OpenGCS(ctx context.Context, u *url.URL, opt GCSOptions) (*GCS, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("evidence store %s names no bucket", u.Redacted())
	}
	opts := []option.ClientOption{storage.WithJSONReads()}
	if ep := u.Query().Get("endpoint"); ep != "" {
		eu, err := url.Parse(ep)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
			return nil, fmt.Errorf("evidence store %s: endpoint must be an http:// or https:// URL", u.Redacted())
		}
		if eu.Path == "" || eu.Path == "/" {
			eu.Path = "/storage/v1/"
		}
		opts = append(opts, option.WithEndpoint(eu.String()), option.WithoutAuthentication())
	}
	if opt.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(opt.HTTPClient))
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("evidence store %s: %v", u.Redacted(), err)
	}
	st := &GCS{readOnly: opt.ReadOnly, client: client, bucket: client.Bucket(u.Host), bucketName: u.Host,
		prefix: strings.Trim(u.Path, "/"), raw: "gs://" + u.Host + u.Path}
	if err := st.probe(ctx); err != nil {
		client.Close()
		return nil, err
	}
	if st.objectRetention {
		days := opt.RetentionDays
		if days <= 0 {
			days = 2555
		}
		st.retention = time.Duration(days) * 24 * time.Hour
	}
	return st, nil
}

// URL names the store.
func (g *GCS) URL() string { return g.raw }

// ObjectLock reports whether objects are kept under retention that nobody
// can shorten: object retention in Locked mode, or a locked bucket
// retention policy.
func (g *GCS) ObjectLock() bool { return g.objectRetention || g.policyLocked }

// ObjectRetention reports whether every object is written with retention in
// Locked mode (the bucket has object retention enabled).
func (g *GCS) ObjectRetention() bool { return g.objectRetention }

// RetentionPolicy returns the bucket's retention policy period (zero when it
// has none) and whether the policy is locked.
func (g *GCS) RetentionPolicy() (time.Duration, bool) { return g.policy, g.policyLocked }

// Versioned reports whether the bucket keeps noncurrent generations, so that
// an overwrite or a delete leaves a trace the readers see (T34).
func (g *GCS) Versioned() bool { return g.versioned }

// Client returns the client library's client (for tests that inspect the
// bucket).
func (g *GCS) Client() *storage.Client { return g.client }

// Bucket returns the bucket name.
func (g *GCS) Bucket() string { return g.bucketName }

// EntryKey returns the object name of an entry.
func (g *GCS) EntryKey(seq int64) string { return g.key("entries", entryKey(seq)) }

func (g *GCS) key(parts ...string) string {
	return path.Join(append([]string{g.prefix}, parts...)...)
}

func isGCSStatus(err error, codes ...int) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && slices.Contains(codes, ge.Code)
}

// isPreconditionFailed reports a create that lost to an existing object.
func isPreconditionFailed(err error) bool { return isGCSStatus(err, http.StatusPreconditionFailed) }

// probe learns the bucket's versioning and retention, and checks that a
// create conditional on the object not existing is refused when it exists:
// a store that ignores the precondition would let two writers claim one seq
// (T28). The probe object is created once per prefix and never deleted (a
// retained object could not be).
func (g *GCS) probe(ctx context.Context) error {
	attrs, err := g.bucket.Attrs(ctx)
	switch {
	case errors.Is(err, storage.ErrBucketNotExist):
		return fmt.Errorf("%s: there is no bucket %s", g.raw, g.bucketName)
	case isGCSStatus(err, http.StatusForbidden, http.StatusUnauthorized):
		return fmt.Errorf("%s: cannot read the bucket's settings (storage.buckets.get), which say whether it keeps versions and retention: %w", g.raw, err)
	case err != nil:
		return fmt.Errorf("%s: cannot read the bucket's settings: %w", g.raw, err)
	}
	g.versioned = attrs.VersioningEnabled
	g.objectRetention = attrs.ObjectRetentionMode == "Enabled"
	if rp := attrs.RetentionPolicy; rp != nil && rp.RetentionPeriod > 0 {
		g.policy, g.policyLocked = rp.RetentionPeriod, rp.IsLocked
	}
	if g.readOnly {
		return nil
	}
	key := g.key("probe", "marker")
	body := []byte("groundzero capability probe: created once, with ifGenerationMatch=0\n")
	if err := g.put(ctx, key, body, true); err != nil && !isPreconditionFailed(err) {
		return fmt.Errorf("%s: cannot write to the store: %w", g.raw, err)
	}
	err = g.put(ctx, key, body, true)
	switch {
	case err == nil:
		return &CapabilityError{Store: g.raw, Reason: "it accepted a second write of an existing object despite a DoesNotExist precondition (ifGenerationMatch=0), so concurrent appends could overwrite each other"}
	case !isPreconditionFailed(err):
		return fmt.Errorf("%s: capability probe: %w", g.raw, err)
	}
	return nil
}

// put writes an object in one request, only if it does not exist when
// exclusive, under object retention where the bucket has it.
func (g *GCS) put(ctx context.Context, key string, body []byte, exclusive bool) error {
	if g.readOnly {
		return &ReadOnlyError{Store: g.raw}
	}
	o := g.bucket.Object(key)
	if exclusive {
		o = o.If(storage.Conditions{DoesNotExist: true})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := o.NewWriter(ctx)
	w.ChunkSize = 0 // one request, no resumable session
	w.ContentType = "application/octet-stream"
	if g.retention > 0 {
		w.Retention = &storage.ObjectRetention{Mode: "Locked", RetainUntil: time.Now().Add(g.retention).UTC()}
	}
	if _, err := w.Write(body); err != nil {
		cancel()
		w.Close()
		return err
	}
	return w.Close()
}

// get reads an object, by its generation when one is given.
func (g *GCS) get(ctx context.Context, key string, generation, max int64) ([]byte, error) {
	o := g.bucket.Object(key)
	if generation != 0 {
		o = o.Generation(generation)
	}
	r, err := o.NewReader(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s/%s is larger than %d bytes", g.raw, key, max)
	}
	return data, nil
}

// gcsObject is one trail object as a listing shows it.
type gcsObject struct {
	name       string // relative to the listed directory
	generation int64  // its only generation
}

// list returns the objects under dir, sorted by name, from the name start
// on: one paginated listing of every generation, live and noncurrent. A key
// with a second generation or no live one is a *TamperError.
func (g *GCS) list(ctx context.Context, dir, start string) ([]gcsObject, error) {
	prefix := g.key(dir) + "/"
	q := &storage.Query{Prefix: prefix}
	if start != "" {
		q.StartOffset = prefix + start
	}
	objs, err := g.generations(ctx, q)
	for i := range objs {
		objs[i].name = strings.TrimPrefix(objs[i].name, prefix)
	}
	return objs, err
}

// generations lists every generation of the objects a query matches and
// returns each object (by its full name) with its only generation.
func (g *GCS) generations(ctx context.Context, q *storage.Query) ([]gcsObject, error) {
	q.Versions = true
	if err := q.SetAttrSelection([]string{"Name", "Generation", "Deleted"}); err != nil {
		return nil, err
	}
	generations := map[string][]int64{}
	live := map[string]bool{}
	it := g.bucket.Objects(ctx, q)
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, err
		}
		// A store may list a generation twice across a page boundary.
		if !slices.Contains(generations[a.Name], a.Generation) {
			generations[a.Name] = append(generations[a.Name], a.Generation)
		}
		if a.Deleted.IsZero() {
			live[a.Name] = true
		}
	}
	keys := make([]string, 0, len(generations))
	for k := range generations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	objs := make([]gcsObject, 0, len(keys))
	for _, k := range keys {
		switch gens := generations[k]; {
		case !live[k]:
			return nil, &TamperError{Store: g.raw, Key: k, Reason: fmt.Sprintf("has %d noncurrent generation(s) and no live one (it was deleted)", len(gens))}
		case len(gens) > 1:
			return nil, &TamperError{Store: g.raw, Key: k, Reason: fmt.Sprintf("has %d generations (it was overwritten)", len(gens))}
		}
		objs = append(objs, gcsObject{name: k, generation: generations[k][0]})
	}
	return objs, nil
}

// lookup lists the generations of one object.
func (g *GCS) lookup(ctx context.Context, key string) (gcsObject, bool, error) {
	objs, err := g.generations(ctx, &storage.Query{Prefix: key})
	if err != nil {
		return gcsObject{}, false, err
	}
	for _, o := range objs {
		if o.name == key {
			return o, true, nil
		}
	}
	return gcsObject{}, false, nil
}

// entries lists the entries from seq first on. Listings are strongly
// consistent, so a gap is a missing entry: an error when strict, and left
// for verification to report otherwise.
func (g *GCS) entries(ctx context.Context, first int64, strict bool) ([]gcsObject, error) {
	objs, err := g.list(ctx, "entries", entryKey(first))
	if err != nil {
		return nil, err
	}
	n := first
	for _, o := range objs {
		seq, err := strconv.ParseInt(o.name, 10, 64)
		if err != nil || entryKey(seq) != o.name || seq < first {
			return nil, fmt.Errorf("%s: unexpected object entries/%s", g.raw, o.name)
		}
		if seq != n && strict {
			return nil, fmt.Errorf("%s: entries/%s found where entry %d was expected (an entry is missing)", g.raw, o.name, n)
		}
		n = seq + 1
	}
	if len(objs) > 0 {
		g.mu.Lock()
		g.known = max(g.known, n)
		g.mu.Unlock()
	}
	return objs, nil
}

// startHint is where a count of the entries may start: the size the newest
// state bundle's name claims, once its last entry is seen to exist (a false
// claim only costs a longer listing).
func (g *GCS) startHint(ctx context.Context) (int64, error) {
	q := &storage.Query{Prefix: g.key(statesDir) + "/"}
	if err := q.SetAttrSelection([]string{"Name"}); err != nil {
		return 0, err
	}
	it := g.bucket.Objects(ctx, q)
	it.PageInfo().MaxSize = 1
	a, err := it.Next()
	if errors.Is(err, iterator.Done) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	size, ok := stateSize(path.Base(a.Name))
	if !ok || size <= 0 {
		return 0, nil
	}
	_, err = g.bucket.Object(g.key("entries", entryKey(size-1))).Attrs(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return size, nil
}

// Head counts the entries (starting from the count this process last saw,
// or the newest state bundle's) and reads the newest one.
func (g *GCS) Head(ctx context.Context) (int64, []byte, error) {
	g.mu.Lock()
	known := g.known
	g.mu.Unlock()
	if known == 0 {
		hint, err := g.startHint(ctx)
		if err != nil {
			return 0, nil, err
		}
		known = hint
	}
	first := max(known-1, 0)
	objs, err := g.entries(ctx, first, true)
	if err != nil {
		return 0, nil, err
	}
	if len(objs) == 0 {
		if first > 0 {
			return 0, nil, fmt.Errorf("%s: entry %d, seen before, is gone", g.raw, first)
		}
		return 0, nil, nil
	}
	newest := objs[len(objs)-1]
	last, err := g.get(ctx, g.key("entries", newest.name), newest.generation, audit.MaxEntrySize+1)
	if err != nil {
		return 0, nil, err
	}
	return first + int64(len(objs)), bytes.TrimSuffix(last, []byte("\n")), nil
}

// Append creates one object per line, each only if it does not exist.
func (g *GCS) Append(ctx context.Context, first int64, prevLast []byte, lines [][]byte) (int, error) {
	for i, l := range lines {
		key := g.key("entries", entryKey(first+int64(i)))
		body := append(append([]byte(nil), l...), '\n')
		err := g.put(ctx, key, body, true)
		if isPreconditionFailed(err) && !g.wroteIt(ctx, key, body) {
			return i, ErrConflict
		}
		if isPreconditionFailed(err) {
			err = nil // a client retry of a write that had landed
		}
		if err != nil {
			return i, err
		}
		g.mu.Lock()
		g.known = max(g.known, first+int64(i)+1)
		g.mu.Unlock()
	}
	return len(lines), nil
}

// Entry reads one entry object's live generation, with no listing.
func (g *GCS) Entry(ctx context.Context, seq int64) ([]byte, error) {
	key := g.key("entries", entryKey(seq))
	data, err := g.get(ctx, key, 0, audit.MaxEntrySize+1)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, &EntryMissingError{Store: g.raw, Seq: seq}
	}
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.known = max(g.known, seq+1) // Head starts here
	g.mu.Unlock()
	return bytes.TrimSuffix(data, []byte("\n")), nil
}

// wroteIt reports whether the object at key holds exactly body: a write
// the client retried after a lost answer finds its own first attempt there,
// and must not be taken for another writer's entry.
func (g *GCS) wroteIt(ctx context.Context, key string, body []byte) bool {
	got, err := g.get(ctx, key, 0, audit.MaxEntrySize+1)
	return err == nil && bytes.Equal(got, body)
}

// Entries fetches every entry in order, several at a time.
func (g *GCS) Entries(ctx context.Context) (io.ReadCloser, error) {
	return g.EntriesFrom(ctx, 0)
}

// EntriesFrom fetches the entries from seq first on, in order, several at a
// time; the listing starts at first.
func (g *GCS) EntriesFrom(ctx context.Context, first int64) (io.ReadCloser, error) {
	objs, err := g.entries(ctx, max(first, 0), false)
	if err != nil {
		return nil, err
	}
	return fetchInOrder(ctx, len(objs), func(ctx context.Context, i int) ([]byte, error) {
		return g.get(ctx, g.key("entries", objs[i].name), objs[i].generation, audit.MaxEntrySize+1)
	}), nil
}

// fetchInOrder streams the results of fetch(0), fetch(1), … fetch(n-1) in
// order, running up to 16 of them at once. The first error ends the stream.
func fetchInOrder(ctx context.Context, n int, fetch func(ctx context.Context, i int) ([]byte, error)) io.ReadCloser {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	type slot struct {
		data []byte
		err  error
	}
	const window = 16
	results := make([]chan slot, n)
	for i := range results {
		results[i] = make(chan slot, 1)
	}
	sem := make(chan struct{}, window)
	go func() {
		for i := range n {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func(i int) {
				data, err := fetch(ctx, i)
				results[i] <- slot{data, err}
			}(i)
		}
	}()
	go func() {
		defer cancel()
		for i := range n {
			var r slot
			select {
			case r = <-results[i]:
			case <-ctx.Done():
				pw.CloseWithError(ctx.Err())
				return
			}
			<-sem
			if r.err != nil {
				pw.CloseWithError(r.err)
				return
			}
			if _, err := pw.Write(r.data); err != nil {
				return
			}
		}
		pw.Close()
	}()
	return &cancelReader{PipeReader: pr, cancel: cancel}
}

// cancelReader stops the fetches behind a stream when it is closed early.
type cancelReader struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (r *cancelReader) Close() error {
	r.cancel()
	return r.PipeReader.Close()
}

// PutCheckpoint stores the checkpoint; each distinct checkpoint has its own
// object name, so runners never overwrite each other.
func (g *GCS) PutCheckpoint(ctx context.Context, size int64, body []byte, sigs map[string][]byte) error {
	name := checkpointObject(size, body)
	for ext, data := range sigs {
		if err := g.put(ctx, g.key("checkpoints", name+ext), data, true); err != nil && !isPreconditionFailed(err) {
			return err
		}
	}
	if err := g.put(ctx, g.key("checkpoints", name), body, true); err != nil && !isPreconditionFailed(err) {
		return err
	}
	return nil
}

// Checkpoints lists the stored checkpoints, each read by its generation.
func (g *GCS) Checkpoints(ctx context.Context) ([]StoredCheckpoint, error) {
	objs, err := g.list(ctx, "checkpoints", "")
	if err != nil {
		return nil, err
	}
	have := map[string]gcsObject{}
	for _, o := range objs {
		have[o.name] = o
	}
	var out []StoredCheckpoint
	for _, o := range objs {
		if !strings.HasSuffix(o.name, ".cp") {
			continue
		}
		body, err := g.get(ctx, g.key("checkpoints", o.name), o.generation, 4096)
		if err != nil {
			return nil, err
		}
		sc := StoredCheckpoint{Name: "checkpoints/" + o.name, Body: body, Sigs: map[string][]byte{}}
		for _, ext := range []string{".asc", ".sig"} {
			if sig, ok := have[o.name+ext]; ok {
				data, err := g.get(ctx, g.key("checkpoints", sig.name), sig.generation, 1<<20)
				if err != nil {
					return nil, err
				}
				sc.Sigs[ext] = data
			}
		}
		out = append(out, sc)
	}
	return out, nil
}

// PutState stores PREFIX/states/NAME once.
func (g *GCS) PutState(ctx context.Context, size int64, data []byte) error {
	err := g.put(ctx, g.key(statesDir, stateObject(size, data)), data, true)
	if isPreconditionFailed(err) {
		return nil
	}
	return err
}

// States lists PREFIX/states/ from the largest size down: one listing of at
// most limit names, and one read per bundle. A bundle is judged by its
// signed content, not by its name or generation, so a replaced or hidden
// bundle can only make a reader start from an older one.
func (g *GCS) States(ctx context.Context, after string, limit int) ([]StoredState, error) {
	if limit <= 0 {
		return nil, nil
	}
	prefix := g.key(statesDir) + "/"
	q := &storage.Query{Prefix: prefix}
	skip := "" // names up to this one are not wanted
	if after != "" {
		if name, ok := strings.CutPrefix(after, statesDir+"/"); ok && validStateName(name) {
			// Listings start at a name, inclusive. Bundle names all have
			// one length, so the bundle after this one starts at or
			// after its name with the last byte raised.
			q.StartOffset = prefix + name[:len(name)-1] + string(name[len(name)-1]+1)
		} else {
			q.StartOffset, skip = g.key(after), g.key(after)
		}
	}
	if err := q.SetAttrSelection([]string{"Name"}); err != nil {
		return nil, err
	}
	it := g.bucket.Objects(ctx, q)
	it.PageInfo().MaxSize = limit
	var out []StoredState
	for len(out) < limit {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(a.Name, prefix)
		size, ok := stateSize(name)
		if !ok || a.Name <= skip {
			continue // not a bundle's name: nothing of ours
		}
		data, err := g.get(ctx, a.Name, 0, MaxStateSize)
		if err != nil {
			return nil, err
		}
		out = append(out, StoredState{Name: statesDir + "/" + name, Size: size, Data: data})
	}
	return out, nil
}

func validStateName(name string) bool {
	_, ok := stateSize(name)
	return ok
}

// PutArtifact stores PREFIX/artifacts/NAME once, under object retention
// where the bucket has it.
func (g *GCS) PutArtifact(ctx context.Context, name string, data []byte) error {
	if !validArtifactName(name) {
		return fmt.Errorf("bad artifact name %q", name)
	}
	err := g.put(ctx, g.key("artifacts", name), data, true)
	if isPreconditionFailed(err) {
		return &ArtifactExistsError{Store: g.raw, Name: name}
	}
	return err
}

// Artifacts lists the artifacts' names, sorted.
func (g *GCS) Artifacts(ctx context.Context) ([]string, error) {
	objs, err := g.list(ctx, "artifacts", "")
	if err != nil {
		return nil, err
	}
	names := make([]string, len(objs))
	generations := make(map[string]int64, len(objs))
	for i, o := range objs {
		names[i] = o.name
		generations[o.name] = o.generation
	}
	g.mu.Lock()
	g.artifacts = generations
	g.mu.Unlock()
	return names, nil
}

// Artifact reads an artifact by the generation the last listing saw; one not
// yet listed has its generations listed first.
func (g *GCS) Artifact(ctx context.Context, name string) ([]byte, error) {
	if !validArtifactName(name) {
		return nil, fmt.Errorf("bad artifact name %q", name)
	}
	g.mu.Lock()
	generation, listed := g.artifacts[name]
	g.mu.Unlock()
	if !listed {
		o, ok, err := g.lookup(ctx, g.key("artifacts", name))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &ArtifactMissingError{Store: g.raw, Name: name}
		}
		generation = o.generation
	}
	data, err := g.get(ctx, g.key("artifacts", name), generation, MaxArtifactSize)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, &ArtifactMissingError{Store: g.raw, Name: name}
	}
	return data, err
}
