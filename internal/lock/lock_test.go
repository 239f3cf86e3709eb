package lock_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/keyfixture"
	"github.com/groundzero/groundzero/internal/lock"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
)

var now = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func sample(t *testing.T) *lock.Lock {
	t.Helper()
	tp, err := backend.TemplateFor(backend.KindMinIO, false)
	if err != nil {
		t.Fatal(err)
	}
	return &lock.Lock{
		Backend: "minio", Bucket: "tfstate", Created: now.Format(time.RFC3339), Endpoint: "http://127.0.0.1:9000", Env: "dev",
		Intent: "20261201T100000Z-0123abcd", KeyProvider: backend.KeyNone, Kind: lock.Kind, LockMethod: backend.LockFile,
		Region: "us-east-1", StateKey: "dev/terraform.tfstate", Template: tp.Name, TemplateSHA256: tp.SHA256, Version: 1,
		Waivers: []lock.Waiver{{Probe: "encryption", Reason: "the gateway has none"}},
	}
}

func TestLockRoundTripIsCanonical(t *testing.T) {
	l := sample(t)
	data, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := lock.Parse(".backend.lock", data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := got.Marshal()
	if string(again) != string(data) {
		t.Fatal("a parsed lock does not marshal to its own bytes")
	}
	if out, err := got.Render(); err != nil || !strings.Contains(string(out), `bucket  = "tfstate"`) {
		t.Fatalf("Render = %v\n%s", err, out)
	}
	// T10: every other spelling of the same record is refused.
	for name, bad := range map[string]string{
		"spaces":        strings.Replace(string(data), `":`, `": `, 1),
		"duplicate key": strings.Replace(string(data), `{"backend":"minio",`, `{"backend":"minio","backend":"s3",`, 1),
		"missing field": strings.Replace(string(data), `"lock_table":"",`, ``, 1),
		"unknown field": strings.Replace(string(data), `{"backend"`, `{"a":1,"backend"`, 1),
		"no newline":    strings.TrimSuffix(string(data), "\n"),
		"other kind":    strings.Replace(string(data), lock.Kind, "groundzero.intent/v1", 1),
	} {
		if _, err := lock.Parse(".backend.lock", []byte(bad)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestLockVersionsNameWhatTheyReplace(t *testing.T) {
	l := sample(t)
	l.Version = 2
	if _, err := l.Marshal(); err != nil {
		t.Fatal(err)
	}
	data, _ := l.Marshal()
	if _, err := lock.Parse("x", data); err == nil || !strings.Contains(err.Error(), "previous") {
		t.Fatalf("a version 2 lock without previous parsed: %v", err)
	}
	l.Previous, l.Revocation = strings.Repeat("a", 64), "20261201T100000Z-89abcdef"
	data, _ = l.Marshal()
	if _, err := lock.Parse("x", data); err != nil {
		t.Fatal(err)
	}
}

func TestLockOfUnknownTemplateDoesNotRender(t *testing.T) {
	l := sample(t)
	l.TemplateSHA256 = strings.Repeat("0", 64)
	if _, err := l.Render(); err == nil || !strings.Contains(err.Error(), "does not embed") {
		t.Fatalf("Render = %v", err)
	}
	l = sample(t)
	l.Template = "gcs.v1" // the name must be the template's own
	if _, err := l.Render(); err == nil {
		t.Fatal("a lock naming another template rendered")
	}
}

// registry makes SSH signers with roles (id → comma-separated roles).
func registry(t testing.TB, roles map[string]string) (*signers.Registry, map[string]keyfixture.SSHKey) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "keys"), 0o755)
	keys := map[string]keyfixture.SSHKey{}
	yaml := "version: 1\nsigners:\n"
	for id, r := range roles {
		k := keyfixture.NewSSHKey(t, filepath.Join(dir, "keys"), id, "ed25519", 0)
		line := k.PublicLine(t)
		pk, _, _, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			t.Fatal(err)
		}
		yaml += fmt.Sprintf("  - id: %s\n    roles: [%s]\n    keys: [{file: keys/%s.pub, fingerprint: %q, sha256: %x}]\n", id, r, id, ssh.FingerprintSHA256(pk), sha256.Sum256(line))
		keys[id] = k
	}
	reg, err := signers.Parse("signers.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.LoadKeys(func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, rel)) }); err != nil {
		t.Fatal(err)
	}
	return reg, keys
}

func sigs(t testing.TB, keys map[string]keyfixture.SSHKey, data []byte, namespace string, ids ...string) []*signature.Signature {
	t.Helper()
	var out []*signature.Signature
	for _, id := range ids {
		s, err := signature.Parse(signature.SSH, keys[id].Sign(t, data, namespace))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s...)
	}
	return out
}

// The two-person rule on locks and revocations, against the attacks of
// THREATS T1, T2 and T9.
func TestApproveNeedsTwoPeopleWithTheRoles(t *testing.T) {
	reg, keys := registry(t, map[string]string{"alice": "security,release", "bob": "approver", "rel": "release", "carol": "operator"})
	data, _ := sample(t).Marshal()
	rule := policy.DefaultApprovals()["bootstrap"]
	approve := func(s []*signature.Signature) ([]string, error) {
		return lock.Approve("lock", data, s, reg, now, lock.Kind, rule)
	}
	if ids, err := approve(sigs(t, keys, data, lock.Kind, "alice", "bob")); err != nil || len(ids) != 2 {
		t.Fatalf("alice and bob: %v %v", ids, err)
	}
	cases := map[string][]*signature.Signature{
		"one person":                 sigs(t, keys, data, lock.Kind, "alice"),
		"one person twice (T2)":      append(sigs(t, keys, data, lock.Kind, "alice"), sigs(t, keys, data, lock.Kind, "alice")...),
		"a release-only signer (T1)": sigs(t, keys, data, lock.Kind, "alice", "rel"),
		"an intent signature (T9)":   sigs(t, keys, data, "groundzero.intent/v2", "alice", "bob"),
		"a revocation's namespace":   sigs(t, keys, data, lock.RevocationKind, "alice", "bob"),
		"no approver or security":    sigs(t, keys, data, lock.Kind, "carol", "rel"),
	}
	for name, s := range cases {
		if ids, err := approve(s); err == nil {
			t.Errorf("%s: approved by %v", name, ids)
		}
	}
	// A policy that asks for one approval still gets two.
	one := rule
	one.Count = 1
	if _, err := lock.Approve("lock", data, sigs(t, keys, data, lock.Kind, "alice"), reg, now, lock.Kind, one); err == nil {
		t.Error("count 1 in policy.yaml let one person approve a lock")
	}
}

func TestRevocationRecord(t *testing.T) {
	rv, err := lock.NewRevocation("dev", strings.Repeat("b", 64), 1, "20261201T100000Z-0123abcd", "the state moves to a new bucket", "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := rv.Marshal()
	got, err := lock.ParseRevocation("r.json", data)
	if err != nil || got.Lock != rv.Lock || got.ID != rv.ID {
		t.Fatalf("ParseRevocation = %+v, %v", got, err)
	}
	if _, err := lock.NewRevocation("dev", strings.Repeat("b", 64), 1, "20261201T100000Z-0123abcd", "short", "alice", now); err == nil {
		t.Error("a revocation without a real reason was made")
	}
	if _, err := lock.ParseRevocation("r.json", []byte(strings.Replace(string(data), lock.RevocationKind, lock.Kind, 1))); err == nil {
		t.Error("a revocation of another kind parsed")
	}
}

// BenchmarkApprove checks a lock's two SSH signatures against the registry:
// the signature part of the backend gate.
func BenchmarkApprove(b *testing.B) {
	reg, keys := registry(b, map[string]string{"alice": "security", "bob": "approver"})
	l := &lock.Lock{Backend: "minio", Bucket: "tfstate", Created: now.Format(time.RFC3339), Env: "dev", Intent: "20261201T100000Z-0123abcd",
		KeyProvider: backend.KeyNone, Kind: lock.Kind, LockMethod: backend.LockFile, TemplateSHA256: strings.Repeat("a", 64), Version: 1}
	data, _ := l.Marshal()
	s := sigs(b, keys, data, lock.Kind, "alice", "bob")
	rule := policy.DefaultApprovals()["bootstrap"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := lock.Approve("lock", data, s, reg, now, lock.Kind, rule); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParse: whatever parses as a lock or a revocation is exactly its own
// canonical encoding (T10), and renders or is refused without a panic.
func FuzzParse(f *testing.F) {
	l := &lock.Lock{Backend: "minio", Bucket: "tfstate", Created: now.Format(time.RFC3339), Env: "dev", Intent: "20261201T100000Z-0123abcd",
		KeyProvider: backend.KeyNone, Kind: lock.Kind, LockMethod: backend.LockFile, TemplateSHA256: strings.Repeat("a", 64), Version: 1}
	data, _ := l.Marshal()
	f.Add(data)
	rv, _ := lock.NewRevocation("dev", strings.Repeat("b", 64), 1, "20261201T100000Z-0123abcd", "the state moves elsewhere", "alice", now)
	rdata, _ := rv.Marshal()
	f.Add(rdata)
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, err := lock.Parse("f", in); err == nil {
			out, err := got.Marshal()
			if err != nil || string(out) != string(in) {
				t.Fatalf("a lock parsed from bytes that are not its encoding:\n%q\n%q", in, out)
			}
			got.Render()
		}
		if got, err := lock.ParseRevocation("f", in); err == nil {
			if out, err := got.Marshal(); err != nil || string(out) != string(in) {
				t.Fatalf("a revocation parsed from bytes that are not its encoding")
			}
		}
	})
}
