package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/groundzero/groundzero/internal/backend"
)

// Verify compares the live store with the spec and with keyID, the key the
// lock records (the spec's key id when keyID is ""), and returns each
// departure as a finding that says how to fix it.
//
// What is expected depends on the kind. On AWS (kind s3) every setting
// Create makes is expected. On a compatible store versioning (when the spec
// turns it on), encryption with a named KMS key, and replication (when the
// spec asks for it) are expected, so a store that does not implement them
// (501) gives a finding; public access block, the TLS-only policy and tags
// are checked where the store implements them, and their absence from the
// store is the probe's to report, not drift.
func (s *Store) Verify(ctx context.Context, keyID string) ([]backend.Finding, []backend.Call, error) {
	r := &recorder{}
	v := &verifier{Store: s, r: r, ctx: ctx, bucket: aws.String(s.spec.Bucket)}
	err := v.verify(keyID)
	return v.findings, r.calls, err
}

type verifier struct {
	*Store
	r        *recorder
	ctx      context.Context
	bucket   *string
	findings []backend.Finding
}

func (v *verifier) add(check, resource, format string, args ...any) {
	v.findings = append(v.findings, backend.Finding{Check: check, Resource: resource, Detail: fmt.Sprintf(format, args...)})
}

func (v *verifier) verify(keyID string) error {
	if keyID == "" {
		keyID = v.spec.Key.ID
	}
	if v.spec.Key.Provider == backend.KeyAWSKMS && keyID == "" {
		return fmt.Errorf("verify of bucket %s needs the ARN of the KMS key the backend lock records", v.spec.Bucket)
	}
	exists, err := v.headBucket(v.ctx, v.r)
	if err != nil {
		return err
	}
	var checks []func() error
	if exists {
		checks = []func() error{v.versioning, func() error { return v.encryption(keyID) }, v.publicAccess, v.tlsPolicy, v.tags, v.replication}
	} else {
		v.add("bucket", v.bucketID(), "the bucket does not exist: the state it held is gone unless a replica or backup has it; find out who deleted it, then create the store again")
	}
	if v.spec.Lock == backend.LockDynamoDB {
		checks = append(checks, v.lockTable)
	}
	if v.spec.Key.Provider == backend.KeyAWSKMS {
		checks = append(checks, func() error { return v.key(keyID) })
	}
	for _, c := range checks {
		if err := c(); err != nil {
			return err
		}
	}
	return nil
}

// read makes one read of a bucket setting. It returns false when the check
// is settled without the setting's value: the store does not implement the
// read (a finding when expected), or the setting was never made (a finding
// with absentDetail).
func (v *verifier) read(check, op string, expected bool, absentDetail string, md func() (middleware.Metadata, error)) (bool, error) {
	m, err := md()
	switch {
	case err == nil:
		v.r.ok("s3", op, v.bucketID(), "read", m)
		return true, nil
	case unsupported(err):
		v.r.fail("s3", op, v.bucketID(), "unsupported", err)
		if expected {
			v.add(check, v.bucketID(), "the store does not implement s3:%s (it answered %s), and the spec needs %s: use a store that has it, or change the spec", op, answer(err), check)
		}
		return false, nil
	case absent(err):
		v.r.fail("s3", op, v.bucketID(), "missing", err)
		v.add(check, v.bucketID(), "%s", absentDetail)
		return false, nil
	}
	v.r.fail("s3", op, v.bucketID(), "failed", err)
	return false, fmt.Errorf("bucket %s: s3:%s: %w", v.spec.Bucket, op, err)
}

func (v *verifier) versioning() error {
	if !v.spec.Versioning {
		return nil
	}
	var out *awss3.GetBucketVersioningOutput
	ok, err := v.read("versioning", "GetBucketVersioning", true, "", func() (middleware.Metadata, error) {
		var err error
		out, err = v.s3.GetBucketVersioning(v.ctx, &awss3.GetBucketVersioningInput{Bucket: v.bucket})
		return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
	})
	if !ok || out.Status == s3types.BucketVersioningStatusEnabled {
		return err
	}
	state := "off"
	if out.Status != "" {
		state = string(out.Status)
	}
	v.add("versioning", v.bucketID(), "versioning is %s, so an overwritten or deleted state cannot be recovered: turn it back on (%s put-bucket-versioning --bucket %s --versioning-configuration Status=Enabled)",
		state, v.cli("s3api"), v.spec.Bucket)
	return nil
}

func (v *verifier) encryption(keyID string) error {
	wantKMS := v.wantsKMS()
	var out *awss3.GetBucketEncryptionOutput
	fix := fmt.Sprintf("run create again, or set it with %s put-bucket-encryption --bucket %s", v.cli("s3api"), v.spec.Bucket)
	ok, err := v.read("encryption", "GetBucketEncryption", !v.compatible() || wantKMS, "the bucket has no default encryption: "+fix, func() (middleware.Metadata, error) {
		var err error
		out, err = v.s3.GetBucketEncryption(v.ctx, &awss3.GetBucketEncryptionInput{Bucket: v.bucket})
		return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
	})
	if !ok {
		return err
	}
	var others []string
	for _, rule := range rulesOf(out.ServerSideEncryptionConfiguration) {
		d := rule.ApplyServerSideEncryptionByDefault
		if d == nil {
			continue
		}
		k := aws.ToString(d.KMSMasterKeyID)
		if !wantKMS || (d.SSEAlgorithm != s3types.ServerSideEncryptionAes256 && sameKey(k, keyID)) {
			return nil
		}
		others = append(others, strings.TrimSpace(string(d.SSEAlgorithm)+" "+k))
	}
	switch {
	case len(others) == 0:
		v.add("encryption", v.bucketID(), "the bucket's encryption configuration has no default rule: %s", fix)
	case !wantKMS:
	default:
		check := "encryption"
		if strings.HasPrefix(others[0], "aws:kms") {
			check = "key"
		}
		v.add(check, v.bucketID(), "default encryption is %s, not aws:kms with the key the lock records (%s): new state objects are not encrypted with it; %s",
			strings.Join(others, ", "), keyID, fix)
	}
	return nil
}

func (v *verifier) publicAccess() error {
	var out *awss3.GetPublicAccessBlockOutput
	ok, err := v.read("public_access", "GetPublicAccessBlock", !v.compatible(),
		"the bucket has no public access block: a policy or ACL could make the state public; run create again (it turns on all four settings)",
		func() (middleware.Metadata, error) {
			var err error
			out, err = v.s3.GetPublicAccessBlock(v.ctx, &awss3.GetPublicAccessBlockInput{Bucket: v.bucket})
			return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
		})
	if !ok {
		return err
	}
	if off := publicAccessOff(out.PublicAccessBlockConfiguration); len(off) > 0 {
		v.add("public_access", v.bucketID(), "the public access block has %s off: turn them on (%s put-public-access-block --bucket %s --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true)",
			strings.Join(off, ", "), v.cli("s3api"), v.spec.Bucket)
	}
	return nil
}

func (v *verifier) tlsPolicy() error {
	var out *awss3.GetBucketPolicyOutput
	const fix = "run create again (it adds the statement and keeps the others)"
	ok, err := v.read("tls_policy", "GetBucketPolicy", !v.compatible(), "the bucket has no policy, so it does not refuse plaintext (non-TLS) requests: "+fix,
		func() (middleware.Metadata, error) {
			var err error
			out, err = v.s3.GetBucketPolicy(v.ctx, &awss3.GetBucketPolicyInput{Bucket: v.bucket})
			return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
		})
	if !ok {
		return err
	}
	has, perr := hasTLSOnly(aws.ToString(out.Policy), v.bucketARN())
	switch {
	case perr != nil:
		v.add("tls_policy", v.bucketID(), "%v: replace it with a valid policy that denies s3:* when aws:SecureTransport is false", perr)
	case !has:
		v.add("tls_policy", v.bucketID(), "the bucket policy has no statement denying s3:* on the bucket and its objects when aws:SecureTransport is false: %s", fix)
	}
	return nil
}

func (v *verifier) tags() error {
	if len(v.spec.Tags) == 0 {
		return nil
	}
	var out *awss3.GetBucketTaggingOutput
	const fix = "run create again (it adds them and keeps the others)"
	ok, err := v.read("tags", "GetBucketTagging", !v.compatible(), "the bucket has none of the spec's tags: "+fix,
		func() (middleware.Metadata, error) {
			var err error
			out, err = v.s3.GetBucketTagging(v.ctx, &awss3.GetBucketTaggingInput{Bucket: v.bucket})
			return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
		})
	if !ok {
		return err
	}
	if missing := v.missingTags(out.TagSet); len(missing) > 0 {
		v.add("tags", v.bucketID(), "the bucket lacks the tags %s, or has other values for them: %s", strings.Join(missing, ", "), fix)
	}
	return nil
}

func (v *verifier) replication() error {
	if v.spec.Replica == nil {
		return nil
	}
	var out *awss3.GetBucketReplicationOutput
	const fix = "run create again to restore the replication rule"
	ok, err := v.read("replication", "GetBucketReplication", true, "the bucket does not replicate to "+v.replicaARN()+": "+fix,
		func() (middleware.Metadata, error) {
			var err error
			out, err = v.s3.GetBucketReplication(v.ctx, &awss3.GetBucketReplicationInput{Bucket: v.bucket})
			return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
		})
	if !ok {
		return err
	}
	if why := v.replicates(out.ReplicationConfiguration); why != "" {
		v.add("replication", v.bucketID(), "%s: %s", why, fix)
	}
	return nil
}

func (v *verifier) lockTable() error {
	name := v.spec.LockTable
	out, err := v.ddb.DescribeTable(v.ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	var nf *ddbtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		v.r.fail("dynamodb", "DescribeTable", name, "missing", err)
		v.add("lock_table", name, "the DynamoDB lock table does not exist, so OpenTofu cannot lock the state: run create again")
		return nil
	case err != nil:
		v.r.fail("dynamodb", "DescribeTable", name, "failed", err)
		return fmt.Errorf("DynamoDB table %s: dynamodb:DescribeTable: %w", name, err)
	}
	tableARN := aws.ToString(out.Table.TableArn)
	v.r.ok("dynamodb", "DescribeTable", tableARN, "read", out.ResultMetadata)
	if !lockSchema(out.Table) {
		v.add("lock_table", tableARN, "the lock table's key is not the %s string hash key OpenTofu locks with: recreate the table", lockKey)
	}
	return nil
}

func (v *verifier) key(keyID string) error {
	d, err := v.kms.DescribeKey(v.ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	var nf *kmstypes.NotFoundException
	switch {
	case errors.As(err, &nf):
		v.r.fail("kms", "DescribeKey", keyID, "missing", err)
		v.add("key", keyID, "the KMS key the lock records does not exist: the state encrypted with it cannot be read; restore the key or re-key the backend with a signed revocation")
		return nil
	case err != nil:
		v.r.fail("kms", "DescribeKey", keyID, "failed", err)
		return fmt.Errorf("KMS key %s: kms:DescribeKey: %w", keyID, err)
	}
	v.r.ok("kms", "DescribeKey", keyID, "read", d.ResultMetadata)
	if st := d.KeyMetadata.KeyState; st != kmstypes.KeyStateEnabled {
		fix := "enable it (aws kms enable-key --key-id " + keyID + ")"
		if st == kmstypes.KeyStatePendingDeletion {
			fix = "cancel the deletion now (aws kms cancel-key-deletion --key-id " + keyID + "), then enable it"
		}
		v.add("key", keyID, "the KMS key is %s, so the state cannot be read or written: %s", st, fix)
		return nil
	}
	rot, err := v.kms.GetKeyRotationStatus(v.ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(keyID)})
	if err != nil {
		v.r.fail("kms", "GetKeyRotationStatus", keyID, "failed", err)
		return fmt.Errorf("KMS key %s: kms:GetKeyRotationStatus: %w", keyID, err)
	}
	v.r.ok("kms", "GetKeyRotationStatus", keyID, "read", rot.ResultMetadata)
	days := int32(v.spec.Key.RotationDays)
	switch {
	case !rot.KeyRotationEnabled:
		v.add("key_rotation", keyID, "automatic rotation of the KMS key is off: turn it on (aws kms enable-key-rotation --key-id %s%s)", keyID, rotationFlag(days))
	case days > 0 && aws.ToInt32(rot.RotationPeriodInDays) != days:
		v.add("key_rotation", keyID, "the KMS key rotates every %d days, not every %d: aws kms enable-key-rotation --key-id %s%s",
			aws.ToInt32(rot.RotationPeriodInDays), days, keyID, rotationFlag(days))
	}
	return nil
}

func rotationFlag(days int32) string {
	if days <= 0 {
		return ""
	}
	return fmt.Sprintf(" --rotation-period-in-days %d", days)
}
