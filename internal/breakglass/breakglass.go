// Package breakglass is the break-glass window: its signed records and the
// rule that says whether a window is open.
//
// A break-glass window relaxes one thing for a bounded time: the interactive
// apply and bootstrap path on a certified admin machine, for when CI is
// unreachable (policy.yaml breakglass.require_window refuses that path
// outside a window). It is opened under a break-glass intent signed by two
// distinct people, consumes that intent, and lapses at its expiry.
//
// # The marker
//
// Opening writes a marker, a canonical JSON record (package record) of kind
// "groundzero.break-glass/v1", stored as governance/breakglass/<id>.json
// with the opener's detached signature beside it (.asc or .sig, SSH
// namespace the kind), and kept in the evidence store as the artifacts
// breakglass-<id>.json and breakglass-<id>.json.asc|.sig, beside the intent
// it was opened under (breakglass-<id>.intent.json and its signatures):
//
//	{"approvers":["bob","carol"],"env":"dev","expires":"2026-12-01T14:00:00Z",
//	 "id":"20261201T100000Z-1a2b3c4d","intent":"20261201T095000Z-9b1c2d3e",
//	 "intent_nonce":"<32 hex>","intent_sha256":"<hex>",
//	 "kind":"groundzero.break-glass/v1","opened":"2026-12-01T10:00:00Z",
//	 "opener":"alice","reason":"CI is down; restore the state bucket",
//	 "relaxes":["interactive-apply","interactive-bootstrap"],
//	 "requester":"alice","ttl":"4h0m0s"}
//
// The audit trail records the opening as a BREAK_GLASS_ACTIVE entry whose
// details name the window (id), the marker's SHA-256 (marker_sha256), its
// env and expires. The entry alone opens nothing: a window is open (Check)
// only when the marker artifact hashes to what the entry records, is signed
// by its opener, the intent artifact hashes to what the marker records and
// is a break-glass intent that the policy's two-person rule approves, its
// nonce is consumed in the trail, the window has no recorded end, and the
// clock is before its expiry and not behind the trail.
//
// # The close
//
// Closing writes a close record, kind "groundzero.break-glass-close/v1",
// governance/breakglass/<id>.close.json (artifact breakglass-<id>.close.json),
// signed by the closer, naming the rotations made (Rotated, read from a
// YAML file), the revocations written and the incident report; the trail
// records BREAK_GLASS_CLOSED. A window that reached its expiry unclosed is
// recorded once as BREAK_GLASS_LAPSED.
//
// # Revocations
//
// Each emergency key and each temporary access used is withdrawn by a
// revocation, kind "groundzero.revocation/v1" (the kind of backend lock
// revocations; the field sets differ, so neither parses as the other),
// governance/breakglass/revocations/<id>.json, which two people sign.
//
// A breaking change to any of these records makes a new kind version.
package breakglass

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/groundzero/groundzero/record"
)

// Kinds, which are also the SSH namespaces of their signatures.
var (
	Kind           = record.Kind("break-glass")
	CloseKind      = record.Kind("break-glass-close")
	RevocationKind = record.Kind("revocation")
)

// Where the records live in the repository.
const (
	Dir            = "governance/breakglass"
	RevocationsDir = "governance/breakglass/revocations"
	IncidentsDir   = "governance/incidents"
)

// Audit actions of the procedure steps (the window's own actions are in
// package anchor: BREAK_GLASS_ACTIVE, BREAK_GLASS_CLOSED, BREAK_GLASS_LAPSED).
const (
	CustodyAction    = "breakglass.custody"
	StepAction       = "breakglass.step"
	RevocationAction = "breakglass.revocation"
	SignAction       = "breakglass.sign"
)

// What a window relaxes.
const (
	RelaxApply     = "interactive-apply"
	RelaxBootstrap = "interactive-bootstrap"
)

// MaxSize bounds a record file.
const MaxSize = 64 << 10

var (
	idRE   = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$`)
	hexRE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
)

// MarkerPath is the repository path of a window's marker.
func MarkerPath(id string) string { return path.Join(Dir, id+".json") }

// ClosePath is the repository path of a window's close record.
func ClosePath(id string) string { return path.Join(Dir, id+".close.json") }

// IncidentPath is the default repository path of a window's incident report.
func IncidentPath(id string) string { return path.Join(IncidentsDir, id+".md") }

// Artifact names in the evidence store.
func MarkerArtifact(id string) string     { return "breakglass-" + id + ".json" }
func IntentArtifact(id string) string     { return "breakglass-" + id + ".intent.json" }
func CloseArtifact(id string) string      { return "breakglass-" + id + ".close.json" }
func IncidentArtifact(id string) string   { return "breakglass-" + id + ".incident.md" }
func RevocationArtifact(id string) string { return "breakglass-revocation-" + id + ".json" }

// EvidenceArtifact names a piece of step evidence by its SHA-256.
func EvidenceArtifact(sha string) string { return "evidence-" + sha }

// MalformedError reports a file that is not a valid record of its kind.
type MalformedError struct {
	File   string
	Reason string
}

func (e *MalformedError) Error() string { return e.File + ": " + e.Reason }

func newID(now time.Time) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:]), nil
}

// SHA256 is the hex SHA-256 of data.
func SHA256(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// Marker is a window's opening record.
type Marker struct {
	Approvers    []string `json:"approvers"`
	Env          string   `json:"env"`
	Expires      string   `json:"expires"`
	ID           string   `json:"id"`
	Intent       string   `json:"intent"`
	IntentNonce  string   `json:"intent_nonce"`
	IntentSHA256 string   `json:"intent_sha256"`
	Kind         string   `json:"kind"`
	Opened       string   `json:"opened"`
	Opener       string   `json:"opener"`
	Reason       string   `json:"reason"`
	Relaxes      []string `json:"relaxes"`
	Requester    string   `json:"requester"`
	TTL          string   `json:"ttl"`
}

// OpenRequest is what a new marker records.
type OpenRequest struct {
	Env, Reason, Opener string
	TTL                 time.Duration
	// The intent it is opened under, its bytes' SHA-256, its requester and
	// the people who approved it.
	IntentID, IntentNonce, IntentSHA256, Requester string
	IntentExpires                                  time.Time
	Approvers                                      []string
}

// NewMarker makes a window that opens now and lives ttl, or until the
// intent expires if that is sooner.
func NewMarker(req OpenRequest, now time.Time) (*Marker, error) {
	id, err := newID(now)
	if err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Second)
	exp := now.Add(req.TTL)
	if ie := req.IntentExpires.UTC().Truncate(time.Second); ie.Before(exp) {
		exp = ie
	}
	approvers := slices.Clone(req.Approvers)
	slices.Sort(approvers)
	m := &Marker{
		Approvers: approvers, Env: req.Env, Expires: exp.Format(time.RFC3339), ID: id,
		Intent: req.IntentID, IntentNonce: req.IntentNonce, IntentSHA256: req.IntentSHA256, Kind: Kind,
		Opened: now.Format(time.RFC3339), Opener: req.Opener, Reason: strings.TrimSpace(req.Reason),
		Relaxes: []string{RelaxApply, RelaxBootstrap}, Requester: req.Requester, TTL: exp.Sub(now).String(),
	}
	return m, m.validate()
}

// Marshal returns the marker file bytes.
func (m *Marker) Marshal() ([]byte, error) { return record.MarshalFile(m) }

// ParseMarker reads a marker, refusing anything but its canonical bytes;
// file names it in errors.
func ParseMarker(file string, data []byte) (*Marker, error) {
	var m Marker
	if err := record.ParseFileOf(data, MaxSize, Kind, &m, m.validate); err != nil {
		return nil, &MalformedError{file, err.Error()}
	}
	return &m, nil
}

func (m *Marker) validate() error {
	switch {
	case !idRE.MatchString(m.ID) || !idRE.MatchString(m.Intent):
		return errors.New("bad id or intent id")
	case !hexRE.MatchString(m.IntentSHA256):
		return errors.New("bad intent_sha256")
	case len(m.IntentNonce) < 16 || len(m.IntentNonce) > 128:
		return errors.New("bad intent_nonce")
	case m.Env == "" || m.Opener == "" || m.Requester == "":
		return errors.New("no env, opener or requester")
	case len(m.Reason) < 10 || len(m.Reason) > 2000:
		return errors.New("a break-glass window needs a reason of 10 to 2000 characters")
	case len(m.Approvers) < 2 || len(m.Approvers) > 32:
		return errors.New("a break-glass window needs two approvers")
	case len(m.Relaxes) == 0:
		return errors.New("relaxes nothing")
	}
	opened, err1 := time.Parse(time.RFC3339, m.Opened)
	exp, err2 := time.Parse(time.RFC3339, m.Expires)
	if err1 != nil || err2 != nil || !exp.After(opened) {
		return errors.New("bad opened or expires time")
	}
	return nil
}

// Times returns when the window opened and when it expires.
func (m *Marker) Times() (opened, expires time.Time) {
	opened, _ = time.Parse(time.RFC3339, m.Opened)
	expires, _ = time.Parse(time.RFC3339, m.Expires)
	return
}

// Close is a window's closing record.
type Close struct {
	Closed         string     `json:"closed"`
	Closer         string     `json:"closer"`
	ID             string     `json:"id"`
	Incident       string     `json:"incident"`
	IncidentSHA256 string     `json:"incident_sha256"`
	Kind           string     `json:"kind"`
	Lapsed         bool       `json:"lapsed"`
	MarkerSHA256   string     `json:"marker_sha256"`
	Revocations    []string   `json:"revocations"`
	Rotated        []Rotation `json:"rotated"`
}

// Marshal returns the close record's file bytes.
func (c *Close) Marshal() ([]byte, error) {
	if c.Revocations == nil {
		c.Revocations = []string{}
	}
	if c.Rotated == nil {
		c.Rotated = []Rotation{}
	}
	return record.MarshalFile(c)
}

// ParseClose reads a close record, refusing anything but its canonical
// bytes.
func ParseClose(file string, data []byte) (*Close, error) {
	var c Close
	if err := record.ParseFileOf(data, MaxSize, CloseKind, &c, c.validate); err != nil {
		return nil, &MalformedError{file, err.Error()}
	}
	return &c, nil
}

func (c *Close) validate() error {
	switch {
	case !idRE.MatchString(c.ID) || !hexRE.MatchString(c.MarkerSHA256) || !hexRE.MatchString(c.IncidentSHA256):
		return errors.New("bad id or hash")
	case c.Closer == "":
		return errors.New("no closer")
	}
	if _, err := time.Parse(time.RFC3339, c.Closed); err != nil {
		return errors.New("bad closed time")
	}
	return nil
}

// Revocation subjects.
const (
	SubjectKey    = "break-glass-key"
	SubjectAccess = "break-glass-access"
)

// Revocation withdraws an emergency key or a temporary access used under a
// window. It needs two people's signatures.
type Revocation struct {
	Created     string `json:"created"`
	Fingerprint string `json:"fingerprint"` // the revoked key's, "" for access
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	Name        string `json:"name"`
	Reason      string `json:"reason"`
	Requester   string `json:"requester"`
	Subject     string `json:"subject"`
	Window      string `json:"window"`
}

// NewRevocation makes an unsigned revocation.
func NewRevocation(window, subject, name, fingerprint, reason, requester string, now time.Time) (*Revocation, error) {
	id, err := newID(now)
	if err != nil {
		return nil, err
	}
	r := &Revocation{Created: now.UTC().Truncate(time.Second).Format(time.RFC3339), Fingerprint: fingerprint, ID: id, Kind: RevocationKind,
		Name: name, Reason: reason, Requester: requester, Subject: subject, Window: window}
	return r, r.validate()
}

// Marshal returns the revocation file bytes.
func (r *Revocation) Marshal() ([]byte, error) { return record.MarshalFile(r) }

// ParseRevocation reads a break-glass revocation, refusing anything but its
// canonical bytes.
func ParseRevocation(file string, data []byte) (*Revocation, error) {
	var r Revocation
	if err := record.ParseFileOf(data, MaxSize, RevocationKind, &r, r.validate); err != nil {
		return nil, &MalformedError{file, err.Error()}
	}
	return &r, nil
}

func (r *Revocation) validate() error {
	switch {
	case !idRE.MatchString(r.ID) || !idRE.MatchString(r.Window):
		return errors.New("bad id or window id")
	case r.Subject != SubjectKey && r.Subject != SubjectAccess:
		return fmt.Errorf("subject %q is not %s or %s", r.Subject, SubjectKey, SubjectAccess)
	case r.Subject == SubjectKey && r.Fingerprint == "":
		return errors.New("a key revocation names the key's fingerprint")
	case !nameRE.MatchString(r.Name):
		return errors.New("bad name")
	case r.Requester == "" || len(r.Reason) < 10 || len(r.Reason) > 2000:
		return errors.New("no requester, or a reason not of 10 to 2000 characters")
	}
	if _, err := time.Parse(time.RFC3339, r.Created); err != nil {
		return errors.New("bad created time")
	}
	return nil
}
