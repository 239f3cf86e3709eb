package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rogpeppe/go-internal/testscript"
)

// A CI runner's identity: an OIDC issuer over TLS on 127.0.0.1 (discovery
// document and JWKS) and a stand-in for GitHub Actions' token endpoint that
// mints RS256 ID tokens with the claims the script sets. groundzero trusts
// the issuer only through the CA file policy.yaml names in ci.issuer_ca
// ($OIDC_CA, committed as governance/ci/issuer-ca.pem); the token endpoint,
// the runner's own service, is reached as the environment says
// (SSL_CERT_FILE).
//
// forge is the insider who edits the CI workflow: a second issuer with a
// key and a CA of their own, put in front of the real one by an HTTPS proxy
// that intercepts TLS, trusted through SSL_CERT_FILE.
func init() {
	commands["oidc"] = cmdOIDC
	commands["forge"] = cmdForge
}

const oidcKeyID = "runner-key"

type oidcIssuer struct {
	srv    *httptest.Server
	bearer string
	key    *rsa.PrivateKey // in the JWKS
	rogue  *rsa.PrivateKey // not in the JWKS

	url string // the issuer's name, its iss

	mu       sync.Mutex
	claims   map[string]any
	useRogue bool
	gitlab   bool   // GitLab's claims rather than GitHub's
	dir      string // the checkout whose HEAD the job runs, by default
}

var oidcIssuers sync.Map // *testscript.TestScript → *oidcIssuer

// oidc [-rogue] [CLAIM=VALUE ...] sets the claims of the ID tokens the token
// endpoint mints from now on: GitHub's, with iss, sub (from repository and
// environment or ref), iat, nbf, exp, run_id, workflow, actor,
// job_workflow_ref (.github/workflows/groundzero.yml of the repository at
// the ref) and job_workflow_sha (HEAD of the directory oidc was called in,
// read when the token is minted) filled in and aud taken from the request,
// unless given. -rogue signs them with a key
// the JWKS does not hold. The first call starts the issuer and sets
// $OIDC_ISSUER, $OIDC_CA (the file of the CA of its TLS certificate, which
// SSL_CERT_FILE also names for the token endpoint), and
// ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN.
//
// oidc -gitlab [-legacy] [-rogue] [CLAIM=VALUE ...] mints one GitLab token
// now, as a GitLab job receives it: with id_tokens (aud groundzero) in
// $GROUNDZERO_ID_TOKEN, or with -legacy as the predefined CI_JOB_JWT_V2
// (aud the instance URL; GROUNDZERO_ID_TOKEN unset). It fills in sub
// (project_path:P:ref_type:T:ref:R), pipeline_id, job_id, user_login,
// ci_config_ref_uri (HOST/P//.gitlab-ci.yml@refs/tags/R, or refs/heads/R)
// and ci_config_sha (HEAD), unless given.
func cmdOIDC(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: oidc [-gitlab [-legacy]] [-rogue] [CLAIM=VALUE ...]")
	}
	v, _ := oidcIssuers.Load(ts)
	is, _ := v.(*oidcIssuer)
	if is == nil {
		is = startIssuer(ts)
		oidcIssuers.Store(ts, is)
	}
	claims := map[string]any{}
	rogue, gitlab, legacy := false, false, false
	for _, a := range args {
		switch a {
		case "-rogue":
			rogue = true
			continue
		case "-gitlab":
			gitlab = true
			continue
		case "-legacy":
			legacy = true
			continue
		}
		k, val, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			ts.Fatalf("oidc: %q is not CLAIM=VALUE", a)
		}
		claims[k] = val
	}
	is.mu.Lock()
	is.claims, is.useRogue, is.gitlab, is.dir = claims, rogue, gitlab, ts.MkAbs(".")
	is.mu.Unlock()
	if !gitlab {
		return
	}
	aud := "groundzero"
	if legacy {
		aud = is.url
	}
	tok, err := is.mint(is.url, aud)
	ts.Check(err)
	if legacy {
		ts.Setenv("GROUNDZERO_ID_TOKEN", "")
		ts.Setenv("CI_JOB_JWT_V2", tok)
	} else {
		ts.Setenv("CI_JOB_JWT_V2", "")
		ts.Setenv("GROUNDZERO_ID_TOKEN", tok)
	}
}

func startIssuer(ts *testscript.TestScript) *oidcIssuer {
	ca := newTestCA(ts, "groundzero test issuer CA")
	is, issuer := serveIssuer(ts, ca, "")
	caFile := filepath.Join(ts.Getenv("WORK"), ".oidc-ca.pem")
	ts.Check(os.WriteFile(caFile, ca.pem, 0o644))
	ts.Setenv("OIDC_CA", caFile)
	ts.Setenv("SSL_CERT_FILE", caFile)
	ts.Setenv("OIDC_ISSUER", issuer)
	ts.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", is.srv.URL+"/token?api-version=2.0")
	ts.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", is.bearer)
	return is
}

// serveIssuer starts an issuer on 127.0.0.1 with a TLS certificate from ca.
// It calls itself https://HOST when host is given (reached through a
// proxy), else by its address.
func serveIssuer(ts *testscript.TestScript, ca *testCA, host string) (*oidcIssuer, string) {
	is := &oidcIssuer{key: rsaKey(ts), rogue: rsaKey(ts), bearer: randomHex(ts)}
	mux := http.NewServeMux()
	is.srv = httptest.NewUnstartedServer(mux)
	hosts := []string{"127.0.0.1"}
	if host != "" {
		hosts = append(hosts, host)
	}
	is.srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf(ts, hosts...)}}
	is.srv.StartTLS()
	ts.Defer(is.srv.Close)
	issuer := is.srv.URL
	if host != "" {
		issuer = "https://" + host
	}
	is.url = issuer
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
	return is, issuer
}

type forgery struct {
	is       *oidcIssuer
	connects atomic.Int32
}

var forgeries sync.Map // *testscript.TestScript → *forgery

// forge HOST [CLAIM=VALUE ...] starts the insider's issuer, which calls
// itself https://HOST and mints tokens with its own key and the claims
// given, and an HTTPS proxy on 127.0.0.1 that answers every CONNECT with a
// tunnel to it. It sets HTTPS_PROXY (and https_proxy, ALL_PROXY),
// SSL_CERT_FILE to the insider's CA, and ACTIONS_ID_TOKEN_REQUEST_URL and
// ACTIONS_ID_TOKEN_REQUEST_TOKEN to its token endpoint.
// forge -connects N checks that the proxy was asked for N tunnels.
func cmdForge(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: forge HOST [CLAIM=VALUE ...] | forge -connects N")
	}
	if args[0] == "-connects" {
		v, _ := forgeries.Load(ts)
		f, _ := v.(*forgery)
		if f == nil || len(args) != 2 {
			ts.Fatalf("usage: forge -connects N (after forge HOST)")
		}
		if got := strconv.Itoa(int(f.connects.Load())); got != args[1] {
			ts.Fatalf("the proxy was asked for %s tunnel(s), want %s", got, args[1])
		}
		return
	}
	host := args[0]
	ca := newTestCA(ts, "insider CA")
	is, _ := serveIssuer(ts, ca, host)
	claims := map[string]any{}
	for _, a := range args[1:] {
		k, val, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			ts.Fatalf("forge: %q is not CLAIM=VALUE", a)
		}
		claims[k] = val
	}
	is.claims, is.dir = claims, ts.MkAbs(".")
	f := &forgery{is: is}
	forgeries.Store(ts, f)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() { ln.Close() })
	upstream := is.srv.Listener.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil || req.Method != http.MethodConnect {
					io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
					return
				}
				f.connects.Add(1)
				up, err := net.Dial("tcp", upstream)
				if err != nil {
					io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
					return
				}
				defer up.Close()
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	caFile := filepath.Join(ts.Getenv("WORK"), ".forged-ca.pem")
	ts.Check(os.WriteFile(caFile, ca.pem, 0o644))
	proxy := "http://" + ln.Addr().String()
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "ALL_PROXY"} {
		ts.Setenv(v, proxy)
	}
	ts.Setenv("SSL_CERT_FILE", caFile)
	ts.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", is.srv.URL+"/token?api-version=2.0")
	ts.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", is.bearer)
}

// testCA is a certificate authority for the test's TLS servers.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(ts *testscript.TestScript, name string) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	ts.Check(err)
	cert, err := x509.ParseCertificate(der)
	ts.Check(err)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf issues a server certificate for the hosts (IP addresses or names).
func (ca *testCA) leaf(ts *testscript.TestScript, hosts ...string) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	ts.Check(err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// mint signs an ID token with the claims the script set over the defaults.
func (is *oidcIssuer) mint(issuer, aud string) (string, error) {
	is.mu.Lock()
	set, rogue, dir, gitlab := is.claims, is.useRogue, is.dir, is.gitlab
	is.mu.Unlock()
	now := time.Now()
	claims := map[string]any{
		"iss": issuer, "aud": aud,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
	if gitlab {
		claims["pipeline_id"], claims["job_id"], claims["user_login"] = "1212", "3434", "octocat"
	} else {
		claims["run_id"], claims["workflow"], claims["actor"] = "4711", "deploy", "octocat"
	}
	for k, v := range set {
		claims[k] = v
	}
	head := func() (string, error) {
		out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
		if err != nil {
			return "", fmt.Errorf("git rev-parse HEAD in %s: %v", dir, err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	if gitlab {
		project, _ := claims["project_path"].(string)
		ref, _ := claims["ref"].(string)
		refType, _ := claims["ref_type"].(string)
		if _, ok := claims["ci_config_ref_uri"]; !ok {
			full := "refs/heads/" + ref
			if refType == "tag" {
				full = "refs/tags/" + ref
			}
			claims["ci_config_ref_uri"] = strings.TrimPrefix(issuer, "https://") + "/" + project + "//.gitlab-ci.yml@" + full
		}
		if _, ok := claims["ci_config_sha"]; !ok {
			sha, err := head()
			if err != nil {
				return "", err
			}
			claims["ci_config_sha"] = sha
		}
		if _, ok := claims["sub"]; !ok {
			claims["sub"] = "project_path:" + project + ":ref_type:" + refType + ":ref:" + ref
		}
		return is.sign(claims, rogue)
	}
	// The job runs the governed workflow at the checkout's HEAD, unless
	// the script says otherwise.
	if _, ok := claims["job_workflow_ref"]; !ok {
		repo, _ := claims["repository"].(string)
		ref, _ := claims["ref"].(string)
		claims["job_workflow_ref"] = repo + "/.github/workflows/groundzero.yml@" + ref
	}
	if _, ok := claims["job_workflow_sha"]; !ok {
		sha, err := head()
		if err != nil {
			return "", err
		}
		claims["job_workflow_sha"] = sha
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
	return is.sign(claims, rogue)
}

// sign makes the compact JWS of claims, signed by the issuer's key or, when
// rogue, by one the JWKS does not hold.
func (is *oidcIssuer) sign(claims map[string]any, rogue bool) (string, error) {
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
