package evidence_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/audit"
	pub "github.com/groundzero/groundzero/evidence"
	"github.com/groundzero/groundzero/internal/evidence"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/trail"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// fixture is a governed repository with one security signer, alice (an
// ed25519 SSH key), whose registry signs itself, and a local trail.
type fixture struct {
	dir    string
	repo   *repo.Repo
	store  trail.Store
	signer sign.Signer
	reg    *signers.Registry
	pin    string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	pubKey, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "alice")
	if err != nil {
		t.Fatal(err)
	}
	kp := filepath.Join(dir, "alice.key")
	os.WriteFile(kp, pem.EncodeToMemory(block), 0o600)
	sp, _ := ssh.NewPublicKey(pubKey)
	pubFile := ssh.MarshalAuthorizedKey(sp)
	gov := filepath.Join(dir, "governance")
	os.MkdirAll(filepath.Join(gov, "keys"), 0o755)
	os.WriteFile(filepath.Join(gov, "keys", "alice.pub"), pubFile, 0o644)
	yaml := fmt.Sprintf("version: 1\nthreshold: 1\nsigners:\n  - id: alice\n    roles: [security]\n    keys: [{file: keys/alice.pub, fingerprint: %q, sha256: %q}]\n",
		ssh.FingerprintSHA256(sp), signers.FileHash(pubFile))
	os.WriteFile(filepath.Join(gov, "signers.yaml"), []byte(yaml), 0o644)
	s, err := sign.New(sign.Spec{Kind: "file", Value: kp}, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, repo: &repo.Repo{Root: dir}, signer: s}
	f.signFile(t, "governance/signers.yaml", signers.Namespace)
	os.WriteFile(filepath.Join(gov, "policy.yaml"), policy.Template("local", "dev", ""), 0o644)
	chain, err := signers.Load(f.repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chain.Verify(t0, "", nil); err != nil {
		t.Fatal(err)
	}
	f.reg, f.pin = chain.Current(), chain.Current().Hash()
	if f.store, err = trail.OpenDir(filepath.Join(dir, ".groundzero", "evidence")); err != nil {
		t.Fatal(err)
	}
	return f
}

// signFile writes rel's detached SSH signature beside it.
func (f *fixture) signFile(t testing.TB, rel, namespace string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := f.signer.Sign(context.Background(), data, namespace)
	if err != nil {
		t.Fatal(err)
	}
	out, err := signature.Format([]*signature.Signature{sig})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.dir, rel+".sig"), out, 0o644)
}

// record appends events and closes them with a checkpoint signed by alice.
func (f *fixture) record(t testing.TB, now time.Time, events ...trail.Event) {
	t.Helper()
	ctx := context.Background()
	if _, err := trail.Append(ctx, f.store, now, events...); err != nil {
		t.Fatal(err)
	}
	cp, err := trail.MakeCheckpoint(ctx, f.store, now)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := f.signer.Sign(ctx, cp.Marshal(), audit.CheckpointNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if err := trail.StoreSigned(ctx, f.store, cp, []*signature.Signature{sig}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) export(t testing.TB, now time.Time, since, until time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := evidence.Export(context.Background(), &buf, evidence.ExportConfig{Repo: f.repo, Store: f.store, StoreName: f.store.URL(),
		Registry: f.reg, Now: now, Since: since, Until: until, Signer: f.signer, Exporter: "alice", RetentionDays: 2555})
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	return buf.Bytes()
}

func verify(t testing.TB, bundle []byte, pin string, now time.Time) *evidence.Report {
	t.Helper()
	rep, err := evidence.Verify(context.Background(), bytes.NewReader(bundle), evidence.VerifyConfig{Now: now, TrustRoot: pin})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func ev(action, subject string, details map[string]any) trail.Event {
	return trail.Event{Actor: "alice", Action: action, Subject: subject, Details: details}
}

// A bundle with break-glass windows, an apply and a drill verifies; its
// timeline pairs each window's opening with its close or lapse; the
// coverage matrix shows the incident controls evidenced.
func TestExportVerifyTimeline(t *testing.T) {
	f := newFixture(t)
	gov := filepath.Join(f.dir, "governance")
	os.MkdirAll(filepath.Join(gov, "breakglass"), 0o755)
	os.MkdirAll(filepath.Join(gov, "incidents"), 0o755)
	os.WriteFile(filepath.Join(gov, "breakglass", "bg-1.json"), []byte(`{"id":"bg-1","kind":"groundzero.break-glass/v1"}`+"\n"), 0o644)
	f.signFile(t, "governance/breakglass/bg-1.json", "groundzero.break-glass/v1")
	os.WriteFile(filepath.Join(gov, "incidents", "bg-1.md"), []byte("# Incident bg-1\n"), 0o644)
	f.record(t, t0, ev("apply.result", "i-1", map[string]any{"ok": true, "env": "prod"}))
	f.record(t, t0.Add(time.Hour), ev(evidence.ActionBreakGlassActive, "bg-1", nil))
	f.record(t, t0.Add(2*time.Hour), ev(evidence.ActionBreakGlassClosed, "bg-1", nil), ev("drill.result", "restore", map[string]any{"ok": true}))
	f.record(t, t0.Add(3*time.Hour), ev(evidence.ActionBreakGlassActive, "bg-2", nil))
	f.record(t, t0.Add(30*time.Hour), ev(evidence.ActionBreakGlassLapsed, "bg-2", nil))
	if err := f.store.PutArtifact(context.Background(), "breakglass-bg-1.log", []byte("steps\n")); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(31 * time.Hour)
	rep := verify(t, f.export(t, now, time.Time{}, time.Time{}), f.pin, now)
	if !rep.OK() {
		t.Fatalf("Verify = %v, want OK", rep.Problems)
	}
	if !rep.Pinned || len(rep.IndexSigners) != 1 || rep.Trail.Entries != 6 {
		t.Errorf("Verify = pinned %v, signers %v, entries %d; want pinned, [alice], 6", rep.Pinned, rep.IndexSigners, rep.Trail.Entries)
	}
	var checked []string
	for _, rc := range rep.Records {
		checked = append(checked, rc.Path+"="+strings.Join(rc.Signers, ","))
	}
	if want := "repo/governance/breakglass/bg-1.json=alice"; !strings.Contains(strings.Join(checked, " "), want) {
		t.Errorf("records checked = %v, want %s", checked, want)
	}
	events, windows := evidence.Timeline(rep.Bundle, rep.Index)
	kinds := ""
	for _, e := range events {
		kinds += e.Kind + " "
	}
	if kinds != "apply break-glass break-glass drill break-glass break-glass " {
		t.Errorf("Timeline kinds = %q", kinds)
	}
	if len(windows) != 2 || windows[0].How != "closed" || windows[1].How != "lapsed" || windows[1].Ended != "2026-12-02T15:00:00Z" {
		t.Errorf("Timeline windows = %+v, want bg-1 closed, bg-2 lapsed", windows)
	}
	covered := map[string]bool{}
	for _, row := range evidence.CoverageMatrix(evidence.Controls(), rep.Index) {
		covered[row.Framework+" "+row.ID] = len(row.Classes) > 0
	}
	for _, k := range []string{"ISO27001:2013 A.16.1", "ISO27001:2022 A.5.26", "ISO27001:2022 A.5.30", "ISO27001:2022 A.5.24"} {
		if !covered[k] {
			t.Errorf("coverage of %s = none, want evidence", k)
		}
	}
	if covered["ISO27001:2013 A.8.1"] {
		t.Errorf("coverage of ISO27001:2013 A.8.1 = evidence, want none (no backend lock)")
	}
	var html bytes.Buffer
	if err := evidence.Render(&html, rep, evidence.Controls(), now.Format(time.RFC3339)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"VERIFIED:", "<td>bg-1</td><td>2026-12-01T10:00:00Z</td><td>2026-12-01T11:00:00Z</td><td>closed</td>", "<td>bg-2</td>", "lapsed"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}

	// A period selects the records and events in scope; the trail stays
	// whole from entry 0.
	rep = verify(t, f.export(t, now, t0.Add(3*time.Hour), t0.Add(4*time.Hour)), f.pin, now)
	if !rep.OK() {
		t.Fatalf("Verify(period) = %v", rep.Problems)
	}
	if rep.Trail.Entries != 5 {
		t.Errorf("period export: %d entries, want 5 (0 to the checkpoint covering --until)", rep.Trail.Entries)
	}
	if rep.Index.Lookup("repo/governance/breakglass/bg-1.json") != nil || rep.Index.Lookup("artifacts/breakglass-bg-1.log") != nil {
		t.Errorf("period export holds bg-1's records, which are out of scope")
	}
	if events, _ := evidence.Timeline(rep.Bundle, rep.Index); len(events) != 1 || events[0].Subject != "bg-2" {
		t.Errorf("period timeline = %+v, want bg-2's opening only", events)
	}
}

// An unsigned record change is caught by its signature, even when the
// index is rehashed; a record signed by an unknown key is refused; a pin
// that names no version is refused.
func TestVerifyRefusals(t *testing.T) {
	f := newFixture(t)
	gov := filepath.Join(f.dir, "governance")
	os.MkdirAll(filepath.Join(gov, "intents"), 0o755)
	os.WriteFile(filepath.Join(gov, "intents", "i-1.json"), []byte(`{"id":"i-1","kind":"groundzero.intent/v2"}`+"\n"), 0o644)
	f.signFile(t, "governance/intents/i-1.json", "groundzero.intent/v2")
	f.record(t, t0, ev("intent.new", "i-1", nil))
	bundle := f.export(t, t0, time.Time{}, time.Time{})

	if rep := verify(t, bundle, strings.Repeat("0", 64), t0); rep.OK() || rep.Problems[0].Path != "repo/governance/signers.yaml" {
		t.Errorf("Verify(wrong pin) = %v, want a problem with repo/governance/signers.yaml", rep.Problems)
	}
	// The signature was made for the intent's kind: in another namespace
	// it does not hold.
	b, _ := pub.Read(bytes.NewReader(bundle))
	b.Files["repo/governance/intents/i-1.json"] = []byte(`{"id":"i-1","kind":"groundzero.intent/v3"}` + "\n")
	rep := verify(t, rewrite(t, b, nil), f.pin, t0)
	if got := problemPaths(rep); !strings.Contains(got, "INDEX.json") || !strings.Contains(got, "repo/governance/intents/i-1.json") {
		t.Errorf("Verify(changed intent) problems = %s, want INDEX.json and the intent", got)
	}

	// An index that alice signs but that names bob as its exporter.
	b, _ = pub.Read(bytes.NewReader(bundle))
	rep = verify(t, rewrite(t, b, func(ix *pub.Index) { ix.Exporter = "bob" }, f.signer), f.pin, t0)
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].String(), `INDEX.json: names exporter "bob", but is signed by alice`) {
		t.Errorf("Verify(exporter bob, signed by alice) = %v", rep.Problems)
	}
	// The same index re-signed by alice verifies: only the signature
	// vouches, so rehashing alone is never enough.
	b, _ = pub.Read(bytes.NewReader(bundle))
	if rep = verify(t, rewrite(t, b, nil, f.signer), f.pin, t0); !rep.OK() {
		t.Errorf("Verify(re-signed by alice) = %v, want OK", rep.Problems)
	}
}

// rewrite re-packs a bundle with its index's hashes recomputed (and so its
// signature broken), as someone without a signer's key can.
// With a signer it signs the new index, replacing the signatures.
func rewrite(t testing.TB, b *pub.Bundle, edit func(*pub.Index), signer ...sign.Signer) []byte {
	t.Helper()
	ix, err := pub.ParseIndex(b.Files[pub.IndexFile])
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(ix)
	}
	for i := range ix.Files {
		d := b.Files[ix.Files[i].Path]
		ix.Files[i].SHA256, ix.Files[i].Size = pub.SHA256(d), int64(len(d))
	}
	b.Files[pub.SumsFile] = pub.Sums(ix)
	s := ix.Lookup(pub.SumsFile)
	s.SHA256, s.Size = pub.SHA256(b.Files[pub.SumsFile]), int64(len(b.Files[pub.SumsFile]))
	if b.Files[pub.IndexFile], err = ix.Marshal(); err != nil {
		t.Fatal(err)
	}
	for _, s := range signer {
		sig, err := s.Sign(context.Background(), b.Files[pub.IndexFile], pub.Kind)
		if err != nil {
			t.Fatal(err)
		}
		files, _ := trail.SignatureFiles([]*signature.Signature{sig})
		delete(b.Files, pub.IndexFile+".asc")
		delete(b.Files, pub.IndexFile+".sig")
		for ext, data := range files {
			b.Files[pub.IndexFile+ext] = data
		}
	}
	var out bytes.Buffer
	if err := pub.Write(&out, b.Files, t0); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func problemPaths(rep *evidence.Report) string {
	var ps []string
	for _, p := range rep.Problems {
		ps = append(ps, p.Path)
	}
	return strings.Join(ps, " ")
}

// Export refuses a period that no trusted checkpoint covers.
func TestExportNeedsCheckpoint(t *testing.T) {
	f := newFixture(t)
	if _, err := trail.Append(context.Background(), f.store, t0, ev("gate", "x", nil)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err := evidence.Export(context.Background(), &buf, evidence.ExportConfig{Repo: f.repo, Store: f.store, Registry: f.reg, Now: t0, Signer: f.signer, Exporter: "alice"})
	if _, ok := err.(*evidence.NoCheckpointError); !ok {
		t.Errorf("Export(no checkpoint) = %v, want *NoCheckpointError", err)
	}
}

// Every control the mapping lists has evidence from some class, and every
// class groundzero stamps files with is in the mapping.
func TestControlMapping(t *testing.T) {
	m := evidence.Controls()
	for _, f := range m.Frameworks {
		for _, c := range f.Controls {
			if len(m.EvidenceFor(c.Key)) == 0 {
				t.Errorf("control %s has no class of evidence", c.Key)
			}
		}
	}
	for _, class := range []string{"trail", "checkpoint", "intent", "plan", "apply-log", "backend-lock", "signers", "policy",
		"manifest", "revocation", "breakglass", "incident", "drill", "machine", "marker", "verifier", "artifact"} {
		if m.Class(class) == nil || len(m.ControlsOf(class)) == 0 {
			t.Errorf("class %s is not mapped to any control", class)
		}
	}
	for _, bad := range []string{
		"frameworks: [{name: x, prefix: X, controls: {A.1: one}}]\nclasses: [{class: c, what: w, evidences: {X A.2: why}}]\n",
		"frameworks: [{name: x, prefix: X, controls: {A.1: one, A.1: two}}]\n",
		"frameworks: [{name: x, prefix: X, controls: {A.1: one}}]\nclasses: [{class: c, what: w, evidences: {X A.1: ''}}]\n",
		"frameworks: []\nextra: 1\n",
	} {
		if _, err := evidence.ParseMapping([]byte(bad)); err == nil {
			t.Errorf("ParseMapping(%q) = nil error, want one", bad)
		}
	}
}

// The README's controls table is the one the mapping generates; its
// auditor commands are the ones the end-to-end test runs.
func TestReadmeMatchesMapping(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	checkReadme(t, data)
}

func checkReadme(t *testing.T, data []byte) {
	const begin, end = "<!-- evidence-controls:begin -->\n", "<!-- evidence-controls:end -->"
	i, j := bytes.Index(data, []byte(begin)), bytes.Index(data, []byte(end))
	if i < 0 || j < i {
		t.Fatal("README.md has no controls table between <!-- evidence-controls:begin --> and <!-- evidence-controls:end -->")
	}
	if got, want := string(data[i+len(begin):j]), evidence.Controls().Table(); got != want {
		t.Errorf("README.md's controls table differs from internal/evidence/controls.yaml; regenerate it:\n%s", want)
	}
	for _, script := range []string{evidence.AuditorOpenPGP, evidence.AuditorSSH} {
		for _, line := range strings.Split(strings.TrimSpace(script), "\n") {
			if !bytes.Contains(data, []byte(line+"\n")) {
				t.Errorf("README.md lacks the auditor command %q", line)
			}
		}
	}
}

// verify.py stays short, readable and standard-library only.
func TestVerifierScriptIsSmall(t *testing.T) {
	src := string(evidence.VerifierScript())
	if n := strings.Count(src, "\n"); n >= 200 {
		t.Errorf("verify.py has %d lines, want under 200", n)
	}
	allowed := map[string]bool{"base64": true, "hashlib": true, "json": true, "os": true, "sys": true}
	for _, m := range regexp.MustCompile(`(?m)^\s*(?:import|from)\s+([A-Za-z0-9_.]+)`).FindAllStringSubmatch(src, -1) {
		if !allowed[m[1]] {
			t.Errorf("verify.py imports %s, want only %v", m[1], allowed)
		}
	}
}

// BenchmarkExportVerify exports and verifies a bundle of a 10,000-entry
// trail.
func BenchmarkExportVerify(b *testing.B) {
	f := newFixture(b)
	events := make([]trail.Event, 10_000)
	for i := range events {
		events[i] = ev("gate", "manifest", map[string]any{"ok": true, "detail": fmt.Sprintf("9 governed file(s) match governance/MANIFEST version %d", i)})
	}
	f.record(b, t0, events...)
	b.ResetTimer()
	for range b.N {
		bundle := f.export(b, t0, time.Time{}, time.Time{})
		if rep := verify(b, bundle, f.pin, t0); !rep.OK() || rep.Trail.Entries != 10_000 {
			b.Fatalf("Verify = %v, %d entries", rep.Problems, rep.Trail.Entries)
		}
		b.SetBytes(int64(len(bundle)))
	}
}

// The bundle's policy decides which roles may sign checkpoints: a
// checkpoint by a signer without one of them vouches for nothing.
func TestVerifyCheckpointRoles(t *testing.T) {
	f := newFixture(t)
	f.record(t, t0, ev("gate", "x", nil))
	bundle := f.export(t, t0, time.Time{}, time.Time{})
	b, _ := pub.Read(bytes.NewReader(bundle))
	p := "repo/governance/policy.yaml"
	b.Files[p] = bytes.Replace(b.Files[p], []byte("  # checkpoint:\n  #   roles: []"), []byte("  checkpoint:\n    roles: [release]"), 1)
	if bytes.Equal(b.Files[p], bundle) || !bytes.Contains(b.Files[p], []byte("roles: [release]")) {
		t.Fatal("policy template changed: no checkpoint roles to set")
	}
	rep := verify(t, rewrite(t, b, nil, f.signer), f.pin, t0)
	if got := problemPaths(rep); !strings.Contains(got, "trail/checkpoints/") {
		t.Errorf("Verify(checkpoints by a role the policy does not allow) problems = %v", rep.Problems)
	}
}
