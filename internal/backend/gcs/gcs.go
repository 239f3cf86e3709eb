// Package gcs is the control plane of a state store in Google Cloud Storage
// (backend kind gcs), with its Cloud KMS key (key provider gcp_kms), over the
// official client libraries: cloud.google.com/go/storage (JSON API) and
// cloud.google.com/go/kms/apiv1 (REST transport).
//
// # What Create makes
//
// With key provider gcp_kms, Key.Name is KEYRING/KEY: the key ring is made
// in Project/Key.Location if missing, then the crypto key in it (purpose
// ENCRYPT_DECRYPT, automatic rotation every Key.RotationDays days, 90 by
// default, the first rotation one period from now, the spec's tags as
// labels). The key's identifier is its resource name,
// projects/P/locations/L/keyRings/R/cryptoKeys/K. Cloud Storage encrypts
// with the key only if the project's Cloud Storage service agent may use it,
// so Create then reads the agent's address (projects.serviceAccount.get)
// and grants it roles/cloudkms.cryptoKeyEncrypterDecrypter on the key,
// unless a policy binding already does.
//
// The bucket is made, if missing, in Region with the tags as labels, object
// versioning as Versioning says, the key as its default KMS key, uniform
// bucket-level access and public access prevention enforced. A bucket or
// key found already made is left as it is: Create reports it with outcome
// "exists", and Verify reports where it departs from the spec.
//
// The gcs backend of OpenTofu locks natively (a lock object created with a
// generation precondition), so there is no lock to make.
//
// # Labels
//
// Tags become labels on the bucket and the key. Labels take lower-case
// letters, digits, '_' and '-' only, so each tag's key and value are
// lower-cased and every other character becomes '_' ("Cost.Center" →
// "cost_center"). A converted key must start with a letter, keys and values
// are at most 63 characters, a resource takes at most 64 labels, and two
// tags may not convert to one key: a spec that breaks these is refused, not
// truncated.
//
// # Replication
//
// Cloud Storage replicates within one bucket, not to a second one. A
// Replica is taken as the second region of a configurable dual-region
// bucket: Region and Replica.Region must lie in one of the multi-regions
// US, EU or ASIA, the bucket's location is that multi-region and its data
// locations the two regions (custom placement). Replica.Bucket must be
// empty or the bucket itself, and Replica.Role and Replica.Key (kind s3's)
// empty. Turbo replication is not set.
//
// # Calls
//
// Every control-plane call is returned as a backend.Call, including calls
// the service refused (outcome "failed") and lookups that found nothing
// ("missing"). Cloud Storage answers each
// request with an X-GUploader-UploadID header, which is kept as the
// request ID. Cloud KMS answers with no request identifier its clients
// expose, so its calls carry the resource name only.
//
// # fake-gcs-server
//
// The tests run against fake-gcs-server v1.56.1 (memory backend). Its
// generation preconditions and versioning behave as Cloud Storage's: a
// second create with ifGenerationMatch=0 gets 412, a create after a delete
// on a versioned bucket succeeds, and the deleted generation stays
// readable. Of a bucket's settings it keeps only the name, versioning and
// the default event-based hold: labels, default encryption,
// iamConfiguration (uniform bucket-level access, public access
// prevention), custom placement and retention are accepted and dropped,
// and it reports a location of its own. It sends no X-GUploader-UploadID
// and has no projects.serviceAccount.get. Against it as it is, the probe
// finds encryption, create_tags and public_access_block missing and Verify
// reports them as drift; the tests pin that. They check what Create sends
// for the dropped fields through a proxy that records each bucket insert,
// and run the probe and Verify once more through a proxy that keeps the
// dropped fields as inserted and patched. Cloud KMS has no emulator here:
// its tests use an HTTP server that checks each request.
package gcs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/groundzero/groundzero/internal/backend"
)

// Services named in calls.
const (
	ServiceStorage = "storage"
	ServiceKMS     = "cloudkms"
)

// Outcomes of calls (see backend.Call).
const (
	outcomeMissing = "missing" // a lookup found nothing
	outcomeFailed  = "failed"  // the service refused the call
)

// DefaultRotationDays is the key's rotation period when the spec gives none.
const DefaultRotationDays = 90

// encrypterDecrypter is the role the Cloud Storage service agent needs on
// the bucket's default key.
const encrypterDecrypter = "roles/cloudkms.cryptoKeyEncrypterDecrypter"

// Options say how the clients reach the services.
type Options struct {
	// StorageEndpoint is the root of a Cloud Storage JSON API reached
	// without credentials (an emulator such as fake-gcs-server);
	// /storage/v1/ is added when it has no path. "" uses
	// STORAGE_EMULATOR_HOST when set, and Google with Application Default
	// Credentials otherwise.
	StorageEndpoint string
	// KMSEndpoint is the root of a Cloud KMS REST API reached without
	// credentials (a test server); "" is Google's, with Application
	// Default Credentials.
	KMSEndpoint string
	// HTTPClient, when set, carries every request as it is: the client
	// libraries add no credentials to it.
	HTTPClient *http.Client
	// ClientOptions go to both clients, after the endpoints above:
	// credentials, quota project, an endpoint of Google's reached with
	// credentials. Where a client is reached without credentials (an
	// endpoint above, or HTTPClient), they must carry none.
	ClientOptions []option.ClientOption
}

// Store is one gcs state store's control plane. Its methods may be called
// concurrently.
type Store struct {
	spec     backend.Spec
	storage  *storage.Client
	kms      *kms.KeyManagementClient // nil unless the key provider is gcp_kms
	bucket   *storage.BucketHandle
	selfLink string
	labels   map[string]string

	// The bucket's location and, for a dual-region bucket, its data
	// locations.
	location  string
	placement []string

	// Cloud KMS resource names; "" unless the key provider is gcp_kms.
	locationName string // projects/P/locations/L
	ringID       string
	ringName     string
	keyID        string
	keyName      string
	rotation     time.Duration
}

var kmsID = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)

// New checks the spec and opens the clients; it makes no call.
func New(ctx context.Context, spec backend.Spec, opt Options) (*Store, error) {
	if spec.Kind != backend.KindGCS {
		return nil, fmt.Errorf("gcs: backend kind is %q, not gcs", spec.Kind)
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.Key.Provider == "" {
		spec.Key.Provider = backend.KeyProviders[backend.KindGCS][0]
	}
	labels, err := Labels(spec.Tags)
	if err != nil {
		return nil, err
	}
	s := &Store{
		spec:     spec,
		selfLink: "https://www.googleapis.com/storage/v1/b/" + url.PathEscape(spec.Bucket),
		labels:   labels,
		location: spec.Region,
	}
	if err := s.setPlacement(); err != nil {
		return nil, err
	}
	if spec.Key.Provider == backend.KeyGCPKMS {
		if err := s.setKey(); err != nil {
			return nil, err
		}
	}

	s.storage, err = storageClient(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("gcs: storage client: %w", err)
	}
	s.bucket = s.storage.Bucket(spec.Bucket)
	if spec.Key.Provider == backend.KeyGCPKMS {
		s.kms, err = kmsClient(ctx, opt)
		if err != nil {
			s.storage.Close()
			return nil, fmt.Errorf("gcs: cloud kms client: %w", err)
		}
	}
	return s, nil
}

// Close closes the clients.
func (s *Store) Close() error {
	err := s.storage.Close()
	if s.kms != nil {
		err = errors.Join(err, s.kms.Close())
	}
	return err
}

func (s *Store) setKey() error {
	k := s.spec.Key
	ring, key, ok := strings.Cut(k.Name, "/")
	if !ok || !kmsID.MatchString(ring) || !kmsID.MatchString(key) {
		return fmt.Errorf("gcs: key.name %q is not KEYRING/KEY (each 1 to 63 letters, digits, '_' or '-')", k.Name)
	}
	if strings.Contains(k.Location, "/") || strings.Contains(s.spec.Project, "/") {
		return fmt.Errorf("gcs: project %q or key.location %q holds a '/'", s.spec.Project, k.Location)
	}
	days := k.RotationDays
	if days == 0 {
		days = DefaultRotationDays
	}
	// Cloud KMS takes periods from 24 hours to 876,000 hours.
	if days < 1 || days > 36500 {
		return fmt.Errorf("gcs: key.rotation_days %d is outside 1 to 36500", k.RotationDays)
	}
	s.rotation = time.Duration(days) * 24 * time.Hour
	s.locationName = "projects/" + s.spec.Project + "/locations/" + k.Location
	s.ringID, s.keyID = ring, key
	s.ringName = s.locationName + "/keyRings/" + ring
	s.keyName = s.ringName + "/cryptoKeys/" + key
	return nil
}

// multiRegions are the multi-regions a configurable dual-region lies in, by
// the prefix of their regions' names.
var multiRegions = map[string]string{"us-": "US", "europe-": "EU", "asia-": "ASIA"}

func (s *Store) setPlacement() error {
	r := s.spec.Replica
	if r == nil {
		return nil
	}
	if r.Role != "" || r.Key != "" {
		return fmt.Errorf("gcs: replica.role and replica.key serve kind s3: a dual-region bucket replicates within itself, under its own key")
	}
	if r.Region == "" {
		return nil
	}
	if r.Bucket != "" && r.Bucket != s.spec.Bucket {
		return fmt.Errorf("gcs: replica.bucket %q: a dual-region bucket replicates within itself, so replica.bucket must be empty", r.Bucket)
	}
	a, b := strings.ToLower(s.spec.Region), strings.ToLower(r.Region)
	if a == b {
		return fmt.Errorf("gcs: replica.region %s is the bucket's own region", r.Region)
	}
	for prefix, mr := range multiRegions {
		if strings.HasPrefix(a, prefix) && strings.HasPrefix(b, prefix) {
			s.location = mr
			s.placement = []string{strings.ToUpper(a), strings.ToUpper(b)}
			return nil
		}
	}
	return fmt.Errorf("gcs: region %q and replica.region %q do not lie in one of the multi-regions US, EU, ASIA, so they cannot form a dual-region bucket", s.spec.Region, r.Region)
}

// Labels converts tags to Cloud Storage and Cloud KMS labels (see the
// package comment), or says why it cannot.
func Labels(tags map[string]string) (map[string]string, error) {
	if len(tags) > 64 {
		return nil, fmt.Errorf("gcs: %d tags: a bucket takes at most 64 labels", len(tags))
	}
	out := make(map[string]string, len(tags))
	from := make(map[string]string, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		lk, lv := labelText(k), labelText(tags[k])
		switch {
		case lk == "" || lk[0] < 'a' || lk[0] > 'z':
			return nil, fmt.Errorf("gcs: tag %q: a label key must start with a letter", k)
		case len(lk) > 63:
			return nil, fmt.Errorf("gcs: tag %q: a label key has at most 63 characters", k)
		case len(lv) > 63:
			return nil, fmt.Errorf("gcs: tag %q: a label value has at most 63 characters", k)
		}
		if prev, ok := from[lk]; ok {
			return nil, fmt.Errorf("gcs: tags %q and %q both become label %q", prev, k, lk)
		}
		from[lk] = k
		out[lk] = lv
	}
	return out, nil
}

func labelText(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			out = append(out, byte(r))
		default:
			out = append(out, '_')
		}
	}
	return string(out)
}

// storageEndpoint turns an emulator address into the JSON API's root.
func storageEndpoint(raw string) (string, error) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("storage endpoint %q is not an http:// or https:// URL", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/storage/v1/"
	}
	return u.String(), nil
}

func storageClient(ctx context.Context, opt Options) (*storage.Client, error) {
	endpoint := opt.StorageEndpoint
	if endpoint == "" {
		endpoint = os.Getenv("STORAGE_EMULATOR_HOST")
	}
	opts := []option.ClientOption{storage.WithJSONReads()}
	var hc http.Client
	if opt.HTTPClient != nil || endpoint != "" {
		if opt.HTTPClient != nil {
			hc = *opt.HTTPClient
		}
		if endpoint != "" {
			ep, err := storageEndpoint(endpoint)
			if err != nil {
				return nil, err
			}
			opts = append(opts, option.WithEndpoint(ep))
		}
		opts = append(opts, opt.ClientOptions...)
	} else {
		// The client the storage library would make for itself, with
		// the options given.
		c, ep, err := htransport.NewClient(ctx, append([]option.ClientOption{option.WithScopes(storage.ScopeFullControl)}, opt.ClientOptions...)...)
		if err != nil {
			return nil, err
		}
		hc = *c
		if ep != "" {
			opts = append(opts, option.WithEndpoint(ep))
		}
	}
	hc.Transport = recorder{hc.Transport}
	opts = append(opts, option.WithHTTPClient(&hc), option.WithoutAuthentication())
	return storage.NewClient(ctx, opts...)
}

func kmsClient(ctx context.Context, opt Options) (*kms.KeyManagementClient, error) {
	var opts []option.ClientOption
	if opt.KMSEndpoint != "" {
		u, err := url.Parse(opt.KMSEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("kms endpoint %q is not an http:// or https:// URL", opt.KMSEndpoint)
		}
		opts = append(opts, option.WithEndpoint(strings.TrimSuffix(opt.KMSEndpoint, "/")), option.WithoutAuthentication())
	}
	opts = append(opts, opt.ClientOptions...)
	if opt.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(opt.HTTPClient))
	}
	return kms.NewKeyManagementRESTClient(ctx, opts...)
}

// recorder keeps the X-GUploader-UploadID of each answer in the slot its
// request's context carries.
type recorder struct{ next http.RoundTripper }

type slotKey struct{}

type requestID struct {
	mu sync.Mutex
	id string
}

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	next := r.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if resp != nil {
		if slot, ok := req.Context().Value(slotKey{}).(*requestID); ok {
			if id := resp.Header.Get("X-GUploader-UploadID"); id != "" {
				slot.mu.Lock()
				slot.id = id
				slot.mu.Unlock()
			}
		}
	}
	return resp, err
}

// traced returns a context under which the request ID of the last answer is
// kept.
func traced(ctx context.Context) (context.Context, *requestID) {
	slot := &requestID{}
	return context.WithValue(ctx, slotKey{}, slot), slot
}

func (r *requestID) get() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id
}

// calls collects the calls of one operation.
type calls []backend.Call

func (c *calls) storage(op, resource string, rid *requestID, outcome string) {
	*c = append(*c, backend.Call{Service: ServiceStorage, Operation: op, RequestID: rid.get(), Resource: resource, Outcome: outcome})
}

func (c *calls) kms(op, resource, outcome string) {
	*c = append(*c, backend.Call{Service: ServiceKMS, Operation: op, Resource: resource, Outcome: outcome})
}

// httpCode returns the HTTP status of a service's refusal, 0 for an error
// that is not one (the service was not reached, or the context ended).
func httpCode(err error) int {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	var ae *apierror.APIError
	if errors.As(err, &ae) {
		return ae.HTTPCode()
	}
	return 0
}

func outcome(err error, ok string) string {
	if err != nil {
		return outcomeFailed
	}
	return ok
}

// Create makes the key, grants the Cloud Storage service agent its use, and
// makes the bucket, or finds them made. On error, the Provisioned returned
// holds the calls made until then.
func (s *Store) Create(ctx context.Context) (*backend.Provisioned, error) {
	p := &backend.Provisioned{Bucket: s.selfLink}
	var c calls
	defer func() { p.Calls = c }()
	if s.kms != nil {
		if err := s.createKeyRing(ctx, &c); err != nil {
			return p, err
		}
		if err := s.createKey(ctx, &c); err != nil {
			return p, err
		}
		p.Key = s.keyName
		if err := s.grantServiceAgent(ctx, &c); err != nil {
			return p, err
		}
	}
	if err := s.createBucket(ctx, &c); err != nil {
		return p, err
	}
	return p, nil
}

func (s *Store) createBucket(ctx context.Context, c *calls) error {
	tctx, rid := traced(ctx)
	_, err := s.bucket.Attrs(tctx)
	switch {
	case err == nil:
		c.storage("buckets.get", s.selfLink, rid, "exists")
		return nil
	case errors.Is(err, storage.ErrBucketNotExist):
		c.storage("buckets.get", s.selfLink, rid, outcomeMissing)
	default:
		c.storage("buckets.get", s.selfLink, rid, outcomeFailed)
		return fmt.Errorf("gcs: read bucket %s: %w", s.spec.Bucket, err)
	}
	tctx, rid = traced(ctx)
	err = s.bucket.Create(tctx, s.spec.Project, s.bucketAttrs())
	if httpCode(err) == http.StatusConflict {
		// Made since it was looked for: read it again.
		c.storage("buckets.insert", s.selfLink, rid, outcomeFailed)
		tctx, rid = traced(ctx)
		_, err = s.bucket.Attrs(tctx)
		c.storage("buckets.get", s.selfLink, rid, outcome(err, "exists"))
		if err != nil {
			return fmt.Errorf("gcs: bucket %s exists but cannot be read: %w", s.spec.Bucket, err)
		}
		return nil
	}
	c.storage("buckets.insert", s.selfLink, rid, outcome(err, "created"))
	if err != nil {
		return fmt.Errorf("gcs: create bucket %s in project %s: %w", s.spec.Bucket, s.spec.Project, err)
	}
	return nil
}

// bucketAttrs are the settings a bucket is created with.
func (s *Store) bucketAttrs() *storage.BucketAttrs {
	a := &storage.BucketAttrs{
		Location:                 s.location,
		Labels:                   s.labels,
		VersioningEnabled:        s.spec.Versioning,
		UniformBucketLevelAccess: storage.UniformBucketLevelAccess{Enabled: true},
		PublicAccessPrevention:   storage.PublicAccessPreventionEnforced,
	}
	if s.keyName != "" {
		a.Encryption = &storage.BucketEncryption{DefaultKMSKeyName: s.keyName}
	}
	if s.placement != nil {
		a.CustomPlacementConfig = &storage.CustomPlacementConfig{DataLocations: slices.Clone(s.placement)}
	}
	return a
}
