package gcs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"cloud.google.com/go/storage"

	"github.com/groundzero/groundzero/internal/backend"
)

// Verify compares the live bucket and key with the spec and with keyID, the
// key the lock records: versioning (where the spec asks for it), the
// bucket's default KMS key, public access prevention and uniform
// bucket-level access, the labels, the dual-region placement, and the key's
// automatic rotation. A key Cloud KMS cannot show is a finding; a bucket
// that cannot be read is an error. On error, the calls returned are those
// made until then.
func (s *Store) Verify(ctx context.Context, keyID string) ([]backend.Finding, []backend.Call, error) {
	var c calls
	var out []backend.Finding
	find := func(check, resource, format string, args ...any) {
		out = append(out, backend.Finding{Check: check, Resource: resource, Detail: fmt.Sprintf(format, args...)})
	}
	attrs, err := s.readBucket(ctx, &c)
	switch {
	case errors.Is(err, storage.ErrBucketNotExist):
		find("bucket", s.selfLink, "the bucket does not exist")
	case err != nil:
		return nil, c, err
	default:
		s.verifyBucket(attrs, keyID, find)
	}
	if s.kms != nil {
		if keyID == "" {
			find("key", s.keyName, "the lock records no key for key provider gcp_kms")
		} else if err := s.verifyKey(ctx, &c, keyID, find); err != nil {
			return nil, c, err
		}
	}
	return out, c, nil
}

func (s *Store) verifyBucket(attrs *storage.BucketAttrs, keyID string, find func(check, resource, format string, args ...any)) {
	if s.spec.Versioning && !attrs.VersioningEnabled {
		find("versioning", s.selfLink, "object versioning is off")
	}
	var defaultKey string
	if attrs.Encryption != nil {
		defaultKey = attrs.Encryption.DefaultKMSKeyName
	}
	switch {
	case keyID == "" && s.kms == nil:
	case defaultKey == "" && keyID == "":
		find("encryption", s.selfLink, "the bucket has no default KMS key")
	case defaultKey == "":
		find("encryption", s.selfLink, "the bucket has no default KMS key, want %s", keyID)
	case keyID != "" && defaultKey != keyID:
		find("key", s.selfLink, "the bucket's default KMS key is %s, want %s", defaultKey, keyID)
	}
	if attrs.PublicAccessPrevention != storage.PublicAccessPreventionEnforced {
		find("public_access", s.selfLink, "public access prevention is %s, want enforced", attrs.PublicAccessPrevention)
	}
	if !attrs.UniformBucketLevelAccess.Enabled {
		find("public_access", s.selfLink, "uniform bucket-level access is off, so object ACLs can grant access")
	}
	for _, m := range missingLabels(s.labels, attrs.Labels) {
		find("tags", s.selfLink, "label %s", m)
	}
	if s.placement != nil {
		var have []string
		if attrs.CustomPlacementConfig != nil {
			for _, l := range attrs.CustomPlacementConfig.DataLocations {
				have = append(have, strings.ToUpper(l))
			}
		}
		slices.Sort(have)
		want := slices.Sorted(slices.Values(s.placement))
		if !slices.Equal(have, want) {
			find("replication", s.selfLink, "the bucket's data locations are [%s], want the dual region [%s]", strings.Join(have, " "), strings.Join(want, " "))
		}
	}
}

// verifyKey reads the key's rotation. A key Cloud KMS does not show is a
// finding; only the end of the context is an error.
func (s *Store) verifyKey(ctx context.Context, c *calls, keyID string, find func(check, resource, format string, args ...any)) error {
	key, err := s.kms.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: keyID})
	code := httpCode(err)
	if code == http.StatusNotFound {
		c.kms("GetCryptoKey", keyID, outcomeMissing)
	} else {
		c.kms("GetCryptoKey", keyID, outcome(err, "read"))
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return ctx.Err()
	case code == http.StatusNotFound:
		find("key", keyID, "the key does not exist")
		return nil
	default:
		find("key_rotation", keyID, "the key's rotation cannot be read: %v", err)
		return nil
	}
	period := key.GetRotationPeriod()
	switch {
	case period == nil || period.AsDuration() <= 0:
		find("key_rotation", keyID, "the key has no automatic rotation, want every %d days", s.rotationDays())
	case period.AsDuration() > s.rotation:
		find("key_rotation", keyID, "the key rotates every %s, want at most every %d days", period.AsDuration(), s.rotationDays())
	}
	return nil
}

func (s *Store) rotationDays() int { return int(s.rotation / (24 * time.Hour)) }
