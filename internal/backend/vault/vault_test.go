package vault_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/backend/vault"
)

const token = "hvs.TESTTOKEN-3f9c2a71d0e84b5f"

// vaultenv keeps the test process's Vault and OpenBao settings out of the
// tests.
func vaultenv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "VAULT_") || strings.HasPrefix(k, "BAO_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// fake speaks the part of Vault's HTTP API the package uses — read and
// create a transit key — and fails the test on any request that does not
// carry the token or asks for something else.
type fake struct {
	t         *testing.T
	mount     string
	namespace string // the X-Vault-Namespace every request must carry

	mu     sync.Mutex
	keys   map[string]map[string]any
	hidden bool // reads answer 404 although the key exists (a racing run)
	refuse bool // writes answer 403
	writes []map[string]any
	reqs   int
}

func newFake(t *testing.T, mount string) (*fake, *httptest.Server) {
	f := &fake{t: t, mount: mount, keys: map[string]map[string]any{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs++
	if got := r.Header.Get("X-Vault-Token"); got != token {
		f.t.Errorf("%s %s: X-Vault-Token is %q, want the test token", r.Method, r.URL.Path, got)
		reply(w, http.StatusForbidden, map[string]any{"errors": []string{"permission denied"}})
		return
	}
	if got := r.Header.Get("X-Vault-Request"); got != "true" {
		f.t.Errorf("%s %s: X-Vault-Request = %q, want true", r.Method, r.URL.Path, got)
	}
	if got := r.Header.Get("X-Vault-Namespace"); got != f.namespace {
		f.t.Errorf("%s %s: X-Vault-Namespace = %q, want %q", r.Method, r.URL.Path, got, f.namespace)
	}
	for h := range r.Header {
		if strings.HasPrefix(h, "X-Env") {
			f.t.Errorf("%s %s: header %s came from the environment", r.Method, r.URL.Path, h)
		}
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/v1/"+f.mount+"/keys/")
	if !ok || name == "" || strings.Contains(name, "/") {
		f.t.Errorf("%s %s: not a transit key path under mount %s", r.Method, r.URL.Path, f.mount)
		reply(w, http.StatusNotFound, map[string]any{"errors": []string{"no handler for route"}})
		return
	}
	switch r.Method {
	case http.MethodGet:
		key, ok := f.keys[name]
		if !ok || f.hidden {
			reply(w, http.StatusNotFound, map[string]any{"errors": []string{}})
			return
		}
		reply(w, http.StatusOK, map[string]any{"request_id": fmt.Sprintf("read-%d", f.reqs), "data": key})
	case http.MethodPut, http.MethodPost:
		var body map[string]any
		dec := json.NewDecoder(r.Body)
		if err := dec.Decode(&body); err != nil {
			f.t.Errorf("%s %s: body: %v", r.Method, r.URL.Path, err)
			reply(w, http.StatusBadRequest, map[string]any{"errors": []string{"bad body"}})
			return
		}
		f.writes = append(f.writes, body)
		if f.refuse {
			reply(w, http.StatusForbidden, map[string]any{"errors": []string{"permission denied"}})
			return
		}
		if key, ok := f.keys[name]; ok {
			reply(w, http.StatusOK, map[string]any{"request_id": fmt.Sprintf("write-%d", f.reqs), "data": key,
				"warnings": []string{fmt.Sprintf("key %s already existed", name)}})
			return
		}
		period := 0
		if p, ok := body["auto_rotate_period"].(string); ok {
			d, err := time.ParseDuration(p)
			if err != nil {
				f.t.Errorf("auto_rotate_period %q: %v", p, err)
			}
			period = int(d.Seconds())
		}
		key := map[string]any{
			"name": name, "type": body["type"], "exportable": body["exportable"],
			"allow_plaintext_backup": body["allow_plaintext_backup"], "deletion_allowed": false,
			"auto_rotate_period": period, "latest_version": 1,
		}
		f.keys[name] = key
		reply(w, http.StatusOK, map[string]any{"request_id": fmt.Sprintf("write-%d", f.reqs), "data": key})
	default:
		f.t.Errorf("%s %s: unexpected method", r.Method, r.URL.Path)
		reply(w, http.StatusMethodNotAllowed, map[string]any{"errors": []string{"unsupported operation"}})
	}
}

func goodKey() map[string]any {
	return map[string]any{
		"name": "state", "type": "aes256-gcm96", "exportable": false, "allow_plaintext_backup": false,
		"deletion_allowed": false, "auto_rotate_period": 90 * 24 * 3600, "latest_version": 1,
	}
}

func newKeys(t *testing.T, spec backend.Key, opt vault.Options) *vault.Keys {
	t.Helper()
	k, err := vault.New(spec, opt)
	if err != nil {
		t.Fatalf("New(%+v) = %v", spec, err)
	}
	return k
}

// A missing key is created with the settings that keep it in the server,
// and both calls are recorded.
func TestEnsureCreates(t *testing.T) {
	vaultenv(t)
	f, srv := newFake(t, "transit")
	k := newKeys(t, backend.Key{Provider: backend.KeyOpenBao, Address: srv.URL, Name: "state", RotationDays: 90}, vault.Options{Token: token})
	id, calls, err := k.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantID := srv.URL + "/v1/transit/keys/state"
	if id != wantID || k.ID() != wantID {
		t.Fatalf("Ensure id = %q, ID() = %q, want %q", id, k.ID(), wantID)
	}
	wantCalls := []backend.Call{
		{Service: "vault", Operation: "ReadKey", Resource: wantID, Outcome: "missing"},
		{Service: "vault", Operation: "CreateKey", RequestID: "write-2", Resource: wantID, Outcome: "created"},
	}
	if !reflect.DeepEqual(calls, wantCalls) {
		t.Fatalf("Ensure calls = %+v, want %+v", calls, wantCalls)
	}
	wantBody := map[string]any{"type": "aes256-gcm96", "exportable": false, "allow_plaintext_backup": false, "auto_rotate_period": "2160h"}
	if len(f.writes) != 1 || !reflect.DeepEqual(f.writes[0], wantBody) {
		t.Fatalf("writes = %v, want one %v", f.writes, wantBody)
	}
}

// A second run finds the key, records one read and writes nothing; the key
// it made passes Check.
func TestEnsureIdempotent(t *testing.T) {
	vaultenv(t)
	f, srv := newFake(t, "transit")
	k := newKeys(t, backend.Key{Address: srv.URL, Name: "state", RotationDays: 30}, vault.Options{Token: token})
	id1, _, err := k.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	id2, calls, err := k.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []backend.Call{{Service: "vault", Operation: "ReadKey", RequestID: "read-3", Resource: id1, Outcome: "exists"}}
	if id2 != id1 || !reflect.DeepEqual(calls, want) {
		t.Fatalf("second Ensure = %q, %+v, want %q, %+v", id2, calls, id1, want)
	}
	if len(f.writes) != 1 {
		t.Fatalf("%d writes after two runs, want 1", len(f.writes))
	}
	fs, calls, err := k.Check(context.Background(), id1)
	if err != nil || len(fs) != 0 {
		t.Fatalf("Check(new key) = %v, %v, want no findings", fs, err)
	}
	if len(calls) != 1 || calls[0].Outcome != "read" || calls[0].RequestID == "" {
		t.Fatalf("Check calls = %+v, want one read with a request ID", calls)
	}
}

// Without rotation_days the key is made without a rotation period, and
// Check then reports that rotation is off.
func TestEnsureWithoutRotation(t *testing.T) {
	vaultenv(t)
	f, srv := newFake(t, "transit")
	k := newKeys(t, backend.Key{Address: srv.URL, Name: "state"}, vault.Options{Token: token})
	id, _, err := k.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.writes[0]["auto_rotate_period"]; ok {
		t.Fatalf("write body = %v, want no auto_rotate_period", f.writes[0])
	}
	fs, _, err := k.Check(context.Background(), id)
	want := []backend.Finding{{Check: "key_rotation", Resource: id, Detail: "automatic rotation is off (auto_rotate_period is 0)"}}
	if err != nil || !reflect.DeepEqual(fs, want) {
		t.Fatalf("Check = %+v, %v, want %+v", fs, err, want)
	}
}

// When another run made the key between the read and the write, transit
// keeps the key and warns; the call says the key existed.
func TestEnsureLostRace(t *testing.T) {
	vaultenv(t)
	f, srv := newFake(t, "transit")
	f.keys["state"] = goodKey()
	f.hidden = true
	k := newKeys(t, backend.Key{Address: srv.URL, Name: "state"}, vault.Options{Token: token})
	_, calls, err := k.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || calls[1].Operation != "CreateKey" || calls[1].Outcome != "exists" {
		t.Fatalf("Ensure calls = %+v, want CreateKey with outcome exists", calls)
	}
}

// The mount comes from the spec, nested mounts included.
func TestMount(t *testing.T) {
	vaultenv(t)
	f, srv := newFake(t, "team/transit")
	k := newKeys(t, backend.Key{Address: srv.URL + "/", Mount: "/team/transit/", Name: "state.prod-1"}, vault.Options{Token: token})
	id, _, err := k.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := srv.URL + "/v1/team/transit/keys/state.prod-1"; id != want {
		t.Fatalf("id = %q, want %q", id, want)
	}
	if _, ok := f.keys["state.prod-1"]; !ok {
		t.Fatalf("key not made under team/transit: %v", f.keys)
	}
}

// Check reports each way a live key departs from what Ensure makes.
func TestCheckFindings(t *testing.T) {
	vaultenv(t)
	f, srv := newFake(t, "transit")
	k := newKeys(t, backend.Key{Address: srv.URL, Name: "state", RotationDays: 90}, vault.Options{Token: token})
	id := srv.URL + "/v1/transit/keys/state"
	for _, c := range []struct {
		name   string
		change func(map[string]any)
		want   []backend.Finding // nil: none
	}{
		{"good", func(map[string]any) {}, nil},
		{"exportable", func(m map[string]any) { m["exportable"] = true },
			[]backend.Finding{{Check: "key", Resource: id, Detail: "the key is exportable: its material can be read out of the server"}}},
		{"deletion_allowed", func(m map[string]any) { m["deletion_allowed"] = true },
			[]backend.Finding{{Check: "key", Resource: id, Detail: "the key can be deleted (deletion_allowed is true)"}}},
		{"plaintext backup", func(m map[string]any) { m["allow_plaintext_backup"] = true },
			[]backend.Finding{{Check: "key", Resource: id, Detail: "the key allows a plaintext backup"}}},
		{"no rotation", func(m map[string]any) { m["auto_rotate_period"] = 0 },
			[]backend.Finding{{Check: "key_rotation", Resource: id, Detail: "automatic rotation is off (auto_rotate_period is 0)"}}},
		{"slow rotation", func(m map[string]any) { m["auto_rotate_period"] = 365 * 24 * 3600 },
			[]backend.Finding{{Check: "key_rotation", Resource: id, Detail: "the key rotates every 365 days, the policy asks for at most 90 days"}}},
		{"type", func(m map[string]any) { m["type"] = "chacha20-poly1305" },
			[]backend.Finding{{Check: "key", Resource: id, Detail: `the key is of type "chacha20-poly1305", not aes256-gcm96`}}},
		{"soft deleted", func(m map[string]any) { m["soft_deleted"] = true },
			[]backend.Finding{{Check: "key", Resource: id, Detail: "the key is soft-deleted"}}},
		{"unreported", func(m map[string]any) { delete(m, "exportable"); delete(m, "auto_rotate_period") },
			[]backend.Finding{{Check: "key", Resource: id, Detail: "the server does not report exportable"}, {Check: "key_rotation", Resource: id, Detail: "the server does not report auto_rotate_period"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := goodKey()
			c.change(key)
			f.mu.Lock()
			f.keys["state"] = key
			f.mu.Unlock()
			fs, calls, err := k.Check(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fs, c.want) {
				t.Errorf("Check = %+v, want %+v", fs, c.want)
			}
			if len(calls) != 1 || calls[0].Resource != id || calls[0].Operation != "ReadKey" || calls[0].Outcome != "read" || calls[0].RequestID == "" {
				t.Errorf("Check calls = %+v, want one ReadKey of %s, read, with a request ID", calls, id)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		fs, calls, err := k.Check(context.Background(), srv.URL+"/v1/transit/keys/gone")
		want := []backend.Finding{{Check: "key", Resource: srv.URL + "/v1/transit/keys/gone", Detail: "the transit key does not exist"}}
		if err != nil || !reflect.DeepEqual(fs, want) || len(calls) != 1 || calls[0].Outcome != "missing" {
			t.Fatalf("Check(missing) = %+v, %+v, %v, want %+v and one call, missing", fs, calls, err, want)
		}
	})
}

// Check reads only keys on its own server: an identifier elsewhere is an
// error and no request is made.
func TestCheckForeignID(t *testing.T) {
	vaultenv(t)
	f, srv := newFake(t, "transit")
	k := newKeys(t, backend.Key{Address: srv.URL, Name: "state"}, vault.Options{Token: token})
	for _, id := range []string{
		"https://vault.example.com/v1/transit/keys/state",
		srv.URL + "/v1/transit/state",
		srv.URL + "/v1/transit/keys/a/b",
		srv.URL + "/v1//keys/state",
		"",
	} {
		if _, _, err := k.Check(context.Background(), id); err == nil {
			t.Errorf("Check(%q) = nil error, want one", id)
		}
	}
	if f.reqs != 0 {
		t.Fatalf("%d requests, want 0", f.reqs)
	}
}

func TestNewRejects(t *testing.T) {
	vaultenv(t)
	ok := backend.Key{Address: "https://vault.example.com:8200", Name: "state"}
	for _, c := range []struct {
		name   string
		change func(*backend.Key, *vault.Options)
	}{
		{"no address", func(k *backend.Key, _ *vault.Options) { k.Address = "" }},
		{"plain http", func(k *backend.Key, _ *vault.Options) { k.Address = "http://vault.example.com:8200" }},
		{"path", func(k *backend.Key, _ *vault.Options) { k.Address = "https://vault.example.com/v1" }},
		{"user", func(k *backend.Key, _ *vault.Options) { k.Address = "https://u:p@vault.example.com" }},
		{"no name", func(k *backend.Key, _ *vault.Options) { k.Name = "" }},
		{"slash in name", func(k *backend.Key, _ *vault.Options) { k.Name = "a/b" }},
		{"dots", func(k *backend.Key, _ *vault.Options) { k.Name = ".." }},
		{"mount", func(k *backend.Key, _ *vault.Options) { k.Mount = "transit/../sys" }},
		{"mount query", func(k *backend.Key, _ *vault.Options) { k.Mount = "transit?x=1" }},
		{"provider", func(k *backend.Key, _ *vault.Options) { k.Provider = backend.KeyAWSKMS }},
		{"rotation", func(k *backend.Key, _ *vault.Options) { k.RotationDays = -1 }},
		{"no token", func(_ *backend.Key, o *vault.Options) { o.Token = "" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, opt := ok, vault.Options{Token: token}
			c.change(&spec, &opt)
			if _, err := vault.New(spec, opt); err == nil {
				t.Fatalf("New(%+v) = nil error, want one", spec)
			}
		})
	}
	for _, addr := range []string{"https://vault.example.com:8200", "http://127.0.0.1:8200", "http://[::1]:8200", "http://localhost:8200/"} {
		spec := ok
		spec.Address = addr
		if _, err := vault.New(spec, vault.Options{Token: token}); err != nil {
			t.Errorf("New(address %s) = %v", addr, err)
		}
	}
}

// A refusal names the operation, the status and the server's reason, on
// one line.
func TestServerError(t *testing.T) {
	vaultenv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusForbidden, map[string]any{"errors": []string{"1 error occurred:\n\t* permission denied\n\n"}})
	}))
	t.Cleanup(srv.Close)
	k := newKeys(t, backend.Key{Address: srv.URL, Name: "state"}, vault.Options{Token: token})
	_, calls, err := k.Ensure(context.Background())
	want := "vault: read " + srv.URL + "/v1/transit/keys/state: status 403: 1 error occurred: * permission denied"
	wantCalls := []backend.Call{{Service: "vault", Operation: "ReadKey", Resource: k.ID(), Outcome: "failed"}}
	if err == nil || err.Error() != want || !reflect.DeepEqual(calls, wantCalls) {
		t.Fatalf("Ensure = %+v, %v, want %+v, %q", calls, err, wantCalls, want)
	}
}

// A refused write is recorded as a failed CreateKey after the ReadKey.
func TestEnsureWriteRefused(t *testing.T) {
	vaultenv(t)
	f, srv := newFake(t, "transit")
	f.refuse = true
	k := newKeys(t, backend.Key{Address: srv.URL, Name: "state"}, vault.Options{Token: token})
	id, calls, err := k.Ensure(context.Background())
	want := []backend.Call{
		{Service: "vault", Operation: "ReadKey", Resource: k.ID(), Outcome: "missing"},
		{Service: "vault", Operation: "CreateKey", Resource: k.ID(), Outcome: "failed"},
	}
	if err == nil || err.Error() != "vault: write "+k.ID()+": status 403: permission denied" || id != "" || !reflect.DeepEqual(calls, want) {
		t.Fatalf("Ensure = %q, %+v, %v, want a 403 error and %+v", id, calls, err, want)
	}
}

// T26: the token never leaves in a Call, a Finding, an error or a log
// line, even when the server echoes it back in every field it controls.
func TestTokenNeverLeaks(t *testing.T) {
	vaultenv(t)
	var seen sync.Map
	echo := func(status int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got := r.Header.Get("X-Vault-Token")
			seen.Store(got, true)
			switch {
			case status != http.StatusOK:
				reply(w, status, map[string]any{"errors": []string{"permission denied for token " + got}})
			case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/new"):
				reply(w, http.StatusNotFound, map[string]any{"errors": []string{}})
			default:
				key := goodKey()
				key["type"] = got
				reply(w, http.StatusOK, map[string]any{"request_id": "req-" + got, "data": key,
					"warnings": []string{"token " + got}})
			}
		})
	}
	var texts []string
	record := func(v ...any) {
		for _, x := range v {
			b, err := json.Marshal(x)
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, string(b), fmt.Sprintf("%v", x))
		}
	}

	ok := httptest.NewServer(echo(http.StatusOK))
	t.Cleanup(ok.Close)
	k := newKeys(t, backend.Key{Address: ok.URL, Name: "state"}, vault.Options{Token: token})
	_, calls, err := k.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	record(calls)
	fs, calls, err := k.Check(context.Background(), k.ID())
	if err != nil {
		t.Fatal(err)
	}
	record(fs, calls)
	kn := newKeys(t, backend.Key{Address: ok.URL, Name: "new"}, vault.Options{Token: token})
	_, calls, err = kn.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	record(calls)

	denied := httptest.NewServer(echo(http.StatusForbidden))
	t.Cleanup(denied.Close)
	kd := newKeys(t, backend.Key{Address: denied.URL, Name: "state"}, vault.Options{Token: token})
	_, _, err1 := kd.Ensure(context.Background())
	_, _, err2 := kd.Check(context.Background(), kd.ID())
	if err1 == nil || err2 == nil {
		t.Fatalf("Ensure, Check against a refusing server = %v, %v, want errors", err1, err2)
	}
	texts = append(texts, err1.Error(), err2.Error())

	opt := vault.Options{Token: token, Namespace: "team"}
	texts = append(texts, fmt.Sprintf("%v %+v %#v %s", opt, opt, opt, &opt))
	texts = append(texts, fmt.Sprintf("%v %+v %#v %v %+v %#v", k, k, k, *k, *k, *k))
	var log bytes.Buffer
	slog.New(slog.NewJSONHandler(&log, nil)).Info("options", "opt", opt)
	slog.New(slog.NewTextHandler(&log, nil)).Info("options", "opt", opt, "keys", k)
	texts = append(texts, log.String())

	if _, ok := seen.Load(token); !ok {
		t.Fatal("the servers never received the token: the echo paths were not exercised")
	}
	all := strings.Join(texts, "\n")
	if strings.Contains(all, token) {
		t.Fatalf("the token leaked:\n%s", all)
	}
	for _, want := range []string{`"request_id":"req-REDACTED"`, `of type \"REDACTED\"`, "permission denied for token REDACTED"} {
		if !strings.Contains(all, want) {
			t.Errorf("output does not show the echo redacted (%s):\n%s", want, all)
		}
	}
}

// No redirect is followed, whatever the caller's client would do: the
// token would go with it.
func TestNoRedirect(t *testing.T) {
	vaultenv(t)
	var elsewhere sync.Map
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Store(r.Header.Get("X-Vault-Token"), true)
		reply(w, http.StatusOK, map[string]any{"request_id": "other", "data": goodKey()})
	}))
	t.Cleanup(other.Close)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)

	caller := &http.Client{}
	k := newKeys(t, backend.Key{Address: redirect.URL, Name: "state"}, vault.Options{Token: token, HTTPClient: caller})
	_, calls, err := k.Ensure(context.Background())
	if err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("Ensure behind a redirect = %+v, %v, want a redirect error", calls, err)
	}
	if _, _, err := k.Check(context.Background(), k.ID()); err == nil {
		t.Fatal("Check behind a redirect = nil error, want one")
	}
	n := 0
	elsewhere.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Fatal("a request followed the redirect")
	}
	if caller.CheckRedirect != nil {
		t.Fatal("New changed the caller's HTTP client")
	}
}

// The Vault client's own environment settings have no effect: the token
// and namespace come from Options only, VAULT_ADDR and VAULT_AGENT_ADDR do
// not redirect the requests and VAULT_HEADERS adds nothing.
func TestEnvironmentIgnored(t *testing.T) {
	vaultenv(t)
	var strays sync.Map
	stray := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		strays.Store(r.URL.Path, true)
		reply(w, http.StatusNotFound, map[string]any{"errors": []string{}})
	}))
	t.Cleanup(stray.Close)
	t.Setenv("VAULT_TOKEN", "env-token")
	t.Setenv("VAULT_NAMESPACE", "env-namespace")
	t.Setenv("VAULT_HEADERS", `{"X-Env-Header":"1"}`)
	t.Setenv("VAULT_ADDR", stray.URL)
	t.Setenv("VAULT_AGENT_ADDR", stray.URL)

	for _, ns := range []string{"", "team"} {
		f, srv := newFake(t, "transit")
		f.namespace = ns
		k := newKeys(t, backend.Key{Address: srv.URL, Name: "state"}, vault.Options{Token: token, Namespace: ns})
		if _, _, err := k.Ensure(context.Background()); err != nil {
			t.Fatal(err)
		}
		if f.reqs != 2 {
			t.Fatalf("namespace %q: %d requests reached the server, want 2", ns, f.reqs)
		}
	}
	n := 0
	strays.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Fatal("a request went to VAULT_ADDR or VAULT_AGENT_ADDR")
	}
}

// Findings reads the rotation period in the forms servers answer with.
func TestFindingsRotationForms(t *testing.T) {
	for _, c := range []struct {
		period any
		ok     bool
	}{
		{json.Number("2592000"), true},
		{float64(2592000), true},
		{"2592000", true},
		{"720h", true},
		{json.Number("31536000"), false},
		{"8761h", false},
		{true, false},
	} {
		key := goodKey()
		key["auto_rotate_period"] = c.period
		fs := vault.Findings("id", key, 30*24*time.Hour)
		if (len(fs) == 0) != c.ok {
			t.Errorf("Findings(auto_rotate_period %#v) = %+v, want ok=%v", c.period, fs, c.ok)
		}
	}
}
