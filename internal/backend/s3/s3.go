// Package s3 is the control plane of the S3-API state stores: AWS S3 (kind
// s3) and the S3-compatible kinds MinIO, DigitalOcean Spaces and OCI Object
// Storage's compatibility endpoint. It implements backend.Store over the
// official AWS SDK.
//
// For kind s3, Create makes (or finds) the KMS key (key provider aws_kms),
// the bucket with its tags given in the create request itself, its
// versioning, default encryption, public access block, TLS-only bucket
// policy and replication, and the DynamoDB lock table (lock dynamodb). Every
// step must succeed.
//
// The compatible kinds get the bucket and whatever of its settings the store
// implements: a store that answers 501 NotImplemented to a setting is
// recorded as a Call with Outcome "unsupported", and the probe reports the
// gap. For kind oci the bucket is encrypted with spec.Key.ID when it is set;
// the OCI Vault key itself is made elsewhere.
//
// Addressing: the endpoint is spec.Endpoint, else Spaces'
// https://REGION.digitaloceanspaces.com or OCI's
// https://NAMESPACE.compat.objectstorage.REGION.oraclecloud.com. Requests are
// path-style for minio, for oci (its compat endpoint takes path-style only;
// a vhcompat endpoint is addressed virtual-hosted) and for a loopback
// endpoint; virtual-hosted otherwise. KMS, DynamoDB and STS are reached at
// the SDK's endpoints, which AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL_DYNAMODB
// and AWS_ENDPOINT_URL_STS override.
//
// Every SDK call is returned as a backend.Call: its service, operation, the
// request ID the store answered with (also from error responses), the
// resource (bucket ARN, key ARN, table ARN) and an Outcome: "created",
// "exists", "updated", "read", "missing" (a lookup found nothing),
// "unsupported" (501 from a compatible store), "written", "refused" and
// "deleted" (probe objects), or "failed".
package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/groundzero/groundzero/internal/backend"
)

// Options are the knobs of a Store that do not belong in the spec.
type Options struct {
	// HTTPClient carries every SDK request; nil uses the SDK default. It is
	// set per service, because the SDK refuses a config-wide client when a
	// CA bundle is configured.
	HTTPClient aws.HTTPClient
	// Credentials; nil uses the SDK's default chain.
	Credentials aws.CredentialsProvider
}

// Store is the control plane of one S3-API state store.
type Store struct {
	spec      backend.Spec
	s3        *awss3.Client
	kms       *kms.Client
	ddb       *dynamodb.Client
	sts       *sts.Client
	endpoint  string // the S3 endpoint, "" for AWS's own
	partition string
}

var _ backend.Store = (*Store)(nil)

// New returns the store for spec. It checks the spec and builds the SDK
// clients; it makes no request.
func New(ctx context.Context, spec backend.Spec, opt Options) (*Store, error) {
	if !backend.S3API(spec.Kind) {
		return nil, fmt.Errorf("backend kind %s is not served over the S3 API", spec.Kind)
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.Region == "" && spec.Endpoint == "" && (spec.Kind == backend.KindSpaces || spec.Kind == backend.KindOCI) {
		return nil, fmt.Errorf("backend kind %s needs a region or an endpoint", spec.Kind)
	}
	if spec.Region == "" {
		spec.Region = "us-east-1"
	}
	if spec.Key.Provider == "" {
		spec.Key.Provider = backend.KeyProviders[spec.Kind][0]
	}
	if spec.Key.Provider == backend.KeyAWSKMS && spec.Key.Name == "" {
		return nil, fmt.Errorf("key provider aws_kms needs key.name (the key is created as alias/NAME)")
	}
	if d := spec.Key.RotationDays; d != 0 && (d < 90 || d > 2560) {
		return nil, fmt.Errorf("key rotation_days %d is outside KMS's 90 to 2560", d)
	}
	if r := spec.Replica; r != nil {
		switch {
		case spec.Kind != backend.KindS3:
			return nil, fmt.Errorf("replication is provisioned for backend kind s3 only")
		case r.Bucket == "" || r.Role == "":
			return nil, fmt.Errorf("replica needs bucket and role (the IAM role S3 replicates as)")
		case !spec.Versioning:
			return nil, fmt.Errorf("replication needs versioning on the bucket")
		case spec.Key.Provider == backend.KeyAWSKMS && r.Key == "":
			return nil, fmt.Errorf("replica needs key (a KMS key in the replica's region): S3 does not replicate SSE-KMS objects without one")
		}
	}
	endpoint := spec.Endpoint
	switch {
	case endpoint != "":
	case spec.Kind == backend.KindSpaces:
		endpoint = "https://" + spec.Region + ".digitaloceanspaces.com"
	case spec.Kind == backend.KindOCI:
		endpoint = "https://" + spec.Namespace + ".compat.objectstorage." + spec.Region + ".oraclecloud.com"
	}
	pathStyle := spec.Kind == backend.KindMinIO
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("backend endpoint %q is not an http(s) URL", endpoint)
		}
		ip := net.ParseIP(u.Hostname())
		pathStyle = pathStyle || u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) ||
			(spec.Kind == backend.KindOCI && !strings.HasPrefix(u.Hostname(), "vhcompat."))
	}

	load := []func(*config.LoadOptions) error{config.WithRegion(spec.Region)}
	if opt.Credentials != nil {
		load = append(load, config.WithCredentialsProvider(opt.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("backend %s: AWS configuration: %v", spec.Kind, err)
	}
	st := &Store{spec: spec, endpoint: endpoint, partition: partition(spec.Region)}
	st.s3 = awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = pathStyle
		// S3-compatible stores do not all speak the newer checksum
		// trailers; checksums are sent only where the API requires them.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		if opt.HTTPClient != nil {
			o.HTTPClient = opt.HTTPClient
		}
	})
	if spec.Kind == backend.KindS3 {
		st.kms = kms.NewFromConfig(cfg, func(o *kms.Options) {
			if opt.HTTPClient != nil {
				o.HTTPClient = opt.HTTPClient
			}
		})
		st.ddb = dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			if opt.HTTPClient != nil {
				o.HTTPClient = opt.HTTPClient
			}
		})
		st.sts = sts.NewFromConfig(cfg, func(o *sts.Options) {
			if opt.HTTPClient != nil {
				o.HTTPClient = opt.HTTPClient
			}
		})
	}
	return st, nil
}

// partition is the AWS partition of a region, for ARNs.
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// compatible reports whether the store is an S3-compatible one, whose gaps
// (501 NotImplemented) are recorded rather than fatal.
func (s *Store) compatible() bool { return s.spec.Kind != backend.KindS3 }

// bucketARN is the bucket's ARN, as bucket policies name it.
func (s *Store) bucketARN() string { return "arn:" + s.partition + ":s3:::" + s.spec.Bucket }

// bucketID is the bucket's identifier: its ARN on AWS, ENDPOINT/BUCKET on a
// compatible store.
func (s *Store) bucketID() string {
	if s.compatible() {
		return strings.TrimRight(s.endpoint, "/") + "/" + s.spec.Bucket
	}
	return s.bucketARN()
}

// keyAlias is the KMS alias of the spec's key.
func (s *Store) keyAlias() string { return "alias/" + s.spec.Key.Name }

// wantsKMS reports whether the bucket's default encryption uses a KMS key
// (aws:kms), and not the store's own keys (AES256).
func (s *Store) wantsKMS() bool {
	return s.spec.Key.Provider == backend.KeyAWSKMS || (s.spec.Kind == backend.KindOCI && s.spec.Key.ID != "")
}

// cli is the aws CLI invocation for fix hints.
func (s *Store) cli(service string) string {
	if service == "s3api" && s.spec.Endpoint != "" {
		return "aws s3api --endpoint-url " + s.endpoint
	}
	return "aws " + service
}

// recorder collects the calls of one Create, Probe or Verify.
type recorder struct{ calls []backend.Call }

// ok records a call that succeeded.
func (r *recorder) ok(service, op, resource, outcome string, md middleware.Metadata) {
	id, _ := awsmiddleware.GetRequestIDMetadata(md)
	r.calls = append(r.calls, backend.Call{Service: service, Operation: op, RequestID: id, Resource: resource, Outcome: outcome})
}

// fail records a call that gave an error, with the request ID of the error
// response when there was one.
func (r *recorder) fail(service, op, resource, outcome string, err error) {
	var id string
	var rid interface{ ServiceRequestID() string }
	if errors.As(err, &rid) {
		id = rid.ServiceRequestID()
	}
	r.calls = append(r.calls, backend.Call{Service: service, Operation: op, RequestID: id, Resource: resource, Outcome: outcome})
}

// status is the HTTP status of an error response, 0 when there was none.
func status(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// code is the API error code of an error response.
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// unsupported reports whether the store does not implement the operation.
func unsupported(err error) bool {
	return status(err) == 501 || code(err) == "NotImplemented"
}

// Codes with which S3 answers a read of a bucket setting that was never
// made.
var settingAbsent = []string{
	"NoSuchBucketPolicy", "ServerSideEncryptionConfigurationNotFoundError", "NoSuchTagSet",
	"NoSuchTagSetError", "ReplicationConfigurationNotFoundError",
	"NoSuchPublicAccessBlockConfiguration", "ObjectLockConfigurationNotFoundError",
}

// absent reports whether err says that a bucket setting was never made.
func absent(err error) bool { return slices.Contains(settingAbsent, code(err)) }

// answer describes an error response for a person: "501 NotImplemented".
func answer(err error) string {
	st, c := status(err), code(err)
	switch {
	case st != 0 && c != "":
		return fmt.Sprintf("%d %s", st, c)
	case st != 0:
		return fmt.Sprint(st)
	case c != "":
		return c
	}
	return err.Error()
}

// bucketMissing reports whether err says that the bucket does not exist.
func bucketMissing(err error) bool {
	return code(err) == "NoSuchBucket" || code(err) == "NotFound" || status(err) == 404
}

// headBucket looks the bucket up and records the call. It returns false
// when the bucket does not exist.
func (s *Store) headBucket(ctx context.Context, r *recorder) (bool, error) {
	out, err := s.s3.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(s.spec.Bucket)})
	switch {
	case err == nil:
		r.ok("s3", "HeadBucket", s.bucketID(), "exists", out.ResultMetadata)
		return true, nil
	case bucketMissing(err):
		r.fail("s3", "HeadBucket", s.bucketID(), "missing", err)
		return false, nil
	}
	r.fail("s3", "HeadBucket", s.bucketID(), "failed", err)
	if status(err) == 403 {
		return false, fmt.Errorf("bucket %s: access denied (403): the bucket belongs to another account or these credentials may not read it: %w", s.spec.Bucket, err)
	}
	if status(err) == 301 {
		return false, fmt.Errorf("bucket %s is in another region than %s (301): set the backend's region to the bucket's: %w", s.spec.Bucket, s.spec.Region, err)
	}
	return false, fmt.Errorf("bucket %s: s3:HeadBucket: %w", s.spec.Bucket, err)
}
