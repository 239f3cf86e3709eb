package anchor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/trail"
	"github.com/groundzero/groundzero/record"
)

// StateKind names the state record.
var StateKind = record.Kind("audit-state")

// State is what the trail up to a checkpoint says, in the form a command
// needs it: the frontier to extend the Merkle tree with, the chain hash and
// time to extend the chain from, and the anchor's index. A checkpoint
// commits to its state by hash (its "state" line), so a reader that trusts
// the checkpoint's signature need not read the entries the state sums up,
// and a writer extends the tree without re-reading them.
//
// Encoded as a canonical record (package record):
//
//	{"consumed":[{"expires":"…","nonce":"…","seq":9}],
//	 "frontier":["<base64 hash>",…],"kind":"groundzero.audit-state/v1",
//	 "last":"<hex chain hash of entry size-1>","last_time":"…",
//	 "manifest":{"seq":7,"sha256":"…","time":"…","version":3},
//	 "origin":"groundzero.audit/v1/…","registry":[…],
//	 "registry_newest":{…},"size":12}
//
// registry holds the first record of each registry version and hash, for
// witness times; registry_newest and manifest the newest records, as the
// full scan picks them; consumed the nonces whose intents have not expired
// (a nonce recorded without its expiry is kept for good).
type State struct {
	Kind           string   `json:"kind"`
	Origin         string   `json:"origin"`
	Size           int64    `json:"size"`
	Last           string   `json:"last"`
	LastTime       string   `json:"last_time"`
	Frontier       []string `json:"frontier"`
	Registry       []Record `json:"registry"`
	RegistryNewest *Record  `json:"registry_newest"`
	Manifest       *Record  `json:"manifest"`
	Consumed       []Nonce  `json:"consumed"`
	// Locks holds the newest backend lock of each environment, Revoked
	// every revoked lock; both are left out while there are none.
	Locks   []LockRecord `json:"locks,omitempty"`
	Revoked []LockRecord `json:"revoked,omitempty"`
	// Windows are the break-glass windows, left out while there are none.
	Windows []Window `json:"breakglass,omitempty"`

	rng *compact.Range // the frontier, decoded
}

// Record is a version recorded as in force, as a state stores it.
type Record struct {
	Version int    `json:"version"`
	SHA256  string `json:"sha256"`
	Seq     int64  `json:"seq"`
	Time    string `json:"time"`
}

func (r *Record) seen() *Seen {
	if r == nil {
		return nil
	}
	t, _ := time.Parse(time.RFC3339, r.Time)
	return &Seen{Version: r.Version, SHA256: r.SHA256, Seq: r.Seq, Time: t}
}

func recordOf(s Seen) *Record {
	return &Record{Version: s.Version, SHA256: s.SHA256, Seq: s.Seq, Time: s.Time.UTC().Format(time.RFC3339)}
}

// LockRecord is a backend lock (or its revocation) as a state stores it.
type LockRecord struct {
	Env     string `json:"env"`
	Version int    `json:"version"`
	SHA256  string `json:"sha256"`
	Seq     int64  `json:"seq"`
}

// entry rebuilds the trail entry the record sums up, for the index.
func (l LockRecord) entry(action string) *audit.Entry {
	return &audit.Entry{Action: action, Seq: l.Seq, Details: map[string]any{"env": l.Env, "version": float64(l.Version), "sha256": l.SHA256}}
}

// Nonce is a consumed intent nonce.
type Nonce struct {
	Nonce   string `json:"nonce"`
	Seq     int64  `json:"seq"`
	Expires string `json:"expires"` // "" when the entry did not say
}

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// NewState is the state of an empty trail.
func NewState() *State {
	return &State{Kind: StateKind, Last: audit.GenesisPrev, Frontier: []string{}, Registry: []Record{}, Consumed: []Nonce{},
		rng: rangeFactory.NewEmptyRange(0)}
}

// Marshal encodes the state canonically.
func (st *State) Marshal() ([]byte, error) {
	// Empty lists are [] in the record, never null.
	st.Frontier = make([]string, 0, len(st.rng.Hashes()))
	if st.Registry == nil {
		st.Registry = []Record{}
	}
	if st.Consumed == nil {
		st.Consumed = []Nonce{}
	}
	for _, h := range st.rng.Hashes() {
		st.Frontier = append(st.Frontier, base64.StdEncoding.EncodeToString(h))
	}
	return record.Marshal(st)
}

// Hash is the hex SHA-256 a checkpoint's state line carries.
func (st *State) Hash() (string, error) {
	b, err := st.Marshal()
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// Root is the Merkle tree hash of the trail the state sums up.
func (st *State) Root() ([]byte, error) {
	if st.Size == 0 {
		return nil, errors.New("an empty trail has no root")
	}
	return st.rng.GetRootHash(nil)
}

// clone copies the state for extending.
func (st *State) clone() *State {
	c := *st
	c.Frontier = append([]string(nil), st.Frontier...)
	c.Registry = append([]Record(nil), st.Registry...)
	c.Consumed = append([]Nonce(nil), st.Consumed...)
	c.Locks = append([]LockRecord(nil), st.Locks...)
	c.Revoked = append([]LockRecord(nil), st.Revoked...)
	c.Windows = append([]Window(nil), st.Windows...)
	hashes := st.rng.Hashes()
	c.rng, _ = rangeFactory.NewRange(0, uint64(st.Size), append([][]byte(nil), hashes...))
	return &c
}

// parseState decodes a state, refusing anything malformed.
func parseState(raw json.RawMessage) (*State, error) {
	var st State
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("state: %v", err)
	}
	if st.Kind != StateKind || st.Size < 1 || len(st.Last) != 64 {
		return nil, errors.New("state: not a " + StateKind + " record of a trail with entries")
	}
	if _, err := time.Parse(time.RFC3339, st.LastTime); err != nil {
		return nil, errors.New("state: bad last_time")
	}
	hashes := make([][]byte, len(st.Frontier))
	for i, f := range st.Frontier {
		h, err := base64.StdEncoding.DecodeString(f)
		if err != nil || len(h) != sha256.Size {
			return nil, errors.New("state: bad frontier hash")
		}
		hashes[i] = h
	}
	rng, err := rangeFactory.NewRange(0, uint64(st.Size), hashes)
	if err != nil {
		return nil, fmt.Errorf("state: frontier: %v", err)
	}
	st.rng = rng
	if st.Registry == nil {
		st.Registry = []Record{}
	}
	if st.Consumed == nil {
		st.Consumed = []Nonce{}
	}
	return &st, nil
}

// ChainError reports entries that do not extend the trail's chain.
type ChainError struct {
	Seq    int64
	Reason string
}

func (e *ChainError) Error() string { return fmt.Sprintf("entry %d %s", e.Seq, e.Reason) }

// extend adds the next entry line to the state. It checks what Verify
// checks of every line (seq, prev, time, without a JSON parse) and parses
// in full only the entries the anchor reads, which it returns (nil for the
// others).
func (st *State) extend(line []byte) (*audit.Entry, error) {
	seq, prev, tm, ok := audit.EntryFields(line)
	switch {
	case !ok || len(line) > audit.MaxEntrySize:
		return nil, &ChainError{st.Size, "is malformed"}
	case seq != st.Size:
		return nil, &ChainError{st.Size, fmt.Sprintf("has seq %d", seq)}
	case prev != st.Last:
		return nil, &ChainError{st.Size, "does not link to the entry before it (prev differs)"}
	case tm < st.LastTime:
		return nil, &ChainError{st.Size, "is older than the entry before it"}
	}
	var e *audit.Entry
	if wanted(line) {
		var err error
		if e, err = audit.ParseEntry(line); err != nil {
			return nil, &ChainError{st.Size, "is malformed: " + err.Error()}
		}
	}
	if st.Size == 0 {
		st.Origin = audit.Origin(line)
	}
	leaf := audit.LeafHash(line)
	if err := st.rng.Append(leaf[:], nil); err != nil {
		return nil, err
	}
	st.Last, st.LastTime = audit.ChainHex(line), tm
	st.Size++
	if e != nil {
		st.note(e)
	}
	return e, nil
}

// note indexes an entry the anchor reads.
func (st *State) note(e *audit.Entry) {
	s, ok := seenOf(e)
	switch {
	case ok && e.Action == RegistrySeen:
		if !st.hasRegistry(s) {
			st.Registry = append(st.Registry, *recordOf(s))
		}
		if st.RegistryNewest == nil || s.Version >= st.RegistryNewest.Version {
			st.RegistryNewest = recordOf(s)
		}
	case ok && e.Action == ManifestSeen:
		if st.Manifest == nil || s.Version >= st.Manifest.Version {
			st.Manifest = recordOf(s)
		}
	case e.Action == LockRecorded || e.Action == LockRevoked:
		l, ok := lockOf(e)
		if !ok {
			return
		}
		rec := LockRecord{Env: l.Env, Version: l.Version, SHA256: l.SHA256, Seq: l.Seq}
		if e.Action == LockRevoked {
			for _, r := range st.Revoked {
				if r.SHA256 == rec.SHA256 {
					return
				}
			}
			st.Revoked = append(st.Revoked, rec)
			return
		}
		for i, have := range st.Locks {
			if have.Env == rec.Env {
				if rec.Version >= have.Version {
					st.Locks[i] = rec
				}
				return
			}
		}
		st.Locks = append(st.Locks, rec)
	case e.Action == BreakGlassActive || e.Action == BreakGlassClosed || e.Action == BreakGlassLapsed:
		if ws, ok := noteWindow(st.Windows, e); ok {
			st.Windows = ws
		}
	case e.Action == Consumed:
		if n, ok := e.Details["nonce"].(string); ok {
			for _, c := range st.Consumed {
				if c.Nonce == n {
					return
				}
			}
			exp, _ := e.Details["expires"].(string)
			if t, err := time.Parse(time.RFC3339, exp); err != nil || t.UTC().Format(time.RFC3339) != exp {
				exp = ""
			}
			st.Consumed = append(st.Consumed, Nonce{Nonce: n, Seq: e.Seq, Expires: exp})
		}
	}
}

// differs compares the index of a state with one computed from the entries
// it sums up (which keeps every nonce), and names the first difference.
// Nonces may be missing from the state only when their intents had expired
// at the checkpoint's time.
func (st *State) differs(computed *State, at time.Time) string {
	eq := func(a, b *Record) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }
	switch {
	case !eq(st.RegistryNewest, computed.RegistryNewest):
		return "the newest registry version differs"
	case !eq(st.Manifest, computed.Manifest):
		return "the newest governed-state version differs"
	case len(st.Registry) != len(computed.Registry):
		return "the registry versions differ"
	case !slices.Equal(st.Locks, computed.Locks):
		return "the backend locks differ"
	case !slices.Equal(st.Revoked, computed.Revoked):
		return "the revoked backend locks differ"
	case !slices.Equal(st.Windows, computed.Windows):
		return "the break-glass windows differ"
	}
	for i := range st.Registry {
		if st.Registry[i] != computed.Registry[i] {
			return "the registry versions differ"
		}
	}
	have := map[Nonce]bool{}
	for _, c := range st.Consumed {
		have[c] = true
	}
	pruned := computed.clone()
	pruned.prune(at)
	for _, c := range pruned.Consumed {
		if !have[c] {
			return fmt.Sprintf("consumed nonce of entry %d is missing", c.Seq)
		}
		delete(have, c)
	}
	for c := range have {
		return fmt.Sprintf("it lists a nonce as consumed by entry %d, which does not consume it", c.Seq)
	}
	return ""
}

// hasRegistry reports whether the registry version with s's hash was
// recorded already.
func (st *State) hasRegistry(s Seen) bool {
	for _, r := range st.Registry {
		if r.Version == s.Version && r.SHA256 == s.SHA256 {
			return true
		}
	}
	return false
}

// prune drops the nonces of intents that expired before now by more than
// the clock skew a command tolerates: such an intent is refused as expired
// by any clock that the trail accepts, so its nonce need not be kept.
func (st *State) prune(now time.Time) {
	kept := st.Consumed[:0]
	for _, c := range st.Consumed {
		if t, err := time.Parse(time.RFC3339, c.Expires); err == nil && !now.Before(t.Add(2*signature.ClockSkew)) {
			continue
		}
		kept = append(kept, c)
	}
	st.Consumed = kept
}

// TruncatedError reports a trail with fewer entries than a trusted state
// sums up (T11).
type TruncatedError struct{ Size int64 }

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("entry %d, the last that the trusted checkpoint of %d covers, is missing: entries were removed from the tail", e.Size-1, e.Size)
}

// openAfter opens the entries after those the state sums up. It reads the
// state's last entry too, which must be there and be the one the state
// names: a trail cut short or rewritten at its end is found at once.
// byKey reads one entry at a time by key, with no listing and no check of
// older versions: for a writer, after the anchor read checked them.
func (st *State) openAfter(ctx context.Context, s trail.Store, byKey bool) (*bufio.Reader, io.Closer, error) {
	first := max(st.Size-1, 0)
	var r io.ReadCloser
	var err error
	if byKey {
		r, err = entriesByKey(ctx, s, first)
	} else {
		r, err = s.EntriesFrom(ctx, first)
	}
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(r, 1<<20)
	if st.Size == 0 {
		return br, r, nil
	}
	line, err := br.ReadSlice('\n')
	switch {
	case err == io.EOF:
		r.Close()
		return nil, nil, &TruncatedError{Size: st.Size}
	case err != nil:
		r.Close()
		return nil, nil, &ChainError{first, fmt.Sprintf("cannot be read: %v", err)}
	case audit.ChainHex(line[:len(line)-1]) != st.Last:
		r.Close()
		return nil, nil, &ChainError{first, "is not the entry the trusted checkpoint's state names (it was changed)"}
	}
	return br, r, nil
}

// entriesByKey reads the entries from first on, one at a time, until one is
// missing.
func entriesByKey(ctx context.Context, s trail.Store, first int64) (io.ReadCloser, error) {
	var buf bytes.Buffer
	for seq := first; ; seq++ {
		line, err := s.Entry(ctx, seq)
		var missing *trail.EntryMissingError
		if errors.As(err, &missing) {
			return io.NopCloser(&buf), nil
		}
		if err != nil {
			return nil, err
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
}

// extendFrom reads entry lines from br and adds them, stopping at the first
// that does not extend the chain. It returns the bytes of a torn tail.
func (st *State) extendFrom(br *bufio.Reader, each func(e *audit.Entry)) (torn int64, err error) {
	for {
		line, rerr := br.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull || len(line) > audit.MaxEntrySize+1 {
			return 0, &ChainError{st.Size, fmt.Sprintf("is longer than %d bytes", audit.MaxEntrySize)}
		}
		if rerr == io.EOF {
			return int64(len(line)), nil
		}
		if rerr != nil {
			return 0, rerr
		}
		e, err := st.extend(line[:len(line)-1])
		if err != nil {
			return 0, err
		}
		if each != nil && e != nil {
			each(e)
		}
	}
}

// Bundle is a checkpoint stored with its signatures and its state: what a
// reader needs, in one object.
type Bundle struct {
	Checkpoint string            `json:"checkpoint"`
	Signatures map[string]string `json:"signatures"` // ".asc" and/or ".sig"
	State      json.RawMessage   `json:"state"`
}

// trusted is a bundle whose checkpoint a registry signer vouches for and
// whose state matches it.
type trusted struct {
	cp    *audit.SignedCheckpoint
	state *State
}

// openBundle checks a stored bundle: its checkpoint judged as trail.Verify
// judges checkpoints, its state hashed into the checkpoint, and the state's
// frontier giving the checkpoint's root.
func openBundle(ss trail.StoredState, cfg trail.VerifyConfig) (*trusted, error) {
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(ss.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%s: %v", ss.Name, err)
	}
	sc := trail.StoredCheckpoint{Name: ss.Name, Body: []byte(b.Checkpoint), Sigs: map[string][]byte{}}
	for ext, sig := range b.Signatures {
		sc.Sigs[ext] = []byte(sig)
	}
	cp, err := trail.Judge(sc, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", ss.Name, err)
	}
	if cp.Ignored != "" {
		return nil, fmt.Errorf("%s: %s", ss.Name, cp.Ignored)
	}
	st, err := parseState(b.State)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", ss.Name, err)
	}
	h, err := st.Hash()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", ss.Name, err)
	}
	root, err := st.Root()
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %v", ss.Name, err)
	case cp.State != h:
		return nil, fmt.Errorf("%s: the state is not the one its checkpoint signs", ss.Name)
	case st.Size != cp.Size || st.Origin != cp.Origin || !bytes.Equal(root, cp.Root[:]):
		return nil, fmt.Errorf("%s: the state does not sum up the trail its checkpoint names", ss.Name)
	}
	return &trusted{cp: cp, state: st}, nil
}

// maxBundles bounds the bundles a reader tries before it reads the whole
// trail: bundles nobody trusted signed can only be planted, and cost the
// planter's victim a full read, never a wrong answer.
const maxBundles = 64

// newestTrusted finds the newest bundle that a trusted signer vouches for,
// or nil. The reasons bundles were set aside are returned too.
func newestTrusted(ctx context.Context, s trail.Store, cfg trail.VerifyConfig) (*trusted, []audit.IgnoredCheckpoint, error) {
	var ignored []audit.IgnoredCheckpoint
	// The trail's name, to set aside another trail's bundles. Entry 0
	// unreadable (missing, a torn local tail) leaves it unknown: what
	// follows then finds the trail cut or damaged.
	origin := ""
	if line, err := s.Entry(ctx, 0); err == nil {
		origin = audit.Origin(line)
	}
	after, limit := "", 1
	for tried := 0; tried < maxBundles; {
		page, err := s.States(ctx, after, limit)
		if err != nil {
			return nil, ignored, err
		}
		for _, ss := range page {
			tried++
			t, err := openBundle(ss, cfg)
			if err == nil && origin != "" && t.state.Origin != origin {
				// A trusted signer's bundle of another trail (an
				// export, say) sums up nothing here. With no entry 0
				// at all, the bundle stands, and shows the trail cut.
				err = fmt.Errorf("%s: a bundle of trail %s, not of this trail (%s)", ss.Name, t.state.Origin, origin)
			}
			if err == nil {
				return t, ignored, nil
			}
			ignored = append(ignored, audit.IgnoredCheckpoint{Name: ss.Name, Reason: err.Error()})
			after = ss.Name
		}
		if len(page) < limit {
			break
		}
		limit = 8
	}
	return nil, ignored, nil
}

// MakeCheckpoint sums up the trail at time now: from the state ix read
// (nil: from the first entry), it reads only the entries appended since,
// extends the chain and the tree, and returns the checkpoint, committing to
// the new state, with that state. It refuses to commit to a trail whose
// entries do not extend the chain.
func MakeCheckpoint(ctx context.Context, s trail.Store, now time.Time, ix *Index) (*audit.Checkpoint, *State, error) {
	st := NewState()
	if ix != nil && ix.state != nil && ix.Store == s.URL() {
		st = ix.state.clone()
	}
	br, c, err := st.openAfter(ctx, s, st.Size > 0)
	var torn int64
	if err == nil {
		torn, err = st.extendFrom(br, nil)
		c.Close()
	}
	var ce *ChainError
	var te *TruncatedError
	switch {
	case errors.As(err, &ce):
		return nil, nil, &trail.DamagedError{Store: s.URL(), Report: &audit.Report{FirstBad: ce.Seq, Problem: ce.Error(), Entries: st.Size}}
	case errors.As(err, &te):
		return nil, nil, &trail.DamagedError{Store: s.URL(), Report: &audit.Report{FirstBad: te.Size - 1, Problem: te.Error(), Entries: st.Size}}
	case err != nil:
		return nil, nil, err
	case torn > 0:
		return nil, nil, &trail.TornError{Store: s.URL(), Bytes: torn}
	case st.Size == 0:
		return nil, nil, fmt.Errorf("%s: the audit trail is empty", s.URL())
	}
	now = now.UTC().Truncate(time.Second)
	st.prune(now)
	root, err := st.Root()
	if err != nil {
		return nil, nil, err
	}
	h, err := st.Hash()
	if err != nil {
		return nil, nil, err
	}
	cp := &audit.Checkpoint{Origin: st.Origin, Size: st.Size, Time: now, State: h}
	copy(cp.Root[:], root)
	return cp, st, nil
}

// StoreSigned stores a signed checkpoint as trail.StoreSigned does, and its
// bundle with the state beside it.
func StoreSigned(ctx context.Context, s trail.Store, cp *audit.Checkpoint, st *State, sigs []*signature.Signature) error {
	if err := trail.StoreSigned(ctx, s, cp, sigs); err != nil {
		return err
	}
	files, err := trail.SignatureFiles(sigs)
	if err != nil {
		return err
	}
	b := Bundle{Checkpoint: string(cp.Marshal()), Signatures: map[string]string{}}
	for ext, data := range files {
		b.Signatures[ext] = string(data)
	}
	state, err := st.Marshal()
	if err != nil {
		return err
	}
	b.State = state
	data, err := record.Marshal(b)
	if err != nil {
		return err
	}
	return s.PutState(ctx, cp.Size, data)
}
