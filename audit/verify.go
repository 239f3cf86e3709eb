package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"slices"
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
	edge   [64]tlog.Hash // the newest complete subtree at each level
}

const hashBlock = 1 << 16

// Len returns the number of stored hashes.
func (h *Hashes) Len() int64 { return h.n }

func (h *Hashes) push(x tlog.Hash) {
	if h.n%hashBlock == 0 {
		// The first block grows as needed (a small trail stays small);
		// later blocks are allocated whole.
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

// appendLeaf stores the hashes that leaf n adds to the tree, as
// tlog.StoredHashesForRecordHash(n, leaf, h) returns them: the leaf hash,
// then the hash of each subtree that leaf n completes, lowest first. The
// left half of each such subtree is the newest subtree completed at its
// level, which edge keeps, so no stored hash is read back.
func (h *Hashes) appendLeaf(n int64, leaf tlog.Hash) {
	h.push(leaf)
	x := leaf
	level := 0
	for ; n&1 == 1; n >>= 1 {
		x = tlog.NodeHash(h.edge[level], x)
		h.push(x)
		level++
	}
	h.edge[level] = x
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
	start int // the line is the piece's buf[start:end]
	end   int
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

// EntryFields reads an entry line's seq, prev (hex) and time the way Verify
// does, without a JSON parse; ok is false when they are not all there and
// well-formed.
func EntryFields(line []byte) (seq int64, prev string, time string, ok bool) {
	var inf lineInfo
	fields(line, &inf)
	if !inf.ok {
		return 0, "", "", false
	}
	return inf.seq, hex.EncodeToString(inf.prev[:]), string(inf.time[:]), true
}

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
	j := seqSearch.lastIndex(line)
	i := j - 64 - 1 - len(prevKey)
	if j < 0 || i < 0 || line[j-1] != '"' || !bytes.Equal(line[i:i+len(prevKey)], prevKey) {
		return
	}
	if !decodePrev(&inf.prev, line[i+len(prevKey):j-1]) {
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

// backward finds the last occurrence of a short key, scanning back from the
// end, where the keys are. It skips ahead as Horspool's search does: a byte
// that cannot be the key's first byte moves the window by up to the key's
// length.
type backward struct {
	key   string
	shift [256]uint8
}

func newBackward(key string) *backward {
	b := &backward{key: key}
	for c := range b.shift {
		b.shift[c] = uint8(len(key))
	}
	// The next window to try puts the byte just examined, the first of
	// the window that failed, under the nearest equal byte of the key
	// after its first.
	for k := len(key) - 1; k >= 1; k-- {
		b.shift[key[k]] = uint8(k)
	}
	return b
}

// lastIndex is bytes.LastIndex(s, key).
func (b *backward) lastIndex(s []byte) int {
	for p := len(s) - len(b.key); p >= 0; p -= int(b.shift[s[p]]) {
		if s[p] == b.key[0] && string(s[p:p+len(b.key)]) == b.key {
			return p
		}
	}
	return -1
}

var seqSearch = newBackward(string(seqKey))

// decodePrev is hex.Decode of the 64 hex digits of a prev, accepting what
// hex.Decode accepts.
func decodePrev(dst *[32]byte, src []byte) bool {
	var bad byte
	for i := range dst {
		a, b := unhex[src[2*i]], unhex[src[2*i+1]]
		bad |= a | b
		dst[i] = a<<4 | b
	}
	return bad < 16
}

// unhex maps a hex digit to its value and anything else to 0xff.
var unhex = func() (t [256]byte) {
	for c := range t {
		t[c] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	for i, c := range "ABCDEF" {
		t[c] = byte(10 + i)
	}
	return t
}()

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
	// The sizes at which to check the tree, in order.
	var checks []int64
	for size := range bySize {
		checks = append(checks, size)
	}
	if opt.Trusted != nil && bySize[opt.Trusted.Size] == nil {
		checks = append(checks, opt.Trusted.Size)
	}
	slices.Sort(checks)
	for len(checks) > 0 && checks[0] <= 0 {
		checks = checks[1:]
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

	p := startPipeline(r, workers)
	defer p.stop()
	tornTail := 0
	for c := range p.out {
		c.wg.Wait()
		if c.tooLong {
			fail(n, "entry %d is longer than %d bytes", n, MaxEntrySize)
			continue
		}
		tornTail = c.tail
		for pi := range c.pieces {
			pc := &c.pieces[pi]
			for i := range pc.infos {
				inf := &pc.infos[i]
				if n == 0 {
					rep.Origin = Origin(pc.buf[inf.start:inf.end])
				}
				if pendingBreak >= 0 {
					// The chain broke between entries n-2 and n-1. If
					// entry n-1 still chains to this one, entry n-1 is
					// intact and entry n-2 was changed; otherwise entry
					// n-1 itself was.
					if inf.ok && inf.prev == prevChain {
						fail(n-2, "entry %d was changed: its hash no longer matches the prev recorded by entry %d", n-2, n-1)
					} else {
						fail(n-1, "entry %d was changed: it does not chain to entry %d", n-1, n-2)
					}
					pendingBreak = -1
				}
				switch {
				case inf.end-inf.start > MaxEntrySize:
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
				stored.appendLeaf(n, inf.leaf)
				n++
				if len(checks) > 0 && checks[0] == n {
					checkAt(n)
					checks = checks[1:]
				}
			}
		}
		p.release(c)
	}
	select {
	case err := <-p.errc:
		return rep, err
	default:
	}
	rep.Entries = n
	if pendingBreak >= 0 {
		fail(pendingBreak-1, "entry %d was changed, or the prev that entry %d records was: they no longer chain", pendingBreak-1, pendingBreak)
	}
	if tornTail > 0 {
		rep.TornTail = int64(tornTail)
		fail(n, "torn tail: %d bytes after entry %d do not end a line (an append was interrupted); run `groundzero audit repair`", tornTail, n-1)
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

// Verify reads the entries in chunks of complete lines and cuts each chunk
// into pieces, which a pool of workers hashes while the next chunk is read
// and the previous one is checked in order. Chunks are reused, so a trail of
// any length is verified in a few chunks of memory.
const (
	chunkSize = 4 << 20
	pieceSize = 256 << 10
	maxChunks = 4 // being read, hashed and checked
)

// chunk is a run of complete lines read from the trail.
type chunk struct {
	buf     []byte
	pieces  []piece
	wg      sync.WaitGroup // done when every piece is hashed
	tail    int            // at the end of input: bytes after the last newline
	tooLong bool           // a line longer than MaxEntrySize without a newline
}

// piece is the part of a chunk one worker hashes: complete lines, and what
// the worker learns about each.
type piece struct {
	buf   []byte
	infos []lineInfo
	wg    *sync.WaitGroup
}

// pipeline connects the reader, the workers and Verify.
type pipeline struct {
	out  chan *chunk // in order
	work chan *piece
	free chan *chunk // released chunks, for reuse
	errc chan error
	quit chan struct{}
	made int // chunks in existence, counted by the reader
}

func startPipeline(r io.Reader, workers int) *pipeline {
	p := &pipeline{
		out:  make(chan *chunk, maxChunks),
		work: make(chan *piece, 64),
		free: make(chan *chunk, maxChunks),
		errc: make(chan error, 1),
		quit: make(chan struct{}),
	}
	for range workers {
		go p.hash()
	}
	go p.read(r)
	return p
}

// stop ends the reader and the workers once Verify no longer reads.
func (p *pipeline) stop() { close(p.quit) }

// release hands a checked chunk back to the reader.
func (p *pipeline) release(c *chunk) {
	select {
	case p.free <- c:
	default:
	}
}

// chunk returns a chunk whose buffer holds n bytes, reusing a released one
// when it is large enough.
func (p *pipeline) chunk(n int) (*chunk, bool) {
	for {
		var c *chunk
		if p.made < maxChunks {
			select {
			case c = <-p.free:
			default:
				p.made++
				return &chunk{buf: make([]byte, n)}, true
			}
		} else {
			select {
			case c = <-p.free:
			case <-p.quit:
				return nil, false
			}
		}
		if cap(c.buf) >= n {
			c.buf = c.buf[:n]
			return c, true
		}
		p.made-- // smaller than the chunks read now: let it go
	}
}

// send passes a chunk and its pieces on; false when Verify has stopped.
func (p *pipeline) send(c *chunk) bool {
	c.wg.Add(len(c.pieces))
	for i := range c.pieces {
		select {
		case p.work <- &c.pieces[i]:
		case <-p.quit:
			return false
		}
	}
	select {
	case p.out <- c:
		return true
	case <-p.quit:
		return false
	}
}

// read reads r in growing chunks of complete lines, sends them in order and
// closes out at the end.
func (p *pipeline) read(r io.Reader) {
	defer close(p.out)
	defer close(p.work)
	end := func(tail int, tooLong bool) {
		p.send(&chunk{tail: tail, tooLong: tooLong})
	}
	size := 64 << 10 // start small: a short trail costs little
	var carry []byte
	for {
		c, ok := p.chunk(max(size, len(carry)+64<<10))
		if !ok {
			return
		}
		buf := c.buf
		copy(buf, carry)
		m, err := io.ReadFull(r, buf[len(carry):])
		eof := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !eof {
			p.errc <- err
			return
		}
		buf = buf[:len(carry)+m]
		last := bytes.LastIndexByte(buf, '\n')
		if last < 0 {
			switch {
			case eof:
				end(len(buf), false)
				return
			case len(buf) > MaxEntrySize:
				end(0, true)
				return
			}
			carry = append(carry[:0], buf...)
			p.release(c)
			size *= 2
			continue
		}
		carry = append(carry[:0], buf[last+1:]...)
		c.split(buf[:last+1])
		if !p.send(c) {
			return
		}
		if size < chunkSize {
			size *= 2
		}
		if eof {
			end(len(carry), false)
			return
		}
	}
}

// split cuts lines, which ends with a newline, into pieces of about
// pieceSize.
func (c *chunk) split(lines []byte) {
	k := 0
	for len(lines) > 0 {
		n := len(lines)
		if n > pieceSize {
			n = pieceSize + bytes.IndexByte(lines[pieceSize:], '\n') + 1
		}
		if k == len(c.pieces) {
			c.pieces = append(c.pieces, piece{})
		}
		c.pieces[k].buf = lines[:n]
		c.pieces[k].wg = &c.wg
		k++
		lines = lines[n:]
	}
	c.pieces = c.pieces[:k]
}

// hash is a worker: it hashes pieces until the reader is done.
func (p *pipeline) hash() {
	d := sha256.New()
	for pc := range p.work {
		select {
		case <-p.quit:
		default:
			pc.hash(d)
		}
		pc.wg.Done()
	}
}

var leafPrefix = []byte{0x00}

// hash fills in the infos of the piece's lines: chain hash, leaf hash (as
// LeafHash, with d reused) and the fields Verify checks.
func (pc *piece) hash(d hash.Hash) {
	b := pc.buf
	if want := len(b) / 256; cap(pc.infos) < want {
		pc.infos = make([]lineInfo, 0, want) // entries are about 300 bytes
	}
	pc.infos = pc.infos[:0]
	for start := 0; start < len(b); {
		end := start + bytes.IndexByte(b[start:], '\n')
		l := b[start:end]
		pc.infos = append(pc.infos, lineInfo{start: start, end: end})
		inf := &pc.infos[len(pc.infos)-1]
		inf.chain = sha256.Sum256(l)
		d.Reset()
		d.Write(leafPrefix)
		d.Write(l)
		d.Sum(inf.leaf[:0])
		fields(l, inf)
		start = end + 1
	}
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
