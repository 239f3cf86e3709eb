package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/groundzero/groundzero/internal/backend"
)

// probeDir is the folder, under the spec's prefix, that probes write in;
// the state key is never under it.
const probeDir = ".groundzero-probe"

// Probe checks what the store does, in backend.Probes order. The write
// probes use objects under PREFIX/.groundzero-probe/RANDOM and delete them
// (every version, on a versioned bucket) afterwards. A capability the store
// does not implement (501) fails with the store's answer in its Detail; the
// error is for a store that cannot be reached or refuses the credentials.
func (s *Store) Probe(ctx context.Context) ([]backend.ProbeResult, []backend.Call, error) {
	r := &recorder{}
	res, err := s.probe(ctx, r)
	return res, r.calls, err
}

type prober struct {
	*Store
	r      *recorder
	ctx    context.Context
	bucket *string
	got    map[string]backend.ProbeResult
}

func (p *prober) set(name string, ok bool, format string, args ...any) {
	p.got[name] = backend.ProbeResult{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)}
}

func (s *Store) probe(ctx context.Context, r *recorder) ([]backend.ProbeResult, error) {
	exists, err := s.headBucket(ctx, r)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("bucket %s does not exist: create the store before probing it", s.spec.Bucket)
	}
	p := &prober{Store: s, r: r, ctx: ctx, bucket: aws.String(s.spec.Bucket), got: map[string]backend.ProbeResult{}}
	status, err := p.versioning()
	if err != nil {
		return nil, err
	}
	var nonce [8]byte
	rand.Read(nonce[:])
	dir := path.Join(strings.Trim(s.spec.Prefix, "/"), probeDir, hex.EncodeToString(nonce[:]))
	defer p.cleanup(dir, status != "")
	for _, step := range []func() error{
		func() error { return p.conditional(path.Join(dir, "conditional")) },
		func() error { return p.afterDelete(path.Join(dir, "after-delete"), status) },
		p.encryption, p.objectLock, p.tags, p.publicAccess,
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	out := make([]backend.ProbeResult, 0, len(backend.Probes))
	for _, name := range backend.Probes {
		out = append(out, p.got[name])
	}
	return out, nil
}

// read makes one read of a bucket setting for a probe. It returns false
// when the probe is settled: the store does not implement the read (501),
// or the setting was never made and absent describes that.
func (p *prober) read(name, op string, md func() (middleware.Metadata, error), absentDetail string) (bool, error) {
	m, err := md()
	switch {
	case err == nil:
		p.r.ok("s3", op, p.bucketID(), "read", m)
		return true, nil
	case unsupported(err):
		p.r.fail("s3", op, p.bucketID(), "unsupported", err)
		p.set(name, false, "the store does not implement s3:%s (it answered %s)", op, answer(err))
		return false, nil
	case absent(err):
		p.r.fail("s3", op, p.bucketID(), "missing", err)
		p.set(name, false, "%s", absentDetail)
		return false, nil
	}
	p.r.fail("s3", op, p.bucketID(), "failed", err)
	return false, fmt.Errorf("bucket %s: s3:%s: %w", p.spec.Bucket, op, err)
}

// versioning probes versioning and returns the bucket's status ("" when it
// was never turned on or the store has no versions).
func (p *prober) versioning() (s3types.BucketVersioningStatus, error) {
	var out *awss3.GetBucketVersioningOutput
	ok, err := p.read(backend.ProbeVersioning, "GetBucketVersioning", func() (middleware.Metadata, error) {
		var err error
		out, err = p.s3.GetBucketVersioning(p.ctx, &awss3.GetBucketVersioningInput{Bucket: p.bucket})
		return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
	}, "the store keeps no versions")
	if !ok {
		return "", err
	}
	switch out.Status {
	case s3types.BucketVersioningStatusEnabled:
		p.set(backend.ProbeVersioning, true, "versioning is Enabled")
	case "":
		p.set(backend.ProbeVersioning, false, "versioning was never turned on for the bucket")
	default:
		p.set(backend.ProbeVersioning, false, "versioning is %s", out.Status)
	}
	return out.Status, nil
}

// put writes a probe object, with If-None-Match: * when exclusive.
func (p *prober) put(key string, exclusive bool) error {
	body := []byte("groundzero capability probe\n")
	in := &awss3.PutObjectInput{Bucket: p.bucket, Key: aws.String(key), Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))}
	if exclusive {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := p.s3.PutObject(p.ctx, in)
	res := p.bucketID() + "/" + key
	switch {
	case err == nil:
		p.r.ok("s3", "PutObject", res, "written", out.ResultMetadata)
	case exclusive && refused(err):
		p.r.fail("s3", "PutObject", res, "refused", err)
	case unsupported(err):
		p.r.fail("s3", "PutObject", res, "unsupported", err)
	default:
		p.r.fail("s3", "PutObject", res, "failed", err)
	}
	return err
}

// refused reports whether the store refused a conditional write: 412
// PreconditionFailed, or 409 ConditionalRequestConflict.
func refused(err error) bool { return status(err) == 412 || status(err) == 409 }

// conditional checks that If-None-Match: * creates a new key and refuses an
// existing one; a store that ignores it lets two OpenTofu runs both take
// the lock file (T28).
func (p *prober) conditional(key string) error {
	const name = backend.ProbeConditionalWrite
	err := p.put(key, true)
	switch {
	case err != nil && unsupported(err):
		p.set(name, false, "the store does not implement If-None-Match: * on PutObject (it answered %s)", answer(err))
		return nil
	case err != nil && refused(err):
		p.set(name, false, "the store refused If-None-Match: * for a key that does not exist (it answered %s)", answer(err))
		return nil
	case err != nil:
		return fmt.Errorf("bucket %s: cannot write the probe object %s: %w", p.spec.Bucket, key, err)
	}
	err = p.put(key, true)
	switch {
	case err == nil:
		p.set(name, false, "the store accepted If-None-Match: * for an existing key and overwrote it, so two runs could both take OpenTofu's lock file (use_lockfile); use a store that honours conditional writes")
	case refused(err):
		p.set(name, true, "If-None-Match: * created a new key and refused an existing one (%s)", answer(err))
	case unsupported(err):
		p.set(name, false, "the store does not implement If-None-Match: * on an existing key (it answered %s)", answer(err))
	default:
		return fmt.Errorf("bucket %s: probe object %s: %w", p.spec.Bucket, key, err)
	}
	return nil
}

// afterDelete checks that If-None-Match: * creates a key whose newest
// version is a delete marker, as OpenTofu's use_lockfile needs from its
// second run on (it deletes the lock file at the end of every run).
func (p *prober) afterDelete(key string, versioning s3types.BucketVersioningStatus) error {
	const name = backend.ProbeConditionalAfterMark
	if err := p.put(key, false); err != nil {
		return fmt.Errorf("bucket %s: cannot write the probe object %s: %w", p.spec.Bucket, key, err)
	}
	out, err := p.s3.DeleteObject(p.ctx, &awss3.DeleteObjectInput{Bucket: p.bucket, Key: aws.String(key)})
	if err != nil {
		p.r.fail("s3", "DeleteObject", p.bucketID()+"/"+key, "failed", err)
		return fmt.Errorf("bucket %s: cannot delete the probe object %s: %w", p.spec.Bucket, key, err)
	}
	p.r.ok("s3", "DeleteObject", p.bucketID()+"/"+key, "deleted", out.ResultMetadata)
	err = p.put(key, true)
	marker := aws.ToBool(out.DeleteMarker) || versioning != ""
	switch {
	case err == nil && marker:
		p.set(name, true, "If-None-Match: * created a key whose newest version is a delete marker (versioning %s)", versioning)
	case err == nil:
		p.set(name, true, "If-None-Match: * created a deleted key; the bucket is not versioned, so a delete leaves no marker and this store defect cannot arise here")
	case refused(err) || unsupported(err):
		p.set(name, false, "the store refused If-None-Match: * for a key whose newest version is a delete marker (it answered %s); OpenTofu's use_lockfile deletes its lock file after every run, so every run after the first would fail to take the lock. Use an unversioned bucket (waiving the versioning probe) or a store without this defect", answer(err))
	default:
		return fmt.Errorf("bucket %s: probe object %s: %w", p.spec.Bucket, key, err)
	}
	return nil
}

// expectedKey is the KMS key the bucket's default encryption should use:
// the spec's key id, else (aws_kms) the key its alias names; "" when the
// state is not encrypted with a KMS key and any default encryption will do.
func (p *prober) expectedKey() (string, error) {
	switch {
	case !p.wantsKMS():
		return "", nil
	case p.spec.Key.ID != "":
		return p.spec.Key.ID, nil
	}
	alias := p.keyAlias()
	out, err := p.kms.DescribeKey(p.ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
	if err != nil {
		p.r.fail("kms", "DescribeKey", alias, "failed", err)
		return "", fmt.Errorf("KMS key %s: kms:DescribeKey: %w", alias, err)
	}
	keyARN := aws.ToString(out.KeyMetadata.Arn)
	p.r.ok("kms", "DescribeKey", keyARN, "read", out.ResultMetadata)
	return keyARN, nil
}

func (p *prober) encryption() error {
	const name = backend.ProbeEncryption
	var out *awss3.GetBucketEncryptionOutput
	ok, err := p.read(name, "GetBucketEncryption", func() (middleware.Metadata, error) {
		var err error
		out, err = p.s3.GetBucketEncryption(p.ctx, &awss3.GetBucketEncryptionInput{Bucket: p.bucket})
		return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
	}, "the bucket has no default encryption")
	if !ok {
		return err
	}
	want, err := p.expectedKey()
	if err != nil {
		return err
	}
	var seen []string
	for _, rule := range rulesOf(out.ServerSideEncryptionConfiguration) {
		d := rule.ApplyServerSideEncryptionByDefault
		if d == nil {
			continue
		}
		k := aws.ToString(d.KMSMasterKeyID)
		seen = append(seen, strings.TrimSpace(string(d.SSEAlgorithm)+" "+k))
		if want == "" || (d.SSEAlgorithm != s3types.ServerSideEncryptionAes256 && sameKey(k, want)) {
			p.set(name, true, "default encryption %s", seen[len(seen)-1])
			return nil
		}
	}
	if len(seen) == 0 {
		p.set(name, false, "the bucket's encryption configuration has no default rule")
	} else {
		p.set(name, false, "default encryption is %s, not aws:kms with %s", strings.Join(seen, ", "), want)
	}
	return nil
}

func (p *prober) objectLock() error {
	const name = backend.ProbeObjectLock
	var out *awss3.GetObjectLockConfigurationOutput
	ok, err := p.read(name, "GetObjectLockConfiguration", func() (middleware.Metadata, error) {
		var err error
		out, err = p.s3.GetObjectLockConfiguration(p.ctx, &awss3.GetObjectLockConfigurationInput{Bucket: p.bucket})
		return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
	}, "the bucket has no Object Lock (informational: a state bucket does not need it)")
	if !ok {
		return err
	}
	if c := out.ObjectLockConfiguration; c != nil && c.ObjectLockEnabled == s3types.ObjectLockEnabledEnabled {
		p.set(name, true, "Object Lock is enabled")
	} else {
		p.set(name, false, "the bucket has no Object Lock (informational: a state bucket does not need it)")
	}
	return nil
}

func (p *prober) tags() error {
	const name = backend.ProbeCreateTags
	if len(p.spec.Tags) == 0 {
		p.set(name, true, "the spec asks for no tags")
		return nil
	}
	var out *awss3.GetBucketTaggingOutput
	ok, err := p.read(name, "GetBucketTagging", func() (middleware.Metadata, error) {
		var err error
		out, err = p.s3.GetBucketTagging(p.ctx, &awss3.GetBucketTaggingInput{Bucket: p.bucket})
		return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
	}, "the bucket has none of the spec's tags")
	if !ok {
		return err
	}
	if missing := p.missingTags(out.TagSet); len(missing) > 0 {
		p.set(name, false, "the bucket lacks the tags %s (or has other values)", strings.Join(missing, ", "))
	} else {
		p.set(name, true, "the bucket has the spec's %d tags", len(p.spec.Tags))
	}
	return nil
}

func (p *prober) publicAccess() error {
	const name = backend.ProbePublicAccessBlock
	var out *awss3.GetPublicAccessBlockOutput
	ok, err := p.read(name, "GetPublicAccessBlock", func() (middleware.Metadata, error) {
		var err error
		out, err = p.s3.GetPublicAccessBlock(p.ctx, &awss3.GetPublicAccessBlockInput{Bucket: p.bucket})
		return metadata(out, err, func() middleware.Metadata { return out.ResultMetadata })
	}, "the bucket has no public access block")
	if !ok {
		return err
	}
	if off := publicAccessOff(out.PublicAccessBlockConfiguration); len(off) > 0 {
		p.set(name, false, "the public access block has %s off", strings.Join(off, ", "))
	} else {
		p.set(name, true, "all four public access block settings are on")
	}
	return nil
}

// cleanup deletes the probe's objects, every version of them when the
// bucket keeps versions. It goes on after the probe's context ends, and
// records what it did; what it cannot delete stays under the probe folder.
func (p *prober) cleanup(dir string, versions bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), 30*time.Second)
	defer cancel()
	del := func(key, version string) {
		in := &awss3.DeleteObjectInput{Bucket: p.bucket, Key: aws.String(key)}
		if version != "" {
			in.VersionId = aws.String(version)
		}
		out, err := p.s3.DeleteObject(ctx, in)
		if err != nil {
			p.r.fail("s3", "DeleteObject", p.bucketID()+"/"+key, "failed", err)
			return
		}
		p.r.ok("s3", "DeleteObject", p.bucketID()+"/"+key, "deleted", out.ResultMetadata)
	}
	prefix := dir + "/"
	if !versions {
		out, err := p.s3.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: p.bucket, Prefix: aws.String(prefix)})
		if err != nil {
			p.r.fail("s3", "ListObjectsV2", p.bucketID()+"/"+prefix, "failed", err)
			return
		}
		p.r.ok("s3", "ListObjectsV2", p.bucketID()+"/"+prefix, "read", out.ResultMetadata)
		for _, o := range out.Contents {
			del(aws.ToString(o.Key), "")
		}
		return
	}
	out, err := p.s3.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: p.bucket, Prefix: aws.String(prefix)})
	if err != nil {
		p.r.fail("s3", "ListObjectVersions", p.bucketID()+"/"+prefix, "failed", err)
		return
	}
	p.r.ok("s3", "ListObjectVersions", p.bucketID()+"/"+prefix, "read", out.ResultMetadata)
	for _, v := range out.Versions {
		del(aws.ToString(v.Key), aws.ToString(v.VersionId))
	}
	for _, m := range out.DeleteMarkers {
		del(aws.ToString(m.Key), aws.ToString(m.VersionId))
	}
}
