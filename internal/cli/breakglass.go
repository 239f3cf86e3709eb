package cli

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/breakglass"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/lock"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signers"
)

func (a *app) breakglassCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "breakglass",
		Short: "open, close and show a break-glass window; record the emergency procedure",
		Long: `A break-glass window relaxes one thing for a bounded time: the interactive
apply and bootstrap path on a certified admin machine, for when CI is
unreachable. With breakglass.require_window: true in policy.yaml that path
is refused outside a window. A window is opened under a break-glass intent
signed by two distinct people, lives at most breakglass.max_ttl (default 4h)
and no longer than its intent, and is read from the authoritative evidence
store: deleting local state neither opens nor revives one. While it is open
every command shows a banner and every audit entry names it.`,
	}
	c.AddCommand(a.breakglassOpenCmd(), a.breakglassStatusCmd(), a.breakglassCloseCmd(), a.breakglassSignCmd(),
		a.breakglassCustodyCmd(), a.breakglassStepCmd())
	return c
}

func (a *app) breakglassStatusCmd() *cobra.Command {
	var format, trustRoot string
	c := &cobra.Command{
		Use:   "status",
		Short: "say whether a break-glass window is open, read from the authoritative evidence store",
		Long: `status reads the break-glass windows from the evidence store that policy.yaml
names and says whether one is open (its signed marker and two-person intent
verify, it has not ended, and the clock is before its expiry and not behind
the trail), lapsed, closed or never opened. A window that lapsed unclosed is
recorded as BREAK_GLASS_LAPSED once. It also lists the revocations in
governance/breakglass/revocations/ still short of two people's signatures.

Exit codes:
  0  a break-glass window is open
  1  no window is open (none, closed, lapsed, or recorded but unverified),
     or the repository's copy of the marker differs from the store's
  2  usage, configuration or environment error (the store cannot be read)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			env, err := a.anchoredGates(r, trustRoot)
			if err != nil {
				return err
			}
			ix := env.Anchor
			rec := a.recorder(r)
			a.noteLapses(rec, ix)
			if err := rec.flush(nil); err != nil {
				return err
			}
			v, werr := govern.CurrentWindow(ix, env.Registry(), env.Policy, a.now)
			st := windowStatus(ix, v, werr)
			st.Pending = pendingRevocations(r, env.Registry(), env.Policy, a.now)
			markerErr := a.checkRepoMarker(r, ix.LatestWindow())
			if format == "json" {
				if err := a.printJSON(st); err != nil {
					return err
				}
			} else {
				a.printWindowStatus(st)
			}
			switch {
			case markerErr != nil:
				return markerErr
			case v != nil:
				return nil
			}
			return &Error{Code: ExitFailed, Err: werr, Hint: govern.WindowHint(werr), Quiet: true}
		},
	}
	formatFlagVar(c, &format, "text", "json")
	trustRootFlag(c, &trustRoot)
	return c
}

// WindowStatus is what `breakglass status --format json` prints.
type WindowStatus struct {
	State     string   `json:"state"` // open, lapsed, closed, unverified, none
	ID        string   `json:"id,omitempty"`
	Env       string   `json:"env,omitempty"`
	Expires   string   `json:"expires,omitempty"`
	Opener    string   `json:"opener,omitempty"`
	People    []string `json:"people,omitempty"`
	Intent    string   `json:"intent,omitempty"`
	Relaxes   []string `json:"relaxes,omitempty"`
	Seq       int64    `json:"seq,omitempty"`
	EndSeq    int64    `json:"end_seq,omitempty"`
	Detail    string   `json:"detail"`
	Pending   []string `json:"pending_revocations"`
	Authority string   `json:"store"`
}

func windowStatus(ix *anchor.Index, v *breakglass.Verified, err error) *WindowStatus {
	st := &WindowStatus{Authority: redactURL(ix.Store), Pending: []string{}}
	if v != nil {
		m := v.Marker
		st.State, st.ID, st.Env, st.Expires, st.Opener, st.People, st.Intent, st.Relaxes, st.Seq =
			"open", m.ID, m.Env, m.Expires, m.Opener, v.People, m.Intent, m.Relaxes, v.Window.Seq
		st.Detail = fmt.Sprintf("window %s is open for %s until %s, opened by %s under intent %s signed by %s", m.ID, m.Env, m.Expires, m.Opener, m.Intent, strings.Join(v.People, ", "))
		return st
	}
	st.Detail = err.Error()
	var (
		no *breakglass.NoWindowError
		lp *breakglass.LapsedError
		uv *breakglass.UnverifiedError
	)
	switch {
	case errors.As(err, &lp):
		st.State, st.ID = "lapsed", lp.ID
	case errors.As(err, &uv):
		st.State, st.ID = "unverified", uv.ID
	case errors.As(err, &no) && no.Last != nil && no.Last.ClosedSeq > 0:
		st.State, st.ID, st.EndSeq = "closed", no.Last.ID, no.Last.ClosedSeq
	case errors.As(err, &no) && no.Last != nil:
		st.State, st.ID, st.EndSeq = "lapsed", no.Last.ID, no.Last.EndSeq
	case errors.As(err, &no):
		st.State = "none"
	default:
		st.State = "unverified"
	}
	if w := ix.Window(st.ID); w != nil {
		st.Env, st.Expires, st.Seq = w.Env, w.Expires, w.Seq
	}
	return st
}

func (a *app) printWindowStatus(st *WindowStatus) {
	fmt.Fprintf(a.stdout, "%s: %s\n", st.State, st.Detail)
	fmt.Fprintf(a.stdout, "read from %s\n", st.Authority)
	for _, p := range st.Pending {
		fmt.Fprintf(a.stdout, "pending revocation: %s\n", p)
	}
}

// anchoredGates reads what a break-glass command decides on: the trust
// root, the signers chain and the trail's anchor, refusing an anchor or a
// chain that does not verify.
func (a *app) anchoredGates(r *repo.Repo, trustRoot string) (*gate.Env, error) {
	env, err := a.gates(r, a.trustRoot(trustRoot), false)
	if err != nil {
		return nil, err
	}
	if res := env.AnchorGate(); !res.OK {
		return nil, failed(errors.New(res.Detail), res.Hint)
	}
	if err := trustedChain(env); err != nil {
		return nil, err
	}
	return env, nil
}

// registeredSigner opens the signer keySpec names and returns it with its
// owner in the signers registry, refusing a key no signer holds; hint says
// whose key to use.
func (a *app) registeredSigner(r *repo.Repo, keySpec, hint string) (sign.Signer, string, error) {
	s, spec, err := a.signer(r, keySpec)
	if err != nil {
		return nil, "", err
	}
	owner, err := a.keyOwner(r, spec)
	if err != nil {
		return nil, "", err
	}
	if owner == "" {
		return nil, "", usage(fmt.Errorf("the key %s is not a key of any signer in the registry", spec), hint)
	}
	return s, owner, nil
}

// checkRepoMarker compares the repository's copy of a window's marker with
// what the trail records: an edited copy is refused.
func (a *app) checkRepoMarker(r *repo.Repo, w *anchor.Window) error {
	if w == nil || w.Seq < 0 {
		return nil
	}
	rel := breakglass.MarkerPath(w.ID)
	data, err := r.ReadFile(rel, breakglass.MaxSize+1)
	if err != nil {
		return nil // not committed here: the store's copy is the one that counts
	}
	if got := sha256hex(data); got != w.Marker {
		return failed(fmt.Errorf("%s hashes to sha256:%.16s, but audit entry %d records the marker sha256:%.16s: the record was edited", rel, got, w.Seq, w.Marker),
			"restore it from the evidence store (artifact "+breakglass.MarkerArtifact(w.ID)+") or from git; a marker is never edited")
	}
	return nil
}

// pendingRevocations lists the break-glass revocations short of two
// people's signatures, with what to run.
func pendingRevocations(r *repo.Repo, reg *signers.Registry, pol *policy.Policy, now time.Time) []string {
	out := []string{}
	entries, err := os.ReadDir(r.Abs(breakglass.RevocationsDir))
	if err != nil {
		return out
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.HasSuffix(n, ".json") {
			continue
		}
		rel := path.Join(breakglass.RevocationsDir, n)
		data, err := r.ReadFile(rel, breakglass.MaxSize)
		if err != nil {
			continue
		}
		rv, err := breakglass.ParseRevocation(rel, data)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", rel, err))
			continue
		}
		sigs, err := sigfile.Load(r, rel)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", rel, err))
			continue
		}
		var rule policy.Approval
		if pol != nil {
			rule = pol.Gates.Approvals["revoke"]
		}
		if ids, err := lock.Approve("revocation "+rv.ID, data, sigs, reg, now, breakglass.RevocationKind, rule); err != nil {
			out = append(out, fmt.Sprintf("%s (%s %s) signed by %d of %d people: `groundzero breakglass sign %s --key KEYSPEC`", rel, rv.Subject, rv.Name, len(ids), max(rule.Count, lock.MinApprovers), rel))
		}
	}
	return out
}
