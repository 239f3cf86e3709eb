package anchor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/trail"
	"github.com/groundzero/groundzero/record"
)

// stateCheckpoint checkpoints the way commands do: from the state the
// anchor read, with the state bundle beside the checkpoint.
func stateCheckpoint(t testing.TB, s trail.Store, signer sign.Signer, now time.Time, ix *Index) *audit.Checkpoint {
	t.Helper()
	ctx := context.Background()
	cp, st, err := MakeCheckpoint(ctx, s, now, ix)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign(ctx, cp.Marshal(), audit.CheckpointNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if err := StoreSigned(ctx, s, cp, st, []*signature.Signature{sig}); err != nil {
		t.Fatal(err)
	}
	return cp
}

// countingStore counts what a reader asks of the store: the entries it
// reads, through EntriesFrom or one by one through Entry (a run of those
// counts as a read from its first seq; entry 0, which names the trail, is
// not part of any tail and is not counted).
type countingStore struct {
	trail.Store
	fullReads int   // Entries calls
	from      int64 // the last EntriesFrom start
	lines     int   // entry lines handed out
	keyed     bool  // a run of Entry reads has started
}

func (c *countingStore) Entry(ctx context.Context, seq int64) ([]byte, error) {
	line, err := c.Store.Entry(ctx, seq)
	if seq > 0 {
		if !c.keyed {
			c.from, c.keyed = seq, true
		}
		if err == nil {
			c.lines++
		}
	}
	return line, err
}

func (c *countingStore) Entries(ctx context.Context) (io.ReadCloser, error) {
	c.fullReads++
	return c.Store.Entries(ctx)
}

func (c *countingStore) EntriesFrom(ctx context.Context, first int64) (io.ReadCloser, error) {
	c.from = first
	r, err := c.Store.EntriesFrom(ctx, first)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(r)
	r.Close()
	c.lines += strings.Count(string(data), "\n")
	return io.NopCloser(strings.NewReader(string(data))), err
}

// The state a checkpoint commits to gives the same root as the tree of the
// whole trail (tlog), at every size, whether it is built at once or extended
// checkpoint by checkpoint.
func TestStateRootMatchesTree(t *testing.T) {
	alice, reg := key(t, "alice")
	s, _ := trail.OpenDir(t.TempDir())
	cfg := trail.VerifyConfig{Registry: reg, Now: t0.Add(time.Hour)}
	var ix *Index
	for n := 1; n <= 70; n++ {
		appendEvent(t, s, t0, "gate", map[string]any{"n": n})
		if n%3 != 0 && n > 5 {
			continue
		}
		full, err := trail.MakeCheckpoint(context.Background(), s, t0)
		if err != nil {
			t.Fatal(err)
		}
		cp := stateCheckpoint(t, s, alice, t0, ix)
		if cp.Size != full.Size || cp.Root != full.Root || cp.Origin != full.Origin {
			t.Fatalf("size %d: state checkpoint %d/%x, tree %d/%x", n, cp.Size, cp.Root, full.Size, full.Root)
		}
		if ix, err = Read(context.Background(), s, cfg, false); err != nil || !ix.Report.OK() {
			t.Fatalf("size %d: Read = %v, %v", n, err, ix.Report.Problem)
		}
	}
	if rep, err := trail.Verify(context.Background(), s, cfg); err != nil || !rep.OK() || rep.CheckpointsValid == 0 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// A reader with a trusted state bundle reads only the entries after it, and
// learns from the bundle what the entries before it said.
func TestReadFromStateReadsOnlyTheTail(t *testing.T) {
	alice, reg := key(t, "alice")
	dir, _ := trail.OpenDir(t.TempDir())
	s := &countingStore{Store: dir}
	appendEvent(t, s, t0, RegistrySeen, map[string]any{"version": 1, "sha256": hashA})
	appendEvent(t, s, t0, Consumed, map[string]any{"nonce": "old", "expires": t0.Add(time.Hour).Format(time.RFC3339)})
	appendEvent(t, s, t0, Consumed, map[string]any{"nonce": "live", "expires": t0.Add(72 * time.Hour).Format(time.RFC3339)})
	appendEvent(t, s, t0, Consumed, map[string]any{"nonce": "forever"})
	for i := 0; i < 200; i++ {
		appendEvent(t, s, t0, "gate", map[string]any{"i": i})
	}
	stateCheckpoint(t, s, alice, t0.Add(2*time.Hour), nil)
	appendEvent(t, s, t0.Add(3*time.Hour), ManifestSeen, map[string]any{"version": 2, "sha256": hashB})
	appendEvent(t, s, t0.Add(3*time.Hour), Consumed, map[string]any{"nonce": "tail"})

	*s = countingStore{Store: dir}
	ix, err := Read(context.Background(), s, trail.VerifyConfig{Registry: reg, Now: t0.Add(4 * time.Hour)}, false)
	if err != nil || !ix.Report.OK() {
		t.Fatalf("Read = %v, %+v", err, ix.Report)
	}
	if s.fullReads != 0 || s.from != 203 || s.lines != 3 {
		t.Errorf("Read did %d full reads and read %d lines from %d; want none, and the checkpoint's last and the 2 after it, from 203", s.fullReads, s.lines, s.from)
	}
	if ix.Report.Entries != 206 || ix.Covered() != 204 || ix.Report.Uncovered != 2 {
		t.Errorf("report: %d entries, %d covered, %d uncovered; want 206, 204, 2", ix.Report.Entries, ix.Covered(), ix.Report.Uncovered)
	}
	for nonce, want := range map[string]int64{"live": 2, "forever": 3, "tail": 205, "old": -1} {
		if got := ix.UsedSeq(nonce); got != want {
			t.Errorf("UsedSeq(%s) = %d, want %d", nonce, got, want)
		}
	}
	if ix.Registry == nil || ix.Registry.Version != 1 || ix.Manifest == nil || ix.Manifest.Version != 2 {
		t.Errorf("Registry, Manifest = %+v, %+v; want 1 from the state and 2 from the tail", ix.Registry, ix.Manifest)
	}
	if at, ok := ix.Witness(1, hashA); !ok || !at.Equal(t0) {
		t.Errorf("Witness(1) = %v, %v; want %v from the state", at, ok, t0)
	}
	// The next checkpoint extends the state: again only the tail is read.
	*s = countingStore{Store: dir}
	appendEvent(t, s, t0.Add(4*time.Hour), "gate", nil)
	cp := stateCheckpoint(t, s, alice, t0.Add(4*time.Hour), ix)
	if s.fullReads != 0 || s.from != 205 || s.lines != 2 {
		t.Errorf("MakeCheckpoint did %d full reads and read %d lines from %d; want none, and 2 from 205", s.fullReads, s.lines, s.from)
	}
	if full, _ := trail.MakeCheckpoint(context.Background(), dir, t0); full.Root != cp.Root {
		t.Error("the extended state's root differs from the tree's")
	}
	// The full read agrees with every bundle.
	full, err := ReadFull(context.Background(), dir, trail.VerifyConfig{Registry: reg, Now: t0.Add(5 * time.Hour)}, false)
	if err != nil || !full.Report.OK() {
		t.Fatalf("ReadFull = %v, %q", err, full.Report.Problem)
	}
}

// bundles returns the state bundles in a local store, newest first.
func bundles(t *testing.T, s trail.Store) []trail.StoredState {
	t.Helper()
	got, err := s.States(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// plant writes a bundle under the name a bundle of size would have.
func plant(t *testing.T, s *trail.Dir, size int64, data []byte) {
	t.Helper()
	if err := s.PutState(context.Background(), size, data); err != nil {
		t.Fatal(err)
	}
}

// Whoever can write to the store, without a trusted signer's key, cannot
// make a reader skip a consumed nonce, a registry version or a broken tail:
// bundles they plant or edit are set aside, and cost only a longer read.
func TestPlantedStatesAreSetAside(t *testing.T) {
	alice, reg := key(t, "alice")
	mallory, _ := key(t, "mallory")
	d, _ := trail.OpenDir(t.TempDir())
	appendEvent(t, d, t0, Consumed, map[string]any{"nonce": "n1", "expires": t0.Add(48 * time.Hour).Format(time.RFC3339)})
	appendEvent(t, d, t0, RegistrySeen, map[string]any{"version": 3, "sha256": hashA})
	stateCheckpoint(t, d, alice, t0, nil)
	good := bundles(t, d)[0]

	// 1. The trusted bundle with its state edited (the nonce and the
	// registry version dropped), under a larger size's name.
	var b Bundle
	json.Unmarshal(good.Data, &b)
	st, _ := parseState(b.State)
	st.Consumed, st.Registry, st.RegistryNewest = []Nonce{}, []Record{}, nil
	b.State, _ = st.Marshal()
	edited, _ := record.Marshal(b)
	plant(t, d, 1000, edited)
	// 2. A bundle signed by a key outside the registry.
	appendEvent(t, d, t0, "gate", nil)
	cp, mst, err := MakeCheckpoint(context.Background(), d, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	mst.Consumed = []Nonce{}
	h, _ := mst.Hash()
	cp.State = h
	sig, _ := mallory.Sign(context.Background(), cp.Marshal(), audit.CheckpointNamespace)
	foreign := t.TempDir()
	fs, _ := trail.OpenDir(foreign)
	StoreSigned(context.Background(), fs, cp, mst, []*signature.Signature{sig})
	plant(t, d, 2000, bundles(t, fs)[0].Data)
	// 3. Junk.
	plant(t, d, 3000, []byte("{}"))

	ix, err := Read(context.Background(), d, trail.VerifyConfig{Registry: reg, Now: t0.Add(time.Hour)}, false)
	if err != nil || !ix.Report.OK() {
		t.Fatalf("Read = %v, %+v", err, ix.Report)
	}
	if ix.UsedSeq("n1") != 0 || ix.Registry == nil || ix.Registry.Version != 3 {
		t.Errorf("UsedSeq(n1) = %d, Registry = %+v; want 0 and version 3 (planted states must not count)", ix.UsedSeq("n1"), ix.Registry)
	}
	if ix.Covered() != 2 || len(ix.Report.Ignored) != 3 {
		t.Errorf("covered %d, ignored %v; want the trusted checkpoint of 2 and the 3 planted bundles set aside", ix.Covered(), ix.Report.Ignored)
	}
	for _, ig := range ix.Report.Ignored {
		t.Logf("set aside: %s: %s", ig.Name, ig.Reason)
	}
}

// The entries after the trusted state are checked: one that does not link
// to the state's last entry is a problem, found without a full read.
func TestTailMustExtendTheState(t *testing.T) {
	alice, reg := key(t, "alice")
	dir := t.TempDir()
	d, _ := trail.OpenDir(dir)
	appendEvent(t, d, t0, "gate", map[string]any{"ok": true})
	appendEvent(t, d, t0, "gate", map[string]any{"ok": true})
	stateCheckpoint(t, d, alice, t0, nil)
	appendEvent(t, d, t0, "gate", map[string]any{"ok": true})
	appendEvent(t, d, t0, "gate", map[string]any{"ok": true})
	log := filepath.Join(dir, "entries.log")
	data, _ := os.ReadFile(log)
	lines := strings.SplitAfter(string(data), "\n")
	lines[2] = strings.Replace(lines[2], `"ok":true`, `"ok":false`, 1) // breaks entry 3's link
	os.WriteFile(log, []byte(strings.Join(lines, "")), 0o644)
	ix, err := Read(context.Background(), d, trail.VerifyConfig{Registry: reg, Now: t0}, false)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Report.OK() || ix.Report.FirstBad != 3 {
		t.Fatalf("Read(broken tail) = ok %v, first bad %d (%s); want entry 3", ix.Report.OK(), ix.Report.FirstBad, ix.Report.Problem)
	}
	if _, _, err := MakeCheckpoint(context.Background(), d, t0, ix); err == nil {
		t.Error("MakeCheckpoint committed to a broken tail")
	}
}

// A signer's state that does not agree with the entries it sums up passes
// the constant-cost read (the signature vouches for it) but not ReadFull,
// which is what `audit verify` runs.
func TestReadFullChecksTheState(t *testing.T) {
	alice, reg := key(t, "alice")
	d, _ := trail.OpenDir(t.TempDir())
	appendEvent(t, d, t0, Consumed, map[string]any{"nonce": "n1"})
	forgeState(t, d, alice, func(st *State) { st.Consumed = []Nonce{} })
	cfg := trail.VerifyConfig{Registry: reg, Now: t0}
	if ix, err := Read(context.Background(), d, cfg, false); err != nil || !ix.Report.OK() || ix.UsedSeq("n1") != -1 {
		t.Fatalf("Read = %v, %+v", err, ix.Report)
	}
	ix, err := ReadFull(context.Background(), d, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Report.OK() || !strings.Contains(ix.Report.Problem, "consumed nonce of entry 0 is missing") {
		t.Fatalf("ReadFull = %q, want the missing nonce named", ix.Report.Problem)
	}
}

// Nonces leave the state only once their intents have expired by more than
// the clock skew a command tolerates.
func TestPruneKeepsNoncesUntilExpiredWithSkew(t *testing.T) {
	st := NewState()
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	st.Consumed = []Nonce{{"gone", 1, at(-3 * signature.ClockSkew)}, {"skew", 2, at(-signature.ClockSkew)}, {"live", 3, at(time.Hour)}, {"forever", 4, ""}}
	st.prune(t0)
	if got := fmt.Sprint(st.Consumed); got != fmt.Sprint([]Nonce{{"skew", 2, at(-signature.ClockSkew)}, {"live", 3, at(time.Hour)}, {"forever", 4, ""}}) {
		t.Errorf("prune kept %s", got)
	}
}

// A trail cut short below its trusted state, or rewritten at the state's
// last entry, is found by the constant-cost read (T11).
func TestReadFindsTruncationBelowTheState(t *testing.T) {
	alice, reg := key(t, "alice")
	dir := t.TempDir()
	d, _ := trail.OpenDir(dir)
	for i := 0; i < 5; i++ {
		appendEvent(t, d, t0, "gate", map[string]any{"ok": true})
	}
	stateCheckpoint(t, d, alice, t0, nil)
	log := filepath.Join(dir, "entries.log")
	good, _ := os.ReadFile(log)
	lines := strings.SplitAfter(string(good), "\n")
	cfg := trail.VerifyConfig{Registry: reg, Now: t0}
	for name, c := range map[string]struct {
		data  string
		first int64
		want  string
	}{
		"cut":    {strings.Join(lines[:3], ""), 4, "entries were removed from the tail"},
		"edited": {strings.Join(lines[:4], "") + strings.Replace(lines[4], "true", "false", 1), 4, "changed"},
	} {
		os.WriteFile(log, []byte(c.data), 0o644)
		for _, read := range []func(context.Context, trail.Store, trail.VerifyConfig, bool) (*Index, error){Read, ReadFull} {
			ix, err := read(context.Background(), d, cfg, false)
			if err != nil {
				t.Fatal(err)
			}
			if ix.Report.OK() || !strings.Contains(ix.Report.Problem, c.want) {
				t.Errorf("%s: problem %q, want %q", name, ix.Report.Problem, c.want)
			}
		}
	}
}

// A witness time relaxes a check, so one that a state claims is checked
// against the entry it names: a checkpoint signer who backdates a registry
// version in the state does not make it witnessed then.
func TestWitnessFromStateIsConfirmedByItsEntry(t *testing.T) {
	alice, reg := key(t, "alice")
	d, _ := trail.OpenDir(t.TempDir())
	appendEvent(t, d, t0.Add(time.Hour), RegistrySeen, map[string]any{"version": 2, "sha256": hashB})
	cfg := trail.VerifyConfig{Registry: reg, Now: t0.Add(2 * time.Hour)}
	stateCheckpoint(t, d, alice, t0.Add(time.Hour), nil)
	ix, err := Read(context.Background(), d, cfg, false)
	if err != nil || !ix.Report.OK() {
		t.Fatal(err, ix.Report.Problem)
	}
	if at, ok := ix.Witness(2, hashB); !ok || !at.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Witness = %v, %v; want the entry's time", at, ok)
	}
	// The same trail, checkpointed by a signer who moved the witness an
	// hour back.
	cp, st, err := MakeCheckpoint(context.Background(), d, t0.Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Registry[0].Time = t0.Format(time.RFC3339)
	cp.State, _ = st.Hash()
	cp.Time = cp.Time.Add(time.Second) // a newer bundle than the honest one
	sig, _ := alice.Sign(context.Background(), cp.Marshal(), audit.CheckpointNamespace)
	if err := StoreSigned(context.Background(), d, cp, st, []*signature.Signature{sig}); err != nil {
		t.Fatal(err)
	}
	for _, b := range bundles(t, d) {
		os.Remove(filepath.Join(d.Path(), b.Name)) // keep only the forged one
		if strings.Contains(string(b.Data), t0.Format(time.RFC3339)) {
			plant(t, d, 1, b.Data)
		}
	}
	ix, err = Read(context.Background(), d, cfg, false)
	if err != nil || !ix.Report.OK() {
		t.Fatal(err, ix.Report.Problem)
	}
	if at, ok := ix.Witness(2, hashB); ok {
		t.Fatalf("Witness = %v, true from a backdated state; want false", at)
	}
}

// A bundle of another trail (an exported copy under another origin, say)
// is set aside, not taken for this trail's.
func TestBundleOfAnotherTrailIsSetAside(t *testing.T) {
	alice, reg := key(t, "alice")
	a, _ := trail.OpenDir(t.TempDir())
	b, _ := trail.OpenDir(t.TempDir())
	appendEvent(t, a, t0, "gate", map[string]any{"trail": "a"})
	stateCheckpoint(t, a, alice, t0, nil)
	for i := 0; i < 5; i++ {
		appendEvent(t, b, t0, "gate", map[string]any{"trail": "b", "i": i})
	}
	stateCheckpoint(t, b, alice, t0, nil)
	plant(t, a, 5, bundles(t, b)[0].Data)
	ix, err := Read(context.Background(), a, trail.VerifyConfig{Registry: reg, Now: t0}, false)
	if err != nil || !ix.Report.OK() || ix.Covered() != 1 {
		t.Fatalf("Read = %v, %q, covered %d; want OK from a's own bundle", err, ix.Report.Problem, ix.Covered())
	}
	if len(ix.Report.Ignored) != 1 || !strings.Contains(ix.Report.Ignored[0].Reason, "not of this trail") {
		t.Errorf("ignored = %v", ix.Report.Ignored)
	}
}

// A consumed intent's marker is written once beside the trail; a reader
// that finds it refuses the replay even when a signed state leaves the
// nonce out, and a marker that cannot be read counts as used.
func TestConsumptionMarkerOutlivesAStateThatOmitsIt(t *testing.T) {
	alice, reg := key(t, "alice")
	d, _ := trail.OpenDir(t.TempDir())
	const nonce = "0123456789abcdef0123456789abcdef"
	es, err := trail.Append(context.Background(), d, t0, trail.Event{Actor: "alice", Action: Consumed, Subject: "intent",
		Details: map[string]any{"nonce": nonce, "expires": t0.Add(time.Hour).Format(time.RFC3339)}})
	if err != nil {
		t.Fatal(err)
	}
	line, _ := es[0].Marshal()
	name, ok := MarkerName(nonce)
	if !ok {
		t.Fatal("MarkerName refused a hex nonce")
	}
	if err := d.PutArtifact(context.Background(), name, append(line, '\n')); err != nil {
		t.Fatal(err)
	}
	// A checkpoint signer's state that leaves the nonce out.
	forgeState(t, d, alice, func(st *State) { st.Consumed = []Nonce{} })
	ix, err := Read(context.Background(), d, trail.VerifyConfig{Registry: reg, Now: t0}, false)
	if err != nil || !ix.Report.OK() {
		t.Fatal(err, ix.Report.Problem)
	}
	if len(ix.Used) != 0 {
		t.Fatalf("the state was expected to leave the nonce out, index has %v", ix.Used)
	}
	if got := ix.UsedSeq(nonce); got != 0 {
		t.Errorf("UsedSeq = %d, want 0, from the marker", got)
	}
	if got := ix.UsedSeq("fedcba9876543210fedcba9876543210"); got != -1 {
		t.Errorf("UsedSeq(unused) = %d, want -1", got)
	}
	// A marker that is not an entry still counts.
	d.PutArtifact(context.Background(), "consumed-fedcba9876543210fedcba98765432ff", []byte("garbage"))
	if got := ix.UsedSeq("fedcba9876543210fedcba98765432ff"); got != 0 {
		t.Errorf("UsedSeq(garbage marker) = %d, want 0", got)
	}
	if _, ok := MarkerName("../../x"); ok {
		t.Error("MarkerName took a path")
	}
}

// forgeState checkpoints d with a state that edit changes after it was
// computed, signed by signer: a checkpoint signer's dishonest state.
func forgeState(t *testing.T, d trail.Store, signer sign.Signer, edit func(*State)) {
	t.Helper()
	cp, st, err := MakeCheckpoint(context.Background(), d, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	edit(st)
	cp.State, _ = st.Hash()
	sig, _ := signer.Sign(context.Background(), cp.Marshal(), audit.CheckpointNamespace)
	if err := StoreSigned(context.Background(), d, cp, st, []*signature.Signature{sig}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkReadLongTail reads the anchor of a trail whose newest trusted
// state is followed by 20,000 entries no checkpoint covers (commands that
// ran without a checkpoint key): each is checked as audit.Verify checks
// it, and only the ones the anchor reads are parsed.
func BenchmarkReadLongTail(b *testing.B) {
	alice, reg := key(b, "alice")
	d, _ := trail.OpenDir(b.TempDir())
	appendEvent(b, d, t0, "gate", nil)
	stateCheckpoint(b, d, alice, t0, nil)
	events := make([]trail.Event, 1000)
	for i := range events {
		events[i] = trail.Event{Actor: "ci", Action: "gate", Subject: "x", Details: map[string]any{"i": i}}
	}
	for i := 0; i < 20; i++ {
		if _, err := trail.Append(context.Background(), d, t0, events...); err != nil {
			b.Fatal(err)
		}
	}
	cfg := trail.VerifyConfig{Registry: reg, Now: t0}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ix, err := Read(context.Background(), d, cfg, false)
		if err != nil || !ix.Report.OK() || ix.Report.Uncovered != 20000 {
			b.Fatal(err, ix.Report.Problem)
		}
	}
}

// Backend locks and their revocations: the state carries them, the tail
// adds to them, and a state that leaves a revocation out is caught by the
// full read (T3: a revoked lock must never come back into force).
func TestLocksFromStateAndTail(t *testing.T) {
	alice, reg := key(t, "alice")
	d, _ := trail.OpenDir(t.TempDir())
	lock1, lock2 := strings.Repeat("1", 64), strings.Repeat("2", 64)
	appendEvent(t, d, t0, LockRecorded, map[string]any{"env": "dev", "version": 1, "sha256": lock1})
	appendEvent(t, d, t0, LockRecorded, map[string]any{"env": "prod", "version": 1, "sha256": strings.Repeat("9", 64)})
	appendEvent(t, d, t0, LockRevoked, map[string]any{"env": "dev", "version": 1, "sha256": lock1})
	stateCheckpoint(t, d, alice, t0, nil)
	appendEvent(t, d, t0, LockRecorded, map[string]any{"env": "dev", "version": 2, "sha256": lock2})
	cfg := trail.VerifyConfig{Registry: reg, Now: t0.Add(time.Hour)}
	for name, read := range map[string]func(context.Context, trail.Store, trail.VerifyConfig, bool) (*Index, error){"Read": Read, "ReadFull": ReadFull} {
		ix, err := read(context.Background(), d, cfg, false)
		if err != nil || !ix.Report.OK() {
			t.Fatalf("%s = %v, %+v", name, err, ix.Report)
		}
		l, revoked := ix.Lock("dev")
		if l == nil || l.Version != 2 || l.SHA256 != lock2 || revoked {
			t.Errorf("%s: dev lock = %+v revoked=%v; want version 2, in force", name, l, revoked)
		}
		if _, ok := ix.Revoked[lock1]; !ok {
			t.Errorf("%s: lock 1 is not known as revoked", name)
		}
		if l, _ := ix.Lock("prod"); l == nil || l.Version != 1 {
			t.Errorf("%s: prod lock = %+v", name, l)
		}
	}
	// A checkpoint signer's state that drops the revocation.
	forgeState(t, d, alice, func(st *State) { st.Revoked = nil })
	ix, err := ReadFull(context.Background(), d, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Report.OK() || !strings.Contains(ix.Report.Problem, "revoked backend locks differ") {
		t.Fatalf("ReadFull = %q, want the dropped revocation found", ix.Report.Problem)
	}
}
