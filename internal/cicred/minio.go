package cicred

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/groundzero/groundzero/internal/backend"
)

// ServiceMinIO is the Call.Service of the MinIO admin calls.
const ServiceMinIO = "minio-admin"

// minioAdminPrefix is the admin API's path.
const minioAdminPrefix = "/minio/admin/v3"

// MinIO makes CI keys as MinIO service accounts of the admin identity,
// each with an inline policy limited to its scope, over MinIO's admin API
// (the calls `mc admin user svcacct add/rm` make): requests are signed
// with AWS Signature Version 4, and request and answer bodies that carry
// credentials are encrypted as MinIO's admin API requires (see seal).
type MinIO struct {
	endpoint string
	region   string
	access   string
	secret   Secret
	hc       *http.Client
	now      func() time.Time
}

// MinIOOptions are what NewMinIO needs.
type MinIOOptions struct {
	Endpoint string // the server, https://HOST[:PORT]
	Region   string // default us-east-1
	// AccessKey and SecretKey are the admin identity that owns the
	// service accounts.
	AccessKey  string
	SecretKey  Secret
	HTTPClient *http.Client
}

// String prints the options; the secret key prints as REDACTED.
func (o MinIOOptions) String() string {
	return fmt.Sprintf("cicred.MinIOOptions{Endpoint:%q, Region:%q, AccessKey:%q, SecretKey:%s}", o.Endpoint, o.Region, o.AccessKey, redacted)
}

// NewMinIO returns the admin client opt names.
func NewMinIO(opt MinIOOptions) (*MinIO, error) {
	u, err := url.Parse(strings.TrimRight(opt.Endpoint, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) || u.User != nil || u.RawQuery != "" {
		return nil, fmt.Errorf("minio: endpoint %q is not https://HOST[:PORT] (http only on a loopback address)", opt.Endpoint)
	}
	if opt.AccessKey == "" || opt.SecretKey == "" {
		return nil, errors.New("minio: no admin credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	region := opt.Region
	if region == "" {
		region = "us-east-1"
	}
	hc := opt.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &MinIO{endpoint: u.Scheme + "://" + u.Host + strings.TrimRight(u.Path, "/"), region: region, access: opt.AccessKey, secret: opt.SecretKey, hc: &c, now: time.Now}, nil
}

// Name is "minio".
func (m *MinIO) Name() string { return "minio" }

// String names the server; the admin secret is not printed.
func (m *MinIO) String() string { return "minio admin " + m.endpoint }

// s3Policy is an IAM policy document in the S3 dialect MinIO speaks.
type s3Policy struct {
	Version   string        `json:"Version"`
	Statement []s3Statement `json:"Statement"`
}

type s3Statement struct {
	Sid       string                         `json:"Sid"`
	Effect    string                         `json:"Effect"`
	Action    []string                       `json:"Action"`
	Resource  []string                       `json:"Resource"`
	Condition map[string]map[string][]string `json:"Condition,omitempty"`
}

// S3Policy is the policy document of scope: list the prefix; read it; and
// write it (apply) or only the lock object (plan).
func S3Policy(s Scope) []byte {
	bucket := "arn:aws:s3:::" + s.Bucket
	st := []s3Statement{{
		Sid: "ListStatePrefix", Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: []string{bucket},
		Condition: map[string]map[string][]string{"StringLike": {"s3:prefix": {s.Prefix + "*"}}},
	}}
	if s.Role == RoleApply {
		st = append(st, s3Statement{Sid: "ReadWriteState", Effect: "Allow",
			Action: []string{"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"}, Resource: []string{bucket + "/" + s.Prefix + "*"}})
	} else {
		st = append(st,
			s3Statement{Sid: "ReadState", Effect: "Allow", Action: []string{"s3:GetObject", "s3:GetObjectVersion"}, Resource: []string{bucket + "/" + s.Prefix + "*"}},
			s3Statement{Sid: "WriteLock", Effect: "Allow", Action: []string{"s3:PutObject", "s3:DeleteObject"}, Resource: []string{bucket + "/" + s.LockKey}})
	}
	b, _ := json.Marshal(s3Policy{Version: "2012-10-17", Statement: st})
	return b
}

// Grant is the inline policy, as sent.
func (m *MinIO) Grant(s Scope) (string, error) { return string(S3Policy(s)), nil }

// minioAddRequest is the add-service-account request body.
type minioAddRequest struct {
	Policy      json.RawMessage `json:"policy"`
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
}

// ServiceAccountName is the name a service account of scope gets.
func ServiceAccountName(s Scope) string {
	n := "gz-" + s.Env + "-" + s.Role
	if len(n) > 32 {
		n = n[:32]
	}
	return n
}

// Create adds a service account with the scope's inline policy.
func (m *MinIO) Create(ctx context.Context, s Scope) (Key, []backend.Call, error) {
	k, c, err := m.create(ctx, s)
	return k, []backend.Call{c}, err
}

func (m *MinIO) create(ctx context.Context, s Scope) (Key, backend.Call, error) {
	call := backend.Call{Service: ServiceMinIO, Operation: "add-service-account", Resource: ServiceAccountName(s), Outcome: "failed"}
	body, _ := json.Marshal(minioAddRequest{Policy: S3Policy(s), Name: ServiceAccountName(s), Description: "groundzero ci " + s.Env + " " + s.Role + ": " + s.String()})
	sealed, err := seal(string(m.secret), body)
	if err != nil {
		return Key{}, call, err
	}
	resp, data, err := m.do(ctx, http.MethodPut, "/add-service-account", nil, sealed)
	if resp != nil {
		call.RequestID = resp.Header.Get("X-Amz-Request-Id")
	}
	if err != nil {
		return Key{}, call, err
	}
	if resp.StatusCode != http.StatusOK {
		return Key{}, call, m.statusError("add-service-account", resp, data)
	}
	plain, err := open(string(m.secret), data)
	if err != nil {
		return Key{}, call, fmt.Errorf("minio: add-service-account: the answer does not decrypt with the admin key: %v", err)
	}
	var out struct {
		Credentials struct {
			AccessKey string `json:"accessKey"`
			SecretKey string `json:"secretKey"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal(plain, &out); err != nil || out.Credentials.AccessKey == "" || out.Credentials.SecretKey == "" {
		return Key{}, call, errors.New("minio: add-service-account: the answer carries no credentials")
	}
	call.Outcome, call.Resource = "created", out.Credentials.AccessKey
	return Key{ID: out.Credentials.AccessKey, Secret: Secret(out.Credentials.SecretKey)}, call, nil
}

// Delete removes the service account id.
func (m *MinIO) Delete(ctx context.Context, _ Scope, id string) (backend.Call, error) {
	call := backend.Call{Service: ServiceMinIO, Operation: "delete-service-account", Resource: id, Outcome: "failed"}
	resp, data, err := m.do(ctx, http.MethodDelete, "/delete-service-account", url.Values{"accessKey": {id}}, nil)
	if resp != nil {
		call.RequestID = resp.Header.Get("X-Amz-Request-Id")
	}
	if err != nil {
		return call, err
	}
	switch {
	case resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusOK:
		call.Outcome = "deleted"
		return call, nil
	case resp.StatusCode == http.StatusNotFound || minioCode(data) == "XMinioAdminServiceAccountNotFound":
		call.Outcome = "missing"
		return call, nil
	}
	return call, m.statusError("delete-service-account", resp, data)
}

func (m *MinIO) do(ctx context.Context, method, op string, q url.Values, body []byte) (*http.Response, []byte, error) {
	u := m.endpoint + minioAdminPrefix + op
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	req.Header.Set("Content-Type", "application/octet-stream")
	creds := aws.Credentials{AccessKeyID: m.access, SecretAccessKey: string(m.secret)}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "s3", m.region, m.now().UTC()); err != nil {
		return nil, nil, fmt.Errorf("minio: signing %s: %v", op, scrubText(err.Error(), string(m.secret)))
	}
	resp, err := m.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("minio: %s %s: %s", method, m.endpoint+minioAdminPrefix+op, scrubText(err.Error(), string(m.secret)))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp, nil, fmt.Errorf("minio: %s: reading the answer: %v", op, err)
	}
	return resp, data, nil
}

func minioCode(data []byte) string {
	var e struct {
		Code string `json:"Code"`
	}
	json.Unmarshal(data, &e)
	return e.Code
}

func (m *MinIO) statusError(op string, resp *http.Response, data []byte) error {
	var e struct {
		Code    string `json:"Code"`
		Message string `json:"Message"`
	}
	json.Unmarshal(data, &e)
	msg := strings.TrimSpace(e.Code + ": " + e.Message)
	if e.Code == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return fmt.Errorf("minio: %s: status %d: %s", op, resp.StatusCode, scrubText(msg, string(m.secret)))
}

// The admin API's encrypted bodies are
//
//	salt (32 bytes) | AEAD id (1 byte) | nonce (8 bytes) | stream
//
// where the key is Argon2id(password = the admin secret key, salt, time 1,
// memory 64 MiB, 4 threads, 32 bytes) for ids 0 (AES-256-GCM) and 1
// (ChaCha20-Poly1305), or PBKDF2-SHA256(8192 rounds) for id 2
// (AES-256-GCM), and the stream is the sio (DARE 2.0) format: 16 KiB
// fragments, each sealed with nonce = nonce | little-endian sequence
// number (from 1) and associated data = flag | the tag of an empty message
// sealed at sequence number 0, flag 0x80 on the final fragment and 0x00
// before it.
const (
	sioBufSize       = 1 << 14
	aeadArgon2AES    = 0x00
	aeadArgon2ChaCha = 0x01
	aeadPBKDF2AES    = 0x02
)

// EncryptAdminData encrypts a body of MinIO's admin API with password (the
// admin secret key), as the server and `mc` do.
func EncryptAdminData(password string, plaintext []byte) ([]byte, error) {
	return seal(password, plaintext)
}

// DecryptAdminData decrypts and authenticates a body of MinIO's admin API.
func DecryptAdminData(password string, data []byte) ([]byte, error) { return open(password, data) }

func seal(password string, plaintext []byte) ([]byte, error) {
	salt := make([]byte, 32)
	nonce := make([]byte, 8)
	rand.Read(salt)
	rand.Read(nonce)
	key := argon2.IDKey([]byte(password), salt, 1, 64*1024, 4, 32)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	out := append(append(append([]byte{}, salt...), aeadArgon2AES), nonce...)
	return append(out, sioSeal(aead, sioBufSize, nonce, nil, plaintext)...), nil
}

func open(password string, data []byte) ([]byte, error) {
	if len(data) < 41 {
		return nil, errors.New("too short")
	}
	salt, id, nonce := data[:32], data[32], data[33:41]
	var aead cipher.AEAD
	var err error
	switch id {
	case aeadArgon2AES, aeadArgon2ChaCha:
		key := argon2.IDKey([]byte(password), salt, 1, 64*1024, 4, 32)
		if id == aeadArgon2ChaCha {
			aead, err = chacha20poly1305.New(key)
			break
		}
		block, _ := aes.NewCipher(key)
		aead, err = cipher.NewGCM(block)
	case aeadPBKDF2AES:
		key, kerr := pbkdf2.Key(sha256.New, password, salt, 8192, 32)
		if kerr != nil {
			return nil, kerr
		}
		block, _ := aes.NewCipher(key)
		aead, err = cipher.NewGCM(block)
	default:
		return nil, fmt.Errorf("unknown AEAD id %d", id)
	}
	if err != nil {
		return nil, err
	}
	return sioOpen(aead, sioBufSize, nonce, nil, data[41:])
}

func sioNonce(aead cipher.AEAD, nonce []byte, seq uint32) []byte {
	n := make([]byte, aead.NonceSize())
	copy(n, nonce)
	binary.LittleEndian.PutUint32(n[len(n)-4:], seq)
	return n
}

func sioAD(aead cipher.AEAD, nonce, ad []byte) []byte {
	return append([]byte{0x00}, aead.Seal(nil, sioNonce(aead, nonce, 0), nil, ad)...)
}

// sioSeal encrypts plaintext as one sio stream.
func sioSeal(aead cipher.AEAD, bufSize int, nonce, ad, plaintext []byte) []byte {
	adata := sioAD(aead, nonce, ad)
	var out []byte
	seq := uint32(1)
	for len(plaintext) > bufSize {
		out = aead.Seal(out, sioNonce(aead, nonce, seq), plaintext[:bufSize], adata)
		plaintext = plaintext[bufSize:]
		seq++
	}
	adata[0] = 0x80
	return aead.Seal(out, sioNonce(aead, nonce, seq), plaintext, adata)
}

// sioOpen decrypts and authenticates one sio stream.
func sioOpen(aead cipher.AEAD, bufSize int, nonce, ad, ciphertext []byte) ([]byte, error) {
	adata := sioAD(aead, nonce, ad)
	frag := bufSize + aead.Overhead()
	var out []byte
	seq := uint32(1)
	for len(ciphertext) > frag {
		p, err := aead.Open(nil, sioNonce(aead, nonce, seq), ciphertext[:frag], adata)
		if err != nil {
			return nil, errors.New("not authentic")
		}
		out = append(out, p...)
		ciphertext = ciphertext[frag:]
		seq++
	}
	adata[0] = 0x80
	p, err := aead.Open(nil, sioNonce(aead, nonce, seq), ciphertext, adata)
	if err != nil {
		return nil, errors.New("not authentic")
	}
	return append(out, p...), nil
}
