package cicred

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/groundzero/groundzero/internal/backend"
)

// ServiceVault is the Call.Service of the KV calls.
const ServiceVault = "vault-kv"

// maxVaultBody bounds an answer from Vault.
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
	client  *api.Client
	token   string
	address string
	mount   string
	path    string
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
func (k *KV) String() string { return "vault kv " + k.address + "/v1/" + k.mount + "/data/" + k.path }

// NewKV returns the KV store opt names.
func NewKV(opt KVOptions) (*KV, error) {
	addr, err := vaultAddress(opt.Address)
	if err != nil {
		return nil, err
	}
	for what, p := range map[string]string{"mount": opt.Mount, "path": opt.Path} {
		for _, seg := range strings.Split(p, "/") {
			if !pathSeg.MatchString(seg) || seg == "." || seg == ".." {
				return nil, fmt.Errorf("vault: %s %q is not a clean path", what, p)
			}
		}
	}
	if opt.Token == "" {
		return nil, errors.New("vault: no token (set VAULT_TOKEN or BAO_TOKEN)")
	}
	hc := &http.Client{}
	if opt.HTTPClient != nil {
		c := *opt.HTTPClient
		hc = &c
	}
	if hc.Transport == nil {
		hc.Transport = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 10 * time.Second,
		}
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client, err := api.NewClient(&api.Config{Address: addr, HttpClient: hc, Timeout: time.Minute, MaxRetries: 2, DisableRedirects: true})
	if err != nil {
		return nil, fmt.Errorf("vault: %s", scrubText(err.Error(), opt.Token))
	}
	// SetHeaders replaces what the environment set (VAULT_HEADERS and
	// VAULT_NAMESPACE); the token is set explicitly over VAULT_TOKEN.
	client.SetHeaders(http.Header{api.RequestHeaderName: {"true"}})
	if opt.Namespace != "" {
		client.SetNamespace(opt.Namespace)
	}
	client.SetToken(opt.Token)
	return &KV{client: client, token: opt.Token, address: addr, mount: opt.Mount, path: opt.Path}, nil
}

func vaultAddress(s string) (string, error) {
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("vault: address %q is not a server URL (https://HOST[:PORT])", s)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return "", fmt.Errorf("vault: address %q must be https (http only on a loopback address): the token and the keys go with the requests", s)
	}
	return u.Scheme + "://" + u.Host, nil
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
	resp, err := k.client.Logical().ReadRawWithContext(ctx, path)
	if resp != nil {
		defer resp.Body.Close()
	}
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		call.Outcome = "missing"
		sec, _ := api.ParseSecret(io.LimitReader(resp.Body, maxVaultBody))
		if sec != nil {
			call.RequestID = scrubText(sec.RequestID, k.token)
			if v := kvVersion(sec); v > 0 {
				return &Stored{Version: v}, call, nil
			}
		}
		return nil, call, nil
	}
	if err != nil {
		call.Outcome = "failed"
		return nil, call, k.fail("read", path, err)
	}
	sec, err := k.parse(resp, "read", path)
	if err != nil {
		call.Outcome = "failed"
		return nil, call, err
	}
	call.RequestID, call.Outcome = scrubText(sec.RequestID, k.token), "read"
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
		return nil, call, fmt.Errorf("vault: read %s: the secret has no access_key_id or version; it was not written by groundzero ci rotate", k.address+"/v1/"+path)
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
	resp, err := k.client.Logical().WriteRawWithContext(ctx, path, body)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return 0, call, scrubErr(k.fail("write", path, err), c.Key.Secret)
	}
	sec, err := k.parse(resp, "write", path)
	if err != nil {
		return 0, call, err
	}
	call.RequestID = scrubText(sec.RequestID, k.token)
	v := 0
	switch n := sec.Data["version"].(type) {
	case json.Number:
		x, _ := n.Int64()
		v = int(x)
	case float64:
		v = int(n)
	}
	if v <= cas {
		return 0, call, fmt.Errorf("vault: write %s: the answer names version %d, not a version after %d", k.address+"/v1/"+path, v, cas)
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
	mresp, merr := k.client.Logical().WriteRawWithContext(ctx, k.metadataPath(role), mb)
	if mresp != nil {
		mresp.Body.Close()
	}
	if merr != nil {
		return v, call, fmt.Errorf("vault: version %d written, but its custom metadata was not: %w", v, k.fail("write", k.metadataPath(role), merr))
	}
	return v, call, nil
}

func (k *KV) parse(resp *api.Response, op, path string) (*api.Secret, error) {
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return nil, fmt.Errorf("vault: %s %s: the server answered %d, a redirect, which is not followed: the token would go with it", op, k.address+"/v1/"+path, resp.StatusCode)
		}
		return nil, fmt.Errorf("vault: %s %s: unexpected status %d", op, k.address+"/v1/"+path, resp.StatusCode)
	}
	sec, err := api.ParseSecret(io.LimitReader(resp.Body, maxVaultBody))
	if err != nil || sec == nil {
		return nil, fmt.Errorf("vault: %s %s: the answer is not a Vault response", op, k.address+"/v1/"+path)
	}
	return sec, nil
}

// fail turns a client error into one that names the operation and carries
// no token, whatever the server echoed.
func (k *KV) fail(op, path string, err error) error {
	where := k.address + "/v1/" + path
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		if msg == "" {
			msg = http.StatusText(re.StatusCode)
		}
		return fmt.Errorf("vault: %s %s: status %d: %s", op, where, re.StatusCode, scrubText(msg, k.token))
	}
	return fmt.Errorf("vault: %s %s: %s", op, where, scrubText(err.Error(), k.token))
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
