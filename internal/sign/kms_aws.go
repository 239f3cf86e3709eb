package sign

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go/middleware"
)

// awsKey is an asymmetric AWS KMS key (key spec ECC_NIST_P256, key usage
// SIGN_VERIFY). Credentials, the region and the endpoint come from the
// SDK's usual sources (environment, shared config, web identity, instance
// role; AWS_ENDPOINT_URL_KMS), the region also from the KEYSPEC or the ARN.
type awsKey struct {
	keyID  string // as the KEYSPEC names it
	region string // "" for the SDK's default
	client *kms.Client
	arn    string // the key's ARN, from GetPublicKey
	calls  []Request
}

var (
	awsRegion = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	// key ID, key ARN, alias name or alias ARN (KMS's own forms)
	awsKeyID = regexp.MustCompile(`^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias/[A-Za-z0-9/_-]{1,250}|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(?:key/(?:[0-9a-f-]{36}|mrk-[0-9a-f]{32})|alias/[A-Za-z0-9/_-]{1,250}))$`)
)

func newAWSKey(spec Spec) (*awsKey, error) {
	id, query, _ := strings.Cut(spec.Value, "?")
	if !awsKeyID.MatchString(id) {
		return nil, &SpecError{Spec: spec.String(), Reason: "expected awskms:<key-id>, awskms:<key-arn>, awskms:alias/<name> or an alias ARN, optionally with ?region=R"}
	}
	k := &awsKey{keyID: id}
	if strings.HasPrefix(id, "arn:") {
		k.region = strings.Split(id, ":")[3]
	}
	opts, err := specOptions(spec, query, "region")
	if err != nil {
		return nil, err
	}
	if r, ok := opts["region"]; ok {
		if !awsRegion.MatchString(r) {
			return nil, &SpecError{Spec: spec.String(), Reason: fmt.Sprintf("region %q is not an AWS region name such as eu-west-1", r)}
		}
		if k.region != "" && k.region != r {
			return nil, &SpecError{Spec: spec.String(), Reason: fmt.Sprintf("the key ARN is in region %s, not %s", k.region, r)}
		}
		k.region = r
	}
	return k, nil
}

// specOptions parses a KEYSPEC's ?name=value options; each may be given
// once, and only the names allowed.
func specOptions(spec Spec, query string, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	if query == "" {
		return out, nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, &SpecError{Spec: spec.String(), Reason: "the options after ? are not name=value pairs joined by &"}
	}
	for name, vals := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			return nil, &SpecError{Spec: spec.String(), Reason: fmt.Sprintf("unknown option %q; %s: takes %s", name, spec.Kind, strings.Join(allowed, ", "))}
		}
		if len(vals) != 1 || vals[0] == "" {
			return nil, &SpecError{Spec: spec.String(), Reason: fmt.Sprintf("option %q needs one value", name)}
		}
		out[name] = vals[0]
	}
	return out, nil
}

func (k *awsKey) connect(ctx context.Context) (*kms.Client, error) {
	if k.client != nil {
		return k.client, nil
	}
	var load []func(*config.LoadOptions) error
	if k.region != "" {
		load = append(load, config.WithRegion(k.region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %v", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: add ?region=R to the KEYSPEC, use the key's ARN, or set AWS_REGION")
	}
	k.client = kms.NewFromConfig(cfg)
	return k.client, nil
}

func (k *awsKey) record(op string, md middleware.Metadata) {
	id, _ := awsmiddleware.GetRequestIDMetadata(md)
	key := k.arn
	if key == "" {
		key = k.keyID
	}
	k.calls = append(k.calls, Request{Service: "kms", Operation: op, Key: key, RequestID: id})
}

func (k *awsKey) requests() []Request { return k.calls }

// fail names the operation; the service's text is scrubbed of the
// credentials the request carried, wherever they came from (a session
// token goes in a header that a service could echo).
func (k *awsKey) fail(ctx context.Context, op string, err error) error {
	msg := err.Error()
	if k.client != nil && k.client.Options().Credentials != nil {
		if creds, cerr := k.client.Options().Credentials.Retrieve(ctx); cerr == nil {
			for _, v := range []string{creds.SecretAccessKey, creds.SessionToken} {
				if len(v) >= 4 {
					msg = strings.ReplaceAll(msg, v, "REDACTED")
				}
			}
		}
	}
	return fmt.Errorf("AWS KMS %s: %s", op, scrubSecrets(msg, os.Getenv))
}

func (k *awsKey) publicKey(ctx context.Context) (*ecdsa.PublicKey, error) {
	c, err := k.connect(ctx)
	if err != nil {
		return nil, err
	}
	out, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(k.keyID)})
	if err != nil {
		k.calls = append(k.calls, Request{Service: "kms", Operation: "GetPublicKey", Key: k.keyID})
		return nil, k.fail(ctx, "GetPublicKey", err)
	}
	k.arn = aws.ToString(out.KeyId)
	k.record("GetPublicKey", out.ResultMetadata)
	if k.arn == "" {
		return nil, errors.New("AWS KMS GetPublicKey: the answer names no key")
	}
	if out.KeySpec != types.KeySpecEccNistP256 {
		return nil, fmt.Errorf("key %s has key spec %s; groundzero signs with ECC_NIST_P256 keys (SSH ecdsa-sha2-nistp256)", k.arn, out.KeySpec)
	}
	if out.KeyUsage != types.KeyUsageTypeSignVerify {
		return nil, fmt.Errorf("key %s has key usage %s, not SIGN_VERIFY", k.arn, out.KeyUsage)
	}
	return parseP256(out.PublicKey)
}

func (k *awsKey) sign(ctx context.Context, data []byte) ([]byte, error) {
	if k.arn == "" {
		return nil, errors.New("AWS KMS Sign: the public key was not read first")
	}
	c, err := k.connect(ctx)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(data)
	// Sign with the key GetPublicKey answered for, by ARN: an alias moved
	// in between cannot switch the key.
	out, err := c.Sign(ctx, &kms.SignInput{
		KeyId:            aws.String(k.arn),
		Message:          digest[:],
		MessageType:      types.MessageTypeDigest,
		SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256,
	})
	if err != nil {
		k.calls = append(k.calls, Request{Service: "kms", Operation: "Sign", Key: k.arn})
		return nil, k.fail(ctx, "Sign", err)
	}
	k.record("Sign", out.ResultMetadata)
	if got := aws.ToString(out.KeyId); got != k.arn {
		return nil, fmt.Errorf("AWS KMS Sign answered for key %q, not %s", got, k.arn)
	}
	if out.SigningAlgorithm != types.SigningAlgorithmSpecEcdsaSha256 {
		return nil, fmt.Errorf("AWS KMS Sign used %s, not ECDSA_SHA_256", out.SigningAlgorithm)
	}
	return out.Signature, nil
}
