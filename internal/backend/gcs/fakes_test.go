package gcs_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// clearEnv removes the ambient Google configuration for the test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GOOGLE_") || strings.HasPrefix(k, "CLOUDSDK_") || strings.HasPrefix(k, "GCE_") || k == "STORAGE_EMULATOR_HOST" {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	// No Application Default Credentials from a home directory either.
	t.Setenv("HOME", t.TempDir())
}

// agentEmail is the Cloud Storage service agent the proxy reports.
const agentEmail = "service-123456789@gs-project-accounts.iam.gserviceaccount.com"

// droppedFields are the bucket fields fake-gcs-server does not keep.
var droppedFields = []string{"labels", "encryption", "iamConfiguration", "customPlacementConfig", "location"}

// storageProxy stands in front of fake-gcs-server. It records the body of
// every buckets.insert, answers projects.serviceAccount.get (which the fake
// lacks), and sets X-GUploader-UploadID on every answer. When complete is
// set, it also keeps the bucket fields the fake drops, as inserted and
// patched (JSON merge patch), and adds them to the fake's bucket answers:
// the fake then shows what Cloud Storage would.
type storageProxy struct {
	URL      string
	complete bool
	// loseGenerations answers 404 to every read of an object by its
	// generation, as a store that does not keep deleted generations would.
	loseGenerations bool

	mu      sync.Mutex
	inserts []map[string]any
	kept    map[string]map[string]any // bucket → dropped fields
	ids     int
	apiKeys []string // the key= parameter of each request
}

var bucketPath = regexp.MustCompile(`^/storage/v1/b/([^/]+)$`)

func newStorageProxy(t *testing.T, endpoint string, complete bool) *storageProxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &storageProxy{complete: complete, kept: map[string]map[string]any{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = p.modify
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-GUploader-UploadID", p.nextID())
		p.mu.Lock()
		p.apiKeys = append(p.apiKeys, r.URL.Query().Get("key"))
		p.mu.Unlock()
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/storage/v1/projects/") && strings.HasSuffix(r.URL.Path, "/serviceAccount") {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"kind":"storage#serviceAccount","email_address":%q}`, agentEmail)
			return
		}
		p.mu.Lock()
		lose := p.loseGenerations
		p.mu.Unlock()
		if lose && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/o/") && r.URL.Query().Has("generation") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"code":404,"message":"No such object"}}`)
			return
		}
		r.Header.Del("Accept-Encoding")
		insert := r.Method == http.MethodPost && strings.TrimSuffix(r.URL.Path, "/") == "/storage/v1/b"
		m := bucketPath.FindStringSubmatch(r.URL.Path)
		patch := r.Method == http.MethodPatch && m != nil
		if insert || patch {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				t.Errorf("proxy: read %s %s: %v", r.Method, r.URL.Path, err)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			var doc map[string]any
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Errorf("proxy: %s %s body %q: %v", r.Method, r.URL.Path, body, err)
			}
			p.mu.Lock()
			name, _ := doc["name"].(string)
			if insert {
				p.inserts = append(p.inserts, doc)
			} else {
				name, _ = url.PathUnescape(m[1])
			}
			if p.complete {
				if p.kept[name] == nil || insert {
					p.kept[name] = map[string]any{}
				}
				mergePatch(p.kept[name], pick(doc, droppedFields))
			}
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *storageProxy) nextID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids++
	return "upload-" + strconv.Itoa(p.ids)
}

// modify adds the kept fields to an answer that is a bucket.
func (p *storageProxy) modify(resp *http.Response) error {
	if !p.complete || resp.StatusCode != http.StatusOK {
		return nil
	}
	path := resp.Request.URL.Path
	if !bucketPath.MatchString(path) && strings.TrimSuffix(path, "/") != "/storage/v1/b" {
		return nil
	}
	if resp.Request.Method == http.MethodGet && !bucketPath.MatchString(path) {
		return nil // a listing
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return err
	}
	name, _ := doc["name"].(string)
	p.mu.Lock()
	mergePatch(doc, p.kept[name])
	p.mu.Unlock()
	body, err = json.Marshal(doc)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// insertBodies returns the buckets.insert bodies seen.
func (p *storageProxy) insertBodies() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inserts
}

func pick(doc map[string]any, keys []string) map[string]any {
	out := map[string]any{}
	for _, k := range keys {
		if v, ok := doc[k]; ok {
			out[k] = v
		}
	}
	return out
}

// mergePatch applies an RFC 7386 merge patch to dst.
func mergePatch(dst, patch map[string]any) {
	for k, v := range patch {
		switch v := v.(type) {
		case nil:
			delete(dst, k)
		case map[string]any:
			d, ok := dst[k].(map[string]any)
			if !ok {
				d = map[string]any{}
				dst[k] = d
			}
			mergePatch(d, v)
		default:
			dst[k] = v
		}
	}
}

// kmsFake answers the Cloud KMS REST calls Create and Verify make, keeping
// key rings, keys and IAM policies in memory, and checks each request
// against what the test expects.
type kmsFake struct {
	t   *testing.T
	URL string

	// What a CreateCryptoKey must carry.
	wantRotation time.Duration
	wantLabels   map[string]string

	mu       sync.Mutex
	rings    map[string]bool
	keys     map[string]*kmspb.CryptoKey
	policies map[string]*iampb.Policy
	mutating []string // the creating and IAM-changing calls, in order
}

var (
	ringName = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/keyRings/[^/:]+$`)
	keyName  = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/:]+$`)
)

func newKMSFake(t *testing.T) *kmsFake {
	f := &kmsFake{t: t, rings: map[string]bool{}, keys: map[string]*kmspb.CryptoKey{}, policies: map[string]*iampb.Policy{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *kmsFake) serve(w http.ResponseWriter, r *http.Request) {
	t := f.t
	name, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		t.Errorf("kms: %s %s: not under /v1/", r.Method, r.URL.Path)
		kmsError(w, http.StatusNotFound, "NOT_FOUND")
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && ringName.MatchString(name):
		if !f.rings[name] {
			kmsError(w, http.StatusNotFound, "NOT_FOUND")
			return
		}
		kmsAnswer(w, &kmspb.KeyRing{Name: name})

	case r.Method == http.MethodPost && strings.HasSuffix(name, "/keyRings"):
		ring := name + "/" + q.Get("keyRingId")
		if !ringName.MatchString(ring) {
			t.Errorf("kms: CreateKeyRing %s with keyRingId %q", name, q.Get("keyRingId"))
		}
		var kr kmspb.KeyRing
		if err := protojson.Unmarshal(body, &kr); err != nil {
			t.Errorf("kms: CreateKeyRing body %q: %v", body, err)
		}
		if f.rings[ring] {
			kmsError(w, http.StatusConflict, "ALREADY_EXISTS")
			return
		}
		f.rings[ring] = true
		f.mutating = append(f.mutating, "CreateKeyRing "+ring)
		kmsAnswer(w, &kmspb.KeyRing{Name: ring})

	case r.Method == http.MethodGet && keyName.MatchString(name):
		k, ok := f.keys[name]
		if !ok {
			kmsError(w, http.StatusNotFound, "NOT_FOUND")
			return
		}
		kmsAnswer(w, k)

	case r.Method == http.MethodPost && strings.HasSuffix(name, "/cryptoKeys"):
		ring := strings.TrimSuffix(name, "/cryptoKeys")
		key := ring + "/" + "cryptoKeys/" + q.Get("cryptoKeyId")
		if !f.rings[ring] {
			t.Errorf("kms: CreateCryptoKey %s in key ring %s that was not made", key, ring)
		}
		var k kmspb.CryptoKey
		if err := protojson.Unmarshal(body, &k); err != nil {
			t.Errorf("kms: CreateCryptoKey body %q: %v", body, err)
		}
		f.checkNewKey(&k)
		if _, ok := f.keys[key]; ok {
			kmsError(w, http.StatusConflict, "ALREADY_EXISTS")
			return
		}
		k.Name = key
		f.keys[key] = &k
		f.mutating = append(f.mutating, "CreateCryptoKey "+key)
		kmsAnswer(w, &k)

	case r.Method == http.MethodGet && strings.HasSuffix(name, ":getIamPolicy"):
		key := strings.TrimSuffix(name, ":getIamPolicy")
		if _, ok := f.keys[key]; !ok {
			kmsError(w, http.StatusNotFound, "NOT_FOUND")
			return
		}
		if v := q.Get("options.requestedPolicyVersion"); v != "3" {
			t.Errorf("kms: GetIamPolicy %s with requestedPolicyVersion %q, want 3", key, v)
		}
		kmsAnswer(w, f.policy(key))

	case r.Method == http.MethodPost && strings.HasSuffix(name, ":setIamPolicy"):
		key := strings.TrimSuffix(name, ":setIamPolicy")
		var req iampb.SetIamPolicyRequest
		if err := protojson.Unmarshal(body, &req); err != nil {
			t.Errorf("kms: SetIamPolicy body %q: %v", body, err)
		}
		if req.GetResource() != key {
			t.Errorf("kms: SetIamPolicy on %s names resource %q", key, req.GetResource())
		}
		if old := f.policy(key); !bytes.Equal(req.GetPolicy().GetEtag(), old.GetEtag()) {
			kmsError(w, http.StatusConflict, "ABORTED")
			return
		}
		p := req.GetPolicy()
		p.Etag = []byte(fmt.Sprintf("etag-%d", len(f.mutating)+1))
		f.policies[key] = p
		f.mutating = append(f.mutating, "SetIamPolicy "+key)
		kmsAnswer(w, p)

	default:
		t.Errorf("kms: unexpected %s %s", r.Method, r.URL)
		kmsError(w, http.StatusNotFound, "NOT_FOUND")
	}
}

func (f *kmsFake) policy(key string) *iampb.Policy {
	if p, ok := f.policies[key]; ok {
		return p
	}
	return &iampb.Policy{Version: 1, Etag: []byte("etag-0")}
}

// checkNewKey checks the key a CreateCryptoKey asks for.
func (f *kmsFake) checkNewKey(k *kmspb.CryptoKey) {
	t := f.t
	if k.GetPurpose() != kmspb.CryptoKey_ENCRYPT_DECRYPT {
		t.Errorf("kms: CreateCryptoKey purpose %s, want ENCRYPT_DECRYPT", k.GetPurpose())
	}
	if got := k.GetRotationPeriod().AsDuration(); got != f.wantRotation {
		t.Errorf("kms: CreateCryptoKey rotation period %s, want %s", got, f.wantRotation)
	}
	if k.GetNextRotationTime() == nil {
		t.Errorf("kms: CreateCryptoKey without next rotation time")
	} else if d := time.Until(k.GetNextRotationTime().AsTime()); d > f.wantRotation || d < f.wantRotation-time.Minute {
		t.Errorf("kms: CreateCryptoKey next rotation in %s, want %s from now", d, f.wantRotation)
	}
	if !maps.Equal(k.GetLabels(), f.wantLabels) {
		t.Errorf("kms: CreateCryptoKey labels %v, want %v", k.GetLabels(), f.wantLabels)
	}
}

// expect sets what a CreateCryptoKey must carry.
func (f *kmsFake) expect(rotation time.Duration, labels map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wantRotation, f.wantLabels = rotation, labels
}

// addKey stores a key as if it had been made before.
func (f *kmsFake) addKey(name string, k *kmspb.CryptoKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ring, _, _ := strings.Cut(name, "/cryptoKeys/")
	f.rings[ring] = true
	k.Name = name
	f.keys[name] = k
}

func (f *kmsFake) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.mutating...)
}

func kmsAnswer(w http.ResponseWriter, m proto.Message) {
	b, err := protojson.Marshal(m)
	if err != nil {
		kmsError(w, http.StatusInternalServerError, "INTERNAL")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func kmsError(w http.ResponseWriter, code int, status string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":"%s","status":%q}}`, code, strings.ToLower(status), status)
}
