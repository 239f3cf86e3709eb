package ciauth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// now is the fixed clock every test verifies at.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	audience = "groundzero"
	keyID    = "key-1"
)

var (
	issuerKey = sync.OnceValue(func() *rsa.PrivateKey { return newKey() })
	forgerKey = sync.OnceValue(func() *rsa.PrivateKey { return newKey() })
)

func newKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// testIssuer is an OIDC issuer on 127.0.0.1 over TLS: a discovery document, a JWKS with
// one RSA key, and optionally a GitHub-style token endpoint.
type testIssuer struct {
	srv *httptest.Server
	URL string
	mux *http.ServeMux
}

func newIssuer(t testing.TB) *testIssuer {
	t.Helper()
	is := &testIssuer{mux: http.NewServeMux()}
	is.srv = startTLS(t, is.mux)
	is.URL = is.srv.URL
	is.mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                is.URL,
			"jwks_uri":                              is.URL + "/jwks",
			"authorization_endpoint":                is.URL + "/authorize",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	is.mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
			Key: &issuerKey().PublicKey, KeyID: keyID, Algorithm: "RS256", Use: "sig",
		}}})
	})
	return is
}

// startTLS serves h over TLS on 127.0.0.1 until the test ends.
func startTLS(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func (is *testIssuer) client() *http.Client { return is.srv.Client() }

// caPEM is the issuer's self-signed TLS certificate, PEM-encoded, for Policy.IssuerCA.
func (is *testIssuer) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// githubClaims are the claims of a GitHub Actions token for a tag release in prod.
func (is *testIssuer) githubClaims() map[string]any {
	return map[string]any{
		"iss":         is.URL,
		"aud":         audience,
		"sub":         "repo:acme/infra:environment:prod",
		"iat":         now.Add(-time.Minute).Unix(),
		"nbf":         now.Add(-time.Minute).Unix(),
		"exp":         now.Add(5 * time.Minute).Unix(),
		"repository":  "acme/infra",
		"ref":         "refs/tags/v1.2.0",
		"ref_type":    "tag",
		"environment": "prod",
		"run_id":      "4242",
		"workflow":    "release",
		"actor":       "alice",
		// a workflow of the repository, read at the tag
		"job_workflow_ref": "acme/infra/.github/workflows/groundzero.yml@refs/tags/v1.2.0",
		"job_workflow_sha": commitSHA,
	}
}

// commitSHA is the commit the tokens' CI configuration was read from.
const commitSHA = "0123456789abcdef0123456789abcdef01234567"

// gitlabClaims are the claims of a GitLab CI token for a tag release in prod.
func (is *testIssuer) gitlabClaims() map[string]any {
	return map[string]any{
		"iss":          is.URL,
		"aud":          audience,
		"sub":          "project_path:acme/platform/infra:ref_type:tag:ref:v1.2.0",
		"iat":          now.Add(-time.Minute).Unix(),
		"nbf":          now.Add(-time.Minute).Unix(),
		"exp":          now.Add(5 * time.Minute).Unix(),
		"project_path": "acme/platform/infra",
		"ref":          "v1.2.0",
		"ref_type":     "tag",
		"environment":  "prod",
		"pipeline_id":  "1212",
		"job_id":       "3434",
		"user_login":   "bob",
		// the instance's host and the project, then the file
		"ci_config_ref_uri": strings.TrimPrefix(is.URL, "https://") + "/acme/platform/infra//.gitlab-ci.yml@refs/tags/v1.2.0",
		"ci_config_sha":     commitSHA,
	}
}

// mint signs claims with key as an RS256 JWT naming keyID.
func mint(t testing.TB, key *rsa.PrivateKey, claims map[string]any) Token {
	t.Helper()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: keyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return Token(s)
}

// unsigned builds an alg "none" JWT over claims.
func unsigned(t testing.TB, claims map[string]any) Token {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return Token(enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + ".")
}

// assertNoLeak fails if any 8-byte substring of secret appears in text.
func assertNoLeak(t testing.TB, secret, text string) {
	t.Helper()
	for i := 0; i+8 <= len(secret); i++ {
		if strings.Contains(text, secret[i:i+8]) {
			t.Fatalf("text %q contains %q from the secret at offset %d", text, secret[i:i+8], i)
		}
	}
}
