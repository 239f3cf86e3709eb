package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/groundzero/groundzero/internal/backend"
)

// lockKey is the hash key OpenTofu's DynamoDB locking writes.
const lockKey = "LockID"

// Create makes the key, the bucket and its settings, and the lock table, or
// finds them made: a setting that already is as wanted is read and left
// alone ("exists"). On an error it returns what it made so far, with every
// call, and the error.
func (s *Store) Create(ctx context.Context) (*backend.Provisioned, error) {
	r := &recorder{}
	p := &backend.Provisioned{Bucket: s.bucketID()}
	err := s.create(ctx, r, p)
	p.Calls = r.calls
	return p, err
}

func (s *Store) create(ctx context.Context, r *recorder, p *backend.Provisioned) error {
	key := ""
	switch {
	case s.spec.Key.Provider == backend.KeyAWSKMS:
		arn, err := s.ensureKey(ctx, r)
		if err != nil {
			return err
		}
		p.Key, key = arn, arn
	case s.spec.Kind == backend.KindOCI:
		key = s.spec.Key.ID
	}
	if err := s.ensureBucket(ctx, r, key); err != nil {
		return err
	}
	if s.spec.Lock == backend.LockDynamoDB {
		arn, err := s.ensureTable(ctx, r, key)
		if err != nil {
			return err
		}
		p.Lock = arn
	}
	return nil
}

// ensureKey finds the key alias/NAME or creates it, with the spec's tags, a
// key policy and rotation, and returns the key's ARN.
func (s *Store) ensureKey(ctx context.Context, r *recorder) (string, error) {
	alias := s.keyAlias()
	d, err := s.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
	var nf *kmstypes.NotFoundException
	switch {
	case err == nil:
		m := d.KeyMetadata
		keyARN := aws.ToString(m.Arn)
		r.ok("kms", "DescribeKey", keyARN, "exists", d.ResultMetadata)
		if m.KeyState != kmstypes.KeyStateEnabled {
			return "", fmt.Errorf("KMS key %s (%s) is %s, not Enabled: enable it or cancel its deletion (aws kms enable-key / cancel-key-deletion), or name another key", alias, keyARN, m.KeyState)
		}
		if m.KeySpec != kmstypes.KeySpecSymmetricDefault || m.KeyUsage != kmstypes.KeyUsageTypeEncryptDecrypt {
			return "", fmt.Errorf("KMS key %s (%s) is %s for %s; a state bucket needs a SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key: name another key", alias, keyARN, m.KeySpec, m.KeyUsage)
		}
		return keyARN, s.ensureRotation(ctx, r, keyARN, false)
	case errors.As(err, &nf):
		r.fail("kms", "DescribeKey", alias, "missing", err)
	default:
		r.fail("kms", "DescribeKey", alias, "failed", err)
		return "", fmt.Errorf("KMS key %s: kms:DescribeKey: %w", alias, err)
	}

	// The key policy names the account, which the caller's identity gives.
	who, err := s.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		r.fail("sts", "GetCallerIdentity", "", "failed", err)
		return "", fmt.Errorf("KMS key %s: the account for its key policy: sts:GetCallerIdentity: %w", alias, err)
	}
	r.ok("sts", "GetCallerIdentity", aws.ToString(who.Arn), "read", who.ResultMetadata)
	part := s.partition
	if a, err := arn.Parse(aws.ToString(who.Arn)); err == nil {
		part = a.Partition
	}
	var tags []kmstypes.Tag
	for _, t := range s.spec.SortedTags() {
		tags = append(tags, kmstypes.Tag{TagKey: aws.String(t[0]), TagValue: aws.String(t[1])})
	}
	c, err := s.kms.CreateKey(ctx, &kms.CreateKeyInput{
		Description: aws.String(fmt.Sprintf("groundzero state key of %s (bucket %s)", s.spec.Env, s.spec.Bucket)),
		KeySpec:     kmstypes.KeySpecSymmetricDefault,
		KeyUsage:    kmstypes.KeyUsageTypeEncryptDecrypt,
		Policy:      aws.String(keyPolicy(part, aws.ToString(who.Account))),
		Tags:        tags,
	})
	if err != nil {
		r.fail("kms", "CreateKey", alias, "failed", err)
		return "", fmt.Errorf("KMS key %s: kms:CreateKey: %w", alias, err)
	}
	keyARN := aws.ToString(c.KeyMetadata.Arn)
	r.ok("kms", "CreateKey", keyARN, "created", c.ResultMetadata)
	a, err := s.kms.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(keyARN)})
	if err != nil {
		r.fail("kms", "CreateAlias", keyARN, "failed", err)
		// Without its alias the next run would not find this key and
		// would make another.
		return keyARN, fmt.Errorf("KMS key %s was created as %s, but kms:CreateAlias failed: %w; create the alias (aws kms create-alias --alias-name %s --target-key-id %s) or schedule the key's deletion, then run again",
			alias, keyARN, err, alias, keyARN)
	}
	r.ok("kms", "CreateAlias", keyARN, "created", a.ResultMetadata)
	return keyARN, s.ensureRotation(ctx, r, keyARN, true)
}

// ensureRotation turns on the key's automatic rotation, with the spec's
// period when it names one; fresh skips reading the rotation of a key just
// made.
func (s *Store) ensureRotation(ctx context.Context, r *recorder, keyARN string, fresh bool) error {
	days := int32(s.spec.Key.RotationDays)
	outcome := "created"
	if !fresh {
		st, err := s.kms.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(keyARN)})
		if err != nil {
			r.fail("kms", "GetKeyRotationStatus", keyARN, "failed", err)
			return fmt.Errorf("KMS key %s: kms:GetKeyRotationStatus: %w", keyARN, err)
		}
		if st.KeyRotationEnabled && (days == 0 || aws.ToInt32(st.RotationPeriodInDays) == days) {
			r.ok("kms", "GetKeyRotationStatus", keyARN, "exists", st.ResultMetadata)
			return nil
		}
		r.ok("kms", "GetKeyRotationStatus", keyARN, "read", st.ResultMetadata)
		outcome = "updated"
	}
	in := &kms.EnableKeyRotationInput{KeyId: aws.String(keyARN)}
	if days > 0 {
		in.RotationPeriodInDays = aws.Int32(days)
	}
	out, err := s.kms.EnableKeyRotation(ctx, in)
	if err != nil {
		r.fail("kms", "EnableKeyRotation", keyARN, "failed", err)
		return fmt.Errorf("KMS key %s: kms:EnableKeyRotation: %w", keyARN, err)
	}
	r.ok("kms", "EnableKeyRotation", keyARN, outcome, out.ResultMetadata)
	return nil
}

// ensureBucket finds or creates the bucket, with its tags in the create
// request itself (tag-enforcing SCPs refuse a bucket tagged afterwards), and
// brings its settings to the spec. key is the KMS key of its default
// encryption, "" for the store's own keys (AES256).
func (s *Store) ensureBucket(ctx context.Context, r *recorder, key string) error {
	exists, err := s.headBucket(ctx, r)
	if err != nil {
		return err
	}
	bucket := aws.String(s.spec.Bucket)
	if !exists {
		var cfg *s3types.CreateBucketConfiguration
		if tags := s.s3Tags(); len(tags) > 0 {
			cfg = &s3types.CreateBucketConfiguration{Tags: tags}
		}
		// Only AWS places buckets by region; compatible stores refuse or
		// ignore a location constraint.
		if s.spec.Kind == backend.KindS3 && s.spec.Region != "us-east-1" {
			if cfg == nil {
				cfg = &s3types.CreateBucketConfiguration{}
			}
			cfg.LocationConstraint = s3types.BucketLocationConstraint(s.spec.Region)
		}
		out, err := s.s3.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: bucket, CreateBucketConfiguration: cfg})
		if err != nil {
			r.fail("s3", "CreateBucket", s.bucketID(), "failed", err)
			if code(err) == "BucketAlreadyExists" {
				return fmt.Errorf("bucket %s belongs to another account (bucket names are global): choose another name: %w", s.spec.Bucket, err)
			}
			return fmt.Errorf("bucket %s: s3:CreateBucket: %w", s.spec.Bucket, err)
		}
		r.ok("s3", "CreateBucket", s.bucketID(), "created", out.ResultMetadata)
	}
	fresh := !exists

	var steps []setting
	if s.spec.Versioning {
		steps = append(steps, setting{name: "versioning", getOp: "GetBucketVersioning", putOp: "PutBucketVersioning", fresh: fresh,
			get: func() (bool, middleware.Metadata, error) {
				out, err := s.s3.GetBucketVersioning(ctx, &awss3.GetBucketVersioningInput{Bucket: bucket})
				if err != nil {
					return false, middleware.Metadata{}, err
				}
				return out.Status == s3types.BucketVersioningStatusEnabled, out.ResultMetadata, nil
			},
			put: func() (middleware.Metadata, error) {
				out, err := s.s3.PutBucketVersioning(ctx, &awss3.PutBucketVersioningInput{Bucket: bucket,
					VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})
				return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
			}})
	}
	alg, bucketKey := s3types.ServerSideEncryptionAes256, false
	if key != "" {
		alg, bucketKey = s3types.ServerSideEncryptionAwsKms, true
	}
	steps = append(steps, setting{name: "default encryption", getOp: "GetBucketEncryption", putOp: "PutBucketEncryption", fresh: fresh,
		get: func() (bool, middleware.Metadata, error) {
			out, err := s.s3.GetBucketEncryption(ctx, &awss3.GetBucketEncryptionInput{Bucket: bucket})
			if err != nil {
				return false, middleware.Metadata{}, err
			}
			for _, rule := range rulesOf(out.ServerSideEncryptionConfiguration) {
				if d := rule.ApplyServerSideEncryptionByDefault; d != nil && d.SSEAlgorithm == alg &&
					(key == "" || sameKey(aws.ToString(d.KMSMasterKeyID), key)) && aws.ToBool(rule.BucketKeyEnabled) == bucketKey {
					return true, out.ResultMetadata, nil
				}
			}
			return false, out.ResultMetadata, nil
		},
		put: func() (middleware.Metadata, error) {
			def := &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: alg}
			if key != "" {
				def.KMSMasterKeyID = aws.String(key)
			}
			rule := s3types.ServerSideEncryptionRule{ApplyServerSideEncryptionByDefault: def}
			if bucketKey {
				rule.BucketKeyEnabled = aws.Bool(true)
			}
			out, err := s.s3.PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: bucket,
				ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{rule}}})
			return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
		}})
	steps = append(steps, setting{name: "public access block", getOp: "GetPublicAccessBlock", putOp: "PutPublicAccessBlock", fresh: fresh,
		get: func() (bool, middleware.Metadata, error) {
			out, err := s.s3.GetPublicAccessBlock(ctx, &awss3.GetPublicAccessBlockInput{Bucket: bucket})
			if err != nil {
				return false, middleware.Metadata{}, err
			}
			return len(publicAccessOff(out.PublicAccessBlockConfiguration)) == 0, out.ResultMetadata, nil
		},
		put: func() (middleware.Metadata, error) {
			out, err := s.s3.PutPublicAccessBlock(ctx, &awss3.PutPublicAccessBlockInput{Bucket: bucket,
				PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
					BlockPublicAcls: aws.Bool(true), IgnorePublicAcls: aws.Bool(true),
					BlockPublicPolicy: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true)}})
			return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
		}})
	var policy string // the bucket's policy, to keep its other statements
	steps = append(steps, setting{name: "TLS-only bucket policy", getOp: "GetBucketPolicy", putOp: "PutBucketPolicy", fresh: fresh,
		get: func() (bool, middleware.Metadata, error) {
			out, err := s.s3.GetBucketPolicy(ctx, &awss3.GetBucketPolicyInput{Bucket: bucket})
			if err != nil {
				return false, middleware.Metadata{}, err
			}
			policy = aws.ToString(out.Policy)
			ok, err := hasTLSOnly(policy, s.bucketARN())
			return ok, out.ResultMetadata, err
		},
		put: func() (middleware.Metadata, error) {
			doc, _, err := withTLSOnly(policy, s.bucketARN())
			if err != nil {
				return middleware.Metadata{}, err
			}
			out, err := s.s3.PutBucketPolicy(ctx, &awss3.PutBucketPolicyInput{Bucket: bucket, Policy: aws.String(doc)})
			return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
		}})
	if len(s.spec.Tags) > 0 {
		var current []s3types.Tag
		steps = append(steps, setting{name: "tags", getOp: "GetBucketTagging", putOp: "PutBucketTagging",
			// AWS took the tags with the bucket; a compatible store may
			// have dropped them.
			fresh: fresh && !s.compatible(),
			get: func() (bool, middleware.Metadata, error) {
				out, err := s.s3.GetBucketTagging(ctx, &awss3.GetBucketTaggingInput{Bucket: bucket})
				if err != nil {
					return false, middleware.Metadata{}, err
				}
				current = out.TagSet
				return len(s.missingTags(current)) == 0, out.ResultMetadata, nil
			},
			put: func() (middleware.Metadata, error) {
				out, err := s.s3.PutBucketTagging(ctx, &awss3.PutBucketTaggingInput{Bucket: bucket,
					Tagging: &s3types.Tagging{TagSet: s.mergeTags(current)}})
				return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
			}})
	}
	if rep := s.spec.Replica; rep != nil {
		steps = append(steps, setting{name: "replication", getOp: "GetBucketReplication", putOp: "PutBucketReplication", fresh: fresh,
			get: func() (bool, middleware.Metadata, error) {
				out, err := s.s3.GetBucketReplication(ctx, &awss3.GetBucketReplicationInput{Bucket: bucket})
				if err != nil {
					return false, middleware.Metadata{}, err
				}
				return s.replicates(out.ReplicationConfiguration) == "", out.ResultMetadata, nil
			},
			put: func() (middleware.Metadata, error) {
				out, err := s.s3.PutBucketReplication(ctx, &awss3.PutBucketReplicationInput{Bucket: bucket,
					ReplicationConfiguration: s.replication()})
				return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
			}})
	}
	for _, st := range steps {
		if err := s.ensure(r, st); err != nil {
			return err
		}
	}
	return nil
}

// setting is one bucket setting Create brings to the spec.
type setting struct {
	name         string // for errors
	getOp, putOp string
	fresh        bool // the bucket was just made: write without reading
	// get reads the setting and reports whether it is as wanted.
	get func() (bool, middleware.Metadata, error)
	put func() (middleware.Metadata, error)
}

// ensure reads a setting and writes it when it is not as wanted. A
// compatible store's 501 is recorded as "unsupported" and skipped.
func (s *Store) ensure(r *recorder, st setting) error {
	res := s.bucketID()
	outcome := "created"
	if !st.fresh {
		ok, md, err := st.get()
		switch {
		case err == nil && ok:
			r.ok("s3", st.getOp, res, "exists", md)
			return nil
		case err == nil:
			r.ok("s3", st.getOp, res, "read", md)
			outcome = "updated"
		case absent(err):
			r.fail("s3", st.getOp, res, "missing", err)
		case s.compatible() && unsupported(err):
			r.fail("s3", st.getOp, res, "unsupported", err)
			return nil
		default:
			r.fail("s3", st.getOp, res, "failed", err)
			return fmt.Errorf("bucket %s: %s: s3:%s: %w", s.spec.Bucket, st.name, st.getOp, err)
		}
	}
	md, err := st.put()
	switch {
	case err == nil:
		r.ok("s3", st.putOp, res, outcome, md)
		return nil
	case s.compatible() && unsupported(err):
		r.fail("s3", st.putOp, res, "unsupported", err)
		return nil
	}
	r.fail("s3", st.putOp, res, "failed", err)
	return fmt.Errorf("bucket %s: %s: s3:%s: %w", s.spec.Bucket, st.name, st.putOp, err)
}

// metadata returns an output's metadata, or the error.
func metadata[T any](out *T, err error, md func() middleware.Metadata) (middleware.Metadata, error) {
	if err != nil || out == nil {
		return middleware.Metadata{}, err
	}
	return md(), nil
}

// ensureTable finds or creates the DynamoDB lock table and returns its ARN.
func (s *Store) ensureTable(ctx context.Context, r *recorder, key string) (string, error) {
	name := s.spec.LockTable
	d, err := s.ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	var nf *ddbtypes.ResourceNotFoundException
	switch {
	case err == nil:
		tableARN := aws.ToString(d.Table.TableArn)
		r.ok("dynamodb", "DescribeTable", tableARN, "exists", d.ResultMetadata)
		if !lockSchema(d.Table) {
			return tableARN, fmt.Errorf("DynamoDB table %s exists without the %s string hash key OpenTofu locks with: name another lock_table", name, lockKey)
		}
		return tableARN, nil
	case errors.As(err, &nf):
		r.fail("dynamodb", "DescribeTable", name, "missing", err)
	default:
		r.fail("dynamodb", "DescribeTable", name, "failed", err)
		return "", fmt.Errorf("DynamoDB table %s: dynamodb:DescribeTable: %w", name, err)
	}
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String(lockKey), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String(lockKey), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	}
	if key != "" {
		in.SSESpecification = &ddbtypes.SSESpecification{Enabled: aws.Bool(true), SSEType: ddbtypes.SSETypeKms, KMSMasterKeyId: aws.String(key)}
	}
	for _, t := range s.spec.SortedTags() {
		in.Tags = append(in.Tags, ddbtypes.Tag{Key: aws.String(t[0]), Value: aws.String(t[1])})
	}
	c, err := s.ddb.CreateTable(ctx, in)
	if err != nil {
		r.fail("dynamodb", "CreateTable", name, "failed", err)
		return "", fmt.Errorf("DynamoDB table %s: dynamodb:CreateTable: %w", name, err)
	}
	tableARN := aws.ToString(c.TableDescription.TableArn)
	r.ok("dynamodb", "CreateTable", tableARN, "created", c.ResultMetadata)
	return tableARN, nil
}

// lockSchema reports whether a table has the LockID string hash key alone.
func lockSchema(t *ddbtypes.TableDescription) bool {
	if t == nil || len(t.KeySchema) != 1 || aws.ToString(t.KeySchema[0].AttributeName) != lockKey || t.KeySchema[0].KeyType != ddbtypes.KeyTypeHash {
		return false
	}
	for _, a := range t.AttributeDefinitions {
		if aws.ToString(a.AttributeName) == lockKey {
			return a.AttributeType == ddbtypes.ScalarAttributeTypeS
		}
	}
	return false
}

// s3Tags are the spec's tags for S3, in name order.
func (s *Store) s3Tags() []s3types.Tag {
	var tags []s3types.Tag
	for _, t := range s.spec.SortedTags() {
		tags = append(tags, s3types.Tag{Key: aws.String(t[0]), Value: aws.String(t[1])})
	}
	return tags
}

// missingTags lists the spec's tags that a tag set lacks or gives another
// value.
func (s *Store) missingTags(have []s3types.Tag) []string {
	got := map[string]string{}
	for _, t := range have {
		got[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	var missing []string
	for _, t := range s.spec.SortedTags() {
		if v, ok := got[t[0]]; !ok || v != t[1] {
			missing = append(missing, t[0])
		}
	}
	return missing
}

// mergeTags is a tag set with the spec's tags set and the others kept.
func (s *Store) mergeTags(have []s3types.Tag) []s3types.Tag {
	out := s.s3Tags()
	for _, t := range have {
		if _, ok := s.spec.Tags[aws.ToString(t.Key)]; !ok {
			out = append(out, t)
		}
	}
	return out
}

// replicaRule names the replication rule Create writes.
const replicaRule = "groundzero-state-replica"

// replication is the bucket's replication configuration: every object to
// the replica bucket, re-encrypted there with the replica's key when the
// state is encrypted with a KMS key.
func (s *Store) replication() *s3types.ReplicationConfiguration {
	rep := s.spec.Replica
	rule := s3types.ReplicationRule{
		ID:                      aws.String(replicaRule),
		Status:                  s3types.ReplicationRuleStatusEnabled,
		Priority:                aws.Int32(1),
		Filter:                  &s3types.ReplicationRuleFilter{Prefix: aws.String("")},
		DeleteMarkerReplication: &s3types.DeleteMarkerReplication{Status: s3types.DeleteMarkerReplicationStatusDisabled},
		Destination:             &s3types.Destination{Bucket: aws.String(s.replicaARN())},
	}
	if rep.Key != "" {
		rule.SourceSelectionCriteria = &s3types.SourceSelectionCriteria{
			SseKmsEncryptedObjects: &s3types.SseKmsEncryptedObjects{Status: s3types.SseKmsEncryptedObjectsStatusEnabled}}
		rule.Destination.EncryptionConfiguration = &s3types.EncryptionConfiguration{ReplicaKmsKeyID: aws.String(rep.Key)}
	}
	return &s3types.ReplicationConfiguration{Role: aws.String(rep.Role), Rules: []s3types.ReplicationRule{rule}}
}

func (s *Store) replicaARN() string { return "arn:" + s.partition + ":s3:::" + s.spec.Replica.Bucket }

// replicates says what keeps a replication configuration from copying every
// object to the replica, "" when nothing does.
func (s *Store) replicates(c *s3types.ReplicationConfiguration) string {
	if c == nil {
		return "the bucket has no replication configuration"
	}
	for _, rule := range c.Rules {
		if rule.Destination == nil || aws.ToString(rule.Destination.Bucket) != s.replicaARN() {
			continue
		}
		switch {
		case rule.Status != s3types.ReplicationRuleStatusEnabled:
			return fmt.Sprintf("the rule replicating to %s is %s", s.replicaARN(), rule.Status)
		case rule.Filter != nil && (aws.ToString(rule.Filter.Prefix) != "" || rule.Filter.Tag != nil || rule.Filter.And != nil),
			rule.Filter == nil && aws.ToString(rule.Prefix) != "":
			return fmt.Sprintf("the rule replicating to %s covers only some objects", s.replicaARN())
		case s.spec.Replica.Key != "" && (rule.SourceSelectionCriteria == nil || rule.SourceSelectionCriteria.SseKmsEncryptedObjects == nil ||
			rule.SourceSelectionCriteria.SseKmsEncryptedObjects.Status != s3types.SseKmsEncryptedObjectsStatusEnabled):
			return fmt.Sprintf("the rule replicating to %s skips SSE-KMS objects, and the state is one", s.replicaARN())
		}
		return ""
	}
	return "no rule replicates to " + s.replicaARN()
}

// rulesOf returns an encryption configuration's rules.
func rulesOf(c *s3types.ServerSideEncryptionConfiguration) []s3types.ServerSideEncryptionRule {
	if c == nil {
		return nil
	}
	return c.Rules
}

// publicAccessOff lists the public access block settings that are not on.
func publicAccessOff(c *s3types.PublicAccessBlockConfiguration) []string {
	if c == nil {
		return []string{"BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"}
	}
	var off []string
	for _, f := range []struct {
		name string
		on   *bool
	}{{"BlockPublicAcls", c.BlockPublicAcls}, {"IgnorePublicAcls", c.IgnorePublicAcls},
		{"BlockPublicPolicy", c.BlockPublicPolicy}, {"RestrictPublicBuckets", c.RestrictPublicBuckets}} {
		if !aws.ToBool(f.on) {
			off = append(off, f.name)
		}
	}
	return off
}

// sameKey reports whether two KMS key identifiers name one key: equal, or
// one the key ARN of the other's key id.
func sameKey(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	return a == b || strings.HasSuffix(a, ":key/"+b) || strings.HasSuffix(b, ":key/"+a)
}
