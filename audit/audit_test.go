package audit_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/groundzero/groundzero/audit"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// trail builds n canonical entries and returns the segment bytes and each
// line.
func trail(t testing.TB, n int) ([]byte, [][]byte) {
	t.Helper()
	var seg bytes.Buffer
	var lines [][]byte
	prev := audit.GenesisPrev
	for i := 0; i < n; i++ {
		e := &audit.Entry{
			Seq: int64(i), Time: t0.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
			Actor: "alice", Action: "check.gate", Subject: "manifest",
			Details: map[string]any{"ok": i%2 == 0, "n": fmt.Sprintf("entry %d with", i)},
			Prev:    prev,
		}
		line, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
		seg.Write(line)
		seg.WriteByte('\n')
		prev = audit.ChainHex(line)
	}
	return seg.Bytes(), lines
}

// checkpointAt computes the checkpoint of the first size lines.
func checkpointAt(t testing.TB, lines [][]byte, size int) *audit.Checkpoint {
	t.Helper()
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i := 0; i < size; i++ {
		add, err := tlog.StoredHashes(int64(i), lines[i], r)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, add...)
	}
	root, err := tlog.TreeHash(int64(size), r)
	if err != nil {
		t.Fatal(err)
	}
	return &audit.Checkpoint{Origin: audit.Origin(lines[0]), Size: int64(size), Root: root, Time: t0}
}

func signed(cps ...*audit.Checkpoint) []*audit.SignedCheckpoint {
	var out []*audit.SignedCheckpoint
	for _, c := range cps {
		out = append(out, &audit.SignedCheckpoint{Checkpoint: c, Name: fmt.Sprintf("cp-%d", c.Size)})
	}
	return out
}

func verify(t testing.TB, seg []byte, cps []*audit.SignedCheckpoint, opt audit.Options) *audit.Report {
	t.Helper()
	rep, err := audit.Verify(bytes.NewReader(seg), cps, opt)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestVerifyGood(t *testing.T) {
	seg, lines := trail(t, 100)
	cps := signed(checkpointAt(t, lines, 10), checkpointAt(t, lines, 57), checkpointAt(t, lines, 100))
	rep := verify(t, seg, cps, audit.Options{Trusted: checkpointAt(t, lines, 57)})
	if !rep.OK() || rep.Entries != 100 || rep.CheckpointsValid != 3 || rep.Uncovered != 0 {
		t.Fatalf("Verify = %+v, want OK with 100 entries and 3 checkpoints", rep)
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	_, lines := trail(t, 3)
	cp := checkpointAt(t, lines, 3)
	got, err := audit.ParseCheckpoint(cp.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if *got != *cp {
		t.Fatalf("ParseCheckpoint(Marshal(cp)) = %+v, want %+v", got, cp)
	}
	for _, bad := range []string{
		strings.Replace(string(cp.Marshal()), "\n3\n", "\n03\n", 1),
		strings.Replace(string(cp.Marshal()), "time ", "time  ", 1),
		string(cp.Marshal()) + "extra\n",
		strings.Replace(string(cp.Marshal()), audit.OriginPrefix, "other/", 1),
	} {
		if _, err := audit.ParseCheckpoint([]byte(bad)); err == nil {
			t.Errorf("ParseCheckpoint(%q) succeeded", bad)
		}
	}
}

// Every single-byte flip, every deleted line and every swap of adjacent lines
// of a 300-entry trail is detected, and the report names a seq.
func TestTamperExhaustive(t *testing.T) {
	const n = 300
	seg, lines := trail(t, n)
	cps := signed(checkpointAt(t, lines, 150), checkpointAt(t, lines, n))
	if rep := verify(t, seg, cps, audit.Options{Workers: 1}); !rep.OK() {
		t.Fatalf("untampered trail fails: %s", rep.Problem)
	}
	// Flips are independent: check them on every core.
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	missed := make(chan int, len(seg))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			bad := bytes.Clone(seg)
			for i := w; i < len(seg); i += workers {
				bad[i] ^= 0x01
				rep, err := audit.Verify(bytes.NewReader(bad), cps, audit.Options{Workers: 1})
				if err != nil || rep.OK() || rep.FirstBad < 0 {
					missed <- i
				}
				bad[i] ^= 0x01
			}
		}(w)
	}
	wg.Wait()
	close(missed)
	for i := range missed {
		t.Errorf("flip of byte %d (%q) not detected", i, seg[i])
	}
	for i := 0; i < n; i++ {
		var b bytes.Buffer
		for j, l := range lines {
			if j != i {
				b.Write(l)
				b.WriteByte('\n')
			}
		}
		if rep := verify(t, b.Bytes(), cps, audit.Options{}); rep.OK() {
			t.Fatalf("deletion of line %d not detected", i)
		}
	}
	for i := 0; i+1 < n; i++ {
		var b bytes.Buffer
		for j := range lines {
			k := j
			if j == i {
				k = i + 1
			} else if j == i+1 {
				k = i
			}
			b.Write(lines[k])
			b.WriteByte('\n')
		}
		rep := verify(t, b.Bytes(), cps, audit.Options{})
		if rep.OK() || rep.FirstBad != int64(i) {
			t.Fatalf("swap of lines %d and %d: FirstBad = %d, want %d (%s)", i, i+1, rep.FirstBad, i, rep.Problem)
		}
	}
}

func TestFirstBadNamesTheSeq(t *testing.T) {
	seg, lines := trail(t, 50)
	cps := signed(checkpointAt(t, lines, 50))
	bad := bytes.Clone(seg)
	off := bytes.Index(bad, []byte("entry 20 with"))
	bad[off+6] = '9'
	rep := verify(t, bad, cps, audit.Options{})
	if rep.FirstBad != 20 || !strings.Contains(rep.Problem, "entry 20 was changed") {
		t.Fatalf("Verify(edited entry 20) = %d %q, want entry 20 reported", rep.FirstBad, rep.Problem)
	}
}

// T11: a verifier holding an old checkpoint fails on a shortened trail, even
// when every checkpoint file past the cut was removed too.
func TestTailTruncation(t *testing.T) {
	seg, lines := trail(t, 40)
	trusted := checkpointAt(t, lines, 40)
	short := seg[:bytes.Index(seg, lines[30])]
	rep := verify(t, short, signed(checkpointAt(t, lines, 20)), audit.Options{Trusted: trusted})
	if rep.OK() || !strings.Contains(rep.Problem, "removed from the tail") {
		t.Fatalf("Verify(truncated) = %q, want truncation detected", rep.Problem)
	}
	// Without the trusted checkpoint the shortened trail is self-consistent:
	// that is why the verifier keeps one.
	if rep := verify(t, short, signed(checkpointAt(t, lines, 20)), audit.Options{}); !rep.OK() {
		t.Fatalf("Verify(truncated, no trusted) = %q", rep.Problem)
	}
}

// T12: two trails of the same size with different roots: the trusted
// checkpoint of one refuses the other.
func TestSplitView(t *testing.T) {
	seg, lines := trail(t, 30)
	trusted := checkpointAt(t, lines, 30)
	// A rewritten history: same size, entry 29 different, chain re-linked.
	other := bytes.Clone(seg)
	i := bytes.LastIndex(other, []byte(`"ok":false`))
	copy(other[i:], []byte(`"ok":fals0`))
	rep := verify(t, other, nil, audit.Options{Trusted: trusted})
	if rep.OK() || !strings.Contains(rep.Problem, "does not extend the trusted checkpoint") {
		t.Fatalf("Verify(split view) = %q, want refusal", rep.Problem)
	}
}

func TestTornTail(t *testing.T) {
	seg, lines := trail(t, 10)
	torn := append(bytes.Clone(seg), lines[0][:17]...)
	rep := verify(t, torn, signed(checkpointAt(t, lines, 10)), audit.Options{})
	if rep.TornTail != 17 || rep.Entries != 10 || !strings.Contains(rep.Problem, "torn tail") {
		t.Fatalf("Verify(torn) = %+v", rep)
	}
}

func TestUncoveredAndInvalidCheckpoints(t *testing.T) {
	seg, lines := trail(t, 12)
	cps := signed(checkpointAt(t, lines, 10))
	rep := verify(t, seg, cps, audit.Options{})
	if !rep.OK() || rep.Uncovered != 2 {
		t.Fatalf("Uncovered = %d (%s), want 2", rep.Uncovered, rep.Problem)
	}
	if rep.Unanchored() || rep.Latest == nil || rep.Latest.Size != 10 {
		t.Fatalf("Verify(checkpoint at 10) = %+v, want anchored at 10", rep)
	}
	cps[0].Ignored = "signed by key 0123, which is not in the signers registry"
	rep = verify(t, seg, cps, audit.Options{})
	if !rep.OK() || len(rep.Ignored) != 1 || rep.Uncovered != 12 || rep.CheckpointsValid != 0 || !rep.Unanchored() {
		t.Fatalf("ignored checkpoint: %+v", rep)
	}
	if got := rep.Ignored[0]; got.Name != "cp-10" || got.Reason != cps[0].Ignored {
		t.Fatalf("Report.Ignored[0] = %+v, want cp-10 and its reason", got)
	}
	// A checkpoint past the end of the trail.
	long := checkpointAt(t, lines, 12)
	long.Size = 13
	if rep := verify(t, seg, signed(long), audit.Options{}); rep.OK() || !strings.Contains(rep.Problem, "removed from the tail") {
		t.Fatalf("checkpoint past the end: %q", rep.Problem)
	}
}

// trailAt builds a trail whose entry i has time times[i].
func trailAt(t testing.TB, times ...time.Time) []byte {
	t.Helper()
	var seg bytes.Buffer
	prev := audit.GenesisPrev
	for i, at := range times {
		e := &audit.Entry{Seq: int64(i), Time: at.UTC().Format(time.RFC3339), Actor: "alice", Action: "test", Subject: "s", Prev: prev}
		line, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		seg.Write(line)
		seg.WriteByte('\n')
		prev = audit.ChainHex(line)
	}
	return seg.Bytes()
}

// T35: checkpoints that no trusted signer vouches for are listed and
// otherwise ignored: one past the end of the trail, one with another root,
// one of another trail, one of size 0, one inconsistent with its
// neighbours. None breaks the trail, none anchors it.
func TestIgnoredCheckpointsNeitherBreakNorSatisfy(t *testing.T) {
	seg, lines := trail(t, 12)
	past := checkpointAt(t, lines, 12)
	past.Size = 99
	wrongRoot := checkpointAt(t, lines, 7)
	wrongRoot.Root[0] ^= 1
	otherTrail := checkpointAt(t, lines, 5)
	otherTrail.Origin = audit.OriginPrefix + "0000000000000000"
	empty := checkpointAt(t, lines, 5)
	empty.Size = 0
	planted := signed(past, wrongRoot, otherTrail, empty)
	for _, c := range planted {
		c.Ignored = "signed by key 0123, which is not in the signers registry"
	}
	rep := verify(t, seg, planted, audit.Options{})
	if !rep.OK() || len(rep.Ignored) != 4 || rep.CheckpointsInvalid != 0 || rep.CheckpointsValid != 0 || !rep.Unanchored() {
		t.Fatalf("Verify(only ignored checkpoints) = %+v, want OK, 4 ignored, unanchored", rep)
	}
	// Beside trusted checkpoints, the planted ones change nothing.
	cps := append(signed(checkpointAt(t, lines, 4), checkpointAt(t, lines, 12)), planted...)
	rep = verify(t, seg, cps, audit.Options{})
	if !rep.OK() || len(rep.Ignored) != 4 || rep.CheckpointsValid != 2 || rep.Unanchored() || rep.Latest.Size != 12 {
		t.Fatalf("Verify(trusted and ignored checkpoints) = %+v, want OK, 2 valid, 4 ignored", rep)
	}
	// The same checkpoints, trusted, fail.
	for _, c := range planted {
		c.Ignored = ""
		if rep := verify(t, seg, signed(c.Checkpoint), audit.Options{}); rep.OK() {
			t.Errorf("Verify(trusted checkpoint of size %d, origin %s) = OK, want a failure", c.Size, c.Origin)
		}
	}
	// An empty trail is not unanchored: there is nothing to vouch for.
	if rep := verify(t, nil, nil, audit.Options{}); !rep.OK() || rep.Unanchored() {
		t.Fatalf("Verify(empty) = %+v, want OK and not unanchored", rep)
	}
}

// An entry dated before its predecessor fails, though it chains; equal
// times pass.
func TestEntryTimesNeverGoBackwards(t *testing.T) {
	same := trailAt(t, t0, t0, t0.Add(time.Second), t0.Add(time.Second))
	if rep := verify(t, same, nil, audit.Options{}); !rep.OK() {
		t.Fatalf("Verify(equal times) = %q, want OK", rep.Problem)
	}
	back := trailAt(t, t0, t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(time.Hour), t0.Add(3*time.Hour))
	rep := verify(t, back, nil, audit.Options{})
	if rep.OK() || rep.FirstBad != 3 || !strings.Contains(rep.Problem, "entry 3 is dated before entry 2") {
		t.Fatalf("Verify(entry 3 earlier than entry 2) = %d %q, want entry 3 named", rep.FirstBad, rep.Problem)
	}
	// Across a chunk boundary too: a long trail whose last entry goes back.
	times := make([]time.Time, 5000)
	for i := range times {
		times[i] = t0.Add(time.Duration(i) * time.Minute)
	}
	times[4999] = t0
	rep = verify(t, trailAt(t, times...), nil, audit.Options{Workers: 4})
	if rep.FirstBad != 4999 || !strings.Contains(rep.Problem, "is dated before") {
		t.Fatalf("Verify(last of 5000 entries goes back) = %d %q, want 4999", rep.FirstBad, rep.Problem)
	}
	// A time that is not RFC 3339 UTC at the end of the line is malformed.
	bad := bytes.Replace(same, []byte(`"time":"2026-11-29T10:00:01Z"}`), []byte(`"time":"2026-11-29 10:00:01Z"}`), 1)
	if rep := verify(t, bad, nil, audit.Options{}); rep.FirstBad != 2 || !strings.Contains(rep.Problem, "entry 2 is malformed") {
		t.Fatalf("Verify(bad time) = %d %q, want entry 2 malformed", rep.FirstBad, rep.Problem)
	}
}

// T13: the RFC 6962 vectors of transparency-dev/merkle: leaf inputs and the
// roots of every tree size, and inclusion and consistency proofs regenerated
// from its reference tree for every (index, size) and (size1, size2), checked
// by our verifier; corrupted proofs fail.
func TestRFC6962Vectors(t *testing.T) {
	leaves := testonly.LeafInputs()
	roots := testonly.RootHashes()
	ref := testonly.New(rfc6962.DefaultHasher)
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	cps := map[int64]*audit.Checkpoint{}
	for i, leaf := range leaves {
		add, err := tlog.StoredHashes(int64(i), leaf, r)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, add...)
		ref.AppendData(leaf)
		size := int64(i + 1)
		root, _ := tlog.TreeHash(size, r)
		if !bytes.Equal(root[:], roots[size]) {
			t.Fatalf("root(%d) = %x, want %x", size, root, roots[size])
		}
		cps[size] = &audit.Checkpoint{Origin: "o", Size: size, Root: root}
	}
	toProof := func(p [][]byte) []tlog.Hash {
		out := make([]tlog.Hash, len(p))
		for i := range p {
			copy(out[i][:], p[i])
		}
		return out
	}
	for size := int64(1); size <= int64(len(leaves)); size++ {
		for idx := int64(0); idx < size; idx++ {
			p, err := ref.InclusionProof(uint64(idx), uint64(size))
			if err != nil {
				t.Fatal(err)
			}
			proof := toProof(p)
			if err := audit.CheckInclusion(leaves[idx], idx, cps[size], proof); err != nil {
				t.Errorf("CheckInclusion(%d, %d): %v", idx, size, err)
			}
			ours, _ := audit.Prove(r, idx, size)
			if len(ours) != len(proof) {
				t.Errorf("Prove(%d, %d) has %d hashes, want %d", idx, size, len(ours), len(proof))
			}
			for _, bad := range corrupt(proof) {
				if audit.CheckInclusion(leaves[idx], idx, cps[size], bad) == nil {
					t.Errorf("corrupted inclusion proof (%d, %d) accepted", idx, size)
				}
			}
			if audit.CheckInclusion(append([]byte("x"), leaves[idx]...), idx, cps[size], proof) == nil {
				t.Errorf("inclusion of wrong data (%d, %d) accepted", idx, size)
			}
		}
		for old := int64(1); old < size; old++ {
			p, err := ref.ConsistencyProof(uint64(old), uint64(size))
			if err != nil {
				t.Fatal(err)
			}
			proof := toProof(p)
			if err := audit.CheckConsistency(cps[old], cps[size], proof); err != nil {
				t.Errorf("CheckConsistency(%d, %d): %v", old, size, err)
			}
			if ours, err := audit.ProveConsistency(r, old, size); err != nil || len(ours) != len(proof) {
				t.Errorf("ProveConsistency(%d, %d) = %d hashes, %v; want %d", old, size, len(ours), err, len(proof))
			} else if err := audit.CheckConsistency(cps[old], cps[size], ours); err != nil {
				t.Errorf("CheckConsistency(ProveConsistency(%d, %d)): %v", old, size, err)
			}
			for _, bad := range corrupt(proof) {
				if audit.CheckConsistency(cps[old], cps[size], bad) == nil {
					t.Errorf("corrupted consistency proof (%d, %d) accepted", old, size)
				}
			}
		}
	}
}

func corrupt(p []tlog.Hash) [][]tlog.Hash {
	var out [][]tlog.Hash
	for i := range p {
		q := append([]tlog.Hash(nil), p...)
		q[i][0] ^= 1
		out = append(out, q)
	}
	if len(p) > 0 {
		out = append(out, p[:len(p)-1])
	}
	out = append(out, append(append([]tlog.Hash(nil), p...), tlog.Hash{}))
	return out
}

// T14: an interior node presented as a leaf does not prove inclusion: leaf and
// node hashes use different prefixes.
func TestLeafNodeConfusion(t *testing.T) {
	_, lines := trail(t, 4)
	cp := checkpointAt(t, lines, 4)
	l0, l1 := audit.LeafHash(lines[0]), audit.LeafHash(lines[1])
	node := append(l0[:], l1[:]...) // the preimage of the interior node (0,1)
	l2, l3 := audit.LeafHash(lines[2]), audit.LeafHash(lines[3])
	proof := []tlog.Hash{tlog.NodeHash(l2, l3)}
	// As a "leaf" of a 2-leaf tree whose other half is node (2,3).
	two := &audit.Checkpoint{Origin: cp.Origin, Size: 2, Root: cp.Root}
	if audit.CheckInclusion(node, 0, two, proof) == nil {
		t.Fatal("interior node accepted as a leaf")
	}
}

func BenchmarkVerify300(b *testing.B) {
	seg, lines := trail(b, 300)
	cps := signed(checkpointAt(b, lines, 300))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		audit.Verify(bytes.NewReader(seg), cps, audit.Options{Workers: 1})
	}
}

// An edited entry is named, not its successor, even when a checkpoint
// boundary falls between them.
func TestFirstBadAtCheckpointBoundary(t *testing.T) {
	seg, lines := trail(t, 10)
	for _, edited := range []int{2, 3, 8, 9} {
		cps := signed(checkpointAt(t, lines, 4), checkpointAt(t, lines, 10))
		bad := bytes.Clone(seg)
		off := bytes.Index(bad, lines[edited])
		copy(bad[off+bytes.Index(lines[edited], []byte("entry")):], "Entry")
		rep := verify(t, bad, cps, audit.Options{})
		if rep.FirstBad != int64(edited) {
			t.Errorf("edit of entry %d: FirstBad = %d (%s)", edited, rep.FirstBad, rep.Problem)
		}
	}
}
