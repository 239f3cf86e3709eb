package sign

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/groundzero/groundzero/internal/sign/kmsfake"
)

const testKeyVersion = "projects/acme-ci/locations/europe-west1/keyRings/ci/cryptoKeys/signer/cryptoKeyVersions/3"

// gcpServer points Cloud KMS clients at a fake that wants the canary
// access token, as Application Default Credentials would supply one.
func gcpServer(t *testing.T) *kmsfake.Server {
	t.Helper()
	isolate(t)
	srv := kmsfake.GCP(testKeyVersion, canaryGCP)
	t.Cleanup(srv.Close)
	saved := gcpClientOptions
	gcpClientOptions = []option.ClientOption{
		option.WithEndpoint(srv.URL + "/"),
		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: canaryGCP, TokenType: "Bearer"})),
	}
	t.Cleanup(func() { gcpClientOptions = saved })
	return srv
}

func TestGCPKMSSign(t *testing.T) {
	srv := gcpServer(t)
	s, blob := signAndCheck(t, "gcpkms:"+testKeyVersion, srv)
	calls := srv.Calls()
	if len(calls) < 2 || calls[0].Operation != "GetPublicKey" || calls[0].Key != testKeyVersion {
		t.Fatalf("calls = %+v, want getPublicKey of %s first", calls, testKeyVersion)
	}
	c := calls[1]
	d := digestOf(blob)
	if c.Operation != "AsymmetricSign" || c.Key != testKeyVersion || !bytes.Equal(c.Digest, d) || c.CRC32C != int64(crc32.Checksum(d, crc32.MakeTable(crc32.Castagnoli))) {
		t.Errorf("asymmetricSign call = %+v, want key %s, digest.sha256 %x with its CRC32C", c, testKeyVersion, d)
	}
	if reqs := Requests(s); len(reqs) != 2 || reqs[1].Operation != "AsymmetricSign" || reqs[1].RequestID != "req-0002" {
		t.Errorf("Requests = %+v, want getPublicKey and asymmetricSign with their request IDs", reqs)
	}
}

func TestGCPKMSRefusals(t *testing.T) {
	for _, tc := range []struct {
		mode kmsfake.Mode
		want string
	}{
		{kmsfake.OtherKey, "does not verify with the key's public key"},
		{kmsfake.RawSignature, "not a DER ECDSA signature"},
		{kmsfake.P384, "algorithm EC_SIGN_P384_SHA384"},
		{kmsfake.Mislabelled, "not an ECDSA P-256 key"},
		{kmsfake.Echo, "403"},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			srv := gcpServer(t)
			srv.SetMode(tc.mode)
			err := refuse(t, "gcpkms:"+testKeyVersion)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
			if tc.mode == kmsfake.Echo && !strings.Contains(err.Error(), "Bearer REDACTED") {
				t.Errorf("error = %v: the echoed access token is not redacted", err)
			}
		})
	}
}

func TestGCPKMSWrongVersion(t *testing.T) {
	gcpServer(t)
	err := refuse(t, "gcpkms:"+strings.TrimSuffix(testKeyVersion, "3")+"4")
	if !strings.Contains(err.Error(), "404") {
		t.Errorf("error = %v, want the server's 404", err)
	}
}

// With Application Default Credentials from a service account key file
// (GOOGLE_APPLICATION_CREDENTIALS), the client gets its access token from
// the file's token_uri and presents it to Cloud KMS; the token shows
// nowhere.
func TestGCPKMSApplicationDefaultCredentials(t *testing.T) {
	isolate(t)
	srv := kmsfake.GCP(testKeyVersion, canaryGCP)
	t.Cleanup(srv.Close)
	saved := gcpClientOptions
	gcpClientOptions = []option.ClientOption{option.WithEndpoint(srv.URL + "/")}
	t.Cleanup(func() { gcpClientOptions = saved })
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	creds, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "acme-ci", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "groundzero-ci@acme-ci.iam.gserviceaccount.com", "client_id": "1",
		"token_uri": srv.URL + "/token",
	})
	file := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(file, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", file)
	signAndCheck(t, "gcpkms:"+testKeyVersion, srv)
	if calls := srv.Calls(); len(calls) < 3 || calls[0].Operation != "Token" {
		t.Errorf("calls = %+v, want the token grant first", calls)
	}
	srv.SetMode(kmsfake.Echo)
	if err := refuse(t, "gcpkms:"+testKeyVersion); !strings.Contains(err.Error(), "Bearer REDACTED") {
		t.Errorf("error = %v, want the echoed token redacted", err)
	}
}
