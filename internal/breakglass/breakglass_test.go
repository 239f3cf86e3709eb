package breakglass

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/strictyaml"
	"github.com/groundzero/groundzero/internal/trail"
	"github.com/groundzero/groundzero/record"
)

var now = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func testMarker(t *testing.T) (*Marker, []byte) {
	t.Helper()
	m, err := NewMarker(OpenRequest{Env: "dev", Reason: "CI is unreachable: restore state", Opener: "carol", TTL: 4 * time.Hour,
		IntentID: "20261201T095000Z-9b1c2d3e", IntentNonce: strings.Repeat("ab", 16), IntentSHA256: strings.Repeat("0", 64),
		Requester: "alice", IntentExpires: now.Add(2 * time.Hour), Approvers: []string{"carol", "alice", "bob"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return m, data
}

// The window never outlives its intent, and the marker is canonical: parse
// then format gives the same bytes.
func TestMarkerRoundTrip(t *testing.T) {
	m, data := testMarker(t)
	if m.Expires != "2026-12-01T12:00:00Z" || m.TTL != "2h0m0s" {
		t.Errorf("NewMarker expires %s (ttl %s), want the intent's expiry 2026-12-01T12:00:00Z (2h0m0s)", m.Expires, m.TTL)
	}
	if strings.Join(m.Approvers, ",") != "alice,bob,carol" {
		t.Errorf("approvers = %v, want sorted", m.Approvers)
	}
	got, err := ParseMarker("m.json", data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := got.Marshal()
	if !bytes.Equal(again, data) {
		t.Errorf("ParseMarker then Marshal = %s, want %s", again, data)
	}
	if k, _ := record.KindOf(data); k != "groundzero.break-glass/v1" {
		t.Errorf("kind = %s", k)
	}
}

// Edited, non-canonical, other-kind and one-person markers are refused;
// a break-glass revocation is not a backend lock revocation, nor the other
// way round (T9, T10).
func TestParseRefuses(t *testing.T) {
	_, data := testMarker(t)
	for name, b := range map[string][]byte{
		"spaces":       bytes.Replace(data, []byte(`{"approvers"`), []byte(`{ "approvers"`), 1),
		"unknown key":  bytes.Replace(data, []byte(`{"approvers"`), []byte(`{"admin":true,"approvers"`), 1),
		"other kind":   bytes.Replace(data, []byte(Kind), []byte(CloseKind), 1),
		"one approver": bytes.Replace(data, []byte(`["alice","bob","carol"]`), []byte(`["alice"]`), 1),
		"no newline":   bytes.TrimSuffix(data, []byte("\n")),
		"huge":         append(bytes.Repeat([]byte(" "), MaxSize), data...),
	} {
		if _, err := ParseMarker("m.json", b); err == nil {
			t.Errorf("ParseMarker(%s) = nil error, want refusal", name)
		}
	}
	rv, err := NewRevocation("20261201T100000Z-1a2b3c4d", SubjectKey, "emergency-admin", "0123456789ABCDEF0123456789ABCDEF01234567", "emergency key rotated after the window", "carol", now)
	if err != nil {
		t.Fatal(err)
	}
	rdata, _ := rv.Marshal()
	if _, err := ParseRevocation("r.json", rdata); err != nil {
		t.Fatalf("ParseRevocation = %v", err)
	}
	lockRev := []byte(`{"created":"2026-12-01T10:00:00Z","env":"dev","id":"20261201T100000Z-1a2b3c4d","intent":"20261201T100000Z-1a2b3c4d","kind":"groundzero.revocation/v1","lock":"` + strings.Repeat("a", 64) + `","nonce":"` + strings.Repeat("b", 32) + `","reason":"a reason long enough","requester":"alice","subject":"backend-lock","version":1}` + "\n")
	if _, err := ParseRevocation("r.json", lockRev); err == nil {
		t.Error("ParseRevocation accepted a backend lock revocation")
	}
	if _, err := NewRevocation("20261201T100000Z-1a2b3c4d", SubjectKey, "k", "", "emergency key rotated", "carol", now); err == nil {
		t.Error("NewRevocation of a key without its fingerprint = nil error")
	}
}

func TestParseRotated(t *testing.T) {
	good := "keys:\n  - {name: emergency-admin, old_fingerprint: 0123456789ABCDEF0123456789ABCDEF01234567, new_fingerprint: 89ABCDEF0123456789ABCDEF0123456789ABCDEF}\ncredentials:\n  - {name: ci-deploy, stored_in: \"vault:secret/ci/deploy\"}\naccess:\n  - {name: admin-session}\n"
	r, err := ParseRotated("rot.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if rs := r.Rotations(); len(rs) != 3 || rs[0].Kind != "key" || rs[1].StoredIn != "vault:secret/ci/deploy" || rs[2].Kind != "access" {
		t.Errorf("Rotations = %+v", rs)
	}
	for _, c := range []struct{ in, want string }{
		{"keys:\n  - {name: a, old_fingerprint: 0123456789ABCDEF0123456789ABCDEF01234567, new_fingerprint: 0123456789ABCDEF0123456789ABCDEF01234567}\n", "rot.yaml:2: key a: new_fingerprint is old_fingerprint"},
		{"credentials:\n  - {name: a, stored_in: \"vault:x\"}\n  - {name: a, stored_in: \"vault:y\"}\n", "rot.yaml:3: credential a is listed twice"},
		{"keys:\n  - {name: a, old_fingerprint: nothex, new_fingerprint: 0123456789ABCDEF0123456789ABCDEF01234567}\n", "rot.yaml:2"},
		{"credentials:\n  - {name: a, stored_in: \"plaintext-password\"}\n", "rot.yaml:2"},
		{"secrets: []\n", "rot.yaml:1"},
		{"", "rot.yaml"},
	} {
		_, err := ParseRotated("rot.yaml", []byte(c.in))
		var se *strictyaml.Error
		if err == nil || !errors.As(err, &se) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("ParseRotated(%q) = %v, want an error starting %q", c.in, err, c.want)
		}
	}
}

// What Check refuses before any signature is looked at: an ended window, an
// end with no opening, a clock behind the trail (T24), a window past its
// expiry, a marker that is missing or does not hash to what the entry
// records (an entry written without the records behind it).
func TestCheckRefuses(t *testing.T) {
	_, data := testMarker(t)
	w := anchor.Window{ID: "20261201T100000Z-1a2b3c4d", Env: "dev", Seq: 7, Marker: SHA256(data), Expires: "2026-12-01T12:00:00Z"}
	store := map[string][]byte{}
	f := Facts{
		Artifact: func(name string) ([]byte, error) {
			if b, ok := store[name]; ok {
				return b, nil
			}
			return nil, &trail.ArtifactMissingError{Store: "s", Name: name}
		},
		Used:     func(string) int64 { return 3 },
		Registry: &signers.Registry{},
		Now:      now.Add(time.Hour), TrailTime: now,
	}
	ended := w
	ended.End, ended.EndSeq, ended.ClosedSeq = anchor.BreakGlassClosed, 9, 9
	noOpen := anchor.Window{ID: w.ID, Seq: -1, End: anchor.BreakGlassLapsed, EndSeq: 4}
	var (
		no *NoWindowError
		lp *LapsedError
		ck *ClockError
		uv *UnverifiedError
	)
	check := func(name string, w anchor.Window, f Facts, target any) {
		t.Helper()
		_, err := Check(w, f)
		if err == nil || !errors.As(err, target) {
			t.Errorf("%s: Check = %v, want %T", name, err, target)
		}
	}
	check("closed", ended, f, &no)
	check("end without opening", noOpen, f, &no)
	late := f
	late.Now = now.Add(3 * time.Hour)
	check("expired", w, late, &lp)
	back := f
	back.Now, back.TrailTime = now, now.Add(time.Hour)
	check("clock set back", w, back, &ck)
	check("no marker artifact", w, f, &uv)
	store[MarkerArtifact(w.ID)] = bytes.Replace(data, []byte("carol"), []byte("caro1"), 1)
	check("edited marker artifact", w, f, &uv)
	store[MarkerArtifact(w.ID)] = data
	w2 := w
	w2.Env = "prod"
	check("marker for another env", w2, f, &uv)
	check("marker without its opener's signature", w, f, &uv)
}

func FuzzParseMarker(f *testing.F) {
	_, data := testMarkerF(f)
	f.Add(data)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMarker("m.json", b)
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("ParseMarker accepted bytes that do not format back: %q", b)
		}
	})
}

func testMarkerF(f *testing.F) (*Marker, []byte) {
	m, _ := NewMarker(OpenRequest{Env: "dev", Reason: "CI is unreachable: restore state", Opener: "carol", TTL: time.Hour,
		IntentID: "20261201T095000Z-9b1c2d3e", IntentNonce: strings.Repeat("ab", 16), IntentSHA256: strings.Repeat("0", 64),
		Requester: "alice", IntentExpires: now.Add(2 * time.Hour), Approvers: []string{"alice", "bob"}}, now)
	data, _ := m.Marshal()
	return m, data
}

func FuzzParseRevocation(f *testing.F) {
	rv, _ := NewRevocation("20261201T100000Z-1a2b3c4d", SubjectAccess, "admin-session", "", "temporary access under the window", "carol", now)
	data, _ := rv.Marshal()
	f.Add(data)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRevocation("r.json", b)
		if err != nil {
			return
		}
		if out, err := r.Marshal(); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("ParseRevocation accepted bytes that do not format back: %q", b)
		}
	})
}

func FuzzParseClose(f *testing.F) {
	c := &Close{Closed: "2026-12-01T11:00:00Z", Closer: "carol", ID: "20261201T100000Z-1a2b3c4d", Incident: IncidentPath("20261201T100000Z-1a2b3c4d"),
		IncidentSHA256: strings.Repeat("1", 64), Kind: CloseKind, MarkerSHA256: strings.Repeat("2", 64)}
	data, _ := c.Marshal()
	f.Add(data)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseClose("c.json", b)
		if err != nil {
			return
		}
		if out, err := c.Marshal(); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("ParseClose accepted bytes that do not format back: %q", b)
		}
	})
}

func FuzzParseRotated(f *testing.F) {
	f.Add([]byte("keys:\n  - {name: a, old_fingerprint: 0123456789ABCDEF0123456789ABCDEF01234567, new_fingerprint: 89ABCDEF0123456789ABCDEF0123456789ABCDEF}\naccess: [{name: b}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRotated("rot.yaml", b)
		if err != nil {
			return
		}
		for _, x := range r.Rotations() {
			if x.Kind == "key" && x.OldFingerprint == x.NewFingerprint {
				t.Fatalf("ParseRotated accepted an unrotated key: %q", b)
			}
		}
	})
}

// The break-glass records verify by their own signatures: the manifest
// does not list them, and committing them does not move the governed
// commit that intents are bound to.
func TestRecordDirs(t *testing.T) {
	for _, d := range []string{Dir, RevocationsDir, IncidentsDir} {
		if manifest.IsGoverned(d + "/x.json") {
			t.Errorf("%s/x.json is governed; break-glass records must be record files", d)
		}
	}
}
