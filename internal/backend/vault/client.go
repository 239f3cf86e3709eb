package vault

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// Client is the Vault (or OpenBao) API client of one server and one token.
// The token goes with its requests and nowhere else: no redirect is
// followed, the address is https (http only on a loopback address), the
// settings the Vault client would take from the process environment
// (VAULT_TOKEN, VAULT_NAMESPACE, VAULT_HEADERS, VAULT_AGENT_ADDR,
// VAULT_CACERT, VAULT_SKIP_VERIFY) have no effect, and its errors carry no
// token, whatever the server echoed.
type Client struct {
	api     *api.Client
	token   string
	address string
}

// NewClient returns the client of the server at address (https://HOST[:PORT])
// with the token and the namespace in opt.
func NewClient(address string, opt Options) (*Client, error) {
	addr, err := parseAddress(address)
	if err != nil {
		return nil, err
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
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		}
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client, err := api.NewClient(&api.Config{
		Address:          addr,
		HttpClient:       hc,
		Timeout:          time.Minute,
		MaxRetries:       2,
		DisableRedirects: true,
	})
	if err != nil {
		return nil, fmt.Errorf("vault: %s", scrub(err.Error(), opt.Token))
	}
	// SetHeaders replaces what the environment set (VAULT_HEADERS and
	// VAULT_NAMESPACE); the token is set explicitly over VAULT_TOKEN.
	client.SetHeaders(http.Header{api.RequestHeaderName: {"true"}})
	if opt.Namespace != "" {
		client.SetNamespace(opt.Namespace)
	}
	client.SetToken(opt.Token)
	return &Client{api: client, token: opt.Token, address: addr}, nil
}

func parseAddress(s string) (string, error) {
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("vault: address %q is not a server URL (https://HOST[:PORT])", s)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback(u.Hostname()):
	default:
		return "", fmt.Errorf("vault: address %q must be https (http only on a loopback address): the token goes with every request", s)
	}
	return u.Scheme + "://" + u.Host, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Address is the server's URL, https://HOST[:PORT].
func (c *Client) Address() string { return c.address }

// URL is the URL of an API path: ADDRESS/v1/PATH.
func (c *Client) URL(path string) string { return c.address + "/v1/" + path }

// ReadRaw sends GET /v1/PATH; the caller closes the response body.
func (c *Client) ReadRaw(ctx context.Context, path string) (*api.Response, error) {
	return c.api.Logical().ReadRawWithContext(ctx, path)
}

// WriteRaw sends body to /v1/PATH; the caller closes the response body.
func (c *Client) WriteRaw(ctx context.Context, path string, body []byte) (*api.Response, error) {
	return c.api.Logical().WriteRawWithContext(ctx, path, body)
}

// Parse reads the answer of operation op on path: the secret of a 200
// answer (nil when it has no body), nil for 204, and an error for any other
// status (a redirect is not followed) or an answer that is not a Vault
// response.
func (c *Client) Parse(resp *api.Response, op, path string) (*api.Secret, error) {
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNoContent:
		return nil, nil
	default:
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return nil, fmt.Errorf("vault: %s %s: the server answered %d, a redirect, which is not followed: the token would go with it", op, c.URL(path), resp.StatusCode)
		}
		return nil, fmt.Errorf("vault: %s %s: unexpected status %d", op, c.URL(path), resp.StatusCode)
	}
	sec, err := api.ParseSecret(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("vault: %s %s: the answer is not a Vault response", op, c.URL(path))
	}
	return sec, nil
}

// Fail turns a client error of operation op on path into one that names
// them and carries no token, whatever the server echoed.
func (c *Client) Fail(op, path string, err error) error {
	where := c.URL(path)
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		if msg == "" {
			msg = http.StatusText(re.StatusCode)
		}
		return fmt.Errorf("vault: %s %s: status %d: %s", op, where, re.StatusCode, c.Scrub(msg))
	}
	if s := c.Scrub(err.Error()); s != err.Error() {
		return fmt.Errorf("vault: %s %s: %s", op, where, s)
	}
	return fmt.Errorf("vault: %s %s: %w", op, where, err)
}

// Scrub replaces the token in s, flattens s to one line and bounds it.
func (c *Client) Scrub(s string) string { return scrub(s, c.token) }

// scrub replaces secret in s, flattens it to one line and bounds it.
func scrub(s, secret string) string {
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "REDACTED")
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 512 {
		s = strings.ToValidUTF8(s[:512], "") + "…"
	}
	return s
}
