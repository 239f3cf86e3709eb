package intent_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/intent"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
)

const (
	commit      = "0123456789abcdef0123456789abcdef01234567"
	manifestSum = "a3f1c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
)

func request(action string) intent.Request {
	return intent.Request{Env: "prod", Action: action, Reason: "rotate the key", Ticket: "CHG-1", Requester: "alice",
		Commit: commit, Tag: "v1", ManifestSHA256: manifestSum}
}

var now = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

type people struct {
	reg  *signers.Registry
	keys map[string]sign.Signer
}

// newPeople makes a registry of SSH signers with the given roles.
func newPeople(t *testing.T, roles map[string]string) *people {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "keys"), 0o755)
	p := &people{keys: map[string]sign.Signer{}}
	yaml := "version: 1\nsigners:\n"
	for id, r := range roles {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		block, _ := ssh.MarshalPrivateKey(priv, id)
		kp := filepath.Join(dir, id)
		os.WriteFile(kp, pem.EncodeToMemory(block), 0o600)
		sp, _ := ssh.NewPublicKey(pub)
		pubFile := ssh.MarshalAuthorizedKey(sp)
		os.WriteFile(filepath.Join(dir, "keys", id+".pub"), pubFile, 0o644)
		yaml += fmt.Sprintf("  - id: %s\n    roles: [%s]\n    keys: [{file: keys/%s.pub, fingerprint: %q, sha256: %x}]\n", id, r, id, ssh.FingerprintSHA256(sp), sha256.Sum256(pubFile))
		s, err := sign.New(sign.Spec{Kind: "file", Value: kp}, func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		p.keys[id] = s
	}
	reg, err := signers.Parse("signers.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.LoadKeys(func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, rel)) }); err != nil {
		t.Fatal(err)
	}
	p.reg = reg
	return p
}

func (p *people) sign(t *testing.T, data []byte, ids ...string) []*signature.Signature {
	t.Helper()
	var out []*signature.Signature
	for _, id := range ids {
		s, err := p.keys[id].Sign(context.Background(), data, intent.Kind)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func rules() map[string]policy.Approval { return policy.DefaultApprovals() }

func expect(in *intent.Intent) intent.Expect {
	return intent.Expect{Env: in.Env, Action: in.Action, Commit: commit, ManifestSHA256: manifestSum, PlanSHA256: in.PlanSHA256, Now: now.Add(time.Hour),
		MaxTTL: 72 * time.Hour, Used: func(string) int64 { return -1 }}
}

func newIntent(t *testing.T, action string) (*intent.Intent, []byte) {
	t.Helper()
	in, err := intent.New(request(action), now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	data, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := intent.Parse(data)
	if err != nil || *back != *in {
		t.Fatalf("Parse(Marshal(in)) = %+v, %v", back, err)
	}
	return in, data
}

func TestApprovalRules(t *testing.T) {
	p := newPeople(t, map[string]string{"alice": "operator, security", "bob": "approver", "carol": "operator", "dan": "operator", "eve": "ci"})
	in, data := newIntent(t, "bootstrap")
	cases := []struct {
		name   string
		signer []string
		ok     bool
		want   string
	}{
		{"requester only", nil, false, "has 0"},
		{"requester and one approver", []string{"bob"}, false, `has 1 (bob); signer "alice" does not count`},
		{"two operators, no approver", []string{"carol", "dan"}, false, "none of whom is approver or security"},
		{"same signature twice", []string{"bob", "bob"}, false, "has 1 (bob)"},
		{"a ci identity", []string{"bob", "eve"}, false, `signer "eve" has roles [ci]`},
		{"operator and approver", []string{"carol", "bob"}, true, ""},
	}
	for _, c := range cases {
		// The requester (alice) signs every intent she creates.
		_, err := intent.Verify(in, data, p.sign(t, data, append([]string{"alice"}, c.signer...)...), p.reg, rules()["bootstrap"], expect(in))
		if c.ok && err != nil || !c.ok && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: Verify = %v, want ok=%v %q", c.name, err, c.ok, c.want)
		}
		var ae *intent.ApprovalError
		if !c.ok && !errors.As(err, &ae) {
			t.Errorf("%s: error %T is not an ApprovalError", c.name, err)
		}
	}
	// An apply needs one operator, and the requester may be that operator.
	ap, apData := newIntent(t, "apply")
	if _, err := intent.Verify(ap, apData, p.sign(t, apData, "alice"), p.reg, rules()["apply"], expect(ap)); err != nil {
		t.Errorf("apply by its requester-operator: %v", err)
	}
}

func TestBindingAndTime(t *testing.T) {
	p := newPeople(t, map[string]string{"alice": "operator", "bob": "approver", "carol": "operator"})
	in, data := newIntent(t, "bootstrap")
	sigs := p.sign(t, data, "alice", "bob", "carol")
	rule := rules()["bootstrap"]
	check := func(name string, mutate func(*intent.Expect), target any) {
		t.Helper()
		x := expect(in)
		mutate(&x)
		_, err := intent.Verify(in, data, sigs, p.reg, rule, x)
		if err == nil || !errors.As(err, target) {
			t.Errorf("%s: Verify = %v, want %T", name, err, target)
		}
	}
	var mm *intent.MismatchError
	var ex *intent.ExpiredError
	var ck *intent.ClockError
	var us *intent.UsedError
	check("other env (T7)", func(x *intent.Expect) { x.Env = "dev" }, &mm)
	check("other action", func(x *intent.Expect) { x.Action = "destroy" }, &mm)
	check("other commit (T7)", func(x *intent.Expect) { x.Commit = strings.Repeat("f", 40) }, &mm)
	check("other manifest (T7)", func(x *intent.Expect) { x.ManifestSHA256 = strings.Repeat("e", 64) }, &mm)
	check("expired (T6)", func(x *intent.Expect) { x.Now = now.Add(25 * time.Hour) }, &ex)
	check("not yet valid", func(x *intent.Expect) { x.Now = now.Add(-time.Hour) }, &ex)
	check("lifetime over the policy's maximum", func(x *intent.Expect) { x.MaxTTL = time.Hour }, &ex)
	check("clock behind the trail (T24)", func(x *intent.Expect) { x.TrailTime = now.Add(3 * time.Hour) }, &ck)
	check("consumed (T3)", func(x *intent.Expect) { x.Used = func(string) int64 { return 7 } }, &us)
	if _, err := intent.Verify(in, data, sigs, p.reg, rule, expect(in)); err != nil {
		t.Fatalf("valid intent: %v", err)
	}
	// Bound to a plan: only that plan.
	req := request("bootstrap")
	req.PlanSHA256 = strings.Repeat("a", 64)
	bound, _ := intent.New(req, now, time.Hour)
	bdata, _ := bound.Marshal()
	x := expect(bound)
	x.PlanSHA256 = strings.Repeat("b", 64)
	if _, err := intent.Verify(bound, bdata, p.sign(t, bdata, "alice", "bob", "carol"), p.reg, rule, x); !errors.As(err, &mm) {
		t.Errorf("other plan: %v", err)
	}
}

// The requester is whoever signed the intent: an intent that names a
// requester who did not sign it is refused however many others approved
// (T31), so "the requester never counts" cannot be dodged by naming someone
// else.
func TestRequesterMustSign(t *testing.T) {
	p := newPeople(t, map[string]string{"alice": "operator", "bob": "approver", "carol": "operator", "mallory": "operator"})
	in, data := newIntent(t, "bootstrap") // names alice
	var rq *intent.RequesterError
	for name, ids := range map[string][]string{
		"approvers only":          {"bob", "carol"},
		"someone else as creator": {"mallory", "bob"},
		"no signature at all":     nil,
	} {
		_, err := intent.Verify(in, data, p.sign(t, data, ids...), p.reg, rules()["bootstrap"], expect(in))
		if !errors.As(err, &rq) || !strings.Contains(err.Error(), `names "alice" as requester`) {
			t.Errorf("%s: Verify = %v, want a RequesterError naming alice", name, err)
		}
	}
	// A signature by alice over other bytes does not count as hers.
	_, otherData := newIntent(t, "apply")
	if _, err := intent.Verify(in, data, p.sign(t, otherData, "alice"), p.reg, rules()["bootstrap"], expect(in)); !errors.As(err, &rq) {
		t.Errorf("requester's signature over another intent: Verify = %v, want a RequesterError", err)
	}
}

// Each mismatch names its field, so the operator knows what moved: the
// governed commit, or the manifest re-signed over other content.
func TestMismatchNamesTheField(t *testing.T) {
	p := newPeople(t, map[string]string{"alice": "operator"})
	in, data := newIntent(t, "apply")
	sigs := p.sign(t, data, "alice")
	for field, mutate := range map[string]func(*intent.Expect){
		"commit":          func(x *intent.Expect) { x.Commit = strings.Repeat("f", 40) },
		"manifest_sha256": func(x *intent.Expect) { x.ManifestSHA256 = strings.Repeat("e", 64) },
		"env":             func(x *intent.Expect) { x.Env = "dev" },
	} {
		x := expect(in)
		mutate(&x)
		_, err := intent.Verify(in, data, sigs, p.reg, rules()["apply"], x)
		var mm *intent.MismatchError
		if !errors.As(err, &mm) || mm.Field != field || !strings.Contains(err.Error(), field) {
			t.Errorf("Verify with another %s = %v, want a *MismatchError naming %s", field, err, field)
		}
	}
	// An expectation without a manifest never matches.
	x := expect(in)
	x.ManifestSHA256 = ""
	if _, err := intent.Verify(in, data, sigs, p.reg, rules()["apply"], x); err == nil {
		t.Error("Verify with no manifest to compare = nil error")
	}
}

func TestManifestRequired(t *testing.T) {
	req := request("apply")
	req.ManifestSHA256 = ""
	if _, err := intent.New(req, now, time.Hour); err == nil || !strings.Contains(err.Error(), "manifest_sha256") {
		t.Errorf("New without manifest_sha256 = %v, want an error naming it", err)
	}
	_, data := newIntent(t, "apply")
	without := strings.Replace(string(data), `"manifest_sha256":"`+manifestSum+`",`, "", 1)
	var me *intent.MalformedError
	if _, err := intent.Parse([]byte(without)); !errors.As(err, &me) || !strings.Contains(err.Error(), "manifest_sha256") {
		t.Errorf("Parse without manifest_sha256 = %v, want a *MalformedError naming it", err)
	}
}

// The first format bound intents to HEAD and carried no manifest: it is
// refused with a message that says what to do.
func TestV1Refused(t *testing.T) {
	if intent.Kind != "groundzero.intent/v2" || intent.KindV1 != "groundzero.intent/v1" {
		t.Fatalf("Kind = %q, KindV1 = %q", intent.Kind, intent.KindV1)
	}
	v1 := `{"action":"apply","commit":"` + commit + `","created":"2026-11-29T10:00:00Z","env":"prod","expires":"2026-11-30T10:00:00Z",` +
		`"id":"20261129T100000Z-0a1b2c3d","kind":"groundzero.intent/v1","nonce":"0a1b2c3d0a1b2c3d0a1b2c3d0a1b2c3d","reason":"r","requester":"alice","tag":"","ticket":""}` + "\n"
	var ve *intent.VersionError
	_, err := intent.Parse([]byte(v1))
	if !errors.As(err, &ve) || err.Error() != "intent format v1 is no longer accepted: create a new intent" {
		t.Errorf("Parse(v1) = %v, want a *VersionError saying to create a new intent", err)
	}
	// A v1 record with a manifest_sha256 added is still v1.
	withManifest := strings.Replace(v1, `"kind":"groundzero.intent/v1",`, `"kind":"groundzero.intent/v1","manifest_sha256":"`+manifestSum+`",`, 1)
	if _, err := intent.Parse([]byte(withManifest)); !errors.As(err, &ve) {
		t.Errorf("Parse(v1 with manifest_sha256) = %v, want a *VersionError", err)
	}
	// An intent signature is in the v2 namespace: a v1 signature cannot be
	// carried over (T9).
	p := newPeople(t, map[string]string{"alice": "operator"})
	in, data := newIntent(t, "apply")
	s, err := p.keys["alice"].Sign(context.Background(), data, intent.KindV1)
	if err != nil {
		t.Fatal(err)
	}
	var rq *intent.RequesterError
	if _, err := intent.Verify(in, data, []*signature.Signature{s}, p.reg, rules()["apply"], expect(in)); !errors.As(err, &rq) {
		t.Errorf("Verify with a signature in the v1 namespace = %v, want a *RequesterError", err)
	}
}

func TestTokenIsStable(t *testing.T) {
	in := &intent.Intent{ID: "20261129T100000Z-0a1b2c3d", Env: "prod"}
	if got := in.Token(); got != in.Token() || !strings.HasPrefix(got, "prod-") || len(got) != len("prod-")+6 {
		t.Fatalf("Token = %q", got)
	}
	other := &intent.Intent{ID: "20261129T100000Z-0a1b2c3e", Env: "prod"}
	if other.Token() == in.Token() {
		t.Fatal("different intents share a token")
	}
}

func FuzzParse(f *testing.F) {
	in, _ := intent.New(request("apply"), now, time.Hour)
	good, _ := in.Marshal()
	f.Add(good)
	f.Add([]byte(`{"kind":"groundzero.lock/v1"}`))
	f.Add([]byte(strings.Replace(string(good), `"env":"prod"`, `"env":"prod","env":"dev"`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := intent.Parse(data)
		if err != nil {
			return
		}
		out, err := in.Marshal()
		if err != nil || string(out) != strings.TrimSuffix(string(data), "\n")+"\n" {
			t.Fatalf("Parse accepted %q, which re-encodes to %q", data, out)
		}
	})
}
