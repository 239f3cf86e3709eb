package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rogpeppe/go-internal/testscript"
)

// A CI runner's identity: an OIDC issuer over TLS on 127.0.0.1 (discovery
// document and JWKS) and a stand-in for GitHub Actions' token endpoint that
// mints RS256 ID tokens with the claims the script sets. groundzero trusts
// the issuer through SSL_CERT_FILE, as it would a private CA.
func init() {
	commands["oidc"] = cmdOIDC
}

const oidcKeyID = "runner-key"

type oidcIssuer struct {
	srv    *httptest.Server
	bearer string
	key    *rsa.PrivateKey // in the JWKS
	rogue  *rsa.PrivateKey // not in the JWKS

	mu       sync.Mutex
	claims   map[string]any
	useRogue bool
}

var oidcIssuers sync.Map // *testscript.TestScript → *oidcIssuer

// oidc [-rogue] [CLAIM=VALUE ...] sets the claims of the ID tokens the token
// endpoint mints from now on: GitHub's, with iss, sub (from repository and
// environment or ref), iat, nbf, exp, run_id, workflow and actor filled in
// and aud taken from the request, unless given. -rogue signs them with a key
// the JWKS does not hold. The first call starts the issuer and sets
// $OIDC_ISSUER, $SSL_CERT_FILE (its certificate), and
// ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN.
func cmdOIDC(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: oidc [-rogue] [CLAIM=VALUE ...]")
	}
	v, _ := oidcIssuers.Load(ts)
	is, _ := v.(*oidcIssuer)
	if is == nil {
		is = startIssuer(ts)
		oidcIssuers.Store(ts, is)
	}
	claims := map[string]any{}
	rogue := false
	for _, a := range args {
		if a == "-rogue" {
			rogue = true
			continue
		}
		k, val, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			ts.Fatalf("oidc: %q is not CLAIM=VALUE", a)
		}
		claims[k] = val
	}
	is.mu.Lock()
	is.claims, is.useRogue = claims, rogue
	is.mu.Unlock()
}

func startIssuer(ts *testscript.TestScript) *oidcIssuer {
	is := &oidcIssuer{key: rsaKey(ts), rogue: rsaKey(ts), bearer: randomHex(ts)}
	mux := http.NewServeMux()
	is.srv = httptest.NewTLSServer(mux)
	ts.Defer(is.srv.Close)
	issuer := is.srv.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                issuer,
			"jwks_uri":                              issuer + "/jwks",
			"authorization_endpoint":                issuer + "/authorize",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &is.key.PublicKey, KeyID: oidcKeyID, Algorithm: "RS256", Use: "sig"}}})
	})
	// GitHub's token endpoint: a bearer token from the job's environment,
	// the audience as a query parameter, the token as {"value": …}.
	mux.HandleFunc("GET /token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+is.bearer {
			http.Error(w, "wrong bearer token", http.StatusUnauthorized)
			return
		}
		aud := r.URL.Query().Get("audience")
		if aud == "" {
			http.Error(w, "no audience", http.StatusBadRequest)
			return
		}
		tok, err := is.mint(issuer, aud)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]string{"value": tok})
	})

	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw})
	caFile := filepath.Join(ts.Getenv("WORK"), ".oidc-ca.pem")
	ts.Check(os.WriteFile(caFile, cert, 0o644))
	ts.Setenv("SSL_CERT_FILE", caFile)
	ts.Setenv("OIDC_ISSUER", issuer)
	ts.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", issuer+"/token?api-version=2.0")
	ts.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", is.bearer)
	return is
}

// mint signs an ID token with the claims the script set over the defaults.
func (is *oidcIssuer) mint(issuer, aud string) (string, error) {
	is.mu.Lock()
	set, rogue := is.claims, is.useRogue
	is.mu.Unlock()
	now := time.Now()
	claims := map[string]any{
		"iss": issuer, "aud": aud,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"run_id": "4711", "workflow": "deploy", "actor": "octocat",
	}
	for k, v := range set {
		claims[k] = v
	}
	if _, ok := claims["sub"]; !ok {
		repo, _ := claims["repository"].(string)
		if env, _ := claims["environment"].(string); env != "" {
			claims["sub"] = "repo:" + repo + ":environment:" + env
		} else {
			ref, _ := claims["ref"].(string)
			claims["sub"] = "repo:" + repo + ":ref:" + ref
		}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	key := is.key
	if rogue {
		key = is.rogue
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", oidcKeyID))
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func rsaKey(ts *testscript.TestScript) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	ts.Check(err)
	return k
}

func randomHex(ts *testscript.TestScript) string {
	b := make([]byte, 16)
	_, err := rand.Read(b)
	ts.Check(err)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
