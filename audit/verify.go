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
	// Ignored, when not empty, says why the checkpoint's signatures do not
	// vouch for it: an unknown key, a bad signature, no signature, a signer
	// revoked or outside their window, a role the policy does not allow. An
	// ignored checkpoint neither breaks nor satisfies verification (anyone
	// who can write to the store can plant one, T35): Verify only lists it.
	Ignored string
	Signers []string // who vouched for it, when it is trusted
}

// IgnoredCheckpoint names a checkpoint that Verify set aside, and why.
type IgnoredCheckpoint struct {
	Name   string
	Reason string
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
	// Ignored lists the checkpoints whose signatures do not vouch for them,
	// in the order given; they were not checked against the entries.
	Ignored   []IgnoredCheckpoint
	Uncovered int64 // entries after the newest valid checkpoint
	Latest    *SignedCheckpoint
	TornTail  int64 // bytes after the last complete line
	// FirstBad is the seq of the first bad entry, or -1. Problem says why.
	FirstBad int64
	Problem  string
	// Hashes are the tree's stored hashes (with KeepHashes).
	Hashes *Hashes
}

// OK reports whether verification found nothing wrong.
func (r *Report) OK() bool { return r.Problem == "" }

// Unanchored reports a trail that has entries but no valid checkpoint: the
// entries are self-consistent, but nobody trusted vouches for them, so a
// rewritten or truncated trail would look the same. A trail that is OK and
// unanchored proves nothing on its own.
func (r *Report) Unanchored() bool { return r.Entries > 0 && r.Latest == nil }

// Hashes holds a tree's stored hashes (tlog's layout) in fixed-size blocks,
// so that a million-entry tree grows without copying. It implements
// tlog.HashReader.
type Hashes struct {
	blocks [][]tlog.Hash
	n      int64
}

const hashBlock = 1 << 16

// Len returns the number of stored hashes.
func (h *Hashes) Len() int64 { return h.n }

func (h *Hashes) append(add []tlog.Hash) {
	for _, x := range add {
		if h.n%hashBlock == 0 {
			// The first block grows as needed (a small trail stays
			// small); later blocks are allocated whole.
			c := hashBlock
			if h.n == 0 {
				c = 256
			}
			h.blocks = append(h.blocks, make([]tlog.Hash, 0, c))
		}
		b := &h.blocks[len(h.blocks)-1]
		*b = append(*b, x)
		h.n++
	}
}

// ReadHashes implements tlog.HashReader.
func (h *Hashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= h.n {
			return nil, fmt.Errorf("hash index %d out of range", x)
		}
		out[i] = h.blocks[x/hashBlock][x%hashBlock]
	}
	return out, nil
}

// lineInfo is what the parallel pass learns about one line.
type lineInfo struct {
	chain [32]byte
	leaf  tlog.Hash
	seq   int64
	prev  [32]byte
	time  [timeLen]byte
	ok    bool // seq, prev and time fields were found and well-formed
}

var (
	seqKey  = []byte(`,"seq":`)
	prevKey = []byte(`,"prev":"`)
	timeKey = []byte(`,"time":"`)
)

// timeLen is the length of an entry's time: RFC 3339, UTC, whole seconds,
// "2006-01-02T15:04:05Z". At a fixed width such times order as their bytes
// do.
const timeLen = len("2006-01-02T15:04:05Z")

// fields finds the top-level seq, prev and time of a canonical entry without
// a JSON parse, and sets inf.ok when all three are well-formed. In canonical
// form the keys of seq and prev follow "details", and the raw byte sequences
// `,"seq":` and `,"prev":"` cannot occur inside a JSON string, so the last
// occurrence of each is the top-level field; "time" is the last key, so the
// line ends with it.
func fields(line []byte, inf *lineInfo) {
	t := entryTime(line)
	if t == nil {
		return
	}
	copy(inf.time[:], t)
	// In canonical order "prev" comes right before "seq".
	j := lastIndex(line, seqKey)
	i := j - 64 - 1 - len(prevKey)
	if j < 0 || i < 0 || line[j-1] != '"' || !bytes.Equal(line[i:i+len(prevKey)], prevKey) {
		return
	}
	if _, err := hex.Decode(inf.prev[:], line[i+len(prevKey):j-1]); err != nil {
		return
	}
	k := j + len(seqKey)
	n := int64(0)
	digits := 0
	for ; k < len(line) && line[k] >= '0' && line[k] <= '9'; k++ {
		if digits > 15 {
			return
		}
		n = n*10 + int64(line[k]-'0')
		digits++
	}
	if digits == 0 || k >= len(line) || line[k] != ',' || (digits > 1 && line[j+len(seqKey)] == '0') {
		return
	}
	inf.seq, inf.ok = n, true
}

// entryTime returns the time at the end of a canonical entry,
// `,"time":"2006-01-02T15:04:05Z"}`, or nil when the line does not end so.
func entryTime(line []byte) []byte {
	const tail = len(`,"time":"`) + timeLen + len(`"}`)
	if len(line) < tail {
		return nil
	}
	t := line[len(line)-tail:]
	if !bytes.Equal(t[:len(timeKey)], timeKey) || t[tail-2] != '"' || t[tail-1] != '}' {
		return nil
	}
	t = t[len(timeKey) : len(timeKey)+timeLen]
	if t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':' || t[19] != 'Z' {
		return nil
	}
	for _, i := range timeDigits {
		if t[i]-'0' > 9 {
			return nil
		}
	}
	return t
}

// timeDigits are the positions of the digits in an entry's time.
var timeDigits = [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18}

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
	var cps []*SignedCheckpoint
	for _, c := range checkpoints {
		if c.Ignored != "" {
			// Not vouched for: never compared with the entries, so a
			// planted checkpoint can neither break nor satisfy the trail.
			rep.Ignored = append(rep.Ignored, IgnoredCheckpoint{Name: c.Name, Reason: c.Ignored})
			continue
		}
		cps = append(cps, c)
	}
	sort.SliceStable(cps, func(i, j int) bool { return cps[i].Size < cps[j].Size })
	bySize := map[int64][]*SignedCheckpoint{}
	for _, c := range cps {
		bySize[c.Size] = append(bySize[c.Size], c)
	}
	var prevTime [timeLen]byte // of the previous entry
	stored := &Hashes{}
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

	chunks := make(chan *chunk, 2)
	errc := make(chan error, 1)
	quit := make(chan struct{})
	defer close(quit)
	go produce(r, workers, chunks, errc, quit)
	var tail []byte
	for c := range chunks {
		<-c.ready
		if c.tooLong {
			fail(n, "entry %d is longer than %d bytes", n, MaxEntrySize)
			continue
		}
		tail = c.tail
		for i, l := range c.lines {
			inf := &c.infos[i]
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
			case n > 0 && bytes.Compare(inf.time[:], prevTime[:]) < 0:
				fail(n, "entry %d is dated before entry %d (%s < %s): entries were reordered or rewritten", n, n-1, inf.time[:], prevTime[:])
			}
			prevTime = inf.time
			prevChain = inf.chain
			add, err := tlog.StoredHashesForRecordHash(n, inf.leaf, stored)
			if err != nil {
				return rep, err
			}
			stored.append(add)
			n++
			if _, ok := bySize[n]; ok || (opt.Trusted != nil && opt.Trusted.Size == n) {
				checkAt(n)
			}
		}
	}
	select {
	case err := <-errc:
		return rep, err
	default:
	}
	rep.Entries = n
	buf := tail
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

// chunk is a run of complete lines read from the trail, hashed in the
// background while the previous chunk is checked in order.
type chunk struct {
	lines   [][]byte
	infos   []lineInfo
	ready   chan struct{} // closed when infos are filled
	tail    []byte        // at the end of input: bytes after the last newline
	tooLong bool          // a line longer than MaxEntrySize without a newline
}

// produce reads r in growing chunks of complete lines and starts hashing each;
// it sends them in order and closes out at the end.
func produce(r io.Reader, workers int, out chan<- *chunk, errc chan<- error, quit <-chan struct{}) {
	defer close(out)
	send := func(c *chunk) bool {
		select {
		case out <- c:
			return true
		case <-quit:
			return false
		}
	}
	size := 64 << 10 // start small: a short trail costs little
	var carry []byte
	for {
		buf := make([]byte, len(carry), max(size, len(carry)+64<<10))
		copy(buf, carry)
		m, err := io.ReadFull(r, buf[len(carry):cap(buf)])
		eof := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !eof {
			errc <- err
			return
		}
		buf = buf[:len(carry)+m]
		last := bytes.LastIndexByte(buf, '\n')
		if last < 0 {
			switch {
			case eof:
				c := &chunk{tail: buf, ready: make(chan struct{})}
				close(c.ready)
				send(c)
				return
			case len(buf) > MaxEntrySize:
				c := &chunk{tooLong: true, ready: make(chan struct{})}
				close(c.ready)
				send(c)
				return
			}
			carry = buf
			size *= 2
			continue
		}
		carry = append([]byte(nil), buf[last+1:]...)
		complete := buf[:last+1]
		c := &chunk{ready: make(chan struct{})}
		for len(complete) > 0 {
			i := bytes.IndexByte(complete, '\n')
			c.lines = append(c.lines, complete[:i])
			complete = complete[i+1:]
		}
		c.infos = make([]lineInfo, len(c.lines))
		go func() {
			parallel(workers, len(c.lines), func(i int) {
				l := c.lines[i]
				inf := &c.infos[i]
				inf.chain = ChainHash(l)
				inf.leaf = LeafHash(l)
				fields(l, inf)
			})
			close(c.ready)
		}()
		if !send(c) {
			return
		}
		if size < chunkSize {
			size *= 2
		}
		if eof {
			t := &chunk{tail: carry, ready: make(chan struct{})}
			close(t.ready)
			send(t)
			return
		}
	}
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
func Prove(stored tlog.HashReader, seq, size int64) (tlog.RecordProof, error) {
	if seq < 0 || seq >= size {
		return nil, ErrNotCovered
	}
	return tlog.ProveRecord(size, seq, stored)
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
func ProveConsistency(stored tlog.HashReader, oldSize, newSize int64) (tlog.TreeProof, error) {
	return tlog.ProveTree(newSize, oldSize, stored)
}

// CheckConsistency verifies that newer extends older.
func CheckConsistency(older, newer *Checkpoint, proof tlog.TreeProof) error {
	if older.Origin != newer.Origin {
		return errors.New("checkpoints are of different trails")
	}
	return tlog.CheckTree(proof, newer.Size, newer.Root, older.Size, older.Root)
}
