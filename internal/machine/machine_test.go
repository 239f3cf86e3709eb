package machine

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func testKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testRecord(t testing.TB) []byte {
	t.Helper()
	r, err := New(testKey(t), "alice", "admin-1", t0, 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	data, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestRoundTrip(t *testing.T) {
	data := testRecord(t)
	r, err := Parse("m.json", data)
	if err != nil {
		t.Fatalf("Parse(New(…).Marshal()) = %v, want nil", err)
	}
	out, err := r.Marshal()
	if err != nil || !bytes.Equal(out, data) {
		t.Errorf("Marshal(Parse(data)) = %q, %v, want %q", out, err, data)
	}
	if r.Kind != "groundzero.machine/v1" || r.Expires != "2027-03-01T10:00:00Z" {
		t.Errorf("Parse(data) = %+v, want kind groundzero.machine/v1 expiring 2027-03-01T10:00:00Z", r)
	}
}

func TestParseRefuses(t *testing.T) {
	data := testRecord(t)
	other, _ := Parse("m.json", testRecord(t))
	body := strings.TrimSuffix(string(data), "\n")
	cases := map[string]string{
		"no final newline":   body,
		"two final newlines": body + "\n\n",
		"space":              strings.Replace(body, `,"expires"`, `, "expires"`, 1),
		"unknown field":      strings.Replace(body, `{"created"`, `{"certifier":"bob","created"`, 1),
		"case-folded field":  strings.Replace(body, `"owner"`, `"Owner"`, 1) + "\n",
		"missing field":      strings.Replace(body, `"hostname":"admin-1",`, ``, 1) + "\n",
		"duplicate key":      strings.Replace(body, `"owner":"alice"`, `"owner":"alice","owner":"bob"`, 1) + "\n",
		"other kind":         strings.Replace(body, `groundzero.machine/v1`, `groundzero.intent/v1`, 1) + "\n",
		"version 2":          strings.Replace(body, `groundzero.machine/v1`, `groundzero.machine/v2`, 1) + "\n",
		"escaped character":  strings.Replace(body, `"admin-1"`, `"admin\u002d1"`, 1) + "\n",
		"other fingerprint":  strings.Replace(body, mustParse(t, data).Fingerprint, other.Fingerprint, 1) + "\n",
		"other public key":   strings.Replace(body, `"public_key":"`+mustParse(t, data).PublicKey, `"public_key":"`+other.PublicKey, 1) + "\n",
		"expires first":      strings.Replace(body, `"expires":"2027-03-01T10:00:00Z"`, `"expires":"2026-12-01T10:00:00Z"`, 1) + "\n",
		"local time":         strings.Replace(body, `"created":"2026-12-01T10:00:00Z"`, `"created":"2026-12-01T11:00:00+01:00"`, 1) + "\n",
		"bad owner":          strings.Replace(body, `"owner":"alice"`, `"owner":"Alice Smith"`, 1) + "\n",
		"not an object":      "[]\n",
		"too large":          body[:len(body)-1] + `,"x":"` + strings.Repeat("a", MaxSize) + `"}` + "\n",
	}
	for name, in := range cases {
		_, err := Parse("m.json", []byte(in))
		var me *MalformedError
		if !errors.As(err, &me) {
			t.Errorf("%s: Parse = %v, want *MalformedError", name, err)
		}
	}
}

func TestParseRefusesRSA(t *testing.T) {
	data := testRecord(t)
	r := mustParse(t, data)
	r.PublicKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7"
	if err := r.validate(); err == nil {
		t.Errorf("validate(ssh-rsa key) = nil, want an error")
	}
}

func mustParse(t testing.TB, data []byte) *Record {
	t.Helper()
	r, err := Parse("m.json", data)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestKeyDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HOME": "/home/a"}, "/home/a/.config/groundzero/machine"},
		{map[string]string{"HOME": "/home/a", "XDG_CONFIG_HOME": "/x"}, "/x/groundzero/machine"},
		{map[string]string{"HOME": "/home/a", "XDG_CONFIG_HOME": "rel"}, "/home/a/.config/groundzero/machine"},
		{map[string]string{}, ""},
	} {
		got, err := KeyDir(env(c.env))
		if got != c.want || (err != nil) != (c.want == "") {
			t.Errorf("KeyDir(%v) = %q, %v, want %q", c.env, got, err, c.want)
		}
	}
}

func TestCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "machine")
	if _, err := LoadKey(dir); !errors.As(err, new(*NoKeyError)) {
		t.Fatalf("LoadKey(empty) = %v, want *NoKeyError", err)
	}
	k, created, err := CreateKey(dir, "test")
	if err != nil || !created {
		t.Fatalf("CreateKey = %v, %v, want created", created, err)
	}
	fi, err := os.Stat(filepath.Join(dir, PrivateKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode = %v, %v, want 0600", fi.Mode().Perm(), err)
	}
	again, created, err := CreateKey(dir, "test")
	if err != nil || created || again.Fingerprint != k.Fingerprint {
		t.Fatalf("CreateKey again = %v, %v, want the same key", created, err)
	}
	pub, err := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	if err != nil || !strings.HasPrefix(string(pub), AuthorizedKey(k.Public())+" test\n") {
		t.Errorf("public key file = %q, %v", pub, err)
	}
	os.Chmod(filepath.Join(dir, PrivateKeyFile), 0o644)
	if _, err := LoadKey(dir); !errors.As(err, new(*KeyError)) {
		t.Errorf("LoadKey(mode 0644) = %v, want *KeyError", err)
	}
}

func TestStatement(t *testing.T) {
	k, _, err := CreateKey(t.TempDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	payload, sig, err := k.SignStatement(Statement{Command: "apply", Env: "prod", Intent: "20261201T100000Z-1a2b3c4d", Time: "2026-12-01T10:05:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"command":"apply","env":"prod","fingerprint":"` + k.Fingerprint + `","intent":"20261201T100000Z-1a2b3c4d","kind":"groundzero.machine-statement/v1","time":"2026-12-01T10:05:00Z"}`
	if string(payload) != want {
		t.Errorf("SignStatement payload = %s, want %s", payload, want)
	}
	if err := VerifyStatement(k.Public(), payload, sig); err != nil {
		t.Errorf("VerifyStatement = %v, want nil", err)
	}
	if err := VerifyStatement(k.Public(), bytes.Replace(payload, []byte("prod"), []byte("dev!"), 1), sig); err == nil {
		t.Errorf("VerifyStatement(changed statement) = nil, want an error")
	}
	if err := VerifyStatement(testKey(t), payload, sig); err == nil {
		t.Errorf("VerifyStatement(other key) = nil, want an error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(testRecord(f))
	f.Add([]byte(`{"kind":"groundzero.machine/v1"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse("m.json", data)
		if err != nil {
			return
		}
		out, err := r.Marshal()
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("Marshal(Parse(%q)) = %q, %v", data, out, err)
		}
	})
}
