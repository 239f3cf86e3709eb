package govern

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/breakglass"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/signers"
)

// WindowFacts are the facts a break-glass window is judged by: the anchor
// read from the authoritative evidence store, the trusted registry and
// policy.yaml's approval rule for break-glass.
func WindowFacts(ix *anchor.Index, reg *signers.Registry, pol *policy.Policy, now time.Time) breakglass.Facts {
	f := breakglass.Facts{Artifact: ix.Artifact, Used: ix.UsedSeq, Registry: reg, Now: now, TrailTime: ix.NewestCheckpoint()}
	if pol != nil {
		f.Rule = pol.Gates.Approvals[breakglass.Action]
	}
	return f
}

// CurrentWindow returns the break-glass window open now, as the anchor
// records it and its signed records bear it out; else a typed error from
// package breakglass (no window, lapsed, unverified, clock). When several
// unended windows are recorded, the newest that verifies counts.
func CurrentWindow(ix *anchor.Index, reg *signers.Registry, pol *policy.Policy, now time.Time) (*breakglass.Verified, error) {
	if ix == nil {
		return nil, errors.New("the audit trail could not be read, so no break-glass window can be")
	}
	unended := ix.Unended()
	if len(unended) == 0 {
		return nil, &breakglass.NoWindowError{Last: ix.LatestWindow()}
	}
	f := WindowFacts(ix, reg, pol, now)
	var first error
	for i := len(unended) - 1; i >= 0; i-- {
		v, err := breakglass.Check(unended[i], f)
		if err == nil {
			return v, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// WindowHint says what to do about a window that is not open.
func WindowHint(err error) string {
	var (
		no *breakglass.NoWindowError
		lp *breakglass.LapsedError
		uv *breakglass.UnverifiedError
		ck *breakglass.ClockError
	)
	switch {
	case errors.As(err, &no), errors.As(err, &lp):
		return "open a window under a break-glass intent signed by two people: `groundzero breakglass open --reason TEXT --ttl DURATION --intent FILE`; or use the CI path"
	case errors.As(err, &uv):
		return "an entry alone opens nothing; investigate who wrote it (`groundzero audit show`), and open a window with `groundzero breakglass open`"
	case errors.As(err, &ck):
		return "fix the system clock; an earlier clock could revive an expired window"
	}
	return ""
}

// BreakGlassGate judges the interactive path (apply, bootstrap) against
// break-glass windows: with breakglass.require_window set it passes only
// under an open, verified window for this environment. Without it, an
// open window is reported and nothing else changes.
func (r *Run) BreakGlassGate(command string) bool {
	if r.Policy == nil || r.Gates == nil {
		return true
	}
	required := r.Policy.BreakGlass.RequireWindow
	v, err := CurrentWindow(r.Gates.Anchor, r.Gates.Registry(), r.Policy, r.cfg.Now)
	if err == nil && v.Marker.Env != r.EnvName {
		err = fmt.Errorf("break-glass window %s is open for environment %s, not %s", v.Marker.ID, v.Marker.Env, r.EnvName)
	}
	if err == nil && !r.Gates.Trusted {
		err = errors.New("the signers registry is not trusted, so no break-glass window can be verified")
	}
	if err != nil {
		if !required {
			return true
		}
		return r.add(gate.Result{Name: "breakglass", Detail: fmt.Sprintf("interactive %s needs an open break-glass window (policy.yaml breakglass.require_window): %v", command, err), Hint: WindowHint(err)})
	}
	m := v.Marker
	return r.add(gate.Result{Name: "breakglass", OK: true, Detail: fmt.Sprintf("break-glass window %s open until %s for %s, opened by %s, intent %s signed by %s",
		m.ID, m.Expires, m.Env, m.Opener, m.Intent, strings.Join(v.People, ", "))})
}

// OpenRequest is what `groundzero breakglass open` asks for.
type OpenRequest struct {
	Intent IntentFile
	Reason string
	TTL    time.Duration
	Opener string // the registry signer who owns the opening key
}

// OpenBreakGlass judges a request to open a window, after the static
// gates: no window open, the TTL within breakglass.max_ttl, a break-glass
// intent for this environment approved by two distinct people (unexpired,
// unused, clock not behind the trail), the opener one of them, and, where
// policy.yaml sets gates.certified_machine, a certified machine. It notes
// the intent's consumption and returns the unsigned marker; nil when a gate
// stopped it. The caller signs and keeps the marker, then records the
// events, BREAK_GLASS_ACTIVE last.
func (r *Run) OpenBreakGlass(ctx context.Context, req OpenRequest) (*breakglass.Marker, error) {
	fail := func(detail, hint string) (*breakglass.Marker, error) {
		r.add(gate.Result{Name: "breakglass", Detail: detail, Hint: hint})
		return nil, nil
	}
	if v, err := CurrentWindow(r.Gates.Anchor, r.Gates.Registry(), r.Policy, r.cfg.Now); err == nil {
		return fail(fmt.Sprintf("break-glass window %s is open already, until %s", v.Marker.ID, v.Marker.Expires), "close it first: `groundzero breakglass close --incident FILE`")
	} else {
		var ck *breakglass.ClockError
		if errors.As(err, &ck) {
			return fail(err.Error(), WindowHint(err))
		}
	}
	maxTTL, _ := policy.ParseDuration(r.Policy.BreakGlass.MaxTTL)
	if req.TTL <= 0 || req.TTL > maxTTL {
		return fail(fmt.Sprintf("--ttl %s is not within the policy's breakglass.max_ttl of %s", req.TTL, maxTTL), "ask for a shorter window, or change breakglass.max_ttl through review")
	}
	if n := len(strings.TrimSpace(req.Reason)); n < 10 || n > 2000 {
		return nil, usage(errors.New("--reason is required: 10 to 2000 characters saying why"), "")
	}
	in := req.Intent.Intent
	if in.Action != breakglass.Action {
		return fail(fmt.Sprintf("intent %s is for %s; a break-glass window needs an intent with action break-glass", in.ID, in.Action),
			"create one with `groundzero intent new --action break-glass` and have two people approve it")
	}
	v, err := VerifyIntent(ctx, r.Gates, r.Policy, req.Intent, r.EnvName, "")
	var ue *UsageError
	if errors.As(err, &ue) {
		return nil, ue
	}
	var people []string
	if err == nil {
		sigs, serr := sigfile.Load(r.cfg.Repo, req.Intent.Rel)
		if serr != nil {
			return nil, usage(serr, "")
		}
		people, err = breakglass.Approve(in, req.Intent.Data, sigs, r.Gates.Registry(), r.Policy.Gates.Approvals[breakglass.Action], r.cfg.Now, r.Gates.Anchor.NewestCheckpoint())
	}
	if err != nil {
		r.add(gate.Result{Name: "intent", Detail: fmt.Sprintf("intent %s: %v", in.ID, err), Hint: IntentHint(err)})
		return nil, nil
	}
	r.add(gate.Result{Name: "intent", OK: true, Detail: fmt.Sprintf("intent %s (break-glass on %s) requested by %s, approved by %s", in.ID, in.Env, in.Requester, strings.Join(v.Approvers, ", "))})
	if !slices.Contains(people, req.Opener) {
		return fail(fmt.Sprintf("the opening key belongs to %s, who is not one of the people who signed intent %s (%s)", orUnknown(req.Opener), in.ID, strings.Join(people, ", ")),
			"one of the two operators opens the window, with their own key (--key)")
	}
	if !r.MachineGate("breakglass open", in.ID) {
		return nil, nil
	}
	_, expires := in.Times()
	m, err := breakglass.NewMarker(breakglass.OpenRequest{
		Env: r.EnvName, Reason: req.Reason, Opener: req.Opener, TTL: req.TTL,
		IntentID: in.ID, IntentNonce: in.Nonce, IntentSHA256: sha256hex(req.Intent.Data), Requester: in.Requester,
		IntentExpires: expires, Approvers: people,
	}, r.cfg.Now)
	if err != nil {
		return nil, usage(err, "")
	}
	r.add(gate.Result{Name: "breakglass", OK: true, Detail: fmt.Sprintf("window %s for %s until %s (%s), opened by %s; people: %s", m.ID, m.Env, m.Expires, m.TTL, m.Opener, strings.Join(people, ", "))})
	return m, nil
}

// NoteOpened notes the window's opening, once its signed marker is kept:
// the intent consumed, then BREAK_GLASS_ACTIVE. artifacts name what the
// evidence store keeps of it.
func (r *Run) NoteOpened(m *breakglass.Marker, in IntentFile, markerSHA string, artifacts []string) {
	r.Note(anchor.Consumed, in.Intent.ID, map[string]any{"nonce": in.Intent.Nonce, "expires": in.Intent.Expires, "env": r.EnvName, "action": in.Intent.Action, "breakglass": m.ID})
	r.Note(anchor.BreakGlassActive, m.ID, map[string]any{
		"id": m.ID, "env": m.Env, "expires": m.Expires, "opened": m.Opened, "ttl": m.TTL, "marker_sha256": markerSHA,
		"intent": m.Intent, "intent_sha256": m.IntentSHA256, "opener": m.Opener, "requester": m.Requester, "approvers": m.Approvers,
		"reason": m.Reason, "relaxes": m.Relaxes, "marker": breakglass.MarkerPath(m.ID), "artifacts": artifacts,
	})
}

func orUnknown(s string) string {
	if s == "" {
		return "no registered signer"
	}
	return s
}
