package sign

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/sign/kmsfake"
)

const (
	testKeyUUID = "1234abcd-12ab-34cd-56ef-1234567890ab"
	testKeyARN  = "arn:aws:kms:eu-west-1:111122223333:key/" + testKeyUUID
)

func awsServer(t *testing.T) *kmsfake.Server {
	t.Helper()
	isolate(t)
	srv := kmsfake.AWS(testKeyARN, testAccessKeyID, "alias/groundzero-ci")
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL_KMS", srv.URL)
	return srv
}

func TestAWSKMSSign(t *testing.T) {
	srv := awsServer(t)
	// A key ID needs the region from the KEYSPEC (or AWS_REGION).
	s, blob := signAndCheck(t, "awskms:"+testKeyUUID+"?region=eu-west-1", srv)
	calls := srv.Calls()
	if len(calls) < 2 {
		t.Fatalf("calls = %+v, want GetPublicKey then Sign", calls)
	}
	if c := calls[0]; c.Operation != "GetPublicKey" || c.Key != testKeyUUID {
		t.Errorf("first call = %+v, want GetPublicKey of %s", c, testKeyUUID)
	}
	// The signature is asked of the key GetPublicKey answered for, by ARN,
	// over the SHA-256 of the SSHSIG signed data.
	c := calls[1]
	if c.Operation != "Sign" || c.Key != testKeyARN || c.Algorithm != "ECDSA_SHA_256" || c.Message != "DIGEST" || !bytes.Equal(c.Digest, digestOf(blob)) {
		t.Errorf("Sign call = %+v, want key %s, ECDSA_SHA_256, DIGEST, digest %x", c, testKeyARN, digestOf(blob))
	}
	reqs := Requests(s)
	if len(reqs) != 2 || reqs[0].RequestID != "req-0001" || reqs[1].Operation != "Sign" || reqs[1].Key != testKeyARN || reqs[1].RequestID != "req-0002" {
		t.Errorf("Requests = %+v, want GetPublicKey req-0001 and Sign req-0002 of %s", reqs, testKeyARN)
	}
	for _, r := range reqs {
		noCanary(t, "request record", r.Service+r.Operation+r.Key+r.RequestID)
	}
}

func TestAWSKMSRegionFromARN(t *testing.T) {
	srv := awsServer(t)
	signAndCheck(t, "awskms:"+testKeyARN, srv)
}

// An alias is resolved by GetPublicKey; the signature is asked of the key
// ARN it resolved to.
func TestAWSKMSAlias(t *testing.T) {
	srv := awsServer(t)
	signAndCheck(t, "awskms:alias/groundzero-ci?region=eu-west-1", srv)
	calls := srv.Calls()
	if len(calls) < 2 || calls[0].Key != "alias/groundzero-ci" || calls[1].Operation != "Sign" || calls[1].Key != testKeyARN {
		t.Errorf("calls = %+v, want GetPublicKey of alias/groundzero-ci, then Sign of %s", calls, testKeyARN)
	}
}

func TestAWSKMSNoRegion(t *testing.T) {
	awsServer(t)
	err := refuse(t, "awskms:"+testKeyUUID)
	if !strings.Contains(err.Error(), "no AWS region") {
		t.Errorf("error = %v, want it to ask for a region", err)
	}
}

func TestAWSKMSRefusals(t *testing.T) {
	for _, tc := range []struct {
		mode kmsfake.Mode
		want string
	}{
		{kmsfake.OtherKey, "does not verify with the key's public key"},
		{kmsfake.RawSignature, "not a DER ECDSA signature"},
		{kmsfake.P384, "key spec ECC_NIST_P384"},
		{kmsfake.Mislabelled, "not an ECDSA P-256 key"},
		{kmsfake.Echo, "AccessDeniedException"},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			srv := awsServer(t)
			srv.SetMode(tc.mode)
			err := refuse(t, "awskms:"+testKeyARN)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
			if tc.mode == kmsfake.Echo && !strings.Contains(err.Error(), "REDACTED") {
				t.Errorf("error = %v: the echoed session token is not redacted", err)
			}
		})
	}
}

func TestAWSKMSUnknownKey(t *testing.T) {
	awsServer(t)
	err := refuse(t, "awskms:arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000000")
	if !strings.Contains(err.Error(), "NotFoundException") {
		t.Errorf("error = %v, want NotFoundException", err)
	}
}

// The key looked up in the registry is the key that signs: a service that
// switches keys after the fingerprint was read (an alias moved, an impostor
// behind the endpoint) gets its signature refused.
func TestKMSKeyPinnedPerProcess(t *testing.T) {
	srv := awsServer(t)
	spec, err := ParseSpec("awskms:" + testKeyARN)
	if err != nil {
		t.Fatal(err)
	}
	fpr, err := Fingerprint(context.Background(), spec)
	if err != nil {
		t.Fatalf("Fingerprint = %v", err)
	}
	srv.SetMode(kmsfake.Rogue)
	s, err := New(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(context.Background(), []byte("payload\n"), "groundzero")
	if err == nil {
		t.Fatalf("Sign after the key changed = %s, nil; want a refusal (registered key %s)", sig.Issuer(), fpr)
	}
	if !strings.Contains(err.Error(), "does not verify with the key's public key "+fpr) {
		t.Errorf("Sign error = %v, want it to name the pinned key %s", err, fpr)
	}
}
