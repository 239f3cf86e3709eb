// Package cicredfake runs, for tests, the services `groundzero ci rotate`
// talks to that cannot run here: a Vault/OpenBao KV version 2 engine
// (Vault), and MinIO's admin API for service accounts (MinIO) in front of a
// real S3 server, the pinned Versity gateway started with its own IAM
// (s3gateway.StartWith with Options.IAM). Each service account MinIO makes is a real gateway account,
// and its inline policy becomes bucket policy statements for that account,
// so a key works, and is refused outside its scope, as the S3 server
// decides. MinIO.Handler serves the admin API and the gateway's S3 API on
// one endpoint, as a MinIO server does.
//
// Both fakes check what they receive: Vault the token on every request,
// MinIO the Signature Version 4 credential of the admin identity, the
// payload hash, and that the body decrypts with the admin secret key.
// Anything else is listed in Unexpected.
package cicredfake

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/groundzero/groundzero/internal/cicred"
	"github.com/groundzero/groundzero/internal/s3gateway"
)

// Vault is a KV version 2 engine at one mount.
type Vault struct {
	Token string
	Mount string

	mu      sync.Mutex
	secrets map[string][]map[string]any // path -> versions; nil: deleted
	meta    map[string]map[string]string
	n       int
	// FailWrites makes data writes answer 500.
	FailWrites bool
	// FailReadsAfterWrite makes reads answer 500 once a write succeeded.
	FailReadsAfterWrite bool
	written             bool
	// Log lists the requests: METHOD PATH, and the body for writes.
	Log []string
	// Unexpected lists requests the fake refused as malformed.
	Unexpected []string
}

// NewVault returns a KV engine at mount that accepts token.
func NewVault(token, mount string) *Vault {
	return &Vault{Token: token, Mount: mount, secrets: map[string][]map[string]any{}, meta: map[string]map[string]string{}}
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

func (v *Vault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	defer v.mu.Unlock()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	v.Log = append(v.Log, r.Method+" "+r.URL.Path+" "+string(body))
	if r.Header.Get("X-Vault-Token") != v.Token {
		reply(w, http.StatusForbidden, map[string]any{"errors": []string{"permission denied"}})
		return
	}
	v.n++
	rid := fmt.Sprintf("vault-req-%04d", v.n)
	dataPrefix, metaPrefix := "/v1/"+v.Mount+"/data/", "/v1/"+v.Mount+"/metadata/"
	switch {
	case strings.HasPrefix(r.URL.Path, dataPrefix) && r.Method == http.MethodGet:
		if v.FailReadsAfterWrite && v.written {
			reply(w, http.StatusInternalServerError, map[string]any{"errors": []string{"1 error occurred: storage unavailable"}})
			return
		}
		p := strings.TrimPrefix(r.URL.Path, dataPrefix)
		vs := v.secrets[p]
		if len(vs) == 0 {
			reply(w, http.StatusNotFound, map[string]any{"errors": []string{}})
			return
		}
		cur := vs[len(vs)-1]
		meta := map[string]any{"version": len(vs), "created_time": "2026-01-01T00:00:00Z", "deletion_time": "", "destroyed": false}
		if cur == nil {
			meta["deletion_time"] = "2026-01-02T00:00:00Z"
			reply(w, http.StatusNotFound, map[string]any{"request_id": rid, "data": map[string]any{"data": nil, "metadata": meta}})
			return
		}
		reply(w, http.StatusOK, map[string]any{"request_id": rid, "data": map[string]any{"data": cur, "metadata": meta}})
	case strings.HasPrefix(r.URL.Path, dataPrefix) && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		p := strings.TrimPrefix(r.URL.Path, dataPrefix)
		var req struct {
			Data    map[string]any `json:"data"`
			Options struct {
				CAS *int `json:"cas"`
			} `json:"options"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.Data == nil {
			v.Unexpected = append(v.Unexpected, "write "+p+": body is not {data, options}")
			reply(w, http.StatusBadRequest, map[string]any{"errors": []string{"no data provided"}})
			return
		}
		if v.FailWrites {
			reply(w, http.StatusInternalServerError, map[string]any{"errors": []string{"1 error occurred: storage unavailable"}})
			return
		}
		if req.Options.CAS != nil && *req.Options.CAS != len(v.secrets[p]) {
			reply(w, http.StatusBadRequest, map[string]any{"errors": []string{"check-and-set parameter did not match the current version"}})
			return
		}
		v.secrets[p] = append(v.secrets[p], req.Data)
		v.written = true
		reply(w, http.StatusOK, map[string]any{"request_id": rid, "data": map[string]any{"version": len(v.secrets[p]), "created_time": "2026-01-01T00:00:00Z", "destroyed": false}})
	case strings.HasPrefix(r.URL.Path, metaPrefix) && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		p := strings.TrimPrefix(r.URL.Path, metaPrefix)
		var req struct {
			Custom map[string]string `json:"custom_metadata"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			v.Unexpected = append(v.Unexpected, "metadata "+p+": body is not {custom_metadata}")
		}
		v.meta[p] = req.Custom
		w.WriteHeader(http.StatusNoContent)
	default:
		v.Unexpected = append(v.Unexpected, r.Method+" "+r.URL.Path)
		reply(w, http.StatusNotFound, map[string]any{"errors": []string{}})
	}
}

// Current returns the newest version's data at path (relative to the
// mount) and its version number.
func (v *Vault) Current(path string) (map[string]any, int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	vs := v.secrets[path]
	if len(vs) == 0 {
		return nil, 0
	}
	return vs[len(vs)-1], len(vs)
}

// Metadata returns the custom metadata at path.
func (v *Vault) Metadata(path string) map[string]string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.meta[path]
}

// Put stores data as the next version at path, as another writer would.
func (v *Vault) Put(path string, data map[string]any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.secrets[path] = append(v.secrets[path], data)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// MinIO is MinIO's admin API for service accounts, whose accounts are
// accounts of a Gateway with access to one bucket.
type MinIO struct {
	AdminAccess string
	AdminSecret string
	Gateway     *s3gateway.Gateway
	Bucket      string

	mu       sync.Mutex
	accounts map[string]json.RawMessage // access key -> inline policy
	secrets  map[string]string          // access key -> secret, of every key made
	n        int
	// FailAdd and FailDelete make those calls answer 500.
	FailAdd, FailDelete bool
	// Policies lists the inline policies received, in order.
	Policies []string
	// Names lists the service account names received, in order.
	Names []string
	// Log lists the calls: METHOD OP ACCESSKEY.
	Log []string
	// Unexpected lists requests the fake refused as malformed.
	Unexpected []string
}

// NewMinIO returns the admin API of g, for bucket.
func NewMinIO(g *s3gateway.Gateway, bucket string) *MinIO {
	return &MinIO{AdminAccess: "minioadmin-" + randHex(4), AdminSecret: "minio-admin-secret-" + randHex(12), Gateway: g, Bucket: bucket, accounts: map[string]json.RawMessage{}, secrets: map[string]string{}}
}

// Secret returns the secret of a key the fake made (live or deleted).
func (m *MinIO) Secret(access string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.secrets[access]
}

// Secrets lists the secrets of every key the fake made, and its own.
func (m *MinIO) Secrets() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []string{m.AdminSecret}
	for _, s := range m.secrets {
		out = append(out, s)
	}
	return out
}

// Handler serves MinIO as one endpoint does: the admin API under
// /minio/admin/, and the S3 API (the gateway's, proxied) everywhere else.
func (m *MinIO) Handler() http.Handler {
	target, _ := url.Parse(m.Gateway.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/minio/admin/") {
			m.ServeHTTP(w, r)
			return
		}
		proxy.ServeHTTP(w, r) // the Host header stays: SigV4 signed it
	})
}

// Accounts lists the live service accounts.
func (m *MinIO) Accounts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for a := range m.accounts {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

func (m *MinIO) refuse(w http.ResponseWriter, why string) {
	m.Unexpected = append(m.Unexpected, why)
	reply(w, http.StatusForbidden, map[string]string{"Code": "AccessDenied", "Message": why})
}

func (m *MinIO) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="+m.AdminAccess+"/") {
		m.refuse(w, "request not signed with the admin key: "+r.Method+" "+r.URL.Path)
		return
	}
	sum := sha256.Sum256(body)
	if r.Header.Get("X-Amz-Content-Sha256") != hex.EncodeToString(sum[:]) {
		m.refuse(w, "payload hash does not match the body")
		return
	}
	m.n++
	w.Header().Set("X-Amz-Request-Id", fmt.Sprintf("MINIO%012d", m.n))
	op := strings.TrimPrefix(r.URL.Path, "/minio/admin/v3/")
	switch {
	case r.Method == http.MethodPut && op == "add-service-account":
		plain, err := cicred.DecryptAdminData(m.AdminSecret, body)
		if err != nil {
			m.refuse(w, "add-service-account body does not decrypt with the admin secret")
			return
		}
		var req struct {
			Policy      json.RawMessage `json:"policy"`
			Name        string          `json:"name"`
			Description string          `json:"description"`
		}
		dec := json.NewDecoder(bytes.NewReader(plain))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			m.refuse(w, "add-service-account body: "+err.Error())
			return
		}
		m.Policies = append(m.Policies, string(req.Policy))
		m.Names = append(m.Names, req.Name)
		m.Log = append(m.Log, "PUT add-service-account "+req.Name)
		if m.FailAdd {
			reply(w, http.StatusInternalServerError, map[string]string{"Code": "InternalError", "Message": "We encountered an internal error, please try again."})
			return
		}
		access, secret := "GZ"+strings.ToUpper(randHex(9)), randHex(20)
		if err := m.Gateway.Admin("create-user", "-a", access, "-s", secret, "-r", "user"); err != nil {
			reply(w, http.StatusInternalServerError, map[string]string{"Code": "InternalError", "Message": err.Error()})
			return
		}
		m.accounts[access] = req.Policy
		m.secrets[access] = secret
		if err := m.syncPolicy(); err != nil {
			reply(w, http.StatusInternalServerError, map[string]string{"Code": "InternalError", "Message": err.Error()})
			return
		}
		out, _ := json.Marshal(map[string]any{"credentials": map[string]any{"accessKey": access, "secretKey": secret, "expiration": "1970-01-01T00:00:00Z"}})
		sealed, _ := cicred.EncryptAdminData(m.AdminSecret, out)
		w.WriteHeader(http.StatusOK)
		w.Write(sealed)
	case r.Method == http.MethodDelete && op == "delete-service-account":
		access := r.URL.Query().Get("accessKey")
		m.Log = append(m.Log, "DELETE delete-service-account "+access)
		if m.FailDelete {
			reply(w, http.StatusInternalServerError, map[string]string{"Code": "InternalError", "Message": "We encountered an internal error, please try again."})
			return
		}
		if _, ok := m.accounts[access]; !ok {
			reply(w, http.StatusNotFound, map[string]string{"Code": "XMinioAdminServiceAccountNotFound", "Message": "The specified service account is not found"})
			return
		}
		delete(m.accounts, access)
		if err := m.Gateway.Admin("delete-user", "-a", access); err != nil {
			reply(w, http.StatusInternalServerError, map[string]string{"Code": "InternalError", "Message": err.Error()})
			return
		}
		if err := m.syncPolicy(); err != nil {
			reply(w, http.StatusInternalServerError, map[string]string{"Code": "InternalError", "Message": err.Error()})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		m.refuse(w, "unexpected "+r.Method+" "+r.URL.Path)
	}
}

// syncPolicy writes the bucket policy that gives each live account what
// its inline policy allows (conditions aside: the gateway's policies have
// none). MinIO limits a service account to its inline policy the same way.
func (m *MinIO) syncPolicy() error {
	type statement struct {
		Effect    string              `json:"Effect"`
		Principal map[string][]string `json:"Principal"`
		Action    []string            `json:"Action"`
		Resource  []string            `json:"Resource"`
	}
	var all []statement
	var keys []string
	for a := range m.accounts {
		keys = append(keys, a)
	}
	sort.Strings(keys)
	for _, a := range keys {
		var p struct {
			Statement []struct {
				Effect   string   `json:"Effect"`
				Action   []string `json:"Action"`
				Resource []string `json:"Resource"`
			} `json:"Statement"`
		}
		if err := json.Unmarshal(m.accounts[a], &p); err != nil {
			return err
		}
		for _, s := range p.Statement {
			all = append(all, statement{Effect: s.Effect, Principal: map[string][]string{"AWS": {a}}, Action: s.Action, Resource: s.Resource})
		}
	}
	c := m.Gateway.Client()
	ctx := context.Background()
	if len(all) == 0 {
		_, err := c.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: aws.String(m.Bucket)})
		return err
	}
	doc, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": all})
	_, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(m.Bucket), Policy: aws.String(string(doc))})
	return err
}
