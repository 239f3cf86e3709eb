package signers_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/sshsig"
	"github.com/groundzero/groundzero/internal/strictyaml"
)

const (
	file   = "governance/signers.yaml"
	fprA   = "9F2B0C1D2E3F40516273849506A7B8C93AA5C343"
	fprB   = "SHA256:abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"
	fprC   = "CB186C4F0609A697E4D52DFA6C722B0C1F1E27C18A56708F6525EC27BAD9ACC9"
	shaA   = "6c3f8f080b9d50a1d42cd77d4bce10683a7aac2c847f81ebd4a4b29f00956a69"
	shaB   = "38258c10577844b022314e96c9503fe68e376d49de594743009cc7951c46c5b4"
	shaC   = "67119ff97bbc69db2a81455d3b73dbbb66f6e492abf032027730ca25c6312092"
	twoDoc = `# registry
version: 2
threshold: 2
signers:
  - id: alice
    name: Alice Example
    roles: [security, release]
    keys:
      - file: keys/alice-3AA5C34371567BD2.asc
        fingerprint: ` + fprA + `
        sha256: ` + shaA + `
      - file: keys/alice-v6.asc
        fingerprint: ` + fprC + `
        sha256: ` + shaC + `
    valid_after: "2026-01-01T00:00:00Z"
    valid_before: "2028-01-01T00:00:00Z"
  - id: bob.ci
    roles: [ci]
    keys:
      - file: keys/bob.pub
        fingerprint: ` + fprB + `
        sha256: ` + shaB + `
    revoked:
      at: "2026-06-01T00:00:00Z"
      reason: laptop stolen
`
)

func mustParse(t *testing.T, data []byte) *signers.Registry {
	t.Helper()
	r, err := signers.Parse(file, data)
	if err != nil {
		t.Fatalf("Parse(%q) = %v, want nil error", data, err)
	}
	return r
}

// view is the exported, registry-level content of a registry: what Format
// writes and Parse reads.
type view struct {
	Version, Threshold int
	Signers            []signerView
}

type signerView struct {
	ID, Name                string
	Roles                   []string
	Keys                    []signers.KeyRef
	ValidAfter, ValidBefore string
	Revoked                 *signers.Revocation
}

func viewOf(r *signers.Registry) view {
	v := view{Version: r.Version, Threshold: r.Threshold}
	for _, s := range r.Signers {
		v.Signers = append(v.Signers, signerView{s.ID, s.Name, s.Roles, s.Keys, s.ValidAfter, s.ValidBefore, s.Revoked})
	}
	return v
}

func TestParse(t *testing.T) {
	r := mustParse(t, []byte(twoDoc))
	want := view{Version: 2, Threshold: 2, Signers: []signerView{
		{ID: "alice", Name: "Alice Example", Roles: []string{"security", "release"},
			Keys: []signers.KeyRef{
				{File: "keys/alice-3AA5C34371567BD2.asc", Fingerprint: fprA, SHA256: shaA},
				{File: "keys/alice-v6.asc", Fingerprint: fprC, SHA256: shaC},
			},
			ValidAfter: "2026-01-01T00:00:00Z", ValidBefore: "2028-01-01T00:00:00Z"},
		{ID: "bob.ci", Roles: []string{"ci"}, Keys: []signers.KeyRef{{File: "keys/bob.pub", Fingerprint: fprB, SHA256: shaB}},
			Revoked: &signers.Revocation{At: "2026-06-01T00:00:00Z", Reason: "laptop stolen"}},
	}}
	if got := viewOf(r); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(two signers) = %+v, want %+v", got, want)
	}
	if r.File != file || string(r.Raw) != twoDoc {
		t.Errorf("Parse(two signers) File, Raw = %q, %q, want %q and the input bytes", r.File, r.Raw, file)
	}
	if r.EffectiveThreshold() != 2 {
		t.Errorf("EffectiveThreshold() = %d, want 2", r.EffectiveThreshold())
	}
	if s := r.Lookup("bob.ci"); s == nil || s.ID != "bob.ci" {
		t.Errorf("Lookup(bob.ci) = %v, want bob.ci", s)
	}
	if s := r.Lookup("carol"); s != nil {
		t.Errorf("Lookup(carol) = %v, want nil", s)
	}
	if s := r.FindByFingerprint(fprC); s == nil || s.ID != "alice" {
		t.Errorf("FindByFingerprint(%s) = %v, want alice", fprC, s)
	}
	if len(r.Hash()) != 64 {
		t.Errorf("Hash() = %q, want 64 hex digits", r.Hash())
	}
	// The registry keeps its own copy of the signed bytes.
	data := []byte(twoDoc)
	r2 := mustParse(t, data)
	data[0] = 'X'
	if r2.Raw[0] == 'X' {
		t.Error("Parse keeps the caller's slice as Raw")
	}
}

func TestDefaultThreshold(t *testing.T) {
	r := mustParse(t, []byte("version: 1\nsigners: []\n"))
	if r.Threshold != 0 || r.EffectiveThreshold() != signers.DefaultThreshold {
		t.Errorf("Parse(no threshold) threshold = %d, effective %d, want 0, %d", r.Threshold, r.EffectiveThreshold(), signers.DefaultThreshold)
	}
}

func TestStatus(t *testing.T) {
	r := mustParse(t, []byte(twoDoc))
	alice, bob := r.Lookup("alice"), r.Lookup("bob.ci")
	for _, tc := range []struct {
		s    *signers.Signer
		at   string
		want string
	}{
		{alice, "2025-12-31T23:59:59Z", "not yet valid"},
		{alice, "2026-01-01T00:00:00Z", "active"},
		{alice, "2027-06-01T00:00:00Z", "active"},
		{alice, "2028-01-01T00:00:00Z", "expired"},
		{bob, "2026-01-01T00:00:00Z", "revoked"},
	} {
		now, _ := time.Parse(time.RFC3339, tc.at)
		if got := tc.s.Status(now); got != tc.want {
			t.Errorf("%s.Status(%s) = %q, want %q", tc.s.ID, tc.at, got, tc.want)
		}
	}
	if !alice.HasRole("security") || alice.HasRole("ci") || !alice.HasAnyRole([]string{"ci", "release"}) || alice.HasAnyRole(nil) {
		t.Errorf("alice roles %q: HasRole/HasAnyRole disagree", alice.Roles)
	}
}

func TestFormatRoundTrip(t *testing.T) {
	r := mustParse(t, []byte(twoDoc))
	out := r.Format()
	r2, err := signers.Parse(file, out)
	if err != nil {
		t.Fatalf("Parse(Format(r)) = %v\n%s", err, out)
	}
	if !reflect.DeepEqual(viewOf(r2), viewOf(r)) {
		t.Errorf("Parse(Format(r)) = %+v, want %+v", viewOf(r2), viewOf(r))
	}
	if again := r2.Format(); !bytes.Equal(again, out) {
		t.Errorf("Format(Parse(Format(r))) = %q, want %q", again, out)
	}
	if !bytes.HasPrefix(out, []byte("# groundzero signers registry")) {
		t.Errorf("Format(r) = %q, want the explanatory header comment", out)
	}
	if !bytes.Contains(out, []byte("roles: [security, release]")) {
		t.Errorf("Format(r) = %q, want roles in flow style", out)
	}

	// A registry built in code, with no signers, formats and re-parses.
	empty := &signers.Registry{Version: 1}
	e2, err := signers.Parse(file, empty.Format())
	if err != nil || e2.Version != 1 || len(e2.Signers) != 0 {
		t.Fatalf("Parse(Format(empty)) = %+v, %v, want version 1 with no signers", e2, err)
	}
}

func TestInvalid(t *testing.T) {
	signer := func(id, keyFile, fpr string) string {
		return "  - id: " + id + "\n    roles: [security]\n    keys:\n      - file: " + keyFile + "\n        fingerprint: " + fpr + "\n        sha256: " + shaA + "\n"
	}
	head := "version: 1\nsigners:\n"
	for _, tc := range []struct{ name, data, msg string }{
		{"duplicate id", head + signer("alice", "keys/a.asc", fprA) + signer("alice", "keys/b.asc", fprC), "appears twice"},
		{"one key under two ids (T2)", head + signer("alice", "keys/a.asc", fprA) + signer("mallory", "keys/m.asc", fprA), "listed under both"},
		{"one key twice under one id", head + "  - id: alice\n    roles: [security]\n    keys:\n      - {file: keys/a.asc, fingerprint: " + fprA + ", sha256: " + shaA + "}\n      - {file: keys/b.asc, fingerprint: " + fprA + ", sha256: " + shaB + "}\n", "listed under both"},
		{"same key file twice", head + signer("alice", "keys/a.asc", fprA) + signer("bob", "keys/a.asc", fprC), "key file keys/a.asc"},
		{"window equal", head + signer("alice", "keys/a.asc", fprA) + "    valid_after: \"2026-01-01T00:00:00Z\"\n    valid_before: \"2026-01-01T00:00:00Z\"\n", "not before"},
		{"window reversed", head + signer("alice", "keys/a.asc", fprA) + "    valid_after: \"2027-01-01T00:00:00Z\"\n    valid_before: \"2026-01-01T00:00:00Z\"\n", "not before"},
		{"window reversed across zones", head + signer("alice", "keys/a.asc", fprA) + "    valid_after: \"2026-01-01T02:00:00+03:00\"\n    valid_before: \"2026-01-01T00:00:00+01:00\"\n", "not before"},
	} {
		_, err := signers.Parse(file, []byte(tc.data))
		var ie *signers.InvalidError
		if !errors.As(err, &ie) {
			t.Errorf("Parse(%s) = %v, want *signers.InvalidError", tc.name, err)
			continue
		}
		if ie.File != file || ie.Hint == "" || !strings.Contains(ie.Msg, tc.msg) {
			t.Errorf("Parse(%s) = %+v, want file %q, a hint and mention of %q", tc.name, ie, file, tc.msg)
		}
	}
}

func TestSchemaErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		line       int
		msg        string
	}{
		{"unknown field", strings.Replace(twoDoc, "    name: Alice Example\n", "    name: Alice Example\n    email: a@example.test\n", 1), 7, `unknown field "email"`},
		{"unknown top-level field", twoDoc + "trusted: true\n", 26, `unknown field "trusted"`},
		{"unknown key field", strings.Replace(twoDoc, "        fingerprint: "+fprB, "        fingerprint: "+fprB+"\n        comment: x", 1), 22, `unknown field "comment"`},
		{"bad role", strings.Replace(twoDoc, "roles: [ci]", "roles: [admin]", 1), 18, "roles"},
		{"duplicate role", strings.Replace(twoDoc, "roles: [ci]", "roles: [ci, ci]", 1), 18, "roles"},
		{"no roles", strings.Replace(twoDoc, "roles: [ci]", "roles: []", 1), 18, "roles"},
		{"lower-case fingerprint", strings.Replace(twoDoc, fprA, strings.ToLower(fprA), 1), 10, "fingerprint"},
		{"short fingerprint", strings.Replace(twoDoc, fprA, fprA[:39], 1), 10, "fingerprint"},
		{"SSH fingerprint without prefix", strings.Replace(twoDoc, fprB, strings.TrimPrefix(fprB, "SHA256:"), 1), 21, "fingerprint"},
		{"no key file hash (T32)", strings.Replace(twoDoc, "        sha256: "+shaB+"\n", "", 1), 20, "sha256"},
		{"upper-case key file hash", strings.Replace(twoDoc, shaB, strings.ToUpper(shaB), 1), 22, "sha256"},
		{"short key file hash", strings.Replace(twoDoc, shaB, shaB[:63], 1), 22, "sha256"},
		{"key file hash with prefix", strings.Replace(twoDoc, shaB, "sha256:"+shaB, 1), 22, "sha256"},
		{"key file outside keys/", strings.Replace(twoDoc, "keys/bob.pub", "../bob.pub", 1), 20, "file"},
		{"key file climbing", strings.Replace(twoDoc, "keys/bob.pub", "keys/../../bob.pub", 1), 20, "file"},
		{"bad id", strings.Replace(twoDoc, "id: bob.ci", "id: Bob", 1), 17, "id"},
		{"bad time", strings.Replace(twoDoc, "2028-01-01T00:00:00Z", "next year", 1), 16, "valid_before"},
		{"revoked without reason", strings.Replace(twoDoc, "      reason: laptop stolen\n", "", 1), 24, "reason"},
		{"version zero", strings.Replace(twoDoc, "version: 2", "version: 0", 1), 2, "version"},
		{"duplicate key", strings.Replace(twoDoc, "threshold: 2\n", "threshold: 2\nthreshold: 1\n", 1), 4, "appears twice"},
		{"anchor", strings.Replace(twoDoc, "roles: [ci]", "roles: &r [ci]", 1), 18, "anchors"},
	} {
		_, err := signers.Parse(file, []byte(tc.data))
		var se *strictyaml.Error
		if !errors.As(err, &se) {
			t.Errorf("Parse(%s) = %v, want *strictyaml.Error", tc.name, err)
			continue
		}
		if se.Line <= 0 || se.Line != tc.line {
			t.Errorf("Parse(%s) line = %d, want %d (%v)", tc.name, se.Line, tc.line, se)
		}
		if !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("Parse(%s) = %q, want mention of %q", tc.name, se.Msg, tc.msg)
		}
	}
}

var keyFileRE = regexp.MustCompile(`^keys/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// T10, T27: the schema confines key files to keys/. A `!!binary` scalar is
// validated as its base64 text, which here matches the schema's pattern, but
// decoded as the bytes "\x91\xec\xac\xfc\x06\xdc/../../infra/bootstrap/main.tf";
// the key reader joins that under governance/ and cleans it to
// infra/bootstrap/main.tf.
func TestKeyFileBinaryTagEscape(t *testing.T) {
	const text = "keys/AbcLy4uLy4uL2luZnJhL2Jvb3RzdHJhcC9tYWluLnRm"
	if !keyFileRE.MatchString(text) {
		t.Fatalf("test vector %q does not match the schema's pattern", text)
	}
	data := strings.Replace(twoDoc, "file: keys/bob.pub", "file: !!binary "+text, 1)
	r, err := signers.Parse(file, []byte(data))
	if err != nil {
		return // refusing the tag is fine
	}
	for _, s := range r.Signers {
		for _, k := range s.Keys {
			if !keyFileRE.MatchString(k.File) {
				t.Errorf("Parse(!!binary key file) = signer %s key file %q, nil error: outside keys/, want an error", s.ID, k.File)
			}
		}
	}
}

// sig is a stand-in signature for Count, which never looks inside it.
func outcome(s *signers.Signer, err error) signers.Outcome {
	return signers.Outcome{Sig: &signature.Signature{}, Signer: s, Err: err}
}

func TestCount(t *testing.T) {
	alice := &signers.Signer{ID: "alice", Roles: []string{"security"}}
	bob := &signers.Signer{ID: "bob", Roles: []string{"security", "operator"}}
	carol := &signers.Signer{ID: "carol", Roles: []string{"operator"}}
	dave := &signers.Signer{ID: "dave", Roles: []string{"approver"}}
	req := signers.Requirement{What: "MANIFEST", Roles: []string{"security", "approver"}, Threshold: 2}

	t.Run("threshold met, ids in order", func(t *testing.T) {
		got, err := signers.Count([]signers.Outcome{outcome(bob, nil), outcome(dave, nil), outcome(alice, nil)}, req)
		if err != nil || !reflect.DeepEqual(got, []string{"bob", "dave", "alice"}) {
			t.Errorf("Count(bob, dave, alice) = %q, %v, want [bob dave alice]", got, err)
		}
	})

	t.Run("same signer twice counts once (T2)", func(t *testing.T) {
		got, err := signers.Count([]signers.Outcome{outcome(alice, nil), outcome(alice, nil)}, req)
		var te *signers.ThresholdError
		if !errors.As(err, &te) || te.Have != 1 || te.Need != 2 || !reflect.DeepEqual(got, []string{"alice"}) {
			t.Fatalf("Count(alice, alice) = %q, %v, want [alice] and a ThresholdError 1 of 2", got, err)
		}
		if !reflect.DeepEqual(te.Counted, []string{"alice"}) || len(te.Rejected) != 0 {
			t.Errorf("Count(alice, alice) error = %+v, want counted [alice], nothing rejected", te)
		}
		if msg := te.Error(); !strings.Contains(msg, "MANIFEST needs 2") || !strings.Contains(msg, "has 1") {
			t.Errorf("ThresholdError.Error() = %q, want what, need and have", msg)
		}
	})

	t.Run("two signer objects with one id count once (T2)", func(t *testing.T) {
		alice2 := &signers.Signer{ID: "alice", Roles: []string{"security"}}
		_, err := signers.Count([]signers.Outcome{outcome(alice, nil), outcome(alice2, nil)}, req)
		var te *signers.ThresholdError
		if !errors.As(err, &te) || te.Have != 1 {
			t.Errorf("Count(alice, alice again) = %v, want ThresholdError with 1", err)
		}
	})

	t.Run("failed signature not counted", func(t *testing.T) {
		bad := &signers.SignatureError{ID: "bob", Err: errors.New("does not verify")}
		o := outcome(bob, bad)
		got, err := signers.Count([]signers.Outcome{outcome(alice, nil), o}, req)
		var te *signers.ThresholdError
		if !errors.As(err, &te) || te.Have != 1 || !reflect.DeepEqual(got, []string{"alice"}) {
			t.Fatalf("Count(alice, bad bob) = %q, %v, want [alice] and a ThresholdError", got, err)
		}
		if len(te.Rejected) != 1 || te.Rejected[0].Err != bad || te.Rejected[0].Signer != bob {
			t.Errorf("Count(alice, bad bob).Rejected = %+v, want bob's outcome", te.Rejected)
		}
		if !strings.Contains(te.Error(), "does not verify") {
			t.Errorf("ThresholdError.Error() = %q, want the rejection reason", te.Error())
		}
	})

	t.Run("failed then valid signature by one signer counts", func(t *testing.T) {
		bad := &signers.SignatureError{ID: "bob", Err: errors.New("does not verify")}
		got, err := signers.Count([]signers.Outcome{outcome(bob, bad), outcome(bob, nil), outcome(alice, nil)}, req)
		if err != nil || !reflect.DeepEqual(got, []string{"bob", "alice"}) {
			t.Errorf("Count(bad bob, bob, alice) = %q, %v, want [bob alice]", got, err)
		}
	})

	t.Run("unknown signer not counted", func(t *testing.T) {
		unknown := signers.Outcome{Sig: &signature.Signature{}, Err: &signers.UnknownSignerError{Issuer: "ABCD"}}
		_, err := signers.Count([]signers.Outcome{unknown, outcome(alice, nil)}, req)
		var te *signers.ThresholdError
		var ue *signers.UnknownSignerError
		if !errors.As(err, &te) || len(te.Rejected) != 1 || !errors.As(te.Rejected[0].Err, &ue) {
			t.Errorf("Count(unknown, alice) = %v, want ThresholdError rejecting the unknown signer", err)
		}
	})

	t.Run("role filtering", func(t *testing.T) {
		got, err := signers.Count([]signers.Outcome{outcome(carol, nil), outcome(alice, nil), outcome(carol, nil)}, req)
		var te *signers.ThresholdError
		if !errors.As(err, &te) || !reflect.DeepEqual(got, []string{"alice"}) {
			t.Fatalf("Count(carol, alice, carol) = %q, %v, want [alice] and a ThresholdError", got, err)
		}
		if len(te.Rejected) != 1 {
			t.Fatalf("Count(carol, alice, carol).Rejected = %+v, want carol once", te.Rejected)
		}
		var re *signers.RoleError
		if !errors.As(te.Rejected[0].Err, &re) || re.ID != "carol" || !reflect.DeepEqual(re.Need, req.Roles) || !reflect.DeepEqual(re.Roles, carol.Roles) {
			t.Errorf("Count(carol, ...).Rejected[0].Err = %v, want RoleError for carol", te.Rejected[0].Err)
		}
	})

	t.Run("no roles required counts anyone", func(t *testing.T) {
		got, err := signers.Count([]signers.Outcome{outcome(carol, nil), outcome(dave, nil)}, signers.Requirement{Threshold: 2})
		if err != nil || !reflect.DeepEqual(got, []string{"carol", "dave"}) {
			t.Errorf("Count(carol, dave, no roles) = %q, %v, want [carol dave]", got, err)
		}
	})

	t.Run("exclude", func(t *testing.T) {
		r := req
		r.Exclude = map[string]string{"bob": "bob requested this change"}
		got, err := signers.Count([]signers.Outcome{outcome(bob, nil), outcome(alice, nil), outcome(bob, nil)}, r)
		var te *signers.ThresholdError
		if !errors.As(err, &te) || !reflect.DeepEqual(got, []string{"alice"}) {
			t.Fatalf("Count(bob excluded) = %q, %v, want [alice] and a ThresholdError", got, err)
		}
		var ee *signers.ExcludedError
		if len(te.Rejected) != 1 || !errors.As(te.Rejected[0].Err, &ee) || ee.ID != "bob" || ee.Reason != "bob requested this change" {
			t.Errorf("Count(bob excluded).Rejected = %+v, want one ExcludedError for bob", te.Rejected)
		}
	})

	t.Run("zero threshold", func(t *testing.T) {
		got, err := signers.Count(nil, signers.Requirement{})
		if err != nil || len(got) != 0 {
			t.Errorf("Count(nil, zero requirement) = %q, %v, want nothing and nil error", got, err)
		}
	})
}

// Check and Count with real in-process SSH signatures: two signatures by one
// signer's two keys count once (T2), and unknown and revoked signers do not
// count.
func TestCheckAndCount(t *testing.T) {
	type key struct {
		signer ssh.Signer
		line   []byte
		fpr    string
	}
	newKey := func() key {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		return key{s, ssh.MarshalAuthorizedKey(s.PublicKey()), ssh.FingerprintSHA256(s.PublicKey())}
	}
	a1, a2, b, c, stranger := newKey(), newKey(), newKey(), newKey(), newKey()
	ref := func(file string, k key) string {
		return `{file: ` + file + `, fingerprint: "` + k.fpr + `", sha256: ` + signers.FileHash(k.line) + `}`
	}
	doc := `version: 1
threshold: 2
signers:
  - id: alice
    roles: [security]
    keys:
      - ` + ref("keys/a1.pub", a1) + `
      - ` + ref("keys/a2.pub", a2) + `
  - id: bob
    roles: [security]
    keys:
      - ` + ref("keys/b.pub", b) + `
  - id: carol
    roles: [security]
    keys:
      - ` + ref("keys/c.pub", c) + `
    revoked: {at: "2026-01-01T00:00:00Z", reason: left}
`
	r := mustParse(t, []byte(doc))
	files := map[string][]byte{"keys/a1.pub": a1.line, "keys/a2.pub": a2.line, "keys/b.pub": b.line, "keys/c.pub": c.line}
	if err := r.LoadKeys(func(rel string) ([]byte, error) { return files[rel], nil }); err != nil {
		t.Fatalf("LoadKeys = %v", err)
	}
	msg := []byte("governance/signers.yaml version 2\n")
	sign := func(k key) *signature.Signature {
		s, err := sshsig.Sign(k.signer, bytes.NewReader(msg), signers.Namespace)
		if err != nil {
			t.Fatal(err)
		}
		sigs, err := signature.Parse(signature.SSH, sshsig.Armor(s.Marshal()))
		if err != nil {
			t.Fatal(err)
		}
		return sigs[0]
	}
	req := signers.Requirement{What: "registry", Roles: []string{signers.RoleSecurity}, Threshold: 2}
	now := time.Now()

	out := r.Check(msg, []*signature.Signature{sign(a1), sign(a2), sign(stranger), sign(c)}, signers.Namespace, now, signers.Current)
	got, err := signers.Count(out, req)
	var te *signers.ThresholdError
	if !errors.As(err, &te) || !reflect.DeepEqual(got, []string{"alice"}) || len(te.Rejected) != 2 {
		t.Fatalf("Count(alice twice, stranger, revoked carol) = %q, %v, want [alice], two rejected", got, err)
	}
	var ue *signers.UnknownSignerError
	var re *signers.RevokedError
	if !errors.As(te.Rejected[0].Err, &ue) || !errors.As(te.Rejected[1].Err, &re) {
		t.Errorf("Rejected = %v, %v, want UnknownSignerError, RevokedError", te.Rejected[0].Err, te.Rejected[1].Err)
	}

	out = r.Check(msg, []*signature.Signature{sign(a2), sign(b)}, signers.Namespace, now, signers.Current)
	if got, err := signers.Count(out, req); err != nil || !reflect.DeepEqual(got, []string{"alice", "bob"}) {
		t.Errorf("Count(alice, bob) = %q, %v, want [alice bob]", got, err)
	}

	// Wrong namespace (T9): the signatures are refused.
	out = r.Check(msg, []*signature.Signature{sign(a1), sign(b)}, "git", now, signers.Current)
	for _, o := range out {
		var se *signers.SignatureError
		if !errors.As(o.Err, &se) {
			t.Errorf("Check(namespace git) outcome = %v, want SignatureError", o.Err)
		}
	}

	// A key file whose fingerprint does not match is refused, even when the
	// registry records its hash.
	swapped := strings.Replace(doc, signers.FileHash(b.line), signers.FileHash(stranger.line), 1)
	r = mustParse(t, []byte(swapped))
	files["keys/b.pub"] = stranger.line
	var ie *signers.InvalidError
	if err := r.LoadKeys(func(rel string) ([]byte, error) { return files[rel], nil }); !errors.As(err, &ie) || !strings.Contains(ie.Msg, "fingerprint") {
		t.Errorf("LoadKeys(swapped key file) = %v, want InvalidError about the fingerprint", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(twoDoc))
	f.Add([]byte("version: 1\nsigners: []\n"))
	f.Add([]byte("version: 1\nthreshold: 1\nsigners:\n  - id: a\n    name: \"multi\\nline  \"\n    roles: [ci]\n    keys: [{file: keys/a, fingerprint: " + fprA + ", sha256: " + shaA + "}]\n"))
	f.Add([]byte(strings.Replace(twoDoc, "Alice Example", "'quoted: #x'", 1)))
	f.Add([]byte(strings.Replace(twoDoc, "roles: [ci]", "roles: [admin]", 1)))
	f.Add([]byte(strings.Replace(twoDoc, fprB, fprA, 1)))
	f.Add([]byte(strings.Replace(twoDoc, "id: bob.ci", "id: alice", 1)))
	f.Add([]byte(strings.Replace(twoDoc, "2028-01-01", "2025-01-01", 1)))
	f.Add([]byte(twoDoc + "---\nversion: 1\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := signers.Parse(file, data)
		if err != nil {
			var se *strictyaml.Error
			var ie *signers.InvalidError
			if !errors.As(err, &se) && !errors.As(err, &ie) {
				t.Fatalf("Parse(%q) error = %T %v, want *strictyaml.Error or *signers.InvalidError", data, err, err)
			}
			return
		}
		out := r.Format()
		r2, err := signers.Parse(file, out)
		if err != nil {
			t.Fatalf("Parse(%q) succeeded, but Parse(Format()) = %v\nFormat() = %q", data, err, out)
		}
		if !reflect.DeepEqual(viewOf(r2), viewOf(r)) {
			t.Fatalf("Parse(Format(Parse(%q))) = %+v, want %+v", data, viewOf(r2), viewOf(r))
		}
		if again := r2.Format(); !bytes.Equal(again, out) {
			t.Fatalf("Format(Parse(Format(Parse(%q)))) = %q, want %q", data, again, out)
		}
	})
}

// Free-text fields survive Format and Parse whatever YAML would make of them
// unquoted.
func TestFormatRoundTripAwkwardText(t *testing.T) {
	for _, text := range []string{
		"null", "~", "true", "no", "0x10", "1e3", "2026-01-01", "12:30", "- x", "#x", "x #y", "a: b",
		"'q'", `"q"`, " lead", "trail ", "multi\nline", "multi\nline\n", "\n", "\t", "tab\there",
		"back\\slash", "é", "\u0085", "\u2028", "\ufeffbom", "[x]", "{x}", "*x", "&x", "!x", "%x", "@x", "`x",
		"|", ">", "---", "...", "<<", "? x", "\"", "'",
	} {
		r := mustParse(t, []byte(twoDoc))
		r.Signers[0].Name = text
		r.Signers[1].Revoked.Reason = text
		out := r.Format()
		r2, err := signers.Parse(file, out)
		if err != nil {
			t.Errorf("Parse(Format(name %q)) = %v\n%s", text, err, out)
			continue
		}
		if r2.Signers[0].Name != text || r2.Signers[1].Revoked.Reason != text {
			t.Errorf("Parse(Format(name %q)) = name %q, reason %q, want the same text", text, r2.Signers[0].Name, r2.Signers[1].Revoked.Reason)
		}
		if again := r2.Format(); !bytes.Equal(again, out) {
			t.Errorf("Format(Parse(Format(name %q))) differs:\n%s\nwant\n%s", text, again, out)
		}
	}
}
