package cicred

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/backend/vault"
)

// ServiceVault is the Call.Service of the KV calls.
const ServiceVault = "vault-kv"

// maxVaultBody bounds the answer to a read of a missing secret.
const maxVaultBody = 1 << 20

var pathSeg = regexp.MustCompile(`^[A-Za-z0-9_.@=+,-]+$`)

// KV is the credentials of one environment in a Vault or OpenBao KV
// version 2 engine: the credential of role ROLE lives at
// MOUNT/data/PATH/ROLE, as the fields
//
//	access_key_id, secret_access_key   the key (S3 credentials)
//	key_id, provider, env, role, scope, bucket, prefix, endpoint, region,
//	created, previous_key_id           its description
//
// and the secret's custom metadata repeats the description (never the
// secret), so that it can be listed without reading the key.
//
// The token authenticates the requests and goes nowhere else; the settings
// the Vault client would take from the process environment (VAULT_TOKEN,
// VAULT_NAMESPACE, VAULT_HEADERS) have no effect, and no redirect is
// followed.
type KV struct {
	c     *vault.Client
	mount string
	path  string
}

// KVOptions are what NewKV needs.
type KVOptions struct {
	Address   string // https://HOST[:PORT]; http only on a loopback address
	Mount     string // KV version 2 mount, "secret" say
	Path      string // the environment's path under the mount
	Namespace string
	Token     string
	// HTTPClient carries the requests; nil for a default client.
	HTTPClient *http.Client
}

// String prints the options without the token.
func (o KVOptions) String() string {
	return fmt.Sprintf("cicred.KVOptions{Address:%q, Mount:%q, Path:%q, Namespace:%q, Token:%s}", o.Address, o.Mount, o.Path, o.Namespace, redacted)
}

// GoString prints as String does.
func (o KVOptions) GoString() string { return o.String() }

// String names the store without the token.
func (k *KV) String() string { return "vault kv " + k.c.URL(k.mount+"/data/"+k.path) }

// NewKV returns the KV store opt names.
func NewKV(opt KVOptions) (*KV, error) {
	for what, p := range map[string]string{"mount": opt.Mount, "path": opt.Path} {
		for _, seg := range strings.Split(p, "/") {
			if !pathSeg.MatchString(seg) || seg == "." || seg == ".." {
				return nil, fmt.Errorf("vault: %s %q is not a clean path", what, p)
			}
		}
	}
	c, err := vault.NewClient(opt.Address, vault.Options{Token: opt.Token, Namespace: opt.Namespace, HTTPClient: opt.HTTPClient})
	if err != nil {
		return nil, err
	}
	return &KV{c: c, mount: opt.Mount, path: opt.Path}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Path is MOUNT/data/PATH/ROLE.
func (k *KV) Path(role string) string { return k.mount + "/data/" + k.path + "/" + role }

func (k *KV) metadataPath(role string) string { return k.mount + "/metadata/" + k.path + "/" + role }

// Read returns the credential in force, or nil when there is none. A
// secret whose newest version is deleted reads as a Stored with no key id,
// so that the next write can check-and-set against its version.
func (k *KV) Read(ctx context.Context, role string) (*Stored, backend.Call, error) {
	path := k.Path(role)
	call := backend.Call{Service: ServiceVault, Operation: "read", Resource: path}
	resp, err := k.c.ReadRaw(ctx, path)
	if resp != nil {
		defer resp.Body.Close()
	}
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		call.Outcome = "missing"
		sec, _ := api.ParseSecret(io.LimitReader(resp.Body, maxVaultBody))
		if sec != nil {
			call.RequestID = k.c.Scrub(sec.RequestID)
			if v := kvVersion(sec); v > 0 {
				return &Stored{Version: v}, call, nil
			}
		}
		return nil, call, nil
	}
	if err != nil {
		call.Outcome = "failed"
		return nil, call, k.c.Fail("read", path, err)
	}
	sec, err := k.parse(resp, "read", path)
	if err != nil {
		call.Outcome = "failed"
		return nil, call, err
	}
	call.RequestID, call.Outcome = k.c.Scrub(sec.RequestID), "read"
	st := &Stored{Version: kvVersion(sec)}
	data, _ := sec.Data["data"].(map[string]any)
	if data == nil {
		return st, call, nil // the newest version is deleted
	}
	str := func(f string) string { s, _ := data[f].(string); return s }
	st.KeyID, st.Provider, st.Scope, st.Created, st.PreviousKeyID = str("access_key_id"), str("provider"), str("scope"), str("created"), str("previous_key_id")
	st.secret = sha256.Sum256([]byte(str("secret_access_key")))
	if st.KeyID == "" || st.Version == 0 {
		call.Outcome = "failed"
		return nil, call, fmt.Errorf("vault: read %s: the secret has no access_key_id or version; it was not written by groundzero ci rotate", k.c.URL(path))
	}
	return st, call, nil
}

func kvVersion(sec *api.Secret) int {
	meta, _ := sec.Data["metadata"].(map[string]any)
	if meta == nil {
		return 0
	}
	switch v := meta["version"].(type) {
	case json.Number:
		n, _ := v.Int64()
		return int(n)
	case float64:
		return int(v)
	}
	return 0
}

// Write stores c as the next version of the role's secret, if the current
// version is still cas (0: the secret must not exist yet), then sets the
// secret's custom metadata.
func (k *KV) Write(ctx context.Context, role string, c Credential, cas int) (int, backend.Call, error) {
	path := k.Path(role)
	call := backend.Call{Service: ServiceVault, Operation: "write", Resource: path, Outcome: "failed"}
	desc := map[string]string{
		"key_id": c.Key.ID, "provider": c.Provider, "env": c.Env, "role": c.Role, "scope": c.Scope,
		"bucket": c.Bucket, "prefix": c.Prefix, "endpoint": c.Endpoint, "region": c.Region,
		"created": c.Created.Format(time.RFC3339), "previous_key_id": c.PreviousKeyID,
	}
	data := map[string]any{"access_key_id": c.Key.ID, "secret_access_key": string(c.Key.Secret)}
	for f, v := range desc {
		data[f] = v
	}
	body, err := json.Marshal(map[string]any{"data": data, "options": map[string]any{"cas": cas}})
	if err != nil {
		return 0, call, err
	}
	resp, err := k.c.WriteRaw(ctx, path, body)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return 0, call, scrubErr(k.c.Fail("write", path, err), c.Key.Secret)
	}
	sec, err := k.parse(resp, "write", path)
	if err != nil {
		return 0, call, err
	}
	call.RequestID = k.c.Scrub(sec.RequestID)
	v := 0
	switch n := sec.Data["version"].(type) {
	case json.Number:
		x, _ := n.Int64()
		v = int(x)
	case float64:
		v = int(n)
	}
	if v <= cas {
		return 0, call, fmt.Errorf("vault: write %s: the answer names version %d, not a version after %d", k.c.URL(path), v, cas)
	}
	call.Outcome = "written"
	// The description again as custom metadata, readable without the key.
	meta := map[string]string{}
	for f, v := range desc {
		if v != "" {
			meta[f] = v
		}
	}
	mb, _ := json.Marshal(map[string]any{"custom_metadata": meta})
	mresp, merr := k.c.WriteRaw(ctx, k.metadataPath(role), mb)
	if mresp != nil {
		mresp.Body.Close()
	}
	if merr != nil {
		return v, call, fmt.Errorf("vault: version %d written, but its custom metadata was not: %w", v, k.c.Fail("write", k.metadataPath(role), merr))
	}
	return v, call, nil
}

// parse reads the answer to op on path, which must carry a secret.
func (k *KV) parse(resp *api.Response, op, path string) (*api.Secret, error) {
	sec, err := k.c.Parse(resp, op, path)
	if err == nil && sec == nil {
		err = fmt.Errorf("vault: %s %s: the answer carries no secret", op, k.c.URL(path))
	}
	return sec, err
}

// scrubText replaces secret in s, flattens s to one line and bounds it.
func scrubText(s, secret string) string {
	if secret != "" {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 512 {
		s = strings.ToValidUTF8(s[:512], "") + "…"
	}
	return s
}
