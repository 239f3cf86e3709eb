package record_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/record"
)

type sample struct {
	Kind   string         `json:"kind"`
	ID     string         `json:"id"`
	N      int64          `json:"n"`
	Note   string         `json:"note"`
	Nested map[string]any `json:"nested"`
}

func TestMarshalCanonical(t *testing.T) {
	v := sample{Kind: record.Kind("intent"), ID: "a<b>&c", N: 42, Note: "é\n\"q\"", Nested: map[string]any{"z": 1, "a": []any{true, nil}}}
	got, err := record.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"a<b>&c","kind":"groundzero.intent/v1","n":42,"nested":{"a":[true,null],"z":1},"note":"é\n\"q\""}`
	if string(got) != want {
		t.Fatalf("Marshal = %s, want %s", got, want)
	}
	var back sample
	if err := record.Parse(append(got, '\n'), &back); err != nil {
		t.Fatalf("Parse(Marshal(v)): %v", err)
	}
	again, _ := record.Marshal(back)
	if !bytes.Equal(again, got) {
		t.Fatalf("round trip changed the bytes: %s", again)
	}
}

// T10: only the canonical bytes are accepted, so a record cannot be read two
// ways.
func TestParseRefusesNonCanonical(t *testing.T) {
	cases := map[string]string{
		"duplicate key":    `{"id":"x","id":"y","kind":"k","n":1,"nested":{},"note":""}`,
		"unsorted keys":    `{"kind":"k","id":"x","n":1,"nested":{},"note":""}`,
		"spaces":           `{"id": "x","kind":"k","n":1,"nested":{},"note":""}`,
		"escaped slash":    `{"id":"a\/b","kind":"k","n":1,"nested":{},"note":""}`,
		"unicode escape":   `{"id":"\u0061","kind":"k","n":1,"nested":{},"note":""}`,
		"float":            `{"id":"x","kind":"k","n":1.0,"nested":{},"note":""}`,
		"exponent":         `{"id":"x","kind":"k","n":1e2,"nested":{},"note":""}`,
		"big integer":      `{"id":"x","kind":"k","n":9007199254740993,"nested":{},"note":""}`,
		"two newlines":     "{\"id\":\"x\",\"kind\":\"k\",\"n\":1,\"nested\":{},\"note\":\"\"}\n\n",
		"trailing object":  `{"id":"x","kind":"k","n":1,"nested":{},"note":""}{}`,
		"array":            `[1]`,
		"unknown field":    `{"extra":1,"id":"x","kind":"k","n":1,"nested":{},"note":""}`,
		"case-folded key":  `{"ID":"y","id":"x","kind":"k","n":1,"nested":{},"note":""}`,
		"case-folded only": `{"Id":"x","kind":"k","n":1,"nested":{},"note":""}`,
		"nested dup":       `{"id":"x","kind":"k","n":1,"nested":{"a":1,"a":2},"note":""}`,
		"invalid utf8":     "{\"id\":\"\xff\",\"kind\":\"k\",\"n\":1,\"nested\":{},\"note\":\"\"}",
		"deep":             `{"id":"x","kind":"k","n":1,"nested":` + strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40) + `,"note":""}`,
		"huge":             `{"id":"` + strings.Repeat("x", record.MaxSize) + `"}`,
	}
	for name, in := range cases {
		var v sample
		err := record.Parse([]byte(in), &v)
		var re *record.Error
		if !errors.As(err, &re) {
			t.Errorf("Parse(%s) = %v, want *record.Error", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "xxxx") {
			t.Errorf("Parse(%s) error echoes the input", name)
		}
	}
}

func TestKind(t *testing.T) {
	b, _ := record.MarshalFile(map[string]any{"kind": record.Kind("lock"), "x": 1})
	if k, err := record.KindOf(b); err != nil || k != "groundzero.lock/v1" {
		t.Fatalf("KindOf = %q, %v", k, err)
	}
	if err := record.ExpectKind(b, record.Kind("intent")); !errors.Is(err, record.ErrKind) {
		t.Fatalf("ExpectKind(lock as intent) = %v, want ErrKind", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"id":"x","kind":"groundzero.intent/v1","n":1,"nested":{"a":[1,"b",null]},"note":"é"}` + "\n"))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`{"n":1.5}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var v map[string]any
		if err := record.Parse(data, &v); err != nil {
			return
		}
		// Accepted input is canonical: re-encoding gives the same bytes.
		out, err := record.Marshal(v)
		if err != nil {
			t.Fatalf("Marshal of parsed record: %v", err)
		}
		if !bytes.Equal(out, bytes.TrimSuffix(data, []byte("\n"))) {
			t.Fatalf("Parse accepted %q, which re-encodes to %q", data, out)
		}
	})
}

// ParseFileOf refuses, in order, a file over its bound, a non-canonical
// file, another kind, and fields its check refuses; it accepts the rest.
func TestParseFileOf(t *testing.T) {
	want := record.Kind("intent")
	good, err := record.MarshalFile(sample{Kind: want, ID: "x", Nested: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := record.MarshalFile(sample{Kind: record.Kind("lock"), ID: "x", Nested: map[string]any{}})
	noX := func(v *sample) func() error {
		return func() error {
			if v.ID != "x" {
				return errors.New("id is not x")
			}
			return nil
		}
	}
	var v sample
	if err := record.ParseFileOf(good, len(good), want, &v, noX(&v)); err != nil || v.ID != "x" {
		t.Fatalf("good record: %v, %+v", err, v)
	}
	bad, _ := record.MarshalFile(sample{Kind: want, ID: "y", Nested: map[string]any{}})
	for _, c := range []struct {
		name string
		data []byte
		max  int
		msg  string
	}{
		{"too large", good, len(good) - 1, "larger than"},
		{"not canonical", bytes.Replace(good, []byte(`"id"`), []byte(` "id"`), 1), 1 << 10, "not a canonical record"},
		{"other kind", other, 1 << 10, `kind is "groundzero.lock/v1", want "groundzero.intent/v1"`},
		{"check refuses", bad, 1 << 10, "id is not x"},
	} {
		var v sample
		err := record.ParseFileOf(c.data, c.max, want, &v, noX(&v))
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.msg)
		}
	}
}
