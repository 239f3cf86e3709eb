package oci_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
)

const (
	tenancy     = "ocid1.tenancy.oc1..aaaatesttenancy"
	user        = "ocid1.user.oc1..aaaatestuser"
	fingerprint = "20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34"
	compartment = "ocid1.compartment.oc1..aaaatestcompartment"
	vaultID     = "ocid1.vault.oc1.iad.aaaatestvault"
	namespace   = "testns"
)

// signingKey is a throwaway RSA key in PEM, made once per test binary.
var signingKey = sync.OnceValue(func() string {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
})

// keyMaterial is a line from the middle of the signing key's PEM, which no
// output may contain.
func keyMaterial() string {
	lines := strings.Split(signingKey(), "\n")
	return lines[len(lines)/2]
}

func provider() common.ConfigurationProvider {
	return common.NewRawConfigurationProvider(tenancy, user, "us-ashburn-1", fingerprint, signingKey(), nil)
}

// ocienv keeps the test process's OCI settings out of the tests.
func ocienv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OCI_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

var authRE = regexp.MustCompile(`^Signature version="1",headers="([a-z0-9() -]+)",keyId="([^"]+)",algorithm="rsa-sha256",signature="[A-Za-z0-9+/]+=*"$`)

// checkSigned fails the test unless r carries an OCI request signature of
// the test key over the headers OCI requires (the signature itself is not
// verified), and checks that no key material went out with it.
func checkSigned(t *testing.T, r *http.Request, body []byte) {
	t.Helper()
	if err := signatureError(r, body); err != nil {
		t.Errorf("%s %s: %v", r.Method, r.URL.Path, err)
	}
}

func signatureError(r *http.Request, body []byte) error {
	m := authRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return fmt.Errorf("Authorization %q is not an OCI signature", r.Header.Get("Authorization"))
	}
	if want := tenancy + "/" + user + "/" + fingerprint; m[2] != want {
		return fmt.Errorf("keyId %q, want %q", m[2], want)
	}
	signed := strings.Fields(m[1])
	want := []string{"date", "(request-target)", "host"}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		want = append(want, "content-length", "content-type", "x-content-sha256")
		sum := sha256.Sum256(body)
		if got := r.Header.Get("X-Content-Sha256"); got != base64.StdEncoding.EncodeToString(sum[:]) {
			return fmt.Errorf("x-content-sha256 %q does not match the body", got)
		}
	}
	for _, h := range want {
		if !slices.Contains(signed, h) {
			return fmt.Errorf("signature covers %q, not %s", m[1], h)
		}
	}
	if strings.Contains(fmt.Sprint(r.Header)+string(body), keyMaterial()) {
		return fmt.Errorf("the request carries the signing key")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// kmsFake speaks the part of the OCI Vault management API the package uses:
// ListKeys (paged), CreateKey and GetKey.
type kmsFake struct {
	t        *testing.T
	pageSize int  // 0: one page
	refuse   bool // CreateKey answers 400 LimitExceeded

	mu      sync.Mutex
	keys    []map[string]any
	creates []map[string]any
	n       int
}

func newKMS(t *testing.T) (*kmsFake, *httptest.Server) {
	f := &kmsFake{t: t}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func keySummary(id, name, state, vault, mode string) map[string]any {
	return map[string]any{
		"id": id, "displayName": name, "lifecycleState": state, "vaultId": vault, "protectionMode": mode,
		"compartmentId": compartment, "algorithm": "AES", "timeCreated": "2026-01-02T03:04:05.000Z",
	}
}

func (f *kmsFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Error(err)
	}
	checkSigned(f.t, r, body)
	f.n++
	w.Header().Set("opc-request-id", fmt.Sprintf("kms-%d", f.n))
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/20180608/keys":
		if got := r.URL.Query().Get("compartmentId"); got != compartment {
			f.t.Errorf("ListKeys compartmentId = %q, want %q", got, compartment)
		}
		items := f.keys
		start := 0
		if p := r.URL.Query().Get("page"); p != "" {
			start, _ = strconv.Atoi(p)
		}
		if f.pageSize > 0 {
			end := min(start+f.pageSize, len(items))
			if end < len(items) {
				w.Header().Set("opc-next-page", strconv.Itoa(end))
			}
			items = items[start:end]
		}
		if items == nil {
			items = []map[string]any{}
		}
		writeJSON(w, http.StatusOK, items)
	case r.Method == http.MethodPost && r.URL.Path == "/20180608/keys":
		if r.Header.Get("opc-retry-token") == "" {
			f.t.Error("CreateKey without opc-retry-token")
		}
		if f.refuse {
			writeJSON(w, http.StatusBadRequest, map[string]string{"code": "LimitExceeded", "message": "key limit reached"})
			return
		}
		var d map[string]any
		if err := json.Unmarshal(body, &d); err != nil {
			f.t.Errorf("CreateKey body: %v", err)
		}
		f.creates = append(f.creates, d)
		id := fmt.Sprintf("ocid1.key.oc1.iad.created%d", len(f.creates))
		mode, _ := d["protectionMode"].(string)
		name, _ := d["displayName"].(string)
		s := keySummary(id, name, "CREATING", vaultID, mode)
		f.keys = append(f.keys, s)
		k := map[string]any{"keyShape": d["keyShape"], "freeformTags": d["freeformTags"], "currentKeyVersion": id + ".v1"}
		for n, v := range s {
			k[n] = v
		}
		writeJSON(w, http.StatusOK, k)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/20180608/keys/"):
		id := strings.TrimPrefix(r.URL.Path, "/20180608/keys/")
		for _, k := range f.keys {
			if k["id"] == id {
				writeJSON(w, http.StatusOK, k)
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"code": "NotAuthorizedOrNotFound", "message": "Authorization failed or requested resource not found."})
	default:
		f.t.Errorf("%s %s: unexpected request", r.Method, r.URL)
		writeJSON(w, http.StatusNotFound, map[string]string{"code": "NotFound", "message": "no such operation"})
	}
}

// osFake speaks the part of the Object Storage API the package uses:
// GetBucket and CreateBucket.
type osFake struct {
	t *testing.T

	mu       sync.Mutex
	buckets  map[string]map[string]any
	creates  []map[string]any
	raceNext bool // the next CreateBucket finds the bucket made by another run
	n        int
}

func newOS(t *testing.T) (*osFake, *httptest.Server) {
	f := &osFake{t: t, buckets: map[string]map[string]any{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func bucketFrom(d map[string]any) map[string]any {
	b := map[string]any{
		"namespace": namespace, "id": "ocid1.bucket.oc1.iad." + d["name"].(string),
		"createdBy": user, "timeCreated": "2026-01-02T03:04:05.000Z", "etag": "etag-1", "metadata": map[string]any{},
		"storageTier": "Standard",
	}
	for _, k := range []string{"name", "compartmentId", "publicAccessType", "versioning", "kmsKeyId", "freeformTags"} {
		if v, ok := d[k]; ok {
			b[k] = v
		}
	}
	return b
}

func (f *osFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Error(err)
	}
	checkSigned(f.t, r, body)
	f.n++
	w.Header().Set("opc-request-id", fmt.Sprintf("os-%d", f.n))
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/n/"+namespace+"/b/"):
		if b, ok := f.buckets[strings.TrimPrefix(r.URL.Path, "/n/"+namespace+"/b/")]; ok {
			writeJSON(w, http.StatusOK, b)
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"code": "BucketNotFound", "message": "Either the bucket does not exist in the namespace or you are not authorized to access it"})
	case r.Method == http.MethodPost && r.URL.Path == "/n/"+namespace+"/b":
		var d map[string]any
		if err := json.Unmarshal(body, &d); err != nil {
			f.t.Errorf("CreateBucket body: %v", err)
		}
		f.creates = append(f.creates, d)
		name, _ := d["name"].(string)
		if f.raceNext {
			f.raceNext = false
			f.buckets[name] = bucketFrom(d)
		}
		if _, ok := f.buckets[name]; ok {
			writeJSON(w, http.StatusConflict, map[string]string{"code": "BucketAlreadyExists", "message": "Either the bucket already exists or you are not authorized"})
			return
		}
		f.buckets[name] = bucketFrom(d)
		writeJSON(w, http.StatusOK, f.buckets[name])
	default:
		f.t.Errorf("%s %s: unexpected request", r.Method, r.URL)
		writeJSON(w, http.StatusNotFound, map[string]string{"code": "NotFound", "message": "no such operation"})
	}
}

// The fakes' signature check refuses what is not an SDK-signed request.
func TestSignatureCheck(t *testing.T) {
	body := []byte(`{"name":"tfstate"}`)
	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/n/testns/b", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
		return r
	}
	signed := req()
	if err := common.DefaultRequestSigner(provider()).Sign(signed); err != nil {
		t.Fatal(err)
	}
	if err := signatureError(signed, body); err != nil {
		t.Fatalf("signatureError(signed request) = %v", err)
	}
	if err := signatureError(req(), body); err == nil {
		t.Error("signatureError(unsigned request) = nil")
	}
	if err := signatureError(signed, []byte(`{"name":"other"}`)); err == nil {
		t.Error("signatureError(body changed after signing) = nil")
	}
	forged := req()
	forged.Header.Set("Authorization", strings.Replace(signed.Header.Get("Authorization"), user, "ocid1.user.oc1..someoneelse", 1))
	if err := signatureError(forged, body); err == nil {
		t.Error("signatureError(another key ID) = nil")
	}
}
