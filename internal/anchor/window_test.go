package anchor

import (
	"strings"
	"testing"
	"time"

	"github.com/groundzero/groundzero/audit"
)

func bgEntry(seq int64, action, id, expires string) *audit.Entry {
	d := map[string]any{"id": id}
	if action == BreakGlassActive {
		d["env"], d["expires"], d["marker_sha256"] = "dev", expires, strings.Repeat("a", 64)
	}
	return &audit.Entry{Seq: seq, Action: action, Details: d}
}

// The trail is read to fail closed: the first opening of an id counts, an
// end counts even when recorded before the opening, a close after a lapse
// is kept, and malformed entries are ignored.
func TestNoteWindow(t *testing.T) {
	const a, b, c = "20261201T100000Z-1a2b3c4d", "20261201T110000Z-00000000", "20261201T120000Z-ffffffff"
	ix := &Index{}
	for _, e := range []*audit.Entry{
		bgEntry(1, BreakGlassActive, a, "2026-12-01T14:00:00Z"),
		bgEntry(2, BreakGlassActive, a, "2099-01-01T00:00:00Z"), // a second opening: ignored
		bgEntry(3, BreakGlassClosed, b, ""),                     // an end before its opening
		bgEntry(4, BreakGlassActive, b, "2026-12-01T15:00:00Z"),
		bgEntry(5, BreakGlassActive, "not-an-id", "2026-12-01T15:00:00Z"),
		bgEntry(6, BreakGlassActive, c, "2026-12-01 15:00"), // malformed expiry
		bgEntry(7, BreakGlassLapsed, a, ""),
		bgEntry(8, BreakGlassClosed, a, ""),
	} {
		ix.addEntry(e)
	}
	if len(ix.Windows) != 2 {
		t.Fatalf("Windows = %+v, want 2", ix.Windows)
	}
	wa := ix.Window(a)
	if wa.Seq != 1 || wa.Expires != "2026-12-01T14:00:00Z" || wa.End != BreakGlassLapsed || wa.EndSeq != 7 || wa.ClosedSeq != 8 {
		t.Errorf("window a = %+v", wa)
	}
	wb := ix.Window(b)
	if wb.Seq != 4 || wb.End != BreakGlassClosed || wb.ClosedSeq != 3 {
		t.Errorf("window b = %+v", wb)
	}
	if u := ix.Unended(); len(u) != 0 {
		t.Errorf("Unended = %+v, want none", u)
	}
	if u := ix.Unclosed(); len(u) != 0 {
		t.Errorf("Unclosed = %+v, want none", u)
	}
	if l := ix.LatestWindow(); l == nil || l.ID != b {
		t.Errorf("LatestWindow = %+v, want %s", l, b)
	}
}

// A state bundle carries the windows, and one that leaves a window out does
// not agree with the entries it sums up.
func TestStateWindows(t *testing.T) {
	st := NewState()
	if _, err := st.extend([]byte(`{"action":"note","actor":"a","details":{},"prev":"` + audit.GenesisPrev + `","seq":0,"subject":"s","time":"2026-12-01T10:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	st.note(bgEntry(1, BreakGlassActive, "20261201T100000Z-1a2b3c4d", "2026-12-01T14:00:00Z"))
	data, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"breakglass":[{"env":"dev","expires":"2026-12-01T14:00:00Z","id":"20261201T100000Z-1a2b3c4d","marker":"`) {
		t.Errorf("state = %s", data)
	}
	back, err := parseState(data)
	if err != nil {
		t.Fatal(err)
	}
	ix := &Index{Windows: back.Windows}
	if u := ix.Unended(); len(u) != 1 || u[0].Seq != 1 || u[0].ExpiresAt().IsZero() {
		t.Errorf("index from the parsed state: Unended = %+v", u)
	}
	if d := NewState().differs(st, time.Now()); d != "the break-glass windows differ" {
		t.Errorf("differs = %q, want the break-glass windows to differ", d)
	}
	if d := st.clone().differs(st, time.Now()); d != "" {
		t.Errorf("differs(clone) = %q, want none", d)
	}
}
