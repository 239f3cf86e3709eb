package audit_test

import (
	"bytes"
	"testing"

	"github.com/groundzero/groundzero/audit"
)

func FuzzParseCheckpoint(f *testing.F) {
	_, lines := trail(f, 3)
	f.Add(checkpointAt(f, lines, 3).Marshal())
	f.Add([]byte("groundzero.audit/v1/00\n1\nAAAA\ntime x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cp, err := audit.ParseCheckpoint(data)
		if err != nil {
			return
		}
		if !bytes.Equal(cp.Marshal(), data) {
			t.Fatalf("ParseCheckpoint accepted %q, which re-encodes to %q", data, cp.Marshal())
		}
	})
}

func FuzzParseEntry(f *testing.F) {
	_, lines := trail(f, 2)
	f.Add(lines[1])
	f.Add([]byte(`{"seq":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := audit.ParseEntry(data)
		if err != nil {
			return
		}
		out, err := e.Marshal()
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("ParseEntry accepted %q, which re-encodes to %q", data, out)
		}
	})
}

// The verifier never panics and never calls a trail that differs from a
// checkpointed one valid.
func FuzzVerify(f *testing.F) {
	seg, lines := trail(f, 20)
	cp := checkpointAt(f, lines, 20)
	f.Add(seg)
	f.Add(seg[:len(seg)/2])
	f.Add(append(bytes.Clone(seg), seg...))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := audit.Verify(bytes.NewReader(data), signed(cp), audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() && !bytes.Equal(data, seg) {
			t.Fatalf("a trail other than the checkpointed one verified: %q", data)
		}
	})
}
