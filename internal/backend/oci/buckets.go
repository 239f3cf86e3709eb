package oci

import (
	"context"
	"fmt"
	"maps"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"

	"github.com/groundzero/groundzero/internal/backend"
)

// Buckets is the Object Storage bucket of one spec.
type Buckets struct {
	client *objectstorage.ObjectStorageClient
	spec   backend.Spec
}

// String names the bucket; the signing key is not printed.
func (b Buckets) String() string { return "oci bucket " + b.path() }

// GoString prints as String does.
func (b Buckets) GoString() string { return b.String() }

// NewBuckets returns the bucket spec names: spec.Bucket in namespace
// spec.Namespace, made in compartment spec.Compartment. The endpoint is
// opt.ObjectStorageEndpoint, else spec.Region's, else the configuration
// provider's region's.
func NewBuckets(spec backend.Spec, opt Options) (*Buckets, error) {
	if spec.Namespace == "" || spec.Compartment == "" || spec.Bucket == "" {
		return nil, fmt.Errorf("oci: the bucket needs a namespace, a compartment and a name")
	}
	if opt.ConfigProvider == nil {
		return nil, errNoProvider
	}
	client, err := objectstorage.NewObjectStorageClientWithConfigurationProvider(opt.ConfigProvider)
	if err != nil {
		return nil, fmt.Errorf("oci: object storage client: %w", err)
	}
	switch {
	case opt.ObjectStorageEndpoint != "":
		ep, err := endpoint("object storage endpoint", opt.ObjectStorageEndpoint)
		if err != nil {
			return nil, err
		}
		client.Host = ep
	case spec.Region != "":
		client.SetRegion(spec.Region)
	}
	if opt.HTTPClient != nil {
		client.HTTPClient = opt.HTTPClient
	}
	spec.Tags = maps.Clone(spec.Tags)
	return &Buckets{client: &client, spec: spec}, nil
}

// path names the bucket as the API does, for calls made before its OCID
// is known.
func (b *Buckets) path() string { return "/n/" + b.spec.Namespace + "/b/" + b.spec.Bucket }

func (b *Buckets) id(bk *objectstorage.Bucket) string {
	if bk != nil && str(bk.Id) != "" {
		return *bk.Id
	}
	return b.path()
}

// get reads the bucket; nil when OCI answers 404. The call's outcome is
// "read", "missing" or "failed".
func (b *Buckets) get(ctx context.Context) (*objectstorage.Bucket, backend.Call, error) {
	resp, err := b.client.GetBucket(ctx, objectstorage.GetBucketRequest{NamespaceName: common.String(b.spec.Namespace), BucketName: common.String(b.spec.Bucket)})
	call := backend.Call{Service: ServiceObjectStorage, Operation: "GetBucket", RequestID: str(resp.OpcRequestId), Resource: b.path(), Outcome: "read"}
	if notFound(err) {
		call.Outcome = "missing"
		return nil, call, nil
	}
	if err != nil {
		call.Outcome = "failed"
		return nil, call, fail(ServiceObjectStorage, "GetBucket", b.path(), err)
	}
	call.Resource = b.id(&resp.Bucket)
	return &resp.Bucket, call, nil
}

// Create finds the bucket, or makes it: versioned when the spec asks,
// encrypted with keyID (an OCI Vault key OCID; "" for Oracle-managed keys),
// with no public access and the spec's freeform tags given at creation. An
// existing bucket is left as it is (Verify reports how it departs); a
// bucket another run made first counts as found. On error, the Provisioned
// returned holds the calls made until then.
//
// Call outcomes: GetBucket "exists", "missing" or "failed"; CreateBucket
// "created" or "failed" (a conflict with a bucket made meanwhile is
// "failed", and a GetBucket "exists" follows).
func (b *Buckets) Create(ctx context.Context, keyID string) (*backend.Provisioned, error) {
	p := &backend.Provisioned{}
	err := b.create(ctx, keyID, p)
	return p, err
}

func (b *Buckets) create(ctx context.Context, keyID string, p *backend.Provisioned) error {
	bk, call, err := b.get(ctx)
	if bk != nil {
		call.Outcome = "exists"
	}
	p.Calls = append(p.Calls, call)
	if err != nil {
		return err
	}
	if bk != nil {
		p.Bucket, p.Key = b.id(bk), keyID
		return nil
	}

	versioning := objectstorage.CreateBucketDetailsVersioningDisabled
	if b.spec.Versioning {
		versioning = objectstorage.CreateBucketDetailsVersioningEnabled
	}
	details := objectstorage.CreateBucketDetails{
		Name:             common.String(b.spec.Bucket),
		CompartmentId:    common.String(b.spec.Compartment),
		PublicAccessType: objectstorage.CreateBucketDetailsPublicAccessTypeNopublicaccess,
		Versioning:       versioning,
		FreeformTags:     maps.Clone(b.spec.Tags),
	}
	if keyID != "" {
		details.KmsKeyId = common.String(keyID)
	}
	resp, err := b.client.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: common.String(b.spec.Namespace), CreateBucketDetails: details})
	call = backend.Call{Service: ServiceObjectStorage, Operation: "CreateBucket", RequestID: str(resp.OpcRequestId), Resource: b.path(), Outcome: "created"}
	if err != nil {
		call.Outcome = "failed"
		p.Calls = append(p.Calls, call)
		if !conflict(err, "BucketAlreadyExists") {
			return fail(ServiceObjectStorage, "CreateBucket", b.path(), err)
		}
		bk, call, err := b.get(ctx)
		if bk != nil {
			call.Outcome = "exists"
		}
		p.Calls = append(p.Calls, call)
		if err == nil && bk == nil {
			err = fmt.Errorf("%s: CreateBucket %s: the bucket exists but cannot be read", ServiceObjectStorage, b.path())
		}
		if err != nil {
			return err
		}
		p.Bucket, p.Key = b.id(bk), keyID
		return nil
	}
	call.Resource = b.id(&resp.Bucket)
	p.Calls = append(p.Calls, call)
	p.Bucket, p.Key = call.Resource, keyID
	return nil
}

// Verify compares the live bucket with the spec and the key the lock
// records (keyID; "" to skip the key): missing, not versioned when the
// spec asks, encrypted with another key, open to the public, or missing a
// spec tag.
func (b *Buckets) Verify(ctx context.Context, keyID string) ([]backend.Finding, []backend.Call, error) {
	bk, call, err := b.get(ctx)
	calls := []backend.Call{call}
	if err != nil {
		return nil, calls, err
	}
	if bk == nil {
		return []backend.Finding{{Check: "bucket", Resource: b.path(), Detail: "the bucket does not exist or is not visible to these credentials"}}, calls, nil
	}
	id := b.id(bk)
	var fs []backend.Finding
	add := func(check, detail string) {
		fs = append(fs, backend.Finding{Check: check, Resource: id, Detail: detail})
	}
	if b.spec.Versioning && bk.Versioning != objectstorage.BucketVersioningEnabled {
		add("versioning", fmt.Sprintf("versioning is %q, not Enabled", bk.Versioning))
	}
	if keyID != "" && str(bk.KmsKeyId) != keyID {
		if str(bk.KmsKeyId) == "" {
			add("encryption", "the bucket is encrypted with an Oracle-managed key, not "+keyID)
		} else {
			add("encryption", fmt.Sprintf("the bucket is encrypted with %s, not %s", *bk.KmsKeyId, keyID))
		}
	}
	if bk.PublicAccessType != objectstorage.BucketPublicAccessTypeNopublicaccess {
		add("public_access", fmt.Sprintf("public access is %q, not NoPublicAccess", bk.PublicAccessType))
	}
	for _, kv := range b.spec.SortedTags() {
		v, ok := bk.FreeformTags[kv[0]]
		switch {
		case !ok:
			add("tags", fmt.Sprintf("tag %s is missing", kv[0]))
		case v != kv[1]:
			add("tags", fmt.Sprintf("tag %s is %q, not %q", kv[0], v, kv[1]))
		}
	}
	return fs, calls, nil
}
