// Package kmsfake serves, on 127.0.0.1, the few calls of AWS KMS, Cloud
// KMS and Vault transit that signing with a held key makes, for tests:
// the AWS JSON protocol's TrentService.GetPublicKey and TrentService.Sign,
// Cloud KMS REST getPublicKey and asymmetricSign, and Vault's transit key
// read and sign. Each server holds a real ECDSA P-256 key, checks the
// credentials each request carries, records what it was asked, and can be
// set to misbehave (Mode) so that a client's refusals can be tested.
package kmsfake

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Mode is how a server misbehaves.
type Mode string

const (
	Honest       Mode = ""              // answers as the real service does
	OtherKey     Mode = "other-key"     // signs with a key other than the one it publishes
	RawSignature Mode = "raw"           // returns r||s instead of a DER signature
	P384         Mode = "p384"          // the key is P-384, and the answer says so
	Mislabelled  Mode = "mislabelled"   // the answer says P-256, the key published is P-384
	OtherVersion Mode = "other-version" // Vault: the signature names another key version
	Rogue        Mode = "rogue"         // publishes and signs with a key of its own, as an impostor would
	Echo         Mode = "echo"          // every call fails with a message echoing the request's headers
)

// Call is one request the server received.
type Call struct {
	Operation string // GetPublicKey, Sign, AsymmetricSign, ReadKey
	Key       string // the key the request named
	Algorithm string // AWS SigningAlgorithm, Vault hash_algorithm
	Message   string // AWS MessageType; Vault marshaling_algorithm
	Digest    []byte // AWS Message (a digest) or Cloud KMS digest.sha256
	Input     []byte // Vault input
	Prehashed bool   // Vault prehashed
	Version   int64  // Vault key_version
	CRC32C    int64  // Cloud KMS digestCrc32c
}

// Server is a running fake.
type Server struct {
	URL   string
	Key   *ecdsa.PrivateKey // the key it publishes and signs with
	other *ecdsa.PrivateKey
	p384  *ecdsa.PrivateKey
	srv   *httptest.Server

	mu    sync.Mutex
	mode  Mode
	calls []Call
	seq   int
}

func newServer(h func(s *Server, w http.ResponseWriter, r *http.Request)) *Server {
	s := &Server{Key: mustKey(elliptic.P256()), other: mustKey(elliptic.P256()), p384: mustKey(elliptic.P384())}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(s, w, r) }))
	s.URL = s.srv.URL
	return s
}

func mustKey(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetMode changes how the server answers from now on.
func (s *Server) SetMode(m Mode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// Calls returns the requests received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

func (s *Server) record(c Call) (Mode, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	s.seq++
	return s.mode, fmt.Sprintf("req-%04d", s.seq)
}

// publicDER is the SubjectPublicKeyInfo the server publishes in mode m.
func (s *Server) publicDER(m Mode) []byte {
	pub := &s.Key.PublicKey
	switch m {
	case P384, Mislabelled:
		pub = &s.p384.PublicKey
	case Rogue:
		pub = &s.other.PublicKey
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return der
}

func (s *Server) publicPEM(m Mode) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: s.publicDER(m)}))
}

// signDigest signs a SHA-256 digest as the server's mode has it.
func (s *Server) signDigest(m Mode, digest []byte) []byte {
	key := s.Key
	if m == OtherKey || m == Rogue {
		key = s.other
	}
	if m == RawSignature {
		r, sv, err := ecdsa.Sign(rand.Reader, key, digest)
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		sv.FillBytes(out[32:])
		return out
	}
	der, err := ecdsa.SignASN1(rand.Reader, key, digest)
	if err != nil {
		panic(err)
	}
	return der
}

// echo is the text of an error that repeats the request's headers, as a
// careless proxy might, the credential-bearing ones first.
func echo(r *http.Request) string {
	keys := []string{"X-Amz-Security-Token", "X-Vault-Token", "Authorization"}
	var rest []string
	for k := range r.Header {
		if !slices.Contains(keys, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	keys = append(keys, rest...)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s; ", k, strings.Join(r.Header[k], ","))
	}
	return "request refused: " + b.String()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func readJSON(r *http.Request, v any) error {
	return json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v)
}

// AWS serves AWS KMS for one key, keyARN, to requests signed (SigV4) with
// accessKeyID. GetPublicKey also knows it by its key ID and by aliases
// ("alias/NAME").
func AWS(keyARN, accessKeyID string, aliases ...string) *Server {
	return newServer(func(s *Server, w http.ResponseWriter, r *http.Request) {
		awsErr := func(status int, typ, msg string) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
		}
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="+accessKeyID+"/") {
			awsErr(400, "UnrecognizedClientException", "The security token included in the request is invalid.")
			return
		}
		var req struct {
			KeyId            string
			Message          []byte
			MessageType      string
			SigningAlgorithm string
		}
		if err := readJSON(r, &req); err != nil {
			awsErr(400, "SerializationException", "bad JSON")
			return
		}
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
		mode, id := s.record(Call{Operation: op, Key: req.KeyId, Algorithm: req.SigningAlgorithm, Message: req.MessageType, Digest: req.Message})
		w.Header().Set("X-Amzn-Requestid", id)
		if mode == Echo {
			awsErr(400, "AccessDeniedException", echo(r))
			return
		}
		// GetPublicKey takes the key ID or the ARN; Sign is sent the ARN.
		known := req.KeyId == keyARN || (op == "GetPublicKey" && req.KeyId != "" && (strings.HasSuffix(keyARN, "/"+req.KeyId) || slices.Contains(aliases, req.KeyId)))
		if !known {
			awsErr(400, "NotFoundException", "Key '"+req.KeyId+"' does not exist")
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		switch op {
		case "GetPublicKey":
			spec := "ECC_NIST_P256"
			if mode == P384 {
				spec = "ECC_NIST_P384"
			}
			json.NewEncoder(w).Encode(map[string]any{
				"KeyId": keyARN, "KeySpec": spec, "KeyUsage": "SIGN_VERIFY",
				"PublicKey": s.publicDER(mode), "SigningAlgorithms": []string{"ECDSA_SHA_256"},
			})
		case "Sign":
			if req.MessageType != "DIGEST" || req.SigningAlgorithm != "ECDSA_SHA_256" || len(req.Message) != sha256.Size {
				awsErr(400, "ValidationException", "want a SHA-256 DIGEST signed with ECDSA_SHA_256")
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"KeyId": keyARN, "Signature": s.signDigest(mode, req.Message), "SigningAlgorithm": "ECDSA_SHA_256"})
		default:
			awsErr(400, "UnknownOperationException", op)
		}
	})
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// GCP serves Cloud KMS's REST API for one key version, name, to requests
// carrying "Authorization: Bearer token". At /token it is also the OAuth
// token endpoint a service account's credentials file names (token_uri):
// a JWT-bearer grant gets token.
func GCP(name, token string) *Server {
	return newServer(func(s *Server, w http.ResponseWriter, r *http.Request) {
		gErr := func(status int, msg string) {
			writeJSON(w, status, map[string]any{"error": map[string]any{"code": status, "message": msg, "status": "PERMISSION_DENIED"}})
		}
		path := strings.TrimPrefix(r.URL.Path, "/v1/")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/token":
			s.record(Call{Operation: "Token"})
			if r.ParseForm() != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.PostForm.Get("assertion") == "" {
				writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
				return
			}
			writeJSON(w, 200, map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": 3600})
		case r.Method == http.MethodGet && strings.HasSuffix(path, "/publicKey"):
			key := strings.TrimSuffix(path, "/publicKey")
			mode, id := s.record(Call{Operation: "GetPublicKey", Key: key})
			w.Header().Set("X-Goog-Request-Id", id)
			switch {
			case mode == Echo:
				gErr(403, echo(r))
			case r.Header.Get("Authorization") != "Bearer "+token:
				gErr(401, "Request had invalid authentication credentials.")
			case key != name:
				gErr(404, "CryptoKeyVersion "+key+" not found.")
			default:
				alg := "EC_SIGN_P256_SHA256"
				if mode == P384 {
					alg = "EC_SIGN_P384_SHA384"
				}
				p := s.publicPEM(mode)
				writeJSON(w, 200, map[string]any{"name": name, "algorithm": alg, "pem": p,
					"pemCrc32c": fmt.Sprint(crc32.Checksum([]byte(p), castagnoli)), "protectionLevel": "HSM"})
			}
		case r.Method == http.MethodPost && strings.HasSuffix(path, ":asymmetricSign"):
			key := strings.TrimSuffix(path, ":asymmetricSign")
			var req struct {
				Digest struct {
					Sha256 []byte `json:"sha256"`
				} `json:"digest"`
				DigestCrc32c string `json:"digestCrc32c"`
			}
			if err := readJSON(r, &req); err != nil {
				gErr(400, "bad JSON")
				return
			}
			var crc int64
			fmt.Sscan(req.DigestCrc32c, &crc)
			mode, id := s.record(Call{Operation: "AsymmetricSign", Key: key, Digest: req.Digest.Sha256, CRC32C: crc})
			w.Header().Set("X-Goog-Request-Id", id)
			switch {
			case mode == Echo:
				gErr(403, echo(r))
			case r.Header.Get("Authorization") != "Bearer "+token:
				gErr(401, "Request had invalid authentication credentials.")
			case key != name:
				gErr(404, "CryptoKeyVersion "+key+" not found.")
			case len(req.Digest.Sha256) != sha256.Size:
				gErr(400, "digest.sha256 must be 32 bytes")
			default:
				sig := s.signDigest(mode, req.Digest.Sha256)
				writeJSON(w, 200, map[string]any{"name": name, "signature": sig,
					"signatureCrc32c":      fmt.Sprint(crc32.Checksum(sig, castagnoli)),
					"verifiedDigestCrc32c": int64(crc32.Checksum(req.Digest.Sha256, castagnoli)) == crc,
					"protectionLevel":      "HSM"})
			}
		default:
			gErr(404, "no such method")
		}
	})
}

// Vault serves Vault's transit engine at mount for one key, name, of
// version 1, to requests carrying "X-Vault-Token: token".
func Vault(mount, name, token string) *Server {
	return newServer(func(s *Server, w http.ResponseWriter, r *http.Request) {
		vErr := func(status int, msg string) { writeJSON(w, status, map[string]any{"errors": []string{msg}}) }
		keyPath := "/v1/" + mount + "/keys/" + name
		signPath := "/v1/" + mount + "/sign/" + name + "/sha2-256"
		switch {
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/"+mount+"/keys/"):
			mode, id := s.record(Call{Operation: "ReadKey", Key: strings.TrimPrefix(r.URL.Path, "/v1/")})
			switch {
			case mode == Echo:
				vErr(403, echo(r))
			case r.Header.Get("X-Vault-Token") != token:
				vErr(403, "permission denied")
			case r.URL.Path != keyPath:
				vErr(404, "")
			default:
				typ := "ecdsa-p256"
				if mode == P384 {
					typ = "ecdsa-p384"
				}
				writeJSON(w, 200, map[string]any{"request_id": id, "data": map[string]any{
					"type": typ, "name": name, "latest_version": 1, "min_decryption_version": 1,
					"exportable": false, "supports_signing": true,
					"keys": map[string]any{"1": map[string]any{"name": "P-256", "public_key": s.publicPEM(mode), "creation_time": "2026-01-01T00:00:00Z"}},
				}})
			}
		case (r.Method == http.MethodPut || r.Method == http.MethodPost) && strings.HasPrefix(r.URL.Path, "/v1/"+mount+"/sign/"):
			var req struct {
				Input               []byte `json:"input"`
				KeyVersion          int64  `json:"key_version"`
				Prehashed           bool   `json:"prehashed"`
				MarshalingAlgorithm string `json:"marshaling_algorithm"`
			}
			if err := readJSON(r, &req); err != nil {
				vErr(400, "bad JSON")
				return
			}
			mode, id := s.record(Call{Operation: "Sign", Key: strings.TrimPrefix(r.URL.Path, "/v1/"), Algorithm: "sha2-256",
				Message: req.MarshalingAlgorithm, Input: req.Input, Prehashed: req.Prehashed, Version: req.KeyVersion})
			switch {
			case mode == Echo:
				vErr(403, echo(r))
			case r.Header.Get("X-Vault-Token") != token:
				vErr(403, "permission denied")
			case r.URL.Path != signPath:
				vErr(400, "unsupported path or hash algorithm")
			case req.KeyVersion != 0 && req.KeyVersion != 1:
				vErr(400, "invalid key version")
			case req.Prehashed && len(req.Input) != sha256.Size:
				vErr(400, "prehashed input must be a SHA-256 digest")
			default:
				digest := sha256.Sum256(req.Input)
				if req.Prehashed {
					digest = [32]byte(req.Input)
				}
				version := "1"
				if mode == OtherVersion {
					version = "2"
				}
				sig := "vault:v" + version + ":" + base64.StdEncoding.EncodeToString(s.signDigest(mode, digest[:]))
				writeJSON(w, 200, map[string]any{"request_id": id, "data": map[string]any{"signature": sig, "key_version": 1}})
			}
		default:
			vErr(404, "")
		}
	})
}
