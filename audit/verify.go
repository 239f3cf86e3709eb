package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// SignedCheckpoint is a checkpoint with the verdict on its signatures,
// filled in by the caller (signature checking needs keys this package does
// not know).
type SignedCheckpoint struct {
	*Checkpoint
	Name string // where it was found, for messages
	// SigErr is nil when the checkpoint's signatures satisfy the policy.
	SigErr error
	// Untrusted marks a checkpoint whose signatures are well-formed but no
	// longer trusted (the signer was revoked). It does not count, but it
	// does not fail verification either: later checkpoints cover the same
	// entries.
	Untrusted bool
	Signers   []string
}

// Options tunes Verify.
type Options struct {
	// Trusted is a checkpoint the verifier already holds: the trail must
	// extend it (same origin, at least its size, same root at its size).
	Trusted *Checkpoint
	// Workers hash entries in parallel; GOMAXPROCS when zero.
	Workers int
	// KeepHashes keeps the tree's stored hashes in the report for proofs.
	KeepHashes bool
}

// Report is the outcome of Verify, in the manner of `aws cloudtrail
// validate-logs`: what was valid, what was not, and the first problem.
type Report struct {
	Origin             string
	Entries            int64
	CheckpointsValid   int
	CheckpointsInvalid int
	CheckpointsIgnored int   // untrusted (revoked signer) checkpoints
	Uncovered          int64 // entries after the newest valid checkpoint
	Latest             *SignedCheckpoint
	TornTail           int64 // bytes after the last complete line
	// FirstBad is the seq of the first bad entry, or -1. Problem says why.
	FirstBad int64
	Problem  string
	// Hashes are the tree's stored hashes (with KeepHashes).
	Hashes []tlog.Hash
}

// OK reports whether verification found nothing wrong.
func (r *Report) OK() bool { return r.Problem == "" }

// hashes implements tlog.HashReader over the stored hashes in memory.
type hashes []tlog.Hash

func (h hashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(h)) {
			return nil, fmt.Errorf("hash index %d out of range", x)
		}
		out[i] = h[x]
	}
	return out, nil
}

// lineInfo is what the parallel pass learns about one line.
type lineInfo struct {
	chain [32]byte
	leaf  tlog.Hash
	seq   int64
	prev  [32]byte
	ok    bool // seq and prev fields were found and well-formed
}

var (
	seqKey  = []byte(`,"seq":`)
	prevKey = []byte(`,"prev":"`)
)

// fields finds the top-level seq and prev of a canonical entry without a JSON
// parse: in canonical form their keys follow "details", and the raw byte
// sequences `,"seq":` and `,"prev":"` cannot occur inside a JSON string, so
// the last occurrence of each is the top-level field.
func fields(line []byte) (seq int64, prev [32]byte, ok bool) {
	i := lastIndex(line, prevKey)
	if i < 0 || i+len(prevKey)+65 > len(line) || line[i+len(prevKey)+64] != '"' {
		return 0, prev, false
	}
	if _, err := hex.Decode(prev[:], line[i+len(prevKey):i+len(prevKey)+64]); err != nil {
		return 0, prev, false
	}
	j := lastIndex(line, seqKey)
	if j < 0 {
		return 0, prev, false
	}
	k := j + len(seqKey)
	n := int64(0)
	digits := 0
	for ; k < len(line) && line[k] >= '0' && line[k] <= '9'; k++ {
		if digits > 15 {
			return 0, prev, false
		}
		n = n*10 + int64(line[k]-'0')
		digits++
	}
	if digits == 0 || k >= len(line) || line[k] != ',' || (digits > 1 && line[j+len(seqKey)] == '0') {
		return 0, prev, false
	}
	return n, prev, true
}

// lastIndex is bytes.LastIndex for the short keys above, scanning back from
// the end, where the keys are, byte by byte.
func lastIndex(s, key []byte) int {
	last := key[len(key)-1]
	for i := len(s) - 1; i >= len(key)-1; i-- {
		if s[i] == last && bytes.Equal(s[i-len(key)+1:i+1], key) {
			return i - len(key) + 1
		}
	}
	return -1
}

const chunkSize = 4 << 20

// Verify checks a trail: r yields the entries as lines, checkpoints are the
// stored checkpoints (any order). It returns a report; the error is for I/O
// only.
func Verify(r io.Reader, checkpoints []*SignedCheckpoint, opt Options) (*Report, error) {
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	rep := &Report{FirstBad: -1}
	cps := append([]*SignedCheckpoint(nil), checkpoints...)
	sort.SliceStable(cps, func(i, j int) bool { return cps[i].Size < cps[j].Size })
	bySize := map[int64][]*SignedCheckpoint{}
	for _, c := range cps {
		bySize[c.Size] = append(bySize[c.Size], c)
	}
	var stored hashes
	var prevChain [32]byte // zero: the genesis prev
	var prevCP *SignedCheckpoint
	n := int64(0)
	pendingBreak := int64(-1) // entry whose prev did not match, not yet attributed
	fail := func(seq int64, format string, args ...any) {
		if rep.Problem == "" {
			rep.FirstBad = seq
			rep.Problem = fmt.Sprintf(format, args...)
		}
	}
	checkAt := func(size int64) {
		th, err := tlog.TreeHash(size, stored)
		if err != nil {
			fail(size, "cannot compute the tree at size %d: %v", size, err)
			return
		}
		if opt.Trusted != nil && opt.Trusted.Size == size && th != opt.Trusted.Root {
			fail(size-1, "the trail does not extend the trusted checkpoint: its root at size %d differs (entries were rewritten)", size)
		}
		for _, c := range bySize[size] {
			switch {
			case c.Origin != rep.Origin:
				rep.CheckpointsInvalid++
				fail(size-1, "checkpoint %s names origin %s, but the trail is %s", c.Name, c.Origin, rep.Origin)
			case c.Root != th:
				rep.CheckpointsInvalid++
				if pendingBreak < 0 { // else the chain break names the entry
					fail(size-1, "checkpoint %s does not match the entries: root at size %d differs (entry %d or an earlier one was changed)", c.Name, size, size-1)
				}
			case c.Untrusted:
				rep.CheckpointsIgnored++
			case c.SigErr != nil:
				rep.CheckpointsInvalid++
				fail(size-1, "checkpoint %s: %v", c.Name, c.SigErr)
			default:
				if prevCP != nil && prevCP.Size < size {
					// Successive checkpoints must be consistent.
					p, err := tlog.ProveTree(size, prevCP.Size, stored)
					if err == nil {
						err = tlog.CheckTree(p, size, c.Root, prevCP.Size, prevCP.Root)
					}
					if err != nil {
						rep.CheckpointsInvalid++
						fail(size-1, "checkpoint %s is not consistent with %s: %v", c.Name, prevCP.Name, err)
						continue
					}
				}
				rep.CheckpointsValid++
				rep.Latest = c
				prevCP = c
			}
		}
	}

	// Start small and grow the read size up to chunkSize while the input
	// keeps filling it: a short trail costs little, a long one streams.
	buf := make([]byte, 0, 64<<10)
	var lines [][]byte
	var infos []lineInfo
	eof := false
	for !eof {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*cap(buf), chunkSize+MaxEntrySize))
			copy(grown, buf)
			buf = grown
		}
		m, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			eof = true
		case err != nil:
			return rep, err
		}
		buf = buf[:len(buf)+m]
		// Complete lines only; keep the rest for the next round.
		last := bytes.LastIndexByte(buf, '\n')
		if last < 0 {
			if len(buf) > MaxEntrySize && rep.Problem == "" {
				fail(n, "entry %d is longer than %d bytes", n, MaxEntrySize)
				break
			}
			continue
		}
		complete := buf[:last+1]
		lines = lines[:0]
		for len(complete) > 0 {
			i := bytes.IndexByte(complete, '\n')
			lines = append(lines, complete[:i])
			complete = complete[i+1:]
		}
		if cap(infos) < len(lines) {
			infos = make([]lineInfo, len(lines))
		}
		infos = infos[:len(lines)]
		parallel(workers, len(lines), func(i int) {
			l := lines[i]
			inf := &infos[i]
			inf.chain = ChainHash(l)
			inf.leaf = LeafHash(l)
			inf.seq, inf.prev, inf.ok = fields(l)
		})
		for i, l := range lines {
			inf := &infos[i]
			if n == 0 {
				rep.Origin = Origin(l)
			}
			if pendingBreak >= 0 {
				// The chain broke between entries n-2 and n-1. If entry
				// n-1 still chains to this one, entry n-1 is intact and
				// entry n-2 was changed; otherwise entry n-1 itself was.
				if inf.ok && inf.prev == prevChain {
					fail(n-2, "entry %d was changed: its hash no longer matches the prev recorded by entry %d", n-2, n-1)
				} else {
					fail(n-1, "entry %d was changed: it does not chain to entry %d", n-1, n-2)
				}
				pendingBreak = -1
			}
			switch {
			case len(l) > MaxEntrySize:
				fail(n, "entry %d is longer than %d bytes", n, MaxEntrySize)
			case !inf.ok:
				fail(n, "entry %d is malformed", n)
			case inf.seq != n:
				fail(n, "entry %d carries seq %d (an entry was deleted, inserted or reordered)", n, inf.seq)
			case inf.prev != prevChain && rep.Problem == "":
				pendingBreak = n
			}
			prevChain = inf.chain
			add, err := tlog.StoredHashesForRecordHash(n, inf.leaf, stored)
			if err != nil {
				return rep, err
			}
			stored = append(stored, add...)
			n++
			if _, ok := bySize[n]; ok || (opt.Trusted != nil && opt.Trusted.Size == n) {
				checkAt(n)
			}
		}
		// Keep the partial line; the next chunk's lines start after it.
		rest := copy(buf, buf[last+1:])
		buf = buf[:rest]
	}
	rep.Entries = n
	if pendingBreak >= 0 {
		fail(pendingBreak-1, "entry %d was changed, or the prev that entry %d records was: they no longer chain", pendingBreak-1, pendingBreak)
	}
	if len(buf) > 0 {
		rep.TornTail = int64(len(buf))
		fail(n, "torn tail: %d bytes after entry %d do not end a line (an append was interrupted); run `groundzero audit repair`", len(buf), n-1)
	}
	for _, c := range cps {
		if c.Size > n {
			rep.CheckpointsInvalid++
			fail(n, "checkpoint %s covers %d entries, but the trail has only %d (entries were removed from the tail)", c.Name, c.Size, n)
		}
		if c.Size == 0 {
			rep.CheckpointsInvalid++
			fail(0, "checkpoint %s covers no entries", c.Name)
		}
	}
	if opt.Trusted != nil {
		switch {
		case opt.Trusted.Origin != rep.Origin && n > 0:
			fail(0, "the trail is %s, but the trusted checkpoint names %s", rep.Origin, opt.Trusted.Origin)
		case opt.Trusted.Size > n:
			fail(n, "the trail has %d entries, but the trusted checkpoint covers %d: entries were removed from the tail", n, opt.Trusted.Size)
		}
	}
	if rep.Latest != nil {
		rep.Uncovered = n - rep.Latest.Size
	} else {
		rep.Uncovered = n
	}
	if opt.KeepHashes {
		rep.Hashes = stored
	}
	return rep, nil
}

// parallel runs f(0..n-1) on up to workers goroutines, in contiguous ranges.
func parallel(workers, n int, f func(int)) {
	if workers <= 1 || n < 256 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	per := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				f(i)
			}
		}(lo, hi)
	}
	wg.Wait()
}

// ErrNotCovered reports a proof request past the checkpoint.
var ErrNotCovered = errors.New("entry is not covered by the checkpoint")

// Prove returns the inclusion proof of entry seq in the tree of size size,
// from the stored hashes of a verified trail.
func Prove(stored []tlog.Hash, seq, size int64) (tlog.RecordProof, error) {
	if seq < 0 || seq >= size {
		return nil, ErrNotCovered
	}
	return tlog.ProveRecord(size, seq, hashes(stored))
}

// CheckInclusion verifies that entry (its bytes) is entry seq of the tree the
// checkpoint commits to.
func CheckInclusion(entry []byte, seq int64, cp *Checkpoint, proof tlog.RecordProof) error {
	if seq < 0 || seq >= cp.Size {
		return ErrNotCovered
	}
	return tlog.CheckRecord(proof, cp.Size, cp.Root, seq, LeafHash(entry))
}

// ProveConsistency returns the proof that the tree of size newSize extends the
// tree of size oldSize.
func ProveConsistency(stored []tlog.Hash, oldSize, newSize int64) (tlog.TreeProof, error) {
	return tlog.ProveTree(newSize, oldSize, hashes(stored))
}

// CheckConsistency verifies that newer extends older.
func CheckConsistency(older, newer *Checkpoint, proof tlog.TreeProof) error {
	if older.Origin != newer.Origin {
		return errors.New("checkpoints are of different trails")
	}
	return tlog.CheckTree(proof, newer.Size, newer.Root, older.Size, older.Root)
}
