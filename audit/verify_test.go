package audit_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"runtime"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/groundzero/groundzero/audit"
)

// The stored hashes Verify keeps are the ones tlog computes, leaf by leaf.
func TestStoredHashesMatchTlog(t *testing.T) {
	seg, lines := trail(t, 1100)
	rep := verify(t, seg, nil, audit.Options{KeepHashes: true})
	var want []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = want[x]
		}
		return out, nil
	})
	for i, l := range lines {
		add, err := tlog.StoredHashes(int64(i), l, r)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, add...)
	}
	if rep.Hashes.Len() != int64(len(want)) {
		t.Fatalf("Verify kept %d hashes, want %d", rep.Hashes.Len(), len(want))
	}
	for i := range want {
		got, err := rep.Hashes.ReadHashes([]int64{int64(i)})
		if err != nil || got[0] != want[i] {
			t.Fatalf("stored hash %d = %x, %v, want %x", i, got, err, want[i])
		}
	}
}

// The verdict does not depend on how the trail arrives (one byte at a time,
// in odd pieces) or on how many workers hash it, in a trail long enough to
// span many chunks.
func TestVerifyIndependentOfReadsAndWorkers(t *testing.T) {
	seg, lines := bigTrail(t, 30_000)
	cps := signed(checkpointAt(t, lines, 1), checkpointAt(t, lines, 12_345), checkpointAt(t, lines, len(lines)))
	bad := bytes.Clone(seg)
	off := bytes.Index(bad, lines[20_000])
	bad[off+bytes.Index(lines[20_000], []byte("manifest"))] = 'M'
	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"good", seg, true},
		{"edited", bad, false},
		{"torn", seg[:len(seg)-7], false},
	} {
		var want string
		for _, workers := range []int{1, 2, 3, 8} {
			for _, rd := range []string{"whole", "one byte", "half"} {
				var r = bytes.NewReader(tc.data)
				var rr interface{ Read([]byte) (int, error) } = r
				switch rd {
				case "one byte":
					rr = iotest.OneByteReader(r)
				case "half":
					rr = iotest.HalfReader(r)
				}
				rep, err := audit.Verify(rr, cps, audit.Options{Workers: workers})
				if err != nil {
					t.Fatal(err)
				}
				got := fmt.Sprintf("%d %d %d %d %d %q", rep.Entries, rep.CheckpointsValid, rep.CheckpointsInvalid, rep.TornTail, rep.FirstBad, rep.Problem)
				if want == "" {
					want = got
				}
				if got != want || rep.OK() != tc.ok {
					t.Errorf("%s, %d workers, %s reads: Verify = %s, want %s", tc.name, workers, rd, got, want)
				}
			}
		}
	}
}

// bigTrail builds n entries of about 300 bytes, like bench/gentrail's.
func bigTrail(t testing.TB, n int) ([]byte, [][]byte) {
	t.Helper()
	var seg bytes.Buffer
	lines := make([][]byte, 0, n)
	prev := audit.GenesisPrev
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < n; i++ {
		e := &audit.Entry{
			Seq: int64(i), Time: t0.Add(time.Duration(i/7) * time.Second).Format(time.RFC3339),
			Actor: "ci:runner-17", Action: "gate", Subject: "manifest",
			Details: map[string]any{"ok": true, "detail": "2000 governed file(s) match governance/MANIFEST; signed by alice", "run": i, "pad": fmt.Sprintf("%0*d", rng.Intn(9), 0)},
			Prev:    prev,
		}
		line, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		start := seg.Len()
		seg.Write(line)
		seg.WriteByte('\n')
		lines = append(lines, seg.Bytes()[start:start+len(line)])
		prev = audit.ChainHex(line)
	}
	// seg may have moved while growing: cut the lines from its final bytes.
	out := seg.Bytes()
	off := 0
	for i, l := range lines {
		lines[i] = out[off : off+len(l)]
		off += len(l) + 1
	}
	return out, lines
}

var bench struct {
	once  sync.Once
	seg   []byte
	lines [][]byte
	cps   []*audit.SignedCheckpoint
}

// BenchmarkVerify measures Verify's throughput on 100,000 entries of about
// 300 bytes with one checkpoint, beside its floor: one SHA-256 pass over the
// same bytes on one core ("sha256"). Verify hashes each entry twice (chain
// and leaf) and adds an interior node per entry, so on one worker it is
// bounded by about 2.5 times the floor, and by half that on two.
func BenchmarkVerify(b *testing.B) {
	bench.once.Do(func() {
		bench.seg, bench.lines = bigTrail(b, 100_000)
		bench.cps = signed(checkpointAt(b, bench.lines, len(bench.lines)))
	})
	b.Run("sha256", func(b *testing.B) {
		b.SetBytes(int64(len(bench.seg)))
		for b.Loop() {
			sha256.Sum256(bench.seg)
		}
	})
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.SetBytes(int64(len(bench.seg)))
			b.ReportAllocs()
			for b.Loop() {
				rep, err := audit.Verify(bytes.NewReader(bench.seg), bench.cps, audit.Options{Workers: workers})
				if err != nil || !rep.OK() || rep.CheckpointsValid != 1 {
					b.Fatalf("Verify = %+v, %v", rep, err)
				}
			}
		})
	}
}
