// Package anchor reads the freshness anchor: what the authoritative audit
// trail says was in force. Rollback of the signers registry and of the
// governed state, and replay of a consumed intent, are judged against it,
// never against the work tree, so that losing local state can never turn a
// refusal into a pass (T3, T4, T33).
//
// The anchor is the evidence store that governance/policy.yaml names, plus
// the trust-root pin held outside the repository. A command reads it at a
// cost that does not grow with the trail (Read): the newest state bundle
// that a trusted signer vouches for (state.go), the entry the state ends
// with, and the entries after it, whose chain it checks (on object storage
// with every object version, so that a new version or a delete marker shows
// as tampering). ReadFull, which `audit verify` runs, reads and verifies
// everything and checks the newest state against the entries it sums up. A
// local file:// store is a cache, good for demo-grade environments only.
//
// What a command reads from it:
//
//   - the newest signers registry version recorded as in force
//     ("signers.seen" entries) and the newest governed-state version
//     ("manifest.seen"): an older one in the repository is a rollback;
//   - consumed intent nonces ("intent.consumed"): a second use is a replay;
//   - for each registry version, when it was first recorded in a part of the
//     trail that a trusted checkpoint covers: a chain link whose signer is no
//     longer valid counts only if it was witnessed while the signer was.
//
// Anyone who can write to the evidence store can append entries, so the
// anchor is read to fail closed: an appended claim can make a command refuse
// (a denial of service the trail records), never make a refusal pass. Only
// witness times relax a check, and those come from entries that a trusted
// checkpoint covers, in a trail whose entry times never go backwards; one
// that a state claims is confirmed against the entry it names. What else a
// state says rests on its checkpoint signer's word until ReadFull checks it.
package anchor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/trail"
)

// Actions the anchor reads.
const (
	RegistrySeen = "signers.seen"
	ManifestSeen = "manifest.seen"
	Consumed     = "intent.consumed"
	// LockRecorded records a backend lock written for an environment;
	// LockRevoked its revocation. Together they say which lock is in force.
	LockRecorded = "backend.lock"
	LockRevoked  = "backend.revoked"
	// BreakGlassActive records a break-glass window opened under a
	// two-person break-glass intent; BreakGlassClosed its closing, and
	// BreakGlassLapsed its end at its expiry without a close. An entry
	// alone opens nothing: a window relaxes a gate only when its signed
	// marker and intent, kept as artifacts, verify (package breakglass).
	BreakGlassActive = "BREAK_GLASS_ACTIVE"
	BreakGlassClosed = "BREAK_GLASS_CLOSED"
	BreakGlassLapsed = "BREAK_GLASS_LAPSED"
)

// wanted reports whether an entry line records an action the anchor reads.
// In canonical form "action" is the first key, so the test needs only the
// line's first bytes.
func wanted(line []byte) bool {
	const prefix = `{"action":"`
	if !bytes.HasPrefix(line, []byte(prefix)) {
		return false
	}
	rest := line[len(prefix):]
	for _, a := range actions {
		if len(rest) > len(a) && string(rest[:len(a)]) == a && rest[len(a)] == '"' {
			return true
		}
	}
	return false
}

var actions = []string{RegistrySeen, ManifestSeen, Consumed, LockRecorded, LockRevoked, BreakGlassActive, BreakGlassClosed, BreakGlassLapsed}

// Seen is a version recorded as in force.
type Seen struct {
	Version int
	SHA256  string
	Seq     int64     // the entry that recorded it
	Time    time.Time // that entry's time
}

// LockSeen is a backend lock recorded for an environment.
type LockSeen struct {
	Env     string
	Version int
	SHA256  string
	Seq     int64
}

// lockOf reads a backend lock or revocation record.
func lockOf(e *audit.Entry) (LockSeen, bool) {
	if e.Action != LockRecorded && e.Action != LockRevoked {
		return LockSeen{}, false
	}
	var d struct {
		Env     string `json:"env"`
		Version int    `json:"version"`
		SHA256  string `json:"sha256"`
	}
	raw, _ := json.Marshal(e.Details)
	if json.Unmarshal(raw, &d) != nil || d.Env == "" || d.Version < 1 || len(d.SHA256) != 64 {
		return LockSeen{}, false
	}
	return LockSeen{Env: d.Env, Version: d.Version, SHA256: d.SHA256, Seq: e.Seq}, true
}

// Lock returns the newest lock recorded for env, nil when none, and whether
// it was revoked.
func (ix *Index) Lock(env string) (*LockSeen, bool) {
	if ix == nil || ix.Locks == nil {
		return nil, false
	}
	l := ix.Locks[env]
	if l == nil {
		return nil, false
	}
	_, revoked := ix.Revoked[l.SHA256]
	return l, revoked
}

func (ix *Index) noteLock(e *audit.Entry) bool {
	l, ok := lockOf(e)
	if !ok {
		return false
	}
	if ix.Locks == nil {
		ix.Locks, ix.Revoked = map[string]*LockSeen{}, map[string]int64{}
	}
	if e.Action == LockRevoked {
		if _, dup := ix.Revoked[l.SHA256]; !dup {
			ix.Revoked[l.SHA256] = l.Seq
		}
		return true
	}
	if cur := ix.Locks[l.Env]; cur == nil || l.Version >= cur.Version {
		ix.Locks[l.Env] = &l
	}
	return true
}

// Index is what the trail says, read once per command.
type Index struct {
	Store string
	// Authoritative is set for object storage under Object Lock (or whose
	// lack of it policy.yaml waives); a local store is a cache.
	Authoritative bool
	// Registry and Manifest are the newest versions recorded, nil when none.
	Registry *Seen
	Manifest *Seen
	// Used maps each consumed nonce to the entry that consumed it.
	Used map[string]int64
	// Locks holds the newest backend lock recorded for each environment;
	// Revoked maps the SHA-256 of each revoked lock to the entry that
	// revoked it.
	Locks   map[string]*LockSeen
	Revoked map[string]int64
	// Windows are the break-glass windows the trail records, in the order
	// they were first mentioned.
	Windows []Window
	// Report is the verification of the whole trail.
	Report *audit.Report
	// Clock is set when the clock is earlier than the newest entry.
	Clock *trail.ClockError

	registry []Seen // every registry record, oldest first
	state    *State // the trail as read, to extend the next checkpoint from
	// confirm reads an entry, to check a witness that a state claims
	// against the entry itself (nil when the index came from the entries).
	confirm func(seq int64) ([]byte, error)
	// marker looks up a nonce's consumption marker (nil: none kept).
	marker func(nonce string) int64
	// artifact reads an artifact of the store the index was read from.
	artifact func(name string) ([]byte, error)
}

// Artifact reads an artifact of the store the index was read from.
func (ix *Index) Artifact(name string) ([]byte, error) {
	if ix == nil || ix.artifact == nil {
		return nil, errors.New("no evidence store to read " + name + " from")
	}
	return ix.artifact(name)
}

// Covered is the number of entries a trusted checkpoint covers.
func (ix *Index) Covered() int64 {
	if ix == nil || ix.Report == nil || ix.Report.Latest == nil {
		return 0
	}
	return ix.Report.Latest.Size
}

// NewestCheckpoint is the time of the newest trusted checkpoint, zero when
// there is none.
func (ix *Index) NewestCheckpoint() time.Time {
	if ix == nil || ix.Report == nil || ix.Report.Latest == nil {
		return time.Time{}
	}
	return ix.Report.Latest.Time
}

// Witness returns when the registry version with this SHA-256 was first
// recorded as in force in the part of the trail a trusted checkpoint covers.
func (ix *Index) Witness(version int, sha256 string) (time.Time, bool) {
	if ix == nil || !ix.Report.OK() {
		return time.Time{}, false
	}
	covered := ix.Covered()
	for _, s := range ix.registry {
		if s.Seq >= covered {
			break
		}
		if s.Version == version && s.SHA256 == sha256 {
			return s.Time, ix.confirmed(s)
		}
	}
	return time.Time{}, false
}

// confirmed checks a witness that a state claims against its entry: a
// witness time relaxes a check, so it must not rest on a checkpoint
// signer's word alone. Entries are written once, so the entry at that seq
// says what was recorded.
func (ix *Index) confirmed(s Seen) bool {
	if ix.confirm == nil {
		return true // read from the entries themselves
	}
	line, err := ix.confirm(s.Seq)
	if err != nil {
		return false
	}
	e, err := audit.ParseEntry(line)
	if err != nil || e.Seq != s.Seq || e.Action != RegistrySeen {
		return false
	}
	got, ok := seenOf(e)
	return ok && got.Version == s.Version && got.SHA256 == s.SHA256 && got.Time.Equal(s.Time)
}

// UsedSeq returns the seq of the entry that consumed nonce, or -1. Beside
// the index it asks the store for the nonce's consumption marker, so that a
// replay is refused whatever a state leaves out; a marker that cannot be
// read counts as used (0).
func (ix *Index) UsedSeq(nonce string) int64 {
	if ix == nil {
		return -1
	}
	if seq, ok := ix.Used[nonce]; ok {
		return seq
	}
	if ix.marker != nil {
		return ix.marker(nonce)
	}
	return -1
}

// MarkerName names the artifact that marks a nonce consumed, written once
// when the intent is consumed; false for a nonce that cannot name one.
func MarkerName(nonce string) (string, bool) {
	if len(nonce) < 16 || len(nonce) > 128 {
		return "", false
	}
	for _, c := range nonce {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	return "consumed-" + nonce, true
}

// markerOf looks a nonce's consumption marker up in s.
func markerOf(ctx context.Context, s trail.Store) func(nonce string) int64 {
	return func(nonce string) int64 {
		name, ok := MarkerName(nonce)
		if !ok {
			return -1
		}
		data, err := s.Artifact(ctx, name)
		var missing *trail.ArtifactMissingError
		switch {
		case errors.As(err, &missing):
			return -1
		case err != nil:
			return 0 // unreadable or tampered with: fail closed
		}
		if e, err := audit.ParseEntry(bytes.TrimSuffix(data, []byte("\n"))); err == nil {
			return e.Seq
		}
		return 0
	}
}

// Read reads the anchor at a cost that does not grow with the trail: the
// newest state bundle that a trusted signer vouches for, and the entries
// after it, whose chain it checks from the bundle's state. A trail with no
// such bundle (new, or written before bundles) is read in full, as ReadFull
// does. A trail that does not verify is returned with its report; the
// caller refuses to use it.
func Read(ctx context.Context, s trail.Store, cfg trail.VerifyConfig, authoritative bool) (*Index, error) {
	t, ignored, err := newestTrusted(ctx, s, cfg)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return ReadFull(ctx, s, cfg, authoritative)
	}
	ix := fromState(s, t.state, authoritative)
	ix.confirm = func(seq int64) ([]byte, error) { return s.Entry(ctx, seq) }
	ix.marker = markerOf(ctx, s)
	ix.artifact = func(name string) ([]byte, error) { return s.Artifact(ctx, name) }
	cur := t.state.clone()
	br, c, err := cur.openAfter(ctx, s, false)
	var torn int64
	if err == nil {
		torn, err = cur.extendFrom(br, ix.addEntry)
		c.Close()
	}
	rep := &audit.Report{Origin: t.state.Origin, Entries: cur.Size, CheckpointsValid: 1, Ignored: ignored,
		Latest: t.cp, Uncovered: cur.Size - t.state.Size, FirstBad: -1}
	var ce *ChainError
	var te *TruncatedError
	switch {
	case errors.As(err, &ce):
		rep.FirstBad, rep.Problem = ce.Seq, ce.Error()
	case errors.As(err, &te):
		rep.FirstBad, rep.Problem = te.Size-1, te.Error()
	case err != nil:
		return nil, err
	case torn > 0:
		rep.TornTail, rep.FirstBad = torn, cur.Size
		rep.Problem = fmt.Sprintf("torn tail: %d bytes after entry %d do not end a line (an append was interrupted); run `groundzero audit repair`", torn, cur.Size-1)
	}
	trail.Freshness(rep, cfg)
	if last, _ := time.Parse(time.RFC3339, cur.LastTime); rep.OK() && cfg.Now.Before(last.Add(-signature.ClockSkew)) {
		// A clock set back must not revive what has expired (T24).
		ix.Clock = &trail.ClockError{Now: cfg.Now.UTC().Truncate(time.Second), Last: last}
		rep.Problem, rep.FirstBad = ix.Clock.Error(), cur.Size-1
	}
	ix.Report = rep
	if rep.OK() {
		ix.state = cur
	}
	return ix, nil
}

// fromState starts an index from a trusted state: everything in it is
// covered by the state's checkpoint.
func fromState(s trail.Store, st *State, authoritative bool) *Index {
	ix := &Index{Store: s.URL(), Authoritative: authoritative, Used: map[string]int64{},
		Registry: st.RegistryNewest.seen(), Manifest: st.Manifest.seen()}
	for _, r := range st.Registry {
		ix.registry = append(ix.registry, *r.seen())
	}
	for _, c := range st.Consumed {
		ix.Used[c.Nonce] = c.Seq
	}
	for _, l := range st.Locks {
		ix.noteLock(l.entry(LockRecorded))
	}
	for _, r := range st.Revoked {
		ix.noteLock(r.entry(LockRevoked))
	}
	ix.Windows = append([]Window(nil), st.Windows...)
	return ix
}

// ReadFull verifies the whole trail in s (as cfg says) and indexes it in the
// same pass. The newest trusted state bundle is checked against the entries
// it sums up, so that a state that does not agree with them is found.
func ReadFull(ctx context.Context, s trail.Store, cfg trail.VerifyConfig, authoritative bool) (*Index, error) {
	t, _, err := newestTrusted(ctx, s, cfg)
	if err != nil {
		return nil, err
	}
	ix := &Index{Store: s.URL(), Authoritative: authoritative, Used: map[string]int64{}, marker: markerOf(ctx, s),
		artifact: func(name string) ([]byte, error) { return s.Artifact(ctx, name) }}
	from := int64(math.MaxInt64)
	var covered, cur *State
	var mismatch string
	if t != nil {
		from = t.state.Size - 1
		covered = NewState() // the entries the bundle sums up, as indexed
		cur = t.state.clone()
	}
	tee := &teeStore{Store: s, from: from, fn: func(seq int64, line []byte) {
		if t != nil && seq >= t.state.Size {
			if cur != nil {
				if e, err := cur.extend(line); err != nil {
					cur = nil
				} else if e != nil {
					ix.addEntry(e)
				}
			}
			return
		}
		if t != nil && seq == t.state.Size-1 && audit.ChainHex(line) != t.state.Last {
			mismatch = "its last entry differs"
		}
		if !wanted(line) {
			return
		}
		e, err := audit.ParseEntry(line)
		if err != nil {
			return // verification reports it
		}
		ix.addEntry(e)
		if t != nil {
			covered.note(e)
		}
	}}
	rep, err := trail.Verify(ctx, tee, cfg)
	if err != nil {
		return nil, err
	}
	ix.Report = rep
	if t != nil && rep.OK() && rep.Entries < t.state.Size {
		rep.Problem = fmt.Sprintf("the trail has %d entries, but the trusted checkpoint of state bundle %s covers %d: entries were removed from the tail", rep.Entries, t.cp.Name, t.state.Size)
		rep.FirstBad = rep.Entries
	}
	if t != nil && rep.OK() {
		if mismatch == "" {
			mismatch = t.state.differs(covered, t.cp.Time)
		}
		if mismatch != "" {
			rep.Problem = fmt.Sprintf("state bundle %s does not agree with the entries its checkpoint covers: %s", t.cp.Name, mismatch)
			rep.FirstBad = t.state.Size - 1
		}
	}
	if rep.OK() {
		ix.state = cur
	}
	return ix, nil
}

// seenOf reads a registry or governed-state version record.
func seenOf(e *audit.Entry) (Seen, bool) {
	if e.Action != RegistrySeen && e.Action != ManifestSeen {
		return Seen{}, false
	}
	var d struct {
		Version int    `json:"version"`
		SHA256  string `json:"sha256"`
	}
	raw, _ := json.Marshal(e.Details)
	if json.Unmarshal(raw, &d) != nil || d.Version < 0 || len(d.SHA256) != 64 || (e.Action == RegistrySeen && d.Version < 1) {
		return Seen{}, false
	}
	t, _ := time.Parse(time.RFC3339, e.Time)
	return Seen{Version: d.Version, SHA256: d.SHA256, Seq: e.Seq, Time: t}, true
}

// add indexes one entry line (seq counts lines from 0; verification checks
// that it matches the entry's own).
func (ix *Index) add(seq int64, line []byte) {
	e, err := audit.ParseEntry(line)
	if err != nil {
		return // verification reports it
	}
	ix.addEntry(e)
}

func (ix *Index) addEntry(e *audit.Entry) {
	if ix.noteLock(e) {
		return
	}
	if ws, ok := noteWindow(ix.Windows, e); ok {
		ix.Windows = ws
		return
	}
	if s, ok := seenOf(e); ok {
		newest := &ix.Manifest
		if e.Action == RegistrySeen {
			ix.registry = append(ix.registry, s)
			newest = &ix.Registry
		}
		if *newest == nil || s.Version >= (*newest).Version {
			*newest = &s
		}
		return
	}
	if e.Action == Consumed {
		if n, ok := e.Details["nonce"].(string); ok {
			if _, dup := ix.Used[n]; !dup {
				ix.Used[n] = e.Seq
			}
		}
	}
}

// teeStore passes the entry lines it streams to fn as well: those that
// record an action the anchor reads, and every line from seq from on.
type teeStore struct {
	trail.Store
	from int64
	fn   func(seq int64, line []byte)
}

func (t *teeStore) Entries(ctx context.Context) (io.ReadCloser, error) {
	r, err := t.Store.Entries(ctx)
	if err != nil {
		return nil, err
	}
	return &lineTee{ReadCloser: r, fn: t.fn, from: t.from}, nil
}

// lineTee hands the lines that record an action the anchor reads to fn,
// with their line number, as they stream past.
type lineTee struct {
	io.ReadCloser
	fn      func(seq int64, line []byte)
	from    int64  // every line from this seq on goes to fn
	partial []byte // the start of a line that continues in the next read
	seq     int64  // number of the next line to complete
	skip    bool   // partial is too long to be an entry
}

func (l *lineTee) Read(p []byte) (int, error) {
	n, err := l.ReadCloser.Read(p)
	b := p[:n]
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.carry(b)
			break
		}
		line := b[:i]
		if len(l.partial) > 0 || l.skip {
			l.carry(line)
			line = l.partial
		}
		if !l.skip && len(line) <= audit.MaxEntrySize && (l.seq >= l.from || wanted(line)) {
			l.fn(l.seq, line)
		}
		l.partial, l.skip = l.partial[:0], false
		l.seq++
		b = b[i+1:]
	}
	return n, err
}

// carry keeps the unfinished line, up to the size an entry may have.
func (l *lineTee) carry(b []byte) {
	if l.skip {
		return
	}
	if len(l.partial)+len(b) > audit.MaxEntrySize {
		l.partial, l.skip = l.partial[:0], true
		return
	}
	l.partial = append(l.partial, b...)
}
