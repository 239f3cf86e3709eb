package gcs

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func (s *Store) createKeyRing(ctx context.Context, c *calls) error {
	_, err := s.kms.GetKeyRing(ctx, &kmspb.GetKeyRingRequest{Name: s.ringName})
	switch {
	case err == nil:
		c.kms("GetKeyRing", s.ringName, "exists")
		return nil
	case httpCode(err) == http.StatusNotFound:
		c.kms("GetKeyRing", s.ringName, outcomeMissing)
	default:
		c.kms("GetKeyRing", s.ringName, outcomeFailed)
		return fmt.Errorf("gcs: read key ring %s: %w", s.ringName, err)
	}
	_, err = s.kms.CreateKeyRing(ctx, &kmspb.CreateKeyRingRequest{
		Parent:    s.locationName,
		KeyRingId: s.ringID,
		KeyRing:   &kmspb.KeyRing{},
	})
	if httpCode(err) == http.StatusConflict {
		c.kms("CreateKeyRing", s.ringName, "exists") // made since it was looked for
		return nil
	}
	c.kms("CreateKeyRing", s.ringName, outcome(err, "created"))
	if err != nil {
		return fmt.Errorf("gcs: create key ring %s: %w", s.ringName, err)
	}
	return nil
}

func (s *Store) createKey(ctx context.Context, c *calls) error {
	key, err := s.kms.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: s.keyName})
	switch {
	case err == nil:
		c.kms("GetCryptoKey", s.keyName, "exists")
		return checkPurpose(s.keyName, key)
	case httpCode(err) == http.StatusNotFound:
		c.kms("GetCryptoKey", s.keyName, outcomeMissing)
	default:
		c.kms("GetCryptoKey", s.keyName, outcomeFailed)
		return fmt.Errorf("gcs: read key %s: %w", s.keyName, err)
	}
	_, err = s.kms.CreateCryptoKey(ctx, s.createKeyRequest(time.Now()))
	if httpCode(err) == http.StatusConflict {
		c.kms("CreateCryptoKey", s.keyName, "exists")
		key, err := s.kms.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: s.keyName})
		c.kms("GetCryptoKey", s.keyName, outcome(err, "exists"))
		if err != nil {
			return fmt.Errorf("gcs: read key %s: %w", s.keyName, err)
		}
		return checkPurpose(s.keyName, key)
	}
	c.kms("CreateCryptoKey", s.keyName, outcome(err, "created"))
	if err != nil {
		return fmt.Errorf("gcs: create key %s: %w", s.keyName, err)
	}
	return nil
}

func (s *Store) createKeyRequest(now time.Time) *kmspb.CreateCryptoKeyRequest {
	return &kmspb.CreateCryptoKeyRequest{
		Parent:      s.ringName,
		CryptoKeyId: s.keyID,
		CryptoKey: &kmspb.CryptoKey{
			Purpose:          kmspb.CryptoKey_ENCRYPT_DECRYPT,
			RotationSchedule: &kmspb.CryptoKey_RotationPeriod{RotationPeriod: durationpb.New(s.rotation)},
			NextRotationTime: timestamppb.New(now.Add(s.rotation).UTC()),
			Labels:           s.labels,
		},
	}
}

// checkPurpose refuses a key found made that cannot be a bucket's default
// key.
func checkPurpose(name string, key *kmspb.CryptoKey) error {
	if key.GetPurpose() != kmspb.CryptoKey_ENCRYPT_DECRYPT {
		return fmt.Errorf("gcs: key %s exists with purpose %s; a bucket's default key needs ENCRYPT_DECRYPT", name, key.GetPurpose())
	}
	return nil
}

// grantServiceAgent lets the project's Cloud Storage service agent encrypt
// and decrypt with the key, unless a binding without condition already
// does.
func (s *Store) grantServiceAgent(ctx context.Context, c *calls) error {
	agentLink := "https://www.googleapis.com/storage/v1/projects/" + s.spec.Project + "/serviceAccount"
	tctx, rid := traced(ctx)
	email, err := s.storage.ServiceAccount(tctx, s.spec.Project)
	c.storage("projects.serviceAccount.get", agentLink, rid, outcome(err, "read"))
	if err != nil {
		return fmt.Errorf("gcs: read the Cloud Storage service agent of project %s: %w", s.spec.Project, err)
	}
	member := "serviceAccount:" + email

	policy, err := s.kms.GetIamPolicy(ctx, &iampb.GetIamPolicyRequest{
		Resource: s.keyName,
		Options:  &iampb.GetPolicyOptions{RequestedPolicyVersion: 3},
	})
	if err != nil {
		c.kms("GetIamPolicy", s.keyName, outcomeFailed)
		return fmt.Errorf("gcs: read the IAM policy of key %s: %w", s.keyName, err)
	}
	var binding *iampb.Binding
	for _, b := range policy.GetBindings() {
		if b.GetRole() == encrypterDecrypter && b.GetCondition() == nil {
			binding = b
			break
		}
	}
	if binding != nil && slices.Contains(binding.GetMembers(), member) {
		c.kms("GetIamPolicy", s.keyName, "exists")
		return nil
	}
	c.kms("GetIamPolicy", s.keyName, "read")
	if binding == nil {
		binding = &iampb.Binding{Role: encrypterDecrypter}
		policy.Bindings = append(policy.Bindings, binding)
	}
	binding.Members = append(binding.Members, member)
	// The policy carries the etag it was read with: a change made since
	// makes this call fail rather than be lost.
	_, err = s.kms.SetIamPolicy(ctx, &iampb.SetIamPolicyRequest{Resource: s.keyName, Policy: policy})
	c.kms("SetIamPolicy", s.keyName, outcome(err, "updated"))
	if err != nil {
		return fmt.Errorf("gcs: grant %s %s on key %s: %w", member, encrypterDecrypter, s.keyName, err)
	}
	return nil
}
