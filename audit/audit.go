// Package audit defines groundzero's append-only, tamper-evident audit trail
// and verifies it. It is public so that an auditor can check a trail offline
// without groundzero: it imports only the standard library and
// golang.org/x/mod.
//
// # Entries
//
// An entry is a canonical JSON object (see package record) with exactly these
// fields:
//
//	seq      integer, 0 for the first entry, then 1, 2, … with no gap
//	time     RFC 3339 UTC time the entry was appended, whole seconds; never
//	         earlier than the previous entry's time
//	actor    signer id, CI identity, or "user:NAME" of who acted
//	action   what happened, for example "check.gate" or "signers.add"
//	subject  what it happened to, for example "governance/MANIFEST"
//	details  an object with the facts (never a secret)
//	prev     hex SHA-256 of the previous entry's bytes; 64 zeros for seq 0
//
// A local segment holds one entry per line, each line ended by "\n"; an
// object store holds one object per entry with the same bytes. Example:
//
//	{"action":"check.gate","actor":"ci:github","details":{"gate":"manifest","ok":true},"prev":"00…00","seq":0,"subject":"manifest","time":"2026-11-29T10:00:00Z"}
//
// # Tree
//
// The entries are also the leaves of an RFC 6962 Merkle tree, leaf hash
// SHA-256(0x00 || entry bytes) and node hash SHA-256(0x01 || left || right),
// computed with golang.org/x/mod/sumdb/tlog. The hash chain makes any edit
// visible to the next entry; the tree lets a checkpoint commit to every entry
// at once and lets a verifier prove inclusion and consistency.
//
// # Checkpoints
//
// A checkpoint is the C2SP tlog-checkpoint body
//
//	<origin>\n<tree size>\n<base64 root hash>\n
//
// followed by the extension line "time <RFC 3339>\n" and, optionally,
// "state <hex SHA-256>\n": the hash of the state record stored beside the
// checkpoint (what the trail up to it says, so that a reader need not scan
// it; groundzero's internal/anchor defines the record). The origin names the
// trail: "groundzero.audit/v1/" and the first 16 hex digits of the SHA-256 of
// entry 0, so a trail keeps its identity when it is exported to another
// store. Each command ends with a checkpoint signed by the acting identity:
// detached OpenPGP signatures beside it in ".asc", or SSH signatures in
// ".sig" with namespace "groundzero.checkpoint/v1".
//
// # Verification
//
// Verify reads the entries once: it checks every seq, prev and that no time
// goes backwards, recomputes the tree, checks every checkpoint's root against
// the entries it covers and the consistency proof between successive
// checkpoints, and, given a checkpoint the verifier already trusts, that the
// trail still extends it. A verifier that holds an old checkpoint therefore
// detects a rewrite or a truncated tail. A final line without its newline is
// a torn tail: reported, never silently dropped.
//
// The caller judges each checkpoint's signatures first. A checkpoint that no
// trusted signer vouches for (an unknown key, a bad or missing signature, a
// revoked signer) is ignored: listed in the report, never compared with the
// entries, so that whoever can write to the store can neither break
// verification with a planted checkpoint nor make a rewritten trail look
// vouched for. A trail with entries and no valid checkpoint is unanchored
// (Report.Unanchored): its entries agree with each other, and nothing more is
// known.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/groundzero/groundzero/record"
)

// CheckpointNamespace is the SSH signature namespace of checkpoints.
const CheckpointNamespace = "groundzero.checkpoint/v1"

// OriginPrefix starts every trail's origin line.
const OriginPrefix = "groundzero.audit/v1/"

// GenesisPrev is the prev of entry 0.
var GenesisPrev = strings.Repeat("0", 64)

// MaxEntrySize bounds one entry.
const MaxEntrySize = 64 << 10

// Entry is one audit event.
type Entry struct {
	Seq     int64          `json:"seq"`
	Time    string         `json:"time"`
	Actor   string         `json:"actor"`
	Action  string         `json:"action"`
	Subject string         `json:"subject"`
	Details map[string]any `json:"details"`
	Prev    string         `json:"prev"`
}

// Marshal encodes the entry canonically (without the newline).
func (e *Entry) Marshal() ([]byte, error) {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	b, err := record.Marshal(e)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("audit entry of %d bytes exceeds %d", len(b), MaxEntrySize)
	}
	return b, nil
}

// ParseEntry decodes one entry's bytes (without the newline), refusing
// anything but the canonical encoding.
func ParseEntry(line []byte) (*Entry, error) {
	if len(line) > MaxEntrySize {
		return nil, fmt.Errorf("entry of %d bytes exceeds %d", len(line), MaxEntrySize)
	}
	var e Entry
	if err := record.Parse(line, &e); err != nil {
		return nil, err
	}
	if e.Seq < 0 || len(e.Prev) != 64 {
		return nil, errors.New("entry has a bad seq or prev")
	}
	if t, err := time.Parse(time.RFC3339, e.Time); err != nil || t.UTC().Format(time.RFC3339) != e.Time {
		return nil, errors.New("entry has a bad time (RFC 3339, UTC, whole seconds)")
	}
	// Every field is present: the entry re-encodes to its own bytes.
	if out, err := e.Marshal(); err != nil || !bytes.Equal(out, line) {
		return nil, errors.New("entry lacks one of its fields")
	}
	return &e, nil
}

// ChainHash is the hash the next entry's prev names.
func ChainHash(line []byte) [32]byte { return sha256.Sum256(line) }

// ChainHex is ChainHash in hex.
func ChainHex(line []byte) string {
	h := ChainHash(line)
	return hex.EncodeToString(h[:])
}

// LeafHash is the RFC 6962 leaf hash of an entry.
func LeafHash(line []byte) tlog.Hash { return tlog.RecordHash(line) }

// Origin returns the trail identity for a trail whose entry 0 is line.
func Origin(entry0 []byte) string {
	h := sha256.Sum256(entry0)
	return OriginPrefix + hex.EncodeToString(h[:8])
}

// Checkpoint is a signed statement of a trail's size and root hash.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	Time   time.Time
	State  string // hex SHA-256 of the state record, or ""
}

// Marshal returns the checkpoint body.
func (c *Checkpoint) Marshal() []byte {
	b := fmt.Sprintf("%s\n%d\n%s\ntime %s\n", c.Origin, c.Size,
		base64.StdEncoding.EncodeToString(c.Root[:]), c.Time.UTC().Format(time.RFC3339))
	if c.State != "" {
		b += "state " + c.State + "\n"
	}
	return []byte(b)
}

// ParseCheckpoint reads a checkpoint body, accepting only the form Marshal
// writes.
func ParseCheckpoint(data []byte) (*Checkpoint, error) {
	if len(data) > 4096 {
		return nil, errors.New("checkpoint larger than 4096 bytes")
	}
	lines := strings.Split(string(data), "\n")
	if (len(lines) != 5 && len(lines) != 6) || lines[len(lines)-1] != "" {
		return nil, errors.New("checkpoint must have four lines, or five with a state line")
	}
	c := &Checkpoint{Origin: lines[0]}
	if !strings.HasPrefix(c.Origin, OriginPrefix) || strings.ContainsAny(c.Origin, " \t") {
		return nil, fmt.Errorf("checkpoint origin %q is not a groundzero audit trail", truncate(c.Origin))
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return nil, errors.New("checkpoint has a bad tree size")
	}
	c.Size = n
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return nil, errors.New("checkpoint has a bad root hash")
	}
	copy(c.Root[:], root)
	ts, ok := strings.CutPrefix(lines[3], "time ")
	if !ok {
		return nil, errors.New("checkpoint lacks its time line")
	}
	if c.Time, err = time.Parse(time.RFC3339, ts); err != nil {
		return nil, errors.New("checkpoint has a bad time")
	}
	if len(lines) == 6 {
		st, ok := strings.CutPrefix(lines[4], "state ")
		if b, err := hex.DecodeString(st); !ok || err != nil || len(b) != 32 || hex.EncodeToString(b) != st {
			return nil, errors.New("checkpoint has a bad state line (state <64 hex digits>)")
		}
		c.State = st
	}
	if !bytes.Equal(c.Marshal(), data) {
		return nil, errors.New("checkpoint is not in canonical form")
	}
	return c, nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
