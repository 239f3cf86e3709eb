package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/breakglass"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/trail"
)

// bgState is what one invocation learnt about break-glass windows: the
// window open (judged once), and what it told the user already.
type bgState struct {
	judged  bool
	open    *breakglass.Verified
	banner  bool
	lapsed  map[string]bool
	warned  map[string]bool
	openErr error
}

func (a *app) bg() *bgState {
	if a.bgState == nil {
		a.bgState = &bgState{lapsed: map[string]bool{}, warned: map[string]bool{}}
	}
	return a.bgState
}

// windowRegistry is the repository's registry when its chain verifies
// against the pin and the anchor; nil otherwise.
func (a *app) windowRegistry(r *repo.Repo, ix *anchor.Index) *signers.Registry {
	g := gate.Load(r, a.now, a.trustRoot(""), false, ix, nil)
	if !g.Trusted {
		return nil
	}
	return g.Registry()
}

// openWindow judges, once per command, whether a break-glass window is open
// in the anchor ix.
func (a *app) openWindow(r *repo.Repo, ix *anchor.Index) (*breakglass.Verified, error) {
	st := a.bg()
	if st.judged {
		return st.open, st.openErr
	}
	st.judged = true
	// With no window left unended there is nothing to verify, and no
	// reason to load and check the registry chain on every command.
	var reg *signers.Registry
	if len(ix.Unended()) > 0 {
		reg = a.windowRegistry(r, ix)
	}
	st.open, st.openErr = govern.CurrentWindow(ix, reg, a.evidencePolicy(r), a.now)
	return st.open, st.openErr
}

// breakGlass runs when a command records: a window that reached its expiry
// unclosed is recorded as lapsed (once), and while a verified window is
// open every entry names it ("breakglass": ID) and the user sees a banner.
// An entry claiming a window that does not verify relaxes nothing and
// tags nothing; the user is warned.
func (rec *recorder) breakGlass(store trail.Store) {
	a := rec.a
	if rec.r == nil {
		return
	}
	ix := a.anchors[store]
	if ix == nil {
		ix, _ = a.anchor(rec.r)
	}
	if ix == nil || ix.Report == nil || !ix.Report.OK() {
		return
	}
	a.noteLapses(rec, ix)
	v, err := a.openWindow(rec.r, ix)
	var uv *breakglass.UnverifiedError
	if errors.As(err, &uv) && !a.bg().warned[uv.ID] {
		a.bg().warned[uv.ID] = true
		a.info("warning: %v; it relaxes nothing", err)
	}
	if v == nil {
		return
	}
	a.bannerOnce(v)
	for i := range rec.events {
		if rec.events[i].Details == nil {
			rec.events[i].Details = map[string]any{}
		}
		if _, set := rec.events[i].Details["breakglass"]; !set {
			rec.events[i].Details["breakglass"] = v.Marker.ID
		}
	}
}

// noteLapses adds a BREAK_GLASS_LAPSED event for each window that reached
// its expiry with no end recorded.
func (a *app) noteLapses(rec *recorder, ix *anchor.Index) {
	st := a.bg()
	for _, w := range ix.Unended() {
		if a.now.Before(w.ExpiresAt()) || st.lapsed[w.ID] {
			continue
		}
		st.lapsed[w.ID] = true
		rec.add(anchor.BreakGlassLapsed, w.ID, map[string]any{"id": w.ID, "env": w.Env, "expires": w.Expires, "marker_sha256": w.Marker, "opened_seq": w.Seq})
		a.info("break-glass window %s lapsed at %s: nothing more is accepted under it; record its close with `groundzero breakglass close --incident FILE`", w.ID, w.Expires)
	}
}

// bannerOnce tells the user, once per command, that a window is open.
func (a *app) bannerOnce(v *breakglass.Verified) {
	st := a.bg()
	if st.banner {
		return
	}
	st.banner = true
	m := v.Marker
	left := v.Window.ExpiresAt().Sub(a.now).Truncate(time.Second)
	fmt.Fprintf(a.stderr, "groundzero: BREAK-GLASS window %s is open for %s until %s (%s left), opened by %s: every action is recorded under it\n",
		m.ID, m.Env, m.Expires, left, m.Opener)
}
