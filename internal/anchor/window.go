package anchor

import (
	"regexp"
	"time"

	"github.com/groundzero/groundzero/audit"
)

// Window is a break-glass window as the trail records it: the
// BREAK_GLASS_ACTIVE entry that opened it (its marker record's SHA-256,
// environment and expiry), and the entry that ended it, if any. An end
// recorded for an id with no opening still ends that id: the trail is read
// to fail closed.
type Window struct {
	ID      string `json:"id"`
	Env     string `json:"env,omitempty"`
	Seq     int64  `json:"seq"` // the BREAK_GLASS_ACTIVE entry; -1 when none
	Marker  string `json:"marker,omitempty"`
	Expires string `json:"expires,omitempty"`
	End     string `json:"end,omitempty"` // BreakGlassClosed or BreakGlassLapsed
	EndSeq  int64  `json:"end_seq,omitempty"`
	// ClosedSeq is the BREAK_GLASS_CLOSED entry, also after a lapse (0:
	// none).
	ClosedSeq int64 `json:"closed_seq,omitempty"`
}

// ExpiresAt is the window's expiry (zero when its opening is not recorded).
func (w Window) ExpiresAt() time.Time {
	t, _ := time.Parse(time.RFC3339, w.Expires)
	return t
}

var (
	windowIDRE = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$`)
	sha256RE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// noteWindow adds a break-glass entry to ws; false when e is not one, or
// is malformed.
func noteWindow(ws []Window, e *audit.Entry) ([]Window, bool) {
	switch e.Action {
	case BreakGlassActive, BreakGlassClosed, BreakGlassLapsed:
	default:
		return ws, false
	}
	id, _ := e.Details["id"].(string)
	if !windowIDRE.MatchString(id) {
		return ws, false
	}
	i := -1
	for j := range ws {
		if ws[j].ID == id {
			i = j
			break
		}
	}
	if e.Action == BreakGlassActive {
		marker, _ := e.Details["marker_sha256"].(string)
		env, _ := e.Details["env"].(string)
		exp, _ := e.Details["expires"].(string)
		if t, err := time.Parse(time.RFC3339, exp); err != nil || t.UTC().Format(time.RFC3339) != exp || !sha256RE.MatchString(marker) || env == "" {
			return ws, false
		}
		switch {
		case i < 0:
			return append(ws, Window{ID: id, Env: env, Seq: e.Seq, Marker: marker, Expires: exp}), true
		case ws[i].Seq < 0:
			ws[i].Env, ws[i].Seq, ws[i].Marker, ws[i].Expires = env, e.Seq, marker, exp
		}
		return ws, true // a second opening of one id changes nothing
	}
	if i < 0 {
		ws = append(ws, Window{ID: id, Seq: -1})
		i = len(ws) - 1
	}
	if ws[i].End == "" {
		ws[i].End, ws[i].EndSeq = e.Action, e.Seq
	}
	if e.Action == BreakGlassClosed && ws[i].ClosedSeq == 0 {
		ws[i].ClosedSeq = e.Seq
	}
	return ws, true
}

// Unclosed returns the windows whose opening is recorded and whose close is
// not (open, or lapsed), oldest first.
func (ix *Index) Unclosed() []Window {
	if ix == nil {
		return nil
	}
	var out []Window
	for _, w := range ix.Windows {
		if w.Seq >= 0 && w.ClosedSeq == 0 {
			out = append(out, w)
		}
	}
	return out
}

// Window returns the window with this id, or nil.
func (ix *Index) Window(id string) *Window {
	if ix == nil {
		return nil
	}
	for i := range ix.Windows {
		if ix.Windows[i].ID == id {
			w := ix.Windows[i]
			return &w
		}
	}
	return nil
}

// Unended returns the windows whose opening is recorded and whose end is
// not, oldest first: each is open until its expiry, then lapsed.
func (ix *Index) Unended() []Window {
	if ix == nil {
		return nil
	}
	var out []Window
	for _, w := range ix.Windows {
		if w.Seq >= 0 && w.End == "" {
			out = append(out, w)
		}
	}
	return out
}

// LatestWindow returns the most recently opened window, or nil.
func (ix *Index) LatestWindow() *Window {
	if ix == nil {
		return nil
	}
	var best *Window
	for i := range ix.Windows {
		if w := &ix.Windows[i]; w.Seq >= 0 && (best == nil || w.Seq > best.Seq) {
			c := *w
			best = &c
		}
	}
	return best
}
