package trail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/groundzero/groundzero/audit"
)

// S3 is an object-store trail: one object per entry under PREFIX/entries/,
// keyed by zero-padded seq and written with If-None-Match: *, so that many CI
// runners append without a coordinator; checkpoints under
// PREFIX/checkpoints/. In a bucket with Object Lock every object gets
// COMPLIANCE retention for the configured number of days.
//
// Every object is written once. In a versioned bucket (every Object Lock
// bucket is) the readers list all versions and delete markers and read each
// object by its only version id: a second version or a delete marker is
// tampering that readers of the current version would not see (T34), and
// gives a *TamperError.
type S3 struct {
	client     *s3.Client
	bucket     string
	prefix     string
	raw        string
	retention  time.Duration // zero when the bucket has no Object Lock
	objectLock bool
	versioned  bool
	readOnly   bool // opened to read only: put refuses

	mu        sync.Mutex
	known     int64             // entries known to exist, to start listing late
	artifacts map[string]string // artifact name → version id, from the last listing
}

// TamperError reports an object of the trail that was overwritten or deleted
// in a versioned bucket (T34). Object Lock keeps the retained original, but a
// plain write adds a newer version and a delete adds a delete marker, and a
// reader of current versions would see the rewritten history. groundzero
// never writes an object twice, so either is tampering.
type TamperError struct {
	Store  string
	Key    string // the object's key in the bucket
	Reason string
}

func (e *TamperError) Error() string {
	return fmt.Sprintf("%s: %s %s; trail objects are written once, so this is tampering, and its oldest version is the original (see `aws s3api list-object-versions --prefix %s`)",
		e.Store, e.Key, e.Reason, e.Key)
}

// CapabilityError reports a store that cannot hold a trail safely (T28).
type CapabilityError struct {
	Store  string
	Reason string
}

func (e *CapabilityError) Error() string {
	return fmt.Sprintf("%s: refused as an evidence store: %s", e.Store, e.Reason)
}

// S3Options are the knobs of an S3 store that do not belong in its URL.
type S3Options struct {
	RetentionDays int            // Object Lock retention per object
	ReadOnly      bool           // only read: no write probe, and writes are refused
	HTTPClient    aws.HTTPClient // for tests; nil uses the SDK default
}

// OpenS3 opens s3://BUCKET/PREFIX and probes it. Query parameters:
// endpoint=URL (S3-compatible stores), region=NAME (default us-east-1),
// path_style=true.
func OpenS3(ctx context.Context, u *url.URL, opt S3Options) (*S3, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("evidence store %s names no bucket", u.Redacted())
	}
	q := u.Query()
	region := q.Get("region")
	if region == "" {
		region = "us-east-1"
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("evidence store %s: %v", u.Redacted(), err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if ep := q.Get("endpoint"); ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
		o.UsePathStyle = q.Get("path_style") == "true"
		// S3-compatible stores do not all speak the newer checksum
		// trailers; checksums are sent only where the API requires them.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		if opt.HTTPClient != nil {
			o.HTTPClient = opt.HTTPClient
		}
	})
	st := &S3{client: client, bucket: u.Host, prefix: strings.Trim(u.Path, "/"), raw: "s3://" + u.Host + u.Path, readOnly: opt.ReadOnly}
	if err := st.probe(ctx); err != nil {
		return nil, err
	}
	if st.objectLock {
		days := opt.RetentionDays
		if days <= 0 {
			days = 2555
		}
		st.retention = time.Duration(days) * 24 * time.Hour
	}
	return st, nil
}

// URL names the store.
func (s *S3) URL() string { return s.raw }

// ObjectLock reports whether objects get COMPLIANCE retention.
func (s *S3) ObjectLock() bool { return s.objectLock }

// Versioned reports whether the bucket keeps versions, so that readers check
// every version (T34).
func (s *S3) Versioned() bool { return s.versioned }

// Client returns the SDK client (for tests that inspect the bucket).
func (s *S3) Client() *s3.Client { return s.client }

// Bucket returns the bucket name.
func (s *S3) Bucket() string { return s.bucket }

func (s *S3) key(parts ...string) string {
	return path.Join(append([]string{s.prefix}, parts...)...)
}

func entryKey(seq int64) string { return fmt.Sprintf("%020d", seq) }

func isStatus(err error, codes ...int) bool {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		for _, c := range codes {
			if re.HTTPStatusCode() == c {
				return true
			}
		}
	}
	return false
}

func isNotFound(err error) bool {
	var nk *types.NoSuchKey
	var nf *types.NotFound
	return errors.As(err, &nk) || errors.As(err, &nf) || isStatus(err, 404)
}

// probe checks that conditional writes are honoured (a store that ignores
// If-None-Match would let two writers claim one seq, T28) and learns whether
// the bucket has Object Lock and keeps versions.
func (s *S3) probe(ctx context.Context) error {
	if !s.readOnly {
		if err := s.probeWrites(ctx); err != nil {
			return err
		}
	}
	return s.settings(ctx)
}

// probeWrites checks that conditional writes are honoured.
func (s *S3) probeWrites(ctx context.Context) error {
	var nonce [8]byte
	rand.Read(nonce[:])
	key := s.key("probe", hex.EncodeToString(nonce[:]))
	// A permanent marker keeps the probe "directory" from vanishing under
	// a concurrent prober on stores that map keys to directories.
	if err := s.put(ctx, s.key("probe", "marker"), []byte("groundzero\n"), true); err != nil && !isStatus(err, 412, 409) {
		return fmt.Errorf("%s: cannot write to the store: %w", s.raw, err)
	}
	put := func() error {
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key),
			Body: bytes.NewReader([]byte("groundzero capability probe\n")), IfNoneMatch: aws.String("*"),
		})
		return err
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		// Some S3-compatible stores map keys to directories and answer 409
		// while a concurrent writer creates or removes one; try again.
		if err = put(); err == nil || !isStatus(err, 409) {
			break
		}
		time.Sleep(time.Duration(10*(attempt+1)) * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("%s: cannot write to the store: %w", s.raw, err)
	}
	err = put()
	defer s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	switch {
	case err == nil:
		return &CapabilityError{Store: s.raw, Reason: "it accepted a second write of an existing object despite If-None-Match: *, so concurrent appends could overwrite each other"}
	case !isStatus(err, 412, 409):
		return fmt.Errorf("%s: capability probe: %w", s.raw, err)
	}
	return nil
}

// settings learns whether the bucket has Object Lock and keeps versions.
func (s *S3) settings(ctx context.Context) error {
	lock, err := s.client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(s.bucket)})
	if err == nil && lock.ObjectLockConfiguration != nil && lock.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled {
		s.objectLock = true
	}
	// A versioned bucket hides overwrites and deletes from a reader of
	// current versions; the readers must know to look at every version.
	ver, err := s.client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(s.bucket)})
	switch {
	case err == nil:
		s.versioned = ver.Status == types.BucketVersioningStatusEnabled || ver.Status == types.BucketVersioningStatusSuspended
	case isStatus(err, 501): // a store without versions (NotImplemented)
	default:
		return fmt.Errorf("%s: cannot learn whether the bucket keeps versions (s3:GetBucketVersioning): %w", s.raw, err)
	}
	s.versioned = s.versioned || s.objectLock
	return nil
}

func (s *S3) put(ctx context.Context, key string, body []byte, exclusive bool) error {
	if s.readOnly {
		return &ReadOnlyError{Store: s.raw}
	}
	in := &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body)))}
	if exclusive {
		in.IfNoneMatch = aws.String("*")
	}
	if s.retention > 0 {
		in.ObjectLockMode = types.ObjectLockModeCompliance
		in.ObjectLockRetainUntilDate = aws.Time(time.Now().Add(s.retention).UTC())
	}
	_, err := s.client.PutObject(ctx, in)
	return err
}

// get reads an object, by its version id when one is given.
func (s *S3) get(ctx context.Context, key, version string, max int64) ([]byte, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s/%s is larger than %d bytes", s.raw, key, max)
	}
	return data, nil
}

// object is one trail object as a listing shows it.
type object struct {
	name    string // relative to the listed directory
	version string // its only version id; empty when the bucket is unversioned
}

// list returns the objects under dir, sorted by name, starting after the
// given name: one paginated listing, of every version and delete marker when
// the bucket is versioned.
func (s *S3) list(ctx context.Context, dir, after string) ([]object, error) {
	prefix := s.key(dir) + "/"
	var start string
	if after != "" {
		start = prefix + after
	}
	if s.versioned {
		objs, err := s.listVersions(ctx, prefix, start)
		for i := range objs {
			objs[i].name = strings.TrimPrefix(objs[i].name, prefix)
		}
		return objs, err
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix)}
	if start != "" {
		in.StartAfter = aws.String(start)
	}
	var objs []object
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			objs = append(objs, object{name: strings.TrimPrefix(aws.ToString(o.Key), prefix)})
		}
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].name < objs[j].name })
	return objs, nil
}

// listVersions lists every version and delete marker of the keys under
// prefix after keyMarker, and returns each key (in full) with its only
// version. A key with a second version or a delete marker is a
// *TamperError.
func (s *S3) listVersions(ctx context.Context, prefix, keyMarker string) ([]object, error) {
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix)}
	if keyMarker != "" {
		in.KeyMarker = aws.String(keyMarker)
	}
	// Version ids, deduplicated: a store may repeat the version at a page
	// boundary. Keys up to the marker are dropped: AWS lists after it, some
	// S3-compatible stores from it.
	versions := map[string][]string{}
	markers := map[string][]string{}
	add := func(to map[string][]string, key, version string) {
		if (keyMarker == "" || key > keyMarker) && !slices.Contains(to[key], version) {
			to[key] = append(to[key], version)
		}
	}
	for {
		page, err := s.client.ListObjectVersions(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, v := range page.Versions {
			add(versions, aws.ToString(v.Key), aws.ToString(v.VersionId))
		}
		for _, m := range page.DeleteMarkers {
			add(markers, aws.ToString(m.Key), aws.ToString(m.VersionId))
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		next, nextVersion := aws.ToString(page.NextKeyMarker), aws.ToString(page.NextVersionIdMarker)
		if next == "" || (next == aws.ToString(in.KeyMarker) && nextVersion == aws.ToString(in.VersionIdMarker)) {
			return nil, fmt.Errorf("%s: the store's version listing does not advance past %q", s.raw, next)
		}
		in.KeyMarker, in.VersionIdMarker = aws.String(next), page.NextVersionIdMarker
	}
	keys := make([]string, 0, len(versions)+len(markers))
	for k := range versions {
		keys = append(keys, k)
	}
	for k := range markers {
		if _, ok := versions[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	objs := make([]object, 0, len(keys))
	for _, k := range keys {
		switch v, m := versions[k], len(markers[k]); {
		case m > 0 && len(v) == 0:
			return nil, &TamperError{Store: s.raw, Key: k, Reason: "is a delete marker where no version is left (an object was deleted)"}
		case m > 0:
			return nil, &TamperError{Store: s.raw, Key: k, Reason: fmt.Sprintf("has a delete marker over %d version(s) (it was deleted)", len(v))}
		case len(v) > 1:
			return nil, &TamperError{Store: s.raw, Key: k, Reason: fmt.Sprintf("has %d versions (it was overwritten)", len(v))}
		}
		objs = append(objs, object{name: k, version: versions[k][0]})
	}
	return objs, nil
}

// lookup finds one object that a listing skipped: some S3-compatible stores
// list an object late. On a versioned bucket it lists that key's versions.
func (s *S3) lookup(ctx context.Context, key string) (object, bool, error) {
	if !s.versioned {
		ok, err := s.exists(ctx, key)
		return object{name: key}, ok, err
	}
	objs, err := s.listVersions(ctx, key, "")
	if err != nil {
		return object{}, false, err
	}
	for _, o := range objs {
		if o.name == key {
			return o, true, nil
		}
	}
	return object{}, false, nil
}

// exists reports whether an object exists.
func (s *S3) exists(ctx context.Context, key string) (bool, error) {
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, err
}

// entryObject is an entry's seq and version.
type entryObject struct {
	seq     int64
	version string
}

// entries lists the entries from seq first on. A listing is taken as a
// hint: a key it skips (some S3-compatible stores list an object late) is
// checked directly. A real gap is an error when strict, and is left for
// verification to report otherwise.
func (s *S3) entries(ctx context.Context, first int64, strict bool) ([]entryObject, error) {
	after := ""
	if first > 0 {
		after = entryKey(first - 1)
	}
	objs, err := s.list(ctx, "entries", after)
	if err != nil {
		return nil, err
	}
	var out []entryObject
	n := first
	for _, o := range objs {
		seq, err := strconv.ParseInt(o.name, 10, 64)
		if err != nil || entryKey(seq) != o.name || seq < first {
			return nil, fmt.Errorf("%s: unexpected object entries/%s", s.raw, o.name)
		}
		for ; n < seq; n++ {
			late, ok, err := s.lookup(ctx, s.key("entries", entryKey(n)))
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, entryObject{seq: n, version: late.version})
			} else if strict {
				return nil, fmt.Errorf("%s: entries/%s found where entry %d was expected (an entry is missing)", s.raw, o.name, n)
			}
		}
		out = append(out, entryObject{seq: seq, version: o.version})
		n = seq + 1
	}
	if len(out) > 0 {
		s.mu.Lock()
		s.known = max(s.known, out[len(out)-1].seq+1)
		s.mu.Unlock()
	}
	return out, nil
}

// startHint is where a count of the entries may start: the size the newest
// state bundle's name claims, once its last entry is seen to exist (a false
// claim only costs a longer listing).
func (s *S3) startHint(ctx context.Context) (int64, error) {
	page, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.key(statesDir) + "/"), MaxKeys: aws.Int32(1)})
	if err != nil || len(page.Contents) == 0 {
		return 0, err
	}
	size, ok := stateSize(path.Base(aws.ToString(page.Contents[0].Key)))
	if !ok || size <= 0 {
		return 0, nil
	}
	found, err := s.exists(ctx, s.key("entries", entryKey(size-1)))
	if err != nil || !found {
		return 0, err
	}
	return size, nil
}

// Head counts the entries (starting from the count this process last saw)
// and reads the newest one.
func (s *S3) Head(ctx context.Context) (int64, []byte, error) {
	s.mu.Lock()
	known := s.known
	s.mu.Unlock()
	if known == 0 {
		hint, err := s.startHint(ctx)
		if err != nil {
			return 0, nil, err
		}
		known = hint
	}
	if known > 0 {
		if n, last, ok, err := s.headByProbe(ctx, known); err != nil || ok {
			return n, last, err
		}
	}
	first := max(known-1, 0)
	objs, err := s.entries(ctx, first, true)
	if err != nil {
		return 0, nil, err
	}
	n := first + int64(len(objs))
	if n == 0 {
		return 0, nil, nil
	}
	version := ""
	if len(objs) > 0 {
		version = objs[len(objs)-1].version
	}
	last, err := s.get(ctx, s.key("entries", entryKey(n-1)), version, audit.MaxEntrySize+1)
	if err != nil {
		return 0, nil, err
	}
	s.mu.Lock()
	s.known = max(s.known, n)
	s.mu.Unlock()
	return n, bytes.TrimSuffix(last, []byte("\n")), nil
}

// maxProbe bounds the objects headByProbe asks for one at a time before a
// listing is the cheaper way.
const maxProbe = 64

// headByProbe finds the end of the trail from known (entry known-1 exists)
// by asking for the next objects one by one, with no listing: a store may
// list in time that grows with the directory, where a HEAD does not. ok is
// false when a listing must decide (a long way to the end, or entry n-1 not
// readable).
func (s *S3) headByProbe(ctx context.Context, known int64) (n int64, last []byte, ok bool, err error) {
	n = known
	for ; n < known+maxProbe; n++ {
		found, err := s.exists(ctx, s.key("entries", entryKey(n)))
		if err != nil {
			return 0, nil, false, err
		}
		if !found {
			break
		}
	}
	if n == known+maxProbe {
		return 0, nil, false, nil
	}
	data, err := s.get(ctx, s.key("entries", entryKey(n-1)), "", audit.MaxEntrySize+1)
	if isNotFound(err) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, err
	}
	s.mu.Lock()
	s.known = max(s.known, n)
	s.mu.Unlock()
	return n, bytes.TrimSuffix(data, []byte("\n")), true, nil
}

// Append writes one object per line with If-None-Match: *.
func (s *S3) Append(ctx context.Context, first int64, prevLast []byte, lines [][]byte) (int, error) {
	for i, l := range lines {
		key := s.key("entries", entryKey(first+int64(i)))
		body := append(append([]byte(nil), l...), '\n')
		err := s.put(ctx, key, body, true)
		if isStatus(err, 412, 409) && !s.wroteIt(ctx, key, body) {
			return i, ErrConflict
		}
		if isStatus(err, 412, 409) {
			err = nil // an SDK retry of a write that had landed
		}
		if err != nil {
			return i, err
		}
		s.mu.Lock()
		s.known = max(s.known, first+int64(i)+1)
		s.mu.Unlock()
	}
	return len(lines), nil
}

// Entries fetches every entry in order, several at a time.
func (s *S3) Entries(ctx context.Context) (io.ReadCloser, error) {
	return s.EntriesFrom(ctx, 0)
}

// EntriesFrom fetches the entries from seq first on, in order, several at a
// time; the listing starts at first.
//
// Most often a reader asks from the last entry it knows, and nothing follows
// it: the entry and a miss after it are then two reads by key, with no
// listing (a listing costs time that grows with the directory on some
// stores), and a delete marker over either shows in the read's answer (T34).
// When entries do follow, they are listed with every version.
func (s *S3) EntriesFrom(ctx context.Context, first int64) (io.ReadCloser, error) {
	if first > 0 {
		line, err := s.Entry(ctx, first)
		if err == nil {
			_, err = s.Entry(ctx, first+1)
		}
		var missing *EntryMissingError
		if errors.As(err, &missing) {
			if missing.Seq == first {
				return io.NopCloser(bytes.NewReader(nil)), nil
			}
			return io.NopCloser(bytes.NewReader(append(line, '\n'))), nil
		}
		if err != nil {
			return nil, err
		}
	}
	objs, err := s.entries(ctx, max(first, 0), false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	type slot struct {
		data []byte
		err  error
	}
	const window = 16
	results := make([]chan slot, len(objs))
	for i := range results {
		results[i] = make(chan slot, 1)
	}
	sem := make(chan struct{}, window)
	go func() {
		for i, o := range objs {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func(i int, o entryObject) {
				data, err := s.get(ctx, s.key("entries", entryKey(o.seq)), o.version, audit.MaxEntrySize+1)
				results[i] <- slot{data, err}
			}(i, o)
		}
	}()
	go func() {
		defer cancel()
		for i := range objs {
			r := <-results[i]
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
	return pr, nil
}

func checkpointObject(size int64, body []byte) string {
	h := sha256.Sum256(body)
	return fmt.Sprintf("%020d-%s.cp", size, hex.EncodeToString(h[:4]))
}

// PutCheckpoint stores the checkpoint; each distinct checkpoint has its own
// object name, so runners never overwrite each other.
func (s *S3) PutCheckpoint(ctx context.Context, size int64, body []byte, sigs map[string][]byte) error {
	name := checkpointObject(size, body)
	for ext, data := range sigs {
		if err := s.put(ctx, s.key("checkpoints", name+ext), data, true); err != nil && !isStatus(err, 412, 409) {
			return err
		}
	}
	if err := s.put(ctx, s.key("checkpoints", name), body, true); err != nil && !isStatus(err, 412, 409) {
		return err
	}
	return nil
}

// Checkpoints lists the stored checkpoints.
func (s *S3) Checkpoints(ctx context.Context) ([]StoredCheckpoint, error) {
	objs, err := s.list(ctx, "checkpoints", "")
	if err != nil {
		return nil, err
	}
	have := map[string]object{}
	for _, o := range objs {
		have[o.name] = o
	}
	var out []StoredCheckpoint
	for _, o := range objs {
		if !strings.HasSuffix(o.name, ".cp") {
			continue
		}
		body, err := s.get(ctx, s.key("checkpoints", o.name), o.version, 4096)
		if err != nil {
			return nil, err
		}
		sc := StoredCheckpoint{Name: "checkpoints/" + o.name, Body: body, Sigs: map[string][]byte{}}
		for _, ext := range []string{".asc", ".sig"} {
			if sig, ok := have[o.name+ext]; ok {
				data, err := s.get(ctx, s.key("checkpoints", sig.name), sig.version, 1<<20)
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

// Entry reads one entry object's current version, with no listing. An
// entry hidden by a delete marker is a *TamperError: S3 says so in the
// answer to the read.
func (s *S3) Entry(ctx context.Context, seq int64) ([]byte, error) {
	key := s.key("entries", entryKey(seq))
	data, err := s.get(ctx, key, "", audit.MaxEntrySize+1)
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.Response.Header.Get("x-amz-delete-marker") == "true" {
		return nil, &TamperError{Store: s.raw, Key: key, Reason: "is hidden by a delete marker (it was deleted)"}
	}
	if isNotFound(err) {
		return nil, &EntryMissingError{Store: s.raw, Seq: seq}
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.known = max(s.known, seq+1) // Head starts here, with no listing
	s.mu.Unlock()
	return bytes.TrimSuffix(data, []byte("\n")), nil
}

// wroteIt reports whether the object at key holds exactly body: a write
// the SDK retried after a lost answer finds its own first attempt there,
// and must not be taken for another writer's entry.
func (s *S3) wroteIt(ctx context.Context, key string, body []byte) bool {
	got, err := s.get(ctx, key, "", audit.MaxEntrySize+1)
	return err == nil && bytes.Equal(got, body)
}

// PutState stores PREFIX/states/NAME once (If-None-Match: *).
func (s *S3) PutState(ctx context.Context, size int64, data []byte) error {
	err := s.put(ctx, s.key(statesDir, stateObject(size, data)), data, true)
	if isStatus(err, 412, 409) {
		return nil
	}
	return err
}

// States lists PREFIX/states/ from the largest size down: one listing of at
// most limit keys, and one read per bundle. A bundle is judged by its
// signed content, not by its key or version, so a replaced or hidden bundle
// can only make a reader start from an older one.
func (s *S3) States(ctx context.Context, after string, limit int) ([]StoredState, error) {
	prefix := s.key(statesDir) + "/"
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(int32(max(limit, 1)))}
	if after != "" {
		in.StartAfter = aws.String(s.key(after))
	}
	var out []StoredState
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() && len(out) < limit {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			size, ok := stateSize(name)
			if !ok {
				continue // not a bundle's name: nothing of ours
			}
			data, err := s.get(ctx, aws.ToString(o.Key), "", MaxStateSize)
			if err != nil {
				return nil, err
			}
			out = append(out, StoredState{Name: statesDir + "/" + name, Size: size, Data: data})
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// PutArtifact stores PREFIX/artifacts/NAME once (If-None-Match: *), with
// retention in an Object Lock bucket.
func (s *S3) PutArtifact(ctx context.Context, name string, data []byte) error {
	if !validArtifactName(name) {
		return fmt.Errorf("bad artifact name %q", name)
	}
	err := s.put(ctx, s.key("artifacts", name), data, true)
	if isStatus(err, 412, 409) {
		return &ArtifactExistsError{Store: s.raw, Name: name}
	}
	return err
}

// Artifacts lists the artifacts' names, sorted.
func (s *S3) Artifacts(ctx context.Context) ([]string, error) {
	objs, err := s.list(ctx, "artifacts", "")
	if err != nil {
		return nil, err
	}
	names := make([]string, len(objs))
	versions := make(map[string]string, len(objs))
	for i, o := range objs {
		names[i] = o.name
		versions[o.name] = o.version
	}
	s.mu.Lock()
	s.artifacts = versions
	s.mu.Unlock()
	return names, nil
}

// Artifact reads an artifact, by the version the last listing saw (on a
// versioned bucket an artifact not yet listed has its versions checked).
func (s *S3) Artifact(ctx context.Context, name string) ([]byte, error) {
	if !validArtifactName(name) {
		return nil, fmt.Errorf("bad artifact name %q", name)
	}
	key := s.key("artifacts", name)
	s.mu.Lock()
	version, listed := s.artifacts[name]
	s.mu.Unlock()
	if s.versioned && !listed {
		o, ok, err := s.lookup(ctx, key)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &ArtifactMissingError{Store: s.raw, Name: name}
		}
		version = o.version
	}
	data, err := s.get(ctx, key, version, MaxArtifactSize)
	if isNotFound(err) {
		return nil, &ArtifactMissingError{Store: s.raw, Name: name}
	}
	return data, err
}

// EntryVersion returns the version id of an entry's object (for tests of
// Object Lock).
func (s *S3) EntryVersion(ctx context.Context, seq int64) (string, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key("entries", entryKey(seq)))})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.VersionId), nil
}

// EntryKey returns the object key of an entry.
func (s *S3) EntryKey(seq int64) string { return s.key("entries", entryKey(seq)) }
