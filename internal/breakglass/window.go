package breakglass

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/intent"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/trail"
)

// Action is the intent action that opens a window.
const Action = "break-glass"

// MinPeople is the fewest distinct people behind a window, whatever
// policy.yaml says: the two-person rule.
const MinPeople = 2

// Typed results of Check: what the caller does next depends on which.

// NoWindowError: no window was ever opened, or the newest one ended.
type NoWindowError struct{ Last *anchor.Window }

func (e *NoWindowError) Error() string {
	if e.Last == nil {
		return "no break-glass window is open: none was ever opened"
	}
	how, seq := "closed", e.Last.ClosedSeq
	if e.Last.End == anchor.BreakGlassLapsed {
		how, seq = "lapsed", e.Last.EndSeq
		if e.Last.ClosedSeq > 0 {
			how = fmt.Sprintf("lapsed and was closed (audit entry %d)", e.Last.ClosedSeq)
		}
	}
	return fmt.Sprintf("no break-glass window is open: the last one, %s, %s (audit entry %d)", e.Last.ID, how, seq)
}

// LapsedError: the window reached its expiry without a close.
type LapsedError struct {
	ID      string
	Expires string
}

func (e *LapsedError) Error() string {
	return fmt.Sprintf("break-glass window %s lapsed at %s; nothing is accepted under it", e.ID, e.Expires)
}

// UnverifiedError: the trail records a window whose signed records do not
// bear it out (written to the evidence store without the two-person
// intent, or altered).
type UnverifiedError struct {
	ID     string
	Reason string
}

func (e *UnverifiedError) Error() string {
	return fmt.Sprintf("break-glass window %s is recorded but does not verify: %s", e.ID, e.Reason)
}

// ClockError: the clock is earlier than the audit trail's newest
// checkpoint (T24).
type ClockError struct{ Now, Trail time.Time }

func (e *ClockError) Error() string {
	return fmt.Sprintf("the clock (%s) is earlier than the audit trail's newest checkpoint (%s)", e.Now.Format(time.RFC3339), e.Trail.Format(time.RFC3339))
}

// Facts are what Check judges a window by, read from the authoritative
// evidence store.
type Facts struct {
	// Artifact reads an artifact of the store.
	Artifact func(name string) ([]byte, error)
	// Used returns the audit seq that consumed nonce, or -1.
	Used      func(nonce string) int64
	Registry  *signers.Registry // the trusted registry
	Rule      policy.Approval   // policy.yaml's approval rule for break-glass
	Now       time.Time
	TrailTime time.Time // the newest trusted checkpoint's time
}

// Verified is a window that Check found open.
type Verified struct {
	Marker *Marker
	Window anchor.Window
	// People are the distinct people who signed the intent.
	People []string
}

// Check says whether w is open: recorded and not ended, unexpired at a
// clock not behind the trail, and borne out by its signed marker and its
// two-person intent, whose nonce the trail consumed. It reads nothing but
// through f.
func Check(w anchor.Window, f Facts) (*Verified, error) {
	switch {
	case w.End != "":
		return nil, &NoWindowError{Last: &w}
	case w.Seq < 0:
		return nil, &UnverifiedError{ID: w.ID, Reason: "its opening is not recorded"}
	case !f.TrailTime.IsZero() && f.Now.Before(f.TrailTime.Add(-signature.ClockSkew)):
		return nil, &ClockError{Now: f.Now, Trail: f.TrailTime}
	case !f.Now.Before(w.ExpiresAt()):
		return nil, &LapsedError{ID: w.ID, Expires: w.Expires}
	}
	bad := func(format string, args ...any) (*Verified, error) {
		return nil, &UnverifiedError{ID: w.ID, Reason: fmt.Sprintf(format, args...)}
	}
	if f.Registry == nil {
		return bad("no trusted signers registry to check its signatures against")
	}
	data, err := f.Artifact(MarkerArtifact(w.ID))
	if err != nil {
		return bad("its marker: %v", err)
	}
	if SHA256(data) != w.Marker {
		return bad("the marker artifact %s hashes to sha256:%.16s, not what audit entry %d records", MarkerArtifact(w.ID), SHA256(data), w.Seq)
	}
	m, err := ParseMarker(MarkerArtifact(w.ID), data)
	if err != nil {
		return bad("%v", err)
	}
	if m.ID != w.ID || m.Env != w.Env || m.Expires != w.Expires {
		return bad("the marker does not match audit entry %d", w.Seq)
	}
	sigs, err := artifactSignatures(f.Artifact, MarkerArtifact(w.ID))
	if err != nil {
		return bad("%v", err)
	}
	signed := false
	for _, o := range f.Registry.Check(data, sigs, Kind, f.Now, signers.Current) {
		if o.Err == nil && o.Signer != nil && o.Signer.ID == m.Opener {
			signed = true
		}
	}
	if !signed {
		return bad("the marker carries no valid signature of its opener %q", m.Opener)
	}
	idata, err := f.Artifact(IntentArtifact(w.ID))
	if err != nil {
		return bad("its intent: %v", err)
	}
	if SHA256(idata) != m.IntentSHA256 {
		return bad("the intent artifact does not hash to the marker's intent_sha256")
	}
	in, err := intent.Parse(idata)
	if err != nil {
		return bad("its intent: %v", err)
	}
	if in.ID != m.Intent || in.Nonce != m.IntentNonce || in.Env != m.Env {
		return bad("the intent artifact is not the one the marker names")
	}
	isigs, err := artifactSignatures(f.Artifact, IntentArtifact(w.ID))
	if err != nil {
		return bad("%v", err)
	}
	people, err := Approve(in, idata, isigs, f.Registry, f.Rule, f.Now, f.TrailTime)
	if err != nil {
		return bad("its intent %s: %v", in.ID, err)
	}
	if f.Used == nil || f.Used(in.Nonce) < 0 {
		return bad("the trail never consumed its intent %s", in.ID)
	}
	return &Verified{Marker: m, Window: w, People: people}, nil
}

// Approve checks a break-glass intent's signatures at now: the requester's
// own, and the approvals policy.yaml requires, from at least MinPeople
// distinct people in all (keys and signatures never count, people do). It
// does not judge env, commit or nonce; the caller does. It returns the
// people, requester first.
func Approve(in *intent.Intent, data []byte, sigs []*signature.Signature, reg *signers.Registry, rule policy.Approval, now, trailTime time.Time) ([]string, error) {
	if in.Action != Action {
		return nil, fmt.Errorf("intent %s is for %s, not %s", in.ID, in.Action, Action)
	}
	v, err := intent.Verify(in, data, sigs, reg, rule, intent.Expect{
		Env: in.Env, Action: Action, Commit: in.Commit, ManifestSHA256: in.ManifestSHA256, PlanSHA256: in.PlanSHA256,
		Now: now, TrailTime: trailTime,
	})
	if err != nil {
		return nil, err
	}
	people := []string{in.Requester}
	for _, id := range v.Approvers {
		if id != in.Requester {
			people = append(people, id)
		}
	}
	if len(people) < MinPeople {
		return nil, &intent.ApprovalError{Err: fmt.Errorf("intent %s is signed by %s only: break-glass needs %d distinct people", in.ID, strings.Join(people, ", "), MinPeople), Rule: "two-person rule"}
	}
	return people, nil
}

// artifactSignatures reads the detached signatures kept beside an artifact
// (NAME.asc, NAME.sig); a missing file is no signature.
func artifactSignatures(get func(string) ([]byte, error), name string) ([]*signature.Signature, error) {
	var all []*signature.Signature
	for _, scheme := range []signature.Scheme{signature.OpenPGP, signature.SSH} {
		data, err := get(name + scheme.Ext())
		if err != nil {
			var missing *trail.ArtifactMissingError
			if errors.As(err, &missing) {
				continue
			}
			return nil, err
		}
		sigs, err := signature.Parse(scheme, data)
		if err != nil {
			return nil, fmt.Errorf("%s%s: %w", name, scheme.Ext(), err)
		}
		all = append(all, sigs...)
	}
	return all, nil
}
