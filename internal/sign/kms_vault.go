package sign

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// vaultKey is a Vault (or OpenBao) transit key of type ecdsa-p256. The
// server is VAULT_ADDR (https, or http on a loopback address: the token
// goes with every request), the token VAULT_TOKEN, the namespace
// VAULT_NAMESPACE and a private CA VAULT_CACERT. The client follows no
// redirect, and the token is in no message.
//
// Sign reads the key, takes its latest version and that version's public
// key, and has transit sign the SSHSIG signed-data blob with exactly that
// version (input whole, hash_algorithm sha2-256, marshaling_algorithm asn1).
type vaultKey struct {
	name    string
	mount   string
	getenv  func(string) string
	client  *api.Client
	version int64 // pinned by publicKey
	calls   []Request
}

var (
	vaultKeyName = regexp.MustCompile(`^\w(?:[\w.-]*\w)?$`) // transit's rule for key names
	vaultMount   = regexp.MustCompile(`^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$`)
)

const vaultDefaultMount = "transit"

func newVaultKey(spec Spec, getenv func(string) string) (*vaultKey, error) {
	name, query, _ := strings.Cut(spec.Value, "?")
	if !vaultKeyName.MatchString(name) {
		return nil, &SpecError{Spec: spec.String(), Reason: "expected vault:<transit-key-name>[?mount=PATH] (letters, digits, _, - and .)"}
	}
	opts, err := specOptions(spec, query, "mount")
	if err != nil {
		return nil, err
	}
	mount := vaultDefaultMount
	if m, ok := opts["mount"]; ok {
		m = strings.Trim(m, "/")
		if !vaultMount.MatchString(m) || strings.Contains("/"+m+"/", "/../") || strings.Contains("/"+m+"/", "/./") {
			return nil, &SpecError{Spec: spec.String(), Reason: fmt.Sprintf("mount %q is not a mount path", opts["mount"])}
		}
		mount = m
	}
	return &vaultKey{name: name, mount: mount, getenv: getenv}, nil
}

func (k *vaultKey) id() string { return k.mount + "/keys/" + k.name }

func (k *vaultKey) connect() (*api.Client, error) {
	if k.client != nil {
		return k.client, nil
	}
	raw := k.getenv("VAULT_ADDR")
	if raw == "" {
		return nil, errors.New("VAULT_ADDR is not set: set it to the Vault server's URL")
	}
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return nil, errors.New("VAULT_ADDR is not a server URL (https://HOST[:PORT])")
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if u.Scheme != "https" && !(u.Scheme == "http" && (host == "localhost" || (ip != nil && ip.IsLoopback()))) {
		return nil, errors.New("VAULT_ADDR must be https (http only on a loopback address): the token goes with every request")
	}
	token := k.getenv("VAULT_TOKEN")
	if token == "" {
		return nil, errors.New("VAULT_TOKEN is not set: the job needs a Vault token whose policy allows transit sign and key read")
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := k.getenv("VAULT_CACERT"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("VAULT_CACERT: cannot read %s", ca)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("VAULT_CACERT: %s holds no PEM certificate", ca)
		}
		tlsConf.RootCAs = pool
	}
	hc := &http.Client{
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     tlsConf,
			TLSHandshakeTimeout: 10 * time.Second,
		},
		// A redirect would carry the token to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c, err := api.NewClient(&api.Config{
		Address:          u.Scheme + "://" + u.Host,
		HttpClient:       hc,
		Timeout:          time.Minute,
		MaxRetries:       2,
		DisableRedirects: true,
	})
	if err != nil {
		return nil, fmt.Errorf("Vault client: %s", scrubSecrets(err.Error(), k.getenv))
	}
	c.SetToken(token)
	c.SetNamespace(k.getenv("VAULT_NAMESPACE"))
	k.client = c
	return c, nil
}

func (k *vaultKey) requests() []Request { return k.calls }

func (k *vaultKey) record(op string, sec *api.Secret) {
	id := ""
	if sec != nil {
		id = scrubSecrets(sec.RequestID, k.getenv)
	}
	k.calls = append(k.calls, Request{Service: "vault", Operation: op, Key: k.id(), RequestID: id})
}

// fail names the operation; the server's text is scrubbed of the token.
func (k *vaultKey) fail(op string, err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		if msg == "" {
			msg = http.StatusText(re.StatusCode)
		}
		if re.StatusCode >= 300 && re.StatusCode < 400 {
			msg = "a redirect, which is not followed: the token would go with it"
		}
		return fmt.Errorf("Vault %s %s: status %d: %s", op, k.id(), re.StatusCode, scrubSecrets(msg, k.getenv))
	}
	return fmt.Errorf("Vault %s %s: %s", op, k.id(), scrubSecrets(err.Error(), k.getenv))
}

func (k *vaultKey) publicKey(ctx context.Context) (*ecdsa.PublicKey, error) {
	c, err := k.connect()
	if err != nil {
		return nil, err
	}
	sec, err := c.Logical().ReadWithContext(ctx, k.mount+"/keys/"+k.name)
	k.record("ReadKey", sec)
	if err != nil {
		return nil, k.fail("read key", err)
	}
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("Vault read key %s: no such transit key", k.id())
	}
	if t, _ := sec.Data["type"].(string); t != "ecdsa-p256" {
		return nil, fmt.Errorf("transit key %s is of type %q; groundzero signs with ecdsa-p256 keys (SSH ecdsa-sha2-nistp256)", k.id(), scrubSecrets(t, k.getenv))
	}
	latest, err := vaultInt(sec.Data["latest_version"])
	if err != nil || latest < 1 {
		return nil, fmt.Errorf("Vault read key %s: the answer has no latest_version", k.id())
	}
	keys, _ := sec.Data["keys"].(map[string]any)
	entry, _ := keys[strconv.FormatInt(latest, 10)].(map[string]any)
	pemText, _ := entry["public_key"].(string)
	if pemText == "" {
		return nil, fmt.Errorf("Vault read key %s: the answer has no public key for version %d", k.id(), latest)
	}
	pub, err := parseP256PEM(pemText)
	if err != nil {
		return nil, err
	}
	k.version = latest
	return pub, nil
}

func vaultInt(v any) (int64, error) {
	switch v := v.(type) {
	case json.Number:
		return v.Int64()
	case float64:
		return int64(v), nil
	}
	return 0, errors.New("not a number")
}

func (k *vaultKey) sign(ctx context.Context, data []byte) ([]byte, error) {
	if k.version == 0 {
		return nil, errors.New("Vault sign: the public key was not read first")
	}
	c, err := k.connect()
	if err != nil {
		return nil, err
	}
	sec, err := c.Logical().WriteWithContext(ctx, k.mount+"/sign/"+k.name+"/sha2-256", map[string]any{
		"input":                base64.StdEncoding.EncodeToString(data),
		"key_version":          k.version,
		"prehashed":            false,
		"marshaling_algorithm": "asn1",
	})
	k.record("Sign", sec)
	if err != nil {
		return nil, k.fail("sign", err)
	}
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("Vault sign %s: the answer carries no signature", k.id())
	}
	text, _ := sec.Data["signature"].(string)
	prefix := "vault:v" + strconv.FormatInt(k.version, 10) + ":"
	b64, ok := strings.CutPrefix(text, prefix)
	if !ok {
		return nil, fmt.Errorf("Vault sign %s: the signature is not of the form %s<base64> (signed with another key version?)", k.id(), prefix)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("Vault sign %s: the signature is not base64", k.id())
	}
	return sig, nil
}
