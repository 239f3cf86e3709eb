package cicred

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithymw "github.com/aws/smithy-go/middleware"

	"github.com/groundzero/groundzero/internal/backend"
)

// ServiceS3 is the Call.Service of the verification calls.
const ServiceS3 = "s3"

// ProbeName is the object, under the prefix, that verification of an
// apply key writes and deletes.
const ProbeName = ".groundzero-ci-rotate-probe"

// S3Verifier checks a key against the S3(-compatible) endpoint of its
// scope: the key must list the prefix; an apply key must also write and
// delete PREFIX/ENV/.groundzero-ci-rotate-probe, and a plan key must be
// refused that write (AccessDenied): a key with more than its grant fails.
type S3Verifier struct {
	// HTTPClient carries the requests; nil for the SDK's own.
	HTTPClient *http.Client
}

// Verify uses key as scope's role would.
func (v S3Verifier) Verify(ctx context.Context, sc Scope, key Key) ([]backend.Call, error) {
	if sc.Endpoint == "" {
		return nil, errors.New("backend.endpoint is empty: the key is checked against the S3-compatible endpoint")
	}
	region := sc.Region
	if region == "" {
		region = "us-east-1"
	}
	opt := s3.Options{
		Region:                     region,
		BaseEndpoint:               aws.String(sc.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(key.ID, string(key.Secret), ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           1,
	}
	if v.HTTPClient != nil {
		opt.HTTPClient = v.HTTPClient
	}
	c := s3.New(opt)
	var calls []backend.Call
	record := func(op, resource string, md smithymw.Metadata, err error) error {
		call := backend.Call{Service: ServiceS3, Operation: op, Resource: resource, Outcome: "read"}
		if op != "ListObjectsV2" {
			call.Outcome = map[string]string{"PutObject": "written", "DeleteObject": "deleted"}[op]
		}
		if err != nil {
			call.Outcome = "failed"
			var rid interface{ ServiceRequestID() string }
			if errors.As(err, &rid) {
				call.RequestID = rid.ServiceRequestID()
			}
		} else {
			call.RequestID, _ = awsmiddleware.GetRequestIDMetadata(md)
		}
		calls = append(calls, call)
		if err == nil {
			return nil
		}
		msg := err.Error()
		var ae smithy.APIError
		if errors.As(err, &ae) {
			msg = ae.ErrorCode() + ": " + ae.ErrorMessage()
		}
		return fmt.Errorf("%s %s/%s with key %s: %s", op, sc.Bucket, resource, key.ID, scrubText(msg, string(key.Secret)))
	}
	l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(sc.Bucket), Prefix: aws.String(sc.Prefix), MaxKeys: aws.Int32(1)})
	var md smithymw.Metadata
	if l != nil {
		md = l.ResultMetadata
	}
	if err := record("ListObjectsV2", sc.Prefix, md, err); err != nil {
		return calls, err
	}
	probe := sc.Prefix + ProbeName
	if sc.Role != RoleApply {
		// A plan key that may write the state is not a plan key.
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(sc.Bucket), Key: aws.String(probe), Body: strings.NewReader("groundzero ci rotate probe\n")})
		call := backend.Call{Service: ServiceS3, Operation: "PutObject", Resource: probe, Outcome: "refused"}
		var rid interface{ ServiceRequestID() string }
		if errors.As(err, &rid) {
			call.RequestID = rid.ServiceRequestID()
		}
		var ae smithy.APIError
		if err == nil || !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
			call.Outcome = "written"
			if err != nil {
				call.Outcome = "failed"
			}
			calls = append(calls, call)
			if err == nil {
				c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(sc.Bucket), Key: aws.String(probe)})
				return calls, fmt.Errorf("the plan key %s may write %s/%s: its grant is wider than read-only", key.ID, sc.Bucket, probe)
			}
			return calls, fmt.Errorf("the plan key %s: PutObject %s/%s should be refused with AccessDenied, got: %s", key.ID, sc.Bucket, probe, scrubText(err.Error(), string(key.Secret)))
		}
		return append(calls, call), nil
	}
	p, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(sc.Bucket), Key: aws.String(probe), Body: strings.NewReader("groundzero ci rotate probe\n")})
	md = smithymw.Metadata{}
	if p != nil {
		md = p.ResultMetadata
	}
	if err := record("PutObject", probe, md, err); err != nil {
		return calls, err
	}
	d, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(sc.Bucket), Key: aws.String(probe)})
	md = smithymw.Metadata{}
	if d != nil {
		md = d.ResultMetadata
	}
	return calls, record("DeleteObject", probe, md, err)
}
