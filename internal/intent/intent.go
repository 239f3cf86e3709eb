// Package intent is signed human intent: a record that says who wants which
// action on which environment, for which governed content, until when, and
// why, signed by the people whose approval the policy requires.
//
// # Format
//
// An intent is a canonical JSON record (package record) of kind
// "groundzero.intent/v2", stored as governance/intents/<id>.json, with its
// detached signatures beside it (<id>.json.asc for OpenPGP, <id>.json.sig for
// SSH in the namespace "groundzero.intent/v2"):
//
//	{"action":"apply","commit":"<hex>","created":"2026-11-29T10:00:00Z",
//	 "env":"prod","expires":"2026-11-30T10:00:00Z","id":"20261129T100000Z-9b1c2d3e",
//	 "kind":"groundzero.intent/v2","manifest_sha256":"<hex>","nonce":"<32 hex>",
//	 "plan_sha256":"<hex>","reason":"rotate the state key","requester":"alice",
//	 "tag":"v1.4.0","ticket":"CHG-1234"}
//
// commit is the governed commit (gittag.Governed): HEAD when the intent is
// made, less the commits that only change signed records, so that the intent
// and its signatures can be committed without moving what they approve. tag
// is a tag on that commit, or "". manifest_sha256 is the SHA-256 of
// governance/MANIFEST's bytes when the intent was made: the governed content
// the approvers saw. plan_sha256 is optional; when present the intent
// approves exactly that saved plan.
//
// Every field but plan_sha256 is required and unknown fields are refused. A
// breaking change (a new required field, a changed meaning) makes a new
// version, and readers refuse the versions they no longer accept: v1, which
// bound an intent to HEAD and carried no manifest_sha256, is refused with a
// message that says to create a new intent.
//
// # Rules
//
// An intent authorises its action only when, at the verification time: its
// env, action, commit and manifest_sha256 are the ones being acted on (T7);
// it was created no later than now and expires after now, within the
// policy's maximum lifetime (T6); the clock is not earlier than the audit
// trail's newest checkpoint (T24); its nonce has not been consumed (T3); and
// distinct signers holding the roles the policy requires for the action have
// signed it, at least one of them from require_one_of, with the requester's
// own signature not counting where the policy says so (T2). The requester
// must have signed it: the requester is the owner of the key that created it
// (T31).
package intent

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/record"
)

// Kind is the record kind, and the SSH namespace of intent signatures.
const Kind = "groundzero.intent/v2"

// KindV1 is the kind of the first intent format, no longer accepted.
var KindV1 = record.Kind("intent")

// Intent is one intent record.
type Intent struct {
	Action         string `json:"action"`
	Commit         string `json:"commit"`
	Created        string `json:"created"`
	Env            string `json:"env"`
	Expires        string `json:"expires"`
	ID             string `json:"id"`
	Kind           string `json:"kind"`
	ManifestSHA256 string `json:"manifest_sha256"`
	Nonce          string `json:"nonce"`
	PlanSHA256     string `json:"plan_sha256,omitempty"`
	Reason         string `json:"reason"`
	Requester      string `json:"requester"`
	Tag            string `json:"tag"`
	Ticket         string `json:"ticket"`
}

// MalformedError reports an intent file that is not a valid record.
type MalformedError struct{ Reason string }

func (e *MalformedError) Error() string { return "malformed intent: " + e.Reason }

// VersionError reports an intent in a format that is no longer accepted.
type VersionError struct{ Kind string }

func (e *VersionError) Error() string {
	v := e.Kind[strings.LastIndex(e.Kind, "/")+1:]
	return "intent format " + v + " is no longer accepted: create a new intent"
}

var (
	idRE   = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$`)
	hexRE  = regexp.MustCompile(`^[0-9a-f]+$`)
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
)

// Request is what a new intent asks for, and what it is bound to.
type Request struct {
	Env, Action, Reason, Ticket, Requester string
	// Commit is the governed commit (gittag.Governed), Tag a tag on it or "".
	Commit, Tag string
	// ManifestSHA256 is the SHA-256 of governance/MANIFEST's bytes.
	ManifestSHA256 string
	// PlanSHA256 is the saved plan's SHA-256, or "" for none.
	PlanSHA256 string
}

// New makes an unsigned intent that lives ttl from now.
func New(req Request, now time.Time, ttl time.Duration) (*Intent, error) {
	if !slices.Contains(policy.Actions, req.Action) {
		return nil, fmt.Errorf("action %q is not one of %s", req.Action, strings.Join(policy.Actions, ", "))
	}
	if strings.TrimSpace(req.Reason) == "" {
		return nil, errors.New("an intent needs a reason")
	}
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Second)
	in := &Intent{
		Action: req.Action, Commit: req.Commit, Created: now.Format(time.RFC3339), Env: req.Env,
		Expires: now.Add(ttl).Format(time.RFC3339), Kind: Kind, ManifestSHA256: req.ManifestSHA256,
		Nonce: hex.EncodeToString(nonce[:]), PlanSHA256: req.PlanSHA256,
		Reason: req.Reason, Requester: req.Requester, Tag: req.Tag, Ticket: req.Ticket,
		ID: now.Format("20060102T150405Z") + "-" + hex.EncodeToString(nonce[:4]),
	}
	return in, in.validate()
}

// Marshal returns the record file bytes.
func (in *Intent) Marshal() ([]byte, error) { return record.MarshalFile(in) }

// Parse reads an intent record, refusing anything but its canonical bytes.
func Parse(data []byte) (*Intent, error) {
	if k, err := record.KindOf(data); err == nil && k == KindV1 {
		return nil, &VersionError{Kind: k}
	}
	var in Intent
	if err := record.Parse(data, &in); err != nil {
		return nil, &MalformedError{err.Error()}
	}
	if in.Kind != Kind {
		return nil, &MalformedError{fmt.Sprintf("kind is %q, want %q", in.Kind, Kind)}
	}
	if err := in.validate(); err != nil {
		return nil, &MalformedError{err.Error()}
	}
	// Every field is present: the record re-encodes to its own bytes.
	if out, err := in.Marshal(); err != nil || !bytes.Equal(bytes.TrimSuffix(out, []byte("\n")), bytes.TrimSuffix(data, []byte("\n"))) {
		return nil, &MalformedError{"a field is missing"}
	}
	return &in, nil
}

func (in *Intent) validate() error {
	switch {
	case !idRE.MatchString(in.ID):
		return errors.New("bad id")
	case !slices.Contains(policy.Actions, in.Action):
		return fmt.Errorf("unknown action %q", in.Action)
	case !nameRE.MatchString(in.Env):
		return errors.New("bad env")
	case !nameRE.MatchString(in.Requester):
		return errors.New("bad requester")
	case len(in.Nonce) != 32 || !hexRE.MatchString(in.Nonce):
		return errors.New("bad nonce")
	case (len(in.Commit) != 40 && len(in.Commit) != 64) || !hexRE.MatchString(in.Commit):
		return errors.New("bad commit")
	case len(in.ManifestSHA256) != 64 || !hexRE.MatchString(in.ManifestSHA256):
		return errors.New("bad or missing manifest_sha256")
	case in.PlanSHA256 != "" && (len(in.PlanSHA256) != 64 || !hexRE.MatchString(in.PlanSHA256)):
		return errors.New("bad plan_sha256")
	case len(in.Reason) > 2000 || len(in.Ticket) > 200 || len(in.Tag) > 250:
		return errors.New("reason, ticket or tag too long")
	}
	c, err1 := time.Parse(time.RFC3339, in.Created)
	e, err2 := time.Parse(time.RFC3339, in.Expires)
	if err1 != nil || err2 != nil || !e.After(c) || c.UTC().Format(time.RFC3339) != in.Created || e.UTC().Format(time.RFC3339) != in.Expires {
		return errors.New("bad created or expires (RFC 3339, UTC, whole seconds)")
	}
	return nil
}

// Times returns the parsed created and expires times.
func (in *Intent) Times() (created, expires time.Time) {
	created, _ = time.Parse(time.RFC3339, in.Created)
	expires, _ = time.Parse(time.RFC3339, in.Expires)
	return
}

// Token is what the operator types to confirm an apply: derived from the
// intent id and the env, so it cannot be typed from habit.
func (in *Intent) Token() string {
	h := hexSum(in.ID + "\n" + in.Env)
	return in.Env + "-" + h[:6]
}

// Typed verification errors: what the caller does next depends on which.

// MismatchError: the intent is for another env, action, commit, manifest or
// plan (T7). Field names which.
type MismatchError struct {
	Field     string
	Got, Want string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("intent is for %s %q, but this is %s %q", e.Field, e.Got, e.Field, e.Want)
}

// ExpiredError: outside the intent's lifetime, or a lifetime longer than the
// policy allows (T6).
type ExpiredError struct{ Reason string }

func (e *ExpiredError) Error() string { return "intent " + e.Reason }

// ClockError: the clock is earlier than the audit trail says time has
// reached (T24).
type ClockError struct{ Now, Trail time.Time }

func (e *ClockError) Error() string {
	return fmt.Sprintf("the clock (%s) is earlier than the audit trail's newest checkpoint (%s)", e.Now.Format(time.RFC3339), e.Trail.Format(time.RFC3339))
}

// UsedError: the intent's nonce was consumed already (T3).
type UsedError struct{ Seq int64 }

func (e *UsedError) Error() string {
	return fmt.Sprintf("intent was already used (audit entry %d); each intent authorises one action", e.Seq)
}

// ApprovalError: not enough of the right signatures.
type ApprovalError struct {
	Err  error
	Rule string
}

func (e *ApprovalError) Error() string { return e.Err.Error() + " (" + e.Rule + ")" }
func (e *ApprovalError) Unwrap() error { return e.Err }

// Expect is what an intent must match, and the facts it is judged by.
type Expect struct {
	Env, Action string
	Commit      string // the governed commit (gittag.Governed)
	// ManifestSHA256 is the SHA-256 of governance/MANIFEST's bytes now.
	ManifestSHA256 string
	PlanSHA256     string    // the plan being applied; "" when none
	Now            time.Time // fixed once per verification
	TrailTime      time.Time // newest checkpoint time of the audit trail
	MaxTTL         time.Duration
	// Used returns the audit seq that consumed nonce, or -1.
	Used func(nonce string) int64
}

// Verified describes an intent that passed.
type Verified struct {
	Intent    *Intent
	Approvers []string
}

// RequesterError: the intent does not carry a valid signature by the signer
// it names as requester. The requester is the owner of the key that created
// and signed it; a name alone proves nothing (T31).
type RequesterError struct {
	ID, Requester string
}

func (e *RequesterError) Error() string {
	return fmt.Sprintf("intent %s names %q as requester, but carries no valid signature of theirs", e.ID, e.Requester)
}

// Verify applies every rule. sigs are the intent's signatures; reg is the
// trusted signers registry; rule is the policy's approval rule for the action.
func Verify(in *Intent, data []byte, sigs []*signature.Signature, reg *signers.Registry, rule policy.Approval, x Expect) (*Verified, error) {
	for _, m := range []struct{ field, got, want string }{
		{"env", in.Env, x.Env}, {"action", in.Action, x.Action}, {"commit", in.Commit, x.Commit},
		{"manifest_sha256", in.ManifestSHA256, x.ManifestSHA256},
	} {
		if m.got != m.want {
			return nil, &MismatchError{Field: m.field, Got: m.got, Want: m.want}
		}
	}
	if in.PlanSHA256 != "" && x.PlanSHA256 != in.PlanSHA256 {
		return nil, &MismatchError{Field: "plan sha256", Got: in.PlanSHA256, Want: orNone(x.PlanSHA256)}
	}
	if !x.TrailTime.IsZero() && x.Now.Before(x.TrailTime.Add(-signature.ClockSkew)) {
		return nil, &ClockError{Now: x.Now, Trail: x.TrailTime}
	}
	created, expires := in.Times()
	switch {
	case created.After(x.Now.Add(signature.ClockSkew)):
		return nil, &ExpiredError{"is not valid yet (created " + in.Created + ")"}
	case !x.Now.Before(expires):
		return nil, &ExpiredError{"expired at " + in.Expires}
	case x.MaxTTL > 0 && expires.Sub(created) > x.MaxTTL:
		return nil, &ExpiredError{fmt.Sprintf("lives %s, longer than the policy's max_ttl of %s", expires.Sub(created), x.MaxTTL)}
	}
	if x.Used != nil {
		if seq := x.Used(in.Nonce); seq >= 0 {
			return nil, &UsedError{Seq: seq}
		}
	}
	exclude := map[string]string{}
	if rule.RequesterCounts == nil || !*rule.RequesterCounts {
		exclude[in.Requester] = "the requester's own signature is not an approval"
	}
	outcomes := reg.Check(data, sigs, Kind, x.Now, signers.Current)
	requesterSigned := false
	for _, o := range outcomes {
		if o.Err == nil && o.Signer.ID == in.Requester {
			requesterSigned = true
		}
	}
	if !requesterSigned {
		return nil, &RequesterError{ID: in.ID, Requester: in.Requester}
	}
	desc := fmt.Sprintf("%s needs %d approval(s) from %s", in.Action, rule.Count, strings.Join(rule.Roles, "/"))
	if len(rule.RequireOneOf) > 0 {
		desc += ", at least one " + strings.Join(rule.RequireOneOf, " or ")
	}
	ids, err := signers.Count(outcomes, signers.Requirement{What: "intent " + in.ID, Roles: rule.Roles, Threshold: rule.Count, Exclude: exclude})
	if err != nil {
		return nil, &ApprovalError{Err: err, Rule: desc}
	}
	if len(rule.RequireOneOf) > 0 {
		ok := false
		for _, id := range ids {
			if s := reg.Lookup(id); s != nil && s.HasAnyRole(rule.RequireOneOf) {
				ok = true
			}
		}
		if !ok {
			return nil, &ApprovalError{Err: fmt.Errorf("intent %s is approved by %s, none of whom is %s", in.ID, strings.Join(ids, ", "), strings.Join(rule.RequireOneOf, " or ")), Rule: desc}
		}
	}
	return &Verified{Intent: in, Approvers: ids}, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
