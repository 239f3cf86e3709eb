// Package anchor reads the freshness anchor: what the authoritative audit
// trail says was in force. Rollback of the signers registry and of the
// governed state, and replay of a consumed intent, are judged against it,
// never against the work tree, so that losing local state can never turn a
// refusal into a pass (T3, T4, T33).
//
// The anchor is the evidence store that governance/policy.yaml names, read in
// full and verified before use: hash chain, Merkle tree and checkpoints (on
// object storage, with every object version, so that a new version or a
// delete marker shows as tampering), plus the trust-root pin held outside
// the repository. A local file:// store is a cache, good for demo-grade
// environments only.
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
// checkpoint covers, in a trail whose entry times never go backwards.
package anchor

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/trail"
)

// Actions the anchor reads.
const (
	RegistrySeen = "signers.seen"
	ManifestSeen = "manifest.seen"
	Consumed     = "intent.consumed"
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

var actions = []string{RegistrySeen, ManifestSeen, Consumed}

// Seen is a version recorded as in force.
type Seen struct {
	Version int
	SHA256  string
	Seq     int64     // the entry that recorded it
	Time    time.Time // that entry's time
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
	// Report is the verification of the whole trail.
	Report *audit.Report

	registry []Seen // every registry record, oldest first
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
			return s.Time, true
		}
	}
	return time.Time{}, false
}

// UsedSeq returns the seq of the entry that consumed nonce, or -1.
func (ix *Index) UsedSeq(nonce string) int64 {
	if ix == nil {
		return -1
	}
	if seq, ok := ix.Used[nonce]; ok {
		return seq
	}
	return -1
}

// Read verifies the trail in s (as cfg says) and indexes it in the same pass.
// authoritative says whether s may serve as the anchor. A trail that does not
// verify is returned with its report; the caller refuses to use it.
func Read(ctx context.Context, s trail.Store, cfg trail.VerifyConfig, authoritative bool) (*Index, error) {
	ix := &Index{Store: s.URL(), Authoritative: authoritative, Used: map[string]int64{}}
	tee := &teeStore{Store: s, fn: ix.add}
	rep, err := trail.Verify(ctx, tee, cfg)
	if err != nil {
		return nil, err
	}
	ix.Report = rep
	return ix, nil
}

// add indexes one entry line (seq counts lines from 0; verification checks
// that it matches the entry's own).
func (ix *Index) add(seq int64, line []byte) {
	e, err := audit.ParseEntry(line)
	if err != nil {
		return // verification reports it
	}
	t, _ := time.Parse(time.RFC3339, e.Time)
	switch e.Action {
	case RegistrySeen, ManifestSeen:
		var d struct {
			Version int    `json:"version"`
			SHA256  string `json:"sha256"`
		}
		raw, _ := json.Marshal(e.Details)
		if json.Unmarshal(raw, &d) != nil || d.Version < 0 || len(d.SHA256) != 64 {
			return
		}
		s := Seen{Version: d.Version, SHA256: d.SHA256, Seq: e.Seq, Time: t}
		newest := &ix.Manifest
		if e.Action == RegistrySeen {
			if d.Version < 1 {
				return
			}
			ix.registry = append(ix.registry, s)
			newest = &ix.Registry
		}
		if *newest == nil || s.Version >= (*newest).Version {
			*newest = &s
		}
	case Consumed:
		if n, ok := e.Details["nonce"].(string); ok {
			if _, dup := ix.Used[n]; !dup {
				ix.Used[n] = e.Seq
			}
		}
	}
}

// teeStore passes the entry lines it streams to fn as well.
type teeStore struct {
	trail.Store
	fn func(seq int64, line []byte)
}

func (t *teeStore) Entries(ctx context.Context) (io.ReadCloser, error) {
	r, err := t.Store.Entries(ctx)
	if err != nil {
		return nil, err
	}
	return &lineTee{ReadCloser: r, fn: t.fn}, nil
}

// lineTee hands the lines that record an action the anchor reads to fn,
// with their line number, as they stream past.
type lineTee struct {
	io.ReadCloser
	fn      func(seq int64, line []byte)
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
		if !l.skip && len(line) <= audit.MaxEntrySize && wanted(line) {
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
