// Package vault keeps the state store's key in a HashiCorp Vault or OpenBao
// transit secrets engine (key provider openbao), over Vault's official API
// client: Ensure makes the transit key once, with settings that keep its
// material inside the server, and Check compares a live key with them.
//
// A key's identifier is its URL on the server's HTTP API,
//
//	ADDRESS/v1/MOUNT/keys/NAME
//
// for example https://vault.example.com:8200/v1/transit/keys/state-prod. The
// lock records it; Check reads the key it names.
//
// The token authenticates the requests and goes nowhere else. It is not in
// any Call, Finding or error (text the server echoes is redacted), the
// client follows no redirect (a redirect would carry the token to another
// host), and the settings the Vault client would otherwise take from the
// process environment (VAULT_TOKEN, VAULT_NAMESPACE, VAULT_HEADERS,
// VAULT_AGENT_ADDR, VAULT_CACERT, VAULT_SKIP_VERIFY) have no effect: the
// caller passes the token, and the namespace if any, in Options.
package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/groundzero/groundzero/internal/backend"
)

// Settings of the key Ensure makes.
const (
	// KeyType is the transit key type: AES-256 in GCM mode.
	KeyType = "aes256-gcm96"
	// DefaultMount is the transit engine's mount when the spec names none.
	DefaultMount = "transit"
)

// Service is the Call.Service of every call this package makes.
const Service = "vault"

// maxBody bounds a successful answer from the server.
const maxBody = 1 << 20

var (
	keyName  = regexp.MustCompile(`^\w(?:[\w.-]*\w)?$`) // transit's own rule for key names
	mountSeg = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// Options are what New needs beyond the spec.
type Options struct {
	// Token is the Vault/OpenBao token. The caller reads it (VAULT_TOKEN or
	// BAO_TOKEN); it is never logged or printed.
	Token string
	// Namespace is the Vault Enterprise / HCP namespace, "" for none.
	Namespace string
	// HTTPClient carries the requests; nil for a default client. Its
	// redirect policy is replaced: no redirect is followed.
	HTTPClient *http.Client
}

// String prints the options with the token redacted.
func (o Options) String() string {
	return fmt.Sprintf("vault.Options{Token:%s, Namespace:%q}", redacted(o.Token), o.Namespace)
}

// GoString prints the options with the token redacted.
func (o Options) GoString() string { return o.String() }

// LogValue logs the options with the token redacted.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(slog.String("token", redacted(o.Token)), slog.String("namespace", o.Namespace))
}

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "REDACTED"
}

// Keys is one transit key on one server.
type Keys struct {
	c        *Client
	mount    string
	name     string
	rotation time.Duration
}

// String names the key; the token is not printed.
func (k Keys) String() string { return "vault key " + k.ID() }

// GoString names the key; the token is not printed.
func (k Keys) GoString() string { return k.String() }

// New returns the transit key spec names: spec.Address is the server,
// spec.Mount the transit mount (default "transit"), spec.Name the key and
// spec.RotationDays its automatic rotation period (0: none).
//
// The address must be https, or http on a loopback address.
func New(spec backend.Key, opt Options) (*Keys, error) {
	if spec.Provider != "" && spec.Provider != backend.KeyOpenBao {
		return nil, fmt.Errorf("vault: key provider %s is not %s", spec.Provider, backend.KeyOpenBao)
	}
	mount := strings.Trim(spec.Mount, "/")
	if mount == "" {
		mount = DefaultMount
	}
	for _, seg := range strings.Split(mount, "/") {
		if !mountSeg.MatchString(seg) || seg == "." || seg == ".." {
			return nil, fmt.Errorf("vault: mount %q is not a mount path", spec.Mount)
		}
	}
	if !keyName.MatchString(spec.Name) {
		return nil, fmt.Errorf("vault: key name %q is not a transit key name (letters, digits, _, - and ., starting and ending with a letter, digit or _)", spec.Name)
	}
	if spec.RotationDays < 0 {
		return nil, fmt.Errorf("vault: rotation_days %d is negative", spec.RotationDays)
	}
	c, err := NewClient(spec.Address, opt)
	if err != nil {
		return nil, err
	}
	return &Keys{
		c:        c,
		mount:    mount,
		name:     spec.Name,
		rotation: time.Duration(spec.RotationDays) * 24 * time.Hour,
	}, nil
}

// path is the key's API path below /v1/.
func (k *Keys) path() string { return k.mount + "/keys/" + k.name }

// ID is the identifier of the key: ADDRESS/v1/MOUNT/keys/NAME.
func (k *Keys) ID() string { return k.c.URL(k.path()) }

// Ensure makes the key unless it exists, and returns its identifier and
// the calls made (on error, the calls made until then). A new key is of
// type aes256-gcm96, not exportable, with no plaintext backup, rotating
// every spec.RotationDays days. An existing key is left as it is (Check
// reports how it departs). Running it again changes nothing.
//
// Call outcomes: ReadKey "exists", "missing" or "failed"; CreateKey
// "created", "exists" (another run made it first) or "failed".
func (k *Keys) Ensure(ctx context.Context) (id string, calls []backend.Call, err error) {
	id = k.ID()
	read := backend.Call{Service: Service, Operation: "ReadKey", Resource: id}
	sec, err := k.read(ctx, k.path())
	switch {
	case err != nil:
		read.Outcome = "failed"
		return "", k.clean([]backend.Call{read}), err
	case sec != nil:
		read.RequestID, read.Outcome = sec.RequestID, "exists"
		return id, k.clean([]backend.Call{read}), nil
	}
	read.Outcome = "missing"
	calls = []backend.Call{read}

	body := map[string]any{
		"type":                   KeyType,
		"exportable":             false,
		"allow_plaintext_backup": false,
	}
	if k.rotation > 0 {
		body["auto_rotate_period"] = strconv.FormatInt(int64(k.rotation/time.Hour), 10) + "h"
	}
	create := backend.Call{Service: Service, Operation: "CreateKey", Resource: id, Outcome: "created"}
	sec, err = k.write(ctx, k.path(), body)
	if err != nil {
		create.Outcome = "failed"
		return "", k.clean(append(calls, create)), err
	}
	if sec != nil {
		create.RequestID = sec.RequestID
		for _, w := range sec.Warnings {
			// Transit answers a write to an existing key with this warning
			// and leaves the key alone: another run made it first.
			if strings.Contains(w, "already existed") {
				create.Outcome = "exists"
			}
		}
	}
	return id, k.clean(append(calls, create)), nil
}

// Check reads the key id names and reports how it departs from what Ensure
// makes: missing, of another type, exportable, with plaintext backup,
// deletable, soft-deleted, or rotating less often than spec.RotationDays
// asks (never, when it asks for none). id must be a key on this server.
// The ReadKey call's outcome is "read", "missing" or "failed".
func (k *Keys) Check(ctx context.Context, id string) ([]backend.Finding, []backend.Call, error) {
	path, ok := strings.CutPrefix(id, k.c.URL(""))
	mount, name, found := strings.Cut(path, "/keys/")
	if !ok || !found || mount == "" || !keyName.MatchString(name) {
		return nil, nil, fmt.Errorf("vault: key %q is not a transit key on %s", id, k.c.Address())
	}
	call := backend.Call{Service: Service, Operation: "ReadKey", Resource: id, Outcome: "read"}
	sec, err := k.read(ctx, path)
	switch {
	case err != nil:
		call.Outcome = "failed"
		return nil, k.clean([]backend.Call{call}), err
	case sec == nil:
		call.Outcome = "missing"
		return k.cleanFindings([]backend.Finding{{Check: "key", Resource: id, Detail: "the transit key does not exist"}}), k.clean([]backend.Call{call}), nil
	}
	call.RequestID = sec.RequestID
	return k.cleanFindings(Findings(id, sec.Data, k.rotation)), k.clean([]backend.Call{call}), nil
}

// Findings compares the data of a transit key read (GET MOUNT/keys/NAME)
// with what Ensure makes; rotation is the longest automatic rotation
// period allowed, 0 for any period but never none. A setting the answer
// does not carry is a finding.
func Findings(id string, data map[string]any, rotation time.Duration) []backend.Finding {
	var out []backend.Finding
	add := func(check, detail string) {
		out = append(out, backend.Finding{Check: check, Resource: id, Detail: detail})
	}
	if t, _ := data["type"].(string); t != KeyType {
		add("key", fmt.Sprintf("the key is of type %q, not %s", t, KeyType))
	}
	for _, f := range []struct {
		field  string
		detail string
	}{
		{"exportable", "the key is exportable: its material can be read out of the server"},
		{"allow_plaintext_backup", "the key allows a plaintext backup"},
		{"deletion_allowed", "the key can be deleted (deletion_allowed is true)"},
	} {
		v, ok := data[f.field].(bool)
		switch {
		case !ok:
			add("key", "the server does not report "+f.field)
		case v:
			add("key", f.detail)
		}
	}
	if v, _ := data["soft_deleted"].(bool); v {
		add("key", "the key is soft-deleted")
	}
	period, ok := seconds(data["auto_rotate_period"])
	switch {
	case !ok:
		add("key_rotation", "the server does not report auto_rotate_period")
	case period <= 0:
		add("key_rotation", "automatic rotation is off (auto_rotate_period is 0)")
	case rotation > 0 && period > rotation:
		add("key_rotation", fmt.Sprintf("the key rotates every %s, the policy asks for at most %s", days(period), days(rotation)))
	}
	return out
}

// seconds reads auto_rotate_period: whole seconds, or a duration string.
func seconds(v any) (time.Duration, bool) {
	switch v := v.(type) {
	case json.Number:
		n, err := v.Int64()
		return time.Duration(n) * time.Second, err == nil
	case float64:
		return time.Duration(v) * time.Second, true
	case string:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return time.Duration(n) * time.Second, true
		}
		d, err := time.ParseDuration(v)
		return d, err == nil
	}
	return 0, false
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + " days"
	}
	return d.String()
}

// read returns the secret at path, nil when the server answers 404.
func (k *Keys) read(ctx context.Context, path string) (*api.Secret, error) {
	resp, err := k.c.ReadRaw(ctx, path)
	if resp != nil {
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return nil, nil
		}
	}
	if err != nil {
		return nil, k.c.Fail("read", path, err)
	}
	sec, err := k.c.Parse(resp, "read", path)
	if err == nil && (sec == nil || sec.Data == nil) {
		err = fmt.Errorf("vault: read %s: the answer carries no key", k.c.URL(path))
	}
	return sec, err
}

// write sends body to path; the secret is nil when the server answers 204.
func (k *Keys) write(ctx context.Context, path string, body map[string]any) (*api.Secret, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	resp, err := k.c.WriteRaw(ctx, path, b)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, k.c.Fail("write", path, err)
	}
	return k.c.Parse(resp, "write", path)
}

// clean redacts the token from text the server chose (request IDs).
func (k *Keys) clean(calls []backend.Call) []backend.Call {
	for i := range calls {
		c := &calls[i]
		c.RequestID, c.Resource, c.Operation = k.c.Scrub(c.RequestID), k.c.Scrub(c.Resource), k.c.Scrub(c.Operation)
	}
	return calls
}

// cleanFindings redacts the token from text the server chose (a key type).
func (k *Keys) cleanFindings(fs []backend.Finding) []backend.Finding {
	for i := range fs {
		f := &fs[i]
		f.Detail, f.Resource = k.c.Scrub(f.Detail), k.c.Scrub(f.Resource)
	}
	return fs
}
