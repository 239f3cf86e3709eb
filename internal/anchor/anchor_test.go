package anchor

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/trail"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// key makes an ed25519 SSH key: its signer and a registry holding it as id.
func key(t testing.TB, id string) (sign.Signer, *signers.Registry) {
	t.Helper()
	s, reg, _ := keyFiles(t, id)
	return s, reg
}

// keyFiles is key, and the directory that holds the private key (named id),
// keys/id.pub and signers.yaml.
func keyFiles(t testing.TB, id string) (sign.Signer, *signers.Registry, string) {
	t.Helper()
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, id)
	if err != nil {
		t.Fatal(err)
	}
	kp := filepath.Join(dir, id)
	os.WriteFile(kp, pem.EncodeToMemory(block), 0o600)
	sp, _ := ssh.NewPublicKey(pub)
	pubFile := ssh.MarshalAuthorizedKey(sp)
	os.MkdirAll(filepath.Join(dir, "keys"), 0o755)
	os.WriteFile(filepath.Join(dir, "keys", id+".pub"), pubFile, 0o644)
	yaml := fmt.Sprintf("version: 1\nsigners:\n  - id: %s\n    roles: [security]\n    keys: [{file: keys/%s.pub, fingerprint: %q, sha256: %q}]\n",
		id, id, ssh.FingerprintSHA256(sp), signers.FileHash(pubFile))
	os.WriteFile(filepath.Join(dir, "signers.yaml"), []byte(yaml), 0o644)
	reg, err := signers.Parse("signers.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.LoadKeys(func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, rel)) }); err != nil {
		t.Fatal(err)
	}
	s, err := sign.New(sign.Spec{Kind: "file", Value: kp}, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	return s, reg, dir
}

func appendEvent(t testing.TB, s trail.Store, now time.Time, action string, details map[string]any) {
	t.Helper()
	if _, err := trail.Append(context.Background(), s, now, trail.Event{Actor: "alice", Action: action, Subject: "x", Details: details}); err != nil {
		t.Fatal(err)
	}
}

func checkpoint(t *testing.T, s trail.Store, signer sign.Signer, now time.Time) {
	t.Helper()
	ctx := context.Background()
	cp, err := trail.MakeCheckpoint(ctx, s, now)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign(ctx, cp.Marshal(), audit.CheckpointNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if err := trail.StoreSigned(ctx, s, cp, []*signature.Signature{sig}); err != nil {
		t.Fatal(err)
	}
}

const (
	hashA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hashB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// Read finds the newest versions and the consumed nonces, and witnesses
// only what a trusted checkpoint covers.
func TestReadAndWitness(t *testing.T) {
	alice, reg := key(t, "alice")
	mallory, _ := key(t, "mallory")
	s, err := trail.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	appendEvent(t, s, t0, RegistrySeen, map[string]any{"version": 1, "sha256": hashA})
	appendEvent(t, s, t0.Add(time.Hour), RegistrySeen, map[string]any{"version": 2, "sha256": hashB})
	appendEvent(t, s, t0.Add(time.Hour), ManifestSeen, map[string]any{"version": 4, "sha256": hashA})
	appendEvent(t, s, t0.Add(time.Hour), Consumed, map[string]any{"nonce": "n1"})
	appendEvent(t, s, t0.Add(time.Hour), "gate", map[string]any{"ok": true})
	checkpoint(t, s, alice, t0.Add(time.Hour))
	// After the checkpoint, and covered only by a foreign one.
	appendEvent(t, s, t0.Add(2*time.Hour), RegistrySeen, map[string]any{"version": 3, "sha256": hashA})
	appendEvent(t, s, t0.Add(2*time.Hour), ManifestSeen, map[string]any{"version": 3, "sha256": hashB})
	checkpoint(t, s, mallory, t0.Add(2*time.Hour))

	ix, err := Read(context.Background(), s, trail.VerifyConfig{Registry: reg, Now: t0.Add(3 * time.Hour)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !ix.Report.OK() || ix.Covered() != 5 {
		t.Fatalf("Read: report ok=%v %q, covered %d, want ok and 5", ix.Report.OK(), ix.Report.Problem, ix.Covered())
	}
	if ix.Registry == nil || ix.Registry.Version != 3 || ix.Registry.Seq != 5 {
		t.Errorf("Registry = %+v, want version 3 from entry 5 (uncovered entries still make commands refuse)", ix.Registry)
	}
	if ix.Manifest == nil || ix.Manifest.Version != 4 {
		t.Errorf("Manifest = %+v, want version 4, the highest recorded", ix.Manifest)
	}
	if ix.UsedSeq("n1") != 3 || ix.UsedSeq("n2") != -1 {
		t.Errorf("UsedSeq(n1), UsedSeq(n2) = %d, %d, want 3, -1", ix.UsedSeq("n1"), ix.UsedSeq("n2"))
	}
	if at, ok := ix.Witness(2, hashB); !ok || !at.Equal(t0.Add(time.Hour)) {
		t.Errorf("Witness(2) = %v, %v, want the entry's time %v", at, ok, t0.Add(time.Hour))
	}
	if _, ok := ix.Witness(2, hashA); ok {
		t.Error("Witness(2, other hash) = true, want false")
	}
	if _, ok := ix.Witness(3, hashA); ok {
		t.Error("Witness(3) = true for an entry only a foreign checkpoint covers, want false")
	}
	if got := ix.NewestCheckpoint(); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("NewestCheckpoint() = %v, want the trusted one at %v, not the foreign one", got, t0.Add(time.Hour))
	}
}

// A trail that does not verify witnesses nothing, but its records still
// make commands refuse.
func TestDamagedTrailWitnessesNothing(t *testing.T) {
	alice, reg := key(t, "alice")
	dir := t.TempDir()
	s, _ := trail.OpenDir(dir)
	appendEvent(t, s, t0, RegistrySeen, map[string]any{"version": 2, "sha256": hashB})
	appendEvent(t, s, t0, "gate", map[string]any{"ok": true})
	checkpoint(t, s, alice, t0)
	log := filepath.Join(dir, "entries.log")
	data, _ := os.ReadFile(log)
	os.WriteFile(log, bytes.Replace(data, []byte(`"ok":true`), []byte(`"ok":false`), 1), 0o644)
	ix, err := Read(context.Background(), s, trail.VerifyConfig{Registry: reg, Now: t0}, false)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Report.OK() {
		t.Fatal("Read(edited trail): report OK, want a problem")
	}
	if _, ok := ix.Witness(2, hashB); ok {
		t.Error("Witness on a damaged trail = true, want false")
	}
	if ix.Registry == nil || ix.Registry.Version != 2 {
		t.Errorf("Registry = %+v, want version 2 still read", ix.Registry)
	}
}

// lineTee passes every line that carries an anchor action, whatever the
// read sizes, and numbers lines from zero.
func TestLineTee(t *testing.T) {
	var in bytes.Buffer
	want := map[int64]string{}
	for i := 0; i < 50; i++ {
		line := fmt.Sprintf(`{"action":"gate","i":%d}`, i)
		if i%7 == 3 {
			line = fmt.Sprintf(`{"action":"%s","i":%d,"pad":%q}`, Consumed, i, strings.Repeat("x", i*37))
			want[int64(i)] = line
		}
		in.WriteString(line + "\n")
	}
	in.WriteString(`{"action":"` + Consumed + `"` + strings.Repeat("y", audit.MaxEntrySize) + "\n")
	in.WriteString(`{"action":"` + ManifestSeen + `"}` + "\n")
	want[51] = `{"action":"` + ManifestSeen + `"}`
	for name, r := range map[string]func(io.Reader) io.Reader{"whole": func(r io.Reader) io.Reader { return r }, "one byte": iotest.OneByteReader, "half": iotest.HalfReader} {
		got := map[int64]string{}
		tee := &lineTee{ReadCloser: io.NopCloser(r(bytes.NewReader(in.Bytes()))), from: math.MaxInt64, fn: func(seq int64, line []byte) { got[seq] = string(line) }}
		if _, err := io.Copy(io.Discard, tee); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s reads: lines = %v, want %v", name, got, want)
		}
	}
}
