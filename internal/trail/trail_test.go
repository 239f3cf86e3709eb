package trail_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/trail"
)

// The test binary doubles as an appender process for the concurrency and
// crash tests: GZ_APPENDER=URL,COUNT appends COUNT events one at a time and
// prints "ack SEQ" after each append has returned (is durable).
func TestMain(m *testing.M) {
	if spec := os.Getenv("GZ_APPENDER"); spec != "" {
		os.Exit(appender(spec))
	}
	os.Exit(m.Run())
}

func appender(spec string) int {
	url, countStr, _ := strings.Cut(spec, ",")
	count, _ := strconv.Atoi(countStr)
	ctx := context.Background()
	s, err := trail.Open(ctx, url, trail.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; i < count; i++ {
		es, err := trail.Append(ctx, s, time.Now(), trail.Event{Actor: "writer", Action: "test.append", Subject: "x",
			Details: map[string]any{"pid": os.Getpid(), "i": i}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(out, "ack %d\n", es[0].Seq)
		out.Flush()
	}
	return 0
}

// fixture is a signers registry with one ci signer and its private key file.
type fixture struct {
	reg    *signers.Registry
	signer sign.Signer
	dir    string
	yaml   string
}

// variant returns the fixture's registry with old replaced by new in its
// signers.yaml.
func (f *fixture) variant(t testing.TB, old, new string) *signers.Registry {
	t.Helper()
	reg, err := signers.Parse("signers.yaml", []byte(strings.Replace(f.yaml, old, new, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.LoadKeys(func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(f.dir, rel)) }); err != nil {
		t.Fatal(err)
	}
	return reg
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "ci")
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "ci")
	os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600)
	sshPub, _ := ssh.NewPublicKey(pub)
	os.MkdirAll(filepath.Join(dir, "keys"), 0o755)
	pubFile := ssh.MarshalAuthorizedKey(sshPub)
	os.WriteFile(filepath.Join(dir, "keys", "ci.pub"), pubFile, 0o644)
	yaml := fmt.Sprintf("version: 1\nsigners:\n  - id: ci\n    roles: [ci]\n    keys: [{file: keys/ci.pub, fingerprint: %q, sha256: %q}]\n",
		ssh.FingerprintSHA256(sshPub), signers.FileHash(pubFile))
	reg, err := signers.Parse("signers.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.LoadKeys(func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, rel)) }); err != nil {
		t.Fatal(err)
	}
	s, err := sign.New(sign.Spec{Kind: "file", Value: keyPath}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{reg: reg, signer: s, dir: dir, yaml: yaml}
}

func (f *fixture) checkpoint(t testing.TB, s trail.Store, now time.Time) *audit.Checkpoint {
	t.Helper()
	ctx := context.Background()
	cp, err := trail.MakeCheckpoint(ctx, s, now)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := f.signer.Sign(ctx, cp.Marshal(), audit.CheckpointNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if err := trail.StoreSigned(ctx, s, cp, []*signature.Signature{sig}); err != nil {
		t.Fatal(err)
	}
	return cp
}

func (f *fixture) verify(t testing.TB, s trail.Store, trusted *audit.Checkpoint) *audit.Report {
	t.Helper()
	rep, err := trail.Verify(context.Background(), s, trail.VerifyConfig{Registry: f.reg, Now: time.Now(), Trusted: trusted})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func appendN(t testing.TB, s trail.Store, n int, now time.Time) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := trail.Append(context.Background(), s, now, trail.Event{Actor: "alice", Action: "test", Subject: "s", Details: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDirAppendCheckpointVerify(t *testing.T) {
	f := newFixture(t)
	s, err := trail.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	appendN(t, s, 5, now)
	old := f.checkpoint(t, s, now)
	appendN(t, s, 3, now)
	f.checkpoint(t, s, now)
	rep := f.verify(t, s, old)
	if !rep.OK() || rep.Entries != 8 || rep.CheckpointsValid != 2 || rep.Latest.Signers[0] != "ci" {
		t.Fatalf("Verify = %+v, want 8 entries and 2 valid checkpoints", rep)
	}
	// An unsigned checkpoint is ignored, and says why.
	cp, _ := trail.MakeCheckpoint(context.Background(), s, now)
	cp.Time = cp.Time.Add(time.Second)
	s.PutCheckpoint(context.Background(), cp.Size, cp.Marshal(), nil)
	if rep := f.verify(t, s, nil); !rep.OK() || rep.CheckpointsValid != 2 || len(rep.Ignored) != 1 || rep.Ignored[0].Reason != "not signed" {
		t.Fatalf("Verify with an unsigned checkpoint = %+v, want it ignored", rep)
	}
}

// T35: checkpoints that no current registry signer vouches for are listed
// and ignored, whatever they claim: signed by a foreign key (here for more
// entries than the trail has, and with another root), signed by a signer of
// a role the policy does not allow, garbage signatures, a malformed body. A
// trail whose only checkpoints are such is unanchored.
func TestForeignCheckpointsIgnored(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	foreign := newFixture(t) // a key outside f's registry
	s, _ := trail.OpenDir(t.TempDir())
	now := time.Now()
	appendN(t, s, 5, now)
	real, _ := trail.MakeCheckpoint(ctx, s, now)
	planted := *real
	planted.Size = 50
	planted.Root[0] ^= 1
	for _, cp := range []*audit.Checkpoint{real, &planted} {
		sig, err := foreign.signer.Sign(ctx, cp.Marshal(), audit.CheckpointNamespace)
		if err != nil {
			t.Fatal(err)
		}
		if err := trail.StoreSigned(ctx, s, cp, []*signature.Signature{sig}); err != nil {
			t.Fatal(err)
		}
	}
	garbled := *real
	garbled.Time = garbled.Time.Add(time.Second)
	s.PutCheckpoint(ctx, garbled.Size, garbled.Marshal(), map[string][]byte{".sig": []byte("not a signature")})
	s.PutCheckpoint(ctx, 7, []byte("not a checkpoint\n"), nil)
	rep := f.verify(t, s, nil)
	if !rep.OK() || rep.CheckpointsValid != 0 || rep.CheckpointsInvalid != 0 || len(rep.Ignored) != 4 || !rep.Unanchored() {
		t.Fatalf("Verify(only foreign checkpoints) = %+v, want OK, 4 ignored, unanchored", rep)
	}
	var reasons []string
	for _, ig := range rep.Ignored {
		reasons = append(reasons, ig.Name+": "+ig.Reason)
	}
	all := strings.Join(reasons, "\n")
	for _, want := range []string{"which is not in the signers registry", "malformed SSH signature", "malformed: checkpoint must have four lines, or five with a state line"} {
		if !strings.Contains(all, want) {
			t.Errorf("Report.Ignored = %s\nwant a reason with %q", all, want)
		}
	}
	// A registry signer's checkpoint anchors it; the planted ones still do
	// not break it.
	f.checkpoint(t, s, now.Add(2*time.Second))
	rep = f.verify(t, s, nil)
	if !rep.OK() || rep.CheckpointsValid != 1 || len(rep.Ignored) != 4 || rep.Unanchored() {
		t.Fatalf("Verify(with a registry checkpoint) = %+v, want OK, 1 valid, 4 ignored", rep)
	}
	// Judged now, every checkpoint alike: a role the policy does not allow,
	// a revoked signer, a signer whose window has ended. The registry's own
	// checkpoint is ignored too, with the reason.
	for _, c := range []struct {
		name  string
		reg   *signers.Registry
		roles []string
		want  string
	}{
		{"role not allowed", f.reg, []string{"security"}, `signer "ci" has roles [ci], but this needs security`},
		{"revoked", f.variant(t, "    roles: [ci]\n", "    roles: [ci]\n    revoked: {at: \"2026-01-01T00:00:00Z\", reason: laptop stolen}\n"), nil, "laptop stolen"},
		{"window ended", f.variant(t, "    roles: [ci]\n", "    roles: [ci]\n    valid_before: \"2020-01-01T00:00:00Z\"\n"), nil, `signer "ci" is`},
	} {
		rep, err := trail.Verify(ctx, s, trail.VerifyConfig{Registry: c.reg, Now: time.Now(), Roles: c.roles})
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, ig := range rep.Ignored {
			found = found || strings.Contains(ig.Reason, c.want)
		}
		if !rep.OK() || rep.CheckpointsValid != 0 || len(rep.Ignored) != 5 || !rep.Unanchored() || !found {
			t.Errorf("%s: Verify = %+v, want all 5 checkpoints ignored, one because %q", c.name, rep, c.want)
		}
	}
}

// Entry times never go backwards: a writer whose clock is a little behind
// writes the newest entry's time.
func TestEntryTimeNeverGoesBack(t *testing.T) {
	s, _ := trail.OpenDir(t.TempDir())
	now := time.Now().UTC().Truncate(time.Second)
	appendN(t, s, 1, now)
	es, err := trail.Append(context.Background(), s, now.Add(-time.Minute), trail.Event{Action: "behind"})
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Format(time.RFC3339); es[0].Time != want {
		t.Fatalf("Append(clock a minute behind).Time = %s, want %s", es[0].Time, want)
	}
	f := newFixture(t)
	f.checkpoint(t, s, now)
	if rep := f.verify(t, s, nil); !rep.OK() {
		t.Fatalf("Verify = %q", rep.Problem)
	}
}

// T24: an append with a clock earlier than the newest entry is refused.
func TestClockSetBack(t *testing.T) {
	s, _ := trail.OpenDir(t.TempDir())
	now := time.Now()
	appendN(t, s, 1, now)
	if _, err := trail.Append(context.Background(), s, now.Add(-time.Minute), trail.Event{Action: "skewed"}); err != nil {
		t.Fatalf("Append with a clock a minute behind = %v, want it tolerated", err)
	}
	_, err := trail.Append(context.Background(), s, now.Add(-time.Hour), trail.Event{Action: "late"})
	var ce *trail.ClockError
	if !errors.As(err, &ce) {
		t.Fatalf("Append with the clock set back = %v, want ClockError", err)
	}
}

// A torn tail (an append cut off by a crash or power loss) is reported by
// verify, blocks further appends, and is repaired only on request, with the
// torn bytes kept aside.
func TestTornTailRepair(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	s, _ := trail.OpenDir(dir)
	now := time.Now()
	appendN(t, s, 4, now)
	f.checkpoint(t, s, now)
	seg := filepath.Join(dir, "entries.log")
	fh, _ := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	fh.Write([]byte(`{"action":"test","actor":"al`))
	fh.Close()
	rep := f.verify(t, s, nil)
	if rep.TornTail != 28 || rep.Entries != 4 || !strings.Contains(rep.Problem, "torn tail") {
		t.Fatalf("Verify(torn) = %+v", rep)
	}
	_, err := trail.Append(context.Background(), s, now, trail.Event{Action: "x"})
	var torn *trail.TornError
	if !errors.As(err, &torn) {
		t.Fatalf("Append onto a torn tail = %v, want TornError", err)
	}
	n, aside, err := s.Repair(now)
	if err != nil || n != 28 {
		t.Fatalf("Repair = %d, %v", n, err)
	}
	if data, _ := os.ReadFile(aside); string(data) != `{"action":"test","actor":"al` {
		t.Fatalf("torn bytes kept aside = %q", data)
	}
	if rep := f.verify(t, s, nil); !rep.OK() || rep.Entries != 4 {
		t.Fatalf("Verify after repair = %+v", rep)
	}
	appendN(t, s, 1, now)
}

func runAppenders(t *testing.T, url string, procs, each int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, procs)
	for p := 0; p < procs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("GZ_APPENDER=%s,%d", url, each))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("appender: %v: %s", err, lastLine(out))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// 8 processes × 250 appends on one local store: exactly 2,000 entries, a
// valid chain.
func TestConcurrentDirAppends(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	runAppenders(t, "file://"+dir, 8, 250)
	s, _ := trail.OpenDir(dir)
	f.checkpoint(t, s, time.Now())
	rep := f.verify(t, s, nil)
	if !rep.OK() || rep.Entries != 2000 {
		t.Fatalf("Verify = %d entries, %q; want 2000, OK", rep.Entries, rep.Problem)
	}
}

// T22: appenders killed with SIGKILL at random moments. After each kill the
// trail verifies, or shows only a torn tail that repair fixes, and every
// entry whose append returned is present. GZ_CRASH_ITERATIONS raises the
// count (bench/stress runs 200).
func TestKill9(t *testing.T) {
	iterations := 20
	if v, err := strconv.Atoi(os.Getenv("GZ_CRASH_ITERATIONS")); err == nil {
		iterations = v
	}
	f := newFixture(t)
	dir := t.TempDir()
	s, _ := trail.OpenDir(dir)
	acked := int64(-1)
	for it := 0; it < iterations; it++ {
		var procs []*exec.Cmd
		var outs []*bufio.Scanner
		for p := 0; p < 3; p++ {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "GZ_APPENDER=file://"+dir+",100000")
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			procs = append(procs, cmd)
			outs = append(outs, bufio.NewScanner(stdout))
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, sc := range outs {
			wg.Add(1)
			go func(sc *bufio.Scanner) {
				defer wg.Done()
				for sc.Scan() {
					if seq, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
						n, _ := strconv.ParseInt(seq, 10, 64)
						mu.Lock()
						acked = max(acked, n)
						mu.Unlock()
					}
				}
			}(sc)
		}
		d, _ := rand.Int(rand.Reader, big.NewInt(40))
		time.Sleep(time.Duration(5+d.Int64()) * time.Millisecond)
		for _, c := range procs {
			c.Process.Signal(syscall.SIGKILL)
		}
		for _, c := range procs {
			c.Wait()
		}
		wg.Wait()
		rep := f.verify(t, s, nil)
		if !rep.OK() {
			if rep.TornTail == 0 {
				t.Fatalf("iteration %d: after kill -9 the trail fails: %s", it, rep.Problem)
			}
			if _, _, err := s.Repair(time.Now()); err != nil {
				t.Fatal(err)
			}
			if rep = f.verify(t, s, nil); !rep.OK() {
				t.Fatalf("iteration %d: after repair: %s", it, rep.Problem)
			}
		}
		if rep.Entries <= acked {
			t.Fatalf("iteration %d: trail has %d entries, but seq %d was acknowledged", it, rep.Entries, acked)
		}
		// Simulate a power cut mid-write now and then: a partial line.
		if mrand.IntN(4) == 0 {
			fh, _ := os.OpenFile(filepath.Join(dir, "entries.log"), os.O_APPEND|os.O_WRONLY, 0)
			fh.Write([]byte(`{"action":"test.ap`))
			fh.Close()
		}
	}
	if _, _, err := s.Repair(time.Now()); err != nil {
		t.Fatal(err)
	}
	// On a loaded machine every kill may land before the first append;
	// one more entry makes the trail something to checkpoint.
	appendN(t, s, 1, time.Now())
	f.checkpoint(t, s, time.Now())
	rep := f.verify(t, s, nil)
	if !rep.OK() || rep.Entries <= acked {
		t.Fatalf("final trail: %+v (acked %d)", rep, acked)
	}
	t.Logf("%d kills; %d entries; highest acknowledged seq %d", iterations, rep.Entries, acked)
}

// Secrets never enter an entry: details are what callers put there, and a
// Secret value marshals redacted.
func TestExportIdempotentAndDiverged(t *testing.T) {
	f := newFixture(t)
	a, _ := trail.OpenDir(t.TempDir())
	b, _ := trail.OpenDir(t.TempDir())
	now := time.Now()
	appendN(t, a, 6, now)
	f.checkpoint(t, a, now)
	ctx := context.Background()
	// A directory has no Object Lock: refused without the waiver.
	_, err := trail.Export(ctx, a, b, trail.ExportOptions{})
	var nol *trail.NoObjectLockError
	if !errors.As(err, &nol) || nol.Store != b.URL() {
		t.Fatalf("Export(to a directory) = %v, want NoObjectLockError", err)
	}
	if n, _, _ := b.Head(ctx); n != 0 {
		t.Fatalf("refused Export wrote %d entries", n)
	}
	waived := trail.ExportOptions{AllowNoObjectLock: true}
	a.PutArtifact(ctx, "apply-1.log", []byte("apply log 1\n"))
	a.PutArtifact(ctx, "apply-2.log", []byte("apply log 2\n"))
	res, err := trail.Export(ctx, a, b, waived)
	if err != nil || res != (trail.ExportResult{Entries: 6, Checkpoints: 1, Artifacts: 2}) {
		t.Fatalf("Export = %+v, %v, want 6 entries, 1 checkpoint, 2 artifacts", res, err)
	}
	res, err = trail.Export(ctx, a, b, waived)
	if err != nil || res != (trail.ExportResult{}) {
		t.Fatalf("second Export = %+v, %v, want nothing copied", res, err)
	}
	if rep := f.verify(t, b, nil); !rep.OK() || rep.Entries != 6 {
		t.Fatalf("exported trail: %+v", rep)
	}
	if got, err := b.Artifact(ctx, "apply-2.log"); err != nil || string(got) != "apply log 2\n" {
		t.Fatalf("exported Artifact(apply-2.log) = %q, %v", got, err)
	}
	// An artifact of the same name with other bytes is a divergence.
	a.PutArtifact(ctx, "apply-3.log", []byte("the real log\n"))
	b.PutArtifact(ctx, "apply-3.log", []byte("another log\n"))
	_, err = trail.Export(ctx, a, b, waived)
	var div *trail.DivergedError
	if !errors.As(err, &div) || div.Artifact != "apply-3.log" {
		t.Fatalf("Export onto a diverged artifact = %v, want DivergedError naming apply-3.log", err)
	}
	appendN(t, b, 1, now)
	appendN(t, a, 1, now.Add(time.Second))
	_, err = trail.Export(ctx, a, b, waived)
	if !errors.As(err, &div) || div.Seq != 6 || div.Artifact != "" {
		t.Fatalf("Export onto a diverged trail = %v", err)
	}
	_ = bytes.MinRead
}

func TestDirArtifacts(t *testing.T) {
	ctx := context.Background()
	s, _ := trail.OpenDir(t.TempDir())
	if names, err := s.Artifacts(ctx); err != nil || len(names) != 0 {
		t.Fatalf("Artifacts(new store) = %q, %v, want none", names, err)
	}
	s.PutArtifact(ctx, "b.log", []byte("b"))
	s.PutArtifact(ctx, "a.log", []byte("a"))
	os.WriteFile(filepath.Join(s.Path(), "artifacts", ".a.log.tmp123"), []byte("x"), 0o644)
	if names, err := s.Artifacts(ctx); err != nil || strings.Join(names, ",") != "a.log,b.log" {
		t.Fatalf("Artifacts = %q, %v, want a.log,b.log", names, err)
	}
	var missing *trail.ArtifactMissingError
	if _, err := s.Artifact(ctx, "c.log"); !errors.As(err, &missing) {
		t.Fatalf("Artifact(c.log) = %v, want ArtifactMissingError", err)
	}
	if _, err := s.Artifact(ctx, "../entries.log"); err == nil {
		t.Fatal("Artifact(../entries.log) succeeded")
	}
}

// BenchmarkAppendParallel appends one entry per call from many goroutines
// (each append: file lock, tail read, write, fsync). Reported as entries/s.
func BenchmarkAppendParallel(b *testing.B) {
	s, _ := trail.OpenDir(b.TempDir())
	now := time.Now()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := trail.Append(context.Background(), s, now, trail.Event{Actor: "ci", Action: "gate", Subject: "manifest",
				Details: map[string]any{"ok": true, "detail": "a typical gate result of about a hundred bytes of text, more or less"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkWriterGroupCommit: many goroutines through one group-commit Writer.
func BenchmarkWriterGroupCommit(b *testing.B) {
	s, _ := trail.OpenDir(b.TempDir())
	w := trail.NewWriter(s, time.Now)
	defer w.Close()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := w.Append(context.Background(), trail.Event{Actor: "ci", Action: "gate", Subject: "manifest",
				Details: map[string]any{"ok": true, "detail": "a typical gate result of about a hundred bytes of text, more or less"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

func TestWriterGroupCommit(t *testing.T) {
	f := newFixture(t)
	s, _ := trail.OpenDir(t.TempDir())
	w := trail.NewWriter(s, time.Now)
	var wg sync.WaitGroup
	seen := make([]bool, 400)
	var mu sync.Mutex
	for g := 0; g < 40; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				e, err := w.Append(context.Background(), trail.Event{Action: "test"})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[e.Seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	w.Close()
	for i, ok := range seen {
		if !ok {
			t.Fatalf("seq %d never acknowledged", i)
		}
	}
	f.checkpoint(t, s, time.Now())
	if rep := f.verify(t, s, nil); !rep.OK() || rep.Entries != 400 {
		t.Fatalf("Verify = %+v", rep)
	}
}
